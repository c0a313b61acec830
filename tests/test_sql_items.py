"""The item queries of the relational DuckDB script (compiler/sql/rel_items.py: classes tested by
list_contains, the missing codes only of the items whose truth is unknown, the surely false items
left out before their condition, a comparison of two one-value numbers inside an item query by
elig_sign's own first test, the exact lists for the others) against the Python evaluator, on
records built to fall on both sides of each branch: undated and partially dated items, onsets and
ends on the edges of their windows (4 wk, 28 d, 14 d, 6 mo, 5 a, the washout by class and
half-life), items without a code or with unusable classes, unknown and unusable anchors, unknown
half-lives (the shorter and the longer of 5 half-lives and a fixed duration), unusable
attributes (grades as text, 2.0, 1.9999999999999999, out of range; fractions 1, 1.0, "1"; an
intent not in the list; attributes that are not an object), doses near 10 mg prednisone
(unit conversions, unknown units, an agent of no equivalence), inactive and resolved items,
unknown codes; and the same records sixty years earlier (dates before 1970)."""

import copy
import json
import random

import pytest

from conftest import CASES
from test_sql import assert_every_outcome, assert_sql_equals_python

from compiler.sql import screen

pytest.importorskip("duckdb")

CRITS = ("anticancer_washout", "recent_radiotherapy", "recent_investigational_drug", "major_surgery",
         "unresolved_toxicity", "recent_cardiovascular_event", "cns_disease", "other_malignancy", "recent_dvt_pe",
         "malnutrition_iv", "pregnant_or_lactating", "autoimmune_or_immunosuppression", "allogeneic_transplant",
         "recent_immunomodulator", "medicated_mental_disorder", "live_vaccine", "hiv_aids",
         "confirmed_advanced_solid_tumor", "no_recent_growth_factor_or_transfusion")

# the anchors: screening 2026-01-05, enrollment 2026-01-12, first dose 2026-01-15 (baseline);
# window edges: 4 wk before first dose 2025-12-18, 28 d 2025-12-18, 14 d 2026-01-01, 45 d
# 2025-12-01, 42 d 2025-12-04, 6 mo before screening 2025-07-05, 5 a 2021-01-05
DATES = ["2026-01-15", "2026-01-16", "2026-01-14", "2025-12-18", "2025-12-17", "2025-12-19", "2026-01-01",
         "2025-12-31", "2026-01-02", "2025-12-01", "2025-11-30", "2025-12-04", "2025-12-03", "2025-07-05",
         "2025-07-04", "2021-01-05", "2021-01-04", "2024-05-01", "2026-01-12", "2025-12-29", "2025-12-28",
         "2026-01", "2025", "2026-02-30", "soon", 20260101, None, "missing"]
CONDITIONS = ["unresolved_toxicity", "ventricular_arrhythmia", "congestive_heart_failure", "myocardial_infarction",
              "cns_metastasis", "leptomeningeal_disease", "other_malignancy", "deep_vein_thrombosis",
              "pulmonary_embolism", "malnutrition", "pregnancy", "autoimmune_disease", "mental_disorder", "aids",
              "hiv_infection", "aids_opportunistic_infection", "solid_tumor", "unknown_condition"]
CLASSES = ["chemotherapy", "anti_pd1_pdl1", "nitrosourea", "mitomycin", "fluoropyrimidine", "small_molecule_targeted",
           "herbal_anticancer", "anticancer_other", "investigational_drug", "immunomodulator", "live_vaccine",
           "systemic_corticosteroid", "immunosuppressant", "hematopoietic_growth_factor", "blood_transfusion",
           "supportive_care", "Chemotherapy"]
NUMS = [1, 2, 3, 4, 5, 2.0, 1.9999999999999999, 2.0000000001, 0, 6, "2", None, True, 1e300]
HALF_LIVES = [{"value": 5, "unit": "d"}, {"value": 5.6, "unit": "d"}, {"value": 2, "unit": "d"}, {"value": 24, "unit": "h"},
              {"value": 1, "unit": "wk"}, {"value": 5, "unit": "furlong"}, {"value": "5", "unit": "d"}, {"unit": "d"},
              "5 d", None]
DOSES = [{"value": 10, "unit": "mg"}, {"value": 10.000000001, "unit": "mg"}, {"value": 9.999999999, "unit": "mg"},
         {"value": 12, "unit": "mg"}, {"value": 0.01, "unit": "g"}, {"value": 10000, "unit": "ug"}, {"value": 2, "unit": "mg"},
         {"value": 1.5, "unit": "mg"}, {"value": 8, "unit": "mg"}, {"value": 10, "unit": "furlong"},
         {"value": "10", "unit": "mg"}, None]
