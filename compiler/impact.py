"""The impact of an amendment on patients: every record screened under the old and the new
rules (the generated Python evaluators, on every core for large batches, as `elig evaluate`
does), and the patients whose status changes, with the criteria that changed it.

A record that neither version can read is an error under both and changes nothing; a record
that only one version reads is reported like any other change of status.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field

from .batch import CHUNK, PARALLEL_THRESHOLD, ModuleSource
from .driver import run_chunks
from .records import iter_records


def _load_both(old: ModuleSource, new: ModuleSource):
    return old.load(), new.load()


def _summary(result):
    """(status, {criterion id: outcome}) of one result."""
    if result.get("status") == "error":
        return "error", {}, result.get("error")
    return result["status"], {c["id"]: c["outcome"] for c in result["criteria"]}, None


def _screen_chunk(modules, lines):
    old, new = modules
    out = []
    for line in lines:
        a, b = old.evaluate_json(line), new.evaluate_json(line)
        pid = b.get("patient_id") if b.get("patient_id") is not None else a.get("patient_id")
        out.append((pid, _summary(a), _summary(b)))
    return out


@dataclass
class PatientChange:
    index: int  # 1-based position of the record in the input
    patient_id: object
    old_status: str
    new_status: str
    criteria: list  # (id, old outcome, new outcome) of every criterion whose outcome changed
    because: list  # the criteria that made the new status: newly failing (or no longer failing) ones

    def as_json(self) -> dict:
        return {"record": self.index, "patient_id": self.patient_id, "old_status": self.old_status,
                "new_status": self.new_status, "because": self.because,
                "criteria": [{"id": c, "old": o, "new": n} for c, o, n in self.criteria]}


@dataclass
class Impact:
    records: int = 0
    old_statuses: collections.Counter = field(default_factory=collections.Counter)
    new_statuses: collections.Counter = field(default_factory=collections.Counter)
    transitions: collections.Counter = field(default_factory=collections.Counter)  # (old, new) -> n
    changes: list = field(default_factory=list)
    # criterion id -> Counter of "old->new" outcome transitions over all records
    per_criterion: dict = field(default_factory=dict)
    # criterion id -> patients who became ineligible (no longer eligible) / eligible because of it
    lost_by: collections.Counter = field(default_factory=collections.Counter)
    gained_by: collections.Counter = field(default_factory=collections.Counter)
    order: list = field(default_factory=list)  # criterion ids: new version's order, then removed ones

    def add(self, index, pid, old, new):
        (sa, oa, _), (sb, ob, _) = old, new
        self.records += 1
        self.old_statuses[sa] += 1
        self.new_statuses[sb] += 1
        self.transitions[(sa, sb)] += 1
        changed = []
        for cid in self.order:
            x, y = oa.get(cid), ob.get(cid)
            if x != y and not (sa == "error" or sb == "error"):
                changed.append((cid, x, y))
                self.per_criterion.setdefault(cid, collections.Counter())[f"{x or 'absent'}->{y or 'absent'}"] += 1
        if sa == sb:
            return
        if sb == "ineligible":  # failing now: the criteria that fail now and did not before
            because = [c for c, x, y in changed if y == "fail" and x != "fail"]
            for c in because:
                self.lost_by[c] += 1
        elif sa == "ineligible":  # no longer failing: the criteria that failed and do not now
            because = [c for c, x, y in changed if x == "fail" and y != "fail"]
            for c in because:
                self.gained_by[c] += 1
        else:  # eligible <-> indeterminate (or an error): the criteria whose outcome changed
            because = [c for c, _, _ in changed]
            for c in because:
                if sb == "eligible":
                    self.gained_by[c] += 1
                elif sa == "eligible":
                    self.lost_by[c] += 1
        self.changes.append(PatientChange(index, pid, sa, sb, changed, because))

    def as_json(self) -> dict:
        return {
            "records": self.records,
            "old_statuses": dict(sorted(self.old_statuses.items())),
            "new_statuses": dict(sorted(self.new_statuses.items())),
            "transitions": [{"old": a, "new": b, "patients": n} for (a, b), n in sorted(self.transitions.items()) if a != b],
            "per_criterion": [{"id": c, "no_longer_eligible_because": self.lost_by.get(c, 0),
                               "now_eligible_because": self.gained_by.get(c, 0),
                               "outcome_changes": dict(sorted(self.per_criterion[c].items()))}
                              for c in self.order if c in self.per_criterion],
            "patients": [p.as_json() for p in self.changes],
        }


def screen(old: ModuleSource, new: ModuleSource, stream, jobs: int = 0) -> Impact:
    """Screen every record of stream under both versions; the records whose status changes."""
    mods = (old.load(), new.load())
    order = [c["id"] for c in mods[1].CRITERIA]
    order += [c["id"] for c in mods[0].CRITERIA if c["id"] not in order]
    impact = Impact(order=order)
    index = 0

    def consume(rows):
        nonlocal index
        for pid, a, b in rows:
            index += 1
            impact.add(index, pid, a, b)

    run_chunks(iter_records(stream), _screen_chunk, consume, init=_load_both, initargs=(old, new), state=mods,
               jobs=jobs, size=CHUNK, threshold=PARALLEL_THRESHOLD)
    return impact


def format_text(impact: Impact, limit: int = 50) -> str:
    lines = [f"impact on {impact.records:,} records: "
             + ", ".join(f"{k} {impact.old_statuses.get(k, 0):,} → {impact.new_statuses.get(k, 0):,}"
                         for k in ("eligible", "ineligible", "indeterminate", "error"))]
    moved = [(a, b, n) for (a, b), n in sorted(impact.transitions.items()) if a != b]
    if not moved:
        lines.append("no patient's status changes")
        return "\n".join(lines)
    for a, b, n in moved:
        lines.append(f"  {a} → {b}: {n:,}")
    lines.append(f"{'criterion':<40} {'no longer eligible':>18} {'now eligible':>12}  outcome changes")
    for c in impact.order:
        if c not in impact.per_criterion:
            continue
        oc = ", ".join(f"{k} {v:,}" for k, v in sorted(impact.per_criterion[c].items()))
        lines.append(f"{c:<40} {impact.lost_by.get(c, 0):>18,} {impact.gained_by.get(c, 0):>12,}  {oc}")
    lines.append(f"patients whose status changes ({len(impact.changes):,}):")
    for p in impact.changes[:limit]:
        lines.append(f"  #{p.index} {p.patient_id}: {p.old_status} → {p.new_status}"
                     + (f" by {', '.join(p.because)}" if p.because else ""))
    if len(impact.changes) > limit:
        lines.append(f"  ... and {len(impact.changes) - limit:,} more (--format json lists them all)")
    return "\n".join(lines)
