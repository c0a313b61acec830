#!/usr/bin/env python3
"""Write the SM3321 sample inputs of `examples/sm3321/` (the files README's examples use).

    python tools/make_examples.py            # (re)write examples/sm3321/
    python tools/make_examples.py --check    # exit 1 naming the files that differ

The output depends on nothing but this script and the cohort generator (`benchmarks/cohort*.py`, deterministic), so
a test (`tests/test_examples.py`) fails when the committed files are stale.

- `patient.json`: SCR-0001, eligible under every SM3321 criterion (pretty-printed, one object);
- `patient_low_platelets.json`: SCR-0002, the same patient with platelets 85 x 10^9/L, below the
  limit of I7b (>= 100 x 10^9/L): ineligible;
- `patient_missing_data.json`: SCR-0003, no AST ULN and no hemoglobin in the 7-day window:
  indeterminate, naming what is missing;
- `patients.jsonl`: the three as JSON Lines;
- `registry.jsonl`: 300 synthetic records of the cohort generator (seed 3321, 1 % corrupted).
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "examples" / "sm3321"
REGISTRY_SIZE = 300
REGISTRY_SEED = 3321

ELIGIBLE = {
    "format": 1,
    "id": "SCR-0001",
    "sex": "female",
    "birth_date": "1960-05-10",
    "anchors": {"screening": "2026-01-05", "enrollment": "2026-01-12", "first_dose": "2026-01-15"},
    "observations": [
        {"code": "hemoglobin", "value": 12.5, "unit": "g/dL", "date": "2026-01-12"},
        {"code": "platelets", "value": 210, "unit": "10*9/L", "date": "2026-01-12"},
        {"code": "neutrophils", "value": 3.2, "unit": "10*9/L", "date": "2026-01-12"},
        {"code": "ast", "value": 30, "unit": "U/L", "uln": 40, "date": "2026-01-12"},
        {"code": "alt", "value": 28, "unit": "U/L", "uln": 45, "date": "2026-01-12"},
        {"code": "total_bilirubin", "value": 12, "unit": "umol/L", "uln": 21, "date": "2026-01-12"},
        {"code": "serum_creatinine", "value": 0.8, "unit": "mg/dL", "date": "2026-01-12"},
        {"code": "inr", "value": 1.0, "unit": "1", "uln": 1.2, "date": "2026-01-12"},
        {"code": "weight", "value": 68, "unit": "kg", "date": "2026-01-05"},
        {"code": "ecog", "value": 1, "date": "2026-01-05"},
        {"code": "life_expectancy", "value": 6, "unit": "mo", "date": "2026-01-05"},
        {"code": "recist_evaluable_lesions", "value": 2, "unit": "1", "date": "2026-01-05"},
        {"code": "qtcf", "value": 430, "unit": "ms", "date": "2026-01-05"},
        {"code": "lvef", "value": 60, "unit": "%", "date": "2026-01-05"},
        {"code": "systolic_bp", "value": 130, "unit": "mm[Hg]", "date": "2026-01-12"},
        {"code": "diastolic_bp", "value": 80, "unit": "mm[Hg]", "date": "2026-01-12"},
        {"code": "body_temperature", "value": 36.8, "unit": "Cel", "date": "2026-01-12"},
        {"code": "hbsag", "value": "negative", "date": "2025-12-31"},
        {"code": "hcv_antibody", "value": "negative", "date": "2025-12-31"},
    ],
    "conditions": [
        {"code": "solid_tumor", "onset": "2025-03-01", "status": "active",
         "attributes": {"confirmation": "histological", "extent": "metastatic", "resectable": False}},
    ],
    "treatments": [
        {"code": "carboplatin", "classes": ["chemotherapy"], "start": "2025-06-01", "end": "2025-10-01"},
    ],
    "procedures": [],
    "facts": {
        "informed_consent": True,
        "standard_therapy_exhausted": True,
        "fertile": False,
        "planned_major_surgery": False,
        "planned_live_vaccine": False,
        "other_conditions_acceptable": True,
        "investigator_approval": True,
    },
}


def _low_platelets() -> dict:
    rec = copy.deepcopy(ELIGIBLE)
    rec["id"] = "SCR-0002"
    for o in rec["observations"]:
        if o["code"] == "platelets":
            o["value"] = 85
    return rec


def _missing_data() -> dict:
    rec = copy.deepcopy(ELIGIBLE)
    rec["id"] = "SCR-0003"
    rec["observations"] = [o for o in rec["observations"] if o["code"] != "hemoglobin"]
    for o in rec["observations"]:
        if o["code"] == "ast":
            del o["uln"]
    # an older hemoglobin, outside the 7-day window of I7b
    rec["observations"].insert(0, {"code": "hemoglobin", "value": 118, "unit": "g/L", "date": "2025-12-20"})
    return rec


def files() -> dict[str, str]:
    """File name -> exact text."""
    sys.path.insert(0, str(ROOT))
    from benchmarks.cohort import write_jsonl

    three = [ELIGIBLE, _low_platelets(), _missing_data()]
    pretty = lambda r: json.dumps(r, indent=2, ensure_ascii=False) + "\n"  # noqa: E731
    registry = io.StringIO()
    write_jsonl(registry, REGISTRY_SIZE, seed=REGISTRY_SEED, corrupt_rate=0.01)
    return {
        "patient.json": pretty(three[0]),
        "patient_low_platelets.json": pretty(three[1]),
        "patient_missing_data.json": pretty(three[2]),
        "patients.jsonl": "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in three),
        "registry.jsonl": registry.getvalue(),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="write nothing; exit 1 naming stale files")
    ap.add_argument("-o", "--output", type=Path, default=OUT, help="directory (default: examples/sm3321)")
    args = ap.parse_args(argv)
    stale = []
    for name, text in files().items():
        path = args.output / name
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(path)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name("." + name + ".tmp")
        tmp.write_text(text, encoding="utf-8", newline="\n")
        tmp.replace(path)
        print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    for p in stale:
        print(f"stale: {p}", file=sys.stderr)
    if stale:
        print("regenerate with: python tools/make_examples.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
