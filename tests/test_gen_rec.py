"""Generated rules over the record's own values (the `rec` half of the language): age at each
anchor in years, months, weeks and days, sex, facts and judgments, anchors as dates with
durations added, `latest X W` with every window kind and anchor and every limit kind (a
quantity in another accepted unit, a multiple of ULN, a conditional limit, `between`, a range,
numbers in a set, a qualitative result, `in UNIT` in a formula, a filter on an attribute),
`recorded`, `let` (global and local, of a condition, a duration, a limit, a selection) and
conditional durations, limits and numbers (often on the judgment `fit`: review where only it is
undecided), nested in and / or / not / `if … then` / `… if … else …` and inside
the where / unless of a query over conditions.

A fixed seed writes small trials of such criteria; each trial is compiled
(compiler.pipeline.compile_sources), its module imported, and evaluated on records near every
edge (birth dates a day around each age limit and 29 February, readings on and one day beyond
each window's ends, unusable values, units and dates, readings without a code, missing or bad
anchors, facts true / false / null / absent). Three sides must agree on every criterion: the
generated module, the independent IR interpreter (tests/ir_interpreter.py) on outcomes and
status, and DuckDB (relational and lambda form) on outcome and `missing`. A criterion the
compiler refuses with a positioned diagnostic is dropped; any other failure is a defect.

ELIG_FUZZ_SCALE multiplies the number of trials of the slow run (tests/test_differential._n).
"""

from __future__ import annotations

import datetime
import json
import random
import re
import types

import pytest

from compiler.pipeline import compile_sources
from gen_exprs import COMBINATORS, WHOLE, bool_expr
from ir_interpreter import Interpreter
from test_differential import _n, compare
from test_gen_item_queries import _sql

duckdb = pytest.importorskip("duckdb")

from compiler.sql.script import SqlCompileError, build  # noqa: E402

HEAD = 'trial G { title "g" protocol "p.txt" anchors screening, enrollment, first_dose }\n'
VOCAB = """
observation hb { unit g/L  accepts g/dL }
observation ast { unit U/L  limits ULN }
observation ecog { unit 1 }
observation weight { unit kg  accepts g }
observation hbsag { qualitative positive, negative }
observation lvef { unit %  attribute method: echo | muga }
condition anemia { attribute grade: integer 1 to 5 }
condition cancer
fact consent
judgment fit
let lw = 7 d
let hb_lim = (100 g/L if any cancer else 90 g/L)
let hb_fit = (100 g/L if fit else 90 g/L)
let recent_hb = latest hb within 14 d before first_dose
let early = first_dose - 2 wk
derived wt2 { unit kg  formula latest weight ever in kg * (0.85 if sex is female else 1) }
derived wtfit { unit kg  formula latest weight ever in kg * (1 if fit else 0.9) }
"""
ANCHORS = ("screening", "enrollment", "first_dose")
DURS = ("7 d", "1 d", "0 d", "2 wk", "1 mo", "6 mo", "1 a", "48 h", "lw", "2 x 3 d")


