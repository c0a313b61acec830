"""Two paths, one answer: the generated evaluator against an independent IR interpreter (issue 5).

`tests/ir_interpreter.py` evaluates the checked IR (`compiled.program`) directly, written from the
spec without the runtime. On hypothesis-built records near every limit and window boundary of
the rules, and on the cohort generator's records for a few thousand seeds, the generated module
and the interpreter must agree on every criterion's outcome and on the status.

Where they disagreed, the spec decided, and each disagreement became a minimal reproducer below,
`test_fixed_*`: found here, fixed in the runtime since, kept as regression tests. In each, the
interpreter gives the spec's answer, and so must the generated module.
"""

from __future__ import annotations

import copy
import datetime
import json
import math
import os
import sys
import types
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler import ir as I
from compiler.pipeline import compile_sources
from conftest import CASES, ROOT, build_record
from ir_interpreter import Interpreter
from ir_interpreter_values import month_shift

sys.path.insert(0, str(ROOT))
from benchmarks.cohort import generate  # noqa: E402


def _numbers(x):
    if isinstance(x, bool):
        return
    if isinstance(x, (int, float)):
        yield x
    elif isinstance(x, dict):
        for v in x.values():
            yield from _numbers(v)
    elif isinstance(x, list):
        for v in x:
            yield from _numbers(v)


def _load(python: str, name: str) -> types.ModuleType:
    mod = types.ModuleType(name)
    exec(compile(python, f"<{name}.py>", "exec"), mod.__dict__)
    return mod


def compare(module, interp: Interpreter, record) -> list[str]:
    """The disagreements between the module and the interpreter on one record (empty: agree)."""
    got = module.evaluate(record)
    want = interp.evaluate(record)
    if (got["status"] == "error") != (want["status"] == "error"):
        return [f"status: module {got['status']} ({got.get('error')}), interpreter {want['status']} ({want.get('error')})"]
    if got["status"] == "error":
        return []
    out = []
    mine = {c["id"]: c for c in want["criteria"]}
    assert [c["id"] for c in got["criteria"]] == [c["id"] for c in want["criteria"]]
    for c in got["criteria"]:
        w = mine[c["id"]]
        if c["outcome"] != w["outcome"]:
            out.append(f"{c['id']}: module {c['outcome']} ({c['reason']}), interpreter {w['outcome']} (missing {w['missing']})")
    if got["status"] != want["status"]:
        out.append(f"status: module {got['status']}, interpreter {want['status']}")
    return out


def assert_agree(module, interp, record):
    diffs = compare(module, interp, record)
    assert not diffs, "\n".join(diffs) + "\nrecord: " + json.dumps(record, default=repr)[:4000]


# ---------------------------------------------------------------------- the interpreter itself

ORDER = {"fail": 3, "unknown": 2, "review": 1, "pass": 0}
# SM3321's cases (suites with rules of their own, under a `_rules/` directory, are compared in
# test_cases.py and test_example_cases.py)
CASE_FILES = sorted(p for p in CASES.rglob("*.json")
                    if p.parent.name not in ("_base", "_rules") and not any((d / "_rules").is_dir() for d in p.parents))


def test_interpreter_gives_every_outcome_the_case_files_demand(compiled):
    """The interpreter meets the spec cases written from the protocol (tests/cases)."""
    interp = Interpreter(compiled.program)
    ref_of = {c.id: c.refs[0] for c in compiled.program.criteria}
    bad = []
    for path in CASE_FILES:
        case = json.loads(path.read_text(encoding="utf-8"))
        result = interp.evaluate(build_record(case))
        expect = case["expect"]
        if expect.get("error"):
            if result["status"] != "error":
                bad.append(f"{path.name}: expected an error result")
            continue
        if result["status"] == "error":
            bad.append(f"{path.name}: unexpected error {result['error']}")
            continue
        by_ref = {}
        for c in result["criteria"]:
            by_ref.setdefault(ref_of[c["id"]], []).append(c["outcome"])
        for ref, want in expect.get("outcomes", {}).items():
            got = max(by_ref[ref], key=ORDER.__getitem__)
            if got != want:
                bad.append(f"{path.parent.name}/{path.name}: {ref} expected {want}, got {got}")
        if "status" in expect and result["status"] != expect["status"]:
            bad.append(f"{path.name}: status expected {expect['status']}, got {result['status']}")
    assert not bad, "\n".join(bad)
    assert len(CASE_FILES) > 100


def test_spec_examples_agree(compiled, sm3321):
    interp = Interpreter(compiled.program)
    examples = sorted((Path(ROOT) / "tests" / "contract").glob("*.record.json"))
    for p in examples:
        rec = json.loads(p.read_text(encoding="utf-8"))
        want = json.loads(p.with_name(p.name.replace(".record", ".result")).read_text(encoding="utf-8"))
        got = interp.evaluate(rec)
        assert got["status"] == want["status"], p.name
        got_by_id = {c["id"]: c["outcome"] for c in got["criteria"]}
        assert got_by_id == {c["id"]: c["outcome"] for c in want["criteria"]}, p.name
        assert_agree(sm3321, Interpreter(compiled.program), rec)


