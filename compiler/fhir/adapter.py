"""FHIR R4 resources of one patient -> one patient record, format 1 (docs/fhir.md).

Mapping is driven by the codes the trial's vocabulary declares (`compiler/fhir/codes.py`).
Resources are parsed and validated with `fhir.resources` (its R4B models, which read R4
content for every resource type mapped here); a resource of a mapped type whose code the trial
declares and that does not validate makes the whole patient an error result. Everything that is
not mapped becomes a warning of the record (`warnings`, copied into the result's warnings by the
evaluator), never a silent drop.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections import Counter
from decimal import Decimal
from typing import Any, Optional

from .codes import CodeMap

WARN = "fhir: "
PATIENT_REF_FIELD = {"Immunization": "patient"}  # every other mapped type: subject

_QUAL = {  # codings of qualitative results (SNOMED CT, HL7 v3 ObservationInterpretation)
    "10828004": "positive", "260385009": "negative", "260373001": "positive", "260415000": "negative",
    "POS": "positive", "NEG": "negative", "DET": "positive", "ND": "negative",
}
_QUAL_TEXT = {"positive": "positive", "negative": "negative", "detected": "positive", "not detected": "negative",
              "reactive": "positive", "non-reactive": "negative", "nonreactive": "negative"}
_ACTIVE = {"active", "recurrence", "relapse"}
_RESOLVED = {"inactive", "remission", "resolved"}
_ROUTES = (("inhal", "inhaled"), ("respiratory", "inhaled"), ("nasal", "intranasal"), ("ophthalm", "intraocular"),
           ("intraocular", "intraocular"), ("intra-articular", "intraarticular"), ("intraarticular", "intraarticular"),
           ("topical", "topical"), ("cutaneous", "topical"), ("transdermal", "topical"), ("oral", "oral"),
           ("intravenous", "intravenous"), ("intramuscular", "intramuscular"), ("subcutaneous", "subcutaneous"))
_PERIOD_DAYS = {"s": Decimal(1) / 86400, "min": Decimal(1) / 1440, "h": Decimal(1) / 24, "d": Decimal(1),
                "wk": Decimal(7), "mo": None, "a": None}
_MASS_UNITS = {"mg", "g", "ug", "mcg", "ng", "kg"}

_models: dict = {}


def model(resource_type: str):
    if not isinstance(resource_type, str):
        raise ValueError(f"resourceType {resource_type!r} is not a name")
    cls = _models.get(resource_type)
    if cls is None:
        from fhir.resources.R4B import get_fhir_model_class

        cls = _models[resource_type] = get_fhir_model_class(resource_type)
    return cls


class PatientError(Exception):
    """This patient's data cannot be converted (a resource that does not validate)."""


def _ref(x: Any) -> str:
    return f"{x.get('resourceType', '?')}/{x.get('id') or '?'}" if isinstance(x, dict) else "?"


# The elements the adapter reads, per resource type (a name ending in * is a choice type, [x]).
# Only these are validated: that is what the records are made of, and validating every element
# of every resource (narratives, encounters, extensions) costs about twice as much.
READ = {
    "Patient": ("id", "gender", "birthDate", "deceased*"),
    "Observation": ("id", "status", "code", "subject", "effective*", "value*", "referenceRange", "component",
                    "dataAbsentReason"),
    "Condition": ("id", "clinicalStatus", "verificationStatus", "code", "subject", "onset*", "abatement*"),
    "Procedure": ("id", "status", "code", "subject", "performed*"),
    "MedicationStatement": ("id", "status", "medication*", "subject", "effective*", "dosage"),
    "MedicationRequest": ("id", "status", "intent", "medication*", "subject", "authoredOn", "dosageInstruction",
                          "dispenseRequest"),
    "MedicationAdministration": ("id", "status", "medication*", "subject", "effective*", "dosage"),
    "Immunization": ("id", "status", "vaccineCode", "patient", "occurrence*"),
    "Medication": ("id", "code"),
}
_READ_EXACT = {rt: frozenset(k for k in keys if not k.endswith("*")) for rt, keys in READ.items()}
_READ_CHOICE = {rt: tuple(k[:-1] for k in keys if k.endswith("*")) for rt, keys in READ.items()}


_KEEP: dict = {}  # (resource type, JSON name) -> whether the adapter reads it


