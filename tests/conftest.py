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


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """`--dist loadgroup` (pyproject's addopts): the tests marked `xdist_group(name)` run on one
    worker (the Spark tests: one JVM at a time on the 2 cores). pytest-xdist 3.8 marks them by
    appending `@name` to `item._nodeid`, which pytest 9.2 no longer reads (a node's id is now the
    NodeId in `item._id`), so the scheduler saw no group and spread them over both workers; this
    appends it where pytest 9.2 reads it (and is a no-op where xdist's own marking worked)."""
    if not getattr(config.option, "loadgroup", False):
        return
    for item in items:
        group = "_".join(sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                                 for m in item.iter_markers("xdist_group")}))
        if not group or item.nodeid.endswith("@" + group):
            continue
        if hasattr(item, "_id"):
            from _pytest.nodeid import NodeId

            item._id = NodeId.parse(f"{item.nodeid}@{group}")
        else:
            item._nodeid = f"{item.nodeid}@{group}"
