"""The two stages of `latest X ... <compare> <limit>` in the relational DuckDB script
(compiler/sql/rel_latest.py: per-patient aggregates over elig_ox's plain columns decide the
patients whose latest reading is the one candidate and clearly apart from the limit, or who have
no candidate; the exact chain the others) against the Python evaluator, on records built to fall
on both sides of every branch: ties of date (the index decides), readings without a usable date,
readings without a code (dated inside and outside the window's span, undated), unusable values
and units, every accepted unit of each limit with the value exactly at the limit and one ulp on
either side, x ULN limits with the ULN missing or zero, conditional limits (sex, a liver
metastasis) known and unknown, the anchor unknown, no reading, readings only outside the window,
dates before 1970; in the loaded form (elig_ox a view over the loaded observations) and the
copied one (a table). The stage-1 decision itself is checked to take both sides."""

import copy
import json
import math
import random
import re
from dataclasses import fields, is_dataclass

import pytest

from conftest import CASES
from test_sql import assert_sql_equals_python, only_criteria, status_free_diffs

from compiler import ir as I
from compiler.sql import loader, screen
from compiler.sql.script import LOADED_OBS, UNIT_OBS, obs_rows

pytest.importorskip("duckdb")

# criterion -> its observation codes (the latest comparisons of SM3321: fixed limits in several
# units, x ULN, a limit by sex, a limit by a condition, between, `is positive`, two in one rule)
CRITS = {"hemoglobin": ["hemoglobin"], "platelets": ["platelets"], "inr_limit": ["inr"], "ast_limit": ["ast"],
         "qtcf_prolonged": ["qtcf"], "ecog_0_to_2": ["ecog"], "life_expectancy_12_weeks": ["life_expectancy"],
         "uncontrolled_hypertension": ["systolic_bp", "diastolic_bp"], "active_hepatitis_b": ["hbsag", "hbv_dna"],
         "lvef_low": ["lvef"]}
ANCHOR = "2026-01-15"
# inside the 7-day window, its first and last day, the day before it, after the anchor, unusable
DATES = ["2026-01-12", "2026-01-12", "2026-01-08", "2026-01-15", "2026-01-07", "2026-01-16", "2025-06-01",
         "2026-02-30", "soon", None, "missing"]


def _walk(node, out):
    if isinstance(node, (I.LConst, I.LRef)):
        out.append(node)
    if is_dataclass(node):
        for f in fields(node):
            _walk(getattr(node, f.name), out)
    elif isinstance(node, (list, tuple)):
        for x in node:
            _walk(x, out)
    return out


def _near(x: float):
    """x and the doubles one ulp on either side of it."""
    return [x, math.nextafter(x, math.inf), math.nextafter(x, -math.inf)]


def _values(compiled):
    """code -> [(value, unit)]: each fixed limit exactly in each of its units (as an integer
    where it is one, and as a double) and one ulp beside it, plus ordinary values and unusable ones."""
    limits = {}
    for lc in compiled.lowered.criteria:
        if lc.ir.id in CRITS:
            for lim in _walk(lc.ir.body, []):
                for code in CRITS[lc.ir.id]:
                    limits.setdefault(code, []).append(lim)
    out = {}
    for o in compiled.program.observations:
        units = [u for u, _ in o.units] if o.kind != "qualitative" else [None]
        vals = []
        for lim in limits.get(o.name, []):
            if isinstance(lim, I.LConst):
                for u, v in lim.table:
                    f = float(v)
                    vals += [(x, u) for x in _near(f)]
                    if v.denominator == 1:
                        vals.append((int(v), u))
        if o.kind == "qualitative":
            vals += [(v, None) for v in list(o.values) * 3] + [("Positive", None), (1, None)]
        else:
            vals += [(v, u) for u in units for v in (0.5, 1, 1.5, 2, 3, 12, 40, 60, 95, 150, 480)]
            vals += [(100, "furlong"), (None, units[0]), ("90", units[0]), (1e300, units[0])]
        out[o.name] = vals
    return out


def _reading(rng, code, values, ref_limits):
    value, unit = rng.choice(values[code])
    r = {"code": code if rng.random() > 0.08 else rng.choice([None, "", "missing"]), "value": value,
         "date": rng.choice(DATES)}
    if unit is not None:
        r["unit"] = unit
    if code in ref_limits:  # x ULN: the reading exactly at k x ULN and beside it
        which, ks = ref_limits[code]
        uln = rng.choice([40, 40.0, 1.2, 20, 0, -1, None, "missing", 1e-30])
        if uln != "missing":
            r[which] = uln
        # (beside k x 1e-30 too: 5.0000000000000004e-30 against 5 x 1e-30 needs a denominator
        # of 10^46, beyond 128-bit fractions; numbers.py's keys compare it exactly)
        if isinstance(uln, (int, float)) and uln > 0 and rng.random() < 0.5:
            r["value"] = rng.choice(_near(float(rng.choice(ks)) * uln))
    for k in ("code", "date"):
        if r[k] == "missing":
            del r[k]
    if value is None and rng.random() < 0.5:
        r.pop("value", None)
    return r


