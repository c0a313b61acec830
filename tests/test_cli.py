"""The `elig` command line: check, compile (atomic, --check), evaluate (streams, every record)."""

import io
import json
import shutil
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from compiler import __version__
from compiler.cli import main
from conftest import ROOT, RULES

sys.path.insert(0, str(ROOT / "benchmarks"))


@pytest.fixture()
def runner():
    return CliRunner()


@pytest.fixture(scope="module")
def module_path(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen")
    res = CliRunner().invoke(main, ["compile", str(RULES), "-o", str(out)])
    assert res.exit_code == 0, res.output
    return out / "sm3321.py"


def test_version_and_help_with_examples(runner):
    res = runner.invoke(main, ["--version"])
    assert res.exit_code == 0 and __version__ in res.output
    for cmd in ("check", "compile", "evaluate"):
        res = runner.invoke(main, [cmd, "--help"])
        assert res.exit_code == 0
        assert "Example" in res.output and f"elig {cmd}" in res.output, cmd


def test_check_ok(runner):
    res = runner.invoke(main, ["check", str(RULES)])
    assert res.exit_code == 0, res.output
    assert "44 criteria" in res.output


def _copy_rules(tmp_path) -> Path:
    dst = tmp_path / "rules"
    shutil.copytree(RULES, dst)
    return dst


def test_check_reports_positioned_errors_without_traceback(runner, tmp_path):
    rules = _copy_rules(tmp_path)
    inc = rules / "inclusion.elig"
    text = inc.read_text(encoding="utf-8").replace("require creatinine_clearance >= 50 mL/min",
                                                  "require creatinine_clearance >= 50 g/L")
    inc.write_text(text, encoding="utf-8")
    res = runner.invoke(main, ["check", str(rules)])
    assert res.exit_code == 1
    line = next(i for i, l in enumerate(text.splitlines(), 1) if "50 g/L" in l)
    col = text.splitlines()[line - 1].index("50 g/L") + 1
    assert f"inclusion.elig:{line}:{col}: error: cannot compare mL/min with g/L" in res.output
    assert "^^^" in res.output and "Traceback" not in res.output


def test_compile_writes_both_files_and_check_detects_staleness(runner, tmp_path):
    out = tmp_path / "out"
    res = runner.invoke(main, ["compile", str(RULES), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert (out / "sm3321.py").is_file() and (out / "sm3321.html").is_file()
    res = runner.invoke(main, ["compile", str(RULES), "-o", str(out), "--check"])
    assert res.exit_code == 0, res.output
    (out / "sm3321.html").write_text("edited by hand", encoding="utf-8")
    before = (out / "sm3321.py").read_bytes()
    res = runner.invoke(main, ["compile", str(RULES), "-o", str(out), "--check"])
    assert res.exit_code == 1
    assert "stale:" in res.output and "sm3321.html" in res.output and "sm3321.py" not in res.output.split("regenerate")[0].replace("sm3321.html", "")
    assert (out / "sm3321.html").read_text() == "edited by hand"  # --check writes nothing
    assert (out / "sm3321.py").read_bytes() == before


def test_failed_compile_leaves_output_directory_exactly_as_it_was(runner, tmp_path):
    out = tmp_path / "out"
    runner.invoke(main, ["compile", str(RULES), "-o", str(out)])
    snapshot = {p.name: p.read_bytes() for p in out.iterdir()}
    rules = _copy_rules(tmp_path)
    (rules / "broken.elig").write_text("inclusion broken { ref I1 quote \"x\" require latest nothing ever >= 1 }\n")
    res = runner.invoke(main, ["compile", str(rules), "-o", str(out)])
    assert res.exit_code == 1
    assert {p.name: p.read_bytes() for p in out.iterdir()} == snapshot


def _records(n=5):
    base = json.loads((ROOT / "tests" / "cases" / "_base" / "baseline.json").read_text())
    out = []
    for i in range(n):
        r = json.loads(json.dumps(base))
        r["id"] = f"P{i}"
        out.append(r)
    return out


def test_evaluate_jsonl_keeps_order_and_gives_one_result_per_line(runner, module_path, tmp_path):
    recs = _records(3)
    lines = [json.dumps(recs[0]), "{not json", json.dumps([1, 2]), json.dumps(recs[1]), json.dumps({"format": 2, "id": "X"}),
             json.dumps(recs[2])]
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(lines) + "\n")
    res = runner.invoke(main, ["evaluate", "--module", str(module_path), str(src)])
    assert res.exit_code == 0, res.output
    got = [json.loads(l) for l in res.output.splitlines()]
    assert [g["patient_id"] for g in got] == ["P0", None, None, "P1", "X", "P2"]
    assert [g["status"] for g in got] == ["eligible", "error", "error", "eligible", "error", "eligible"]
    assert "not JSON" in got[1]["error"] and "format 2" in got[4]["error"]


def test_evaluate_array_object_and_stdin(runner, module_path, tmp_path):
    recs = _records(2)
    arr = tmp_path / "arr.json"
    arr.write_text(json.dumps(recs, indent=2))
    res = runner.invoke(main, ["evaluate", "--module", str(module_path), str(arr)])
    assert res.exit_code == 0 and [json.loads(l)["patient_id"] for l in res.output.splitlines()] == ["P0", "P1"]
    one = tmp_path / "one.json"
    one.write_text(json.dumps(recs[0], indent=2))
    res = runner.invoke(main, ["evaluate", "--rules", str(RULES), str(one)])
    assert res.exit_code == 0 and len(res.output.splitlines()) == 1
    res = runner.invoke(main, ["evaluate", "--module", str(module_path), "-"], input=json.dumps(recs[1]) + "\n")
    assert res.exit_code == 0 and json.loads(res.output)["patient_id"] == "P1"


def test_evaluate_text_and_summary(runner, module_path, tmp_path):
    recs = _records(2)
    recs[1]["observations"] = [o for o in recs[1]["observations"] if o["code"] != "hemoglobin"]
    recs[1]["observations"].append({"code": "hemoglobin", "value": 80, "unit": "g/L", "date": "2026-01-12"})
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in recs))
    res = runner.invoke(main, ["evaluate", "--module", str(module_path), "--format", "text", str(src)])
    assert res.exit_code == 0
    assert "P1: ineligible" in res.output and "hemoglobin 80 g/L" in res.output
    res = runner.invoke(main, ["evaluate", "--module", str(module_path), "--summary", str(src)])
    assert res.exit_code == 0
    row = next(l for l in res.output.splitlines() if l.startswith("I7b") and " hemoglobin " in l)
    assert row.split()[2:] == ["1", "1", "0", "0", "1"]  # pass fail unknown review fail-only-this
    assert "2 records: eligible 1, ineligible 1" in res.output