class Gen:
    """Writes one criterion body at a time from a seeded random generator."""

    def __init__(self, rng: random.Random):
        self.r = rng

    def c(self, seq):
        return self.r.choice(seq)

    def anchor(self):
        return self.c(ANCHORS)

    def cond(self, depth):
        """The condition of a conditional limit, number or duration: often a judgment (alone or
        with other data), which makes the value's outcome `review` where only it is undecided."""
        if self.r.random() < 0.35:
            return self.c(["fit", "not fit", "(fit and consent)", "(fit or sex is male)", "(fit and sex is male)"])
        return self.atom(depth)

    def dur(self, depth=0):
        k = self.r.random()
        if depth < 1 and k < 0.12:
            return f"({self.dur(1)} if {self.cond(2)} else {self.dur(1)})"
        if depth < 1 and k < 0.2:
            return f"{self.c(['shorter', 'longer'])} of {self.dur(1)} and {self.dur(1)}"
        return self.c(DURS)

    def wref(self):
        k = self.r.random()
        if k < 0.15:
            return f"({self.anchor()} {self.c(['-', '+'])} {self.c(['1 d', '1 wk', '1 mo'])})"
        if k < 0.22:
            return "early"
        return self.anchor()

    def window(self, depth=0):
        k = self.r.randrange(7)
        if k == 0:
            return f"within {self.dur(depth)} before {self.wref()}"
        if k == 1:
            return f"within {self.dur(depth)} after {self.wref()}"
        if k == 2:
            return f"on or before {self.wref()}"
        if k == 3:
            return f"on or after {self.wref()}"
        if k == 4:
            return f"between {self.anchor()} and {self.anchor()}"
        if k == 5:
            return "ever"
        return f"within {self.dur(depth)} before {self.anchor()}"

    def age(self):
        a = self.anchor()
        unit, lo, hi = self.c([("a", 18, 75), ("mo", 6, 24), ("wk", 2, 8), ("d", 28, 90)])
        k = self.r.randrange(6)
        if k == 0:
            return f"age at {a} {self.c(['>=', '>', '<', '<=', '=', '!='])} {lo} {unit}"
        if k == 1:
            return f"{lo} {unit} <= age at {a} < {hi} {unit}"
        if k == 2:
            return f"age at {a} between {lo} {unit} and {hi} {unit}"
        if k == 3:
            return f"age at {a} in {unit} {self.c(['>=', '<', '+ 0 >=', '= '])} {lo}"
        if k == 4:
            return f"age at {a} >= ({self.c([18, 17, 75])} a if sex is male else {self.c([18, 19, 40])} a)"
        return f"140 - age at {a} in a > {self.c([65, 122, 50])}"

    def latest(self, depth):
        w = self.window(depth)
        k = self.r.randrange(13)
        if k == 0:
            return f"latest hb {w} {self.c(['>=', '<', '>', '<='])} {self.c(['90 g/L', '9 g/dL', '9.05 g/dL', '120 g/L'])}"
        if k == 1:
            return f"latest hb {w} >= ({self.c(['100 g/L', '10 g/dL'])} if {self.cond(depth + 1)} else 90 g/L)"
        if k == 2:
            return f"latest ast {w} {self.c(['<=', '<', '>'])} {self.c(['ULN', '2.5 x ULN', 'ULN x 1.5', '40 U/L'])}"
        if k == 3:
            return f"latest ast {w} <= (5 x ULN if {self.cond(depth + 1)} else 2.5 x ULN)"
        if k == 4:
            return f"latest ecog {w} {self.c(['in {0, 1}', 'not in {0, 1}', 'between 0 and 2', '<= 1', '= 1.0'])}"
        if k == 5:
            return f"0 <= latest ecog {w} < 2"
        if k == 6:
            return f"latest hbsag {w} {self.c(['is positive', 'is not negative', 'in {positive}'])}"
        if k == 7:
            return f"latest weight {w} in kg {self.c(['*', 'x'])} 2 > {self.c([100, 101, 99])}"
        if k == 8:
            return f"recorded latest {self.c(['hb', 'ecog', 'weight'])} {w}"
        if k == 9:  # (a window of fixed length: the IR interpreter leaves a filtered `latest` in a
            # window of uncertain length unknown whatever the readings, _filtered_candidates)
            w = self.window(1)
            return f"latest lvef {w} where ({self.c(['method is echo', 'method in {echo, muga}', 'method is not muga'])}) < 50 %"
        if k == 10:
            return f"latest weight {w} {self.c(['>', '<='])} {self.c(['50 kg', '50000 g', '50.5 kg'])}"
        if k == 11:
            return f"{self.c(['recent_hb', f'latest hb {w}'])} >= {self.c(['hb_lim', 'hb_fit'])}"
        return f"latest weight {w} in kg * (0.85 if sex is female else 1) {self.c(['>', '<='])} {self.c([42.5, 50, 60])}"

    def dates(self):
        a, b = self.anchor(), self.anchor()
        k = self.r.randrange(3)
        if k == 0:
            return f"{a} {self.c(['<=', '<', '=', '>='])} {b} {self.c(['+', '-'])} {self.dur(1)}"
        if k == 1:
            return f"{a} - {self.c(['1 mo', '2 wk', '1 a'])} < {b}"
        return f"{a} {self.c(['<=', '!=', '>'])} {b}"

    def atom(self, depth=0):
        k = self.r.randrange(16 if depth < 3 else 6)
        if k == 0:
            return self.age()
        if k == 1:
            return self.c(["sex is male", "sex is not female", "sex in {female}", "recorded sex"])
        if k == 2:
            return self.c(["consent", "fit", "not consent", "recorded consent", "recorded fit"])
        if k == 3:
            return self.dates()
        if k == 4:
            return self.c(["any anemia", "no cancer", "any active anemia"]) + (
                f" {self.window(depth)}" if self.r.random() < 0.5 else "")
        if k == 5:
            return f"recorded {self.anchor()}"
        if k in (6, 7, 8):
            return self.latest(depth)
        if k == 9:  # a record value inside a query's filter
            return (f"{self.c(['any', 'no', 'every', 'at least 1', 'at most 1'])} anemia {self.window(depth)} "
                    f"{self.c(['where', 'unless'])} ({self.c(['grade >= 3 and ', 'onset <= screening - 1 mo and ', ''])}"
                    f"{self.atom(depth + 1)})")
        if k == 10:
            return f"any anemia where ({self.c(['onset', 'end'])} {self.c(['<=', '>='])} {self.anchor()} - {self.c(['1 mo', '14 d'])})"
        if k == 11:
            return f"latest hb within {self.dur(depth)} before {self.anchor()} >= 90 g/L"
        if k == 12:  # a window whose duration reads the item (its attribute or date) or the record
            cond = self.c(["grade >= 3", "recorded grade", "onset > screening", "grade in {3, 4}", self.cond(depth + 1),
                           "(grade >= 3 and fit)"])
            return (f"{self.c(['any', 'no', 'at least 1'])} {self.c(['anemia', 'active anemia'])} within "
                    f"({self.dur(1)} if {cond} else {self.dur(1)}) before {self.wref()}")
        if k == 13:
            return self.c([f"wt2 {self.c(['>', '<=', '>='])} {self.c(['42.5 kg', '50 kg', '50000 g'])}",
                           f"wtfit {self.c(['>', '<='])} 50 kg",
                           f"latest weight {self.window(depth)} in kg + ({self.c([0, 5])} if {self.cond(depth + 1)} else 10) > 55",
                           f"(1 if fit else 2) * (latest weight {self.window(depth)} in kg) > 100",
                           f"recorded (latest weight {self.window(depth)} in kg)", "recorded wt2",
                           f"recorded (age at {self.anchor()} in a)", f"early {self.c(['<', '>=', '='])} {self.anchor()}"])
        if k == 14:  # a query over readings of an observation
            if self.r.random() < 0.3:
                return f"{self.c(['any', 'no', 'every'])} ecog {self.window(depth)} where {self.c(['value <= 1', 'value in {0, 1}'])}"
            return (f"{self.c(['any', 'no', 'every'])} hb {self.window(depth)} where "
                    f"{self.c(['value < 90 g/L', '(value >= 9 g/dL and date >= screening)', '(value < 100 g/L or not consent)'])}")
        return f"latest hb within {self.dur(depth)} before early >= 90 g/L"

    def expr(self, depth=0):
        if depth >= 3:
            return self.atom(depth)
        return bool_expr(self.r, ["atom"] * 2 + list(COMBINATORS), lambda _: self.atom(depth),
                         lambda: self.expr(depth + 1), WHOLE)

    def criterion(self, i):
        kind = self.c(["inclusion", "exclusion"])
        lets = []
        body = self.expr()
        if self.r.random() < 0.3:
            lets.append(f"    let x{i} = {self.expr(1)}\n")
            body = f"(x{i} {self.c(['and', 'or'])} {body})" if self.r.random() < 0.7 else f"not x{i}"
        if self.r.random() < 0.15:
            lets.append(f"    let d{i} = {self.dur()}\n")
            body = f"({body} or latest hb within d{i} before {self.anchor()} >= 90 g/L)"
        verb = "require" if kind == "inclusion" else "exclude when"
        return (f'{kind} c{i} {{\n    ref R{i}\n    quote "q"\n' + "".join(lets) + f"    {verb} {body}\n}}\n")


