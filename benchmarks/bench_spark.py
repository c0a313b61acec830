"""Population screening on Spark (local mode) beside the Python evaluator, on the same cohort
records in the same run (benchmarks/cohort.py). Prints a table of times and ratios.

    python benchmarks/bench_spark.py --n 10000 [--form relational|lambda|both]
    python benchmarks/bench_spark.py --n 100000 --input c100k.jsonl       # the 100,000-record cohort
    python benchmarks/bench_spark.py --n 100000 --input c100k.jsonl --times 10     # 1,000,000 records
    (the cohort file is the one bench_sql.py writes, out/bench-sql/cohort-N.jsonl, written once
    and reused; --dir to put it elsewhere)

Measures, apart: the Python module per record (one core, a sample; wall and CPU time); loading
the JSON Lines into the screening tables as Parquet (`elig load`, DuckDB); Spark's setup
(starting the session; the 44 criteria's Spark SQL, from the cache or transpiled); Spark's query
time (the units, the input view, the 44 criterion queries, the results, written as Parquet), in
wall time and in CPU time (the driver JVM's and this process's). The Spark results of a sample
of the records (the first --check) are compared with the Python evaluator's: status, outcome and
missing of every criterion.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

import cohort  # noqa: E402
from bench_sql import _compiled, python_sample  # noqa: E402  (the same compiled rules and Python baseline as bench_sql.py)


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def jvm_cpu(spark) -> float:
    """CPU seconds of the driver JVM (every thread: in local mode the executors too) so far."""
    pid = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _same(py: dict, sp: dict) -> bool:
    """The comparison of the test suites (tests/test_sql.py, compare): status, patient and, per
    criterion, outcome and missing; an error result by its status and patient (the loader says
    `not JSON` where the Python evaluator adds the JSON parser's message)."""
    if py["status"] == "error" or sp["status"] == "error":
        return (py["status"], py.get("patient_id")) == (sp["status"], sp.get("patient_id"))
    key = [(c["id"], c["outcome"], c["missing"]) for c in py["criteria"]]
    return (py["patient_id"], py["status"], key) == (
        sp["patient_id"], sp["status"], [(c["id"], c["outcome"], c["missing"]) for c in sp["criteria"]])


def _times(src: Path, dst: Path, k: int) -> None:
    """The Parquet tables of SRC K times over into DST: copy j has seq + j * (max seq + 1) and
    patient ids suffixed `~j` (j > 0), so that the records are distinct rows of the same content
    (a population K times larger with the same per-record work)."""
    import duckdb

    from compiler.sql import loader

    dst.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    n = con.execute(f"SELECT max(seq) + 1 FROM '{src / 'patients.parquet'}'").fetchone()[0]
    for t in loader.TABLES:
        f = src / f"{t}.parquet"
        cols = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM '{f}'").fetchall()]
        sel = ", ".join(f"seq + j * {n} AS seq" if c == "seq" else
                        "CASE WHEN j = 0 THEN patient_id ELSE patient_id || '~' || j END AS patient_id"
                        if (c, t) == ("patient_id", "patients") else f'"{c}"' for c in cols)
        con.execute(f"COPY (SELECT {sel} FROM '{f}', range({k}) r(j) ORDER BY j, seq{', idx' if 'idx' in cols else ''}) TO '{dst / f'{t}.parquet'}' (FORMAT parquet)")
    con.close()


def _table(rows) -> None:
    w = max(len(a) for a, _ in rows)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} now (shared and noisy)")
    for a, b in rows:
        print(f"{a:<{w}}  {b}")
    sys.stdout.flush()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000, help="records (default 10,000)")
    ap.add_argument("--input", default="", help="a JSON Lines file to screen instead of the generated cohort (read only)")
    ap.add_argument("--times", type=int, default=1,
                    help="screen the loaded tables K times over (seq shifted, ids suffixed): 1,000,000 from 100,000")
    ap.add_argument("--form", choices=("relational", "lambda", "both"), default="relational",
                    help="the Spark SQL form (both: relational, then lambda, on the same tables and session)")
    ap.add_argument("--conf", action="append", default=[], help="key=value set on the Spark session (repeatable)")
    ap.add_argument("--check", type=int, default=5000,
                    help="records timed through the Python module and compared with Spark's results (default 5,000)")
    ap.add_argument("--dir", default=str(ROOT / "out" / "bench-sql"),
                    help="where the cohort file (kept for later runs) and the work files go (default out/bench-sql)")
    args = ap.parse_args(argv)
    from compiler.sql import spark as SP
    from compiler.sql import spark_run as R

    res, mod = _compiled()
    base = Path(args.dir)
    base.mkdir(parents=True, exist_ok=True, mode=0o700)
    if args.input:
        jsonl = Path(args.input)
    else:
        jsonl = base / f"cohort-{args.n}.jsonl"
        if not jsonl.is_file():
            _say(f"writing {jsonl}")
            part = base / f".cohort-{args.n}.jsonl.part"
            cohort.write_jsonl(str(part), args.n, seed=3321, corrupt_rate=0.01)
            os.replace(part, jsonl)
    k = min(args.check, args.n)
    ok = True
    with tempfile.TemporaryDirectory(prefix="work-spark-", dir=base) as d:
        tmp = Path(d)
        _say(f"Python module on {k:,} records")
        py_wall, py_cpu, py_results = python_sample(mod, jsonl, k)
        _say("loading the JSON Lines to Parquet (DuckDB loader)")
        t = time.perf_counter()
        R.load_json_lines_to_parquet(str(jsonl), str(tmp / "tables"))
        load_s = time.perf_counter() - t
        tables = tmp / "tables"
        if args.times > 1:
            _say(f"the tables {args.times} times over")
            _times(tables, tmp / "tables-x", args.times)
            tables = tmp / "tables-x"
        _say("starting Spark")
        t = time.perf_counter()
        spark = R.session()
        session_s = time.perf_counter() - t
        for kv in args.conf:  # settings to compare (run() keeps the ones the meaning depends on)
            key, value = kv.split("=", 1)
            spark.conf.set(key, value)
        rows = [
            (f"Python module, per record (one core, {k:,} records)", f"{py_wall * 1e6:,.0f} µs (CPU {py_cpu * 1e6:,.0f} µs)"),
            (f"setup: load the JSON Lines records to Parquet tables (DuckDB loader)", f"{load_s:,.1f} s"),
            ("setup: start the Spark session (local[2])", f"{session_s:,.1f} s"),
        ]
        for form in (("relational", "lambda") if args.form == "both" else (args.form,)):
            t = time.perf_counter()
            script = SP.build_spark(res.program, res.lowered, relational=form == "relational")
            compile_s = time.perf_counter() - t
            phases: dict[str, float] = {}
            first = "work tables" if script.prep else "input view"
            last = [time.perf_counter(), "open"]

            def progress(i, cid):
                now = time.perf_counter()
                phases[last[1]] = phases.get(last[1], 0.0) + now - last[0]
                last[:] = [now, "units" if i == -2 else first if i == -1 else "44 criteria"]
                if i >= 0 and i % 11 == 0:
                    _say(f"{form}: criterion {i + 1}/{len(script.criteria)}: {cid}")

            _say(f"{form} form: screening on Spark ({len(script.criteria)} criteria)")
            t, c, j = time.perf_counter(), _cpu(), jvm_cpu(spark)
            n = R.open_parquet(spark, str(tables))
            (tmp / f"work-{form}").mkdir()
            R.run(spark, res.program, mod, script, str(tmp / f"work-{form}"), progress=progress)
            now = time.perf_counter()
            phases[last[1]] = phases.get(last[1], 0.0) + now - last[0]
            R.write_results_parquet(spark, script, str(tmp / f"spark-{form}"))
            phases["results, written as Parquet"] = time.perf_counter() - now
            query_s, query_cpu = time.perf_counter() - t, _cpu() - c + jvm_cpu(spark) - j
            got = [json.loads(r[0]) for r in spark.sql(f"SELECT result FROM elig_screened WHERE seq < {k} ORDER BY seq").collect()]
            same = sum(_same(a, b) for a, b in zip(py_results, got)) if len(got) == len(py_results) else -1
            ok = ok and same == k
            rows.append((f"{form} form: setup: the 44 criteria's Spark SQL (user cache, else sqlglot)", f"{compile_s:,.1f} s"))
            rows += [(f"{form} form:   query: {name}", f"{sec:,.1f} s") for name, sec in phases.items()]
            rows += [
                (f"{form} form: Spark query: screen {n:,} records from Parquet, Parquet results",
                 f"{query_s:,.1f} s = {query_s / n * 1e6:,.0f} µs/record: {py_wall / (query_s / n):,.2f}x the Python "
                 f"module's speed (wall, 2 cores against one)"),
                (f"{form} form: Spark query CPU (driver JVM + this process)",
                 f"{query_cpu:,.1f} s = {query_cpu / n * 1e6:,.0f} µs/record: {py_cpu / (query_cpu / n):,.2f}x the Python "
                 f"module's CPU per record"),
                (f"{form} form: Spark results equal to the Python evaluator's (first {k:,} records)", f"{same:,} of {k:,}"),
            ]
            _say(f"{form} form: {query_s:,.1f} s, CPU {query_cpu:,.1f} s, load average {os.getloadavg()[0]:.1f}")
            _table(rows)  # after each form: a later failure does not lose it
        spark.stop()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
