"""Fuzzing the compiler with random and mutated rule files (issue 5).

The only outcomes of compiling any text are success (a module that parses and a page) or
positioned diagnostics (file, line >= 1, column >= 1, a message): never an exception, a
traceback or a hang. Inputs start from the real SM3321 rule files and are mutated: token spans
deleted, duplicated, swapped; grammar words inserted; truncation; huge numbers; parentheses
1000 deep; CRLF, NUL and odd Unicode; and `elig check` / `elig compile` through click's CliRunner.

Every compile runs in a forked worker process under a hard time limit (an alarm cannot stop a
hang in C code, such as big-integer arithmetic), so a hang is reported as a failure, not waited
out; Hypothesis' deadline bounds each example too. The defects these tests found are kept
below as regression tests (`test_fixed_*`). For long runs see tools/fuzz_rules_atheris.py and
ELIG_FUZZ_SCALE (a multiplier of the number of examples).
"""

from __future__ import annotations

import ast
import atexit
import contextlib
import multiprocessing
import os
import re
import signal
import traceback
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler.cli import main
from compiler.diagnostics import render_all
from compiler.pipeline import compile_sources, read_rules
from conftest import ROOT, RULES

SM3321, _ = read_rules(RULES)
PATHS = sorted(SM3321)


def _key(suffix: str) -> str:
    """The SM3321 source path ending with suffix (paths are as read_rules displays them)."""
    return next(p for p in PATHS if p.endswith(suffix))


HARD_LIMIT_S = 4  # CPU seconds per compile; a compile of SM3321 takes well under 0.2 s (about 1 s the first time)
WALL_LIMIT_S = 30  # wall-clock seconds before a compile is killed (a hang in C code; a busy machine is slower)
_LONG_QUERY = ("any active solid_tumor where (confirmation in {histological, cytological} "
               "and extent in {locally_advanced, metastatic} and not resectable)")


# ---------------------------------------------------------------------- the property


class CompileTimeout(Exception):
    """A compile that did not finish in time; `stack` names the functions it was in."""

    def __init__(self, msg, stack=()):
        super().__init__(msg)
        self.stack = tuple(stack)


@contextlib.contextmanager
def hard_timeout(seconds: float):
    """Raise CompileTimeout in the main thread when the block has used more than `seconds` of
    CPU time (the process's own: a machine busy with other work does not make it fire; a hang
    in Python code does, and one in C code is killed by the worker's wall-clock limit)."""

    def on_alarm(signum, frame):
        stack = []
        while frame is not None:
            stack.append((Path(frame.f_code.co_filename).name, frame.f_code.co_name))
            frame = frame.f_back
        raise CompileTimeout(f"compile did not finish in {seconds} s", stack)

    old = signal.signal(signal.SIGPROF, on_alarm)
    signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, old)


def _check_here(sources: dict, emit: bool):
    """Compile in this process (under an alarm for Python-level hangs) and check the outcome:
    ("ok", None) or ("fail", a traceback)."""
    try:
        with hard_timeout(HARD_LIMIT_S):
            res = compile_sources(sources, emit=emit)
    except CompileTimeout as exc:
        return "fail", f"{exc} (in {' <- '.join(f'{f}:{n}' for f, n in exc.stack[:12])})"
    except Exception:  # noqa: BLE001 - any exception is a crash
        return "fail", "compile_sources raised:\n" + traceback.format_exc()
    try:
        assert_outcome(res, sources, emit)
    except AssertionError:
        return "fail", traceback.format_exc()
    return "ok", None


def _worker_main(conn):
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        conn.send(_check_here(*job))


class CompileWorker:
    """A forked process that compiles for the tests: a hang in C code (big integers) cannot be
    interrupted by an alarm, so the test process waits a bounded time and kills the worker."""

    def __init__(self):
        self.proc = None
        self.conn = None

    def _start(self):
        ctx = multiprocessing.get_context("fork")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child,), daemon=True)
        self.proc.start()
        child.close()

    def run(self, sources: dict, emit: bool = True, timeout: float = WALL_LIMIT_S):
        if self.proc is None or not self.proc.is_alive():
            self._start()
        self.conn.send((sources, emit))
        if not self.conn.poll(timeout):
            self.stop(kill=True)
            return "timeout", None
        return self.conn.recv()

    def stop(self, kill=False):
        if self.proc is None:
            return
        if kill:
            self.proc.kill()
        else:
            try:
                self.conn.send(None)
            except OSError:
                pass
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()
        self.conn.close()
        self.proc = self.conn = None