def test_evaluate_bad_invocations(runner, module_path, tmp_path):
    res = runner.invoke(main, ["evaluate", "--module", str(module_path), str(tmp_path / "nope.jsonl")])
    assert res.exit_code != 0 and "cannot open" in res.output
    res = runner.invoke(main, ["evaluate", str(tmp_path / "x")])
    assert res.exit_code != 0 and "exactly one of" in res.output
    rules = tmp_path / "bad"
    rules.mkdir()
    (rules / "a.elig").write_text("trial T { title \"t\" protocol \"p\" anchors a }\ninclusion a1 { ref I1 quote \"q\" require nope }\n")
    src = tmp_path / "in.jsonl"
    src.write_text("{}\n")
    res = runner.invoke(main, ["evaluate", "--rules", str(rules), str(src)])
    assert res.exit_code != 0 and "unknown name 'nope'" in res.output and "do not compile" in res.output


@pytest.mark.slow
def test_parallel_batch_keeps_every_record_in_order(module_path, tmp_path):
    import cohort
    from compiler import batch

    src = tmp_path / "cohort.jsonl"
    n = 3000
    cohort.write_jsonl(str(src), n, seed=7, corrupt_rate=0.05)
    source = batch.ModuleSource(module_path.read_text(encoding="utf-8"), "sm3321")
    module = source.load()
    outputs = {}
    for jobs in (1, 2):
        out = io.StringIO()
        with open(src, encoding="utf-8") as f:
            batch.run(source, module, f, out, jobs=jobs)
        outputs[jobs] = out.getvalue().splitlines()
    assert len(outputs[1]) == n
    assert outputs[1] == outputs[2]
    ids_in = []
    for line in src.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line, parse_int=lambda d: 0 if len(d.lstrip("-")) > 4300 else int(d))  # as the evaluator reads it
            ids_in.append(rec.get("id") if isinstance(rec, dict) and isinstance(rec.get("id"), str) and rec["id"].strip() else None)
        except ValueError:
            ids_in.append(None)
    assert [json.loads(l)["patient_id"] for l in outputs[2]] == ids_in