def write_trial(seed: int, n: int) -> list[str]:
    g = Gen(random.Random(seed))
    return [g.criterion(i) for i in range(n)]


def compile_trial(crits: list[str]):
    """Compile the criteria; those the compiler refuses (a positioned diagnostic in their lines)
    are dropped and the rest compiled again. Returns (result, kept criteria, refusals)."""
    refused = []
    for _ in range(4):
        text = HEAD + VOCAB + "".join(crits)
        res = compile_sources({"t.elig": text})
        if res.ok:
            return res, crits, refused
        start = len((HEAD + VOCAB).splitlines())
        spans = []
        line = start
        for c in crits:
            n = c.count("\n")
            spans.append((line + 1, line + n))
            line += n
        bad = set()
        for d in res.diagnostics:
            assert d.span.line >= 1 and d.span.column >= 1 and d.message, d
            hit = [i for i, (lo, hi) in enumerate(spans) if lo <= d.span.line <= hi]
            assert hit, f"a diagnostic outside the generated criteria: {d.message} at {d.span}\n{text}"
            bad |= set(hit)
            refused.append((crits[hit[0]], d.message))
        crits = [c for i, c in enumerate(crits) if i not in bad]
        if not crits:
            return None, [], refused
    raise AssertionError("still refused after dropping the refused criteria")


