#!/usr/bin/env python3
"""Two generated evaluator modules on the same synthetic cohort, in one run.

    python benchmarks/bench_compare_modules.py OLD.py NEW.py [-n 2000] [--repeat 5] [--exact]

Checks that both give the same status, and per criterion the same outcome and `missing`, for
every record (reasons may differ: that is what a change of wording is), and counts the records
whose whole result differs as JSON text; then times `evaluate` per record for each, alternating
the two so that both see the same machine load, and prints the best time of each and the ratio
new / old. Exit status 1 when any outcome or `missing` differs, or with --exact (a change meant
to leave every result as it was: speed work) when any result differs at all.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.cohort import generate  # noqa: E402


def _load(path: str, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _decisions(result: dict):
    return (result.get("status"),
            tuple((c["id"], c["outcome"], tuple(c["missing"])) for c in result.get("criteria", ())))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seed", type=int, default=3321)
    ap.add_argument("--exact", action="store_true", help="fail when any result differs as JSON text")
    a = ap.parse_args(argv)
    old, new = _load(a.old, "_bench_old"), _load(a.new, "_bench_new")
    records = [r for r in generate(a.n, seed=a.seed, corrupt_rate=0.0) if isinstance(r, dict)]

    differ = 0
    texts = 0
    for r in records:
        x, y = old.evaluate(r), new.evaluate(r)
        if _decisions(x) != _decisions(y):
            differ += 1
            if differ <= 5:
                print("differs:", r.get("id"), file=sys.stderr)
        if json.dumps(x, ensure_ascii=False) != json.dumps(y, ensure_ascii=False):
            texts += 1

    best = {"old": float("inf"), "new": float("inf")}
    pair = (("old", old), ("new", new))
    for i in range(a.repeat):
        for key, mod in (pair if i % 2 == 0 else pair[::-1]):  # each goes first half the time
            ev = mod.evaluate
            t0 = time.perf_counter()
            for r in records:
                ev(r)
            best[key] = min(best[key], time.perf_counter() - t0)
    n = len(records)
    print(f"records: {n}; outcomes, status or missing differ in {differ}; whole results (reasons included) in {texts}")
    print(f"old: {best['old'] / n * 1e6:.1f} µs/record; new: {best['new'] / n * 1e6:.1f} µs/record; "
          f"ratio new/old {best['new'] / best['old']:.3f} (best of {a.repeat})")
    return 1 if differ or (a.exact and texts) else 0


if __name__ == "__main__":
    sys.exit(main())