# ---------------------------------------------------------------------- records near the limits

INTERESTING_FIRST_DOSES = ["2026-01-15", "2026-03-31", "2026-08-31", "2024-02-29", "2025-03-01", "2026-12-31",
                           "2027-01-01", "2028-02-29"]
BAD_DATES = ["2026-02-30", "2026-13-01", "", None, "05/01/2026", "2026-1-5", "２０２６-０１-０５", 20260105, "unknown"]
BAD_NUMBERS = ["9.8", "12,5", "<20", "pending", None, True, [], {}, float("nan"), float("inf"), 10 ** 400, -(10 ** 30)]


def _iso(o: int) -> str:
    return datetime.date.fromordinal(o).isoformat()


class Hints:
    """Everything in a program that makes a value interesting: limits, windows, attributes."""

    def __init__(self, program: I.Program):
        self.p = program
        self.obs = {o.name: o for o in program.observations}
        self.limits: dict[str, set] = {o.name: set() for o in program.observations}  # (unit, Fraction)
        self.ref_multiples: dict[str, set] = {o.name: set() for o in program.observations}
        self.windows: set = set()  # ("days", n) | ("months", n)
        self.numbers: set = {Fraction(0), Fraction(1), Fraction(2), Fraction(3), Fraction(7)}
        self.tests: set = set()  # words tested with is / in (routes, purposes, enum values)
        for c in program.criteria:
            self._walk(c.body, None)
        for d in program.derived:
            self._walk(d.formula, None)

    def _walk(self, n, code):
        if isinstance(n, I.SelLatest) or isinstance(n, I.SelItem):
            code = n.code
            if isinstance(n, I.SelLatest):
                self._walk(n.window, code)
        if isinstance(n, I.BObsCmp):
            code = n.sel.code
        if isinstance(n, I.BObsBetween):
            code = n.sel.code
        if isinstance(n, I.BObsQuery):
            code = n.code
        if isinstance(n, I.LConst) and code:
            self.limits[code] |= {(u, v) for u, v in n.table}
        if isinstance(n, I.LRef) and code:
            self.ref_multiples[code].add((n.which, n.multiple))
        if isinstance(n, I.DConst):
            self.windows.add((n.kind, n.amount))
        if isinstance(n, I.NConst):
            self.numbers.add(n.value)
        if isinstance(n, (I.BAttrIs, I.BFieldIs, I.BClassIn)):
            self.tests |= set(n.tests)
        if isinstance(n, (tuple, list)):
            for x in n:
                self._walk(x, code)
            return
        if hasattr(n, "__dataclass_fields__"):
            for f in n.__dataclass_fields__:
                v = getattr(n, f)
                if hasattr(v, "__dataclass_fields__") or isinstance(v, (tuple, list)):
                    self._walk(v, code)


def _decimals(x: Fraction) -> int | None:
    """Decimal places of a terminating decimal, else None."""
    d = x.denominator
    k = 0
    while d % 10 == 0 or d % 2 == 0 or d % 5 == 0:
        if d == 1:
            return k
        d = d // 10 if d % 10 == 0 else (d // 2 if d % 2 == 0 else d // 5)
        k += 1
    return k if d == 1 else None


def _as_json_number(x: Fraction):
    if x.denominator == 1:
        return int(x)
    return float(x)


def _near(x: Fraction) -> list:
    """A limit as labs would report it, and one reporting step to either side."""
    k = _decimals(x)
    out = []
    if k is not None and k <= 6:
        step = Fraction(1, 10 ** max(k, 1)) if k else Fraction(1)
        out += [x, x - step, x + step]
        if k == 0:
            out += [x + Fraction(1, 10), x - Fraction(1, 10)]
    else:
        for places in (1, 2, 3):
            r = Fraction(round(x * 10 ** places), 10 ** places)
            out += [r, r - Fraction(1, 10 ** places), r + Fraction(1, 10 ** places)]
    return [_as_json_number(v) for v in out]


@st.composite
def dates_near(draw, anchors: dict, hints: Hints):
    """A date near a window boundary of one of the record's anchors (or a bad one)."""
    if draw(st.integers(0, 30)) == 0:
        return draw(st.sampled_from(BAD_DATES))
    valid = [v for v in anchors.values() if isinstance(v, int)]
    if not valid:
        return _iso(draw(st.integers(738000, 740000)))
    a = draw(st.sampled_from(valid))
    kind, n = draw(st.sampled_from(sorted(hints.windows, key=str) or [("days", Fraction(7))]))
    sign = draw(st.sampled_from((-1, -1, -1, 1)))
    if kind == "months":
        b = month_shift(a, sign * int(n)) if n < 1000 else None
        if b is None:
            b = a
    else:
        b = a + sign * math.floor(n)
    o = b + draw(st.sampled_from((0, 0, -1, 1, -2, 2, -30, 30, -400)))
    return _iso(min(max(o, 1), 3652059))