# ---------------------------------------------------------------------- records near the edges

BAD = ("2026-02-30", "bad", None, 5)


def _iso(d: datetime.date) -> str:
    return d.isoformat()


def _shift(d: datetime.date, months: int) -> datetime.date:
    y, m = divmod(d.year * 12 + d.month - 1 + months, 12)
    import calendar
    return datetime.date(y, m + 1, min(d.day, calendar.monthrange(y, m + 1)[1]))


def _edges(rng, anchors: dict) -> str:
    """A date on, or one day off, an end of a window of the generated rules around an anchor."""
    if rng.random() < 0.04:
        return rng.choice(BAD)
    good = [v for v in anchors.values() if isinstance(v, datetime.date)]
    a = rng.choice(good) if good else datetime.date(2026, 1, 15)
    k = rng.choice([0, 1, 7, 14, 21, 2, 6, "mo", "6mo", "a"])
    sign = rng.choice([-1, -1, 1])
    if k == "mo":
        b = _shift(a, sign)
    elif k == "6mo":
        b = _shift(a, 6 * sign)
    elif k == "a":
        b = _shift(a, 12 * sign)
    else:
        b = a + datetime.timedelta(days=sign * k)
    return _iso(b + datetime.timedelta(days=rng.choice([0, 0, 1, -1])))


def make_record(rng: random.Random, i: int) -> dict:
    s = rng.choice([datetime.date(2026, 1, 15), datetime.date(2026, 3, 1), datetime.date(2024, 2, 29),
                    datetime.date(2026, 1, 31), datetime.date(2025, 12, 31)])
    anchors = {"screening": s, "enrollment": s + datetime.timedelta(days=rng.choice([0, 7, 14, 28, 29, -1])),
               "first_dose": s + datetime.timedelta(days=rng.choice([0, 1, 7, 14, 30]))}
    rec: dict = {"format": 1, "id": f"G{i}"}
    out = {}
    for k, v in anchors.items():
        x = rng.random()
        if x < 0.06:
            continue
        out[k] = rng.choice(BAD[:2]) if x < 0.1 else (None if x < 0.12 else _iso(v))
    rec["anchors"] = out
    sex = rng.choice(["male", "female", "male", "female", None, "absent", "other"])
    if sex != "absent":
        rec["sex"] = sex
    a = rng.choice(list(anchors.values()))
    unit = rng.choice(["a", "mo", "wk", "d"])
    n = {"a": rng.choice([18, 75, 17, 76, 40]), "mo": rng.choice([6, 24]), "wk": rng.choice([2, 8]),
         "d": rng.choice([28, 90])}[unit]
    if unit == "a":
        born = _shift(a, -12 * n)
    elif unit == "mo":
        born = _shift(a, -n)
    else:
        born = a - datetime.timedelta(days=n * (7 if unit == "wk" else 1))
    born += datetime.timedelta(days=rng.choice([0, 0, 1, -1]))
    x = rng.random()
    rec["birth_date"] = (_iso(born) if x < 0.8 else
                         rng.choice(["2008-02-29", "2025-12-31", "2025-11-30", None, "1960-02-30"]))
    obs = []
    for _ in range(rng.randrange(9)):
        code = rng.choice(["hb", "hb", "ast", "ecog", "weight", "hbsag", "lvef", None, ""])
        o = {"date": _edges(rng, anchors)}
        if code is not None:
            o["code"] = code
        if code == "hb" or code in (None, ""):
            o["value"], o["unit"] = rng.choice([(90, "g/L"), (89.9, "g/L"), (9, "g/dL"), (8.99, "g/dL"), (100, "g/L"),
                                                (10, "g/dL"), (120, "g/L"), (99.9, "g/L"), ("90", "g/L"), (90, "mg"),
                                                (90, None)])
        elif code == "ast":
            o["value"], o["unit"] = rng.choice([(40, "U/L"), (100, "U/L"), (60, "U/L"), (200, "U/L"), (41, "U/L")])
            u = rng.choice([40, 40, 80, None, 0])
            if u is not None:
                o["uln"] = u
        elif code == "ecog":
            o["value"] = rng.choice([0, 1, 2, 1.0, 0.5, 3, "1"])
        elif code == "weight":
            o["value"], o["unit"] = rng.choice([(50, "kg"), (50000, "g"), (50.5, "kg"), (42.5, "kg"), (49.99, "kg"),
                                                (60, "kg"), (50, "lb"), (None, "kg")])
        elif code == "hbsag":
            o["value"] = rng.choice(["positive", "negative", "Positive", 1])
        else:
            o["value"], o["unit"] = rng.choice([(49, "%"), (50, "%"), (30, "%")])
            m = rng.choice(["echo", "muga", "mri", None, "absent"])
            if m != "absent":
                o["attributes"] = {"method": m} if m else {}
        if o.get("unit") is None:
            o.pop("unit", None)
        obs.append(o)
    rec["observations"] = obs
    conds = []
    for _ in range(rng.randrange(3)):
        code = rng.choice(["anemia", "anemia", "cancer", None])
        c = {"onset": _edges(rng, anchors), "status": rng.choice(["active", "resolved", "active"])}
        if code:
            c["code"] = code
        if rng.random() < 0.4:
            c["end"] = _edges(rng, anchors)
        if code == "anemia" and rng.random() < 0.7:
            c["attributes"] = {"grade": rng.choice([1, 3, 4, 6, "3"])}
        conds.append(c)
    rec["conditions"] = conds
    facts = {}
    for f in ("consent", "fit"):
        v = rng.choice([True, True, False, None, "absent", "yes"])
        if v != "absent":
            facts[f] = v
    rec["facts"] = facts
    return rec


