"""Where `elig load` spends: the loader (compiler/sql/loader.py) run on a JSON Lines file, each of
its SQL statements timed (wall and CPU seconds of this process, the cores busy), and, with
--explain, DuckDB's own per-operator profile (EXPLAIN ANALYZE) of the statements that build the
given tables in the first chunk.

    python benchmarks/cohort.py 100000 --corrupt-rate 0.01 -o c100k.jsonl   # the benchmark cohort
    python benchmarks/load_profile.py c100k.jsonl
    python benchmarks/load_profile.py c.jsonl --threads 1 --explain observations,_docs

The database is a file (-o, default a temporary one), as `elig load -o FILE.duckdb` writes it:
writing the tables into a file costs more than into memory. Measure on a quiet machine and
compare two loaders in the same run (bench_sql.py --load-only --baseline): the CPU figures of a
shared machine move by 10 % from one run to the next.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from compiler.sql import loader, screen  # noqa: E402


def _cpu() -> float:
    return time.process_time()  # all the threads of this process (DuckDB's included)


def label(sql: str) -> str:
    """A short name for one of the loader's statements: the table it writes (or what it asks)."""
    s = " ".join(sql.split())
    m = re.match(r"(?:CREATE (?:OR REPLACE )?TABLE|INSERT INTO) (\S+)", s)
    if m:
        return m.group(1).replace("_elig_scratch.", "scratch ")
    if s.startswith(("ATTACH", "DETACH", "DROP", "SET", "SELECT current_setting", "ALTER")):
        return "housekeeping"
    if s.startswith("SELECT string_agg"):
        return "chunk filter (bits)"
    if s.startswith("SELECT count(*)"):
        return "count " + ("blank lines" if "line <" in s else "rejects" if "_elig_rejects" in s else "lines")
    return s[:40]


class Timed:
    """A DuckDB connection whose execute times each statement; statements whose table is in
    `explain` run once under EXPLAIN ANALYZE (JSON) instead, their operator tree kept."""

    def __init__(self, con, explain=()):
        self.con, self.explain, self.log, self.plans = con, set(explain), [], {}

    def execute(self, sql, *args):
        name = label(sql)
        table = name.split()[-1]
        analyze = table in self.explain and table not in self.plans
        wall, cpu = time.perf_counter(), _cpu()
        r = self.con.execute(("EXPLAIN (ANALYZE, FORMAT JSON) " if analyze else "") + sql, *args)
        if analyze:
            self.plans[table] = json.loads(r.fetchall()[0][1])
        self.log.append((name, time.perf_counter() - wall, _cpu() - cpu))
        return r

    def __getattr__(self, name):
        return getattr(self.con, name)


def operators(plan: dict) -> list[tuple[int, str, int, float]]:
    """(depth, operator and what it computes, rows out, seconds) of an EXPLAIN ANALYZE tree,
    the result collector and the EXPLAIN node left out."""
    out = []

    def walk(node, depth):
        keep = node.get("name") not in ("RESULT_COLLECTOR", "EXPLAIN_ANALYZE")
        if keep:
            info = node.get("extra_info", {})
            what = info.get("Projections") or info.get("Expression") or info.get("Table") or ""
            what = what if isinstance(what, str) else ", ".join(what)
            out.append((depth, f"{node['name']} {' '.join(what.split())[:90]}".strip(),
                        node.get("operator_cardinality", node.get("intermediate_rows", 0)),
                        node.get("operator_timing", node.get("timing", 0.0))))
        for c in node.get("children", []):
            walk(c, depth + keep)

    for node in plan.get("operator", plan.get("children", [])):
        walk(node, 0)
    return out


def profile(path: str, db: str, threads: int | None, memory_limit: str, explain=()) -> tuple[int, Timed, float, float]:
    con = screen.connect(db, threads=threads, memory_limit=memory_limit)
    t = Timed(con, explain)
    wall, cpu = time.perf_counter(), _cpu()
    n = loader.load_jsonl(t, path)
    wall, cpu = time.perf_counter() - wall, _cpu() - cpu
    con.close()
    return n, t, wall, cpu


def report(n: int, t: Timed, wall: float, cpu: float) -> list[str]:
    rows = {}
    for name, w, c in t.log:  # the chunks of a table summed
        a = rows.setdefault(name, [0.0, 0.0, 0])
        a[0] += w
        a[1] += c
        a[2] += 1
    lines = [f"{'statement':<28} {'times':>5} {'wall s':>8} {'CPU s':>8} {'cores':>6} {'µs CPU/record':>14}"]
    for name, (w, c, k) in rows.items():
        if name != "housekeeping" or w >= 0.05:
            lines.append(f"{name:<28} {k:>5} {w:>8.2f} {c:>8.2f} {c / w if w else 0:>6.2f} {c / max(n, 1) * 1e6:>14.1f}")
    lines.append(f"{'total (load_jsonl)':<28} {'':>5} {wall:>8.2f} {cpu:>8.2f} {cpu / wall:>6.2f} {cpu / max(n, 1) * 1e6:>14.1f}")
    for table, plan in t.plans.items():
        lines.append(f"\nEXPLAIN ANALYZE of {table} (first chunk; seconds of the threads, waiting for a core included):")
        for depth, what, card, secs in operators(plan):
            lines.append(f"{secs:8.3f} s {card:>11,} rows  {'  ' * depth}{what}")
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("input", help="a JSON Lines file of patient records (format 1)")
    ap.add_argument("-o", "--out", help="the DuckDB file to write (default: a temporary one, removed)")
    ap.add_argument("--threads", type=int, help="DuckDB threads (default: DuckDB's, one a core)")
    ap.add_argument("--memory-limit", default="2GB")
    ap.add_argument("--explain", default="", metavar="TABLES",
                    help="comma-separated tables (observations, _docs, lines, patients...) to profile per operator")
    args = ap.parse_args(argv)
    explain = [x.strip() for x in args.explain.split(",") if x.strip()]
    with tempfile.TemporaryDirectory(prefix="load-profile-") as d:
        db = args.out or os.path.join(d, "load.duckdb")
        if os.path.exists(db):
            os.unlink(db)
        n, t, wall, cpu = profile(args.input, db, args.threads, args.memory_limit, explain)
    print(f"{args.input}: {n:,} records, threads {args.threads or os.cpu_count()}, "
          f"load average {os.getloadavg()[0]:.1f} at the end")
    print("\n".join(report(n, t, wall, cpu)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
