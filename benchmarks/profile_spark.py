"""Where Spark's time goes on SM3321: per criterion, the parse (`sqlParser().parsePlan`), the
analysis (`spark.sql` after that parse, whose own parse of the same text is then warm), the
optimizer (`queryExecution().optimizedPlan()`), the physical planning (`executedPlan()`) and the
execution (the planned RDD counted), in wall time, and the driver JVM's CPU time, on a few cohort
records. Session settings to compare are given as --conf key=value (repeatable).

    python benchmarks/profile_spark.py --n 200 [--conf spark.sql.constraintPropagation.enabled=false]
    python benchmarks/profile_spark.py --only creatinine_clearance,recent_radiotherapy
"""

from __future__ import annotations

import argparse
import json
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
from bench_sql import _compiled  # noqa: E402


def jvm_cpu(spark) -> float:
    """CPU seconds of the driver JVM (all its threads) so far."""
    pid = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--only", default="", help="criteria ids, comma separated (default all)")
    ap.add_argument("--conf", action="append", default=[], help="key=value set on the session before the run")
    ap.add_argument("--json", default="", help="write the per-criterion times to this file")
    ap.add_argument("--lambda-form", action="store_true", help="the lambda form (default: the relational form)")
    args = ap.parse_args(argv)
    from compiler.sql import spark as SP
    from compiler.sql import spark_run as R
    from compiler.sql.screen import resolve_units

    res, mod = _compiled()
    t = time.perf_counter()
    script = SP.build_spark(res.program, res.lowered, only=set(args.only.split(",")) if args.only else None,
                            relational=not args.lambda_form)
    print(f"build_spark {time.perf_counter() - t:.1f} s", flush=True)
    with tempfile.TemporaryDirectory(prefix="elig-profile-spark-") as d:
        tmp = Path(d)
        cohort.write_jsonl(str(tmp / "c.jsonl"), args.n, seed=3321, corrupt_rate=0.01)
        R.load_json_lines_to_parquet(str(tmp / "c.jsonl"), str(tmp / "tables"))
        t = time.perf_counter()
        spark = R.session()
        print(f"session {time.perf_counter() - t:.1f} s", flush=True)
        for kv in args.conf:
            k, v = kv.split("=", 1)
            spark.conf.set(k, v)
        R.open_parquet(spark, str(tmp / "tables"))
        R.configure(spark)
        resolve_units(R._Con(spark), res.program, mod)
        for name, sql, sort in script.prep:  # the relational form's work tables
            t, c0 = time.perf_counter(), jvm_cpu(spark)
            R._materialise(spark, spark.sql(sql), str(tmp / name), name, partition=sort.split(",")[0].strip() if sort else None)
            print(f"work table {name}: {time.perf_counter() - t:.1f} s, JVM CPU {jvm_cpu(spark) - c0:.1f} s", flush=True)
        if script.input_view:
            spark.sql(script.input_view)
            R._materialise(spark, spark.table("elig_input"), str(tmp / "elig_input"), "elig_input")
        rows, tot = [], [0.0] * 6
        parser = spark._jsparkSession.sessionState().sqlParser()
        print(f"{'criterion':<40} {'parse':>8} {'analyse':>8} {'optimise':>8} {'physical':>8} {'execute':>8} {'jvm cpu':>8}  (s)")
        for i, (cid, sql) in enumerate(script.queries):
            c0 = jvm_cpu(spark)
            tp = time.perf_counter()
            parser.parsePlan(sql)  # the parse alone (spark.sql parses again, warm: then it costs little)
            t0 = time.perf_counter()
            parse = t0 - tp
            df = spark.sql(sql)
            qe = df._jdf.queryExecution()
            qe.analyzed()
            t1 = time.perf_counter()
            qe.optimizedPlan()
            t2 = time.perf_counter()
            qe.executedPlan()
            t3 = time.perf_counter()
            qe.toRdd().count()
            t4 = time.perf_counter()
            cpu = jvm_cpu(spark) - c0
            r = (parse, t1 - t0, t2 - t1, t3 - t2, t4 - t3, cpu)
            tot = [a + b for a, b in zip(tot, r)]
            rows.append(dict(zip(("criterion", "parse", "analyse", "optimise", "physical", "execute", "jvm_cpu"), (cid,) + r)))
            print(f"{cid:<40} " + " ".join(f"{x:8.2f}" for x in r), flush=True)
        print(f"{'total':<40} " + " ".join(f"{x:8.2f}" for x in tot))
        print(f"load average {os.getloadavg()[0]:.1f}")
        if args.json:
            Path(args.json).write_text(json.dumps({"conf": args.conf, "n": args.n, "rows": rows, "total": tot}, indent=1))
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
