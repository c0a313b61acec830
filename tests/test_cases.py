"""Patient records with the outcomes the protocol and the spec demand (tests/cases/README.md).

Each case names its ref and quote, so a failure reads as "the compiled rules do not say what
this sentence of the protocol says".
"""

import functools
import json
import types
from pathlib import Path

import pytest

from conftest import CASES, ROOT, RULES, build_record

ORDER = {"fail": 3, "unknown": 2, "review": 1, "pass": 0}
# SM3321's cases under tests/cases/, a suite with its own rules (a `_rules/` directory beside its
# cases, such as tests/cases/language/), and each example trial's cases (examples/*/cases/)
FILES = sorted(p for p in list(CASES.rglob("*.json")) + list((ROOT / "examples").glob("*/cases/**/*.json"))
               if p.parent.name not in ("_base", "_rules"))


def suite_of(path: Path) -> tuple[Path, Path]:
    """(rules directory, directory of base records) of a case file."""
    for d in path.parents:
        if (d / "_rules").is_dir():
            return d / "_rules", d / "_base"
        if d.name == "cases" and (d.parent / "trial.elig").is_file():
            return d.parent, d / "_base"
        if d == CASES:
            break
    return RULES, CASES / "_base"


@functools.lru_cache(maxsize=None)
def compiled_suite(rules: Path):
    from compiler.pipeline import compile_rules

    res = compile_rules(rules)
    assert res.ok, "\n".join(d.format(res.sources) for d in res.diagnostics)
    mod = types.ModuleType(f"{rules.name}_under_test")
    exec(compile(res.python, f"<{rules.name}>", "exec"), mod.__dict__)
    return res, mod


def _id(p: Path) -> str:
    rules, _ = suite_of(p)
    prefix = "" if rules == RULES else (rules.parent.name if rules.name == "_rules" else rules.name) + ":"
    return f"{prefix}{p.parent.name}/{p.stem}"


@pytest.mark.parametrize("path", FILES, ids=[_id(p) for p in FILES])
def test_case(path, sm3321):
    case = json.loads(path.read_text(encoding="utf-8"))
    rules, base = suite_of(path)
    record = build_record(case, base)
    module = sm3321 if rules == RULES else compiled_suite(rules)[1]
    result = module.evaluate(record)
    expect = case["expect"]
    where = f"[{case.get('ref')}] {case.get('name')}\n  quote: {case.get('quote')}"
    if "patient_id" in expect:
        assert result["patient_id"] == expect["patient_id"], f"{where}\n  patient_id {result['patient_id']!r}"
    if expect.get("error"):
        assert result["status"] == "error", f"{where}\n  expected an error result, got {result['status']}"
        assert result["error"]
        return
    for frag in expect.get("warnings_contain", []):
        assert any(frag in w for w in result["warnings"]), f"{where}\n  no warning contains {frag!r}: {result['warnings']}"
    assert result["status"] != "error", f"{where}\n  unexpected error result: {result.get('error')}"
    by_ref = {}
    for c in result["criteria"]:
        by_ref.setdefault(c["ref"], []).append(c)
    for ref, want in expect.get("outcomes", {}).items():
        rules = by_ref.get(ref)
        assert rules, f"{where}\n  no rule encodes {ref}"
        got = max((c["outcome"] for c in rules), key=ORDER.__getitem__)
        detail = "; ".join(f"{c['id']}: {c['outcome']} ({c['reason']})" for c in rules)
        assert got == want, f"{where}\n  {ref}: expected {want}, got {got}\n  {detail}"
    if "status" in expect:
        bad = [f"{c['ref']} {c['id']}: {c['outcome']} ({c['reason']})" for c in result["criteria"] if c["outcome"] != "pass"]
        assert result["status"] == expect["status"], f"{where}\n  status: expected {expect['status']}, got {result['status']}\n  " + "\n  ".join(bad)
    for ref, frag in expect.get("reason_contains", {}).items():
        reasons = " | ".join(c["reason"] for c in by_ref.get(ref, []))
        assert frag in reasons, f"{where}\n  {ref}: reason {reasons!r} lacks {frag!r}"
    for ref, codes in expect.get("missing_equals", {}).items():
        missing = [m for c in by_ref.get(ref, []) for m in c["missing"]]
        assert sorted(set(missing)) == sorted(codes), f"{where}\n  {ref}: missing {missing}, not exactly {codes}"
    for ref, codes in expect.get("missing_contains", {}).items():
        missing = {m for c in by_ref.get(ref, []) for m in c["missing"]}
        for code in codes:
            assert code in missing, f"{where}\n  {ref}: missing {sorted(missing)} lacks {code!r}"
