"""`review` when a judgment decides a limit, a number or a duration (docs/language.md, What a rule
means): the outcome rests only on the unrecorded judgment when each of its branches is decided by
the rest of the record. The four engines (the generated module, the IR interpreter, DuckDB's
relational and lambda forms) give the same outcome, and the module and DuckDB the same `missing`
(`[]` for review). Before compiler/hoist.py all four said `unknown` (the module and DuckDB naming
the reading in `missing`). Spark runs the same lifted body (tests/test_sql_spark.py, lang_trial).
"""

from __future__ import annotations

import json

import pytest

from compiler.pipeline import compile_sources
from ir_interpreter import Interpreter
from test_gen_rec import HEAD, VOCAB, _module, _rec

duckdb = pytest.importorskip("duckdb")

from compiler.sql import loader, screen  # noqa: E402


def everywhere(body: str, recs: list[dict], tmp_path, lets: str = "", vocab: str = "") -> list[tuple]:
    """(outcome, missing) of `inclusion c0 { LETS require BODY }` on each record, per engine:
    module, interpreter (its outcome; `missing` as the module's when the outcomes agree: it is
    not the interpreter's contract), DuckDB relational, DuckDB lambda; one tuple when all agree."""
    c = f'inclusion c0 {{\n    ref R0\n    quote "q"\n{lets}    require {body}\n}}\n'
    res = compile_sources({"t.elig": HEAD + VOCAB + vocab + c})
    assert res.ok, [d.message for d in res.diagnostics]
    mod = _module(res, "review_values")
    interp = Interpreter(res.program)
    out = []
    for r in recs:
        m = mod.evaluate(r)["criteria"][0]
        i = interp.evaluate(r)["criteria"][0]
        out.append([(m["outcome"], m["missing"]), (i["outcome"], m["missing"] if i["outcome"] == m["outcome"] else None)])
    path = tmp_path / "recs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in recs), encoding="utf-8")
    for relational in (True, False):
        con = screen.connect(threads=1, memory_limit="1GB")
        loader.load_jsonl(con, str(path))
        script = screen.prepare_script(res.program, res.lowered, only={"c0"}, relational=relational)
        screen.run_script(con, res.program, mod, script)
        for o, line in zip(out, screen.results(con)):
            s = json.loads(line)["criteria"][0]
            o.append((s["outcome"], s["missing"]))
        con.close()
    return [o[0] if len(set(map(repr, o))) == 1 else tuple(o) for o in out]


def hb(value, date="2026-01-01", unit="g/L"):
    return {"code": "hb", "value": value, "unit": unit, "date": date}


REVIEW, PASS, FAIL = ("review", []), ("pass", []), ("fail", [])


def test_a_judgment_that_decides_a_limit(tmp_path):
    recs = [_rec(observations=[hb(95)]), _rec(observations=[hb(110)]), _rec(observations=[hb(80)]),
            _rec(observations=[hb(95)], facts={"fit": True}), _rec(observations=[hb(95)], facts={"fit": False}),
            _rec(observations=[hb(95)], facts={"fit": None}), _rec(), _rec(observations=[hb("x")])]
    assert everywhere("latest hb ever >= (100 g/L if fit else 90 g/L)", recs, tmp_path) == [
        REVIEW, PASS, FAIL, FAIL, PASS, REVIEW, ("unknown", ["hb"]), ("unknown", ["hb"])]
    # in another unit of the element, between, and a multiple of ULN
    assert everywhere("latest hb ever >= (10 g/dL if fit else 9 g/dL)", recs[:3], tmp_path) == [REVIEW, PASS, FAIL]
    assert everywhere("latest hb ever between (100 g/L if fit else 90 g/L) and 150 g/L", recs[:3], tmp_path) == [
        REVIEW, PASS, FAIL]
    ast = [_rec(observations=[{"code": "ast", "value": v, "unit": "U/L", "uln": 40, "date": "2026-01-01"}])
           for v in (150, 90, 210)]
    assert everywhere("latest ast ever <= (5 x ULN if fit else 2.5 x ULN)", ast, tmp_path) == [REVIEW, PASS, FAIL]