# ---------------------------------------------------------------------- the three sides


def _module(res, name):
    mod = types.ModuleType(name)
    exec(compile(res.python, f"<{name}>", "exec"), mod.__dict__)
    return mod


# the constructs docs/sql.md lists as having no SQL form yet (refused when the SQL is compiled,
# naming the rule; `date` of a reading in an observation query's filter among them); a refusal
# for any other reason fails the test
SQL_REFUSALS = ("a 'latest' selection inside an item query", "a calendar-month duration inside a computed window",
                "a computed duration measured from a date other than an anchor",
                "the date of an observation as a reference date")


def _sql_refused(res) -> set:
    try:
        build(res.program, res.lowered)
    except SqlCompileError as exc:
        out = set()
        for p in exc.problems:
            m = re.search(r"rule (\w+): no SQL form: (.*)", p)
            assert m, p
            assert m.group(2).startswith(SQL_REFUSALS), f"a refusal docs/sql.md does not list: {p}"
            out.add(m.group(1))
        return out
    return set()


def check_trial(seed: int, n_crits: int, n_records: int, tmp_path, sql=True) -> dict:
    """Compile one generated trial and compare the three sides; returns counts for the report."""
    res, crits, refused = compile_trial(write_trial(seed, n_crits))
    stats = {"criteria": len(crits), "refused": refused, "sql_refused": set(), "outcomes": set()}
    if res is None:
        return stats
    text = HEAD + VOCAB + "".join(crits)
    try:
        mod = _module(res, f"gen_rec_{seed}")
    except Exception as exc:  # a module that does not import is a defect
        raise AssertionError(f"seed {seed}: the module does not import: {exc!r}\n{text}") from exc
    interp = Interpreter(res.program)
    rng = random.Random(seed * 7919 + 1)
    recs = [make_record(rng, i) for i in range(n_records)]
    pys = []
    for rec in recs:
        try:
            py = mod.evaluate(rec)
            diffs = compare(mod, interp, rec)
        except Exception as exc:
            raise AssertionError(f"seed {seed}: evaluating raised {exc!r}\nrecord {json.dumps(rec)}\n{text}") from exc
        assert py["status"] != "error" or "internal" not in str(py.get("error")), (py, text)
        assert not diffs, f"seed {seed}: " + "\n".join(diffs) + "\nrecord: " + json.dumps(rec) + "\n" + text
        pys.append(py)
        stats["outcomes"] |= {c["outcome"] for c in py.get("criteria", [])}
    if not sql:
        return stats
    stats["sql_refused"] = _sql_refused(res)
    only = {c.ir.id for c in res.lowered.criteria} - stats["sql_refused"]
    if not only:
        return stats
    lines = [json.dumps(r) for r in recs]
    for relational in (True, False):
        sqls = _sql(res, mod, lines, tmp_path, relational, only)
        assert len(sqls) == len(recs)
        diffs = []
        for rec, py, sq in zip(recs, pys, sqls):
            if py["status"] == "error" or sq["status"] == "error":
                if (py["status"], py.get("error")) != (sq["status"], sq.get("error")):
                    diffs.append((rec["id"], "error", py.get("error"), sq.get("error")))
                continue
            want = {c["id"]: (c["outcome"], c["missing"]) for c in py["criteria"]}
            for c in sq["criteria"]:
                if want[c["id"]] != (c["outcome"], c["missing"]):
                    diffs.append((rec["id"], c["id"], want[c["id"]], (c["outcome"], c["missing"])))
        if diffs:
            first = diffs[0]
            rec = next(r for r in recs if r["id"] == first[0])
            crit = next((c for c in crits if c.startswith(("inclusion " + str(first[1]) + " ",
                                                           "exclusion " + str(first[1]) + " "))), "")
            raise AssertionError(f"seed {seed} ({'relational' if relational else 'lambda'}): "
                                 + "\n".join(map(str, diffs[:8])) + f"\nrecord: {json.dumps(rec)}\n{crit}")
    return stats


