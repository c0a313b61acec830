import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "sm3321_rules"
CASES = ROOT / "tests" / "cases"


@pytest.fixture(scope="session")
def compiled():
    from compiler.pipeline import compile_rules

    res = compile_rules(RULES)
    assert res.ok, "\n".join(d.format(res.sources) for d in res.diagnostics)
    return res


@pytest.fixture(scope="session")
def sm3321(compiled):
    mod = types.ModuleType("sm3321_under_test")
    exec(compile(compiled.python, "<sm3321.py>", "exec"), mod.__dict__)
    return mod


def build_record(case: dict, base_dir: Path = CASES / "_base"):
    """A case's record: its `record`, or its `base` with `drop`, `set` and `add` applied
    (tools/datacases.py, shared with the mutation score)."""
    from tools.datacases import build_record as build

    return build(case, base_dir)
