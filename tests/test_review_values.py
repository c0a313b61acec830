"""`review` when a judgment decides a limit, a number or a duration (docs/language.md, What a rule
means): the outcome rests only on the unrecorded judgment when each of its branches is decided by
the rest of the record. The four engines (the generated module, the IR interpreter, DuckDB's
relational and lambda forms) give the same outcome, and the module and DuckDB the same `missing`
(`[]` for review). Before compiler/hoist.py all four said `unknown` (the module and DuckDB naming
the reading in `missing`). Spark runs the same lifted body (tests/test_sql_spark.py, lang_trial).
The fast tests' bodies are compiled as one trial and run once in each DuckDB form (the `judged`
fixture; their tests in one xdist group); each test checks its own expectations.
"""

from __future__ import annotations

import json

import pytest

from compiler.pipeline import compile_sources
from ir_interpreter import Interpreter
from test_gen_item_queries import _sql
from test_gen_rec import HEAD, VOCAB, _module, _rec

duckdb = pytest.importorskip("duckdb")



def everywhere_many(cases, tmp_path, lets: str = "", vocab: str = "") -> list[list[tuple]]:
    """everywhere for several (body, records) at once: one trial of criteria c0, c1, ... (each
    with LETS), one DuckDB load and one run per form, criterion i read on the records of case i."""
    crits = "".join(f'inclusion c{i} {{\n    ref R{i}\n    quote "q"\n{lets}    require {body}\n}}\n'
                    for i, (body, _) in enumerate(cases))
    res = compile_sources({"t.elig": HEAD + VOCAB + vocab + crits})
    assert res.ok, [d.message for d in res.diagnostics]
    mod = _module(res, "review_values")
    interp = Interpreter(res.program)
    flat = []  # (case, record)
    for i, (_, recs) in enumerate(cases):
        for j, r in enumerate(recs):
            flat.append((i, dict(r, id=f"F{i}_{j}")))
    out = []
    for i, r in flat:
        m = mod.evaluate(r)["criteria"][i]
        t = interp.evaluate(r)["criteria"][i]
        out.append([(m["outcome"], m["missing"]), (t["outcome"], m["missing"] if t["outcome"] == m["outcome"] else None)])
    lines = [json.dumps(r) for _, r in flat]
    for relational in (True, False):
        for o, (i, _), r in zip(out, flat, _sql(res, mod, lines, tmp_path, relational)):
            c = r["criteria"][i]
            o.append((c["outcome"], c["missing"]))
    got = [o[0] if len(set(map(repr, o))) == 1 else tuple(o) for o in out]
    per = [[] for _ in cases]
    for (i, _), g in zip(flat, got):
        per[i].append(g)
    return per


def everywhere(body: str, recs: list[dict], tmp_path, lets: str = "", vocab: str = "") -> list[tuple]:
    """(outcome, missing) of `inclusion c0 { LETS require BODY }` on each record, per engine:
    module, interpreter (its outcome; `missing` as the module's when the outcomes agree: it is
    not the interpreter's contract), DuckDB relational, DuckDB lambda; one tuple when all agree."""
    return everywhere_many([(body, recs)], tmp_path, lets, vocab)[0]


class Many:
    """Expectations gathered, then checked in one run of the four engines (everywhere_many)."""

    def __init__(self, tmp_path, lets: str = "", vocab: str = ""):
        self.tmp_path, self.lets, self.vocab, self.cases = tmp_path, lets, vocab, []

    def expect(self, body: str, recs: list[dict], want: list):
        self.cases.append((body, recs, want))

    def check(self):
        got = everywhere_many([(b, r) for b, r, _ in self.cases], self.tmp_path, self.lets, self.vocab)
        bad = [(b, g, w) for (b, _, w), g in zip(self.cases, got) if g != w]
        assert not bad, "\n".join(f"{b}\n  got  {g}\n  want {w}" for b, g, w in bad)


