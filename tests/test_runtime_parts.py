"""The evaluator runtime is written in parts (compiler/runtime_parts) that form one namespace:
the generated module embeds them in order, compiler/runtime.py executes them in order."""

import ast
import sys
from pathlib import Path

from conftest import ROOT

from compiler import runtime, runtime_parts
from compiler.backend_python import runtime_source

PARTS_DIR = ROOT / "compiler" / "runtime_parts"


def _tree(name):
    return ast.parse(runtime_parts.part_text(name), filename=name + ".py")


def test_every_part_file_is_listed_once_and_stays_under_800_lines():
    files = sorted(p.stem for p in PARTS_DIR.glob("*.py") if p.name != "__init__.py")
    assert sorted(runtime_parts.PARTS) == files
    assert len(set(runtime_parts.PARTS)) == len(runtime_parts.PARTS)
    for name in runtime_parts.PARTS:
        assert runtime_parts.part_text(name).count("\n") < 800, name


def test_generated_module_embeds_the_parts_in_order():
    text = (ROOT / "generated" / "sm3321.py").read_text(encoding="utf-8")
    src = runtime_parts.source()
    assert src in text and runtime_source().startswith(src)
    positions = [text.index(runtime_parts.part_text(n).strip()) for n in runtime_parts.PARTS]
    assert positions == sorted(positions)
    assert src.rstrip().splitlines()[-1].startswith("# ---- end of runtime ---")


def test_no_part_defines_a_name_another_part_defines():
    seen = {}
    for name in runtime_parts.PARTS:
        for node in _tree(name).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                names = [node.name]
            elif isinstance(node, ast.Assign):
                names = [t.id for t in node.targets if isinstance(t, ast.Name)]
            else:
                continue
            for n in names:
                assert n not in seen or seen[n] == name, f"{n} defined in {seen[n]} and {name}"
                seen[n] = name
    assert len(seen) > 120  # (the runtime defines about 140 names)


def test_parts_import_only_the_standard_library():
    for name in runtime_parts.PARTS:
        for node in ast.walk(_tree(name)):
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{name}: relative import"
                mods = [node.module]
            else:
                continue
            for m in mods:
                assert m.split(".")[0] in sys.stdlib_module_names, f"{name}: imports {m}"


def test_runtime_module_is_the_parts_namespace():
    # names other modules import from compiler.runtime
    from compiler.readable import unit_words
    from compiler.sql import script

    assert unit_words("umol/L") == "µmol/L"
    assert script.HALF_LIFE_UNITS is runtime._HALF_LIFE_UNITS and script.TIME_ALIASES is runtime._TIME_ALIASES
    # functions of different parts see one namespace: a record evaluated through compiler.runtime
    vocab = {"observations": {}, "conditions": {}, "procedures": {}, "classes": {}, "facts": {}, "aliases": {}}
    out = runtime._run({"format": 1, "id": "p1", "sex": "female"}, vocab, "T", (
        ("c1", "I1", "inclusion", lambda rec: runtime._and(runtime._sex_is(rec, ("female",), False))),
    ))
    assert out["status"] == "eligible" and out["criteria"][0]["reason"] == "sex female"
    assert Path(runtime._run.__code__.co_filename).name == "results.py"