@st.composite
def observation_items(draw, hints: Hints, anchors: dict):
    code = draw(st.sampled_from(sorted(hints.obs)))
    el = hints.obs[code]
    item = {"code": code, "date": draw(dates_near(anchors, hints))}
    if el.kind == "qualitative":
        item["value"] = draw(st.sampled_from(list(el.values) * 4 + ["Positive", "", None, 1]))
    else:
        units = [u for u, _ in el.units]
        lims = sorted(hints.limits[code], key=str)
        if lims and draw(st.integers(0, 3)):
            unit, lim = draw(st.sampled_from(lims))
            value = draw(st.sampled_from(_near(lim)))
        else:
            unit = draw(st.sampled_from(units))
            value = draw(st.sampled_from([0, 1, 2, 3, 5, 7, 10, 50, 100, 1.5, 0.1, -1]))
        for which, mult in sorted(hints.ref_multiples[code], key=str):
            if draw(st.integers(0, 5)):
                ref = draw(st.sampled_from([1, 1.2, 20, 40, 1.1, 0.5]))
                item[which] = ref
                if draw(st.booleans()):
                    value = _as_json_number(mult * Fraction(repr(ref)) + draw(st.sampled_from([0, 0, Fraction(1, 100), -Fraction(1, 100), 1])))
        if draw(st.integers(0, 12)) == 0:
            unit = draw(st.sampled_from(["furlong", "%", "g", None, 7, "IU/mL", "g/l", "mmHg", "°C", "x10^9/L", "cells/uL",
                                         "10*9/l", "/ul", "{cells}/uL", "g.L-1", "10*6/mL", "{score}", "mg/dl", "10*9/LL"]))
        if unit is not None and not (unit == "1" and draw(st.booleans())):
            item["unit"] = unit
        if draw(st.integers(0, 15)) == 0:
            value = draw(st.sampled_from(BAD_NUMBERS))
        item["value"] = value
    if el.attributes and draw(st.integers(0, 6)):  # method, specimen ... (issue 9)
        item["attributes"] = {a.name: _attr_value(draw, a, hints, anchors) for a in el.attributes
                              if draw(st.integers(0, 5))}
    if draw(st.integers(0, 25)) == 0:
        item.pop(draw(st.sampled_from(sorted(item))))
    return item


def _attr_value(draw, attr: I.Attribute, hints: Hints, anchors):
    if attr.type == "boolean":
        return draw(st.sampled_from([True, False, True, False, None, "yes", 1]))
    if attr.type == "number":
        return draw(st.sampled_from(sorted({_as_json_number(x) for x in hints.numbers if abs(x) < 1000}) + [None, "3", 2.5, 4]))
    if attr.type == "date":
        return draw(dates_near(anchors, hints))
    if attr.type == "enum":
        return draw(st.sampled_from(list(attr.values) * 3 + ["other_value", None, 3]))
    return draw(st.sampled_from(sorted(hints.tests) + ["hello", "", None, 5]))


@st.composite
def item_entries(draw, hints: Hints, anchors: dict, kind: str):
    els = [x for x in hints.p.items if x.kind == kind]
    el = draw(st.sampled_from(els))
    item = {"code": el.name}
    if kind == "condition":
        item["onset"] = draw(dates_near(anchors, hints))
        item["status"] = draw(st.sampled_from(["active", "active", "resolved", "resolved", None, "ongoing"]))
        if draw(st.integers(0, 2)) == 0:
            item["end"] = draw(dates_near(anchors, hints))
    else:
        item["date"] = draw(dates_near(anchors, hints))
    if el.attributes and draw(st.integers(0, 6)):
        attrs = {}
        for a in el.attributes:
            if draw(st.integers(0, 6)):
                attrs[a.name] = _attr_value(draw, a, hints, anchors)
        item["attributes"] = attrs if draw(st.integers(0, 30)) else draw(st.sampled_from(["x", [], None]))
    if draw(st.integers(0, 40)) == 0:
        item[draw(st.sampled_from(["onset", "date", "status", "code"]))] = draw(st.sampled_from(BAD_DATES + [7]))
    return item