def _keep(rt: str, k: str) -> bool:
    key = k[1:] if k.startswith("_") else k  # a primitive's extension (_birthDate) goes with it
    choice = _READ_CHOICE.get(rt, ())
    keep = key in _READ_EXACT[rt] or any(key.startswith(c) and key[len(c):len(c) + 1].isupper() for c in choice)
    if len(_KEEP) < 10_000:
        _KEEP[(rt, k)] = keep
    return keep


def _read_part(res: dict) -> dict:
    rt = res.get("resourceType")
    if not isinstance(rt, str) or rt not in _READ_EXACT:
        return res
    out = {"resourceType": rt}
    for k, v in res.items():
        keep = _KEEP.get((rt, k))
        if keep is None:
            keep = _keep(rt, k)
        if keep:
            out[k] = v
    return out


def _validation_error(res: dict, exc: Exception) -> PatientError:
    errs = getattr(exc, "errors", None)
    if callable(errs):
        try:
            e = exc.errors()[0]
            where = ".".join(str(p) for p in e.get("loc", ()))
            msg = f"{where}: {e.get('msg')}" if where else str(e.get("msg"))
        except Exception:
            msg = str(exc).splitlines()[0]
    else:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return PatientError(f"{_ref(res)} does not validate as FHIR R4 ({msg[:300]})")


def _validate_full(res: dict):
    """The resource's read part validated by its fhir.resources model in one call (every nested
    element validated again, each time): the reference `_validate` must agree with."""
    try:
        return model(res.get("resourceType")).model_validate(_read_part(res))
    except Exception as exc:  # pydantic's ValidationError, or a bad resourceType
        raise _validation_error(res, exc) from None


# Validation by parts, each distinct part once. A fhir.resources model validates a nested element
# (a CodeableConcept, a Reference, a Quantity) by its own model, with nothing from its parent
# (the library's checks are per model: required elements, choice types, nulls in lists), and
# accepts an already validated instance of that model as it is. So the complex elements of a
# resource are validated one by one, each distinct element (by its JSON value and model) once per
# process, and the resource's model then validates its own elements and primitives around those
# instances: the same checks as validating the whole resource, without repeating the thousands of
# identical codings and patient references of an export. A resource that fails is validated again
# whole, so that its error names the element exactly as `_validate_full` does.
_ELEMENT_CACHE: dict = {}
_ELEMENT_CACHE_MAX = 20_000  # elements kept, and at most this many characters of their JSON (memory stays bounded)
_ELEMENT_CACHE_CHARS = 4_000_000
_ELEMENT_MAX_CHARS = 2_000  # a larger element is validated, not kept
_cached_chars = 0
_COMPLEX: dict = {}  # model class -> {JSON name: (element model class, is a list)}


def _complex_fields(klass) -> dict:
    out = _COMPLEX.get(klass)
    if out is None:
        import typing

        from fhir_core.types import FhirElementOrResourceBase

        out = {}
        for name, f in klass.model_fields.items():
            t, is_list = f.annotation, False
            while typing.get_origin(t) is not None:  # Optional[...], List[...], Annotated[...]
                if typing.get_origin(t) in (list, typing.List):
                    is_list = True
                args = [a for a in typing.get_args(t) if a is not type(None)]
                if not args:
                    break
                t = args[0]
            if isinstance(t, type) and hasattr(t, "get_model_klass") and not issubclass(t, FhirElementOrResourceBase):
                out[f.alias or name] = (t.get_model_klass(), is_list)
        _COMPLEX[klass] = out
    return out


def _with_parts(klass, data: dict) -> dict:
    """data with each complex element (dict) replaced by its validated model instance; anything
    else (primitives, nulls, values of a wrong type) is left for klass to judge."""
    fields = _complex_fields(klass)
    out = None
    for k, v in data.items():
        spec = fields.get(k)
        if spec is None:
            continue
        sub, is_list = spec
        if is_list:
            if not isinstance(v, list) or not any(isinstance(x, dict) for x in v):
                continue
            nv = [_element(sub, x) if isinstance(x, dict) else x for x in v]
        elif isinstance(v, dict):
            nv = _element(sub, v)
        else:
            continue
        if out is None:
            out = dict(data)
        out[k] = nv
    return data if out is None else out


