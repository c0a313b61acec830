#!/usr/bin/env python3
"""Deterministic synthetic cohort of SM3321 patient records (patient record format 1).

Usable as a module::

    from benchmarks.cohort import generate, write_jsonl
    for rec in generate(1000, seed=3321, corrupt_rate=0.01):
        ...   # dict (a normal record) or str (the raw JSON line of a corrupted record)

and as a script::

    python benchmarks/cohort.py 100000 -o cohort.jsonl --seed 3321 --corrupt-rate 0.01

Standard library only. Records are produced lazily, one at a time; record ``i`` is generated
from its own ``random.Random`` seeded with an integer derived from ``(seed, i)``, so the output
depends only on ``n``, ``seed`` and ``corrupt_rate`` (not on PYTHONHASHSEED, and record ``i``
is the same whatever ``n`` is). The decision to corrupt record ``i`` is always the first draw of
its generator, so changing ``corrupt_rate`` changes only the records that become corrupted.

The generator is split by concern: ``cohort_tables.py`` holds the dates, numbers, unit tables,
catalogues and the spoilers of an observation's field; ``cohort_record.py`` builds one normal
record section by section (patient and anchors, conditions, treatments, procedures, facts) and
``cohort_obs.py`` its observations; this module keeps the corrupted records and the public API.

What the cohort looks like
--------------------------
* Anchors: ``screening`` uniformly in 2025-01-01 .. 2027-12-10, ``enrollment`` 5-10 days later
  (mode 7), ``first_dose`` 1-6 days after that (mode 3). About 1 % of records lack one anchor,
  0.5 % have enrollment/first_dose swapped.
* Patients: 50 % female; age triangular 25-86 (mode 62); ~2 % are within days of their 18th
  birthday at screening (some born on 29 February 2008, screened around 1 March 2026).
* Observations: 30-80 per record. A lab panel (hemoglobin, platelets, neutrophils, ast, alt,
  total_bilirubin, serum_creatinine, inr) is drawn at 2-5 dates: a screening draw that is
  usually 8-17 days before first_dose (outside the 7-day lab window), usually one draw inside
  the window (enrollment, the day before, Day 1, or exactly 7 days before), sometimes old draws
  1-4 months earlier, rarely a post-dose draw. Vital signs (blood pressure, temperature,
  weight) at 1-5 visits; ECOG, life expectancy, RECIST lesions, ECG QTcF (sometimes in
  triplicate), LVEF, hepatitis B/C serology, CD4 for HIV, pregnancy test for fertile women.
  For every limit of SM3321's criteria a patient is "near the limit" with probability ~0.2 (the
  value is then the limit in the displayed unit plus a few rounding steps, so values exactly
  at the limit are common: 9.0 g/dL, 100.4 [degF], INR 1.8 with ULN 1.2, QTcF 0.45 s ...);
  otherwise it comes from a plausible population distribution. Units vary per site
  (g/L | g/dL, 10*9/L | 10*3/uL | /uL, umol/L | mg/dL, kg | [lb_av], Cel | [degF],
  mm[Hg] | kPa, ms | s, wk | mo | d, /uL | 10*6/L | 10*9/L), rounded as labs report them.
  Serum creatinine is drawn so that Cockcroft-Gault clearance is around 50 mL/min for ~30 %
  of patients (a few exactly 50 with mg/dL creatinine), log-normal around 85 otherwise.
* Conditions: an active solid_tumor for ~98 % (attributes almost always), liver metastasis
  ~25 %, Gilbert ~4 %, CNS metastasis ~8 % (with treated/stable_since/...), HIV ~3 %, other
  malignancy ~6 %, unresolved toxicity ~20 %, cardiac, infectious, thrombotic, autoimmune and
  psychiatric conditions at low rates, and common comorbidities outside the vocabulary
  (hypertension, type_2_diabetes, copd ...), which a checker reports as warnings.
* Treatments: 0-5 prior anticancer lines (chemotherapy, fluoropyrimidines, nitrosoureas,
  mitomycin, anti-PD-1/PD-L1, targeted and small-molecule drugs, herbal, investigational), the
  last one often ending within 2-8 weeks of first_dose, with half_life given for about half of
  the agents; growth factors, transfusions, corticosteroids (daily_dose/route/purpose around
  10 mg prednisone equivalent), immunosuppressants, immunomodulators, live vaccines at low
  rates; concomitant medications with no class.
* Procedures: radiotherapy ~30 % (fractions, intent), major surgery ~45 %, rare CABG and
  transplants, and biopsies/port placements (codes outside the vocabulary).
* Facts: the nine SM3321 facts, mostly true/false, each absent ~3 % of the time (and
  ``contraception_agreement`` often, ``fever_explained`` usually, left out when irrelevant).
* Defects always present at a low rate (~2-3 % of items): missing uln/lloq, a value written as
  a string ("9.8", "12,5", "<20", "pending"), a unit not convertible to the concept's unit
  (hemoglobin in mmol/L, neutrophils in %, INR in s ...), a missing unit, a misspelt or unknown
  code, an impossible or non-ISO date ("2026-02-30", "2026-13-05", "05/01/2026", "", null), a
  null value, an attribute of the wrong type, an absent or non-boolean fact.
* With ``corrupt_rate`` > 0, each record is independently replaced, with that probability, by
  a corrupted JSON line (a str): truncated JSON, a non-object JSON value, text that is not
  JSON, trailing garbage, ``"format": 2`` / missing / ``"1"``, missing / empty / numeric id,
  observations/conditions/treatments/procedures that are not lists, anchors/facts that are not
  objects, NaN / Infinity / -Infinity / 1e400 / -1e400 written into a value, huge integers
  (400 digits, and 5000 digits which exceed Python's default int-string limit).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import sys
from typing import IO, Iterator

if __package__:
    from .cohort_record import _record
else:  # run as a script, or ``import cohort`` with benchmarks/ on sys.path
    from cohort_record import _record  # type: ignore[no-redef]

__all__ = ["generate", "write_jsonl", "main"]


# ---------------------------------------------------------------------------------------------
# Corrupted whole records

_CORRUPT_KINDS = (
    "truncated", "truncated", "array", "scalar", "not_json", "trailing_garbage",
    "format2", "format_missing", "format_string", "no_id", "empty_id", "id_number",
    "obs_not_list", "list_field_wrong", "object_field_wrong",
    "nan", "infinity", "neg_infinity", "big_float", "huge_int", "huge_int_5000",
)
_SENTINEL = "@@SENTINEL@@"
_SENTINEL_JSON = json.dumps(_SENTINEL)


def _corrupt(rng: random.Random, idx: int) -> str:
    kind = rng.choice(_CORRUPT_KINDS)
    rec = _record(rng, idx)
    if kind == "truncated":
        text = _dumps(rec)
        return text[: rng.randrange(1, len(text) - 1)]
    if kind == "array":
        return rng.choice(("[1,2]", "[]", '[{"format":1,"id":"SYN-%06d"}]' % (idx + 1), "[null]"))
    if kind == "scalar":
        return rng.choice(('"text"', "42", "null", "true", '"SYN-%06d"' % (idx + 1), "-0.5"))
    if kind == "not_json":
        return rng.choice(("not json at all", "{format: 1, id: 'SYN-%06d'}" % (idx + 1),
                           "SYN-%06d,male,1960-05-10" % (idx + 1), "{'format': 1}", "<record/>",
                           "{\"format\":1,\"id\":\"SYN-%06d\",}" % (idx + 1)))
    if kind == "trailing_garbage":
        return _dumps(rec) + rng.choice((" x", "}", ",", " {}", "]"))
    if kind == "format2":
        rec["format"] = 2
    elif kind == "format_missing":
        del rec["format"]
    elif kind == "format_string":
        rec["format"] = rng.choice(("1", "1.0", None, 1.5, "format 1"))
    elif kind == "no_id":
        del rec["id"]
    elif kind == "empty_id":
        rec["id"] = ""
    elif kind == "id_number":
        rec["id"] = rng.choice((idx + 1, None, ["SYN-%06d" % (idx + 1)], True))
    elif kind == "obs_not_list":
        rec["observations"] = rng.choice(({"code": "hemoglobin", "value": 120, "unit": "g/L",
                                           "date": "2026-01-01"}, "hemoglobin 120 g/L", 0, None))
    elif kind == "list_field_wrong":
        rec[rng.choice(("conditions", "treatments", "procedures"))] = rng.choice(({}, "none", 1, True))
    elif kind == "object_field_wrong":
        rec[rng.choice(("anchors", "facts"))] = rng.choice(([], "2026-01-05", 0, [True]))
    else:  # a non-finite, overflowing or huge number written into the text
        target = _numeric_slot(rng, rec)
        if target is None:
            rec["observations"] = [{"code": "hemoglobin", "value": 0, "unit": "g/L",
                                    "date": rec["anchors"].get("screening", "2026-01-05")}]
            target = (rec["observations"][0], "value")
        holder, key = target
        holder[key] = _SENTINEL
        token = {
            "nan": "NaN", "infinity": "Infinity", "neg_infinity": "-Infinity",
            "big_float": rng.choice(("1e400", "-1e400", "1.5E+999")),
            "huge_int": "9" * 400,
            "huge_int_5000": "1" + "0" * 4999,
        }[kind]
        return _dumps(rec).replace(_SENTINEL_JSON, token, 1)
    return _dumps(rec)


def _numeric_slot(rng: random.Random, rec: dict):
    slots = []
    for o in rec["observations"]:
        if isinstance(o.get("value"), (int, float)) and not isinstance(o.get("value"), bool):
            slots.append((o, "value"))
            if "uln" in o:
                slots.append((o, "uln"))
    if not slots:
        return None
    return rng.choice(slots)


# ---------------------------------------------------------------------------------------------
# Public API

_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_dumps = _ENCODER.encode


def _rng_for(seed: int, i: int) -> random.Random:
    return random.Random(((seed % (1 << 64)) << 40) | (i & ((1 << 40) - 1)))


def generate(n: int, seed: int = 3321, corrupt_rate: float = 0.0) -> Iterator[dict | str]:
    """Yield ``n`` synthetic SM3321 patient records, lazily and deterministically.

    Normal records are dicts (patient record format 1, with a realistic low rate of missing or
    unusable items). With probability ``corrupt_rate`` each record is instead a str: the raw
    JSON line of a corrupted record (not JSON, not an object, wrong format, no id, ...).
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    if not 0.0 <= corrupt_rate <= 1.0:
        raise ValueError("corrupt_rate must be between 0 and 1")
    for i in range(n):
        rng = _rng_for(seed, i)
        if rng.random() < corrupt_rate:
            yield _corrupt(rng, i)
        else:
            yield _record(rng, i)