def test_batch_output_is_exactly_json_dumps_of_each_result(sm3321):
    """The batch writes results through a serializer that encodes the fixed parts once; its text
    must be byte for byte json.dumps(result), including strange strings (non-ASCII, line
    separators, lone surrogates, control characters, quotes) in ids, reasons and warnings."""
    from cohort import generate

    from compiler.batch import ResultWriter

    writer = ResultWriter(sm3321.CRITERIA)
    records = list(generate(400, seed=77, corrupt_rate=0.05))
    odd = ["Zoë \u2028 \"quoted\" \\ back", "\ud800 lone", "tab\there\x01", "日本語", "\U0001F600"]
    for i, text in enumerate(odd):
        rec = next(r for r in records if isinstance(r, dict))
        rec = json.loads(json.dumps(rec))
        rec["id"] = text
        rec["observations"] = rec["observations"] + [{"code": text, "date": "2026-01-01", "value": 1}]
        rec["facts"] = {text: True}
        records.append(rec)
    fast = 0
    for rec in records:
        result = sm3321.evaluate_json(rec) if isinstance(rec, str) else sm3321.evaluate(rec)
        assert writer.dumps(result) == json.dumps(result)
        if result["status"] != "error":
            assert writer._fast(result) == json.dumps(result)  # the fast path itself, not its fallback
            fast += 1
    assert fast > 350
    # a result of another shape is still written correctly
    assert writer.dumps({"format": 1, "patient_id": None, "status": "error", "error": "x\u2028"}) == \
        json.dumps({"format": 1, "patient_id": None, "status": "error", "error": "x\u2028"})


def test_progress_bar_on_a_terminal_for_a_file(module_path, tmp_path):
    """On a terminal, `elig evaluate FILE` draws a bar of the share of the file read; the records
    still go to standard output, complete and in order."""
    import os
    import pty
    import subprocess

    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in _records(40)) + "\n", encoding="utf-8")
    master, slave = pty.openpty()
    try:
        proc = subprocess.run([sys.executable, "-m", "compiler.cli", "evaluate", "--module", str(module_path), str(src)],
                              cwd=str(ROOT), stdout=subprocess.PIPE, stderr=slave, timeout=120)
        os.close(slave)
        seen = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(master)
    assert proc.returncode == 0
    assert len(proc.stdout.decode().splitlines()) == 40
    text = seen.decode()
    assert "[" + "#" * 30 + "] 100% 40 records" in text, text


def test_progress_line_without_a_known_size():
    from compiler.batch import Progress

    out = io.StringIO()
    p = Progress(out)
    assert p.line(1234, p.start + 2).startswith("1,234 records, 617/s")
    half = Progress(out, 1000, width=10)
    half.done = 500
    line = half.line(10, half.start + 4)
    assert line.startswith("[#####.....]  50% 10 records") and line.endswith("0:04 left"), line
