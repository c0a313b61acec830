"""Data cases: patient records with the outcomes the protocol text demands (format in tests/cases/README.md).

A case is one JSON file: a `record` (or a `base` record of `_base/` with `drop`, `set` and `add`
applied) and its `expect`ed outcomes per protocol ref. `check_case` runs an evaluator module on
it and says what differs, in the words `tests/test_cases.py` uses; the mutation score
(`tools/mutation_score.py`) runs every case against every mutant.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Optional

ORDER = {"fail": 3, "unknown": 2, "review": 1, "pass": 0}


def case_files(cases_dir: Path) -> list[Path]:
    """Every case below cases_dir (sorted), the `_base` records excepted, and the cases of a
    subdirectory that holds its own rules (`_rules/`: another trial's cases, as tests/cases/language)."""
    cases_dir = Path(cases_dir)
    own = {d.parent for d in cases_dir.rglob("_rules") if d.is_dir() and d.parent != cases_dir}
    return sorted(p for p in cases_dir.rglob("*.json") if "_base" not in p.relative_to(cases_dir).parts
                  and not any(d in p.parents for d in own))


def build_record(case: dict, base_dir: Path) -> dict:
    """A case's record: its `record`, or its `base` with `drop`, `set` and `add` applied."""
    if "base" not in case:
        return copy.deepcopy(case["record"])
    rec = json.loads((Path(base_dir) / f"{case['base']}.json").read_text(encoding="utf-8"))
    drop = case.get("drop", {})
    for fld in ("observations", "conditions", "treatments", "procedures"):
        codes = set(drop.get(fld, ()))
        if codes:
            rec[fld] = [x for x in rec.get(fld, []) if x.get("code") not in codes]
    for fld in ("facts", "anchors"):
        for k in drop.get(fld, ()):
            rec.get(fld, {}).pop(k, None)
    for k in drop.get("fields", ()):
        rec.pop(k, None)
    for k, v in case.get("set", {}).items():
        rec[k] = copy.deepcopy(v)
    add = case.get("add", {})
    for fld in ("observations", "conditions", "treatments", "procedures"):
        if fld in add:
            rec.setdefault(fld, [])
            rec[fld] = list(rec[fld]) + copy.deepcopy(add[fld])
    for fld in ("facts", "anchors"):
        if fld in add:
            rec.setdefault(fld, {})
            rec[fld].update(copy.deepcopy(add[fld]))
    return rec


def load_cases(cases_dir: Path) -> list[tuple[str, dict, dict]]:
    """(name, case, record) for every case below cases_dir."""
    cases_dir = Path(cases_dir)
    out = []
    for p in case_files(cases_dir):
        case = json.loads(p.read_text(encoding="utf-8"))
        out.append((p.relative_to(cases_dir).as_posix(), case, build_record(case, cases_dir / "_base")))
    return out


def case_keys(case: dict) -> frozenset:
    """The protocol refs and criterion ids a case's expectation is about."""
    expect = case.get("expect", {})
    keys = set(expect.get("outcomes", {})) | set(expect.get("criteria", {}))
    for k in ("reason_contains", "missing_equals", "missing_contains"):
        keys |= set(expect.get(k, {}))
    if isinstance(case.get("ref"), str):
        keys.add(case["ref"])
    return frozenset(keys)


def check_case(module, case: dict, record: dict, copy_record: bool = True) -> Optional[str]:
    """None when the evaluator's result is what the case expects, else what differs. The
    evaluator gets a copy of record (copy_record=False: the caller passes a fresh one)."""
    try:
        result = module.evaluate(copy.deepcopy(record) if copy_record else record)
    except Exception as exc:  # an evaluator that raises fails the case
        return f"evaluate raised {type(exc).__name__}: {exc}"
    expect = case["expect"]
    if "patient_id" in expect and result.get("patient_id") != expect["patient_id"]:
        return f"patient_id {result.get('patient_id')!r}"
    if expect.get("error"):
        return None if result.get("status") == "error" and result.get("error") else f"expected an error, got {result.get('status')}"
    for frag in expect.get("warnings_contain", []):
        if not any(frag in w for w in result.get("warnings", [])):
            return f"no warning contains {frag!r}"
    if result.get("status") == "error":
        return f"unexpected error result: {result.get('error')}"
    by_ref: dict[str, list] = {}
    for c in result["criteria"]:
        by_ref.setdefault(c["ref"], []).append(c)
    for ref, want in expect.get("outcomes", {}).items():
        rules = by_ref.get(ref)
        if not rules:
            return f"no rule encodes {ref}"
        got = max((c["outcome"] for c in rules), key=ORDER.__getitem__)
        if got != want:
            return f"{ref}: expected {want}, got {got}"
    for cid, want in expect.get("criteria", {}).items():
        got = next((c for c in result["criteria"] if c["id"] == cid), None)
        if got is None:
            return f"no criterion {cid}"
        if got["outcome"] != want:
            return f"{cid}: expected {want}, got {got['outcome']} ({got['reason']})"
    if "cohorts" in expect:
        got = {c["id"]: c["status"] for c in result.get("cohorts", [])}
        if got != expect["cohorts"]:
            return f"cohorts: expected {expect['cohorts']}, got {got}"
    if "status" in expect and result["status"] != expect["status"]:
        return f"status: expected {expect['status']}, got {result['status']}"
    for ref, frag in expect.get("reason_contains", {}).items():
        reasons = " | ".join(c["reason"] for c in by_ref.get(ref, []))
        if frag not in reasons:
            return f"{ref}: reason {reasons!r} lacks {frag!r}"
    for ref, codes in expect.get("missing_equals", {}).items():
        missing = [m for c in by_ref.get(ref, []) for m in c["missing"]]
        if sorted(set(missing)) != sorted(codes):
            return f"{ref}: missing {missing}, not exactly {codes}"
    for ref, codes in expect.get("missing_contains", {}).items():
        missing = {m for c in by_ref.get(ref, []) for m in c["missing"]}
        for code in codes:
            if code not in missing:
                return f"{ref}: missing {sorted(missing)} lacks {code!r}"
    return None
