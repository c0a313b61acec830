"""FHIR R4 in: the adapter (compiler/fhir) on Synthea-shaped Bundles, hand-built edge cases,
Bulk Data NDJSON, the CLI, and the round-trip property records -> FHIR -> records on cohort
records (the same results as screening the records directly)."""

from __future__ import annotations

import copy
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from compiler.batch import ModuleSource
from compiler.fhir import run as R
from compiler.fhir.adapter import Converter, PatientError
from compiler.fhir.codes import CodeMap
from compiler.fhir.sources import bundle_groups, iter_bulk, iter_bundles, read_anchors_csv

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))
import cohort  # noqa: E402
from fhir_synthea import to_fhir  # noqa: E402

ELIG = [sys.executable, "-m", "compiler.cli"]
ANCHORS = {"screening": "2026-01-05", "enrollment": "2026-01-12", "first_dose": "2026-01-15"}


@pytest.fixture(scope="module")
def mod():
    src = ModuleSource((ROOT / "generated" / "sm3321.py").read_text(encoding="utf-8"), "sm3321")
    return src, src.load()


@pytest.fixture(scope="module")
def conv(mod):
    return Converter(CodeMap.from_module(mod[1]))


def _crit(result, cid):
    return next(c for c in result["criteria"] if c["id"] == cid)


def _patient(pid="p1", **kw):
    p = {"resourceType": "Patient", "id": pid, "gender": "female", "birthDate": "1960-03-02"}
    p.update(kw)
    return p


def _obs(code, *, value=None, unit=None, when="2026-01-12T09:30:00+01:00", status="final", rid="o1", **kw):
    o = {"resourceType": "Observation", "id": rid, "status": status,
         "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": code}]},
         "subject": {"reference": "Patient/p1"}}
    if when is not None:
        o["effectiveDateTime"] = when
    if value is not None:
        o["valueQuantity"] = {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}
    o.update(kw)
    return o


# ---------------------------------------------------------------------- edge cases


def test_hemoglobin_in_mg_per_dl_for_a_g_per_l_concept_is_converted_by_the_evaluator(mod, conv):
    # 9 g/dL is 90 g/L, exactly the limit; 8950 mg/dL is 89.5 g/L, below it
    rec = conv.convert([_patient(), _obs("718-7", value=9, unit="g/dL")], ANCHORS, "p1")
    assert rec["observations"] == [{"code": "hemoglobin", "value": 9, "unit": "g/dL", "date": "2026-01-12"}]
    assert _crit(mod[1].evaluate(rec), "hemoglobin")["outcome"] == "pass"
    rec = conv.convert([_patient(), _obs("718-7", value=8950, unit="mg/dL")], ANCHORS, "p1")
    assert rec["observations"][0]["unit"] == "mg/dL"  # UCUM code passed through, converted by the evaluator
    c = _crit(mod[1].evaluate(rec), "hemoglobin")
    assert c["outcome"] == "fail" and c["reason"] == "hemoglobin 8950 mg/dL on 2026-01-12 < 90 g/L", c


def test_date_is_the_local_calendar_day_as_written(conv):
    rec = conv.convert([_patient(), _obs("718-7", value=95, unit="g/L", when="2026-01-08T23:30:00-05:00")],
                       ANCHORS, "p1")
    assert rec["observations"][0]["date"] == "2026-01-08"


def test_missing_effective_is_an_undated_reading_with_a_warning(mod, conv):
    rec = conv.convert([_patient(), _obs("718-7", value=95, unit="g/L", when=None)], ANCHORS, "p1")
    assert "date" not in rec["observations"][0]
    res = mod[1].evaluate(rec)
    assert any("effective date missing" in w for w in res["warnings"]), res["warnings"]
    assert _crit(res, "hemoglobin")["outcome"] == "unknown"


def test_entered_in_error_observation_is_not_read_and_said_so(mod, conv):
    rec = conv.convert([_patient(), _obs("718-7", value=60, unit="g/L", status="entered-in-error"),
                        _obs("718-7", value=120, unit="g/L", rid="o2")], ANCHORS, "p1")
    assert [o["value"] for o in rec["observations"]] == [120]
    res = mod[1].evaluate(rec)
    assert _crit(res, "hemoglobin")["outcome"] == "pass"
    assert any("Observation/o1" in w and "entered-in-error" in w for w in res["warnings"])


