"""Population screening on DuckDB beside the Python evaluator, on the same cohort records in the
same run (benchmarks/cohort.py). Prints a table of times and ratios.

    python benchmarks/bench_sql.py                 # 1,000,000 records (takes long on 2 cores)
    python benchmarks/bench_sql.py --n 100000      # a smaller run
    python benchmarks/bench_sql.py --n 100000 --load-only --reference   # the loader, before and now
    python benchmarks/bench_sql.py --input c.jsonl --load-only --baseline /tmp/main   # and another checkout's
    (the cohort file is written once under out/bench-sql/ and reused; --dir to put it elsewhere)

Measures: the Python module per record (one core, a sample); DuckDB screening of records already
loaded (a DuckDB file), results written as Parquet, with the planning time of the script shown
apart (it does not grow with the records); JSON Lines -> load -> screen end to end in one process
(peak memory of that process); `elig screen` on JSON Lines end to end (records/s). Spark is not
measured here (docs/sql-spark.md).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

import cohort  # noqa: E402


def _compiled():
    from compiler.pipeline import compile_rules

    res = compile_rules(ROOT / "sm3321_rules")
    assert res.ok
    mod = types.ModuleType("sm3321_bench")
    exec(compile(res.python, "<sm3321>", "exec"), mod.__dict__)
    return res, mod


def python_sample(mod, path: Path, k: int) -> tuple[float, float, list]:
    """Wall and CPU seconds per record of the Python module on the first k records, and its
    results (records read for the first time: parsing included, caches cold)."""
    lines = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            lines.append(line)
            if len(lines) >= k:
                break
    t, c = time.perf_counter(), _cpu()
    out = [mod.evaluate_json(line) for line in lines]
    return (time.perf_counter() - t) / len(lines), (_cpu() - c) / len(lines), out


def python_per_record(mod, path: Path, sample: int) -> tuple[float, float]:
    wall, cpu, _ = python_sample(mod, path, sample)
    return wall, cpu


def duckdb_loaded(res, mod, db: Path, out: Path, relational: bool = True) -> dict:
    """Screening of records already loaded (a DuckDB file), Parquet results written; the
    relational form of the script (compiler/sql/relational.py) or the lambda form."""
    from compiler.sql import screen

    con = screen.connect(str(db), memory_limit="2GB")
    script = screen.prepare_script(res.program, res.lowered, relational=relational)
    t0 = time.perf_counter()
    c0 = _cpu()
    phases: dict = {}
    screen.run_script(con, res.program, mod, script, timings=phases)
    t1, c1 = time.perf_counter(), _cpu()
    screen.write_results_parquet(con, script, str(out))
    phases["write"] = (time.perf_counter() - t1, _cpu() - c1)
    total = time.perf_counter() - t0
    cpu = _cpu() - c0
    n = con.execute("SELECT count(*) FROM patients").fetchone()[0]
    con.close()
    return {"n": n, "seconds": total, "cpu": cpu, "phases": phases,
            "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def plan_seconds(res, mod, tmp: Path) -> float:
    """The same screening over one record: its fixed cost (planning the input and the 44 steps;
    it does not depend on the data)."""
    from compiler.sql import loader, screen

    one = tmp / "one.jsonl"
    cohort.write_jsonl(str(one), 1, seed=1)
    con = screen.connect()
    loader.load_jsonl(con, str(one))
    script = screen.prepare_script(res.program, res.lowered)
    t = time.perf_counter()
    screen.run_script(con, res.program, mod, script)
    con.close()
    return time.perf_counter() - t


# the loader before issue 12 (tests/loader_reference.py), run as `elig load -o FILE.duckdb` runs
# the current one, to time both in the same run (--load-only --reference)
_REFERENCE = """import sys
sys.path.insert(0, 'tests')
import loader_reference
from compiler.sql import screen
con = screen.connect(sys.argv[2], memory_limit='2GB')
loader_reference.load_jsonl(con, sys.argv[1])
con.close()
"""


def load_to_db(jsonl: Path, db: Path, reference: bool = False, root: Path = ROOT) -> dict:
    """`elig load JSONL -o DB` (or the reference loader) in a child process, run from the
    checkout `root` (another checkout: its own loader): wall and CPU seconds, peak RSS of that
    child in MiB."""
    cmd = ([sys.executable, "-c", _REFERENCE, str(jsonl), str(db)] if reference
           else [sys.executable, "-m", "compiler.cli", "load", str(jsonl), "-o", str(db)])
    if db.exists():
        db.unlink()
    t = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        p = subprocess.Popen(cmd, cwd=root, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t
        err.seek(0)
        assert p.returncode == 0, err.read().decode(errors="replace")
    return {"seconds": wall, "cpu": usage.ru_utime + usage.ru_stime, "peak": usage.ru_maxrss / 1024}


def _load_row(label: str, m: dict, n: int) -> tuple[str, str]:
    # cores busy: CPU seconds per second of wall time (2.0 = both cores of a 2-core machine)
    return (label, f"{m['seconds']:,.1f} s = {m['seconds'] / n * 1e6:,.0f} µs/record; CPU {m['cpu'] / n * 1e6:,.0f} "
                   f"µs/record ({m['cpu'] / m['seconds']:,.2f} cores busy); peak {m['peak']:,.0f} MiB")


def load_only(jsonl: Path, tmp: Path, n: int, reference: bool, baseline: str | None = None) -> list[tuple[str, str]]:
    """The loader alone (and the reference loader before it, and the `elig load` of another
    checkout, same run): --load-only."""
    rows = []
    if reference:
        ref = load_to_db(jsonl, tmp / "reference.duckdb", reference=True)
    if baseline:
        base = load_to_db(jsonl, tmp / "baseline.duckdb", root=Path(baseline).resolve())
    new = load_to_db(jsonl, tmp / "cohort.duckdb")
    rows.append(_load_row(f"elig load {n:,} JSON Lines records to a DuckDB file", new, n))
    if baseline:
        rows.append(_load_row(f"  elig load of {baseline}, same records, same run", base, n))
        rows.append(("  ratio (baseline / now)", f"wall {base['seconds'] / new['seconds']:,.2f}x, "
                                                 f"CPU {base['cpu'] / new['cpu']:,.2f}x"))
    if reference:
        rows.append(_load_row("  the loader before issue 12, same records, same run", ref, n))
        rows.append(("  ratio (before / now)", f"wall {ref['seconds'] / new['seconds']:,.2f}x, "
                                               f"CPU {ref['cpu'] / new['cpu']:,.2f}x"))
    return rows


def screen_cli(jsonl: Path, out: Path, src: Path = ROOT) -> dict:
    """`elig screen` JSON Lines -> JSON Lines on stdout, in a child process (the code of ``src``,
    another checkout for a baseline): wall and CPU seconds, peak RSS of the child in MiB, and
    its phases (--timings: compile, read, input, criteria, results, write) when it has them."""
    timed = "--timings" in subprocess.run([sys.executable, "-m", "compiler.cli", "screen", "--help"], cwd=src,
                                          capture_output=True, text=True).stdout
    cmd = [sys.executable, "-m", "compiler.cli", "screen", "--rules", "sm3321_rules"] + (["--timings"] if timed else [])
    t = time.perf_counter()
    with open(out, "w") as f, tempfile.TemporaryFile() as err:
        p = subprocess.Popen(cmd + [str(jsonl)], cwd=src, stdout=f, stderr=err)
        _, status, usage = os.wait4(p.pid, 0)
        dt = time.perf_counter() - t
        err.seek(0)
        text = err.read().decode(errors="replace")
        assert os.waitstatus_to_exitcode(status) == 0, text
    phases = ""
    for line in text.splitlines():
        if line.startswith("elig: timings (wall s / CPU s): "):
            phases = line.split(": ", 2)[2]
    return {"seconds": dt, "cpu": usage.ru_utime + usage.ru_stime, "peak": usage.ru_maxrss / 1024, "phases": phases}


def _cli_text(m: dict, n: int) -> str:
    return (f"{m['seconds']:,.1f} s = {n / m['seconds']:,.0f} records/s, CPU {m['cpu']:,.1f} s "
            f"({m['cpu'] / n * 1e6:,.0f} µs/record), peak {m['peak']:,.0f} MiB")


def _same_file(a: Path, b: Path) -> bool:
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(1 << 20), fb.read(1 << 20)
            if x != y:
                return False
            if not x:
                return True


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="records (default 1,000,000)")
    ap.add_argument("--sample", type=int, default=3000, help="records timed through the Python module")
    ap.add_argument("--lambda-form", action="store_true",
                    help="also screen with the lambda form of the script (the former DuckDB engine) in the same run")
    ap.add_argument("--no-cli", action="store_true", help="skip `elig screen` on JSON Lines end to end")
    ap.add_argument("--cli-baseline", metavar="DIR",
                    help="also run `elig screen` on the same JSON Lines with the code of DIR (a checkout of another "
                         "commit, e.g. `git worktree add /tmp/main main`) in the same run, and check the outputs equal")
    ap.add_argument("--dir", default=str(ROOT / "out" / "bench-sql"),
                    help="where the cohort file (kept for later runs) and the work files go (default out/bench-sql "
                         "of the repository; not a shared temporary directory)")
    ap.add_argument("--load-only", action="store_true", help="time `elig load` alone")
    ap.add_argument("--reference", action="store_true",
                    help="with --load-only: time the loader before issue 12 too (tests/loader_reference.py)")
    ap.add_argument("--baseline", metavar="CHECKOUT",
                    help="with --load-only: time `elig load` of another checkout of the repository too, in the same "
                         "run (e.g. `git worktree add /tmp/base main`)")
    ap.add_argument("--input", metavar="JSONL", help="these records instead of the generated cohort (--n is then ignored)")
    args = ap.parse_args(argv)
    if args.load_only:
        res = mod = None
    else:
        res, mod = _compiled()
    base = Path(args.dir)
    base.mkdir(parents=True, exist_ok=True, mode=0o700)
    jsonl = Path(args.input) if args.input else base / f"cohort-{args.n}.jsonl"
    if not jsonl.is_file():
        part = base / f".cohort-{args.n}.jsonl.part"
        cohort.write_jsonl(str(part), args.n, seed=3321, corrupt_rate=0.01)
        os.replace(part, jsonl)
    with tempfile.TemporaryDirectory(prefix="work-", dir=base) as d:
        tmp = Path(d)
        if args.load_only:
            n = sum(1 for line in open(jsonl, "rb") if line.strip())
            rows = load_only(jsonl, tmp, n, args.reference, args.baseline)
            w = max(len(a) for a, _ in rows)
            print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (shared and noisy)")
            for a, b in rows:
                print(f"{a:<{w}}  {b}")
            return 0
        py, py_cpu = python_per_record(mod, jsonl, args.sample)
        plan = plan_seconds(res, mod, tmp)
        db = tmp / "cohort.duckdb"
        load = load_to_db(jsonl, db)
        load_s = load["seconds"]
        loaded = duckdb_loaded(res, mod, db, tmp / "res")
        lam = duckdb_loaded(res, mod, db, tmp / "res-lambda", relational=False) if args.lambda_form else None
        cli = screen_cli(jsonl, tmp / "results.jsonl") if not args.no_cli else None
        base_cli = screen_cli(jsonl, tmp / "results-baseline.jsonl", Path(args.cli_baseline)) if args.cli_baseline else None
        same = base_cli and _same_file(tmp / "results.jsonl", tmp / "results-baseline.jsonl")
        n = loaded["n"]
        per = loaded["seconds"] / n
        per_cpu = loaded["cpu"] / n
        rows = [
            ("Python module, per record (one core, %d records)" % args.sample, f"{py * 1e6:,.0f} µs (CPU {py_cpu * 1e6:,.0f} µs)"),
            ("DuckDB fixed cost: input and 44 step plans over one record", f"{plan:,.1f} s"),
            (f"DuckDB screen {n:,} records already loaded, Parquet results (incl. fixed cost)",
             f"{loaded['seconds']:,.1f} s = {per * 1e6:,.1f} µs/record: {py / per:,.2f}x cheaper than Python; "
             f"CPU {per_cpu * 1e6:,.0f} µs/record ({py_cpu / per_cpu:,.2f}x); peak {loaded['peak']:,.0f} MiB"),
            ("  phases (wall s / CPU s)", ", ".join(f"{k} {w:,.2f} / {c:,.2f}" for k, (w, c) in loaded["phases"].items())),
            (f"  same without the fixed cost", f"{max(loaded['seconds'] - plan, 1e-9):,.1f} s: "
                                               f"{py / (max(loaded['seconds'] - plan, 1e-9) / n):,.2f}x"),
        ]
        if lam:
            rows += [
                (f"DuckDB lambda form, same {n:,} records (the former engine)",
                 f"{lam['seconds']:,.1f} s = {lam['seconds'] / n * 1e6:,.1f} µs/record, CPU {lam['cpu'] / n * 1e6:,.0f} µs/record; "
                 f"relational is {lam['cpu'] / loaded['cpu']:,.1f}x cheaper in CPU"),
                ("  phases (wall s / CPU s)", ", ".join(f"{k} {w:,.2f} / {c:,.2f}" for k, (w, c) in lam["phases"].items())),
            ]
        rows += [
            _load_row(f"elig load {n:,} JSON Lines records to a DuckDB file", load, n),
            (f"load + screen end to end ({n:,})", f"{load_s + loaded['seconds']:,.1f} s"),
            (f"elig screen {n:,} JSON Lines records -> JSON Lines", _cli_text(cli, n) if cli else "not measured (--no-cli)"),
        ]
        if cli and cli["phases"]:
            rows.append(("  phases (wall s / CPU s)", cli["phases"]))
        if base_cli:
            rows.append((f"  baseline {args.cli_baseline}, same run", _cli_text(base_cli, n) + (
                "; output byte-identical" if same else "; OUTPUT DIFFERS")))
            if base_cli["phases"]:
                rows.append(("  baseline phases (wall s / CPU s)", base_cli["phases"]))
            rows.append(("  ratio (baseline / now)", f"wall {base_cli['seconds'] / cli['seconds']:,.2f}x, "
                                                     f"CPU {base_cli['cpu'] / cli['cpu']:,.2f}x"))
        rows += [
            ("Spark local", "not measured here (docs/sql-spark.md)"),
        ]
        w = max(len(a) for a, _ in rows)
        print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (shared and noisy)")
        for a, b in rows:
            print(f"{a:<{w}}  {b}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