@st.composite
def treatment_entries(draw, hints: Hints, anchors: dict):
    classes = [c.name for c in hints.p.classes]
    agents = sorted({a for t in hints.p.equivalences for a, _ in t.factors}) + ["carboplatin", "budesonide"]
    item = {"code": draw(st.sampled_from(agents))}
    if draw(st.integers(0, 30)):
        item["classes"] = draw(st.lists(st.sampled_from(classes), min_size=0, max_size=2, unique=True))
    elif draw(st.booleans()):
        item["classes"] = draw(st.sampled_from(["chemotherapy", None, [1], {"a": 1}]))
    item["start"] = draw(dates_near(anchors, hints))
    end = draw(st.one_of(st.none(), dates_near(anchors, hints)))
    if isinstance(end, str) and isinstance(item["start"], str) and end < item["start"] and draw(st.booleans()):
        end = item["start"]
    if end is not None or draw(st.booleans()):
        item["end"] = end
    if draw(st.booleans()):
        item["half_life"] = draw(st.sampled_from([
            {"value": 1, "unit": "d"}, {"value": 5.6, "unit": "d"}, {"value": 22, "unit": "d"},
            {"value": 36, "unit": "h"}, {"value": 50, "unit": "min"}, {"value": 1, "unit": "wk"},
            {"value": 2, "unit": "mo"}, {"value": 28, "unit": "days"}, {"value": 0, "unit": "d"},
            {"value": "long", "unit": "d"}, {"value": 3, "unit": "furlong"}, {"value": 3}, "3 d", None,
        ]))
    for t in hints.p.equivalences:
        if draw(st.booleans()):
            factor = dict(t.factors).get(item["code"])
            threshold = Fraction(10)
            if factor:
                base = threshold / factor
                value = draw(st.sampled_from([base, base + Fraction(1, 10), base - Fraction(1, 10), base * 2, base / 2]))
                value = _as_json_number(value) if _decimals(value) is not None else float(value)
            else:
                value = draw(st.sampled_from([1, 10, 20]))
            item["daily_dose"] = draw(st.sampled_from([{"value": value, "unit": "mg"}, {"value": value, "unit": "mg"},
                                                       {"value": value / 1000, "unit": "g"}, {"value": value},
                                                       {"value": "x", "unit": "mg"}, 5]))
    for f in ("route", "purpose"):
        if draw(st.integers(0, 3)):
            item[f] = draw(st.sampled_from(sorted(hints.tests) + ["oral", "treatment", None, 3]))
    return item


@st.composite
def records_for(draw, program: I.Program, hints: Hints):
    fd = datetime.date.fromisoformat(draw(st.sampled_from(INTERESTING_FIRST_DOSES))).toordinal()
    fd += draw(st.sampled_from([0, 0, 0, -1, 1, 10, -200]))
    names = list(program.trial.anchors)
    anchors = {}
    for i, name in enumerate(names):
        if name == "first_dose":
            anchors[name] = fd
        else:
            anchors[name] = fd - draw(st.sampled_from([0, 3, 7, 10, 14])) - i
    rec = {"format": 1, "id": "H-%d" % draw(st.integers(0, 10 ** 6))}
    rec["anchors"] = {k: _iso(v) for k, v in anchors.items()}
    for k in list(rec["anchors"]):
        r = draw(st.integers(0, 40))
        if r == 0:
            del rec["anchors"][k]
        elif r == 1:
            rec["anchors"][k] = draw(st.sampled_from(BAD_DATES))
    sex = draw(st.sampled_from(["male", "female", "male", "female", None, "M", "unknown"]))
    if sex is not None:
        rec["sex"] = sex
    a0 = anchors.get("screening", fd)
    d0 = datetime.date.fromordinal(a0)
    years = draw(st.sampled_from([18, 18, 17, 19, 40, 68, 75, 76, 90]))
    born = d0.replace(year=d0.year - years, day=min(d0.day, 28)).toordinal() + draw(st.sampled_from([0, 0, 1, -1, 3]))
    rec["birth_date"] = draw(st.sampled_from([_iso(born)] * 6 + ["2008-02-29", "2007-03-01", None, "1960-02-30"]))
    obs = draw(st.lists(observation_items(hints, anchors), max_size=12))
    rec["observations"] = obs
    if any(x.kind == "condition" for x in program.items):
        rec["conditions"] = draw(st.lists(item_entries(hints, anchors, "condition"), max_size=5))
    if any(x.kind == "procedure" for x in program.items):
        rec["procedures"] = draw(st.lists(item_entries(hints, anchors, "procedure"), max_size=3))
    if program.classes:
        rec["treatments"] = draw(st.lists(treatment_entries(hints, anchors), max_size=4))
    facts = {}
    for f in program.facts:
        v = draw(st.sampled_from([True, True, False, "missing", None, "yes"]))
        if v != "missing":
            facts[f.name] = v
    rec["facts"] = facts
    return rec


DIFF = settings(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])


@pytest.fixture(scope="module")
def sm3321_pair(compiled, sm3321):
    return sm3321, Interpreter(compiled.program), Hints(compiled.program)


def _n(examples: int) -> int:
    """ELIG_FUZZ_SCALE=10 runs ten times as many examples (a longer local run)."""
    return max(1, int(examples * float(os.environ.get("ELIG_FUZZ_SCALE", "1"))))


@pytest.mark.slow
@settings(DIFF, max_examples=_n(400))
@given(st.data())
def test_sm3321_module_and_interpreter_agree_near_the_limits(sm3321_pair, data):
    module, interp, hints = sm3321_pair
    record = data.draw(records_for(hints.p, hints))
    assert_agree(module, interp, record)


# ---------------------------------------------------------------------- a kitchen-sink trial