def _lines(n: int, seed: int, corrupt_rate: float) -> Iterator[str]:
    for item in generate(n, seed, corrupt_rate):
        yield (item if isinstance(item, str) else _dumps(item)) + "\n"


def write_jsonl(path_or_file, n: int, seed: int = 3321, corrupt_rate: float = 0.0) -> int:
    """Write ``n`` records as JSON Lines to a path or an open (text or binary) file.

    Streams in chunks; returns the number of records written.
    """
    if isinstance(path_or_file, (str, os.PathLike)):
        with open(path_or_file, "w", encoding="utf-8", newline="\n") as f:
            return write_jsonl(f, n, seed, corrupt_rate)
    f: IO = path_or_file
    binary = isinstance(f, (io.RawIOBase, io.BufferedIOBase)) or "b" in getattr(f, "mode", "")
    write = f.write
    chunk: list[str] = []
    count = 0
    for line in _lines(n, seed, corrupt_rate):
        chunk.append(line)
        count += 1
        if len(chunk) >= 256:
            s = "".join(chunk)
            write(s.encode("utf-8") if binary else s)
            chunk.clear()
    if chunk:
        s = "".join(chunk)
        write(s.encode("utf-8") if binary else s)
    f.flush()
    return count


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="cohort.py",
        description="Write N synthetic SM3321 patient records (format 1) as JSON Lines.")
    ap.add_argument("n", type=int, metavar="N", help="number of records")
    ap.add_argument("-o", "--output", metavar="FILE", default="-",
                    help="output file (default: standard output)")
    ap.add_argument("--seed", type=int, default=3321, help="random seed (default: 3321)")
    ap.add_argument("--corrupt-rate", type=float, default=0.0, metavar="R",
                    help="fraction of records replaced by corrupted JSON lines (default: 0)")
    args = ap.parse_args(argv)
    if args.n < 0:
        ap.error("N must be >= 0")
    if not 0.0 <= args.corrupt_rate <= 1.0:
        ap.error("--corrupt-rate must be between 0 and 1")
    if args.output == "-":
        out = sys.stdout.buffer
        try:
            write_jsonl(out, args.n, args.seed, args.corrupt_rate)
        except BrokenPipeError:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return 1
    else:
        write_jsonl(args.output, args.n, args.seed, args.corrupt_rate)
    return 0


if __name__ == "__main__":
    sys.exit(main())