def test_a_judgment_with_other_missing_data_stays_unknown(tmp_path):
    """Unknown when something besides the judgment could still change the outcome."""
    recs = [_rec(observations=[hb(95)]), _rec(observations=[hb(95)], facts={"consent": False}),
            _rec(observations=[hb(95)], facts={"consent": True})]
    assert everywhere("not (latest hb ever >= (100 g/L if fit else 90 g/L)) or consent", recs, tmp_path) == [
        ("unknown", ["consent"]), REVIEW, PASS]
    assert everywhere("latest hb ever >= (100 g/L if fit and consent else 90 g/L)", recs, tmp_path) == [
        ("unknown", ["consent"]), PASS, REVIEW]
    # a condition that is not a judgment: unknown, naming it
    assert everywhere("latest hb ever >= (100 g/L if consent else 90 g/L)", recs[:1], tmp_path) == [
        ("unknown", ["consent"])]


def test_a_judgment_that_decides_a_window(tmp_path):
    # a reading after screening on day 5 (80) and day 21 (95): the most recent is the one of day 21
    # with the 28-day window, the one of day 5 with the 14-day one
    two = [hb(80, "2026-01-10"), hb(95, "2026-01-26")]
    recs = [_rec(observations=two), _rec(observations=two, facts={"fit": True}), _rec(observations=two[:1])]
    assert everywhere("latest hb within (28 d if fit else 14 d) after screening >= 90 g/L", recs, tmp_path) == [
        REVIEW, PASS, FAIL]
    # before: a reading only in the 28-day window leaves no reading in the 14-day one (unknown)
    assert everywhere("latest hb within (28 d if fit else 14 d) before screening >= 90 g/L",
                      [_rec(observations=[hb(95, "2025-12-15")])], tmp_path) == [("unknown", ["hb"])]
    anemia = [{"code": "anemia", "onset": "2025-12-15", "status": "resolved"}]
    recs = [_rec(conditions=anemia), _rec(conditions=anemia, facts={"fit": False}), _rec()]
    assert everywhere("any anemia within (28 d if fit else 14 d) before screening", recs, tmp_path) == [
        REVIEW, FAIL, FAIL]
    assert everywhere("no anemia within shorter of 28 d and (21 d if fit else 14 d) before screening", recs,
                      tmp_path) == [REVIEW, PASS, PASS]
    # a date moved by a judged duration
    assert everywhere("screening - (1 wk if fit else 3 wk) < enrollment - 2 wk", [_rec(), _rec(facts={"fit": True})],
                      tmp_path) == [REVIEW, FAIL]


def test_a_judgment_that_decides_a_number(tmp_path):
    recs = [_rec(observations=[hb(95)]), _rec(observations=[hb(110)]), _rec(observations=[hb(40)])]
    assert everywhere("(1 if fit else 2) * (latest hb ever in g/L) > 100", recs, tmp_path) == [REVIEW, PASS, FAIL]
    assert everywhere("latest hb ever in g/L + (0 if fit else 10) >= 100", recs, tmp_path) == [REVIEW, PASS, FAIL]


def test_a_judgment_in_a_derived_value(tmp_path):
    """A derived value whose formula a judgment decides: read as its formula where compared."""
    vocab = "derived dfit { unit kg  formula latest weight ever in kg * (1 if fit else 2) }\n"

    def w(v):
        return {"code": "weight", "value": v, "unit": "kg", "date": "2026-01-01"}
    recs = [_rec(observations=[w(60)]), _rec(observations=[w(110)]), _rec(observations=[w(40)]),
            _rec(observations=[w(60)], facts={"fit": True}), _rec()]
    assert everywhere("dfit > 100 kg", recs, tmp_path, vocab=vocab) == [
        REVIEW, PASS, FAIL, FAIL, ("unknown", ["weight"])]
    assert everywhere("dfit + 0 kg > 100 kg", recs[:3], tmp_path, vocab=vocab) == [REVIEW, PASS, FAIL]


