"""Patient records with the outcomes each example trial's protocol text demands.

Every example trial under ``examples/<name>/`` that has a ``cases/`` directory is compiled once,
and every ``cases/*.json`` in it is evaluated with the compiled module (the case format is the
one of ``tests/cases/README.md``; ``base`` names a record in that example's ``cases/_base/``).
Besides ``outcomes``, ``status``, ``reason_contains`` and ``missing_*``, a case may give
``expect.cohorts``: the status per cohort id of a trial that declares cohorts. The same
directory layout serves any rules directory: ``tests/lang_trial/`` holds a small trial that
exercises each language construct at its edges.
"""

import json
import types
from pathlib import Path

import pytest

from conftest import ROOT, build_record

ORDER = {"fail": 3, "unknown": 2, "review": 1, "pass": 0}
SUITES = sorted(p.parent for p in (ROOT / "examples").glob("*/cases")) + [ROOT / "tests" / "lang_trial"]
FILES = [p for s in SUITES for p in sorted((s / "cases").glob("*.json"))]
_MODULES = {}


def _module(rules: Path):
    if rules not in _MODULES:
        from compiler.pipeline import compile_rules

        res = compile_rules(rules)
        assert res.ok, "\n".join(d.format(res.sources) for d in res.diagnostics)
        mod = types.ModuleType(f"{rules.name}_under_test")
        exec(compile(res.python, f"<{rules.name}>", "exec"), mod.__dict__)
        _MODULES[rules] = mod
    return _MODULES[rules]


@pytest.mark.parametrize("path", FILES, ids=[f"{p.parent.parent.name}/{p.stem}" for p in FILES])
def test_example_case(path):
    rules = path.parent.parent
    case = json.loads(path.read_text(encoding="utf-8"))
    result = _module(rules).evaluate(build_record(case, path.parent / "_base"))
    expect = case["expect"]
    where = f"{rules.name} [{case.get('ref')}] {case.get('name')}\n  quote: {case.get('quote')}"
    assert result["status"] != "error", f"{where}\n  unexpected error result: {result.get('error')}"
    by_ref = {}
    for c in result["criteria"]:
        by_ref.setdefault(c["ref"], []).append(c)
    for ref, want in expect.get("outcomes", {}).items():
        rules_of = by_ref.get(ref)
        assert rules_of, f"{where}\n  no rule encodes {ref}"
        got = max((c["outcome"] for c in rules_of), key=ORDER.__getitem__)
        detail = "; ".join(f"{c['id']}: {c['outcome']} ({c['reason']})" for c in rules_of)
        assert got == want, f"{where}\n  {ref}: expected {want}, got {got}\n  {detail}"
    for cid, want in expect.get("criteria", {}).items():
        got = next(c for c in result["criteria"] if c["id"] == cid)
        assert got["outcome"] == want, f"{where}\n  {cid}: expected {want}, got {got['outcome']} ({got['reason']})"
    if "cohorts" in expect:
        got = {c["id"]: c["status"] for c in result.get("cohorts", [])}
        assert got == expect["cohorts"], f"{where}\n  cohorts: expected {expect['cohorts']}, got {got}"
    elif "cohorts" in result:
        pass
    if "status" in expect:
        bad = [f"{c['ref']} {c['id']}: {c['outcome']} ({c['reason']})" for c in result["criteria"] if c["outcome"] != "pass"]
        assert result["status"] == expect["status"], (
            f"{where}\n  status: expected {expect['status']}, got {result['status']}\n  " + "\n  ".join(bad))
    for ref, frag in expect.get("reason_contains", {}).items():
        reasons = " | ".join(c["reason"] for c in by_ref.get(ref, []))
        assert frag in reasons, f"{where}\n  {ref}: reason {reasons!r} lacks {frag!r}"
    for ref, codes in expect.get("missing_contains", {}).items():
        missing = {m for c in by_ref.get(ref, []) for m in c["missing"]}
        for code in codes:
            assert code in missing, f"{where}\n  {ref}: missing {sorted(missing)} lacks {code!r}"


def test_every_example_with_cases_has_cases():
    for s in SUITES:
        assert list((s / "cases").glob("*.json")), f"{s} has no cases"


@pytest.mark.parametrize("rules", SUITES, ids=[s.name for s in SUITES])
def test_ir_interpreter_agrees_on_every_case(rules):
    """The independent IR interpreter gives the same outcomes, status and cohort statuses."""
    from compiler.pipeline import compile_rules
    from ir_interpreter import evaluate as interpret

    program = compile_rules(rules, emit=False).program
    mod = _module(rules)
    for path in sorted((rules / "cases").glob("*.json")):
        record = build_record(json.loads(path.read_text(encoding="utf-8")), path.parent / "_base")
        a = mod.evaluate(record)
        b = interpret(program, record)
        assert [c["outcome"] for c in a["criteria"]] == [c["outcome"] for c in b["criteria"]], path.name
        assert a["status"] == b["status"], path.name
        assert a.get("cohorts") == b.get("cohorts"), path.name


def test_cohorts_field_only_for_trials_with_cohorts(tmp_path):
    """Result format 1 gains `cohorts` only where the trial declares cohorts; text output shows it."""
    from click.testing import CliRunner

    from compiler.cli import main

    hf = _module(ROOT / "examples" / "hf_trial")
    rec = json.loads((ROOT / "examples" / "hf_trial" / "patient.json").read_text(encoding="utf-8"))
    assert "cohorts" not in hf.evaluate(rec)
    base = ROOT / "examples" / "nct04431453" / "cases" / "_base" / "cohort1.json"
    res = _module(ROOT / "examples" / "nct04431453").evaluate(json.loads(base.read_text(encoding="utf-8")))
    assert list(res)[-1] == "cohorts" and [k["id"] for k in res["cohorts"]][:2] == ["cohort1", "cohorts2_4"]
    out = CliRunner().invoke(main, ["evaluate", "--rules", str(ROOT / "examples" / "nct04431453"), "--format", "text", str(base)])
    assert out.exit_code == 0, out.output
    assert "cohorts: cohort1 eligible, cohorts2_4 ineligible" in out.output
