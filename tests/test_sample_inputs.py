"""The sample inputs README uses (examples/sm3321/) are what tools/make_examples.py writes,
and give the outcomes README describes."""

import json
import subprocess
import sys

from conftest import ROOT

EX = ROOT / "examples" / "sm3321"


def test_examples_are_current():
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "make_examples.py"), "--check"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_samples_give_the_outcomes_readme_describes(sm3321):
    def result(name):
        return sm3321.evaluate(json.loads((EX / name).read_text(encoding="utf-8")))

    ok = result("patient.json")
    assert ok["status"] == "eligible" and ok["warnings"] == []
    low = result("patient_low_platelets.json")
    assert low["status"] == "ineligible"
    assert [c["id"] for c in low["criteria"] if c["outcome"] != "pass"] == ["platelets"]
    gap = result("patient_missing_data.json")
    assert gap["status"] == "indeterminate"
    assert {c["id"]: c["missing"] for c in gap["criteria"] if c["outcome"] != "pass"} == {
        "ast_limit": ["ast"], "hemoglobin": ["hemoglobin"]}
    lines = (EX / "patients.jsonl").read_text(encoding="utf-8").splitlines()
    assert [r["patient_id"] for r in sm3321.evaluate_many(json.loads(x) for x in lines)] == [
        "SCR-0001", "SCR-0002", "SCR-0003"]


def test_registry_has_a_few_hundred_records_one_result_each(sm3321):
    with open(EX / "registry.jsonl", encoding="utf-8") as f:
        results = list(sm3321.evaluate_stream(f))
    assert len(results) == 300
    assert sum(r["status"] == "error" for r in results) >= 1
