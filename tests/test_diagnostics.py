"""The diagnostics suite: every error the compiler reports, with its exact position and text.

Each ``tests/diagnostics/<name>.elig`` is a snippet compiled together with
``tests/diagnostics/_prelude.elig`` (a small trial that compiles cleanly on its own), as two
files of one ``compile_sources`` call. The comment lines at the top of a snippet state the
diagnostics expected in the snippet, in order::

    # expect: LINE:COL: MESSAGE

LINE and COL are positions in the snippet file, MESSAGE the full message text (hints are not
part of it). No diagnostic may be reported in the prelude.

Case names start with a lowercase letter, so that the prelude (``_prelude.elig``) sorts first
and its trial header is the one that counts.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from compiler.diagnostics import Diagnostic
from compiler.pipeline import compile_sources

ROOT = Path(__file__).resolve().parent.parent
CASE_DIR = ROOT / "tests" / "diagnostics"
PRELUDE_NAME = "_prelude.elig"
# The display paths the compiler sees (and that messages citing the prelude contain).
PRELUDE_PATH = "tests/diagnostics/" + PRELUDE_NAME

EXPECT_RE = re.compile(r"^# expect: (\d+):(\d+): (.+)$")
HEAD_RE = re.compile(r"^(?P<file>.+):(?P<line>\d+):(?P<col>\d+): error: (?P<msg>.*)$")


def _prelude() -> str:
    return (CASE_DIR / PRELUDE_NAME).read_text(encoding="utf-8")


def _case_files() -> list[Path]:
    return sorted(p for p in CASE_DIR.glob("*.elig") if not p.name.startswith("_"))


def _expected(text: str, name: str) -> list[tuple[int, int, str]]:
    out = []
    for raw in text.splitlines():
        if raw.lstrip().startswith("#") and "expect" in raw.split(":", 1)[0]:
            m = EXPECT_RE.match(raw)
            assert m, f"{name}: malformed expectation line {raw!r} (write '# expect: LINE:COL: MESSAGE')"
            out.append((int(m.group(1)), int(m.group(2)), m.group(3)))
    return out


def _compile_case(path: Path):
    case_path = "tests/diagnostics/" + path.name
    text = path.read_text(encoding="utf-8")
    sources = {PRELUDE_PATH: _prelude(), case_path: text}
    return case_path, text, sources, compile_sources(sources, emit=False)


CASES = _case_files()


def test_case_directory_is_populated():
    assert len(CASES) >= 50
    for p in CASES:
        assert re.fullmatch(r"[a-z][a-z0-9_]*\.elig", p.name), (
            f"{p.name}: case names are lowercase snake_case so the prelude sorts first")
        assert _expected(p.read_text(encoding="utf-8"), p.name), f"{p.name}: no '# expect:' line"


def test_prelude_alone_compiles_cleanly():
    res = compile_sources({PRELUDE_PATH: _prelude()})
    assert res.diagnostics == [], "\n".join(d.format(res.sources) for d in res.diagnostics)
    assert res.ok
    assert res.program is not None and res.python and res.html


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_case(path: Path):
    case_path, text, sources, res = _compile_case(path)
    expected = _expected(text, path.name)

    in_prelude = [d for d in res.diagnostics if d.span.file == PRELUDE_PATH]
    assert not in_prelude, "diagnostics in the prelude:\n" + "\n".join(d.format(sources) for d in in_prelude)
    stray = [d for d in res.diagnostics if d.span.file not in (PRELUDE_PATH, case_path)]
    assert not stray, "diagnostics in no rule file:\n" + "\n".join(d.format(sources) for d in stray)

    actual = [(d.span.line, d.span.column, d.message) for d in res.diagnostics if d.span.file == case_path]
    assert actual == expected, "\n".join(d.format(sources) for d in res.diagnostics)
    assert not res.ok
    assert all(d.severity == "error" for d in res.diagnostics)


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_case_renders_with_source_line_and_caret(path: Path):
    case_path, text, sources, res = _compile_case(path)
    lines = text.splitlines()
    for d in res.diagnostics:
        _assert_rendering(d, sources, lines)


def _assert_rendering(d: Diagnostic, sources: dict, lines: list[str]):
    out = d.format(sources).split("\n")
    assert out[0] == f"{d.span.file}:{d.span.line}:{d.span.column}: error: {d.message}"
    assert 1 <= d.span.line <= len(lines), f"line {d.span.line} is outside the file"
    src = lines[d.span.line - 1].expandtabs(1)
    assert 1 <= d.span.column <= len(src) + 1, f"column {d.span.column} is outside line {src!r}"
    assert len(out) >= 3, out
    assert out[1] == "    " + src
    caret = out[2]
    assert caret.startswith("    ") and set(caret[4:].lstrip(" ")) == {"^"}, caret
    assert caret.index("^") == 4 + d.span.column - 1, f"caret not under column {d.span.column}:\n" + "\n".join(out)
    # the carets stay within the source line (or mark the one position just after it)
    assert len(caret) - 4 <= max(len(src), d.span.column), "\n".join(out)
    if d.hint:
        assert out[3] == f"    hint: {d.hint}"
        assert len(out) == 4
    else:
        assert len(out) == 3


# ---------------------------------------------------------------- errors of the trial header
# The prelude's header is always the trial's header, so these are checked on standalone files.

def _diags(sources: dict) -> list[tuple[str, int, int, str]]:
    res = compile_sources(sources, emit=False)
    for d in res.diagnostics:
        _assert_rendering(d, sources, sources[d.span.file].splitlines())
    return [(d.span.file, d.span.line, d.span.column, d.message) for d in res.diagnostics]


def test_trial_header_fields_and_duplicate_anchor():
    src = 'trial T {\n    anchors screening, first_dose, screening\n}\n'
    assert _diags({"h.elig": src}) == [
        ("h.elig", 1, 7, "the trial header needs a title"),
        ("h.elig", 1, 7, 'the trial header needs the protocol text file it cites (protocol "...")'),
        ("h.elig", 2, 36, "anchor 'screening' is listed twice"),
    ]


def test_trial_header_without_anchors():
    src = 'trial T {\n    title "T"\n    protocol "p.txt"\n}\n'
    assert _diags({"h.elig": src}) == [
        ("h.elig", 1, 7, "the trial header needs its anchors (anchors screening, ...)"),
    ]


def test_no_trial_header():
    assert _diags({"v.elig": "fact consent\n"}) == [
        ("v.elig", 1, 1, "no trial header: one rule file must declare `trial NAME { ... }`"),
    ]


# ---------------------------------------------------------------- the command line

def test_cli_check_reports_a_bad_file(tmp_path: Path):
    from click.testing import CliRunner

    from compiler.cli import main

    (tmp_path / "trial.elig").write_text(_prelude(), encoding="utf-8")
    bad = tmp_path / "bad.elig"
    bad.write_text(
        'inclusion c1 {\n'
        '    ref X1\n'
        '    quote "Protocol text."\n'
        '    require latest hemoglobn within 7 d before first_dose >= 90 g/L\n'
        '}\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(main, ["check", str(tmp_path)])
    out = result.output
    assert result.exit_code == 1, out
    assert result.exception is None or isinstance(result.exception, SystemExit), out
    assert "Traceback" not in out
    lines = out.splitlines()
    head = f"{bad.as_posix()}:4:20: error: unknown observation 'hemoglobn'; did you mean 'hemoglobin'?"
    assert head in lines, out
    i = lines.index(head)
    assert lines[i + 1] == "    " + "    require latest hemoglobn within 7 d before first_dose >= 90 g/L"
    assert lines[i + 2] == "    " + " " * 19 + "^" * len("hemoglobn")
    assert "1 error" in lines
    # every reported position has the form path:line:col: error: message
    heads = [l for l in lines if HEAD_RE.match(l)]
    assert heads == [head]


def test_cli_check_reports_a_syntax_error(tmp_path: Path):
    from click.testing import CliRunner

    from compiler.cli import main

    (tmp_path / "trial.elig").write_text(_prelude(), encoding="utf-8")
    bad = tmp_path / "bad.elig"
    bad.write_text('inclusion c1 {\n    ref X1\n    quote "Protocol text.\n    require informed_consent\n}\n',
                   encoding="utf-8")
    result = CliRunner().invoke(main, ["check", str(tmp_path)])
    out = result.output
    assert result.exit_code == 1, out
    assert "Traceback" not in out
    lines = out.splitlines()
    head = f"{bad.as_posix()}:3:11: error: unterminated string (a string ends with '\"' on the same line)"
    assert head in lines, out
    i = lines.index(head)
    assert lines[i + 1] == '        quote "Protocol text.'
    assert lines[i + 2].index("^") == 4 + 10


def test_cli_check_passes_on_the_prelude(tmp_path: Path):
    from click.testing import CliRunner

    from compiler.cli import main

    (tmp_path / "trial.elig").write_text(_prelude(), encoding="utf-8")
    result = CliRunner().invoke(main, ["check", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "no errors" in result.output