WORKER = CompileWorker()
atexit.register(WORKER.stop)


def check_compile(sources: dict, emit: bool = True) -> None:
    """Compile (in the worker, with a hard time limit) and assert: success with output that
    parses, or positioned diagnostics."""
    status, info = WORKER.run(sources, emit)
    if status == "timeout":
        pytest.fail(f"compile did not finish in {WALL_LIMIT_S} s (killed)")
    if status != "ok":
        pytest.fail(info)


def assert_outcome(res, sources: dict, emit: bool = True):
    if res.ok:
        assert res.program is not None
        if emit:
            assert isinstance(res.python, str) and isinstance(res.html, str)
            ast.parse(res.python)
            assert res.html.startswith("<!doctype html>")
    else:
        assert res.python is None and res.html is None
    errors = [d for d in res.diagnostics if d.severity == "error"]
    if not res.ok:
        assert errors
    for d in res.diagnostics:
        assert_positioned(d, sources)
    render_all(res.diagnostics, res.sources)  # the caret rendering never raises


def assert_positioned(d, sources: dict):
    sp = d.span
    assert isinstance(d.message, str) and d.message.strip(), d
    assert isinstance(sp.file, str) and sp.file
    if sources:
        assert sp.file in sources, (sp.file, d.message)
    assert isinstance(sp.line, int) and sp.line >= 1, d
    assert isinstance(sp.column, int) and sp.column >= 1, d
    text = sources.get(sp.file)
    if text is not None:
        n_lines = text.replace("\r\n", "\n").replace("\r", "\n").count("\n") + 1
        assert sp.line <= n_lines + 1, (d, n_lines)


# ---------------------------------------------------------------------- mutations

_TOKEN = re.compile(
    r'"(?:[^"\\\n]|\\[^\n])*"'  # a string
    r"|#[^\n]*"  # a comment
    r"|[0-9]+(?:\.[0-9]+)?"  # a number
    r"|[A-Za-z_µ°\[\]'%*/^.0-9]+"  # a word or a unit
    r"|>=|<=|!=|\S"  # an operator or punctuation
)


def _tokens(text: str):
    return [(m.start(), m.end()) for m in _TOKEN.finditer(text)]


def _grammar_words() -> list[str]:
    lark = (ROOT / "grammar" / "elig.lark").read_text(encoding="utf-8")
    return sorted(set(re.findall(r'"([^"\\]+)"', lark)))