FAST_SEEDS = range(2)


@pytest.mark.parametrize("seed", FAST_SEEDS)
def test_generated_record_rules_agree(seed, tmp_path):
    """Two generated trials in the fast suite (about 1.5 CPU s each); the slow run below
    writes 20 trials of 10 criteria on 150 records each."""
    stats = check_trial(seed, 8, 30, tmp_path)
    assert stats["criteria"] >= 4, stats["refused"]  # the generator writes mostly valid rules
    assert len(stats["outcomes"]) >= 3


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(100, 100 + _n(20)))
def test_generated_record_rules_agree_more(seed, tmp_path):
    check_trial(seed, 10, 150, tmp_path)


# ---------------------------------------------------------------------- defects found, kept


def _rec(**kw) -> dict:
    rec = {"format": 1, "id": "F", "sex": "male", "birth_date": "1970-01-01",
           "anchors": {"screening": "2026-01-05", "enrollment": "2026-01-10", "first_dose": "2026-01-15"},
           "observations": [], "conditions": [], "facts": {}}
    rec.update(kw)
    return rec


FIXED = {}  # a fixed test's name -> its (body, records, outcomes wanted), run together by `fixed`


def fixed_case(fn):
    """The cases of a test below (fn returns them), run with the others by `fixed`."""
    FIXED[fn.__name__] = fn
    return fn


def outcomes_many(cases, tmp_path) -> list[list[tuple]]:
    """The outcomes of the criteria `inclusion c<i> { require BODY }` (in the generated trial's
    vocabulary), criterion i on the records of case i: (module, interpreter, DuckDB relational,
    DuckDB lambda) per record; one trial of them all, one DuckDB load and run per form."""
    crits = "".join(f'inclusion c{i} {{\n    ref R{i}\n    quote "q"\n    require {body}\n}}\n'
                    for i, (body, _) in enumerate(cases))
    res = compile_sources({"t.elig": HEAD + VOCAB + crits})
    assert res.ok, [d.message for d in res.diagnostics]
    mod = _module(res, "gen_rec_fixed")
    interp = Interpreter(res.program)
    flat = [(i, dict(r, id=f"F{i}_{j}")) for i, (_, recs) in enumerate(cases) for j, r in enumerate(recs)]
    out = [[mod.evaluate(r)["criteria"][i]["outcome"], interp.evaluate(r)["criteria"][i]["outcome"]] for i, r in flat]
    lines = [json.dumps(r) for _, r in flat]
    for relational in (True, False):
        for o, (i, _), r in zip(out, flat, _sql(res, mod, lines, tmp_path, relational)):
            o.append(r["criteria"][i]["outcome"])
    per = [[] for _ in cases]
    for (i, _), o in zip(flat, out):
        per[i].append(tuple(o))
    return per


@pytest.fixture(scope="module")
def fixed(tmp_path_factory):
    """Every fixed test's cases in one trial (one compile, one DuckDB run per form); maps a
    test's name to its (body, got, want) triples."""
    names, cases = [], []
    for name, fn in FIXED.items():
        for body, recs, want in fn():
            names.append(name)
            cases.append((body, recs, want))
    got = outcomes_many([(b, r) for b, r, _ in cases], tmp_path_factory.mktemp("fixed"))
    out = {name: [] for name in FIXED}
    for name, (b, _, w), g in zip(names, cases, got):
        out[name].append((b, g, w))
    return out