KITCHEN_SINK = r'''
trial KS {
    title "Kitchen sink"
    protocol "p.txt"
    anchors screening, first_dose
}
observation sodium { unit mmol/L  limits LLN, ULN }
observation potassium { unit mmol/L  accepts meq/L }
observation temp { unit Cel  accepts [degF] }
observation hcg { qualitative positive, negative }
observation score { unit 1 }
observation creat { unit umol/L  accepts mg/dL  molar_mass 113.12 g/mol }
observation weight { unit kg  accepts [lb_av] }
condition dvt {
    attribute symptomatic: boolean
    attribute grade: number
    attribute since: date
    attribute kind: alpha | beta
    attribute remark: text
}
condition tumor { attribute stage: number }
procedure surgery { attribute minor: boolean }
treatment_class chemo, steroid_c, vaccine
fact consent
judgment ok_judgment
equivalence pred { pred 5 mg  dexa 0.75 mg  hydro 20 mg }
derived ratio {
    unit 1
    formula (latest weight on or before first_dose in kg) / ((latest creat within 14 d before first_dose in mg/dL) + 1)
        * (2 if sex is male else 1) - (age at screening in a)
}
let win = 14 d

inclusion na_normal { ref I1 quote "q" require latest sodium within 14 d before first_dose between LLN and ULN }
inclusion k_every { ref I2 quote "q" require every potassium within 30 d before first_dose where value between 3.5 mmol/L and 5.0 mmol/L }
exclusion fever_any { ref E1 quote "q" exclude when any temp within 7 d before first_dose where value > 38 Cel }
exclusion fever_no { ref E2 quote "q" exclude when not (no temp within 7 d before first_dose where value >= 38.5 Cel) }
exclusion hcg_pos { ref E3 quote "q" exclude when any hcg within 14 d before first_dose where value is positive }
exclusion every_dvt { ref E4 quote "q" exclude when not (every dvt within 6 mo before screening where symptomatic) }
exclusion every_dvt_unless { ref E4 quote "q" exclude when every active dvt unless symptomatic }
exclusion after_vacc { ref E5 quote "q" exclude when any vaccine within 14 d after screening }
inclusion anchors_order { ref I3 quote "q" require first_dose <= screening + 28 d and first_dose >= screening }
inclusion date_attr { ref I4 quote "q" require no active dvt unless (since <= first_dose - 2 wk and kind in {alpha} and remark is not hello) }
inclusion ratio_ok { ref I5 quote "q" require ratio >= 1 }
inclusion implies_ { ref I6 quote "q" require (if sex is female then latest hcg within 3 d before first_dose is negative) and (consent or ok_judgment) }
inclusion ifelse_bool { ref I7 quote "q" require (consent if sex is male else ok_judgment) }
inclusion score_calc { ref I8 quote "q" require (latest score on or before first_dose in 1) * 2 + 1 >= 5 }
exclusion hl_long { ref E6 quote "q" exclude when any chemo within 7 d before first_dose where half_life > 1 d }
exclusion steroid_course { ref E7 quote "q" exclude when any steroid_c within win before first_dose where (daily_dose as pred > 10 mg and not (purpose is prophylaxis and course <= 7 d) and route not in {topical}) }
exclusion washout_long { ref E8 quote "q" exclude when any chemo within longer of 3 x half_life and 1 wk before first_dose }
exclusion washout_short { ref E8 quote "q" exclude when any chemo within shorter of 28 d and 5 x half_life before first_dose }
exclusion washout_class { ref E8 quote "q" exclude when any chemo, steroid_c within (45 d if class in {steroid_c} else 2 x half_life) before first_dose }
exclusion grade_stage { ref E9 quote "q" exclude when any tumor where stage >= 3 or any dvt ever where (grade > 2 and status in {resolved}) }
exclusion months_win { ref E10 quote "q" exclude when any surgery within 6 mo before screening unless minor }
exclusion years_win { ref E10 quote "q" exclude when any tumor within 1 a before screening where status is not resolved }
exclusion age_limit { ref E11 quote "q" exclude when age at screening > 75 a or age at first_dose < 18 a }
inclusion sodium_ref { ref I9 quote "q" require latest sodium on or before first_dose >= 1.1 x LLN }
exclusion temp_sex { ref E12 quote "q" exclude when latest temp within 2 d before first_dose > (37.5 Cel if sex is female else 100 [degF]) }
exclusion temp_ever { ref E13 quote "q" exclude when latest temp ever < 35 Cel }
inclusion weight_eq { ref I10 quote "q" require latest weight on or before first_dose != 70 kg and latest score ever = 3 }
'''


@pytest.fixture(scope="module")
def ks_pair():
    res = compile_sources({"ks.elig": KITCHEN_SINK})
    assert res.ok, "\n".join(d.format(res.sources) for d in res.diagnostics)
    return _load(res.python, "ks_under_test"), Interpreter(res.program), Hints(res.program)


@pytest.mark.slow
@settings(DIFF, max_examples=_n(400))
@given(st.data())
def test_kitchen_sink_module_and_interpreter_agree(ks_pair, data):
    module, interp, hints = ks_pair
    record = data.draw(records_for(hints.p, hints))
    assert_agree(module, interp, record)


