"""Patient records with the outcomes the protocol and the spec demand (tests/cases/README.md).

Each case names its ref and quote, so a failure reads as "the compiled rules do not say what
this sentence of the protocol says".
"""

import functools
import json
import types
from pathlib import Path

import pytest

from conftest import CASES, RULES, build_record
from tools.datacases import check_case

# SM3321's cases under tests/cases/, and suites with their own rules (a `_rules/` directory beside
# their cases, such as tests/cases/language/); example trials' cases run in test_example_cases.py
FILES = sorted(p for p in CASES.rglob("*.json") if p.parent.name not in ("_base", "_rules"))


def suite_of(path: Path) -> tuple[Path, Path]:
    """(rules directory, directory of base records) of a case file."""
    for d in path.parents:
        if (d / "_rules").is_dir():
            return d / "_rules", d / "_base"
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
    prefix = "" if rules == RULES else rules.parent.name + ":"
    return f"{prefix}{p.parent.name}/{p.stem}"


@pytest.mark.parametrize("path", FILES, ids=[_id(p) for p in FILES])
def test_case(path, sm3321):
    case = json.loads(path.read_text(encoding="utf-8"))
    rules, base = suite_of(path)
    module = sm3321 if rules == RULES else compiled_suite(rules)[1]
    why = check_case(module, case, build_record(case, base))
    assert why is None, f"[{case.get('ref')}] {case.get('name')}\n  quote: {case.get('quote')}\n  {why}"
