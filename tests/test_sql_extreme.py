"""Computed numbers at the edges of binary floating point and of 128-bit fractions: the SQL
forms (DuckDB relational and lambda form; Spark in tests/test_sql_spark.py) give the Python
evaluator's outcome and `missing` on SM3321's Cockcroft-Gault creatinine clearance and on a
BMI-like formula, with record numbers at 1e-300, 5e-324, 1e300, 1.7e308, long integers, and
values exactly at the limit after the arithmetic (docs/sql.md, "limits are exact")."""

from __future__ import annotations

import copy
import json

import pytest

from conftest import CASES
from test_sql import assert_sql_equals_python

pytest.importorskip("duckdb")

# (weight kg, serum creatinine mg/dL): the baseline patient is 65, male: 75 x w / (72 x c) is
# exactly 50 mL/min (the limit) where w / c = 48
CRCL_PAIRS = [
    (4.8e-299, 1e-300), (4.800000000000001e-299, 1e-300), (4.799999999999999e-299, 1e-300),
    (4.8e300, 1e299), (4.8e-322, 1e-323), (2.4e-322, 5e-324), (4.8e-322, 5e-324), (48, 1), (1.7e308, 1e-300),
    (1.7e308, 1.7e308), (4.8e-300, 1e-301), (5e-324, 1e-300), (1e300, 1e-300),
    (480000000000000000000000001, 10000000000000000000000000), (479999999999999999999999999, 10000000000000000000000000),
    (4800000000000000000000000000000000, 100000000000000000000000000000000),
    (4.8e-200, 1e-201), (48e-20, 1e-20), (0.00048, 0.00001), (4.8e20, 1e19),
    # the doubles' quotient on the other side of the limit than the exact one (for one sex or both)
    (3.36e-248, 7e-250), (3.952941176470588e-248, 7e-250), (1.6941176470588236e-299, 3e-301),
    (6.211764705882353e-299, 1.1e-300), (4.31999e-318, 9e-320), (1.5840000000000004e-308, 3.3e-310),
    (8.160000000000001e-199, 1.7e-200), (1.0729411764705882e+282, 1.9e+280), (7.341176470588236e+300, 1.3e+299),
]
# (weight kg, height cm): the BMI w / (h / 100)^2 exactly 30 where w = 30 h^2 / 10^4
BMI_PAIRS = [
    (3e-303, 1e-150), (3.0000000000000004e-303, 1e-150), (2.9999999999999996e-303, 1e-150), (70, 1e-300),
    (1e300, 1e-300), (1.7e308, 5e-324), (5e-324, 1.7e308), (1e-300, 1e300), (3e297, 1e150), (3e297, 1.0000000000000002e150),
    (30, 100), (76.8, 160), (120000000000000000000000000000000000, 1000000000000000000), (3e-5, 0.1),
    (5e-324, 5e-324), (3e300, 1e152), (3e-297, 1e-148), (1.2e-321, 2e-159),
]


def _crcl_records(pairs=CRCL_PAIRS):
    base = json.loads((CASES / "_base" / "baseline.json").read_text(encoding="utf-8"))
    out = []
    for i, (w, c) in enumerate(pairs):
        for sex in ("male", "female"):
            r = copy.deepcopy(base)
            r["id"], r["sex"] = f"crcl-{i}-{sex}", sex
            r["observations"] = [o for o in r["observations"] if o["code"] not in ("weight", "serum_creatinine")] + [
                {"code": "weight", "value": w, "unit": "kg", "date": "2026-01-05"},
                {"code": "serum_creatinine", "value": c, "unit": "mg/dL", "date": "2026-01-12"}]
            out.append(json.dumps(r))
    return out


@pytest.mark.parametrize("relational", [True, pytest.param(False, marks=pytest.mark.slow)], ids=["relational", "lambda"])
def test_creatinine_clearance_at_extreme_numbers_equals_python(compiled, sm3321, tmp_path, relational):
    """SM3321's Cockcroft-Gault clearance (>= 50 mL/min) with weights and creatinines at 1e-300,
    subnormals, 1e300, 1.7e308 and integers of 26-34 digits, several exactly at the limit: every
    outcome and `missing` as the module's (on main the fractions overflowed and the doubles
    decided or said unknown)."""
    texts = _crcl_records()
    sqls = assert_sql_equals_python(compiled, sm3321, texts, tmp_path, ("creatinine_clearance",), relational=relational,
                                    name=f"crcl-{relational}.jsonl")
    assert {c["outcome"] for r in sqls for c in r["criteria"]} >= {"pass", "fail"}


def _bmi_records(pairs=BMI_PAIRS):
    from test_gen_values import _obs, _rec
    return [_rec(id=f"bmi-{i}", observations=[_obs("weight", w, "kg"), _obs("height", h, "cm")])
            for i, (w, h) in enumerate(pairs)]