def test_reference_range_gives_uln_and_a_range_in_another_unit_is_warned(mod, conv):
    ast = _obs("1920-8", value=101, unit="U/L", referenceRange=[{"high": {"value": 40, "unit": "U/L",
                                                                        "system": "http://unitsofmeasure.org",
                                                                        "code": "U/L"}}])
    rec = conv.convert([_patient(), ast], ANCHORS, "p1")
    assert rec["observations"][0]["uln"] == 40
    assert _crit(mod[1].evaluate(rec), "ast_limit")["outcome"] == "fail"  # 101 > 2.5 x 40
    ast["referenceRange"][0]["high"].update(unit="ukat/L", code="ukat/L", value=0.67)
    rec = conv.convert([_patient(), ast], ANCHORS, "p1")
    assert "uln" not in rec["observations"][0]
    assert any("referenceRange high in ukat/L" in w for w in rec["warnings"])


def test_condition_with_abatement_before_onset_has_an_unknown_end(mod, conv):
    cond = {"resourceType": "Condition", "id": "c1",
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                           "code": "resolved"}]},
            "verificationStatus": {"coding": [{"code": "confirmed"}]},
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "59282003",
                                 "display": "Pulmonary embolism (disorder)"}]},
            "subject": {"reference": "Patient/p1"},
            "onsetDateTime": "2025-11-20T10:00:00+00:00", "abatementDateTime": "2025-11-02"}
    rec = conv.convert([_patient(), cond], ANCHORS, "p1")
    assert rec["conditions"] == [{"code": "pulmonary_embolism", "status": "resolved", "onset": "2025-11-20",
                                  "end": "2025-11-02"}]
    res = mod[1].evaluate(rec)
    assert any("end 2025-11-02 is before onset" in w for w in res["warnings"]), res["warnings"]
    assert _crit(res, "recent_dvt_pe")["outcome"] == "fail"  # present from its onset, inside 6 months