# ---------------------------------------------------------------------- the cohort generator

COHORT_SEEDS = range(1, 2501)
PER_SEED = 2


@pytest.mark.slow
def test_cohort_records_agree_for_thousands_of_seeds(sm3321_pair):
    module, interp, _ = sm3321_pair
    n = 0
    failures = []
    for seed in COHORT_SEEDS:
        for i, rec in enumerate(generate(PER_SEED, seed=seed, corrupt_rate=0.02)):
            if isinstance(rec, str):
                try:
                    rec = json.loads(rec)
                except (ValueError, RecursionError):
                    continue
            n += 1
            diffs = compare(module, interp, rec)
            if diffs:
                failures.append(f"seed {seed} record {i}: " + "; ".join(diffs))
    assert not failures, f"{len(failures)} of {n} records disagree:\n" + "\n".join(failures[:20])
    assert n > 0.95 * len(COHORT_SEEDS) * PER_SEED


# ---------------------------------------------------------------------- disagreements found
# Each: the spec's outcome, the interpreter agreeing with it, and the module; all were found
# here and fixed in the runtime since (`test_fixed_*`).

BASE = json.loads((CASES / "_base" / "baseline.json").read_text(encoding="utf-8"))


def _rec(**changes):
    rec = copy.deepcopy(BASE)
    for k, v in changes.items():
        if v is _DROP:
            rec.pop(k, None)
        else:
            rec[k] = v
    return rec


_DROP = object()


def _outcome(result, cid):
    return next(c["outcome"] for c in result["criteria"] if c["id"] == cid)


def _check(program, module, record, cid, spec_outcome):
    interpreted = Interpreter(program).evaluate(record)
    assert _outcome(interpreted, cid) == spec_outcome, "the interpreter disagrees with the spec"
    got = module.evaluate(record)
    assert _outcome(got, cid) == spec_outcome, next(c for c in got["criteria"] if c["id"] == cid)


def _with_obs(rec, code, items):
    rec["observations"] = [o for o in rec["observations"] if o["code"] != code] + items
    return rec


def test_fixed_latest_unusable_date_that_cannot_be_latest(compiled, sm3321):
    """Found by these tests, fixed in the runtime while they were written (kept as a regression test): E5.4
    unknown instead of pass: the most recent systolic_bp on or before first_dose (2026-01-15) is 158 on
    2026-01-15, listed after a reading of 164 with an unusable date (2026-02-30). That reading cannot be
    the most recent one: dated after first_dose it is outside the window, dated on it the tie goes to
    the later list entry (docs/language.md: 'among several on that date, the last in the record's list'). The
    module reports 'could be ... on an unusable date > 160' and unknown; the spec decides pass"""
    rec = _with_obs(_rec(), "systolic_bp", [
        {"code": "systolic_bp", "value": 164, "unit": "mm[Hg]", "date": "2026-02-30"},
        {"code": "systolic_bp", "value": 158, "unit": "mm[Hg]", "date": "2026-01-15"},
    ])
    _check(compiled.program, sm3321, rec, "uncontrolled_hypertension", "pass")


def test_fixed_derived_value_unknown_though_candidates_agree(compiled, sm3321):
    """Found by these tests, fixed in the runtime while they were written (kept as a regression test): I7c
    unknown instead of pass: a second serum_creatinine (81 umol/L) with an unusable date could be the
    most recent one, but creatinine clearance is >= 50 mL/min with either value (80 or 81 umol/L: about
    83 and 82 mL/min for the baseline man). docs/language.md: unknown only where the unusable data could
    change the outcome. The module makes any derived value read from such a selection unknown ('could be
    replaced by another serum_creatinine whose date is unusable') without looking at the values"""
    rec = _rec()
    rec["observations"].append({"code": "serum_creatinine", "value": 81, "unit": "umol/L", "date": "2026-13-01"})
    _check(compiled.program, sm3321, rec, "creatinine_clearance", "pass")


def test_fixed_item_with_unusable_start_but_end_before_window(compiled, sm3321):
    """Found by these tests, fixed in the runtime while they were written (kept as a regression test): E2.1
    unknown instead of pass: carboplatin (chemotherapy) with an unusable start ('2026-13-27') and end
    2025-08-12, first_dose 2026-01-15: its last administration is 5 months before the window (at most 28
    d), so no administration falls in it whatever the start. The module reports 'has an unusable date'
    unknown for any item with an unusable start (likewise a condition with unusable onset that ended
    years ago, and an unusable end of an item that started after the window)"""
    rec = _rec()
    rec["treatments"] = [{"code": "carboplatin", "classes": ["chemotherapy"], "start": "2026-13-27", "end": "2025-08-12"}]
    _check(compiled.program, sm3321, rec, "anticancer_washout", "pass")