@pytest.mark.slow  # (2-5 s each: a trial compiled and screened in both forms)
@pytest.mark.parametrize("body", ["bmi >= 30 kg/m2", "bmi > 30 kg/m2", "bmi <= 30 kg/m2 and bmi >= 29.999 kg/m2"])
def test_bmi_at_extreme_numbers_equals_python(tmp_path, body):
    """A body mass index w / (h in m)^2 (tests/test_gen_values.py's vocabulary) with heights of
    1e-300 cm, 5e-324 and weights of 1e300, 1.7e308, exactly 30 kg/m2 at exponents far beyond
    128-bit fractions: module, interpreter and both DuckDB forms give one outcome per record."""
    from test_gen_values import outcomes_everywhere
    got = outcomes_everywhere(body, _bmi_records(), tmp_path)
    bad = [(p, o) for p, o in zip(BMI_PAIRS, got) if len(set(o)) != 1]
    assert not bad, bad
    assert {o[0] for o in got} >= {"pass", "fail"}


def test_exact_number_macros_at_any_exponent():
    """numbers.py's macros on record numbers (elig_rec of their texts): products, quotients, sums
    and floors at exponents from 1e-324 to 1e308 give the exact sign and floor (Python's
    Fraction); a comparison whose exact parts pass 128 bits (1e-300 + 3 against 3) is NULL
    (unknown), never the doubles' sign (which says equal there)."""
    from fractions import Fraction as F

    import duckdb

    from compiler.sql import numbers as N

    texts = ["1e-300", "5e-324", "3e-303", "1e-150", "1.7e+308", "1e+300", "4.8e-299", "2.5e-320", "123456789012345678901234",
             "0.1", "3", "-7.25e-200", "1000000000000000000000000000000000000000000"]
    ops = {"*": lambda a, b: a * b, "/": lambda a, b: a / b, "+": lambda a, b: a + b, "-": lambda a, b: a - b}
    con = duckdb.connect()
    con.execute(N.MACROS)
    lst = "[" + ", ".join(f"'{t}'" for t in texts) + "]"
    con.execute(f"CREATE TABLE t AS SELECT a, b, op, c FROM unnest({lst}) x(a), unnest({lst}) y(b), "
                f"unnest(['*', '/', '+', '-']) z(op), unnest({lst}[1:6]) w(c)")
    x, y, z = (f"elig_rec(CAST({v} AS DOUBLE), {v})" for v in "abc")
    out = con.execute(f"SELECT a, b, op, c, elig_sign(CASE op WHEN '*' THEN elig_mul({x}, {y}) WHEN '/' THEN elig_div({x}, {y}) "
                      f"WHEN '+' THEN elig_add({x}, {y}) ELSE elig_sub({x}, {y}) END, {z}) FROM t").fetchall()
    rows = [(i, *r[:4]) for i, r in enumerate(out)]
    got = {i: r[4] for i, r in enumerate(out)}
    want = {i: (lambda u, v: (u > v) - (u < v))(ops[op](F(a), F(b)), F(c)) for i, a, b, op, c in rows}
    assert len(rows) == 13 * 13 * 4 * 6
    bad = [(r, got[r[0]], want[r[0]]) for r in rows if got[r[0]] is not None and got[r[0]] != want[r[0]]]
    assert not bad, bad[:5]
    # unknown only for sums of numbers whose sizes differ by more than 128 bits hold
    beyond = [r for r in rows if got[r[0]] is None]
    assert all(r[3] in "+-" for r in beyond) and len(beyond) < len(rows) // 4, beyond[:5]
    three = "elig_rec(3, '3')"
    tiny = "elig_rec(CAST('1e-300' AS DOUBLE), '1e-300')"
    assert con.execute(f"SELECT elig_sign(elig_add({tiny}, {three}), {three})").fetchone() == (None,)
    assert con.execute(f"SELECT elig_floor(elig_mul({tiny}, {three})), elig_floor(elig_mul(elig_rec(CAST('-1e-300' AS DOUBLE), "
                       f"'-1e-300'), {three})), elig_floor(elig_mul(elig_rec(CAST('2.5e-20' AS DOUBLE), '2.5e-20'), "
                       f"elig_rec(CAST('1e20' AS DOUBLE), '1e20')))").fetchone() == (0, -1, 2)


@pytest.mark.slow  # (2-5 s: a trial compiled and screened in both forms)
def test_long_integer_attributes_equal_python(tmp_path):
    """An attribute that is an integer text of 30 to 38 digits next to a constant limit: exact in
    both DuckDB forms as in the evaluator (elig_rec read it through DECIMAL(38, 18), NULL beyond
    20 digits, and the doubles then called ...889 equal to ...890)."""
    from test_gen_values import _rec, outcomes_everywhere
    lim = 123456789012345678901234567890
    vals = [lim, lim - 1, lim + 1, lim * 10 ** 8 + 1, 10 ** 37 + 1, 3 * 10 ** 40]
    recs = [_rec(id=f"a{i}", procedures=[{"code": "surgery", "date": "2026-01-02", "attributes": {"fractions": v}}])
            for i, v in enumerate(vals)]
    got = outcomes_everywhere(f"any surgery ever where (fractions >= {lim})", recs, tmp_path)
    assert [set(o) for o in got] == [{"pass"}, {"fail"}, {"pass"}, {"pass"}, {"pass"}, {"pass"}], got
    got = outcomes_everywhere(f"any surgery ever where (fractions * 3 > {lim * 3})", recs, tmp_path)
    assert [set(o) for o in got] == [{"fail"}, {"fail"}, {"pass"}, {"pass"}, {"pass"}, {"pass"}], got
