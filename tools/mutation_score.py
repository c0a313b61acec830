"""Mutation score of a trial's rules: how many mechanical mutants `elig verify --coverage` catches,
and how many more the trial's data cases catch.

    python tools/mutation_score.py sm3321_rules --cases tests/cases
    python tools/mutation_score.py examples/hf_trial --cases examples/hf_trial/cases

Every mutant of `tools.mutate.mutants` is compiled in-process (`compiler.pipeline`); a mutant
that no longer compiles is counted apart (the checker caught it, not verify). A compiled mutant
is caught by verify when `verify_program` reports anything; otherwise its evaluator is built and
every data case runs against it, and a case whose expectation no longer holds catches it. A
mutant that survives both is named; when it is listed in `tools/mutation_equivalents.toml` as
equivalent (with why), it is shown as such and left out of the score's denominator.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import tomllib
import types
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from compiler.pipeline import compile_sources  # noqa: E402
from compiler.verify import verify_program  # noqa: E402
from tools.datacases import case_keys, check_case, load_cases  # noqa: E402
from tools.mutate import Mutant, criterion_of, is_rule_limit, mutants_of_sources, rule_sources  # noqa: E402

EQUIVALENTS = ROOT / "tools" / "mutation_equivalents.toml"


@dataclass
class Outcome:
    mutant: Mutant
    verdict: str  # "not compiling" | "verify" | "cases" | "survived"
    detail: str


class _Trial:
    """The rule texts, the protocol loader and the data cases of one trial, loaded once per process."""

    def __init__(self, rules_dir: Path, cases_dir: Optional[Path]):
        self.rules_dir = Path(rules_dir)
        self.sources = rule_sources(self.rules_dir)
        self.cases = load_cases(cases_dir) if cases_dir is not None else []
        self.baseline_failing: set = set()
        self.root = self.rules_dir.resolve()
        self._keys = [case_keys(case) for _, case, _ in self.cases]
        # a record that is plain JSON is copied by a JSON round trip (faster than deepcopy)
        self._record_json = [_as_json(record) for _, _, record in self.cases]
        self._catchers: list[int] = []  # cases that caught a mutant, the last last
        # evaluator source -> the first failing case (name, why), or None when every case holds
        self._by_python: dict[str, Optional[tuple[str, str]]] = {}

    def load_protocol(self, name: str) -> Optional[str]:
        p = (self.rules_dir / name).resolve()
        if self.root not in p.parents:
            return None
        try:
            return p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None

    def compile(self, sources: dict[str, str]):
        display = {(self.rules_dir / f).as_posix(): t for f, t in sources.items()}
        return compile_sources(display, self.rules_dir.as_posix(), emit=False, protocol_loader=self.load_protocol), display

    def verify(self, res, display) -> list:
        p = res.program
        proto = (self.rules_dir / (p.trial.protocol or "")).as_posix()
        diags, _ = verify_program(p, res.protocol_text, proto, dict(display))
        return diags

    def python(self, res) -> str:
        from compiler.backend_python import emit_python
        from compiler.lower import lower

        return emit_python(lower(res.program, self.rules_dir.as_posix()))

    def module_of(self, src: str):
        mod = types.ModuleType("elig_mutant")
        exec(compile(src, "<mutant>", "exec"), mod.__dict__)
        return mod

    def module(self, res):
        return self.module_of(self.python(res))

    def failing_cases(self, mod, stop_at_first: bool, keys: frozenset = frozenset()) -> list[tuple[str, str]]:
        """The cases whose expectation mod does not meet, every one, or with stop_at_first the
        first found. Which case is found first does not change the verdict, only how soon: the
        cases about the mutated criterion's refs (keys) are tried first, then those that caught
        a mutant already (the last first), then the others in order."""
        order = range(len(self.cases))
        if stop_at_first:
            rank = {i: r for r, i in enumerate(reversed(self._catchers))}
            order = sorted(order, key=lambda i: (not (keys & self._keys[i]), rank.get(i, len(rank)), i))
        out = []
        for i in order:
            name, case, _ = self.cases[i]
            if name in self.baseline_failing:
                continue
            why = check_case(mod, case, self.fresh_record(i), copy_record=False)
            if why is not None:
                out.append((name, why))
                if stop_at_first:
                    if i in self._catchers:
                        self._catchers.remove(i)
                    self._catchers.append(i)
                    break
        return out

    def fresh_record(self, i: int) -> dict:
        """A new copy of case i's record (the evaluator may keep or change what it is given)."""
        js = self._record_json[i]
        return json.loads(js) if js is not None else copy.deepcopy(self.cases[i][2])

    def judge(self, m: Mutant) -> Outcome:
        res, display = self.compile(m.apply(self.sources))
        if not res.ok or res.program is None:
            first = res.diagnostics[0] if res.diagnostics else None
            return Outcome(m, "not compiling", f"{first.span}: {first.message}" if first else "")
        diags = self.verify(res, display)
        if diags:
            return Outcome(m, "verify", f"{diags[0].span}: {diags[0].message}")
        if self.cases:
            # the cases' verdict depends on the evaluator alone: a mutant whose evaluator is the
            # unmutated one's, or another mutant's, gets that one's verdict without a second run
            src = self.python(res)
            if src not in self._by_python:
                name, refs = criterion_of(m, self.sources)
                keys = frozenset(refs) | ({name} if name else set())
                failing = self.failing_cases(self.module_of(src), stop_at_first=True, keys=keys)
                self._by_python[src] = failing[0] if failing else None
            caught = self._by_python[src]
            if caught is not None:
                return Outcome(m, "cases", f"{caught[0]}: {caught[1]}")
        return Outcome(m, "survived", "")


