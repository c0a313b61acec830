"""The fast path of a comparison of two numbers in the relational DuckDB script
(rel_fast.FastNumbers: each operand a double with an error bound and a state, the patients it
decides out of the criterion's chain, the exact lists only for the others) against the Python
evaluator, on records built to fall on both sides of each branch: ages exactly at the limit
(birthday on the screening day, the day before, the day after, born in a leap day, before 1970),
the birth date or the anchor missing or unusable; the Cockcroft-Gault creatinine clearance exactly
at 50 mL/min (48 kg and 1 mg/dL at 65 years), within rounding of it, a zero weight, a zero
creatinine (a zero divisor), unusable units, readings without a date or a code that could be the
latest (several candidates), no reading, the sex of the factor unknown; and the same records
sixty years earlier (dates before 1970), in the relational and the lambda form."""

import copy
import json
import random

import pytest

from conftest import CASES
from test_sql import assert_every_outcome, assert_sql_equals_python

from compiler.sql import loader, screen

pytest.importorskip("duckdb")

CRITS = ("age_18_or_over", "creatinine_clearance")

BIRTHS = ["2008-01-12", "2008-01-11", "2008-01-13", "2007-01-12", "2009-01-12", "1961-01-12", "1961-01-11",
          "1961-01-13", "1960-02-29", "1944-03-01", "1900-01-01", "2026-02-30", "long ago", None, "missing"]
SCREENING = ["2026-01-12", "2026-01-12", "2026-01-12", "2024-02-29", "2026-02-30", None, "missing"]
WEIGHTS = [(48, "kg"), (48.0, "kg"), (47.99999999999999, "kg"), (48.00000000000001, "kg"), (105.8218858, "[lb_av]"),
           (48000, "g"), (60, "kg"), (75, "kg"), (0, "kg"), (-0.0, "kg"), (48, "furlong"), ("48", "kg"), (1e300, "kg"), (None, "kg")]
CREATININE = [(1, "mg/dL"), (1.0, "mg/dL"), (0.9999999999999999, "mg/dL"), (1.25, "mg/dL"), (88.4, "umol/L"),
              (110.5, "umol/L"), (0, "mg/dL"), (-0.0, "mg/dL"), (1e-300, "mg/dL"), (2, "furlong"), (None, "mg/dL")]
DATES = ["2026-01-12", "2026-01-12", "2026-01-10", "2026-01-08", "2025-12-01", "2026-01-20", "2026-02-30", None, "missing"]


def _reading(rng, code, choices):
    value, unit = rng.choice(choices)
    r = {"code": code if rng.random() > 0.1 else rng.choice([None, "", "missing"]), "value": value, "unit": unit,
         "date": rng.choice(DATES)}
    for k in ("code", "date"):
        if r[k] == "missing":
            del r[k]
    if value is None and rng.random() < 0.5:
        del r["value"]
    return r


def _records(n=500, seed=21):
    base = json.loads((CASES / "_base" / "baseline.json").read_text(encoding="utf-8"))
    rng = random.Random(seed)
    out = []
    for k in range(n):
        r = copy.deepcopy(base)
        r["id"] = f"num-{k}"
        birth = rng.choice(BIRTHS)
        if birth == "missing":
            r.pop("birth_date", None)
        else:
            r["birth_date"] = birth
        scr = rng.choice(SCREENING)
        if scr == "missing":
            r["anchors"].pop("screening", None)
        else:
            r["anchors"]["screening"] = scr
        if rng.random() < 0.15:
            r["sex"] = rng.choice([None, "unknown", "female"])
        keep = [o for o in r["observations"] if o["code"] not in ("weight", "serum_creatinine")]
        new = ([_reading(rng, "weight", WEIGHTS) for _ in range(rng.choice([0, 1, 1, 1, 2]))]
               + [_reading(rng, "serum_creatinine", CREATININE) for _ in range(rng.choice([0, 1, 1, 1, 2]))])
        rng.shuffle(new)
        r["observations"] = keep + new
        if rng.random() < 0.08:
            r["anchors"]["first_dose"] = rng.choice([None, "2026-02-30"])
        out.append(json.dumps(r))
    return out


@pytest.fixture(scope="module")
def num_records():
    return _records()


def test_number_comparison_fast_path_equals_python(compiled, sm3321, num_records, tmp_path):
    sqls = assert_sql_equals_python(compiled, sm3321, num_records, tmp_path, CRITS, name="num.jsonl")
    assert_every_outcome(sqls, CRITS)


def test_number_comparison_both_sides_of_the_guard(compiled, sm3321, num_records, tmp_path):
    """The records reach both paths: decided by the doubles (pass/fail and surely unknown) and
    left to the exact lists (ties, several candidates, a zero divisor); an age against 18 years
    is always decided (both exact)."""
    path = tmp_path / "num.jsonl"
    path.write_text("".join(t + "\n" for t in num_records), encoding="utf-8")
    con = screen.connect(threads=2, memory_limit="2GB")
    loader.load_jsonl(con, str(path))
    script = screen.prepare_script(compiled.program, compiled.lowered, only=set(CRITS))
    screen._macros(con, script)
    screen.resolve_units(con, compiled.program, sm3321)
    for name, sql, order in script.prep:
        con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM ({sql})" + (f" ORDER BY {order}" if order else ""))
    for cid, sql in script.steps:
        assert f'"{cid}__u" AS' in sql and f'"{cid}__all" AS' in sql, cid
        head = sql[:sql.rindex("\nSELECT seq")]
        und = con.execute(f'{head}\nSELECT count(*) FROM "{cid}__u"').fetchone()[0]
        if cid == "age_18_or_over":  # an age in years and 18 are exact doubles: always decided
            assert und == 0
        else:
            assert 0 < und < len(num_records) // 2, (cid, und)
    con.close()


@pytest.mark.slow  # (two screenings, the lambda form's the slower)
def test_number_comparison_before_1970_equals_python(compiled, sm3321, num_records, tmp_path):
    old = [t.replace('"2026-', '"1966-').replace('"2025-', '"1965-').replace('"2024-', '"1964-')
           .replace('"2008-', '"1948-').replace('"2007-', '"1947-').replace('"2009-', '"1949-') for t in num_records]
    for relational in (True, False):
        assert_sql_equals_python(compiled, sm3321, old, tmp_path, CRITS, name="num.jsonl", relational=relational)