VOCAB = _grammar_words() + sorted({w for t in SM3321.values() for w in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", t)})[:400] + [
    "10*9/L", "g/dL", "mm[Hg]", "[degF]", "[IU]/mL", "/uL", "%", "Cel", "mo", "a", "wk", "d", "h", "min",
    "a_j", "mo_j", "[arb'U]", "kat", "10*99999/L", "0", "1", "2.5", "007", "0.0", '""', '"x"', '"\\""', '"\\\\"',
    "ULN", "LLN", "LLOQ", "I7b", "E2.1", "x", "×", "≥", "≤", "≠", "{", "}", "(", ")", ",", ":", "=", "|", "-", "+",
]
HUGE_NUMBERS = ["9" * 400, "1" + "0" * 5000, "0." + "0" * 400 + "1", "1e400", "99999999999999999999", "0", "00000",
                "1" * 30 + ".5", "340282366920938463463374607431768211457", "1.7976931348623157"]
ODD = ["\r\n", "\r", "\x00", "\u200f", "\u202e", "\u2066", "\u0301", "\u0308\u0308\u0308", "０", "９", "٣", "\u2028",
       "\u2029", "\ufeff", "\x0c", "\x0b", "\x85", "\x1c", "\U0001F600", "\u200d", "\t", "ß", "ǅ", "İ", "\u00a0",
       "\u3000", "µ", "°", "＂", "“", "”", "\\", "\\\\", '\\"', "\ud7ff", "\U0010ffff", "\x7f"]


def _at_token_boundary(draw, text):
    toks = _tokens(text)
    if not toks:
        return 0
    i = draw(st.integers(0, len(toks) - 1))
    return toks[i][draw(st.sampled_from((0, 1)))]


def m_truncate(draw, text):
    return text[: draw(st.integers(0, len(text)))]


def m_delete(draw, text):
    toks = _tokens(text)
    if not toks:
        return text
    i = draw(st.integers(0, len(toks) - 1))
    j = min(len(toks) - 1, i + draw(st.integers(0, 6)))
    return text[: toks[i][0]] + text[toks[j][1]:]


def m_duplicate(draw, text):
    toks = _tokens(text)
    if not toks:
        return text
    i = draw(st.integers(0, len(toks) - 1))
    j = min(len(toks) - 1, i + draw(st.integers(0, 8)))
    span = text[toks[i][0]: toks[j][1]]
    return text[: toks[j][1]] + " " + span + text[toks[j][1]:]


def m_swap(draw, text):
    toks = _tokens(text)
    if len(toks) < 2:
        return text
    i = draw(st.integers(0, len(toks) - 2))
    j = draw(st.integers(i + 1, len(toks) - 1))
    (a0, a1), (b0, b1) = toks[i], toks[j]
    return text[:a0] + text[b0:b1] + text[a1:b0] + text[a0:a1] + text[b1:]


def m_insert_vocab(draw, text):
    at = _at_token_boundary(draw, text)
    words = draw(st.lists(st.sampled_from(VOCAB), min_size=1, max_size=4))
    return text[:at] + " " + " ".join(words) + " " + text[at:]


def m_huge_number(draw, text):
    nums = [m.span() for m in re.finditer(r"(?<![A-Za-z_0-9.*^])[0-9]+(?:\.[0-9]+)?", text)]
    if not nums:
        return text
    a, b = draw(st.sampled_from(nums))
    return text[:a] + draw(st.sampled_from(HUGE_NUMBERS)) + text[b:]


def m_deep_nesting(draw, text):
    bodies = [m.end() for m in re.finditer(r"\b(require|exclude when|formula|=)\s", text)]
    if not bodies:
        return text
    at = draw(st.sampled_from(bodies))
    depth = draw(st.sampled_from((3, 12, 20, 30, 59, 61, 62, 150, 300, 1000)))
    if draw(st.booleans()):
        # parentheses around the rest of the line
        end = text.find("\n", at)
        end = len(text) if end < 0 else end
        return text[:at] + "(" * depth + text[at:end] + ")" * depth + text[end:]
    return text[:at] + draw(st.sampled_from(("not ", "- ", "(", "- ("))) * depth + text[at:]


def m_odd_unicode(draw, text):
    at = draw(st.integers(0, len(text)))
    return text[:at] + draw(st.sampled_from(ODD)) + text[at:]


def m_line_endings(draw, text):
    how = draw(st.sampled_from(("crlf", "cr", "mixed", "u2028", "formfeed")))
    if how == "crlf":
        return text.replace("\n", "\r\n")
    if how == "cr":
        return text.replace("\n", "\r")
    if how == "u2028":
        return text.replace("\n", "\u2028", draw(st.integers(1, 5)))
    if how == "formfeed":
        return text.replace("\n", "\n\x0c", draw(st.integers(1, 5)))
    lines = text.split("\n")
    return "".join(l + draw(st.sampled_from(("\n", "\r\n", "\r"))) for l in lines)


def m_random_text(draw, text):
    at = draw(st.integers(0, len(text)))
    return text[:at] + draw(st.text(max_size=12)) + text[at:]


MUTATIONS = [m_truncate, m_delete, m_duplicate, m_swap, m_insert_vocab, m_huge_number, m_deep_nesting,
             m_odd_unicode, m_line_endings, m_random_text]


@st.composite
def mutated_sm3321(draw, mutations=MUTATIONS, max_mutations=4):
    sources = dict(SM3321)
    for _ in range(draw(st.integers(1, 2))):
        path = draw(st.sampled_from(PATHS))
        text = sources[path]
        for _ in range(draw(st.integers(1, max_mutations))):
            text = draw(st.sampled_from(mutations))(draw, text)
        sources[path] = text
    return sources


FUZZ = settings(
    deadline=timedelta(seconds=WALL_LIMIT_S + 1),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    derandomize=True,
    database=None,
    print_blob=True,
)


def _n(examples: int) -> int:
    """Examples per property; ELIG_FUZZ_SCALE=10 runs ten times as many (a longer local run)."""
    return max(1, int(examples * float(os.environ.get("ELIG_FUZZ_SCALE", "1"))))


# ---------------------------------------------------------------------- property tests


def test_sm3321_itself_compiles():
    check_compile(dict(SM3321))
    assert compile_sources(dict(SM3321)).ok


@pytest.mark.slow
@settings(FUZZ, max_examples=_n(220))
@given(mutated_sm3321())
def test_mutated_sm3321_compiles_or_gives_positioned_diagnostics(sources):
    check_compile(sources)


@pytest.mark.slow
@settings(FUZZ, max_examples=_n(40))
@given(mutated_sm3321(mutations=[m_deep_nesting, m_huge_number], max_mutations=2))
def test_deep_nesting_and_huge_numbers(sources):
    check_compile(sources)


@pytest.mark.slow
@settings(FUZZ, max_examples=_n(40))
@given(mutated_sm3321(mutations=[m_odd_unicode, m_line_endings, m_random_text], max_mutations=3))
def test_odd_unicode_and_line_endings(sources):
    check_compile(sources)


@pytest.mark.slow
@settings(FUZZ, max_examples=_n(40))
@given(st.dictionaries(st.text(min_size=1, max_size=20), st.text(max_size=300), max_size=3))
def test_random_text_files(sources):
    check_compile(sources)


@pytest.mark.slow
@settings(FUZZ, max_examples=_n(30))
@given(st.binary(max_size=400))
def test_random_bytes_as_a_rule_file(data):
    sources = dict(SM3321)
    sources["sm3321_rules/zz_noise.elig"] = data.decode("latin-1")
    check_compile(sources)


# 100 and 1000 give each shape the outcome of 61 and of 5000 (success, "expression is nested too
# deeply" or "rule file is nested too deeply to parse"): in the slow suite only
@pytest.mark.parametrize("depth", [10, 59, 60, 61, pytest.param(100, marks=pytest.mark.slow),
                                   pytest.param(1000, marks=pytest.mark.slow), 5000])
@pytest.mark.parametrize("shape", ["parens", "not", "neg", "and", "if", "let", "query"])
def test_deep_structures(depth, shape):
    """Deep nesting and long chains: success or a positioned 'nested too deeply', never a crash
    (nor a hang: `query` once took time exponential in the depth)."""
    if shape == "query":
        body = "not " * depth + _LONG_QUERY
    elif shape == "parens":
        body = "(" * depth + "age at screening >= 18 a" + ")" * depth
    elif shape == "not":
        body = "not " * depth + "informed_consent"
    elif shape == "neg":
        body = "age at screening >= " + "- " * depth + "18 a"
    elif shape == "and":
        body = " and ".join(["informed_consent"] * depth)
    elif shape == "if":
        body = "latest hemoglobin within 7 d before first_dose >= " + "(90 g/L if informed_consent else " * depth + "90 g/L" + ")" * depth
    else:
        lets = "\n".join(f"    let v{i} = v{i + 1}" for i in range(depth)) + f"\n    let v{depth} = informed_consent"
        body = "v0"
        sources = dict(SM3321)
        sources["sm3321_rules/zz_deep.elig"] = f"inclusion deep_one {{\n    ref I9\n    quote \"x\"\n{lets}\n    require {body}\n}}\n"
        check_compile(sources)
        return
    sources = dict(SM3321)
    sources["sm3321_rules/zz_deep.elig"] = f'inclusion deep_one {{\n    ref I9\n    quote "x"\n    require {body}\n}}\n'
    check_compile(sources)


@pytest.mark.parametrize("depth", [1000, 5000])
def test_deep_conditionals_are_nested_too_deeply_not_an_internal_error(depth):
    """A conditional chain too deep for the parse tree's transformer: lark wraps its RecursionError
    in a VisitError, which was reported as "internal error while reading the parse tree"."""
    from compiler.parser import parse_source

    body = "latest hemoglobin within 7 d before first_dose >= " + "(90 g/L if informed_consent else " * depth
    body += "90 g/L" + ")" * depth
    tree, diags = parse_source(f'inclusion deep_one {{\n    ref I9\n    quote "x"\n    require {body}\n}}\n', "d.elig")
    assert tree is None
    assert [d.message for d in diags] == ["rule file is nested too deeply to parse"]


@pytest.mark.parametrize("text", [
    "", "\n", "\x00", "\ufeff", "#", '"', '"\\', "trial", "trial X {", "trial X { title", "}" * 50, "{" * 5000,
    "trial T { title \"t\" protocol \"p\" anchors a }\ninclusion i { ref I1 quote \"q\" require age at a >= 18 a }",
    "inclusion i { ref I1 quote \"q\" require 1 >= 1 }",
    "let x = x", "let x = y\nlet y = x\n", "derived d { unit 1 formula d }",
    "observation o { unit 10*99999/L }", "observation o { unit [degF] accepts Cel, K, 10*3/uL }",
    "observation o { unit g/L molar_mass 0 g/mol }", "equivalence e { e 0 mg }",
    "trial T { anchors a, a }", "outline { item I1 \"\" }",
])
def test_small_inputs(text):
    check_compile({"r.elig": text})
    sources = dict(SM3321)
    sources["sm3321_rules/zz.elig"] = text
    check_compile(sources)


def test_no_files_at_all():
    res = compile_sources({})
    assert not res.ok
    for d in res.diagnostics:
        assert d.span.line >= 1 and d.span.column >= 1 and d.message


@pytest.mark.slow
def test_crlf_files_compile_like_lf():
    sources = {p: t.replace("\n", "\r\n") for p, t in SM3321.items()}
    check_compile(sources)
    res = compile_sources(sources)
    assert res.ok, [d.message for d in res.diagnostics][:3]
    assert res.python == compile_sources(dict(SM3321)).python


# ---------------------------------------------------------------------- the command line

_POSITIONED = re.compile(r"^(?P<file>.+?):(?P<line>[0-9]+):(?P<col>[0-9]+): (error|warning): .+")


def _cli_check(tmp_path: Path, sources: dict, command: str):
    rules = tmp_path / "rules"
    rules.mkdir(parents=True, exist_ok=True)
    for p, text in sources.items():
        (rules / Path(p).name).write_bytes(text.encode("utf-8", "surrogatepass"))
    args = ["check", str(rules)] if command == "check" else ["compile", str(rules), "-o", str(tmp_path / "out")]
    with hard_timeout(HARD_LIMIT_S):
        res = CliRunner().invoke(main, args)
    out = res.output + (res.stderr if res.stderr_bytes is not None else "")
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert "Traceback" not in out
    assert "internal compiler error" not in out, out[-2000:]
    assert res.exit_code in (0, 1), (res.exit_code, out[-2000:])
    if res.exit_code == 1:
        lines = [l for l in res.stderr.splitlines() if _POSITIONED.match(l)]
        assert lines, res.stderr[-2000:]
        for l in lines:
            m = _POSITIONED.match(l)
            assert int(m["line"]) >= 1 and int(m["col"]) >= 1
    elif command == "compile":
        assert any((tmp_path / "out").glob("*.py")) and any((tmp_path / "out").glob("*.html"))
    return res


@pytest.mark.slow
@settings(FUZZ, max_examples=_n(12), deadline=timedelta(seconds=2 * WALL_LIMIT_S + 2))
@given(mutated_sm3321(max_mutations=3), st.sampled_from(["check", "compile"]))
def test_cli_check_and_compile_on_mutated_rules(tmp_path_factory, sources, command):
    tmp = tmp_path_factory.mktemp("cli")
    check_compile(sources, emit=True)  # first in the worker: a hang must not hang the test process
    _cli_check(tmp, sources, command)


@pytest.mark.parametrize("command", ["check", "compile"])
@pytest.mark.parametrize("edit", ["none", "truncate", "crlf", "nul", "bad-utf8", "bom", "deep"])
def test_cli_on_damaged_files(tmp_path, command, edit):
    sources = dict(SM3321)
    inc = _key("inclusion.elig")
    if edit == "truncate":
        sources[inc] = sources[inc][: len(sources[inc]) // 2]
    elif edit == "crlf":
        sources = {p: t.replace("\n", "\r\n") for p, t in sources.items()}
    elif edit == "nul":
        sources[inc] = sources[inc].replace("ref I5", "ref I5\x00")
    elif edit == "bom":
        sources[inc] = "\ufeff" + sources[inc]
    elif edit == "deep":
        sources[inc] = sources[inc].replace("require informed_consent", "require " + "(" * 2000 + "informed_consent" + ")" * 2000)
    if edit == "bad-utf8":
        rules = tmp_path / "rules"
        rules.mkdir()
        for p, t in sources.items():
            data = t.encode("utf-8")
            if p == inc:
                data = data.replace(b"ref I5", b"ref I5 \xff\xfe")
            (rules / Path(p).name).write_bytes(data)
        args = ["check", str(rules)] if command == "check" else ["compile", str(rules), "-o", str(tmp_path / "out")]
        res = CliRunner().invoke(main, args)
        assert res.exit_code == 1 and "Traceback" not in res.output
        assert re.search(r"inclusion\.elig:[0-9]+:[0-9]+: error: rule files are UTF-8", res.stderr), res.stderr
        return
    res = _cli_check(tmp_path, sources, command)
    if edit in ("none", "crlf", "bom"):
        assert res.exit_code == 0, res.stderr[-2000:]


# ---------------------------------------------------------------------- defects found (fixed since)


def _replace(path_suffix: str, old: str, new: str) -> dict:
    sources = dict(SM3321)
    path = _key(path_suffix)
    assert old in sources[path]
    sources[path] = sources[path].replace(old, new, 1)
    return sources


def test_fixed_huge_limit_overflows_float():
    """Found by these tests, fixed in the compiler while they were written (kept as a regression test):
    compiler crash: a limit with 309+ digits (`>= 999...9 g/L`, 400 nines) raises OverflowError
    ('integer division result too large for a float') in backend_python.PythonEmitter.lim (float(v))
    instead of compiling or giving a positioned diagnostic"""
    sources = _replace("inclusion.elig", ">= 90 g/L", ">= " + "9" * 400 + " g/L")
    res = compile_sources(sources)
    assert_outcome(res, sources)


def test_fixed_number_with_5000_digits():
    """Found by these tests, fixed in the compiler while they were written (kept as a regression test):
    compiler crash: a number with more than 4300 digits raises ValueError ('Exceeds the limit (4300
    digits) for integer string conversion') in units.decimal_fraction / Fraction(text) during checking,
    instead of a positioned diagnostic"""
    sources = _replace("inclusion.elig", ">= 90 g/L", ">= 1" + "0" * 5000 + " g/L")
    res = compile_sources(sources)
    assert_outcome(res, sources)


@pytest.mark.parametrize("unit", ["a_j", "mo_j"])
def test_fixed_unfoldable_time_unit_in_a_window(unit):
    """Found by these tests, fixed in the compiler while they were written (kept as a regression test):
    compiler crash: a duration in a UCUM time unit that is neither exact (d, wk, h, min, s, ms) nor
    calendar (mo, a), e.g. `within 1 a_j before first_dose` or `mo_j`, passes the checker as a time
    unit; units.time_in_days returns None, DConst('days', None) is built and lowering raises
    AttributeError: 'NoneType' object has no attribute 'denominator'"""
    sources = _replace("inclusion.elig", "let lab_window_days = 7 d", f"let lab_window_days = 1 {unit}")
    res = compile_sources(sources)
    assert_outcome(res, sources)




def test_fixed_exponential_formatting_of_nested_queries():
    """Found by these tests, fixed in the compiler while they were written (kept as a regression test):
    compiler hang: backend_python._fmt takes time exponential in the nesting depth above a query whose
    `where` lambda body is formatted over several lines: a _Lambda formats its body with width 96 even
    when the caller asks for a flat form, so the flat text contains a newline and every level formats
    its child twice (flat, then indented). `require not not ... (20 times) any active solid_tumor where
    (...)` takes ~20 s, 30 levels ~7 h (depth 16: 1.8 s, 18: 6.9 s)"""
    sources = dict(SM3321)
    sources["sm3321_rules/zz_deep.elig"] = (
        'inclusion deep_one {\n    ref I9\n    quote "x"\n    require ' + "not " * 24 + _LONG_QUERY + "\n}\n")
    with hard_timeout(HARD_LIMIT_S):
        res = compile_sources(sources)
    assert_outcome(res, sources)


def test_nested_queries_below_the_exponential_range_compile():
    sources = dict(SM3321)
    sources["sm3321_rules/zz_deep.elig"] = (
        'inclusion deep_one {\n    ref I9\n    quote "x"\n    require ' + "not " * 8 + _LONG_QUERY + "\n}\n")
    check_compile(sources)
    assert compile_sources(sources).ok


def test_fixed_huge_power_of_ten_unit_hangs():
    """Found by these tests, fixed in the compiler while they were written (kept as a regression test):
    compiler hang: a UCUM unit with a huge power of ten, `observation o { unit 10*99999999/L }`, makes
    units.accepted_units/conversion (pint with Fraction magnitudes) build 10**99999999 exactly; the
    compile runs for minutes in C code (10*999999/L takes 2.4 s, 10*99999999/L > 30 s), where an alarm
    cannot stop it"""
    for unit in ("10*99999999/L", "10*-99999999/L", "10^999999999", "10*99999999.g"):
        status, info = WORKER.run({"r.elig": f"observation o {{ unit {unit} }}"}, True, timeout=8)
        assert status != "timeout", f"compile of unit {unit} did not finish in 8 s"
        assert status == "ok", info


def test_fixed_cr_line_endings_in_compile_sources():
    """Found by these tests, fixed in the compiler while they were written (kept as a regression test):
    compile_sources does not normalise lone CR line endings as read_rules (files) does: an SM3321 text
    with CR line endings passed to compile_sources is read as one line, the first `#` comment runs to
    the end of the file, and the result is 'no trial header' at 1:1 (the same files on disk compile)"""
    res = compile_sources({p: t.replace("\n", "\r") for p, t in SM3321.items()})
    assert res.ok, [d.message for d in res.diagnostics][:3]


@pytest.mark.parametrize("ch", ["\x0c", "\u2028", "\x85"])
def test_fixed_line_separators_shift_rule_source_and_carets(ch):
    """Found by these tests, fixed in the compiler while they were written (kept as a regression test):
    wrong source lines: the parser counts lines at \\n only, but checker.criterion (body_source for the
    HTML 'Rule source' and the module) and Diagnostic.format use str.splitlines(), which also splits at
    \\x0c (form feed, legal whitespace), \\x1c-\\x1e, \\x85, \\u2028, \\u2029. One such character in a comment
    makes every later criterion show the wrong rule source, and diagnostics quote and underline the
    wrong line"""
    sources = _replace("inclusion.elig", "# SM3321 inclusion criteria", "# SM3321" + ch + "inclusion criteria")
    res = compile_sources(sources)
    assert res.ok
    c = next(c for c in res.program.criteria if c.id == "age_18_or_over")
    assert c.body_source == "require age at screening >= 18 a", c.body_source
    bad = _replace("inclusion.elig", "# SM3321 inclusion criteria", "# SM3321" + ch + "inclusion criteria")
    path = _key("inclusion.elig")
    bad[path] = bad[path].replace("require age at screening >= 18 a", "require age at screening >= 18 g")
    res = compile_sources(bad)
    shown = res.diagnostics[0].format(res.sources).splitlines()[1]
    assert "18 g" in shown, shown
