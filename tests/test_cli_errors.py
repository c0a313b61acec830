"""One error style for click's own errors and Elig's, with README's exit codes; the generated
module's usage."""

import subprocess
import sys

import pytest

from conftest import ROOT


def _elig(*args):
    return subprocess.run([sys.executable, "-m", "compiler.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("args, code, first", [
    (["evaluate"], 2, "elig: missing argument 'INPUT'"),
    (["bogus"], 2, "elig: no such command 'bogus'"),
    (["evaluate", "--format", "xml", "x"], 2, "elig: invalid value for '--format': 'xml' is not one of 'jsonl', 'text'"),
    (["evaluate", "--rules", "a", "--module", "b", "x"], 2, "elig: give exactly one of --rules RULES_DIR or --module MODULE.py"),
    (["check", "no-such-dir"], 1, "elig: no-such-dir: not a directory of rule files"),
    (["evaluate", "--module", "generated/sm3321.py", "no-such-file.jsonl"], 1, "elig: cannot open no-such-file.jsonl: No such file or directory"),
])
def test_errors_have_one_style_and_the_documented_exit_code(args, code, first):
    proc = _elig(*args)
    assert proc.returncode == code, proc.stderr
    lines = proc.stderr.splitlines()
    assert lines[0] == first
    assert "Traceback" not in proc.stderr and "Error:" not in proc.stderr
    if code == 2 and len(lines) > 1:
        assert lines[1].startswith("usage: elig") and "--help for more" in lines[1]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"| {code} | " in readme  # the exit-code table


def test_help_and_version_exit_zero():
    assert _elig("--help").returncode == 0
    v = _elig("--version")
    assert v.returncode == 0 and v.stdout.startswith("elig, version")


def test_generated_module_prints_its_usage():
    mod = ROOT / "generated" / "sm3321.py"
    env = {"PATH": "", "PYTHONNOUSERSITE": "1"}
    proc = subprocess.run([sys.executable, "-S", "-I", str(mod), "--help"], capture_output=True, text=True,
                          env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: python sm3321.py [-h] [RECORDS]")
    assert "evaluate_json(text)" in proc.stdout
    bad = subprocess.run([sys.executable, "-S", "-I", str(mod), "--nope"], capture_output=True, text=True,
                         env=env, timeout=60)
    assert bad.returncode == 2 and "unrecognized arguments" in bad.stderr
    missing = subprocess.run([sys.executable, "-S", "-I", str(mod), "no-such-file"], capture_output=True,
                             text=True, env=env, timeout=60)
    assert missing.returncode == 1 and missing.stderr.startswith("sm3321.py: cannot open no-such-file")
    header = mod.read_text(encoding="utf-8").split("\n\n", 1)[0]
    for name in ("evaluate(record)", "evaluate_json(text)", "evaluate_many(records)", "evaluate_stream(",
                 "iter_records(", "TRIAL, CRITERIA", "--help"):
        assert name in header, name