AGENTS = ["prednisone", "dexamethasone", "hydrocortisone", "methylprednisolone", "Prednisone ", "tacrolimus", None]


def _date(rng):
    d = rng.choice(DATES)
    return d


def _put(item, key, value):
    if value != "missing":
        item[key] = value


def _attrs(rng, names):
    if rng.random() < 0.07:
        return rng.choice([None, "grade 2", [1, 2]])
    a = {}
    for name, choices in names:
        if rng.random() < 0.8:
            a[name] = rng.choice(choices)
    return a


BOOL = [True, False, True, False, None, "yes"]
ATTRS = {"unresolved_toxicity": [("grade", NUMS)], "ventricular_arrhythmia": [("grade", NUMS)],
         "congestive_heart_failure": [("nyha_class", NUMS)],
         "cns_metastasis": [("treated", BOOL), ("stable_since", DATES[:-1]), ("new_or_enlarging", BOOL),
                            ("steroid_increase_14d", BOOL)],
         "other_malignancy": [("exempt", BOOL)], "deep_vein_thrombosis": [("symptomatic", BOOL)],
         "malnutrition": [("requires_iv_nutrition", BOOL)], "autoimmune_disease": [("type", ["thyroid", "other", "skin", 3]),
                                                                                ("stable", BOOL)],
         "mental_disorder": [("medicated", BOOL)],
         "solid_tumor": [("confirmation", ["histological", "cytological", "clinical", "x"]),
                         ("extent", ["locally_advanced", "metastatic", "localized"]), ("resectable", BOOL)]}


def _condition(rng):
    code = rng.choice(CONDITIONS)
    c = {}
    _put(c, "code", code if rng.random() > 0.08 else rng.choice([None, "", "  ", "missing", 7]))
    _put(c, "onset", _date(rng))
    if rng.random() < 0.6:
        _put(c, "end", _date(rng))
    _put(c, "status", rng.choice(["active", "active", "resolved", None, "remission", "missing"]))
    if code in ATTRS:
        _put(c, "attributes", _attrs(rng, ATTRS[code]))
    return c


def _treatment(rng):
    t = {"code": rng.choice(AGENTS) if rng.random() < 0.4 else rng.choice(["drug-a", "drug-b", None, ""])}
    r = rng.random()
    if r < 0.08:
        t["classes"] = rng.choice([None, "chemotherapy", [], [3], ["chemotherapy", None]])
    elif r < 0.1:
        pass  # no classes
    else:
        t["classes"] = rng.sample(CLASSES, rng.choice([1, 1, 1, 2]))
    _put(t, "start", _date(rng))
    e = rng.random()
    if e < 0.2:
        t["end"] = None  # ongoing
    elif e < 0.75:
        _put(t, "end", _date(rng))
    if rng.random() < 0.6:
        _put(t, "half_life", rng.choice(HALF_LIVES + ["missing"]))
    if "systemic_corticosteroid" in (t.get("classes") or []) or rng.random() < 0.1:
        _put(t, "daily_dose", rng.choice(DOSES + ["missing"]))
        _put(t, "route", rng.choice(["oral", "intravenous", "inhaled", "topical", None, 3, "missing"]))
        _put(t, "purpose", rng.choice(["treatment", "replacement", "prophylaxis", None, "missing"]))
    return t


def _procedure(rng):
    code = rng.choice(["radiotherapy", "radiotherapy", "major_surgery", "allogeneic_organ_transplant",
                       "allogeneic_stem_cell_transplant", "coronary_artery_bypass_graft", "biopsy"])
    p = {}
    _put(p, "code", code if rng.random() > 0.08 else rng.choice([None, "", "missing"]))
    _put(p, "date", _date(rng))
    if code == "radiotherapy":
        _put(p, "attributes", _attrs(rng, [("fractions", [1, 1.0, 1.0000000001, 2, 5, "1", 0, None]),
                                           ("intent", ["palliative", "curative", "other", None])]))
    return p


def _from_baseline(prefix, n, seed, edit):
    """n copies of the data cases' baseline record, ids prefix-0.., each changed by
    edit(rng, record) with one random generator of the seed, as JSON texts."""
    base = json.loads((CASES / "_base" / "baseline.json").read_text(encoding="utf-8"))
    rng = random.Random(seed)
    out = []
    for k in range(n):
        r = copy.deepcopy(base)
        r["id"] = f"{prefix}-{k}"
        edit(rng, r)
        out.append(json.dumps(r))
    return out


