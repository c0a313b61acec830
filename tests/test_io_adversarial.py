"""Adversarial input and output: the layer around the evaluator, tried as an attacker and as a
careless operator would (docs/io.md states the rules these tests hold it to).

The invariant every record input here is checked against:

- exactly one result per input record, in input order (a record is a non-blank line of JSON
  Lines, an element of a JSON array, or the one object of a pretty-printed document);
- every result is one line of valid JSON, result format 1 (an error result for what is not a
  record), and the run prints no traceback;
- no output file is destroyed, half-written or left looking complete when the run did not
  finish; nothing is unpickled or executed from a cache.

Record streams run in process through the reader that `elig evaluate` and the generated module
share (compiler/records.py), from real files opened as the CLI opens them; the command line and
the module run as a script are run as processes where it is their own behaviour under test
(signals, exit status, files, framing of standard input).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from compiler.records import RecordStreamError, iter_records, open_records
from conftest import ROOT, RULES

ELIG = [sys.executable, "-m", "compiler.cli"]
BASE = json.loads((ROOT / "tests" / "cases" / "_base" / "baseline.json").read_text(encoding="utf-8"))


def rec(pid: str, **extra) -> str:
    r = dict(BASE, id=pid)
    r.update(extra)
    return json.dumps(r)


def pretty(pid: str) -> str:
    return json.dumps(dict(BASE, id=pid), indent=2)


A, B, C = rec("A"), rec("B"), rec("C")

# (name, bytes of the input, the patient_id of each result in order; None: an error result)
STREAMS = [
    ("jsonl", f"{A}\n{B}\n{C}\n".encode(), ["A", "B", "C"]),
    ("no final newline", f"{A}\n{B}".encode(), ["A", "B"]),
    ("crlf", f"{A}\r\n{B}\r\n".encode(), ["A", "B"]),
    ("raw cr between tokens", f"{A[:-1]}\r}}\n{B}\n".encode(), ["A", "B"]),
    ("raw cr inside a string", (A.replace('"id": "A"', '"id": "A\rX"') + "\n" + B + "\n").encode(), [None, "B"]),
    ("lone cr line endings", f"{A}\r{B}\r\n{C}\n".encode(), [None, "C"]),
    ("bom jsonl", b"\xef\xbb\xbf" + f"{A}\n{B}\n".encode(), ["A", "B"]),
    ("bom array", b"\xef\xbb\xbf" + f"[{A},\n{B}]\n".encode(), ["A", "B"]),
    ("bom then blank lines", b"\xef\xbb\xbf\n\n" + f"{A}\n".encode(), ["A"]),
    ("bom mid-stream", f"{A}\n\ufeff{B}\n{C}\n".encode(), ["A", None, "C"]),
    ("blank lines", f"\n{A}\n   \n\t\r\n\n{B}\n\n".encode(), ["A", "B"]),
    ("non-JSON whitespace line", f"{A}\n\u00a0\n\x0c\n{B}\n".encode(), ["A", None, None, "B"]),
    ("unicode line separators inside", (A.replace('"id": "A"', '"id": "A\u2028\u2029\x85"') + "\n" + B + "\n").encode(),
     ["A\u2028\u2029\x85", "B"]),
    ("vertical tab and form feed inside", (A.replace('"id": "A"', '"id": "A\x0b\x0c"') + "\n" + B + "\n").encode(),
     [None, "B"]),
    ("nul bytes", f"{A}\n\x00\x00\n{B}\n".encode(), ["A", None, "B"]),
    ("invalid utf-8", f"{A}\n".encode() + b'{"id": "\xff\xfe"}\n' + f"{B}\n".encode(), ["A", None, "B"]),
    ("array one line", f"[{A},{B},{C}]".encode(), ["A", "B", "C"]),
    ("array one line then blank", f"[{A},{B}]\n\n  \n".encode(), ["A", "B"]),
    ("array element per line", f"[\n{A},\n{B},\n{C}\n]\n".encode(), ["A", "B", "C"]),
    ("array pretty", json.dumps([dict(BASE, id="A"), dict(BASE, id="B")], indent=2).encode(), ["A", "B"]),
    ("array with a non-object element", f"[{A},\n42,\n{B}]\n".encode(), ["A", None, "B"]),
    ("empty array", b"[\n]\n", []),
    ("one pretty object", pretty("A").encode(), ["A"]),
    ("first line a whole array, then records", f"[{A},{B}]\n{C}\n".encode(), [None, "C"]),
    ("unfinished first line '[' then records", f"[{A}\n{B}\n{C}\n".encode(), [None, "B", "C"]),
    ("unfinished first array element then records", f"[{A[:40]}\n{B}\n{C}\n".encode(), [None, "B", "C"]),
    ("lone '[' first line then records", f"[\n{B}\n{C}\n".encode(), [None, "B", "C"]),
    ("unfinished first object then records", f"{A[:40]}\n{B}\n{C}\n".encode(), [None, "B", "C"]),
    ("unfinished first string then records", f'{{"id": "A\n{B}\n'.encode(), [None, "B"]),
    ("two pretty objects", (pretty("A") + "\n" + pretty("B") + "\n").encode(),
     [None] * (pretty("A").count("\n") + 1) * 2),
    ("garbage first line", f"garbage\n{B}\n".encode(), [None, "B"]),
    ("deep nesting", ("[" * 100000 + "\n" + B + "\n").encode(), [None, "B"]),
    ("deep nesting in an object", ('{"id": "D", "x": ' + "[" * 50000 + "]" * 50000 + "}\n" + B + "\n").encode(), [None, "B"]),
    ("deep but valid nesting", (rec("A", extra=json.loads("[" * 500 + "]" * 500)) + "\n").encode(), ["A"]),
    ("huge string value", (rec("A", note="x" * (8 << 20)) + "\n" + B + "\n").encode(), ["A", "B"]),
    ("huge integer", (A[:-1] + ', "n": ' + "9" * 6000 + "}\n" + B + "\n").encode(), ["A", "B"]),
    ("huge integer in an array", ("[" + A[:-1] + ', "n": ' + "9" * 6000 + "},\n" + B + "]\n").encode(), ["A", "B"]),
    ("huge number of tiny lines", ("{}\n" * 20000).encode(), [None] * 20000),
    ("record is a string, a number, null", f'"x"\n1\nnull\n{A}\n'.encode(), [None, None, None, "A"]),
    ("empty input", b"", []),
    ("only blank lines", b"\n \n\t\n\r\n", []),
]


def _results(sm3321, data: bytes, tmp_path: Path, name="in.jsonl"):
    path = tmp_path / name
    path.write_bytes(data)
    stream = open_records(str(path))
    try:
        return [sm3321.evaluate_json(t) for t in iter_records(stream)]
    finally:
        stream.close()


def _check(results, want, name):
    got = [None if r["status"] == "error" else r["patient_id"] for r in results]
    assert len(got) == len(want), f"{name}: {len(got)} results for {len(want)} records: {got[:8]}"
    assert got == want, f"{name}: {got[:8]} != {want[:8]}"
    for r in results:
        assert r["format"] == 1 and json.loads(json.dumps(r)) == r


@pytest.mark.parametrize("name,data,want", STREAMS, ids=[s[0] for s in STREAMS])
def test_one_result_per_record_in_order(sm3321, tmp_path, name, data, want):
    _check(_results(sm3321, data, tmp_path), want, name)


def test_binary_and_text_streams_are_framed_alike(sm3321):
    """evaluate_stream given a binary file reads it as the CLI does (LF only, BOM skipped)."""
    import io

    data = b"\xef\xbb\xbf" + f"{A}\r\n{rec('B')}\r{C}\n".encode()
    got = [r.get("patient_id") for r in sm3321.evaluate_stream(io.BytesIO(data))]
    assert got == ["A", None]


def test_a_broken_array_after_its_first_lines_says_where(sm3321, tmp_path):
    """A JSON array that breaks after it was clearly an array (a writer killed mid-element) cannot
    be framed into records any more: the records before are evaluated, then the stream error
    names the element; `elig evaluate -o` then writes no file (see test_cli_stream_error_...)."""
    data = f"[\n{A},\n{B},\n{C[:50]}".encode()
    path = tmp_path / "broken.json"
    path.write_bytes(data)
    seen = []
    with pytest.raises(RecordStreamError, match="element 3"):
        with open_records(str(path)) as s:
            for t in iter_records(s):
                seen.append(json.loads(t)["id"])
    assert seen == ["A", "B"]


def test_readers_are_linear(tmp_path):
    """Each form of an 8 MB input reads in about the time of JSON Lines, and a single 16 MB value
    is not re-parsed once per 64 KB chunk (this was quadratic). Compared with reading the same
    records as JSON Lines in the same run, never with a fixed time."""
    one = json.dumps(dict(BASE, id="x" * 40))
    n = (8 << 20) // len(one)
    forms = {
        "jsonl": "\n".join([one] * n) + "\n",
        "array per line": "[\n" + ",\n".join([one] * n) + "\n]\n",
        "array one line": "[" + ",".join([one] * n) + "]",
        "one huge value": '{\n"id": "' + "y" * (len(one) * n) + '"\n}\n',
    }
    times = {}
    for name, text in forms.items():
        p = tmp_path / "f.json"
        p.write_text(text)
        t0 = time.perf_counter()
        with open_records(str(p)) as s:
            k = sum(1 for _ in iter_records(s))
        times[name] = time.perf_counter() - t0
        assert k == (1 if name == "one huge value" else n)
    base = times["jsonl"]
    for name, t in times.items():
        assert t < 25 * base + 1.0, f"{name}: {t:.2f}s vs JSON Lines {base:.2f}s"


# ---------------------------------------------------------------------- the command line


def _run(args, **kw):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.update(kw.pop("env", {}))
    return subprocess.run(args, capture_output=True, cwd=kw.pop("cwd", ROOT), env=env, timeout=kw.pop("timeout", 120), **kw)


@pytest.fixture(scope="module")
def gen(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen")
    r = _run(ELIG + ["compile", str(RULES), "-o", str(out)])
    assert r.returncode == 0, r.stderr
    return out


def _lines(out: bytes):
    assert out.endswith(b"\n") or not out
    return [json.loads(x) for x in out.decode().split("\n")[:-1]]


def test_cli_and_script_frame_files_and_stdin_alike(gen, tmp_path):
    """The same bytes give the same results from `elig evaluate FILE`, `elig evaluate -` and
    `python sm3321.py FILE` / standard input: CR, BOM, blank lines, an unfinished first line."""
    data = b"\xef\xbb\xbf" + f"{A}\r\n{rec('B')[:-1]}\r}}\n\n  \n{rec('X')}\r{C}\n[{A}\n".encode()
    f = tmp_path / "in.jsonl"
    f.write_bytes(data)
    mod = gen / "sm3321.py"
    outs = [
        _run(ELIG + ["evaluate", "--module", str(mod), str(f)]),
        _run(ELIG + ["evaluate", "--module", str(mod), "-"], input=data),
        _run([sys.executable, str(mod), str(f)]),
        _run([sys.executable, str(mod)], input=data),
    ]
    for r in outs:
        assert r.returncode == 0 and b"Traceback" not in r.stderr, r.stderr
    results = [_lines(r.stdout) for r in outs]
    assert [x.get("patient_id") for x in results[0]] == ["A", "B", None, None]
    for other in results[1:]:
        assert other == results[0]


def test_output_naming_the_input_is_refused(gen, tmp_path):
    f = tmp_path / "in.jsonl"
    f.write_text(f"{A}\n{B}\n")
    digest = hashlib.sha256(f.read_bytes()).hexdigest()
    (tmp_path / "hard").hardlink_to(f)
    (tmp_path / "soft").symlink_to(f)
    mod = str(gen / "sm3321.py")
    for target in (f, tmp_path / "hard", tmp_path / "soft", Path(mod)):
        r = _run(ELIG + ["evaluate", "--module", mod, str(f), "-o", str(target)])
        assert r.returncode == 1 and b"Traceback" not in r.stderr
        assert b"is the input file" in r.stderr or b"is the evaluator module" in r.stderr, r.stderr
    with open(f, "ab") as same:  # `>> input`: standard output is the input
        r = subprocess.run(ELIG + ["evaluate", "--module", mod, str(f)], stdout=same, stderr=subprocess.PIPE,
                           cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
    assert r.returncode == 1 and b"standard output is the input file" in r.stderr
    assert hashlib.sha256(f.read_bytes()).hexdigest() == digest
    assert (gen / "sm3321.py").read_text().startswith("# @generated")


def test_output_file_honours_umask_and_non_regular_outputs_work(gen, tmp_path):
    f = tmp_path / "in.jsonl"
    f.write_text(f"{A}\n")
    mod = str(gen / "sm3321.py")
    for mask, mode in ((0o022, 0o644), (0o077, 0o600)):
        out = tmp_path / f"out{mask:o}.jsonl"
        r = _run(["sh", "-c", f"umask {mask:03o} && exec \"$@\"", "sh"] + ELIG + ["evaluate", "--module", mod, str(f), "-o", str(out)])
        assert r.returncode == 0, r.stderr
        assert stat.S_IMODE(out.stat().st_mode) == mode
        assert len(_lines(out.read_bytes())) == 1
    r = _run(ELIG + ["evaluate", "--module", mod, str(f), "-o", "/dev/null"])
    assert r.returncode == 0, r.stderr
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_cli_stream_error_leaves_no_output_file(gen, tmp_path):
    f = tmp_path / "broken.json"
    f.write_text(f"[\n{A},\n{B},\n{C[:50]}")
    out = tmp_path / "out.jsonl"
    out.write_text("previous results\n")
    r = _run(ELIG + ["evaluate", "--module", str(gen / "sm3321.py"), str(f), "-o", str(out)])
    assert r.returncode == 1 and b"element 3" in r.stderr and b"was not written" in r.stderr
    assert b"Traceback" not in r.stderr
    assert out.read_text() == "previous results\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.json", "out.jsonl"]


def test_closed_pipe_ends_quietly(gen, tmp_path):
    f = tmp_path / "in.jsonl"
    f.write_text((A + "\n") * 3000)
    for cmd in (ELIG + ["evaluate", "--module", str(gen / "sm3321.py"), str(f)], [sys.executable, str(gen / "sm3321.py"), str(f)]):
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
                             env=dict(os.environ, PYTHONPATH=str(ROOT)))
        first = p.stdout.readline()
        p.stdout.close()
        err = p.stderr.read()
        p.wait(timeout=120)
        assert json.loads(first)["patient_id"] == "A"
        assert b"Traceback" not in err and b"Exception ignored" not in err, err


def _big_input(tmp_path, n=40000):
    f = tmp_path / "big.jsonl"
    f.write_text("".join(rec(f"P{i}") + "\n" for i in range(n)))
    return f


@pytest.mark.slow
@pytest.mark.parametrize("sig,group", [(signal.SIGTERM, False), (signal.SIGTERM, True), (signal.SIGINT, True),
                                       (signal.SIGKILL, False)])
def test_killed_run_leaves_no_output_that_looks_complete(gen, tmp_path, sig, group):
    """SIGTERM / Ctrl-C (to the whole process group, workers included) / SIGKILL mid-run, both
    cores busy: the previous output file is intact, no traceback from the parent or any worker,
    and (except after SIGKILL, which cannot be caught) no temporary file is left behind."""
    f = _big_input(tmp_path)
    out = tmp_path / "out.jsonl"
    out.write_text("previous results\n")
    p = subprocess.Popen(ELIG + ["evaluate", "--module", str(gen / "sm3321.py"), "-j", "2", str(f), "-o", str(out)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, start_new_session=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)))
    deadline = time.monotonic() + 60
    while not [x for x in tmp_path.iterdir() if x.name.endswith(".part") and x.stat().st_size > 0]:
        assert time.monotonic() < deadline and p.poll() is None, "the run ended before it could be stopped"
        time.sleep(0.05)
    if group:
        os.killpg(p.pid, sig)
    else:
        os.kill(p.pid, sig)
    try:
        _, err = p.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)  # leave nothing running, then fail
        p.communicate()
        pytest.fail(f"the run did not end within 120 s of {signal.Signals(sig).name}")
    assert p.returncode in (-sig, 128 + sig), (p.returncode, err)
    assert b"Traceback" not in err, err.decode()[-2000:]
    assert out.read_text() == "previous results\n"
    if sig != signal.SIGKILL:
        assert f"stopped by {signal.Signals(sig).name}".encode() in err
        assert sorted(x.name for x in tmp_path.iterdir()) == ["big.jsonl", "out.jsonl"]
    deadline = time.monotonic() + 20  # the workers end with the run (a loaded machine may take a moment)
    while True:
        ps = subprocess.run(["ps", "-o", "pid=,stat=", "-s", str(p.pid)], capture_output=True, text=True)
        alive = [x for x in ps.stdout.splitlines() if x.split() and not x.split()[1].startswith("Z")]
        if not alive or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert not alive, f"processes of the run are left: {alive}"


# ---------------------------------------------------------------------- compile


def test_compile_honours_umask(tmp_path):
    for mask, mode in ((0o022, 0o644), (0o027, 0o640)):
        out = tmp_path / f"o{mask:o}"
        r = _run(["sh", "-c", f"umask {mask:03o} && exec \"$@\"", "sh"] + ELIG + ["compile", str(RULES), "-o", str(out)])
        assert r.returncode == 0, r.stderr
        for name in ("sm3321.py", "sm3321.html"):
            assert stat.S_IMODE((out / name).stat().st_mode) == mode, name


def test_compile_replaces_the_pair_together_or_not_at_all(tmp_path, monkeypatch):
    from compiler import outputs

    (tmp_path / "t.py").write_text("old py")
    (tmp_path / "t.html").write_text("old html")
    real = os.replace

    def failing(src, dst, *a, **k):
        if str(dst).endswith("t.html") and not str(src).endswith(".old"):
            raise OSError(28, "No space left on device")
        return real(src, dst, *a, **k)

    monkeypatch.setattr(outputs.os, "replace", failing)
    with pytest.raises(OSError):
        outputs.write_files_together({tmp_path / "t.py": "new py", tmp_path / "t.html": "new html"}, tmp_path)
    assert (tmp_path / "t.py").read_text() == "old py"
    assert (tmp_path / "t.html").read_text() == "old html"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.html", "t.py"]
    monkeypatch.setattr(outputs.os, "replace", real)
    outputs.write_files_together({tmp_path / "t.py": "new py", tmp_path / "t.html": "new html"}, tmp_path)
    assert (tmp_path / "t.py").read_text() == "new py" and (tmp_path / "t.html").read_text() == "new html"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.html", "t.py"]


@pytest.mark.slow
def test_concurrent_compiles_into_one_directory(tmp_path):
    out = tmp_path / "out"
    procs = [subprocess.Popen(ELIG + ["compile", str(RULES), "-o", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT))) for _ in range(4)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["sm3321.html", "sm3321.py"]
    assert (out / "sm3321.py").read_text() == (ROOT / "generated" / "sm3321.py").read_text()
    assert (out / "sm3321.html").read_text() == (ROOT / "generated" / "sm3321.html").read_text()


@pytest.mark.parametrize("trial", ["json", "re", "datetime"])
def test_trials_named_like_stdlib_modules_run_as_scripts(tmp_path, trial):
    from compiler.lower import module_name_for

    name = module_name_for(trial)
    assert name == f"{trial}_trial"
    assert name not in sys.stdlib_module_names


def test_a_stdlib_named_file_beside_the_module_does_not_shadow(gen, tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "sm3321.py").write_text((gen / "sm3321.py").read_text())
    for shadow in ("json", "re", "datetime", "fractions", "math", "io"):
        (d / f"{shadow}.py").write_text("raise SystemExit('shadowed standard library module ran')\n")
    r = _run([sys.executable, str(d / "sm3321.py")], input=f"{A}\n".encode())
    assert r.returncode == 0, r.stderr
    assert _lines(r.stdout)[0]["patient_id"] == "A"


# ---------------------------------------------------------------------- rule files and protocol


@pytest.fixture()
def rules_copy(tmp_path):
    import shutil

    d = tmp_path / "rules"
    shutil.copytree(RULES, d)
    return d


def test_rule_file_linking_outside_is_refused_and_never_echoed(rules_copy, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text('inclusion x { ref I1 quote "TOPSECRET-7f3a" require informed_consent\n')
    (rules_copy / "leak.elig").symlink_to(secret)
    (rules_copy / "env.elig").symlink_to("/proc/self/environ")
    r = _run(ELIG + ["check", str(rules_copy)], env={"ELIG_PROBE": "ENVSECRET-91c2"})
    assert r.returncode == 1
    assert b"leak.elig:1:1: error: this rule file is a link to a file outside" in r.stderr
    assert b"env.elig:1:1: error" in r.stderr
    assert b"TOPSECRET" not in r.stderr + r.stdout and b"ENVSECRET" not in r.stderr + r.stdout
    assert b"Traceback" not in r.stderr


def test_rule_file_link_inside_the_rules_directory_is_read(rules_copy):
    from compiler.pipeline import compile_rules

    (rules_copy / "sub").mkdir()
    (rules_copy / "exclusion.elig").rename(rules_copy / "sub" / "exclusion.txt")
    (rules_copy / "exclusion.elig").symlink_to(rules_copy / "sub" / "exclusion.txt")
    res = compile_rules(rules_copy, emit=False)
    assert res.ok, [d.message for d in res.diagnostics]


@pytest.mark.parametrize("kind", ["fifo", "too large", "directory", "outside"])
def test_protocol_path_regular_files_only(rules_copy, tmp_path, kind):
    from compiler.pipeline import compile_rules

    proto = rules_copy / "protocol.txt"
    proto.unlink()
    if kind == "fifo":
        os.mkfifo(proto)
    elif kind == "too large":
        with open(proto, "wb") as f:
            f.truncate(300 << 20)  # sparse: 300 MB that take no disk
    elif kind == "directory":
        proto.mkdir()
    else:
        (tmp_path / "elsewhere.txt").write_text("protocol")
        proto.symlink_to(tmp_path / "elsewhere.txt")
    res = compile_rules(rules_copy)  # opened non-blocking: a pipe cannot hang this
    errors = [d for d in res.diagnostics if d.severity == "error"]
    assert len(errors) == 1 and "protocol" in errors[0].message and errors[0].span.file.endswith("trial.elig")
    assert res.python is None
    if kind == "fifo":
        r = _run(ELIG + ["verify", str(rules_copy)], timeout=60)
        assert r.returncode == 1 and b"not a regular file" in r.stderr and b"Traceback" not in r.stderr


def test_rule_file_fifo_and_module_fifo_do_not_hang(rules_copy, tmp_path):
    os.mkfifo(rules_copy / "pipe.elig")
    r = _run(ELIG + ["check", str(rules_copy)], timeout=60)
    assert r.returncode == 1 and b"pipe.elig:1:1: error: cannot read this rule file: not a regular file" in r.stderr
    os.mkfifo(tmp_path / "mod.py")
    (tmp_path / "in.jsonl").write_text(A + "\n")
    r = _run(ELIG + ["evaluate", "--module", str(tmp_path / "mod.py"), str(tmp_path / "in.jsonl")], timeout=60)
    assert r.returncode == 1 and b"not a regular file" in r.stderr


# ---------------------------------------------------------------------- caches

AUDIT = r"""
import sys, pickle
opened = []
def hook(event, args):
    if event == "pickle.find_class":
        raise SystemExit("unpickled %r" % (args,))
    if event == "open" and isinstance(args[0], str) and "/.lark_" in args[0]:
        raise SystemExit("opened a Lark cache %s" % args[0])