DFIT = "derived dfit { unit kg  formula latest weight ever in kg * (1 if fit else 2) }\n"
GROUPS = {}  # test name -> its expectations, added to one Many by `judged`


def group(fn):
    GROUPS[fn.__name__] = fn
    return fn


@pytest.fixture(scope="module")
def judged(tmp_path_factory):
    """Every group's expectations in one trial (the vocabulary of tests/test_gen_rec.py and
    the derived value dfit): one compile, one DuckDB load and run per form. Maps a group's name
    to its (body, got, want) triples."""
    m = Many(tmp_path_factory.mktemp("review"), vocab=DFIT)
    spans = {}
    for name, add in GROUPS.items():
        start = len(m.cases)
        add(m)
        spans[name] = (start, len(m.cases))
    got = everywhere_many([(b, r) for b, r, _ in m.cases], m.tmp_path, m.lets, m.vocab)
    return {name: [(b, g, w) for (b, _, w), g in zip(m.cases[a:z], got[a:z])] for name, (a, z) in spans.items()}


def check(judged, name):
    bad = [(b, g, w) for b, g, w in judged[name] if g != w]
    assert not bad, "\n".join(f"{b}\n  got  {g}\n  want {w}" for b, g, w in bad)


pytestmark = pytest.mark.xdist_group("review_values")


def hb(value, date="2026-01-01", unit="g/L"):
    return {"code": "hb", "value": value, "unit": unit, "date": date}


REVIEW, PASS, FAIL = ("review", []), ("pass", []), ("fail", [])


@group
def _a_judgment_that_decides_a_limit(m):
    recs = [_rec(observations=[hb(95)]), _rec(observations=[hb(110)]), _rec(observations=[hb(80)]),
            _rec(observations=[hb(95)], facts={"fit": True}), _rec(observations=[hb(95)], facts={"fit": False}),
            _rec(observations=[hb(95)], facts={"fit": None}), _rec(), _rec(observations=[hb("x")])]
    m.expect("latest hb ever >= (100 g/L if fit else 90 g/L)", recs, [
        REVIEW, PASS, FAIL, FAIL, PASS, REVIEW, ("unknown", ["hb"]), ("unknown", ["hb"])])
    # in another unit of the element, between, and a multiple of ULN
    m.expect("latest hb ever >= (10 g/dL if fit else 9 g/dL)", recs[:3], [REVIEW, PASS, FAIL])
    m.expect("latest hb ever between (100 g/L if fit else 90 g/L) and 150 g/L", recs[:3], [
        REVIEW, PASS, FAIL])
    ast = [_rec(observations=[{"code": "ast", "value": v, "unit": "U/L", "uln": 40, "date": "2026-01-01"}])
           for v in (150, 90, 210)]
    m.expect("latest ast ever <= (5 x ULN if fit else 2.5 x ULN)", ast, [REVIEW, PASS, FAIL])


def test_a_judgment_that_decides_a_limit(judged):
    check(judged, "_a_judgment_that_decides_a_limit")


@group
def _a_judgment_with_other_missing_data_stays_unknown(m):
    recs = [_rec(observations=[hb(95)]), _rec(observations=[hb(95)], facts={"consent": False}),
            _rec(observations=[hb(95)], facts={"consent": True})]
    m.expect("not (latest hb ever >= (100 g/L if fit else 90 g/L)) or consent", recs, [
        ("unknown", ["consent"]), REVIEW, PASS])
    m.expect("latest hb ever >= (100 g/L if fit and consent else 90 g/L)", recs, [
        ("unknown", ["consent"]), PASS, REVIEW])
    # a condition that is not a judgment: unknown, naming it
    m.expect("latest hb ever >= (100 g/L if consent else 90 g/L)", recs[:1], [
        ("unknown", ["consent"])])


def test_a_judgment_with_other_missing_data_stays_unknown(judged):
    """Unknown when something besides the judgment could still change the outcome."""
    check(judged, "_a_judgment_with_other_missing_data_stays_unknown")


