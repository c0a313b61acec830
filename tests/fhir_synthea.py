"""Test helper: patient records (format 1) -> FHIR R4 as Synthea emits it.

Synthea's shape: one transaction Bundle per patient, `urn:uuid:` fullUrls and references,
`request` entries, LOINC / SNOMED CT / RxNorm-style codings with a display, UCUM units, dateTimes
with a time of day and a time-zone offset. Codes come from the trial's `TERMINOLOGY` table.

`to_fhir(record, terminology)` returns (bundle, projected record): the projection is the part of
the record that FHIR and the declared codes can carry (no facts, no attributes, no half-lives,
no LLOQ, no concept without a code, no item whose value or date FHIR cannot hold), so that
screening the projection and screening the converted Bundle must give the same results.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
import uuid

SYSTEM_URI = {"loinc": "http://loinc.org", "snomed": "http://snomed.info/sct",
              "icd10": "http://hl7.org/fhir/sid/icd-10-cm", "atc": "http://www.whocc.no/atc",
              "rxnorm": "http://www.nlm.nih.gov/research/umls/rxnorm", "cvx": "http://hl7.org/fhir/sid/cvx",
              "cpt": "http://www.ama-assn.org/go/cpt"}
UCUM = "http://unitsofmeasure.org"
_ZONES = ("-05:00", "+01:00", "+00:00", "-08:00", "+09:00", "Z")
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}")


def _uuid(*parts) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "elig-test/" + "/".join(map(str, parts))))


def _date_ok(d) -> bool:
    if not isinstance(d, str) or not _ISO.fullmatch(d):
        return False
    try:
        dt.date.fromisoformat(d)
        return True
    except ValueError:
        return False


def _when(d: str, i: int, zone: str = "-05:00") -> str:
    """A dateTime on the local calendar day d, with a time of day (later for a later i) and a zone."""
    return f"{d}T{7 + (i // 60) % 16:02d}:{i % 60:02d}:00{zone}"


def _coding(system: str, code: str, display: str) -> dict:
    return {"system": SYSTEM_URI[system], "code": code, "display": display}


def _class_codes(terminology):
    """class -> [(system, code)], and (system, code) -> the set of classes it maps to."""
    from compiler.terminology import matches

    by_class = {}
    for kind, name, system, code in terminology:
        if kind == "class":
            by_class.setdefault(name, []).append((system, code))
    covers = {}
    for cls, codes in by_class.items():
        for system, code in codes:
            covers[(system, code)] = {n for (k, n, s, c) in terminology
                                      if k == "class" and s == system and matches(s, c, code)}
    return by_class, covers


def to_fhir(record: dict, terminology, labels=None) -> tuple[dict, dict]:
    labels = labels or {}
    first = {}
    for kind, name, system, code in terminology:
        if system in SYSTEM_URI:
            first.setdefault((kind, name), []).append((system, code))
    by_class, covers = _class_codes(terminology)
    pid = record["id"]
    zone = _ZONES[sum(map(ord, pid)) % len(_ZONES)]  # one time zone per patient, as Synthea writes them
    purl = "urn:uuid:" + _uuid(pid, "patient")
    proj = {"format": 1, "id": pid}
    patient = {"resourceType": "Patient", "id": pid,
               "meta": {"profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"]},
               "identifier": [{"system": "https://github.com/synthetichealth/synthea", "value": _uuid(pid)}],
               "name": [{"use": "official", "family": "Test" + str(abs(hash(pid)) % 1000), "given": ["Pat"]}]}
    if record.get("sex") in ("male", "female"):
        patient["gender"] = proj["sex"] = record["sex"]
    if _date_ok(record.get("birth_date")):
        patient["birthDate"] = proj["birth_date"] = record["birth_date"]
    if isinstance(record.get("anchors"), dict):
        proj["anchors"] = {k: v for k, v in record["anchors"].items() if _date_ok(v)}
    entries = [("Patient", purl, patient)]
    subj = {"reference": purl}
    n = 0

    def add(rt, res):
        nonlocal n
        n += 1
        url = "urn:uuid:" + _uuid(pid, rt, n)
        res["id"] = url.split(":")[-1]
        entries.append((rt, url, res))

    obs_out = []
    for o in record.get("observations") or ():
        if not isinstance(o, dict) or not isinstance(o.get("code"), str) or not _date_ok(o.get("date")):
            continue
        loinc = [c for s, c in first.get(("observation", o["code"]), ()) if s == "loinc"]
        if not loinc:
            continue
        v = o.get("value")
        res = {"resourceType": "Observation", "status": "final",
               "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                         "code": "laboratory", "display": "laboratory"}]}],
               "code": {"coding": [_coding("loinc", loinc[0], labels.get(o["code"], o["code"]))],
                        "text": labels.get(o["code"], o["code"])},
               "subject": subj, "encounter": {"reference": "urn:uuid:" + _uuid(pid, "enc")},
               "effectiveDateTime": _when(o["date"], n, zone), "issued": o["date"] + "T12:00:00.000-05:00"}
        item = {"code": o["code"], "value": v, "date": o["date"]}
        if v in ("positive", "negative"):
            res["valueCodeableConcept"] = {"coding": [{"system": SYSTEM_URI["snomed"],
                                                       "code": "10828004" if v == "positive" else "260385009",
                                                       "display": v.capitalize()}], "text": v.capitalize()}
        elif type(v) in (int, float) and not isinstance(v, bool):
            unit = o.get("unit")
            if unit is not None and not isinstance(unit, str):
                continue
            if unit is None and type(v) is int:
                res["valueInteger"] = v
            else:
                q = {"value": v, "unit": unit or "1", "system": UCUM, "code": unit or "1"}
                res["valueQuantity"] = q
                item["unit"] = unit or "1"
            rng = {}
            for key, side in (("uln", "high"), ("lln", "low")):
                lim = o.get(key)
                if type(lim) in (int, float) and not isinstance(lim, bool) and "valueQuantity" in res:
                    rng[side] = {"value": lim, "unit": item["unit"], "system": UCUM, "code": item["unit"]}
                    item[key] = lim
            if rng:
                res["referenceRange"] = [rng]
        else:
            continue
        add("Observation", res)
        obs_out.append(item)
    if obs_out:
        proj["observations"] = obs_out

    for field, kind, rt in (("conditions", "condition", "Condition"), ("procedures", "procedure", "Procedure")):
        out = []
        for c in record.get(field) or ():
            if not isinstance(c, dict) or not isinstance(c.get("code"), str):
                continue
            codes = first.get((kind, c["code"]))
            if not codes:
                continue
            snomed = [x for x in codes if x[0] == "snomed"]
            system, code = (snomed or codes)[0]
            concept = {"coding": [_coding(system, code, labels.get(c["code"], c["code"]))],
                       "text": labels.get(c["code"], c["code"])}
            item = {"code": c["code"]}
            if kind == "condition":
                if not _date_ok(c.get("onset")) or c.get("status") not in ("active", "resolved"):
                    continue
                if "end" in c and c["end"] is not None and not _date_ok(c["end"]):
                    continue
                res = {"resourceType": "Condition", "clinicalStatus": {"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": c["status"]}]},
                       "verificationStatus": {"coding": [{
                           "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                           "code": "confirmed"}]},
                       "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-category",
                                                 "code": "encounter-diagnosis", "display": "Encounter Diagnosis"}]}],
                       "code": concept, "subject": subj, "onsetDateTime": _when(c["onset"], n),
                       "recordedDate": _when(c["onset"], n + 1)}
                item.update(onset=c["onset"], status=c["status"])
                if c.get("end"):
                    res["abatementDateTime"] = _when(c["end"], n + 2)
                    item["end"] = c["end"]
            else:
                if not _date_ok(c.get("date")):
                    continue
                res = {"resourceType": "Procedure", "status": "completed", "code": concept, "subject": subj,
                       "performedPeriod": {"start": _when(c["date"], n), "end": _when(c["date"], n)}}
                item["date"] = c["date"]
            add(rt, res)
            out.append(item)
        if out:
            proj[field] = out

    treats = []
    for i, t in enumerate(record.get("treatments") or ()):
        if not isinstance(t, dict) or not isinstance(t.get("code"), str) or not isinstance(t.get("classes"), list):
            continue
        classes = t["classes"]
        if not classes or not all(isinstance(c, str) for c in classes) or not _date_ok(t.get("start")):
            continue
        end = t.get("end", "absent")
        if end not in (None, "absent") and not _date_ok(end):
            continue
        want = set(classes)
        chosen, got = [], set()
        for cls in classes:
            for sc in by_class.get(cls, ()):
                if covers[sc] <= want:
                    chosen.append(sc)
                    got |= covers[sc]
                    break
        if got != want:
            continue
        if not re.fullmatch(r"[a-z][a-z ]*", t["code"]):
            continue
        concept = {"coding": [_coding(s, c, t["code"]) for s, c in chosen], "text": t["code"]}
        item = {"code": t["code"], "classes": [c for c in classes], "start": t["start"]}
        if end != "absent":
            item["end"] = end
        if "live_vaccine" in want and any(s == "cvx" for s, _ in chosen) and end == t["start"]:
            res = {"resourceType": "Immunization", "status": "completed", "vaccineCode": concept,
                   "patient": subj, "occurrenceDateTime": _when(t["start"], n), "primarySource": True}
            add("Immunization", res)
            treats.append(item)
            continue
        dosage = {}
        dose = t.get("daily_dose")
        if isinstance(dose, dict) and type(dose.get("value")) in (int, float) and dose.get("unit") in ("mg", "g", "ug"):
            dosage = {"timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
                      "doseAndRate": [{"doseQuantity": {"value": dose["value"], "unit": dose["unit"], "system": UCUM,
                                                        "code": dose["unit"]}}]}
            item["daily_dose"] = {"value": dose["value"], "unit": dose["unit"]}
        if t.get("route") in ("oral", "inhaled", "topical", "intranasal", "intravenous"):
            disp = {"oral": "Oral route", "inhaled": "Respiratory tract route (qualifier value) inhalation",
                    "topical": "Topical route", "intranasal": "Nasal route", "intravenous": "Intravenous route"}
            dosage["route"] = {"coding": [{"system": SYSTEM_URI["snomed"], "code": {
                "oral": "26643006", "inhaled": "447694001", "topical": "6064005", "intranasal": "46713006",
                "intravenous": "47625008"}[t["route"]], "display": disp[t["route"]]}]}
            item["route"] = t["route"]
        status = "active" if end is None else "completed"
        if i % 2 == 0:
            period = {"start": _when(t["start"], n)}
            if end not in (None, "absent"):
                period["end"] = _when(end, n + 1)
            res = {"resourceType": "MedicationStatement", "status": status, "medicationCodeableConcept": concept,
                   "subject": subj, "effectivePeriod": period}
            if dosage:
                res["dosage"] = [dosage]
        else:
            if end == "absent":
                continue  # a request always has a status that says whether it is still active
            bounds = {"start": _when(t["start"], n)}
            if end is not None:
                bounds["end"] = _when(end, n + 1)
            dosage = copy.deepcopy(dosage)
            dosage.setdefault("timing", {}).setdefault("repeat", {})["boundsPeriod"] = bounds
            res = {"resourceType": "MedicationRequest", "status": status, "intent": "order",
                   "medicationCodeableConcept": concept, "subject": subj,
                   "authoredOn": _when(t["start"], n), "dosageInstruction": [dosage]}
        add(res["resourceType"], res)
        treats.append(item)
    if treats:
        proj["treatments"] = treats

    bundle = {"resourceType": "Bundle", "type": "transaction",
              "entry": [{"fullUrl": url, "resource": res, "request": {"method": "POST", "url": rt}}
                        for rt, url, res in entries]}
    return bundle, proj