def _element(klass, value: dict):
    text = repr(value)  # JSON values: repr tells 1, 1.0, true and "1" apart
    if len(text) > _ELEMENT_MAX_CHARS:  # a large element: validated, not kept
        return klass.model_validate(_with_parts(klass, value))
    key = (klass, text)
    hit = _ELEMENT_CACHE.get(key)
    if hit is None:
        global _cached_chars
        hit = klass.model_validate(_with_parts(klass, value))
        if len(_ELEMENT_CACHE) >= _ELEMENT_CACHE_MAX or _cached_chars >= _ELEMENT_CACHE_CHARS:
            _ELEMENT_CACHE.clear()  # bounded memory: start again
            _cached_chars = 0
        _ELEMENT_CACHE[key] = hit
        _cached_chars += len(text)
    return hit


def _validate(res: dict):
    """The resource's read part validated with its fhir.resources model (by parts, see above)."""
    part = _read_part(res)
    try:
        klass = model(res.get("resourceType"))
        return klass.model_validate(_with_parts(klass, part))
    except Exception:
        return _validate_full(res)  # raises the error as a whole validation words it


def _codings(concept) -> list[dict]:
    """A raw CodeableConcept's codings (for the pre-filter on unvalidated dicts)."""
    if not isinstance(concept, dict):
        return []
    c = concept.get("coding")
    return [x for x in c if isinstance(x, dict)] if isinstance(c, list) else []


def _model_codings(concept) -> list[dict]:
    if concept is None or not concept.coding:
        return []
    return [{"system": c.system, "code": c.code, "display": c.display} for c in concept.coding]


def _iso(value) -> tuple[Optional[str], Optional[str]]:
    """(ISO calendar date, why not): the date as written in a FHIR date/dateTime/instant, in the
    time zone it was written in (the patient's local calendar day); a partial date has none."""
    if value is None:
        return None, "missing"
    if isinstance(value, _dt.datetime):
        return value.date().isoformat(), None
    if isinstance(value, _dt.date):
        return value.isoformat(), None
    s = str(value)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}(T.*)?", s):
        return s[:10], None
    return None, f"'{s}' is not a full calendar date"


def _number(d: Decimal):
    """A JSON number for a Decimal: an int when integral, else the nearest float."""
    if not d.is_finite():
        return str(d)
    if d == d.to_integral_value() and abs(d) < 10 ** 15:
        return int(d)
    f = float(d)
    return f if f not in (float("inf"), float("-inf")) else str(d)  # beyond a float: unusable, never inf


def _quantity_unit(q) -> tuple[Optional[str], Optional[str]]:
    """(unit, warning): the UCUM code when the quantity is coded in UCUM, else its unit text."""
    if q.code and (q.system in (None, "http://unitsofmeasure.org")):
        return q.code, None if q.system else "unit code without a system read as UCUM"
    if q.unit:
        return q.unit, f"unit '{q.unit}' is not coded in UCUM; read as written"
    return None, None