# the fixed tests on one pytest-xdist worker, which builds `fixed` once
FIXED_GROUP = pytest.mark.xdist_group("gen_rec_fixed")


def check_fixed(fixed, name):
    bad = [(b, g, w) for b, g, w in fixed[name] if g != w]
    assert not bad, "\n".join(f"{b}\n  got  {g}\n  want {w}" for b, g, w in bad)


@fixed_case
def _conditional_on_an_unrecorded_judgment():
    recs = [_rec(), _rec(facts={"fit": True}), _rec(facts={"fit": False})]
    nosex = {k: v for k, v in _rec().items() if k != "sex"}
    return [("(sex is male if fit else sex is female)", recs, [("review",) * 4, ("pass",) * 4, ("fail",) * 4]),
            ("(if fit then sex is female)", recs, [("review",) * 4, ("fail",) * 4, ("pass",) * 4]),
            # an undecided branch that is not a judgment keeps it unknown
            ("(sex is male if fit else consent)", [nosex], [("unknown",) * 4])]


@FIXED_GROUP
def test_fixed_a_conditional_on_an_unrecorded_judgment_is_review(fixed):
    """`A if fit else B` and `if fit then B`, with the judgment `fit` not recorded and A, B decided
    (and different): the only thing undecided is the judgment, so `review` (docs/language.md, What
    a rule means). The module and both SQL forms said `unknown` (they asked the decided branches to
    be reviews too); the interpreter said `review`. Seed 100 of the generated trials."""
    check_fixed(fixed, "_conditional_on_an_unrecorded_judgment")


@fixed_case
def _window_conditional_on_a_patient_value():
    anemia = [{"code": "anemia", "onset": "2026-01-05", "status": "resolved"}]  # 10 days before first_dose
    recs = [_rec(conditions=anemia, facts={"consent": True}), _rec(conditions=anemia, facts={"consent": False}),
            _rec(conditions=anemia), _rec(facts={"consent": True})]
    return [("any anemia within (7 d if consent else 14 d) before first_dose", recs, [
        ("fail",) * 4, ("pass",) * 4, ("unknown",) * 4, ("fail",) * 4])]


@FIXED_GROUP
def test_fixed_a_window_conditional_on_a_patient_value_in_an_item_query(fixed):
    """`any anemia within (7 d if consent else 14 d) before first_dose`: the relational DuckDB
    script read the duration's bound columns (_zb5) from the patient's window column, where they
    do not exist (Binder Error: Referenced table "_zb5" not found). Seed 137."""
    check_fixed(fixed, "_window_conditional_on_a_patient_value")


@fixed_case
def _window_conditional_on_an_attribute():
    def anemia(**attrs):
        return [{"code": "anemia", "onset": "2026-01-05", "status": "resolved", "attributes": attrs}]
    recs = [_rec(conditions=anemia(grade=3)), _rec(conditions=anemia(grade=1)), _rec(conditions=anemia())]
    return [("any anemia within (7 d if grade >= 3 else 14 d) before first_dose", recs, [
        ("fail",) * 4, ("pass",) * 4, ("unknown",) * 4])]


@FIXED_GROUP
def test_fixed_a_window_conditional_on_an_attribute_of_the_item(fixed):
    """`any anemia within (7 d if grade >= 3 else 14 d) before first_dose`: the duration reads the
    condition's own attribute, but the checker saw only class / route / enumeration tests as
    reading the item (check_common._bool_uses_item), so the module built the window once per
    record, outside the item's scope: NameError on every record (an internal error)."""
    check_fixed(fixed, "_window_conditional_on_an_attribute")


@fixed_case
def _age_in_a_unit():
    recs = [_rec(birth_date="2008-01-05"), _rec(birth_date="2008-01-06"), _rec(birth_date=None)]
    return [("age at screening in a >= 18", recs, [("pass",) * 4, ("fail",) * 4, ("unknown",) * 4]),
            ("17 < age at screening in a", recs, [("pass",) * 4, ("fail",) * 4, ("unknown",) * 4])]


