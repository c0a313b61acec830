"""Reasons name the vocabulary's elements by their labels; `missing` and warnings keep codes
(compiler/labels.py, docs/records.md)."""

import copy
import json
import re
import sys
from pathlib import Path

from compiler.labels import labelled

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.cohort import generate  # noqa: E402


def _patient(name="patient.json"):
    return json.loads((ROOT / "examples" / "sm3321" / name).read_text(encoding="utf-8"))


def _by_id(result):
    return {c["id"]: c for c in result["criteria"]}


def test_labelled_replaces_codes_only():
    labels = {"hbsag": "hepatitis B surface antigen (HBsAg)", "g": "gram thing", "first": "x"}
    assert labelled("latest hbsag on or before first_dose is positive", labels) == \
        "latest hepatitis B surface antigen (HBsAg) on or before first_dose is positive"
    # units and parts of longer names stay as they are
    assert labelled("90 g/L", labels) == "90 g/L"
    assert labelled("hbsag_x within 7 days", labels) == "hbsag_x within 7 days"
    assert labelled("", labels) == ""


def test_observation_reason_uses_label_missing_keeps_code(sm3321):
    low = _by_id(sm3321.evaluate(_patient("patient_low_platelets.json")))
    assert low["platelets"]["outcome"] == "fail"
    assert low["platelets"]["reason"].startswith("platelet count 85 ×10⁹/L on 2026-01-12 < 100 ×10⁹/L")
    missing = _by_id(sm3321.evaluate(_patient("patient_missing_data.json")))
    hb = missing["hemoglobin"]
    assert hb["outcome"] == "unknown" and hb["missing"] == ["hemoglobin"]
    assert hb["reason"] == "no hemoglobin within 7 days before first_dose"
    ast = missing["ast_limit"]
    assert ast["missing"] == ["ast"]
    assert ast["reason"].startswith("aspartate aminotransferase (AST) 30 U/L on 2026-01-12 has no ULN")


def test_fact_condition_and_class_reasons_use_labels(sm3321):
    rec = _patient()
    rec["facts"].pop("informed_consent")
    rec["facts"]["fertile"] = False
    rec["conditions"].append({"code": "sm3321_allergy", "status": "active", "onset": "2020-01-01"})
    got = _by_id(sm3321.evaluate(rec))
    assert got["informed_consent"]["reason"] == "“Informed consent signed”: not recorded"
    assert got["informed_consent"]["missing"] == ["informed_consent"]
    assert got["pregnancy_test_and_contraception"]["reason"].startswith("“Sexually mature and biologically fertile”: no")
    allergy = got["sm3321_allergy"]
    assert allergy["outcome"] == "fail"
    assert allergy["reason"].startswith("allergy to SM3321 or its formulation components (active, onset 2020-01-01)")
    assert "sm3321_allergy" not in allergy["reason"]
    recist = got["evaluable_lesion"]["reason"]
    assert recist.startswith("evaluable lesions (RECIST v1.1) ") and "recist_evaluable_lesions" not in recist


def test_unusable_fact_value_is_said_without_code(sm3321):
    rec = _patient()
    rec["facts"]["informed_consent"] = "yes"
    got = _by_id(sm3321.evaluate(rec))["informed_consent"]
    assert got["outcome"] == "unknown" and got["missing"] == ["informed_consent"]
    assert got["reason"] == "“Informed consent signed”: unusable (recorded as \"yes\", not true or false)"


def test_no_relabelled_code_in_any_reason_of_a_cohort(sm3321):
    """Over a varied cohort (with broken records), no reason names a code whose label differs
    from it; outcomes are unaffected (the differential tests compare them with the interpreter)."""
    labels = dict(sm3321._LABELS)
    labels.update(sm3321._FACT_LABELS)
    # a code the label itself spells ("weight" in "body weight") may appear as a word of it
    codes = {c for c, lab in labels.items() if not re.search(r"\b%s\b" % re.escape(c), lab, re.I)}
    assert {"recist_evaluable_lesions", "sm3321_allergy", "standard_therapy_exhausted", "qtcf"} <= codes
    seen = 0
    for rec in generate(200, seed=11, corrupt_rate=0.0):
        res = sm3321.evaluate(copy.deepcopy(rec))
        for c in res.get("criteria", ()):
            words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", c["reason"]))
            assert not words & codes, (c["id"], c["reason"])
            seen += 1
    assert seen > 200 * 40