@group
def _a_judgment_that_decides_a_window(m):
    # a reading after screening on day 5 (80) and day 21 (95): the most recent is the one of day 21
    # with the 28-day window, the one of day 5 with the 14-day one
    two = [hb(80, "2026-01-10"), hb(95, "2026-01-26")]
    recs = [_rec(observations=two), _rec(observations=two, facts={"fit": True}), _rec(observations=two[:1])]
    m.expect("latest hb within (28 d if fit else 14 d) after screening >= 90 g/L", recs, [
        REVIEW, PASS, FAIL])
    # before: a reading only in the 28-day window leaves no reading in the 14-day one (unknown)
    m.expect("latest hb within (28 d if fit else 14 d) before screening >= 90 g/L",
                      [_rec(observations=[hb(95, "2025-12-15")])], [("unknown", ["hb"])])
    anemia = [{"code": "anemia", "onset": "2025-12-15", "status": "resolved"}]
    recs = [_rec(conditions=anemia), _rec(conditions=anemia, facts={"fit": False}), _rec()]
    m.expect("any anemia within (28 d if fit else 14 d) before screening", recs, [
        REVIEW, FAIL, FAIL])
    m.expect("no anemia within shorter of 28 d and (21 d if fit else 14 d) before screening", recs, [REVIEW, PASS, PASS])
    # a date moved by a judged duration
    m.expect("screening - (1 wk if fit else 3 wk) < enrollment - 2 wk", [_rec(), _rec(facts={"fit": True})], [REVIEW, FAIL])


def test_a_judgment_that_decides_a_window(judged):
    check(judged, "_a_judgment_that_decides_a_window")


@group
def _a_judgment_that_decides_a_number(m):
    recs = [_rec(observations=[hb(95)]), _rec(observations=[hb(110)]), _rec(observations=[hb(40)])]
    m.expect("(1 if fit else 2) * (latest hb ever in g/L) > 100", recs, [REVIEW, PASS, FAIL])
    m.expect("latest hb ever in g/L + (0 if fit else 10) >= 100", recs, [REVIEW, PASS, FAIL])


def test_a_judgment_that_decides_a_number(judged):
    check(judged, "_a_judgment_that_decides_a_number")


@group
def _a_judgment_in_a_derived_value(m):
    def w(v):
        return {"code": "weight", "value": v, "unit": "kg", "date": "2026-01-01"}
    recs = [_rec(observations=[w(60)]), _rec(observations=[w(110)]), _rec(observations=[w(40)]),
            _rec(observations=[w(60)], facts={"fit": True}), _rec()]
    m.expect("dfit > 100 kg", recs, [
        REVIEW, PASS, FAIL, FAIL, ("unknown", ["weight"])])
    m.expect("dfit + 0 kg > 100 kg", recs[:3], [REVIEW, PASS, FAIL])


def test_a_judgment_in_a_derived_value(judged):
    """A derived value whose formula a judgment decides: read as its formula where compared."""
    check(judged, "_a_judgment_in_a_derived_value")


@pytest.mark.slow
def test_a_judged_value_in_let_not_and_or(tmp_path):
    """(slow: about 5 CPU s, eight criteria with observation queries in both DuckDB forms)"""
    recs = [_rec(observations=[hb(95)]), _rec(observations=[hb(110)]), _rec(observations=[hb(80)])]
    lets = "    let lim = (100 g/L if fit else 90 g/L)\n    let ok = latest hb ever >= lim\n"
    m = Many(tmp_path, lets)
    m.expect("ok", recs, [REVIEW, PASS, FAIL])
    m.expect("not ok", recs, [REVIEW, FAIL, PASS])
    m.expect("(ok and sex is male)", recs, [REVIEW, PASS, FAIL])
    m.expect("(ok or sex is female)", recs, [REVIEW, PASS, FAIL])
    m.expect("(ok and sex is female)", recs, [FAIL, FAIL, FAIL])
    # the same judged limit twice in one comparison takes the same branch in both places
    m.expect("latest hb ever between lim and (lim if fit else 150 g/L)", recs, [
        REVIEW, REVIEW, FAIL])
    # a judged window of a query over readings, and a judged limit in its filter
    two = [hb(80, "2026-01-10"), hb(95, "2026-01-26")]
    m.expect("any hb within (28 d if fit else 14 d) after screening where value >= 90 g/L",
                      [_rec(observations=two), _rec(observations=two, facts={"fit": False})], [REVIEW, FAIL])
    m.expect("any hb ever where value >= (90 g/L if fit else 100 g/L)",
                      [_rec(observations=two), _rec(observations=two[:1])], [REVIEW, FAIL])
    m.check()