def _records(compiled, n=500, seed=31):
    base = json.loads((CASES / "_base" / "baseline.json").read_text(encoding="utf-8"))
    values = _values(compiled)
    ref_limits = {}
    for lc in compiled.lowered.criteria:
        if lc.ir.id in CRITS:
            for lim in _walk(lc.ir.body, []):
                if isinstance(lim, I.LRef):
                    for code in CRITS[lc.ir.id]:
                        w, ks = ref_limits.get(code, (lim.which, []))
                        ref_limits[code] = (lim.which, ks + [lim.multiple])
    rng = random.Random(seed)
    codes_all = sorted({c for cs in CRITS.values() for c in cs})
    out = []
    for k in range(n):
        r = copy.deepcopy(base)
        r["id"] = f"stage-{k}"
        r["anchors"]["first_dose"] = ANCHOR
        codes = rng.sample(codes_all, 5)
        keep = [o for o in r["observations"] if o["code"] not in codes]
        kind = k % 5
        new = []
        for c in codes:
            if kind == 0:  # the ordinary case: one dated reading in the window (stage 1 decides)
                new.append(_reading(rng, c, values, ref_limits))
                new[-1].update(code=c, date="2026-01-12")
            elif kind == 1:  # no reading, or only readings outside the window
                if rng.random() < 0.5:
                    new += [dict(_reading(rng, c, values, ref_limits), code=c, date=rng.choice(["2025-06-01", "2026-01-16"]))]
            elif kind == 2:  # a tie of date: the later index decides
                a, b = _reading(rng, c, values, ref_limits), _reading(rng, c, values, ref_limits)
                a.update(code=c, date="2026-01-12")
                b.update(code=c, date="2026-01-12")
                new += [a, b]
            else:  # anything: undated, code-less, several
                new += [_reading(rng, c, values, ref_limits) for _ in range(rng.choice([1, 2, 3, 4]))]
        rng.shuffle(new)
        r["observations"] = keep + new
        if rng.random() < 0.08:  # the window's anchor unknown or unusable
            r["anchors"]["first_dose"] = rng.choice([None, "2026-02-30"])
        if rng.random() < 0.2:  # the QTcF limit by sex: the other one, unknown
            r["sex"] = rng.choice([None, "unknown", "female"])
        if rng.random() < 0.3:  # the AST limit by a liver metastasis: active, resolved, unknown
            r["conditions"] = r["conditions"] + [{"code": rng.choice(["liver_metastasis", None]), "onset": "2025-06-01",
                                                  "status": rng.choice(["active", "resolved", None])}]
        out.append(json.dumps(r))
    return out


@pytest.fixture(scope="module")
def stage_records(compiled):
    return _records(compiled)


def _screen(compiled, sm3321, texts, tmp_path, loaded):
    path = tmp_path / "in.jsonl"
    path.write_text("".join(t + "\n" for t in texts), encoding="utf-8")
    con = screen.connect(threads=2, memory_limit="2GB")
    loader.load_jsonl(con, str(path))  # as `elig load` leaves them: elig_ox is then a view over them
    if not loaded:  # a user's own table (no loaded columns, no mark): elig_ox is then a table
        added = ", ".join(n for n, _, _ in LOADED_OBS)
        con.execute("ALTER TABLE observations RENAME TO loaded_obs")
        con.execute(f"CREATE TABLE observations AS SELECT * EXCLUDE ({added}) FROM loaded_obs ORDER BY hash(seq, idx)")
        con.execute("DROP TABLE loaded_obs")
    assert loader.loaded_observations(con) == loaded
    script = screen.prepare_script(compiled.program, compiled.lowered, only=set(CRITS))
    screen.run_script(con, compiled.program, sm3321, script)
    out = [json.loads(r) for r in screen.results(con)]
    return con, script, out


def _decided(con, compiled, script, cid):
    """(decided, undecided) patients of criterion cid's first stage, from its step's CTEs."""
    sql = dict(script.steps)[cid]
    m = re.search(r'"(\w+)__u" AS MATERIALIZED \(SELECT \* FROM "(\w+)" WHERE NOT "(\w+)"', sql)
    assert m, cid
    head = sql[:sql.rindex("\nSELECT seq,")]
    for name, prep, order in script.prep:  # the work tables, as screen.run_script makes them (and drops)
        if name == "elig_ox" and loader.loaded_observations(con):
            con.execute(f"CREATE OR REPLACE TABLE {UNIT_OBS} AS SELECT code, unit, resolved FROM elig_unit_map WHERE kind = 'obs'")
            con.execute(f"CREATE OR REPLACE VIEW elig_ox AS {obs_rows(compiled.program, loaded=True)}")
        else:
            con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM ({prep})" + (f" ORDER BY {order}" if order else ""))
    return con.execute(f'{head}\nSELECT count(*) FILTER (WHERE "{m.group(3)}"), count(*) FILTER (WHERE NOT "{m.group(3)}") '
                       f'FROM "{m.group(2)}"').fetchone()