def _records(n=400, seed=12):
    def edit(rng, r):
        for a in ("screening", "enrollment", "first_dose"):
            if rng.random() < 0.06:
                v = rng.choice([None, "2026-02-30", "missing"])
                if v == "missing":
                    r["anchors"].pop(a, None)
                else:
                    r["anchors"][a] = v
        r["conditions"] = [c for c in r["conditions"] if rng.random() < 0.7] + [
            _condition(rng) for _ in range(rng.choice([0, 1, 2, 3, 4]))]
        r["treatments"] = [_treatment(rng) for _ in range(rng.choice([0, 1, 2, 3, 4, 5]))]
        r["procedures"] = [_procedure(rng) for _ in range(rng.choice([0, 0, 1, 2]))]
        rng.shuffle(r["conditions"])

    return _from_baseline("item", n, seed, edit)


@pytest.fixture(scope="module")
def item_records():
    return _records()


def test_item_queries_equal_python(compiled, sm3321, item_records, tmp_path):
    sqls = assert_sql_equals_python(compiled, sm3321, item_records, tmp_path, CRITS, name="items.jsonl")
    assert_every_outcome(sqls, CRITS)


def test_item_queries_both_sides_of_the_fast_comparison(compiled, sm3321, item_records):
    """Grades, classes of heart failure, fractions and doses are compared both by the doubles
    (apart from the limit) and by the exact lists (1.9999999999999999 is 2.0; 10.000000001 mg is
    within 1e-9 of 10 mg)."""
    texts = [json.loads(t) for t in item_records]
    grades = [c.get("attributes", {}).get("grade") for r in texts for c in r["conditions"]
              if isinstance(c.get("attributes"), dict)]
    assert any(g in (1, 3) for g in grades) and any(g == 2 for g in grades)
    doses = [t.get("daily_dose") for r in texts for t in r["treatments"]]
    assert {"value": 10.000000001, "unit": "mg"} in doses and {"value": 12, "unit": "mg"} in doses
    script = screen.prepare_script(compiled.program, compiled.lowered, only={"autoimmune_or_immunosuppression"})
    sql = dict(script.steps)["autoimmune_or_immunosuppression"]
    assert "1e-9 * (abs(" in sql and "list_intersect" not in sql


@pytest.mark.slow  # (another 400 records, and the same sixty years earlier)
@pytest.mark.parametrize("seed", [5, 77])
def test_item_queries_before_1970_and_another_seed_equal_python(compiled, sm3321, tmp_path, seed):
    recs = _records(n=400, seed=seed)
    if seed == 5:
        recs = [t.replace('"2026-', '"1966-').replace('"2025-', '"1965-').replace('"2024-', '"1964-')
                .replace('"2021-', '"1961-').replace('"1960-', '"1900-') for t in recs]
    assert_sql_equals_python(compiled, sm3321, recs, tmp_path, CRITS, name="items.jsonl")


# anticancer_washout's widest windows (rel_items._wide_outside): the items ending on either side
# of every bound a duration can take (45 d, 42 d, 28 d, 14 d, 5 half-lives of 1 wk, 5 d, 5.6 d,
# 2 d, 24 h, each plus a day), with unknown, huge, negative and unusable half-lives, unusable
# classes, ongoing items, unknown ends and starts, starts after first dose, unknown first doses
WASHOUT_CLASSES = [["chemotherapy"], ["fluoropyrimidine"], ["small_molecule_targeted", "chemotherapy"], ["anti_pd1_pdl1"],
                   ["nitrosourea"], ["herbal_anticancer"], ["anticancer_other", "mitomycin"], "chemotherapy", [3], None,
                   ["supportive_care"]]
WASHOUT_HALF_LIVES = HALF_LIVES[:6] + [{"value": 1e300, "unit": "d"}, {"value": -3, "unit": "d"},
                                       {"value": 5.6, "unit": "d"}, {"value": 1e-300, "unit": "d"}, "missing"]
WASHOUT_DAYS = [0, 1, 2, 4, 5, 6, 9, 10, 11, 12, 13, 14, 15, 16, 24, 25, 26, 27, 28, 29, 30, 34, 35, 36, 37, 41, 42, 43,
                44, 45, 46, 47, 400, -1]


