"""The work tables of the relational script (compiler/sql/relational.py PREP, built by
compiler/sql/script.py) row for row and value for value equal to those of the queries before
they were made cheaper (tests/prep_reference.py), on every trial (SM3321, examples/*, the language
trials) and on records made to reach every branch: readings without a code or with a blank one,
units absent, null, not a string, unknown or spelled otherwise, integer texts at and beyond 38
digits, -0, exponents, strings and booleans for values and limits, half-lives and doses of every
shape (the same texts repeated: they are computed once per distinct text); plus the cohort sample
and fuzzed records for SM3321."""

import copy
import json
import random
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from tools.datacases import load_cases

duckdb = pytest.importorskip("duckdb")

sys.path.insert(0, str(ROOT / "benchmarks"))

import cohort  # noqa: E402
import prep_reference  # noqa: E402

from compiler.pipeline import compile_rules  # noqa: E402
from compiler.sql import loader, screen  # noqa: E402
from compiler.sql.relational import PREP  # noqa: E402
from compiler.sql.generate import q  # noqa: E402
from compiler.sql.script import FLAT_OX, UNIT_OBS, input_view, obs_rows  # noqa: E402

SUITES = [ROOT / "sm3321_rules"] + sorted(p.parent for p in (ROOT / "examples").glob("*/cases")) + [
    ROOT / "tests" / "lang_trial", ROOT / "tests" / "cases" / "language" / "_rules"]


def _name(rules: Path) -> str:
    return rules.parent.name if rules.name == "_rules" else rules.name


class Raw(str):
    """A JSON number written as this exact text (json.dumps cannot write -0 or 1E3)."""


def _dumps(rec) -> str:
    raws = {}

    def sub(x):
        if isinstance(x, Raw):
            key = f"@@raw{len(raws)}@@"
            raws[json.dumps(key)] = str(x)
            return key
        if isinstance(x, dict):
            return {k: sub(v) for k, v in x.items()}
        if isinstance(x, list):
            return [sub(v) for v in x]
        return x

    text = json.dumps(sub(rec))
    for k, v in raws.items():
        text = text.replace(k, v)
    return text


CODES = [None, "", "  ", "\t", "\u3000", "\u00a0", "\u0085", 7, "!x", "~x", "\x7f", "\u00e9", "unknown_code"]
VALUES = [0, Raw("-0"), 12, -12, Raw("1E3"), Raw("1e3"), Raw("12.0"), 9.3, Raw("1.5E+2"), 10 ** 37, 10 ** 38, -(10 ** 37),
          1.7976931348623157e308, "positive", "negative", "12", True, None, [], {}]
UNITS = ["<absent>", None, "", "mg", "mcg/L", "10*9/l", "10^9/L", 7, " g/dL", "g/dL", "1", "%", "ms", "[IU]/mL"]
LIMITS = ["<absent>", None, 0, -1, 1.2, 3, "1.2", Raw("-0"), 10 ** 38, Raw("2E1")]
HALF_LIVES = ["<absent>", None, {"value": 12, "unit": "h"}, {"value": 0.25, "unit": "hours"}, {"value": "12", "unit": "h"},
              {"value": -1, "unit": "d"}, {"value": 5, "unit": " Days "}, {"value": 5, "unit": 7}, {"value": 5},
              [], "12h", {"value": 10 ** 30, "unit": "wk"}, {"value": Raw("1E2"), "unit": "min"}, {"value": 3, "unit": "yr"}]
DOSES = ["<absent>", None, {"value": 10, "unit": "mg"}, {"value": 7.5, "unit": "mg/d"}, {"value": "10", "unit": "mg"},
         {"value": 10, "unit": 5}, {"value": 10}, 5, {"value": Raw("2E1"), "unit": "mg/day"}, {"value": 0.5, "unit": "g"}]


def _set(d: dict, key: str, v):
    if not (isinstance(v, str) and v == "<absent>"):
        d[key] = copy.deepcopy(v)