class Converter:
    def __init__(self, codes: CodeMap):
        self.codes = codes

    # ------------------------------------------------------------------ one patient
    def convert(self, resources: list[dict], anchors: Optional[dict] = None, pid: Optional[str] = None) -> dict:
        """A format-1 record for one patient's resources (Patient first or anywhere). Raises
        PatientError when the patient cannot be converted."""
        warnings: list[str] = []
        ignored_types: Counter = Counter()
        unmatched: dict = {}
        record: dict = {"format": 1, "id": pid}
        observations, conditions, treatments, procedures = [], [], [], []
        medications = {}
        patients = [r for r in resources if isinstance(r, dict) and r.get("resourceType") == "Patient"]
        for r in resources:
            if isinstance(r, dict) and r.get("resourceType") == "Medication":
                med = _validate(r)
                for key in (r.get("id"), r.get("_fullUrl")):
                    if key:
                        medications[key] = med
        if len(patients) > 1:
            raise PatientError(f"{len(patients)} Patient resources for one patient")
        if patients:
            p = _validate(patients[0])
            record["id"] = p.id or pid
            if p.gender in ("male", "female"):
                record["sex"] = p.gender
            elif p.gender is not None:
                warnings.append(f"{WARN}Patient.gender '{p.gender}' is not a sex at birth; sex is missing")
            if p.birthDate is not None:
                d, why = _iso(p.birthDate)
                if d:
                    record["birth_date"] = d
                else:
                    warnings.append(f"{WARN}Patient.birthDate {why}; age is missing")
            if p.deceasedBoolean or p.deceasedDateTime is not None:
                warnings.append(f"{WARN}the Patient is recorded as deceased")
        else:
            warnings.append(f"{WARN}no Patient resource: sex and birth date are missing")
        if not isinstance(record.get("id"), str) or not record["id"]:
            raise PatientError("the patient has no id (Patient.id)")
        for r in resources:
            if not isinstance(r, dict):
                raise PatientError("a resource is not a JSON object")
            rt = r.get("resourceType")
            if rt in ("Patient", "Medication"):
                continue
            if rt == "Observation":
                self._observation(r, observations, warnings, unmatched)
            elif rt == "Condition":
                self._condition(r, conditions, warnings, unmatched)
            elif rt == "Procedure":
                self._procedure(r, procedures, warnings, unmatched)
            elif rt in ("MedicationStatement", "MedicationRequest", "MedicationAdministration"):
                self._medication(r, treatments, warnings, unmatched, medications)
            elif rt == "Immunization":
                self._immunization(r, treatments, warnings, unmatched)
            elif rt == "_Unassigned":  # counted by the Bundle reader
                warnings.append(f"{WARN}{r.get('count')} resources of the Bundle belong to no patient of it; not read")
            else:
                ignored_types[str(rt)] += 1
        observations = [x[2] for x in sorted(observations, key=lambda t: t[:2])]
        if anchors:
            record["anchors"] = dict(anchors)
        for key, items in (("observations", observations), ("conditions", conditions),
                           ("treatments", treatments), ("procedures", procedures)):
            if items:
                record[key] = items
        for rt, codes in unmatched.items():
            shown = sorted(codes)
            more = f" and {len(shown) - 8} more" if len(shown) > 8 else ""
            n = sum(codes.values())
            warnings.append(f"{WARN}{n} {rt} resource{'s' if n != 1 else ''} with codes the trial does not declare, "
                            f"not read: " + ", ".join(f"{s} {c}" for s, c in shown[:8]) + more)
        if ignored_types:
            warnings.append(f"{WARN}resource types not read: " + ", ".join(
                f"{t} ×{n}" for t, n in sorted(ignored_types.items())))
        if warnings:
            record["warnings"] = warnings
        return record

    # ------------------------------------------------------------------ helpers
    def _match(self, kind: str, rt: str, concept_raw, res: dict, unmatched: dict) -> list[str]:
        names, miss = self.codes.names(kind, _codings(concept_raw))
        if not names:
            key = tuple(miss[:1]) or (("text", (concept_raw or {}).get("text", "no code") if isinstance(concept_raw, dict)
                                       else "no code"),)
            unmatched.setdefault(rt, Counter())[key[0]] += 1
        return names

    @staticmethod
    def _skip_status(res, status: Optional[str], bad: tuple, warnings: list, what: str) -> bool:
        if status in bad:
            warnings.append(f"{WARN}{_ref(res)} ({what}) has status {status}: not read")
            return True
        return False

    # ------------------------------------------------------------------ Observation
    def _observation(self, r: dict, out: list, warnings: list, unmatched: dict):
        names, _ = self.codes.names("observation", _codings(r.get("code")))
        comps = []
        for c in r.get("component") or ():
            if isinstance(c, dict):
                cn, _ = self.codes.names("observation", _codings(c.get("code")))
                if cn:
                    comps.append(cn)
        if not names and not comps:
            self._match("observation", "Observation", r.get("code"), r, unmatched)  # counts it as unmatched
            return
        o = _validate(r)
        if self._skip_status(r, o.status, ("entered-in-error", "cancelled"), warnings, ", ".join(names or comps[0])):
            return
        date, why = self._effective(o)
        eff = o.effectiveDateTime if o.effectiveDateTime is not None else o.effectiveInstant
        # readings of one day are listed in time order, so that the last on a date is the latest
        self._instant = eff.timestamp() if isinstance(eff, _dt.datetime) and eff.tzinfo is not None else float("-inf")
        if why:
            warnings.append(f"{WARN}{_ref(r)} ({', '.join(names or comps[0])}): effective date {why}; "
                            "read as undated")
        for name in names:
            self._obs_value(r, name, o, date, out, warnings, o.referenceRange)
        for comp in o.component or ():
            cn, _ = self.codes.names("observation", _model_codings(comp.code))
            for name in cn:
                self._obs_value(r, name, comp, date, out, warnings, comp.referenceRange)

    @staticmethod
    def _effective(o):
        if o.effectiveDateTime is not None:
            return _iso(o.effectiveDateTime)
        if o.effectiveInstant is not None:
            return _iso(o.effectiveInstant)
        if o.effectivePeriod is not None:
            return _iso(o.effectivePeriod.start or o.effectivePeriod.end)
        if getattr(o, "effectiveTiming", None) is not None:
            return None, "given as a Timing, which is not read"
        return None, "missing"

    def _obs_value(self, r, name, o, date, out, warnings, ranges):
        kind, unit = self.codes.observations.get(name, ("quantity", None))
        item: dict = {"code": name}
        where = f"{_ref(r)} ({name})"
        if o.valueQuantity is not None:
            q = o.valueQuantity
            if q.value is None:
                warnings.append(f"{WARN}{where}: valueQuantity has no value; not read")
                return
            if q.comparator:
                item["value"] = f"{q.comparator}{q.value}"
                warnings.append(f"{WARN}{where}: value {q.comparator}{q.value} is a bound, not a value; unusable")
            else:
                item["value"] = _number(q.value)
            u, w = _quantity_unit(q)
            if w:
                warnings.append(f"{WARN}{where}: {w}")
            if u is not None:
                item["unit"] = u
        elif o.valueCodeableConcept is not None or o.valueString is not None:
            v = None
            if o.valueCodeableConcept is not None:
                for c in _model_codings(o.valueCodeableConcept):
                    v = v or _QUAL.get(c["code"] or "")
                text = (o.valueCodeableConcept.text or "").strip().lower()
            else:
                text = o.valueString.strip().lower()
            v = v or _QUAL_TEXT.get(text)
            if v is None or kind != "qualitative":
                shown = text or ", ".join(c["code"] or "?" for c in _model_codings(o.valueCodeableConcept))
                warnings.append(f"{WARN}{where}: coded value '{shown[:60]}' is not a result this concept reads; unusable")
                item["value"] = shown[:60] or "?"
            else:
                item["value"] = v
        elif getattr(o, "valueInteger", None) is not None:
            item["value"] = int(o.valueInteger)
            if unit not in (None, "1"):
                warnings.append(f"{WARN}{where}: valueInteger without a unit")
        elif o.dataAbsentReason is not None:
            reason = ", ".join(c["code"] or "?" for c in _model_codings(o.dataAbsentReason)) or "given"
            warnings.append(f"{WARN}{where}: no value (dataAbsentReason {reason}); not read")
            return
        else:
            warnings.append(f"{WARN}{where}: no value of a type the adapter reads; not read")
            return
        if date:
            item["date"] = date
        for rr in ranges or ():
            for key, q in (("uln", rr.high), ("lln", rr.low)):
                if q is None or q.value is None or key in item:
                    continue
                ru, _ = _quantity_unit(q)
                if ru is not None and ru != item.get("unit"):
                    warnings.append(f"{WARN}{where}: referenceRange {'high' if key == 'uln' else 'low'} in {ru}, "
                                    f"not in the value's unit {item.get('unit')}; not read")
                    continue
                item[key] = _number(q.value)
        out.append(((item.get("date", ""), self._instant), len(out), item))

    # ------------------------------------------------------------------ Condition
    def _condition(self, r: dict, out: list, warnings: list, unmatched: dict):
        names = self._match("condition", "Condition", r.get("code"), r, unmatched)
        if not names:
            return
        c = _validate(r)
        what = ", ".join(names)
        ver = _model_codings(c.verificationStatus)
        vcode = ver[0]["code"] if ver else None
        if vcode in ("entered-in-error", "refuted"):
            warnings.append(f"{WARN}{_ref(r)} ({what}) has verification status {vcode}: not read")
            return
        if vcode in ("unconfirmed", "provisional", "differential"):
            warnings.append(f"{WARN}{_ref(r)} ({what}) has verification status {vcode}: read as recorded")
        clin = _model_codings(c.clinicalStatus)
        ccode = clin[0]["code"] if clin else None
        item_base: dict = {}
        if ccode in _ACTIVE:
            item_base["status"] = "active"
        elif ccode in _RESOLVED:
            item_base["status"] = "resolved"
        else:
            warnings.append(f"{WARN}{_ref(r)} ({what}): clinical status {ccode or 'missing'}; status is unknown")
        onset, why = self._when(c, "onset")
        if onset:
            item_base["onset"] = onset
        else:
            warnings.append(f"{WARN}{_ref(r)} ({what}): onset {why}")
        end, why = self._when(c, "abatement")
        if end:
            item_base["end"] = end
        elif why != "missing":
            warnings.append(f"{WARN}{_ref(r)} ({what}): abatement {why}")
        for name in names:
            out.append({"code": name, **item_base})

    @staticmethod
    def _when(c, prefix: str):
        v = getattr(c, prefix + "DateTime")
        if v is not None:
            return _iso(v)
        p = getattr(c, prefix + "Period")
        if p is not None:
            return _iso(p.start if prefix == "onset" else (p.end or p.start))
        for kind in ("Age", "Range", "String"):
            if getattr(c, prefix + kind, None) is not None:
                return None, f"given as {kind.lower()}, which is not read"
        return None, "missing"

    # ------------------------------------------------------------------ Procedure
    def _procedure(self, r: dict, out: list, warnings: list, unmatched: dict):
        names = self._match("procedure", "Procedure", r.get("code"), r, unmatched)
        if not names:
            return
        p = _validate(r)
        what = ", ".join(names)
        if self._skip_status(r, p.status, ("entered-in-error", "not-done", "preparation"), warnings, what):
            return
        if p.performedDateTime is not None:
            d, why = _iso(p.performedDateTime)
        elif p.performedPeriod is not None:  # the date of the last session (radiotherapy: last fraction)
            d, why = _iso(p.performedPeriod.end or p.performedPeriod.start)
        else:
            d, why = None, "missing"
        item_base = {}
        if d:
            item_base["date"] = d
        else:
            warnings.append(f"{WARN}{_ref(r)} ({what}): performed date {why}")
        for name in names:
            out.append({"code": name, **item_base})

    # ------------------------------------------------------------------ Medication*
    def _medication(self, r: dict, out: list, warnings: list, unmatched: dict, medications: dict):
        rt = r["resourceType"]
        concept = r.get("medicationCodeableConcept")
        med = None
        ref = (r.get("medicationReference") or {}).get("reference") if isinstance(r.get("medicationReference"), dict) else None
        if concept is None and ref:
            key = ref.split("/")[-1] if not ref.startswith("urn:") else ref
            med = medications.get(key) or medications.get(ref)
            if med is None:
                warnings.append(f"{WARN}{_ref(r)}: medication {ref} is not in the patient's data; not read")
                return
            concept = med.code.model_dump(mode="json", exclude_none=True) if med.code is not None else None
        classes = self._match("class", rt, concept, r, unmatched)
        if not classes:
            return
        m = _validate(r)
        codings = _model_codings(m.medicationCodeableConcept) if m.medicationCodeableConcept else _codings(concept)
        name = _ingredient(codings, (concept or {}).get("text") if isinstance(concept, dict) else None)
        what = f"{name}: {', '.join(classes)}"
        if self._skip_status(r, m.status, ("entered-in-error", "not-taken", "cancelled", "draft", "not-done"),
                             warnings, what):
            return
        item: dict = {"code": name, "classes": classes}
        start = end = None
        ongoing = m.status in ("active", "intended", "on-hold", "in-progress")
        dosages = []
        if rt == "MedicationStatement":
            start, end = self._period(m.effectiveDateTime, m.effectivePeriod)
            dosages = m.dosage or []
        elif rt == "MedicationAdministration":
            start, end = self._period(m.effectiveDateTime, m.effectivePeriod)
            ongoing = m.status == "in-progress"
        else:  # MedicationRequest: the dosage's bounds, else the dispense validity, else authoredOn
            dosages = m.dosageInstruction or []
            bounds = None
            for d in dosages:
                if d.timing is not None and d.timing.repeat is not None and d.timing.repeat.boundsPeriod is not None:
                    bounds = d.timing.repeat.boundsPeriod
                    break
            if bounds is None and m.dispenseRequest is not None and m.dispenseRequest.validityPeriod is not None:
                bounds = m.dispenseRequest.validityPeriod
            if bounds is not None:
                start, end = self._period(None, bounds)
            else:
                start = _iso(m.authoredOn)[0] if m.authoredOn is not None else None
                warnings.append(f"{WARN}{_ref(r)} ({what}): no period; started on authoredOn "
                                f"{start or '(missing)'}, " + ("ongoing (status active)" if ongoing else "end unknown"))
        if start:
            item["start"] = start
        else:
            warnings.append(f"{WARN}{_ref(r)} ({what}): start date missing")
        if end:
            item["end"] = end
        elif ongoing:
            item["end"] = None
        dose, route, w = _daily_dose(dosages)
        if dose is not None:
            item["daily_dose"] = dose
        if route is not None:
            item["route"] = route
        if w:
            warnings.append(f"{WARN}{_ref(r)} ({what}): {w}")
        out.append(item)

    @staticmethod
    def _period(dt, period):
        if dt is not None:
            d = _iso(dt)[0]
            return d, d
        if period is not None:
            return _iso(period.start)[0] if period.start else None, _iso(period.end)[0] if period.end else None
        return None, None

    # ------------------------------------------------------------------ Immunization
    def _immunization(self, r: dict, out: list, warnings: list, unmatched: dict):
        classes = self._match("class", "Immunization", r.get("vaccineCode"), r, unmatched)
        if not classes:
            return
        im = _validate(r)
        codings = _model_codings(im.vaccineCode)
        name = _ingredient(codings, im.vaccineCode.text, vaccine=True)
        what = f"{name}: {', '.join(classes)}"
        if self._skip_status(r, im.status, ("entered-in-error", "not-done"), warnings, what):
            return
        item: dict = {"code": name, "classes": classes}
        d = _iso(im.occurrenceDateTime)[0] if im.occurrenceDateTime is not None else None
        if d:
            item["start"] = item["end"] = d
        else:
            warnings.append(f"{WARN}{_ref(r)} ({what}): occurrence date missing")
        out.append(item)


