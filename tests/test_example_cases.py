"""Data cases of the example trials (examples/<trial>/cases/, format in tests/cases/README.md):
each record's outcomes per criterion, written from the example's protocol text."""

import types
from pathlib import Path

import pytest

from conftest import ROOT
from tools.datacases import check_case, load_cases

EXAMPLES = sorted(p.parent.parent for p in (ROOT / "examples").glob("*/cases/_base"))
CASES = [(ex, name, case, record) for ex in EXAMPLES for name, case, record in load_cases(ex / "cases")]
_MODULES: dict = {}


def _module(example: Path):
    if example not in _MODULES:
        from compiler.pipeline import compile_rules

        res = compile_rules(example)
        assert res.ok, "\n".join(d.format(res.sources) for d in res.diagnostics)
        mod = types.ModuleType(f"example_{example.name}")
        exec(compile(res.python, f"<{example.name}>", "exec"), mod.__dict__)
        _MODULES[example] = mod
    return _MODULES[example]


def test_every_example_with_cases_is_loaded():
    assert ROOT / "examples" / "hf_trial" in EXAMPLES
    assert sum(1 for c in CASES if c[0].name == "hf_trial") >= 40


@pytest.mark.parametrize("example,name,case,record", CASES, ids=[f"{c[0].name}/{c[1]}" for c in CASES])
def test_example_case(example, name, case, record):
    why = check_case(_module(example), case, record)
    assert why is None, f"[{case.get('ref')}] {case.get('name')}\n  quote: {case.get('quote')}\n  {why}"
