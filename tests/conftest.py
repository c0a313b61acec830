import copy
import json
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
    """A case's record: its `record`, or its `base` with `drop`, `set` and `add` applied."""
    if "base" not in case:
        return copy.deepcopy(case["record"])
    rec = json.loads((base_dir / f"{case['base']}.json").read_text(encoding="utf-8"))
    drop = case.get("drop", {})
    for field in ("observations", "conditions", "treatments", "procedures"):
        codes = set(drop.get(field, ()))
        if codes:
            rec[field] = [x for x in rec.get(field, []) if x.get("code") not in codes]
    for field in ("facts", "anchors"):
        for k in drop.get(field, ()):
            rec.get(field, {}).pop(k, None)
    for k in drop.get("fields", ()):
        rec.pop(k, None)
    for k, v in case.get("set", {}).items():
        rec[k] = copy.deepcopy(v)
    add = case.get("add", {})
    for field in ("observations", "conditions", "treatments", "procedures"):
        if field in add:
            rec.setdefault(field, [])
            rec[field] = list(rec[field]) + copy.deepcopy(add[field])
    for field in ("facts", "anchors"):
        if field in add:
            rec.setdefault(field, {})
            rec[field].update(copy.deepcopy(add[field]))
    return rec