@group
def _what_is_not_lifted(m):
    two = [hb(80, "2026-01-10"), hb(95, "2026-01-26")]
    m.expect("recorded latest hb within (28 d if fit else 14 d) after screening",
                      [_rec(observations=two), _rec(observations=two[:1])], [FAIL, PASS])
    anemia = [{"code": "anemia", "onset": "2026-01-05", "status": "resolved", "attributes": {"grade": 3}}]
    m.expect("any anemia within (7 d if grade >= 3 and fit else 14 d) before first_dose",
                      [_rec(conditions=anemia)], [("unknown", ["anemia"])])


def test_what_is_not_lifted(judged):
    """`recorded` is never unknown (a judged window leaves the reading's place uncertain: not
    recorded); a judged window whose condition reads the query's own item is sized per item and
    stays unknown (docs/language.md, What a rule means)."""
    check(judged, "_what_is_not_lifted")


@group
def _a_query_whose_filter_only_a_judgment_leaves_undecided(m):
    anemia = [{"code": "anemia", "onset": "2025-12-15", "status": "resolved"}]
    bad = [{"code": "anemia", "onset": "bad", "status": "resolved"}]
    recs = [_rec(conditions=anemia), _rec(conditions=anemia, facts={"fit": True}), _rec(),
            _rec(conditions=bad), _rec(conditions=anemia + [{"onset": "2025-12-01", "status": "resolved"}])]
    m.expect("any anemia ever where fit", recs, [
        REVIEW, PASS, FAIL, REVIEW, ("unknown", ["conditions[1]"])])
    m.expect("any anemia within 30 d before screening where fit", recs, [
        REVIEW, PASS, FAIL, ("unknown", ["anemia"]), REVIEW])
    m.expect("at least 1 anemia ever where fit", recs, [
        REVIEW, PASS, FAIL, REVIEW, ("unknown", ["conditions[1]"])])
    m.expect("no anemia ever unless fit", recs, [REVIEW, PASS, PASS, REVIEW, ("unknown", ["conditions[1]"])])
    two = [hb(80, "2026-01-10"), hb(95, "2026-01-26")]
    recs = [_rec(observations=two), _rec(observations=two, facts={"fit": False}),
            _rec(observations=two + [{"value": 99, "unit": "g/L", "date": "2026-01-02"}])]
    m.expect("any hb ever where (value >= 90 g/L and fit)", recs, [
        REVIEW, FAIL, ("unknown", ["hb"])])
    # the reading without a code (99 g/L) passes the filter whatever its code
    m.expect("every hb ever where (value >= 90 g/L or fit)", recs, [REVIEW, FAIL, REVIEW])


def test_a_query_whose_filter_only_a_judgment_leaves_undecided(judged):
    """An item in the window whose filter is undecided only by an unrecorded judgment: the query
    rests on the judgment (review, nothing missing). The module and both DuckDB forms said
    `unknown` naming the item's code (`any anemia ever where fit`), DuckDB also for a query over
    readings (`any hb ever where (value >= 90 g/L and fit)`, where the module said review)."""
    check(judged, "_a_query_whose_filter_only_a_judgment_leaves_undecided")