sys.addaudithook(hook)
from compiler.cli import main
main()
"""


def _compile_audited(out, cache, **env):
    e = {"ELIG_CACHE_DIR": str(cache)}
    e.pop("ELIG_NO_CACHE", None)
    e.update(env)
    r = _run([sys.executable, "-c", AUDIT, "compile", str(RULES), "-o", str(out)], env=dict(e, ELIG_NO_CACHE="0"))
    assert r.returncode == 0 and b"Traceback" not in r.stderr, r.stderr
    return (out / "sm3321.py").read_text()


@pytest.mark.slow
def test_caches_are_verified_never_unpickled(tmp_path):
    """Cold and warm compiles unpickle nothing and open no Lark temp-dir cache; an edited,
    truncated or foreign entry is ignored and rebuilt (the output is the same); a cache directory
    others can write, or a cache file that is a symbolic link, is not used."""
    cache = tmp_path / "cache"
    want = (ROOT / "generated" / "sm3321.py").read_text()
    assert _compile_audited(tmp_path / "o1", cache) == want
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    names = sorted(p.name for p in cache.iterdir())
    assert any(n.startswith("lalr-") for n in names) and any(n.startswith("units-") for n in names)
    lalr = next(cache.glob("lalr-*.json"))
    units = next(cache.glob("units-*.json"))
    assert _compile_audited(tmp_path / "o2", cache) == want  # warm
    # the attack: a folded limit edited in the unit cache (9 -> 0.9) is not used
    data = units.read_bytes()
    head, _, payload = data.partition(b"\n")
    tampered = payload.replace(b"10", b"1", 5)
    assert tampered != payload
    units.write_bytes(head + b"\n" + tampered)
    lalr.write_bytes(lalr.read_bytes()[:-100])  # truncated
    assert _compile_audited(tmp_path / "o3", cache) == want
    assert units.read_bytes() == data  # rebuilt and saved again
    # a foreign entry: the right hash of other content, under another key
    fake = b'{"x": 1}'
    units.write_bytes(b"elig-cache 1 " + b"0" * 64 + b" " + hashlib.sha256(fake).hexdigest().encode() + b"\n" + fake)
    assert _compile_audited(tmp_path / "o4", cache) == want
    # an unsafe directory is not used at all
    unsafe = tmp_path / "unsafe"
    unsafe.mkdir(mode=0o777)
    os.chmod(unsafe, 0o777)
    assert _compile_audited(tmp_path / "o5", unsafe) == want
    assert list(unsafe.iterdir()) == []
    # a cache file that is a symbolic link is not read
    link_cache = tmp_path / "lc"
    link_cache.mkdir(mode=0o700)
    (link_cache / lalr.name).symlink_to(lalr)
    target = lalr.read_bytes()
    assert _compile_audited(tmp_path / "o6", link_cache) == want
    # not followed: the link itself was replaced by a fresh entry; its target is untouched
    assert not (link_cache / lalr.name).is_symlink()
    assert lalr.read_bytes() == target


def test_cache_module_refuses_what_it_should(tmp_path, monkeypatch):
    from compiler import cache

    monkeypatch.setenv("ELIG_CACHE_DIR", str(tmp_path / "c"))
    monkeypatch.delenv("ELIG_NO_CACHE", raising=False)
    assert cache.write("e.json", "k1", b"payload")
    assert cache.read("e.json", "k1") == b"payload"
    assert cache.read("e.json", "k2") is None  # another key
    p = tmp_path / "c" / "e.json"
    p.write_bytes(p.read_bytes().replace(b"payload", b"paYload"))
    assert cache.read("e.json", "k1") is None  # content does not match its hash
    assert cache.write("e.json", "k1", b"payload")
    os.chmod(p, 0o666)
    assert cache.read("e.json", "k1") is None  # others may write it
    os.chmod(p, 0o600)
    os.chmod(tmp_path / "c", 0o775)
    assert cache.read("e.json", "k1") is None and not cache.write("f.json", "k1", b"x")
    os.chmod(tmp_path / "c", 0o700)
    os.unlink(p)
    os.mkfifo(p)
    assert cache.read("e.json", "k1") is None  # a pipe: refused without blocking
    assert cache.loads_tagged(cache.dumps_tagged({1: (2, [3, {"a": (4,)}])})) == {1: (2, [3, {"a": (4,)}])}