def test_refuted_condition_is_not_read_icd10_prefix_matches(conv):
    base = {"resourceType": "Condition", "subject": {"reference": "Patient/p1"}, "onsetDateTime": "2025-06-01",
            "clinicalStatus": {"coding": [{"code": "active"}]}}
    chf = dict(base, id="c1", code={"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "I50.22"}]})
    ref = dict(base, id="c2", verificationStatus={"coding": [{"code": "refuted"}]},
               code={"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "C78.7"}]})
    rec = conv.convert([_patient(), chf, ref], ANCHORS, "p1")
    assert [c["code"] for c in rec["conditions"]] == ["congestive_heart_failure"]
    assert any("Condition/c2" in w and "refuted" in w for w in rec["warnings"])


def test_medication_request_without_period_starts_on_authored_on(mod, conv):
    req = {"resourceType": "MedicationRequest", "id": "m1", "status": "active", "intent": "order",
           "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                                     "code": "3264", "display": "dexamethasone"}]},
           "subject": {"reference": "Patient/p1"}, "authoredOn": "2026-01-05T08:00:00+01:00",
           "dosageInstruction": [{"timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}},
                                  "route": {"coding": [{"system": "http://snomed.info/sct", "code": "26643006",
                                                        "display": "Oral route"}]},
                                  "doseAndRate": [{"doseQuantity": {"value": 4, "unit": "mg",
                                                                    "system": "http://unitsofmeasure.org",
                                                                    "code": "mg"}}]}]}
    rec = conv.convert([_patient(), req], ANCHORS, "p1")
    assert rec["treatments"] == [{"code": "dexamethasone", "classes": ["systemic_corticosteroid"],
                                  "start": "2026-01-05", "end": None,
                                  "daily_dose": {"value": 8, "unit": "mg"}, "route": "oral"}]
    res = mod[1].evaluate(rec)
    assert any("MedicationRequest/m1" in w and "no period" in w for w in res["warnings"])
    # 8 mg/day dexamethasone is far above 10 mg/day prednisone; the purpose is unknown from FHIR
    assert _crit(res, "autoimmune_or_immunosuppression")["outcome"] in ("fail", "unknown")


def test_atc_prefix_and_medication_reference(conv):
    med = {"resourceType": "Medication", "id": "med1",
           "code": {"coding": [{"system": "http://www.whocc.no/atc", "code": "L01FF02", "display": "pembrolizumab"}]}}
    st = {"resourceType": "MedicationStatement", "id": "s1", "status": "completed",
          "medicationReference": {"reference": "Medication/med1"}, "subject": {"reference": "Patient/p1"},
          "effectivePeriod": {"start": "2025-05-01", "end": "2025-11-20"}}
    rec = conv.convert([_patient(), med, st], ANCHORS, "p1")
    assert rec["treatments"] == [{"code": "pembrolizumab", "classes": ["immunotherapy", "anti_pd1_pdl1"],
                                  "start": "2025-05-01", "end": "2025-11-20"}]


def test_unknown_code_system_and_unread_types_are_warned_never_dropped_silently(mod, conv):
    odd = _obs("x", value=1, unit="1")
    odd["code"] = {"coding": [{"system": "http://example.org/local-codes", "code": "HB1"}]}
    enc = {"resourceType": "Encounter", "id": "e1", "status": "finished", "class": {"code": "AMB"}}
    rec = conv.convert([_patient(), odd, enc, enc], ANCHORS, "p1")
    res = mod[1].evaluate(rec)
    w = " | ".join(res["warnings"])
    assert "http://example.org/local-codes HB1" in w and "Encounter ×2" in w, w


def test_bound_and_coded_values(mod, conv):
    hbv = _obs("29615-2", value=20, unit="[IU]/mL")
    hbv["valueQuantity"]["comparator"] = "<"
    hbs = _obs("5196-1", rid="o2", valueCodeableConcept={"coding": [{"system": "http://snomed.info/sct",
                                                                     "code": "260385009", "display": "Negative"}]})
    rec = conv.convert([_patient(), hbv, hbs], ANCHORS, "p1")
    assert rec["observations"][1]["value"] == "negative"
    assert rec["observations"][0]["value"] == "<20"
    assert any("is a bound, not a value" in w for w in rec["warnings"])


def test_blood_pressure_panel_components(conv):
    bp = {"resourceType": "Observation", "id": "bp", "status": "final", "subject": {"reference": "Patient/p1"},
          "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9", "display": "Blood pressure panel"}]},
          "effectiveDateTime": "2026-01-10T10:00:00-05:00",
          "component": [{"code": {"coding": [{"system": "http://loinc.org", "code": code}]},
                         "valueQuantity": {"value": v, "unit": "mm[Hg]", "system": "http://unitsofmeasure.org",
                                           "code": "mm[Hg]"}} for code, v in (("8480-6", 150), ("8462-4", 95))]}
    rec = conv.convert([_patient(), bp], ANCHORS, "p1")
    assert [(o["code"], o["value"]) for o in rec["observations"]] == [("systolic_bp", 150), ("diastolic_bp", 95)]
    assert "warnings" not in rec


def test_invalid_resource_is_an_error_for_that_patient_only(mod, conv):
    bad = _obs("718-7", value=95, unit="g/L", when="2026-13-45")
    with pytest.raises(PatientError, match="Observation/o1 does not validate"):
        conv.convert([_patient(), bad], ANCHORS, "p1")
    good = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": _patient("p2")}]}
    worse = {"resourceType": "Bundle", "type": "collection",
             "entry": [{"resource": _patient("p1")}, {"resource": bad}]}
    out = io.StringIO()
    groups = list(bundle_groups(worse, "a")) + list(bundle_groups({"resourceType": "Patient"}, "b")) + \
        list(bundle_groups(good, "c"))
    R.run(groups, out, source=mod[0], module=mod[1], anchors_fixed=ANCHORS, jobs=1)
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    assert [(x["patient_id"], x["status"]) for x in lines[:2]] == [("p1", "error"), (None, "error")]
    assert "does not validate" in lines[0]["error"] and "not a FHIR Bundle" in lines[1]["error"]
    assert lines[2]["patient_id"] == "p2" and lines[2]["status"] != "error"


def test_patient_fields(conv):
    rec = conv.convert([_patient(gender="unknown", birthDate="1961")], None, "p1")
    assert "sex" not in rec and "birth_date" not in rec
    assert any("gender 'unknown'" in w for w in rec["warnings"])
    assert any("Patient.birthDate" in w for w in rec["warnings"])


def test_anchors_csv(tmp_path):
    p = tmp_path / "a.csv"
    p.write_text("patient_id,first_dose,screening\np1,2026-02-01,\np2,,2026-01-03\n", encoding="utf-8")
    assert read_anchors_csv(str(p), {"first_dose", "screening"}) == {"p1": {"first_dose": "2026-02-01"},
                                                                      "p2": {"screening": "2026-01-03"}}
    for text, msg in (("id,first_dose\n", "first column must be patient_id"),
                      ("patient_id,frist_dose\n", "unknown anchor 'frist_dose'"),
                      ("patient_id,first_dose\np1,02/01/2026\n", ":2: first_dose '02/01/2026' is not an ISO date"),
                      ("patient_id,first_dose\np1,2026-02-01\np1,2026-02-02\n", "listed twice")):
        p.write_text(text, encoding="utf-8")
        with pytest.raises(ValueError, match=msg):
            read_anchors_csv(str(p), {"first_dose", "screening"})


# ---------------------------------------------------------------------- round trip


def _cohort_bundles(mod, n):
    out = []
    for rec in cohort.generate(n, seed=1313, corrupt_rate=0.01):
        if isinstance(rec, dict) and isinstance(rec.get("id"), str) and rec["id"]:
            out.append(to_fhir(rec, mod[1].TERMINOLOGY))
    return out


@pytest.mark.slow
def test_round_trip_records_fhir_records_gives_the_same_results(mod, tmp_path):
    pairs = _cohort_bundles(mod, 80)
    src = tmp_path / "bundles.jsonl"
    src.write_text("".join(json.dumps(b) + "\n" for b, _ in pairs), encoding="utf-8")
    csv = tmp_path / "anchors.csv"
    csv.write_text("patient_id,screening,enrollment,first_dose\n" + "".join(
        f"{p['id']},{p.get('anchors', {}).get('screening', '')},{p.get('anchors', {}).get('enrollment', '')},"
        f"{p.get('anchors', {}).get('first_dose', '')}\n" for _, p in pairs), encoding="utf-8")
    out = io.StringIO()
    R.run(iter_bundles(str(src)), out, source=mod[0], module=mod[1],
          anchors_csv=read_anchors_csv(str(csv), set(mod[1].TRIAL["anchors"])), jobs=1)
    got = [json.loads(x) for x in out.getvalue().splitlines()]
    assert len(got) == len(pairs)
    kinds = {"treatments": 0, "conditions": 0, "procedures": 0, "observations": 0}
    for (bundle, proj), res in zip(pairs, got):
        want = mod[1].evaluate(proj)
        assert res["patient_id"] == proj["id"]
        assert res["status"] == want["status"], proj["id"]
        assert res["criteria"] == want["criteria"], proj["id"]
        for k in kinds:
            kinds[k] += len(proj.get(k, ()))
    assert min(kinds.values()) >= 20, kinds  # the projection keeps every kind of item


def test_bulk_export_grouped_by_patient(mod, tmp_path):
    pairs = _cohort_bundles(mod, 30)
    by_type = {}
    for bundle, _ in pairs:
        for e in bundle["entry"]:
            res = copy.deepcopy(e["resource"])
            for key in ("subject", "patient"):  # bulk exports reference Patient/<id>
                if key in res:
                    res[key] = {"reference": "Patient/" + bundle["entry"][0]["resource"]["id"]}
            by_type.setdefault(res["resourceType"], []).append(res)
    for rt, items in by_type.items():
        items.reverse()  # not in patient order: the export must be grouped
        (tmp_path / f"{rt}.ndjson").write_text("".join(json.dumps(x) + "\n" for x in items), encoding="utf-8")
    groups = list(iter_bulk(str(tmp_path)))
    assert [g[0] for g in groups] == sorted(p["id"] for _, p in pairs)
    projs = {p["id"]: p for _, p in pairs}
    out = io.StringIO()
    fixed = None
    R.run(iter(groups), out, source=mod[0], module=mod[1], anchors_fixed=fixed,
          anchors_csv={pid: p.get("anchors", {}) for pid, p in projs.items()}, jobs=1)
    def norm(result):  # a bulk export does not keep item order: reasons may name the same items otherwise
        return [(c["id"], c["outcome"], sorted(c["missing"])) for c in result["criteria"]]

    lines = out.getvalue().splitlines()
    assert len(lines) == len(pairs)
    for line in lines:
        res = json.loads(line)
        want = mod[1].evaluate(projs[res["patient_id"]])
        assert res["status"] == want["status"]
        assert norm(res) == norm(want), res["patient_id"]


# ---------------------------------------------------------------------- CLI


@pytest.mark.slow
def test_cli_evaluate_from_fhir_and_fhir_to_records(mod, tmp_path):
    pairs = _cohort_bundles(mod, 6)
    d = tmp_path / "bundles"
    d.mkdir()
    for i, (b, _) in enumerate(pairs):
        (d / f"p{i}.json").write_text(json.dumps(b, indent=1), encoding="utf-8")
    (d / "broken.json").write_text("{not json", encoding="utf-8")
    module = str(ROOT / "generated" / "sm3321.py")
    r = subprocess.run(ELIG + ["evaluate", "--module", module, "--from", "fhir", str(d),
                               "--anchor", "first_dose=2026-02-01"], capture_output=True, text=True, cwd=ROOT,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert len(lines) == len(pairs) + 1
    assert lines[0]["status"] == "error" and "not JSON" in lines[0]["error"]  # broken.json sorts first
    out = tmp_path / "records.jsonl"
    r = subprocess.run(ELIG + ["fhir-to-records", "--module", module, "--from", "fhir", str(d), "-o", str(out)],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    recs = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert recs[0]["error"].endswith("not JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))")
    assert [x["id"] for x in recs[1:]] == [p["id"] for _, p in pairs]
    r = subprocess.run(ELIG + ["evaluate", "--module", module, "--from", "fhir", str(d), "--anchor", "first_dose=2026-02-30"],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 2 and "not a calendar date" in r.stderr


def test_record_warnings_field_reaches_the_result(mod):
    base = {"format": 1, "id": "w1", "anchors": ANCHORS}
    res = mod[1].evaluate(dict(base, warnings=["fhir: something not read", 3]))
    assert "fhir: something not read" in res["warnings"] and res["status"] != "error"
    res = mod[1].evaluate(dict(base, warnings="oops"))
    assert "warnings must be a list of strings, not a string; ignored" in res["warnings"]


def test_second_trial_maps_by_its_own_codes():
    from compiler.pipeline import compile_rules

    res = compile_rules(str(ROOT / "examples" / "hf_trial"))
    assert res.ok
    m = ModuleSource(res.python, "hf207").load()
    conv = Converter(CodeMap.from_module(m))
    af = {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p1"},
          "clinicalStatus": {"coding": [{"code": "active"}]}, "onsetDateTime": "2024-02-01",
          "code": {"coding": [{"system": "http://snomed.info/sct", "code": "49436004",
                               "display": "Atrial fibrillation (disorder)"}]}}
    egfr = _obs("62238-1", value=48, unit="mL/min/{1.73_m2}", rid="o2")
    rec = conv.convert([_patient(), af, egfr], None, "p1")
    assert rec["conditions"] == [{"code": "atrial_fibrillation", "status": "active", "onset": "2024-02-01"}]
    assert rec["observations"] == [{"code": "egfr", "value": 48, "unit": "mL/min/{1.73_m2}", "date": "2026-01-12"}]


# ---------------------------------------------------------------------- validation by parts (speed)


def _leaf_mutations(value, path=()):
    """(path, bad value) for every leaf and list of a resource: wrong types, nulls in lists, an
    unknown element, a malformed date."""
    if isinstance(value, dict):
        yield path + ("zzUnknown",), "x"
        for k, v in value.items():
            yield from _leaf_mutations(v, path + (k,))
    elif isinstance(value, list):
        yield path + (len(value),), None  # a null appended to the list
        for i, v in enumerate(value):
            yield from _leaf_mutations(v, path + (i,))
    elif isinstance(value, str):
        yield path, {"not": "a string"}
        if len(value) >= 10 and value[4:5] == "-":
            yield path, value[:5] + "13" + value[7:]  # month 13
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield path, "abc"


def _mutate(res, path, bad):
    res = copy.deepcopy(res)
    node = res
    for p in path[:-1]:
        node = node[p]
    if isinstance(node, list) and path[-1] == len(node):
        node.append(bad)
    else:
        node[path[-1]] = bad
    return res


def _outcome(validate, res):
    from compiler.fhir import adapter as A

    try:
        return "ok", validate(res).model_dump(mode="json")
    except A.PatientError as exc:
        return "error", str(exc)


def test_validation_by_parts_agrees_with_whole_validation_on_valid_and_broken_resources(mod):
    # validating each distinct nested element once (and the resource around the validated
    # instances) must accept and refuse exactly what one whole validation does, with the same
    # message, also once the valid versions of those elements are cached
    from compiler.fhir import adapter as A

    resources = {}
    for bundle, _ in _cohort_bundles(mod, 40):
        for e in bundle["entry"]:
            r = e["resource"]
            if r["resourceType"] in A.READ:
                resources.setdefault(r["resourceType"], []).append(r)
    assert {"Patient", "Observation", "Condition", "Procedure", "MedicationStatement",
            "MedicationRequest"} <= set(resources)
    checked = broken = 0
    for rt, items in resources.items():
        for r in items[:60]:  # valid: the same model content both ways (this fills the cache)
            assert _outcome(A._validate, r) == _outcome(A._validate_full, r), A._ref(r)
            checked += 1
        for path, bad in _leaf_mutations(A._read_part(items[0])):
            r = _mutate(items[0], path, bad)
            got, want = _outcome(A._validate, r), _outcome(A._validate_full, r)
            assert got == want, (rt, path, bad)
            broken += got[0] == "error"
    assert checked > 200 and broken > 80, (checked, broken)


def test_bulk_records_are_the_same_as_with_whole_validation(mod, tmp_path, monkeypatch):
    # the records of a generated Bulk Data export, converted with validation by parts, are those
    # the adapter produced when it validated every resource whole
    from compiler.fhir import adapter as A

    pairs = _cohort_bundles(mod, 40)
    by_type = {}
    for bundle, _ in pairs:
        for e in bundle["entry"]:
            res = copy.deepcopy(e["resource"])
            for key in ("subject", "patient"):
                if key in res:
                    res[key] = {"reference": "Patient/" + bundle["entry"][0]["resource"]["id"]}
            by_type.setdefault(res["resourceType"], []).append(res)
    for rt, items in by_type.items():
        (tmp_path / f"{rt}.ndjson").write_text("".join(json.dumps(x) + "\n" for x in items), encoding="utf-8")
    # one broken resource: an error result both ways
    (tmp_path / "Observation.ndjson").open("a", encoding="utf-8").write(json.dumps(
        _obs("718-7", value="abc", unit="g/L", rid="bad", subject={"reference": "Patient/" + pairs[0][1]["id"]})) + "\n")

    def records():
        out = io.StringIO()
        R.run(iter_bulk(str(tmp_path)), out, source=mod[0], module=mod[1], anchors_fixed=ANCHORS, mode="records",
              jobs=1)
        return out.getvalue()

    fast = records()
    monkeypatch.setattr(A, "_validate", A._validate_full)
    whole = records()
    assert fast == whole
    lines = [json.loads(x) for x in fast.splitlines()]
    assert len(lines) == len(pairs) and sum("error" in x for x in lines) == 1
    assert sum(len(x.get("observations", ())) for x in lines) > 500


def test_element_cache_stays_bounded(monkeypatch):
    from compiler.fhir import adapter as A

    monkeypatch.setattr(A, "_ELEMENT_CACHE_MAX", 50)
    monkeypatch.setattr(A, "_ELEMENT_CACHE", {})
    for i in range(400):  # 400 distinct quantities, codes and subjects
        o = _obs("718-7", value=100 + i, unit="g/L", rid=f"o{i}", subject={"reference": f"Patient/p{i}"})
        assert A._validate(o).valueQuantity.value == 100 + i
        assert len(A._ELEMENT_CACHE) <= 50
    big = _obs("718-7", value=1, unit="g/L")
    big["code"]["text"] = "x" * 5000  # a large element: validated, not kept
    assert A._validate(big).code.text == "x" * 5000
    assert all(len(k[1]) <= A._ELEMENT_MAX_CHARS for k in A._ELEMENT_CACHE)