def _check(compiled, sm3321, texts, tmp_path, loaded, crits=CRITS):
    pys = only_criteria([sm3321.evaluate_json(t) for t in texts], crits)
    con, script, sqls = _screen(compiled, sm3321, texts, tmp_path, loaded)
    diffs = status_free_diffs(pys, sqls)
    assert not diffs, (loaded, "\n".join(map(str, diffs[:20])))
    return con, script, sqls


@pytest.mark.parametrize("loaded", [True, pytest.param(False, marks=pytest.mark.slow)])  # (the fast suite: the loaded view)
def test_latest_stages_equal_python(compiled, sm3321, stage_records, tmp_path, loaded):
    con, script, sqls = _check(compiled, sm3321, stage_records, tmp_path, loaded)
    seen = {(c["id"], c["outcome"]) for r in sqls for c in r["criteria"]}
    for cid in CRITS:
        assert {(cid, "pass"), (cid, "fail"), (cid, "unknown")} <= seen, cid
    # the single-comparison criteria: stage 1 decides most patients, and leaves some to the exact path
    for cid in ("hemoglobin", "platelets", "inr_limit", "ast_limit", "ecog_0_to_2", "life_expectancy_12_weeks", "lvef_low"):
        decided, undecided = _decided(con, compiled, script, cid)
        assert decided > 100 and undecided > 20, (cid, decided, undecided)
    con.close()


@pytest.mark.slow
def test_latest_stages_before_1970(compiled, sm3321, stage_records, tmp_path):
    """The same records sixty years earlier: negative day numbers in the (day, index) keys."""
    old = [t.replace('"2026-', '"1966-').replace('"2025-', '"1965-') for t in stage_records[:250]]
    con, _, _ = _check(compiled, sm3321, old, tmp_path, True)
    con.close()


def test_latest_stages_in_the_script():
    """DuckDB's script has the first stage (the plain columns of elig_ox); Spark's has none."""
    from compiler.pipeline import compile_rules
    from compiler.sql import relational
    from conftest import RULES

    res = compile_rules(RULES)
    duck = relational.build(res.program, res.lowered, only={"hemoglobin"})
    spark = relational.build(res.program, res.lowered, only={"hemoglobin"}, decimals=False)
    prep = {n: sql for n, sql, _ in duck.prep}
    assert "o.x_v" in dict(duck.steps)["hemoglobin"] and "x_v" in prep["elig_ox"]
    assert "x_v" not in dict(spark.steps)["hemoglobin"] and "x_v" not in {n: sql for n, sql, _ in spark.prep}["elig_ox"]


def test_latest_ever_with_undated_readings(tmp_path):
    """`latest X ever` (nct04431453's gestational age at birth): a reading without a usable date
    can be the latest there, so a patient without a dated one is decided by stage 1 only when
    there is none of those either; readings undated, dated, code-less, several, none."""
    import types

    from compiler.pipeline import compile_rules
    from conftest import ROOT, build_record

    trial = ROOT / "examples" / "nct04431453"
    res = compile_rules(trial)
    assert res.ok
    mod = types.ModuleType("nct04431453_under_test")
    exec(compile(res.python, "<nct04431453>", "exec"), mod.__dict__)
    case = json.loads((trial / "cases" / "I1c-gestational-age-260-days-above-37-weeks.json").read_text(encoding="utf-8"))
    base = build_record(case, trial / "cases" / "_base")
    keep = [o for o in base["observations"] if o.get("code") != "gestational_age"]
    rng = random.Random(5)
    texts = []
    for k in range(160):
        r = copy.deepcopy(base)
        r["id"] = f"ever-{k}"
        obs = []
        for _ in range(rng.choice([0, 1, 1, 2, 3])):
            o = {"code": rng.choice(["gestational_age"] * 5 + [None]), "value": rng.choice([250, 259, 260, 261, 280, 37, 38]),
                 "unit": rng.choice(["d", "d", "wk", "furlong"]), "date": rng.choice(["2025-11-01", "2025-12-16", None, "soon"])}
            obs.append({x: v for x, v in o.items() if v is not None or x == "code"})
        r["observations"] = keep + obs
        texts.append(json.dumps(r))
    crits = {"cohort5_gestational_age", "cohort6_birth", "cohort7_birth"}
    sqls = assert_sql_equals_python(res, mod, texts, tmp_path, crits, name="ever.jsonl")
    seen = {(c["id"], c["outcome"]) for r in sqls for c in r["criteria"]}
    assert {("cohort5_gestational_age", o) for o in ("pass", "fail", "unknown")} <= seen