def test_fixed_absent_anchor_ignores_item_filters(compiled, sm3321):
    """Found by these tests, fixed in the runtime while they were written (kept as a regression test): E2.2
    unknown instead of pass: first_dose is not recorded and the only radiotherapy is one palliative
    fraction, which the rule excepts (`unless (fractions = 1 and intent is palliative)`) wherever it
    lies. The module returns 'radiotherapy ... recorded but first_dose date is not recorded' (unknown)
    before looking at where/unless/active filters (docs/language.md: unknown only for a window that a
    recorded item could fall in, and only where the missing data could still change the outcome)"""
    rec = _rec()
    del rec["anchors"]["first_dose"]
    rec["procedures"] = [{"code": "radiotherapy", "date": "2026-01-05", "attributes": {"fractions": 1, "intent": "palliative"}}]
    _check(compiled.program, sm3321, rec, "recent_radiotherapy", "pass")


def test_fixed_fever_clause_decided_by_a_reading_with_unusable_date(compiled, sm3321):
    """Found by these tests, fixed in the runtime while they were written (kept as a regression test): E6.4
    pass instead of unknown: no body temperature is known to lie in the 7 days before first_dose; one
    reading (36.5 Cel) has an unusable date ''. docs/language.md: observations not listed are unknown and
    an item with an unusable date could lie anywhere in time, so the fever clause is unknown; and
    fever_explained is not recorded, so E6.4 is unknown. The
    module counts the undated reading as a reading in the window ('0 body_temperature reading(s) ...
    none > 38 Cel') and decides the clause false"""
    rec = _with_obs(_rec(), "body_temperature", [{"code": "body_temperature", "value": 36.5, "unit": "Cel", "date": ""}])
    _check(compiled.program, sm3321, rec, "recent_serious_infection_or_fever", "unknown")


def test_fixed_treatment_with_bad_classes_is_ignored(compiled, sm3321):
    """Found by these tests, fixed in the runtime while they were written (kept as a regression test): E14
    pass instead of unknown: a treatment whose `classes` is the string "live_vaccine" (not a list),
    ongoing, is ignored with a warning, so 'no live_vaccine within 30 d' passes. docs/records.md: a
    field of the wrong type inside an item is unusable and every criterion that reads it reports
    unknown; the item must not be silently dropped"""
    rec = _rec()
    rec["treatments"] = [{"code": "mmr", "classes": "live_vaccine", "start": "2026-01-10", "end": None}]
    _check(compiled.program, sm3321, rec, "live_vaccine", "unknown")


def test_fixed_null_list_field_is_not_an_error(compiled, sm3321):
    """Found by these tests, fixed in the runtime while they were written (kept as a regression test):
    record not refused: `"observations": null` (likewise conditions/treatments/procedures null,
    anchors/facts null) is read as an empty list, so the record is evaluated (ineligible/indeterminate)
    instead of giving an error result. docs/records.md: 'a top-level list or object of the wrong type'
    gives an error result; benchmarks/cohort.py also writes observations null as a corrupted record"""
    rec = _rec(observations=None)
    assert Interpreter(compiled.program).evaluate(rec)["status"] == "error"
    assert sm3321.evaluate(rec)["status"] == "error"


def test_fixed_dates_with_non_ascii_digits_are_read(compiled, sm3321):
    """Found by these tests, fixed in the runtime while they were written (kept as a regression test):
    dates are read with str.isdigit(): an anchor written with full-width digits '２０２６-０１-１５' (or
    Arabic-Indic digits) is read as 2026-01-15, so I7b passes; docs/records.md: dates are ISO 8601
    calendar dates (ASCII digits), and a bad date is unusable: I7b is unknown"""
    rec = _rec()
    rec["anchors"]["first_dose"] = "２０２６-０１-１５"
    _check(compiled.program, sm3321, rec, "hemoglobin", "unknown")


def test_fixed_every_unless_is_evaluated_as_every_where(ks_pair):
    """Found by these tests, fixed in the runtime while they were written (kept as a regression test):
    `every X unless P` is evaluated as `every X where P`: the Python backend passes no negate_pred to
    _every, so `exclude when every active dvt unless symptomatic` with one active symptomatic DVT fails
    (excludes) where docs/language.md ('unless TERM: items count unless TERM holds') means every DVT is
    not symptomatic: false, so pass; and an asymptomatic DVT passes where it must fail"""
    module, _, hints = ks_pair
    strict = Interpreter(hints.p)
    rec = {"format": 1, "id": "EU", "anchors": {"screening": "2026-01-05", "first_dose": "2026-01-15"},
           "conditions": [{"code": "dvt", "onset": "2025-06-01", "status": "active", "attributes": {"symptomatic": True}}]}
    assert _outcome(strict.evaluate(rec), "every_dvt_unless") == "pass"
    assert _outcome(module.evaluate(rec), "every_dvt_unless") == "pass"


