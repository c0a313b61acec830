#!/usr/bin/env python3
"""`elig evaluate` from two source trees of Elig on the same cohort file, in one run.

    git archive HEAD~1 | tar -x -C /tmp/old        # e.g. the commit before a change
    python benchmarks/bench_compare_trees.py /tmp/old . [-n 20000] [--repeat 5] [-j 0]

Both trees screen the same synthetic cohort (benchmarks/cohort.py, 1 % corrupted records) with
the same evaluator module (the NEW tree's generated/sm3321.py), so only the code around the
evaluator differs (reading, the batch driver, writing). Runs alternate between the two trees so
that both see the same machine load; prints the best wall time of each, records per second and
the ratio new / old. Exit status 1 when the two outputs are not byte for byte the same.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.cohort import write_jsonl  # noqa: E402


def _evaluate(tree: Path, module: Path, src: Path, out: Path, jobs: int) -> float:
    cmd = [sys.executable, "-m", "compiler.cli", "evaluate", "--module", str(module), "-j", str(jobs), str(src),
           "-o", str(out)]
    t = time.perf_counter()
    subprocess.run(cmd, cwd=tree, check=True, env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"})
    return time.perf_counter() - t


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old", type=Path, help="the source tree measured as the baseline")
    ap.add_argument("new", type=Path, help="the source tree measured against it")
    ap.add_argument("-n", type=int, default=20000, help="records in the cohort (default 20000)")
    ap.add_argument("--repeat", type=int, default=5, help="runs of each tree (default 5; the best counts)")
    ap.add_argument("-j", "--jobs", type=int, default=0, help="elig evaluate -j (default 0: every core)")
    a = ap.parse_args(argv)
    old, new = a.old.resolve(), a.new.resolve()
    module = new / "generated" / "sm3321.py"
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "cohort.jsonl"
        write_jsonl(str(src), a.n, seed=3321, corrupt_rate=0.01)
        times = {"old": [], "new": []}
        digests = {}
        for i in range(a.repeat):
            order = ("old", "new") if i % 2 == 0 else ("new", "old")
            for which in order:
                tree = old if which == "old" else new
                out = Path(tmp) / f"{which}.jsonl"
                times[which].append(_evaluate(tree, module, src, out, a.jobs))
                digests.setdefault(which, set()).add(hashlib.sha256(out.read_bytes()).hexdigest())
    best = {k: min(v) for k, v in times.items()}
    for k in ("old", "new"):
        print(f"{k}: best {best[k]:.2f} s of {a.repeat} ({a.n / best[k]:,.0f} records/s); "
              f"runs {', '.join(f'{t:.2f}' for t in times[k])}")
    print(f"ratio new / old: {best['new'] / best['old']:.3f}")
    same = len(digests["old"] | digests["new"]) == 1
    print("outputs: identical" if same else "outputs: DIFFER")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