def _ingredient(codings: list, text: Optional[str], vaccine: bool = False) -> str:
    """A treatment's code: the ingredient name from the coding's display ("predniSONE 5 MG Oral
    Tablet" -> "prednisone"), lower case; the first code when nothing is displayed."""
    for c in codings:
        disp = c.get("display") or ""
        if disp:
            if vaccine:
                return disp.strip().lower()[:80]
            words = []
            for w in disp.split():
                if re.match(r"^[\d.]", w) or w in ("/", "[", "("):
                    break
                words.append(w)
            if words:
                return " ".join(words).lower()[:80]
    if text:
        return text.strip().lower()[:80]
    for c in codings:
        if c.get("code"):
            return f"{c.get('system') or ''}|{c['code']}"[-80:]
    return "unnamed medication"


def _daily_dose(dosages) -> tuple[Optional[dict], Optional[str], Optional[str]]:
    """(daily dose, route, why the dose is not given) from FHIR Dosage elements."""
    route = None
    why = None
    for d in dosages:
        if d.route is not None and route is None:
            texts = [x["display"] or "" for x in _model_codings(d.route)] + [d.route.text or ""]
            low = " ".join(texts).lower()
            for key, val in _ROUTES:
                if key in low:
                    route = val
                    break
            else:
                why = f"route '{low.strip()[:40]}' not read"
        for dr in d.doseAndRate or ():
            q = dr.doseQuantity
            if q is None or q.value is None:
                continue
            unit = q.code or q.unit
            if unit not in _MASS_UNITS:
                return None, route, f"dose in '{unit}', not a mass; daily dose unknown"
            rep = d.timing.repeat if d.timing is not None else None
            if rep is None or rep.period is None:
                if d.timing is not None and d.timing.code is not None:
                    return None, route, "dose timing given only as a code; daily dose unknown"
                return None, route, "dose without a frequency; daily dose unknown"
            days = _PERIOD_DAYS.get(rep.periodUnit or "")
            if days is None or rep.period == 0:
                return None, route, f"dose period in '{rep.periodUnit}'; daily dose unknown"
            freq = Decimal(rep.frequency or 1)
            per_day = q.value * freq / (Decimal(rep.period) * days)
            return {"value": _number(per_day), "unit": "ug" if unit == "mcg" else unit}, route, why
    return None, route, why


def patient_key(res: dict) -> Optional[str]:
    """The patient a resource belongs to: its subject (or patient) reference, as written."""
    if res.get("resourceType") == "Patient":
        return None
    f = res.get(PATIENT_REF_FIELD.get(res.get("resourceType"), "subject"))
    if isinstance(f, dict) and isinstance(f.get("reference"), str):
        return f["reference"]
    return None


def error_result(pid: Optional[str], message: str) -> dict:
    return {"format": 1, "patient_id": pid, "status": "error", "error": message}
