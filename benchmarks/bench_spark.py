"""Population screening on Spark (local mode) beside DuckDB and the Python evaluator, on the same
cohort records in the same run (benchmarks/cohort.py). Prints a table of times and ratios.

    python benchmarks/bench_spark.py --n 2000       # a few thousand records
    python benchmarks/bench_spark.py --n 100000     # takes long on 2 shared cores

Measures: the Python module per record (one core, a sample); loading the JSON Lines into the
screening tables as Parquet (`elig load`, DuckDB); DuckDB screening those Parquet tables, results
written as Parquet; Spark: its setup apart (starting the session; compiling the 44 criteria to
Spark SQL) from its query time (units, input view, the 44 criterion queries and the joined
results, written as Parquet). The Spark and DuckDB statuses are compared record by record.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

import cohort  # noqa: E402
from bench_sql import _compiled, python_per_record  # noqa: E402  (the same baseline as bench_sql.py)


def load_parquet(jsonl: Path, out: Path) -> float:
    from compiler.sql import spark_run

    t = time.perf_counter()
    spark_run.load_json_lines_to_parquet(str(jsonl), str(out))
    return time.perf_counter() - t


def duckdb_screen(res, mod, tables: Path, out: Path) -> tuple[float, list]:
    from compiler.sql import loader, screen

    t = time.perf_counter()
    con = screen.connect(memory_limit="3GB")
    loader.attach_parquet(con, str(tables))
    script = screen.prepare(con, res.program, res.lowered, mod)
    screen.write_results_parquet(con, script, str(out))
    dt = time.perf_counter() - t
    statuses = [r[0] for r in con.execute("SELECT status FROM elig_screened ORDER BY seq").fetchall()]
    con.close()
    return dt, statuses


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="records (default 2,000)")
    ap.add_argument("--sample", type=int, default=2000, help="records timed through the Python module")
    args = ap.parse_args(argv)
    from compiler.sql import spark as SP
    from compiler.sql import spark_run as R

    res, mod = _compiled()
    with tempfile.TemporaryDirectory(prefix="elig-bench-spark-") as d:
        tmp = Path(d)
        jsonl = tmp / "cohort.jsonl"
        cohort.write_jsonl(str(jsonl), args.n, seed=3321, corrupt_rate=0.01)
        py, _py_cpu = python_per_record(mod, jsonl, min(args.sample, args.n))
        load_s = load_parquet(jsonl, tmp / "tables")
        duck_s, duck_status = duckdb_screen(res, mod, tmp / "tables", tmp / "duck")
        t = time.perf_counter()
        spark = R.session()
        session_s = time.perf_counter() - t
        t = time.perf_counter()
        script = SP.build_spark(res.program, res.lowered)
        compile_s = time.perf_counter() - t
        t = time.perf_counter()
        n = R.open_parquet(spark, str(tmp / "tables"))
        (tmp / "work").mkdir()
        R.run(spark, res.program, mod, script, str(tmp / "work"))
        R.write_results_parquet(spark, script, str(tmp / "spark"))
        query_s = time.perf_counter() - t
        spark_status = [r[0] for r in spark.sql("SELECT status FROM elig_screened ORDER BY seq").collect()]
        same = sum(a == b for a, b in zip(spark_status, duck_status)) if len(spark_status) == len(duck_status) else -1
        rows = [
            (f"Python module, per record (one core, {min(args.sample, args.n):,} records)", f"{py * 1e6:,.0f} µs"),
            (f"load {n:,} JSON Lines records to Parquet tables (DuckDB loader)", f"{load_s:,.1f} s"),
            (f"DuckDB screen {n:,} records from Parquet, Parquet results (incl. plan)",
             f"{duck_s:,.1f} s = {duck_s / n * 1e6:,.0f} µs/record: {py / (duck_s / n):,.2f}x the Python module's speed"),
            ("Spark setup: start the session (local[2])", f"{session_s:,.1f} s"),
            ("Spark setup: compile the 44 criteria to Spark SQL", f"{compile_s:,.1f} s"),
            (f"Spark query: screen {n:,} records from Parquet, Parquet results",
             f"{query_s:,.1f} s = {query_s / n * 1e6:,.0f} µs/record: {py / (query_s / n):,.2f}x the Python module's speed"),
            ("Spark statuses equal to DuckDB's", f"{same:,} of {n:,}"),
        ]
        w = max(len(a) for a, _ in rows)
        print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (shared and noisy)")
        for a, b in rows:
            print(f"{a:<{w}}  {b}")
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