def _edge_records(program, seed: int) -> list[str]:
    """Records reaching every branch of elig_ox and elig_tx for this trial's codes."""
    rng = random.Random(seed)
    codes = [o.name for o in program.observations] or ["x"]
    tcodes = sorted({a for eq in program.equivalences for a, _ in eq.entries} | {"aspirin", "prednisone"})
    recs = []
    for n in range(40):
        obs, tx = [], []
        for k in range(12):
            o = {"code": rng.choice(codes + CODES) if k % 3 else rng.choice(codes)}
            if rng.random() < 0.1:
                o.pop("code")
            _set(o, "value", rng.choice(VALUES))
            _set(o, "unit", rng.choice(UNITS))
            for lim in ("uln", "lln", "lloq"):
                _set(o, lim, rng.choice(LIMITS) if rng.random() < 0.5 else "<absent>")
            _set(o, "date", rng.choice(["2026-01-10", "2025-12-31", "2026-02-30", None, "<absent>"]))
            if rng.random() < 0.3:
                o["attributes"] = rng.choice([{"method": "x"}, {}, None, {"specimen": "serum"}])
            obs.append(o)
        for k in range(4):
            t = {"code": rng.choice(tcodes + [None, "", " "]), "classes": rng.choice([["chemotherapy"], [], None, [1], "x"])}
            _set(t, "start", rng.choice(["2025-12-01", "2026-13-01", None, "<absent>"]))
            _set(t, "end", rng.choice(["2026-01-01", None, "<absent>", "bad"]))
            _set(t, "half_life", rng.choice(HALF_LIVES))
            _set(t, "daily_dose", rng.choice(DOSES))
            _set(t, "route", rng.choice(["oral", None, "<absent>"]))
            tx.append(t)
        recs.append(_dumps({"format": 1, "id": f"edge-{n}", "sex": "female", "birth_date": "1970-01-01",
                            "observations": obs + [rng.choice([1, "x", None])] * (n % 2), "treatments": tx}))
    return recs


def _tables_equal(con, a: str, b: str) -> list:
    """Rows of a not in b and of b not in a (with multiplicity)."""
    ab = con.execute(f"SELECT * FROM (SELECT * FROM {a} EXCEPT ALL SELECT * FROM {b}) LIMIT 3").fetchall()
    ba = con.execute(f"SELECT * FROM (SELECT * FROM {b} EXCEPT ALL SELECT * FROM {a}) LIMIT 3").fetchall()
    return ab + ba