def _washout_records(n=500, seed=3):
    import datetime as dt
    fd = dt.date(2026, 1, 15)

    def edit(rng, r):
        if rng.random() < 0.05:
            r["anchors"]["first_dose"] = rng.choice([None, "2026-02-30"])
        ts = []
        for _ in range(rng.choice([1, 1, 1, 2])):
            t = {"code": rng.choice(["drug-a", "drug-b", ""])}
            _put(t, "classes", rng.choice(WASHOUT_CLASSES + ["missing"]))
            _put(t, "half_life", rng.choice(WASHOUT_HALF_LIVES))
            end = fd - dt.timedelta(days=rng.choice(WASHOUT_DAYS))
            start = end - dt.timedelta(days=rng.choice([0, 3, 60]))
            e = rng.random()
            if e < 0.12:
                t["end"] = None  # ongoing
            elif e < 0.2:
                pass  # end unknown
            else:
                t["end"] = end.isoformat()
            s = rng.random()
            if s < 0.08:
                start = fd + dt.timedelta(days=rng.choice([1, 30]))
            if s > 0.94:
                _put(t, "start", rng.choice(["missing", None, "2025"]))
            else:
                t["start"] = start.isoformat()
            ts.append(t)
        r["treatments"] = ts

    return _from_baseline("washout", n, seed, edit)


def test_washout_left_out_before_the_window_equal_python(compiled, sm3321, tmp_path):
    """The items surely outside the widest washout window are left out before the window is
    computed (the script says so), and the outcomes and missing codes stay the evaluator's."""
    script = screen.prepare_script(compiled.program, compiled.lowered, only={"anticancer_washout"})
    sql = dict(script.steps)["anticancer_washout"]
    assert "isfinite(x0i.hl.f) THEN x0i.hl.f * 5.0 + 1.0" in sql and "list_intersect" not in sql
    recs = _washout_records()
    sqls = assert_sql_equals_python(compiled, sm3321, recs, tmp_path, ("anticancer_washout",), name="washout.jsonl")
    assert_every_outcome(sqls, ("anticancer_washout",))


@pytest.mark.slow  # (the same records sixty years earlier)
def test_washout_before_1970_equal_python(compiled, sm3321, tmp_path):
    recs = [t.replace('"2026-', '"1966-').replace('"2025-', '"1965-') for t in _washout_records(seed=8)]
    assert_sql_equals_python(compiled, sm3321, recs, tmp_path, ("anticancer_washout",), name="washout.jsonl")


def _temperature_records(n=300, seed=4):
    import datetime as dt
    fd = dt.date(2026, 1, 15)

    def edit(rng, r):
        if rng.random() < 0.1:
            r["anchors"]["first_dose"] = rng.choice([None, "2026-02-30", "missing"])
            if r["anchors"]["first_dose"] == "missing":
                del r["anchors"]["first_dose"]
        r["observations"] = [o for o in r["observations"] if o.get("code") != "body_temperature"]
        for _ in range(rng.choice([0, 1, 2, 3])):
            o = {"code": "body_temperature" if rng.random() > 0.1 else rng.choice([None, ""]),
                 "value": rng.choice([36.8, 38.0, 38.1, 100.4, 101, "38.5", None]),
                 "unit": rng.choice(["Cel", "Cel", "[degF]", "furlong"])}
            d = rng.random()
            if d < 0.85:
                o["date"] = (fd - dt.timedelta(days=rng.choice([-1, 0, 1, 6, 7, 8, 30, 400]))).isoformat()
            elif d < 0.93:
                o["date"] = rng.choice(["2026-01", "soon", None])
            r["observations"].append(o)
        r.setdefault("facts", {})
        if rng.random() < 0.3:
            r["facts"]["fever_explained"] = rng.choice([True, False, None])

    return _from_baseline("fever", n, seed, edit)


def test_observation_query_readings_outside_left_out_equal_python(compiled, sm3321, tmp_path):
    """An observation query reads only the readings inside or perhaps inside its window, or all
    of them where the window is unknown: temperatures on both sides of 7 d before first dose,
    undated, without a code, and unknown or unusable first doses."""
    script = screen.prepare_script(compiled.program, compiled.lowered, only={"recent_serious_infection_or_fever"})
    sql = dict(script.steps)["recent_serious_infection_or_fever"]
    assert "o.d BETWEEN" in sql
    recs = _temperature_records()
    sqls = assert_sql_equals_python(compiled, sm3321, recs, tmp_path, ("recent_serious_infection_or_fever",), name="fever.jsonl")
    assert_every_outcome(sqls, ("recent_serious_infection_or_fever",))
