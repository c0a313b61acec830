"""Data cases of the example trials (examples/<trial>/cases/, format in tests/cases/README.md):
each record's outcomes per criterion, written from the example's protocol text.

Every example trial under ``examples/<name>/`` that has a ``cases/`` directory is compiled once,
and every case in it is evaluated with the compiled module (``base`` names a record in that
example's ``cases/_base/``). Besides ``outcomes``, ``status``, ``reason_contains`` and
``missing_*``, a case may give ``expect.criteria`` (outcome per rule id) and ``expect.cohorts``
(the status per cohort id of a trial that declares cohorts). The same layout serves any rules
directory: ``tests/lang_trial/`` holds a small trial that exercises language constructs at
their edges.
"""

import json
import types
from pathlib import Path

import pytest

from conftest import ROOT
from tools.datacases import check_case, load_cases

SUITES = sorted(p.parent for p in (ROOT / "examples").glob("*/cases")) + [
    p.parent for p in [ROOT / "tests" / "lang_trial" / "cases"] if p.is_dir()]
CASES = [(s, name, case, record) for s in SUITES for name, case, record in load_cases(s / "cases")]
_MODULES: dict = {}


def _module(rules: Path):
    if rules not in _MODULES:
        from compiler.pipeline import compile_rules

        res = compile_rules(rules)
        assert res.ok, "\n".join(d.format(res.sources) for d in res.diagnostics)
        mod = types.ModuleType(f"example_{rules.name}")
        exec(compile(res.python, f"<{rules.name}>", "exec"), mod.__dict__)
        _MODULES[rules] = mod
    return _MODULES[rules]


def test_every_example_with_cases_is_loaded():
    assert ROOT / "examples" / "hf_trial" in SUITES
    assert sum(1 for c in CASES if c[0].name == "hf_trial") >= 40
    for s in SUITES:
        assert any(c[0] == s for c in CASES), f"{s} has no cases"


@pytest.mark.parametrize("rules,name,case,record", CASES, ids=[f"{c[0].name}/{c[1]}" for c in CASES])
def test_example_case(rules, name, case, record):
    why = check_case(_module(rules), case, record)
    assert why is None, f"{rules.name} [{case.get('ref')}] {case.get('name')}\n  quote: {case.get('quote')}\n  {why}"


@pytest.mark.parametrize("rules", SUITES, ids=[s.name for s in SUITES])
def test_ir_interpreter_agrees_on_every_case(rules):
    """The independent IR interpreter gives the same outcomes, status and cohort statuses."""
    from compiler.pipeline import compile_rules
    from ir_interpreter import evaluate as interpret

    program = compile_rules(rules, emit=False).program
    mod = _module(rules)
    for name, _case, record in load_cases(rules / "cases"):
        a = mod.evaluate(record)
        b = interpret(program, record)
        if a["status"] == "error":
            assert b["status"] == "error", name
            continue
        assert [c["outcome"] for c in a["criteria"]] == [c["outcome"] for c in b["criteria"]], name
        assert a["status"] == b["status"], name
        assert a.get("cohorts") == b.get("cohorts"), name


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