@FIXED_GROUP
def test_fixed_age_taken_in_a_unit_compares_with_a_plain_number(fixed):
    """`age at A in a` is a plain number (docs/language.md section 11) and a plain number
    compares with a plain number: `age at screening in a >= 18` was refused ("compare it with d,
    wk, mo or a"), though `in {18, 75}`, `between 18 and 75` and `140 - age at A in a > 50` were
    accepted. An age not taken in a unit still needs one (tests/diagnostics)."""
    check_fixed(fixed, "_age_in_a_unit")
    c = 'inclusion c0 {\n    ref R0\n    quote "q"\n    require age at screening >= 18\n}\n'
    [d] = compile_sources({"t.elig": HEAD + VOCAB + c}).diagnostics
    assert "compare it with d, wk, mo or a" in d.message and d.span.line >= 1


@fixed_case
def _undated_reading_in_an_ever_window():
    def hb(value, date):
        return {"code": "hb", "value": value, "unit": "g/dL", "date": date}
    recs = [_rec(facts={"consent": True}, observations=[hb(10, None)]),
            _rec(facts={"consent": True}, observations=[hb(9, "bad")]),
            _rec(facts={"consent": True}, observations=[hb(10, "2026-02-30")])]
    return [("no hb ever where (value < 100 g/L or not consent)", recs, [("pass",) * 4, ("fail",) * 4, ("pass",) * 4])]


@FIXED_GROUP
def test_fixed_an_undated_reading_is_inside_an_ever_window_of_an_observation_query(fixed):
    """`no hb ever where (value < 100 g/L or not consent)` with one hb reading whose date is null
    or unusable: a window reaching every date holds it (runtime _obs_query), so the query is
    decided by its filter. Both DuckDB forms left such a reading's place unknown, and the
    criterion `unknown` with `hb` missing. Seeds 107 and 117."""
    check_fixed(fixed, "_undated_reading_in_an_ever_window")


@fixed_case
def _later_reading_in_the_uncertain_end():
    def hb(v, d):
        return {"code": "hb", "value": v, "unit": "g/L", "date": d}
    two = [hb(95, "2026-01-06"), hb(80, "2026-02-28")]
    recs = [_rec(observations=two), _rec(observations=two, facts={"consent": True}),
            _rec(observations=two, facts={"consent": False}), _rec(observations=two[:1])]
    return [("latest hb within (60 d if consent else 7 d) after screening >= 90 g/L", recs, [
        ("unknown",) * 4, ("fail",) * 4, ("pass",) * 4, ("pass",) * 4])]


@FIXED_GROUP
def test_fixed_a_later_reading_in_the_uncertain_end_of_a_window_after_an_anchor(fixed):
    """`latest hb within (60 d if consent else 7 d) after screening` with consent not recorded: a
    reading on day 54 is the most recent if consent holds, so the one on day 1 is not surely
    selected. The module, and both DuckDB forms, read the day-1 reading and passed; now the
    comparison is unknown (`hb`, `consent` missing) unless consent is recorded. Seed 214."""
    check_fixed(fixed, "_later_reading_in_the_uncertain_end")


@fixed_case
def _code_less_reading_in_the_uncertain_end():
    rec = _rec(observations=[{"code": "hb", "value": 120, "unit": "g/L", "date": "2026-01-07"},
                             {"value": 100, "unit": "g/L", "date": "2026-01-30"}])
    return [("recorded latest hb within (30 d if consent else 7 d) after screening", [rec], [("pass",) * 4]),
            # compared: decided where both candidates agree (120 g/L, and 100 g/L perhaps of hb)
            ("latest hb within (30 d if consent else 7 d) after screening >= 110 g/L", [rec], [("unknown",) * 4]),
            ("latest hb within (30 d if consent else 7 d) after screening >= 90 g/L", [rec], [("pass",) * 4])]


@FIXED_GROUP
def test_fixed_a_code_less_reading_in_the_uncertain_end_of_a_window(fixed):
    """`recorded latest hb within (30 d if consent else 7 d) after screening`, consent not
    recorded, a sure hb reading and a reading without a code (perhaps hb) in the uncertain part
    (seed 242). docs/records.md: a reading without a code could be of any code of its kind, so it
    is a candidate wherever it could be the one selected; either window selects a usable hb value
    (the sure one, or perhaps the one without a code): recorded. The module and both DuckDB forms
    said so; the IR interpreter left the selection unknown because the narrow and the wide
    window's candidates differed, and said not recorded (tests/ir_interpreter.py select: now the
    wide window's readings without a code are candidates too). A reading of hb itself in the
    uncertain part still leaves the selection unknown (test_fixed_a_later_reading_...)."""
    check_fixed(fixed, "_code_less_reading_in_the_uncertain_end")