def test_fixed_month_window_before_the_calendar_is_unknown():
    """Found by these tests, fixed in the runtime while they were written (kept as a regression test): a
    calendar-month window reaching before year 1 is unknown: `latest hemoglobin within 30000 mo before
    first_dose < 90 g/L` reports 'window start is outside the calendar' (unknown), though A - D lies
    before every date and the hemoglobin of 2026-01-12 is in the window (the same window in days, 999999
    d, is decided)"""
    text = KITCHEN_SINK + '\nexclusion ancient { ref E99 quote "q" exclude when latest temp within 30000 mo before first_dose < 35 Cel }\n'
    res = compile_sources({"ks.elig": text})
    assert res.ok
    module = _load(res.python, "ks_months")
    rec = {"format": 1, "id": "M", "anchors": {"screening": "2026-01-05", "first_dose": "2026-01-15"},
           "observations": [{"code": "temp", "value": 36.6, "unit": "Cel", "date": "2026-01-12"}]}
    assert _outcome(Interpreter(res.program).evaluate(rec), "ancient") == "pass"
    assert _outcome(module.evaluate(rec), "ancient") == "pass"


def test_fixed_huge_weight_is_an_internal_error(compiled, sm3321):
    rec = _rec()
    next(o for o in rec["observations"] if o["code"] == "weight")["value"] = 10 ** 400
    got = next(c for c in sm3321.evaluate(rec)["criteria"] if c["id"] == "creatinine_clearance")
    assert "internal error" not in got["reason"], got["reason"]
    _check(compiled.program, sm3321, rec, "creatinine_clearance", "pass")


def test_fixed_tiny_creatinine_divides_by_zero(compiled, sm3321):
    rec = _rec()
    next(o for o in rec["observations"] if o["code"] == "serum_creatinine")["value"] = 5e-324
    _check(compiled.program, sm3321, rec, "creatinine_clearance", "pass")


def test_fixed_half_life_unit_alias_is_not_read(ks_pair):
    """Found by these tests, fixed in the runtime while they were written (kept as a regression test): a
    treatment's half_life {value: 2, unit: "days"} is unusable, though docs/units.md maps every record
    unit through the alias table first ('days' is d): KS exclusion `any chemo within 7 d
    before first_dose where half_life > 1 d` is unknown instead of fail"""
    module, _, hints = ks_pair
    rec = {"format": 1, "id": "HL", "anchors": {"screening": "2026-01-05", "first_dose": "2026-01-15"},
           "treatments": [{"code": "x", "classes": ["chemo"], "start": "2026-01-10", "end": None,
                           "half_life": {"value": 2, "unit": "days"}}]}
    assert _outcome(Interpreter(hints.p).evaluate(rec), "hl_long") == "fail"
    assert _outcome(module.evaluate(rec), "hl_long") == "fail"


def test_fixed_latest_ever_with_only_an_undated_reading(ks_pair):
    module, _, hints = ks_pair
    rec = {"format": 1, "id": "EV", "anchors": {"screening": "2026-01-05", "first_dose": "2026-01-15"},
           "observations": [{"code": "score", "value": 0, "unit": "1", "date": "2026-02-30"}]}
    assert _outcome(Interpreter(hints.p).evaluate(rec), "weight_eq") == "fail"
    assert _outcome(module.evaluate(rec), "weight_eq") == "fail"


def test_fixed_condition_without_status_in_the_window(compiled, sm3321):
    rec = _rec()
    rec["conditions"].append({"code": "pulmonary_embolism", "onset": "2026-01-01"})
    _check(compiled.program, sm3321, rec, "recent_dvt_pe", "fail")


EXTREMES = [10 ** 400, -(10 ** 400), 10 ** 20, 1e308, -1e308, 5e-324, -5e-324, 1e-320, 0, -0.0, 2 ** 63,
            1.7976931348623157e308]


@pytest.mark.parametrize("value", EXTREMES, ids=[str(v)[:12] for v in EXTREMES])
def test_extreme_numbers_in_every_numeric_field_agree(sm3321_pair, value):
    module, interp, _ = sm3321_pair
    for o in BASE["observations"]:
        for field in ["value"] + [f for f in ("uln", "lloq") if f in o]:
            rec = copy.deepcopy(BASE)
            for x in rec["observations"]:
                if x["code"] == o["code"]:
                    x[field] = value
            assert_agree(module, interp, rec)


def test_fixed_between_limits_judged_per_candidate_reading(compiled, sm3321):
    """Found by these tests, fixed in the runtime while they were written (kept as a regression test):
    "between" with an undated reading that could be the most recent one was judged limit by limit
    across the candidates instead of candidate by candidate. ECOG -1 (dated) fails the low limit and an
    undated ECOG 3 fails the high one: whichever is the most recent, ECOG is not between 0 and 2, so I6
    fails; the module said unknown (each limit alone was mixed)"""
    rec = _rec()
    rec["observations"] = [o for o in rec["observations"] if o["code"] != "ecog"] + [
        {"code": "ecog", "value": -1, "date": "2026-01-05"},
        {"code": "ecog", "value": 3, "date": "2026-02-30"},
    ]
    _check(compiled.program, sm3321, rec, "ecog_0_to_2", "fail")