def test_a_judged_value_in_let_not_and_or(tmp_path):
    recs = [_rec(observations=[hb(95)]), _rec(observations=[hb(110)]), _rec(observations=[hb(80)])]
    lets = "    let lim = (100 g/L if fit else 90 g/L)\n    let ok = latest hb ever >= lim\n"
    assert everywhere("ok", recs, tmp_path, lets) == [REVIEW, PASS, FAIL]
    assert everywhere("not ok", recs, tmp_path, lets) == [REVIEW, FAIL, PASS]
    assert everywhere("(ok and sex is male)", recs, tmp_path, lets) == [REVIEW, PASS, FAIL]
    assert everywhere("(ok or sex is female)", recs, tmp_path, lets) == [REVIEW, PASS, FAIL]
    assert everywhere("(ok and sex is female)", recs, tmp_path, lets) == [FAIL, FAIL, FAIL]
    # the same judged limit twice in one comparison takes the same branch in both places
    assert everywhere("latest hb ever between lim and (lim if fit else 150 g/L)", recs, tmp_path, lets) == [
        REVIEW, REVIEW, FAIL]
    # a judged window of a query over readings, and a judged limit in its filter
    two = [hb(80, "2026-01-10"), hb(95, "2026-01-26")]
    assert everywhere("any hb within (28 d if fit else 14 d) after screening where value >= 90 g/L",
                      [_rec(observations=two), _rec(observations=two, facts={"fit": False})], tmp_path) == [REVIEW, FAIL]
    assert everywhere("any hb ever where value >= (90 g/L if fit else 100 g/L)",
                      [_rec(observations=two), _rec(observations=two[:1])], tmp_path) == [REVIEW, FAIL]


def test_what_is_not_lifted(tmp_path):
    """`recorded` is never unknown (a judged window leaves the reading's place uncertain: not
    recorded); a judged window whose condition reads the query's own item is sized per item and
    stays unknown (docs/language.md, What a rule means)."""
    two = [hb(80, "2026-01-10"), hb(95, "2026-01-26")]
    assert everywhere("recorded latest hb within (28 d if fit else 14 d) after screening",
                      [_rec(observations=two), _rec(observations=two[:1])], tmp_path) == [FAIL, PASS]
    anemia = [{"code": "anemia", "onset": "2026-01-05", "status": "resolved", "attributes": {"grade": 3}}]
    assert everywhere("any anemia within (7 d if grade >= 3 and fit else 14 d) before first_dose",
                      [_rec(conditions=anemia)], tmp_path) == [("unknown", ["anemia"])]


def test_a_query_whose_filter_only_a_judgment_leaves_undecided(tmp_path):
    """An item in the window whose filter is undecided only by an unrecorded judgment: the query
    rests on the judgment (review, nothing missing). The module and both DuckDB forms said
    `unknown` naming the item's code (`any anemia ever where fit`), DuckDB also for a query over
    readings (`any hb ever where (value >= 90 g/L and fit)`, where the module said review)."""
    anemia = [{"code": "anemia", "onset": "2025-12-15", "status": "resolved"}]
    bad = [{"code": "anemia", "onset": "bad", "status": "resolved"}]
    recs = [_rec(conditions=anemia), _rec(conditions=anemia, facts={"fit": True}), _rec(),
            _rec(conditions=bad), _rec(conditions=anemia + [{"onset": "2025-12-01", "status": "resolved"}])]
    assert everywhere("any anemia ever where fit", recs, tmp_path) == [
        REVIEW, PASS, FAIL, REVIEW, ("unknown", ["conditions[1]"])]
    assert everywhere("any anemia within 30 d before screening where fit", recs, tmp_path) == [
        REVIEW, PASS, FAIL, ("unknown", ["anemia"]), REVIEW]
    assert everywhere("at least 1 anemia ever where fit", recs, tmp_path) == [
        REVIEW, PASS, FAIL, REVIEW, ("unknown", ["conditions[1]"])]
    assert everywhere("no anemia ever unless fit", recs, tmp_path) == [REVIEW, PASS, PASS, REVIEW, ("unknown", ["conditions[1]"])]
    two = [hb(80, "2026-01-10"), hb(95, "2026-01-26")]
    recs = [_rec(observations=two), _rec(observations=two, facts={"fit": False}),
            _rec(observations=two + [{"value": 99, "unit": "g/L", "date": "2026-01-02"}])]
    assert everywhere("any hb ever where (value >= 90 g/L and fit)", recs, tmp_path) == [
        REVIEW, FAIL, ("unknown", ["hb"])]
    # the reading without a code (99 g/L) passes the filter whatever its code
    assert everywhere("every hb ever where (value >= 90 g/L or fit)", recs, tmp_path) == [REVIEW, FAIL, REVIEW]