def _as_json(record) -> Optional[str]:
    try:
        js = json.dumps(record, ensure_ascii=False)
    except (TypeError, ValueError):
        return None
    return js if json.loads(js) == record else None


_TRIAL: Optional[_Trial] = None  # the trial a forked worker judges mutants of (inherited, warm)


def _judge(m: Mutant) -> Outcome:
    return _TRIAL.judge(m)


def default_jobs() -> int:
    """Worker processes for the mutants: up to 2, but 1 inside a pytest-xdist worker (the other
    xdist workers already keep the cores busy; the test suite balances across them)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return 1
    return min(2, os.cpu_count() or 1)


def equivalents(trial: str, path: Path = EQUIVALENTS) -> dict[str, str]:
    """description -> why, for the mutants of `trial` listed as equivalent."""
    if not path.exists():
        return {}
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return {e["mutant"]: e["why"] for e in data.get("equivalent", []) if e.get("trial") == trial}


def score(rules_dir: Path, cases_dir: Optional[Path] = None, jobs: int = 0) -> dict:
    """Run every mutant; a dict with the counts, the scores and every survivor."""
    trial = _Trial(rules_dir, cases_dir)
    res, display = trial.compile(trial.sources)
    if not res.ok:
        raise SystemExit(f"{rules_dir}: the rules do not compile")
    base_diags = trial.verify(res, display)
    if base_diags:
        raise SystemExit(f"{rules_dir}: elig verify fails on the unmutated rules: {base_diags[0].span}: {base_diags[0].message}")
    base_python = trial.python(res)
    baseline_failing = [n for n, _ in trial.failing_cases(trial.module_of(base_python), stop_at_first=False)]
    trial.baseline_failing = set(baseline_failing)
    trial._by_python[base_python] = None  # the unmutated evaluator meets every case left in
    name = res.program.trial.name
    ms = list(mutants_of_sources(trial.sources))
    jobs = jobs or default_jobs()
    if jobs > 1 and len(ms) > 20:
        global _TRIAL
        _TRIAL = trial  # forked: every worker starts with the parsed files and the cases loaded
        try:
            with get_context("fork").Pool(jobs) as pool:
                outcomes = pool.map(_judge, ms, chunksize=8)
        finally:
            _TRIAL = None
    else:
        outcomes = [trial.judge(m) for m in ms]
    eq = equivalents(name)
    compiled = [o for o in outcomes if o.verdict != "not compiling"]
    by_verify = sum(1 for o in compiled if o.verdict == "verify")
    by_cases = sum(1 for o in compiled if o.verdict == "cases")
    survivors = [o for o in compiled if o.verdict == "survived"]
    equiv = [o for o in survivors if o.mutant.description in eq]
    denom = len(compiled) - len(equiv)
    # mutants of a rule's limit, those listed as equivalent (they change no outcome) left out
    limits = [o for o in compiled if is_rule_limit(o.mutant, trial.sources) and o not in equiv]
    limits_missed = [o.mutant.description for o in limits if o.verdict != "verify"]
    return {
        "trial": name,
        "mutants": len(ms),
        "not_compiling": len(ms) - len(compiled),
        "compiled": len(compiled),
        "equivalent": len(equiv),
        "caught_by_verify": by_verify,
        "caught_by_cases": by_cases,
        "verify_score": round(100 * by_verify / denom, 1) if denom else 100.0,
        "total_score": round(100 * (by_verify + by_cases) / denom, 1) if denom else 100.0,
        "rule_limit_mutants": len(limits),
        "rule_limit_caught_by_verify": len(limits) - len(limits_missed),
        "rule_limit_missed_by_verify": limits_missed,
        "cases": len(trial.cases),
        "baseline_failing_cases": baseline_failing,
        "survivors": [{"operator": o.mutant.operator, "mutant": o.mutant.description,
                       "equivalent": eq.get(o.mutant.description)} for o in survivors],
        "outcomes": outcomes,
    }


def report(r: dict) -> str:
    lines = [
        f"{r['trial']}: {r['mutants']} mutants, {r['not_compiling']} do not compile (not counted), "
        f"{r['compiled']} compile, {r['equivalent']} listed as equivalent",
        f"  caught by elig verify --coverage: {r['caught_by_verify']} ({r['verify_score']}%)",
        f"  caught by the data cases ({r['cases']}) as well: {r['caught_by_cases']}",
        f"  caught in all: {r['caught_by_verify'] + r['caught_by_cases']} ({r['total_score']}%)",
        f"  mutants of a rule's limit (comparator, number, unit, window, shorter/longer; equivalents left out): {r['rule_limit_mutants']}, "
        f"caught by verify: {r['rule_limit_caught_by_verify']}",
    ]
    lines += [f"    missed by verify: {d}" for d in r["rule_limit_missed_by_verify"]]
    if r["baseline_failing_cases"]:
        lines.append(f"  cases failing on the unmutated rules (left out): {', '.join(r['baseline_failing_cases'])}")
    by_op: dict[str, list[int]] = {}
    for o in r["outcomes"]:
        if o.verdict == "not compiling":
            continue
        row = by_op.setdefault(o.mutant.operator, [0, 0, 0])
        row[0] += 1
        row[1] += o.verdict == "verify"
        row[2] += o.verdict in ("verify", "cases")
    lines.append(f"  {'operator':<22} {'mutants':>7} {'verify':>7} {'+cases':>7}")
    for op, (n, v, t) in by_op.items():
        lines.append(f"  {op:<22} {n:>7} {v:>7} {t:>7}")
    surv = [s for s in r["survivors"] if not s["equivalent"]]
    lines.append(f"  survivors ({len(surv)}):")
    lines += [f"    {s['operator']:<20} {s['mutant']}" for s in surv]
    eq = [s for s in r["survivors"] if s["equivalent"]]
    if eq:
        lines.append(f"  equivalent survivors ({len(eq)}):")
        lines += [f"    {s['mutant']}: {s['equivalent']}" for s in eq]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("rules_dir", type=Path)
    ap.add_argument("--cases", type=Path, default=None, help="a directory of data cases (tests/cases/README.md)")
    ap.add_argument("--jobs", type=int, default=0, help="worker processes (default: up to 2)")
    ap.add_argument("--json", type=Path, default=None, help="also write the counts and survivors as JSON here")
    ap.add_argument("--verbose", action="store_true", help="name how each mutant was caught")
    a = ap.parse_args(argv)
    r = score(a.rules_dir, a.cases, a.jobs)
    print(report(r))
    if a.verbose:
        for o in r["outcomes"]:
            print(f"{o.verdict:<14} {o.mutant.description}  [{o.detail}]")
    if a.json:
        data = {k: v for k, v in r.items() if k != "outcomes"}
        tmp = a.json.with_name(a.json.name + ".tmp")
        tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        tmp.replace(a.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