def _check(res, texts, tmp_path):
    import types

    mod = types.ModuleType("prep_under_test")
    exec(compile(res.python, "<prep>", "exec"), mod.__dict__)
    path = tmp_path / "in.jsonl"
    path.write_text("".join(t + "\n" for t in texts), encoding="utf-8")
    con = screen.connect(threads=2, memory_limit="1GB")
    loader.load_jsonl(con, str(path))
    script = screen.prepare_script(res.program, res.lowered)
    screen._macros(con, script)
    screen.resolve_units(con, res.program, mod)
    prep = {name: (sql, order) for name, sql, order in script.prep}
    assert list(prep) == [name for name, _, _ in PREP]
    rows = {}
    for name, ref in prep_reference.REFERENCE.items():
        sql, order = prep[name]
        # (DuckDB's elig_ox has the fields FLAT_OX of x as columns x_<field> too: equal to them)
        mode = "rows_of" if name == "elig_ox" else dict((n, m) for n, m, _ in PREP)[name]
        assert sql == input_view(res.program, obs_mode=mode, name="")
        con.execute(f"CREATE TABLE new_{name} AS SELECT * FROM ({sql})" + (f" ORDER BY {order}" if order else ""))
        con.execute(f"CREATE TABLE ref_{name} AS {ref(res.program)}")
        new = f"new_{name}"
        if name == "elig_ox":
            assert con.execute(f"SELECT count(*) FROM new_elig_ox WHERE "
                               + " OR ".join(f"x_{f} IS DISTINCT FROM x.{f}" for f in FLAT_OX)).fetchone()[0] == 0
            new = "(SELECT * EXCLUDE (" + ", ".join(f"x_{f}" for f in FLAT_OX) + ") FROM new_elig_ox)"
        assert con.execute(f"DESCRIBE {new}").fetchall() == con.execute(f"DESCRIBE ref_{name}").fetchall()
        assert _tables_equal(con, new, f"ref_{name}") == [], name
        rows[name] = con.execute(f"SELECT count(*) FROM new_{name}").fetchone()[0]
    # the view over the observations as `elig load` wrote them (screen.run_script reads it
    # instead of the table): the same rows, for each code of the trial (the criteria's filter)
    assert loader.loaded_observations(con)
    con.execute(f"CREATE TABLE {UNIT_OBS} AS SELECT code, unit, resolved FROM elig_unit_map WHERE kind = 'obs'")
    con.execute(f"CREATE VIEW view_elig_ox AS {obs_rows(res.program, loaded=True)}")
    assert con.execute("DESCRIBE view_elig_ox").fetchall() == con.execute("DESCRIBE new_elig_ox").fetchall()
    assert _tables_equal(con, "view_elig_ox", "new_elig_ox") == []
    for o in res.program.observations:
        sel = "(SELECT * FROM {} WHERE code = " + q(o.name) + ")"
        assert _tables_equal(con, sel.format("view_elig_ox"), sel.format("new_elig_ox")) == [], o.name
    if "code" in order_of("elig_ox"):
        # sorted by code: each code's rows together (a criterion reads the row groups of its code)
        runs = con.execute("SELECT count(*) FROM (SELECT code, code IS DISTINCT FROM lag(code) OVER (ORDER BY rowid) AS b "
                           "FROM new_elig_ox) WHERE b").fetchone()[0]
        assert runs == con.execute("SELECT count(DISTINCT code) FROM new_elig_ox").fetchone()[0]
    con.close()
    return rows


def order_of(name: str) -> str:
    return next(o for n, _, o in PREP if n == name)


# SM3321 and the language trials (attributes of readings among them) in the fast suite, the example
# trials in the slow one
@pytest.mark.parametrize("rules", [pytest.param(s, id=_name(s), marks=pytest.mark.slow if "examples" in s.parts else ())
                                   for s in SUITES])
def test_prep_tables_equal_the_reference(rules, tmp_path):
    res = compile_rules(rules)
    assert res.ok
    cases = [json.dumps(rec) for _, _, rec in load_cases(rules / "cases" if rules.name != "_rules" else rules.parent)] \
        if rules.name != "sm3321_rules" else []
    texts = cases + _edge_records(res.program, seed=len(str(rules)))
    rows = _check(res, texts, tmp_path)
    # the edge records reach code-less readings and treatments with a half-life and a dose
    assert rows["elig_ox"] > 0 and rows["elig_tx"] > 0


@pytest.mark.slow  # about 3 CPU s; the edge records of every trial above stay in the fast suite
def test_prep_tables_equal_the_reference_on_cohort_and_fuzz(tmp_path):
    """SM3321 on cohort records (some corrupted) and the same records with fields spoiled."""
    res = compile_rules(ROOT / "sm3321_rules")
    texts = [t.rstrip("\n") for t in cohort._lines(300, 3321, 0.05)]
    rng = random.Random(5)
    fuzzed = []
    for t in texts[:150]:
        try:
            rec = json.loads(t)
        except ValueError:
            continue
        if not isinstance(rec, dict):
            continue
        for fld, pool in (("observations", [("code", CODES), ("value", VALUES), ("unit", UNITS), ("uln", LIMITS)]),
                          ("treatments", [("half_life", HALF_LIVES), ("daily_dose", DOSES), ("code", CODES)])):
            items = rec.get(fld)
            if isinstance(items, list):
                for it in items:
                    if isinstance(it, dict) and rng.random() < 0.3:
                        key, vals = rng.choice(pool)
                        it.pop(key, None)
                        _set(it, key, rng.choice(vals))
        fuzzed.append(_dumps(rec))
    rows = _check(res, texts + fuzzed, tmp_path)
    assert rows["elig_ox"] > 10000
