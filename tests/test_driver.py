"""The one batch driver (compiler/driver.py) and the three commands that use it: `elig evaluate`,
`elig diff --records` and FHIR input. Exactly one result per item, in input order, however the
chunks are spread over worker processes; a worker that dies stops the run with a clear error
(never a hang, never a gap in the results, never a half-written output file); a stopped run
leaves no worker behind and no traceback."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from compiler import driver
from compiler.batch import ModuleSource
from conftest import ROOT, RULES

ELIG = [sys.executable, "-m", "compiler.cli"]
ENV = dict(os.environ, PYTHONPATH=str(ROOT))
BASE = json.loads((ROOT / "tests" / "cases" / "_base" / "baseline.json").read_text(encoding="utf-8"))


# ---------------------------------------------------------------------- the driver itself
# (work and init are top-level: a worker process finds them by name)


def _init_offset(offset):
    return {"offset": offset, "pid": os.getpid()}


def _work(state, chunk, scale):
    return [(x, x * scale + state["offset"], state["pid"]) for x in chunk]


def _work_dies_on(state, chunk, bad):
    if bad in chunk:
        os.kill(os.getpid(), signal.SIGKILL)  # a crash no Python code can catch
    return list(chunk)


def _work_raises_on(state, chunk, bad):
    if bad in chunk:
        raise ZeroDivisionError("a defect")
    return list(chunk)


def _collect(**kw):
    got = []
    driver.run_chunks(range(1000), _work, got.extend, init=_init_offset, initargs=(5,), args=(3,),
                      size=7, threshold=50, **kw)
    return got


def test_one_result_per_item_in_order_here_and_on_workers():
    here = _collect(jobs=1)
    spread = _collect(jobs=2)
    assert [x for x, _, _ in here] == list(range(1000))
    assert [(x, y) for x, y, _ in spread] == [(x, y) for x, y, _ in here] == [(x, 3 * x + 5) for x in range(1000)]
    assert {p for _, _, p in here} == {os.getpid()}
    assert os.getpid() not in {p for _, _, p in spread}  # the chunks really ran on the workers
    # a state the caller already has is used as is for a run here
    got = []
    driver.run_chunks(range(10), _work, got.extend, init=_init_offset, initargs=(5,), state={"offset": 0, "pid": 1},
                      args=(2,), jobs=0, size=4, threshold=50)
    assert got == [(x, 2 * x, 1) for x in range(10)]


def test_small_batch_runs_here_large_one_on_every_core():
    pids = set()
    driver.run_chunks(range(49), _work, lambda r: pids.update(p for *_, p in r), init=_init_offset, initargs=(0,),
                      args=(1,), size=7, threshold=50)
    assert pids == {os.getpid()}
    pids.clear()
    driver.run_chunks(range(50), _work, lambda r: pids.update(p for *_, p in r), init=_init_offset, initargs=(0,),
                      args=(1,), size=7, threshold=50, jobs=0 if (os.cpu_count() or 1) > 1 else 2)
    assert os.getpid() not in pids


def test_a_worker_that_dies_stops_the_run_with_the_records_it_took():
    got = []
    t = time.monotonic()
    with pytest.raises(driver.WorkerDied) as exc:
        driver.run_chunks(range(2000), _work_dies_on, got.extend, init=_init_offset, initargs=(0,), args=(1234,),
                          jobs=2, size=10, threshold=50)
    assert time.monotonic() - t < 60  # never a hang
    assert got == list(range(len(got))) and len(got) <= 1230  # the results before it, in order, no gap
    assert exc.value.first == len(got) + 1 and exc.value.first <= 1231 <= 1240 <= exc.value.last
    assert "ended abruptly again and again" in str(exc.value) and f"records {exc.value.first}-" in str(exc.value)


def _work_dies_once_on(state, chunk, bad, flag):
    if bad in chunk and not os.path.exists(flag):
        Path(flag).write_text("died once")
        os.kill(os.getpid(), signal.SIGKILL)
    return list(chunk)


def test_the_chunks_a_dead_worker_lost_are_run_again(tmp_path):
    """A worker killed once (from outside, by the out-of-memory killer): the run goes on and every
    item still gets its one result, in order."""
    got = []
    flag = tmp_path / "died"
    driver.run_chunks(range(2000), _work_dies_once_on, got.extend, init=_init_offset, initargs=(0,),
                      args=(1234, str(flag)), jobs=2, size=10, threshold=50)
    assert flag.exists()
    assert got == list(range(2000))


def test_a_defect_in_work_propagates_from_a_worker():
    with pytest.raises(ZeroDivisionError, match="a defect"):
        driver.run_chunks(range(500), _work_raises_on, lambda r: None, init=_init_offset, initargs=(0,), args=(321,),
                          jobs=2, size=10, threshold=50)


def test_chunked():
    assert list(driver.chunked(iter(range(7)), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(driver.chunked([], 3)) == []


# ---------------------------------------------------------------------- elig evaluate


def _rec(pid: str) -> str:
    return json.dumps(dict(BASE, id=pid))


@pytest.fixture(scope="module")
def crashing_module(tmp_path_factory):
    """The SM3321 evaluator, except that evaluating the record of patient CRASH kills its
    process (as a crash in C code or the kernel's out-of-memory killer would)."""
    p = tmp_path_factory.mktemp("mod") / "sm3321.py"
    p.write_text((ROOT / "generated" / "sm3321.py").read_text(encoding="utf-8") + (
        "\n\n_evaluate_json = evaluate_json\n\n\n"
        "def evaluate_json(line):\n"
        "    if '\"CRASH\"' in line:\n"
        "        import os, signal\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "    return _evaluate_json(line)\n"), encoding="utf-8")
    return p


@pytest.mark.slow
def test_evaluate_with_a_record_that_kills_its_worker(crashing_module, tmp_path):
    f = tmp_path / "in.jsonl"
    f.write_text("".join(_rec("CRASH" if i == 2500 else f"P{i}") + "\n" for i in range(3000)), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    out.write_text("previous results\n")
    r = subprocess.run(ELIG + ["evaluate", "--module", str(crashing_module), "-j", "2", str(f), "-o", str(out)],
                       capture_output=True, cwd=ROOT, env=ENV, timeout=120)
    assert r.returncode == 1, r.stderr
    err = r.stderr.decode()
    assert "ended abruptly again and again" in err and "was not written" in err, err
    assert "Traceback" not in err, err
    assert out.read_text() == "previous results\n"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["in.jsonl", "out.jsonl"]
    # without the crashing record the same module screens every record
    f.write_text("".join(_rec(f"P{i}") + "\n" for i in range(3000)), encoding="utf-8")
    r = subprocess.run(ELIG + ["evaluate", "--module", str(crashing_module), "-j", "2", str(f), "-o", str(out)],
                       capture_output=True, cwd=ROOT, env=ENV, timeout=120)
    assert r.returncode == 0, r.stderr
    assert [json.loads(x)["patient_id"] for x in out.read_text().splitlines()] == [f"P{i}" for i in range(3000)]


def _children(pid: int) -> list[int]:
    ps = subprocess.run(["ps", "-o", "pid=,stat=", "--ppid", str(pid)], capture_output=True, text=True)
    return [int(x.split()[0]) for x in ps.stdout.splitlines() if x.split() and not x.split()[1].startswith("Z")]


def _session_alive(sid: int) -> list[str]:
    ps = subprocess.run(["ps", "-o", "pid=,stat=", "-s", str(sid)], capture_output=True, text=True)
    return [x for x in ps.stdout.splitlines() if x.split() and not x.split()[1].startswith("Z")]


def _wait_for_workers(p, n=2, timeout=60):
    deadline = time.monotonic() + timeout
    while len(_children(p.pid)) < n:
        assert time.monotonic() < deadline and p.poll() is None, "the run ended before its workers started"
        time.sleep(0.05)
    return _children(p.pid)


def _end(p, timeout=120):
    try:
        return p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)  # leave nothing running, then fail
        p.communicate()
        pytest.fail("the run did not end")


def _no_worker_left(sid):
    deadline = time.monotonic() + 20
    while _session_alive(sid):
        assert time.monotonic() < deadline, _session_alive(sid)
        time.sleep(0.1)


@pytest.mark.slow
def test_evaluate_when_a_worker_is_killed_from_outside(tmp_path):
    """The chunks the killed worker lost are evaluated again: the output is complete, in order."""
    n = 12000
    f = tmp_path / "in.jsonl"
    f.write_text("".join(_rec(f"P{i}") + "\n" for i in range(n)), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    p = subprocess.Popen(ELIG + ["evaluate", "--module", str(ROOT / "generated" / "sm3321.py"), "-j", "2", str(f),
                                 "-o", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, env=ENV,
                         start_new_session=True)
    os.kill(_wait_for_workers(p)[0], signal.SIGKILL)
    _, err = _end(p)
    assert p.returncode == 0, err
    assert b"Traceback" not in err, err
    assert [json.loads(x)["patient_id"] for x in out.read_text().splitlines()] == [f"P{i}" for i in range(n)]
    assert sorted(x.name for x in tmp_path.iterdir()) == ["in.jsonl", "out.jsonl"]
    _no_worker_left(p.pid)


# ---------------------------------------------------------------------- elig diff --records


@pytest.fixture(scope="module")
def many_records(tmp_path_factory):
    f = tmp_path_factory.mktemp("recs") / "in.jsonl"
    f.write_text("".join(_rec(f"P{i}") + "\n" for i in range(60000)), encoding="utf-8")
    return f


@pytest.mark.slow
@pytest.mark.parametrize("sig,group", [(signal.SIGTERM, False), (signal.SIGINT, True), (signal.SIGKILL, False)])
def test_killed_diff_records_leaves_no_file_and_no_worker(many_records, tmp_path, sig, group):
    """`elig diff --records -o FILE` stopped while it screens (both cores busy): FILE as it was,
    nothing beside it, no traceback from the run or a worker, and every worker ends with it."""
    out = tmp_path / "impact.json"
    out.write_text("previous report\n")
    p = subprocess.Popen(ELIG + ["diff", str(RULES), str(RULES), "--records", str(many_records), "--format", "json",
                                 "-j", "2", "-o", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
                         env=ENV, start_new_session=True)
    _wait_for_workers(p)
    time.sleep(0.3)
    if group:
        os.killpg(p.pid, sig)
    else:
        os.kill(p.pid, sig)
    _, err = _end(p)
    assert p.returncode in (-sig, 128 + sig), (p.returncode, err)
    assert b"Traceback" not in err, err.decode()[-2000:]
    if sig == signal.SIGINT:
        assert b"interrupted" in err
    assert out.read_text() == "previous report\n"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["impact.json"]
    _no_worker_left(p.pid)


@pytest.mark.slow
def test_diff_records_on_workers_counts_every_record_in_order(tmp_path):
    """Screening on two workers gives the impact screening here gives, record numbers included."""
    f = tmp_path / "in.jsonl"
    lines = [_rec(f"P{i}") for i in range(2600)]
    lines[7] = "not json"
    lines[2345] = json.dumps(dict(BASE, id="OLD", birth_date="1920-01-01"))
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    outs = {}
    for jobs in (1, 2):
        r = subprocess.run(ELIG + ["diff", str(RULES), str(RULES), "--records", str(f), "--format", "json",
                                   "-j", str(jobs)], capture_output=True, cwd=ROOT, env=ENV, timeout=300)
        assert r.returncode == 0, r.stderr
        outs[jobs] = json.loads(r.stdout)["impact"]
    assert outs[1] == outs[2]
    assert outs[2]["records"] == 2600 and outs[2]["old_statuses"]["error"] == 1


# ---------------------------------------------------------------------- FHIR input


def _bundle(pid, valid=True):
    patient = {"resourceType": "Patient", "id": pid, "gender": "female", "birthDate": "1960-03-02"}
    entry = [{"resource": patient}]
    if not valid:  # a resource that does not validate: that patient's result is an error
        entry.append({"resource": {"resourceType": "Observation", "id": "o1", "status": "final",
                                   "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
                                   "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": "2026-13-45",
                                   "valueQuantity": {"value": 95, "unit": "g/L"}}})
    return {"resourceType": "Bundle", "type": "collection", "entry": entry}


@pytest.mark.parametrize("jobs", [1, 2])
def test_fhir_patients_that_cannot_be_mapped_keep_their_place(tmp_path, jobs):
    from compiler.fhir import run as R
    from compiler.fhir.sources import iter_bundles

    src = ModuleSource((ROOT / "generated" / "sm3321.py").read_text(encoding="utf-8"), "sm3321")
    module = src.load()
    n = 300  # above the FHIR driver's threshold: spread over the workers with jobs=2
    bad = {0, 63, 64, 150, 299}
    f = tmp_path / "bundles.jsonl"
    f.write_text("".join(json.dumps(_bundle(f"p{i}", i not in bad)) + "\n" for i in range(n)), encoding="utf-8")
    for mode in ("results", "records"):
        out = io.StringIO()
        R.run(iter_bundles(str(f)), out, source=src, module=module, mode=mode, jobs=jobs,
              anchors_fixed={"first_dose": "2026-02-01"})
        lines = [json.loads(x) for x in out.getvalue().splitlines()]
        assert len(lines) == n
        if mode == "results":
            assert [x["patient_id"] for x in lines] == [f"p{i}" for i in range(n)]
            assert {i for i, x in enumerate(lines) if x["status"] == "error"} == bad
            assert all("does not validate" in lines[i]["error"] for i in bad)
        else:
            assert [x["id"] for x in lines] == [f"p{i}" for i in range(n)]
            assert {i for i, x in enumerate(lines) if "error" in x} == bad


@pytest.mark.slow
@pytest.mark.parametrize("command", ["fhir-to-records", "evaluate"])
def test_killed_fhir_run_leaves_no_file_and_no_worker(tmp_path, command):
    """`elig fhir-to-records -o FILE` / `elig evaluate --from fhir -o FILE` stopped by SIGTERM while
    its workers map patients: FILE as it was, no temporary file beside it, no traceback."""
    work = tmp_path / "work"
    work.mkdir()
    f = work / "bundles.jsonl"
    f.write_text("".join(json.dumps(_bundle(f"p{i}")) + "\n" for i in range(20000)), encoding="utf-8")
    out = work / "out.jsonl"
    out.write_text("previous output\n")
    args = ["--from", "fhir"] if command == "evaluate" else []
    p = subprocess.Popen(ELIG + [command, "--module", str(ROOT / "generated" / "sm3321.py"), *args, "-j", "2",
                                 "--anchor", "first_dose=2026-02-01", "-o", str(out), str(f)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, env=ENV, start_new_session=True)
    _wait_for_workers(p)
    time.sleep(0.3)
    os.kill(p.pid, signal.SIGTERM)
    _, err = _end(p)
    assert p.returncode in (-signal.SIGTERM, 128 + signal.SIGTERM), (p.returncode, err)
    assert b"Traceback" not in err, err.decode()[-2000:]
    assert out.read_text() == "previous output\n"
    assert sorted(x.name for x in work.iterdir()) == ["bundles.jsonl", "out.jsonl"]
    _no_worker_left(p.pid)
