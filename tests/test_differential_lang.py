"""The generated module and the independent IR interpreter agree on random records for the
constructs of ranges, numbers in sets, conditional limits with a comparator per branch, age
in days / weeks / months / years, attributes with units, and cohorts (tests/lang_trial and
examples/nct04431453), with birth dates around month ends and 29 February."""

import datetime
import random
import types
from pathlib import Path

import pytest

from compiler.pipeline import compile_rules
from ir_interpreter import evaluate as interpret

ROOT = Path(__file__).resolve().parent.parent


def _load(rules):
    res = compile_rules(rules)
    assert res.ok
    mod = types.ModuleType("lang_diff")
    exec(compile(res.python, "<lang_diff>", "exec"), mod.__dict__)
    return res.program, mod


def _dates(rng, anchor):
    # birth dates near month ends, leap days, a few months before the anchor, any day of the last years
    pick = rng.random()
    if pick < 0.4:  # one of the last days of the month k months before the anchor's month
        k = rng.choice([1, 2, 5, 6, 7, 12, 24])
        y, m = divmod(anchor.year * 12 + anchor.month - 1 - k + 1, 12)
        return datetime.date(y, m + 1, 1) - datetime.timedelta(days=rng.choice([1, 2, 3]))
    pick = rng.random()
    if pick < 0.3:
        y = rng.choice([2016, 2020, 2024, 2025])
        m = rng.randint(1, 12)
        last = (datetime.date(y + (m == 12), m % 12 + 1, 1) - datetime.timedelta(days=1)).day
        return datetime.date(y, m, rng.choice([last - 1, last, min(29, last), 28]))
    if pick < 0.4:
        return datetime.date(rng.choice([2008, 2012, 2016, 2020, 2024]), 2, 29)
    return anchor - datetime.timedelta(days=rng.choice([rng.randint(-3, 120), rng.randint(0, 7000)]))


def _record(rng, i):
    s = datetime.date(2024, 1, 1) + datetime.timedelta(days=rng.randint(0, 900))
    if rng.random() < 0.5:  # screening on a month's first days or last days
        first = datetime.date(s.year, s.month, 1)
        nxt = datetime.date(s.year + (s.month == 12), s.month % 12 + 1, 1)
        s = rng.choice([first, first + datetime.timedelta(days=1), nxt - datetime.timedelta(days=1),
                        nxt - datetime.timedelta(days=2), nxt - datetime.timedelta(days=3)])
    day = s.isoformat()
    obs = []
    for code, values, unit in (("ecog", [0, 1, 2, 1.0, 0.5], None), ("lesion_count", [9, 10, 40, 41, 25], None),
                               ("bilirubin", [2.0, 2.01, 2.99, 3.0], "mg/dL"), ("bilirubin", [34.2, 51.31, 51.32], "umol/L"),
                               ("weight", [2.49, 2.5, 3, 39.99, 40, 40000], "kg"), ("gestational_age", [37, 38, 260, 259], "wk"),
                               ("birth_weight", [1.49, 1.5, 2.5, 2499], "kg")):
        if rng.random() < 0.8:
            o = {"code": code, "value": rng.choice(values), "date": day}
            if unit:
                o["unit"] = unit if rng.random() < 0.8 else rng.choice(["g", "d", "umol/L", "mg", "kg"])
            obs.append(o)
    conds = []
    if rng.random() < 0.4:
        conds.append({"code": "gilbert_syndrome", "onset": "2010-01-01", "status": "active"})
    if rng.random() < 0.6:
        size = rng.choice([{"value": 10, "unit": "mm"}, {"value": 1.01, "unit": "cm"}, {"value": 1, "unit": "kg"}, 5, None])
        conds.append({"code": "rosacea_lesion", "onset": "2023-01-01", "status": "active",
                      "attributes": {} if size is None else {"diameter": size}})
    procs = []
    if rng.random() < 0.6:
        procs.append({"code": "dosing", "date": "2023-06-01",
                      "attributes": {"dose": rng.choice([{"value": 0.1, "unit": "g"}, {"value": 150, "unit": "mg"}, {"value": 200000, "unit": "ug"}])}})
    rec = {"format": 1, "id": f"R{i}", "sex": rng.choice(["male", "female"]),
           "anchors": {"screening": day, "first_dose": day}, "observations": obs, "conditions": conds, "procedures": procs,
           "facts": {"creatinine_above_infant_threshold": rng.choice([True, False])}}
    if rng.random() < 0.95:
        rec["birth_date"] = _dates(rng, s).isoformat()
    return rec


@pytest.mark.parametrize("rules", [ROOT / "tests" / "lang_trial", ROOT / "examples" / "nct04431453"], ids=["lang", "nct04431453"])
def test_module_and_interpreter_agree(rules):
    program, mod = _load(rules)
    rng = random.Random(20261207)
    for i in range(600):
        rec = _record(rng, i)
        a, b = mod.evaluate(rec), interpret(program, rec)
        assert [c["outcome"] for c in a["criteria"]] == [c["outcome"] for c in b["criteria"]], rec
        assert a["status"] == b["status"], rec
        assert a.get("cohorts") == b.get("cohorts"), rec
