"""Generated rules over values, treatments and the calendar: three evaluators, one meaning.

A seeded writer composes small trials from the constructs of docs/language.md sections 3, 6-9
that the two other generated-rule tests (test_gen_rec.py, test_gen_item_queries.py) leave out:
`derived` values (a Cockcroft-Gault-like formula with a sex factor, a body mass index, one
derived from another), arithmetic (+ - * / x, negation) on converted numbers, `X in UNIT`
(molar mass, seconds to milliseconds, weeks to days), ranges `LOW <= X < HIGH` on observations,
ages and derived values, `between`, ULN / LLN / LLOQ limits (non-integer multiples, both
orders, in ranges, in conditional limits), limits written in another unit than the element's
(g/dL vs g/L, [degF] vs Cel, mg/dL vs umol/L by molar mass, 10*3/uL and /uL vs 10*9/L, s vs
ms), numbers in sets, qualitative results, sex-specific limits, ages at every anchor in every
unit; queries over treatment classes with half-life washouts (`shorter of` / `longer of`,
multiples, `if recorded half_life`), `daily_dose as TABLE`, route, purpose, course, start /
end; conditions and procedures with scale, enumeration and measured attributes, `status`;
calendar windows (months, years) and date arithmetic; observation queries on `value`. Each
construct appears nested in and / or / not / if-then / if-else, inside `let` (global and local),
inside conditional limits and durations and inside a query's where / unless.

Records come from tests/test_differential.records_for (values at every limit in every accepted
unit, reference limits at the multiple, dates at window edges, unusable fields) with code-less
items, quantity attributes in mm / cm, readings at extreme exponents (weights, creatinines and
heights scaled together: the BMI and the clearance keep their exact value, _extremes) and unknown
codes added here. The generated module, the IR interpreter (tests/ir_interpreter.py) and DuckDB
(relational and lambda form) must agree on every criterion's outcome (and, for DuckDB, `missing`).
A criterion the compiler refuses with a positioned diagnostic is dropped (and counted); a compile
crash, a module that does not import, an exception or any disagreement fails the test.

ELIG_FUZZ_SCALE multiplies the number of trials (tests/test_differential._n). The slow part
(100 trials against the interpreter, 8 through DuckDB) took 180 CPU s at 150 and 12 (load 9).
"""

from __future__ import annotations

import calendar
import contextlib
import datetime
import json
import math
import random
import re
import types
from fractions import Fraction

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from compiler.pipeline import compile_sources
from gen_exprs import COMBINATORS, WHOLE, bool_expr
from ir_interpreter import Interpreter
from test_differential import DIFF, Hints, _as_json_number, _n, _near, compare, records_for
from test_fuzz_rules import assert_positioned
from test_gen_item_queries import _sql, _uncoded, sql_form_diffs

duckdb = pytest.importorskip("duckdb")

from compiler.sql import screen  # noqa: E402

HEAD = 'trial V { title "v" protocol "p.txt" anchors screening, enrollment, first_dose }\n'
VOCAB = """
observation hb { unit g/L  accepts g/dL }
observation crea { unit umol/L  accepts mg/dL  molar_mass 113.12 g/mol  limits ULN }
observation ast { unit U/L  limits ULN, LLN }
observation plt { unit 10*9/L }
observation temp { unit Cel  accepts [degF] }
observation dna { unit [IU]/mL  limits LLOQ }
observation weight { unit kg  accepts [lb_av] }
observation height { unit cm  accepts [in_i] }
observation ecog { unit 1 }
observation qtc { unit ms }
observation lifeexp { unit wk }
observation hbsag { qualitative positive, negative }
condition tox { attribute grade: integer 1 to 5  attribute kind: mild | severe  attribute size: number mm }
condition infection { attribute grade: integer 1 to 5  attribute kind: mild | severe  attribute size: number mm }
procedure surgery { attribute intent: palliative | curative  attribute fractions: number }
treatment_class chemo
treatment_class steroid
treatment_class immuno
equivalence pred { pred 5 mg  dexa 0.75 mg  hydro 20 mg }
fact consent
derived crcl {
    unit mL/min
    formula (140 - age at screening in a) * (latest weight on or before first_dose in kg)
        / (72 * (latest crea within 7 d before first_dose in mg/dL)) * (0.85 if sex is female else 1)
}
derived bmi { unit kg/m2  formula (latest weight ever in kg) / ((latest height ever in m) * (latest height ever in m)) }
derived crcl_l { unit L/h  formula crcl in L/h }
let hb_lim = (100 g/L if any active tox else 9 g/dL)
let sel_crea = latest crea within 14 d before first_dose
let day0 = first_dose - 1 mo
"""
ANCHORS = ("screening", "enrollment", "first_dose")
WINDOWS_DUR = ("7 d", "14 d", "0 d", "2 wk", "1 mo", "6 mo", "1 a", "3 months", "48 h", "2 x 3 wk", "36 h")


class Gen:
    """A seeded writer of criteria over values, treatments and the calendar."""

    def __init__(self, rng: random.Random):
        self.r = rng

    def c(self, seq):
        return self.r.choice(seq)

    def p(self, x: float) -> bool:
        return self.r.random() < x

    # ------------------------------------------------------------------ shared pieces
    def cond(self, depth):
        """A record-level condition used inside conditional limits, durations and formulas
        (never a judgment: review-vs-unknown of those is another engineer's)."""
        if depth >= 3 or self.p(0.6):
            return self.c(["sex is male", "sex is female", "consent", "any active tox", "recorded sex",
                           "age at screening >= 65 a", "any chemo ever", "latest hbsag ever is positive",
                           "latest ecog ever <= 1", "first_dose > screening + 1 mo", "crcl < 50 mL/min",
                           "recorded bmi", "(latest weight ever in kg) / 2 > 35", "age at first_dose in mo >= 216"])
        return self.atom(depth + 1)

    def window(self, depth=0, ref_opts=None):
        refs = list(ref_opts or ANCHORS) + ["(first_dose - 1 mo)", "day0", "(screening + 1 a)"]
        ref = self.c(refs)
        k = self.r.randrange(8)
        if k in (0, 1):
            d = self.c(WINDOWS_DUR)
            if depth < 2 and self.p(0.2):
                d = f"({self.c(WINDOWS_DUR)} if {self.cond(depth + 1)} else {self.c(WINDOWS_DUR)})"
            return f"within {d} before {ref}"
        if k == 2:
            return f"within {self.c(WINDOWS_DUR)} after {ref}"
        if k == 3:
            return f"on or before {ref}"
        if k == 4:
            return f"on or after {ref}"
        if k == 5:
            return f"between {self.c(refs)} and {self.c(refs)}"
        return "ever"

    # ------------------------------------------------------------------ values
    def obs_limit(self, code, depth):
        """(comparator, limit) for an observation, limits in every unit kind."""
        lims = {
            "hb": ["90 g/L", "9 g/dL", "9.05 g/dL", "120 g/L", "hb_lim"],
            "crea": ["1.5 mg/dL", "132.6 umol/L", "1.5 x ULN", "ULN x 1.25", "ULN", "0.8 x ULN", "1.3 mg/dL"],
            "ast": ["2.5 x ULN", "ULN", "LLN", "1.5 x LLN", "40 U/L", "0.6 ukat/L"],
            "plt": ["100 10*9/L", "100 10*3/uL", "100000 /uL", "75.5 10*9/L"],
            "temp": ["38 Cel", "100.4 [degF]", "37.5 Cel", "311.15 K", "-10 Cel", "-0.5 Cel"],
            "dna": ["LLOQ", "2 x LLOQ", "20 [IU]/mL", "2000 [IU]/L"],
            "weight": ["50 kg", "110.2 [lb_av]", "50000 g", "49.9 kg"],
            "height": ["150 cm", "1.5 m", "59 [in_i]"],
            "ecog": ["1", "2", "0", "-1", "1.5"],
            "qtc": ["450 ms", "0.47 s", "(450 ms if sex is male else 470 ms)"],
            "lifeexp": ["12 wk", "3 mo", "84 d"],
        }[code]
        lim = self.c(lims)
        if depth < 3 and self.p(0.15) and not lim.startswith("("):
            other = self.c(lims)
            if not other.startswith("(") and other != "hb_lim" and lim != "hb_lim":
                lim = f"({lim} if {self.cond(depth + 1)} else {other})"
        return self.c([">=", "<=", ">", "<", "=", "!="]), lim

    def latest(self, depth):
        code = self.c(["hb", "crea", "ast", "plt", "temp", "dna", "weight", "height", "ecog", "qtc", "lifeexp",
                       "hbsag"])
        w = self.window(depth)
        sel = f"latest {code} {w}"
        if code == "crea" and self.p(0.2):
            sel = "sel_crea"
        if code == "hbsag":
            return f"{sel} {self.c(['is positive', 'is not negative', 'in {positive, negative}', 'not in {positive}'])}"
        k = self.r.randrange(10)
        if k < 5:
            op, lim = self.obs_limit(code, depth)
            if self.p(0.15) and not lim.startswith("("):
                return f"{lim} {self.c(['<', '<=', '>', '>='])} {sel}"  # the observation on the right
            return f"{sel} {op} {lim}"
        if k == 5:  # between on limits
            lo = {"hb": "9 g/dL", "crea": "0.5 mg/dL", "ast": "LLN", "plt": "100 10*3/uL", "temp": "36 Cel",
                  "dna": "LLOQ", "weight": "50 kg", "height": "150 cm", "ecog": "0", "qtc": "0.4 s",
                  "lifeexp": "3 mo"}[code]
            hi = {"hb": "160 g/L", "crea": "1.5 x ULN", "ast": "ULN", "plt": "400000 /uL", "temp": "100.4 [degF]",
                  "dna": "10 x LLOQ", "weight": "220.5 [lb_av]", "height": "78 [in_i]", "ecog": "2",
                  "qtc": "470 ms", "lifeexp": "84 d"}[code]
            return f"{sel} between {lo} and {hi}"
        if k == 6:  # a chained range
            lo, hi = {"hb": ("90 g/L", "12 g/dL"), "crea": ("0.5 mg/dL", "ULN"),
                      "ast": ("LLN", "2.5 x ULN"), "plt": ("100 10*3/uL", "400 10*9/L"),
                      "temp": ("96.8 [degF]", "38 Cel"), "dna": ("LLOQ", "1000 [IU]/mL"),
                      "weight": ("50 kg", "100 kg"), "height": ("59 [in_i]", "2 m"), "ecog": ("0", "2"),
                      "qtc": ("0.3 s", "450 ms"), "lifeexp": ("12 wk", "1 a")}[code]
            a, b = self.c(["<=", "<"]), self.c(["<=", "<"])
            return f"{lo} {a} {sel} {b} {hi}"
        if k == 7 and code == "ecog":
            return f"{sel} {self.c(['in {0, 1}', 'not in {0, 1}', 'in {2}', '= 1.0'])}"
        if k == 7 and code == "plt":
            return f"{sel} {self.c(['in {100 10*9/L, 150 10*9/L}', 'not in {100000 /uL}'])}"
        if k == 8:
            return f"recorded {sel}"
        # a conversion in a formula
        unit = {"hb": "g/dL", "crea": "mg/dL", "ast": "U/L", "plt": "10*3/uL", "temp": "Cel", "dna": "[IU]/mL",
                "weight": "kg", "height": "m", "ecog": "1", "qtc": "s", "lifeexp": "d"}[code]
        num = {"hb": "9", "crea": "1.5", "ast": "40", "plt": "100", "temp": "38", "dna": "20", "weight": "50",
               "height": "1.5", "ecog": "1", "qtc": "0.45", "lifeexp": "84"}[code]
        return f"({sel} in {unit}) {self.c(['>=', '<', '>', '<='])} {num}"

    def arith(self, depth):
        k = self.r.randrange(9)
        if k == 0:
            return f"(latest weight {self.window(depth)} in kg) / 2 {self.c(['>', '<='])} {self.c(['25', '24.95', '30'])}"
        if k == 1:
            return f"(latest hb {self.window(depth)} in g/dL) * 10 {self.c(['>=', '<'])} {self.c(['90', '100'])}"
        if k == 2:
            return f"(latest weight {self.window(depth)} in kg) - 2 * 3 {self.c(['>', '<='])} 44"
        if k == 3:
            return f"-(latest temp {self.window(depth)} in Cel) {self.c(['<', '>='])} -38"
        if k == 4:
            return (f"(latest crea {self.window(depth)} in umol/L) / (latest crea {self.window(depth)} in mg/dL) "
                    f"{self.c(['>', '<'])} 88")
        if k == 5:
            return f"(latest weight {self.window(depth)} in kg) x (1.2 if {self.cond(depth + 1)} else 1) > 60"
        if k == 6:
            return f"1.5 x 1.2 * (latest ecog {self.window(depth)} in 1) {self.c(['>=', '<'])} 1.8"
        if k == 7:
            return f"(latest lifeexp {self.window(depth)} in d) + 7 {self.c(['>=', '<'])} 91"
        return f"(latest qtc {self.window(depth)} in s) - 0.45 {self.c(['>', '<='])} 0"

    def derived(self, depth):
        k = self.r.randrange(7)
        if k == 0:
            return f"crcl {self.c(['>=', '<', '>', '<='])} {self.c(['50 mL/min', '3 L/h', '60 mL/min', '0.83 mL/s'])}"
        if k == 1:
            return f"bmi {self.c(['between 18.5 kg/m2 and 30 kg/m2', '>= 30 kg/m2', '< 18.5 kg/m2'])}"
        if k == 2:
            return f"{self.c(['30 mL/min', '1.8 L/h'])} <= crcl {self.c(['<', '<='])} {self.c(['60 mL/min', '120 mL/min'])}"
        if k == 3:
            return f"recorded {self.c(['crcl', 'bmi', 'crcl_l'])}"
        if k == 4:
            return f"crcl_l {self.c(['>=', '<'])} {self.c(['3 L/h', '50 mL/min'])}"
        if k == 5:
            return self.c([f"crcl in mL/min {self.c(['>=', '<'])} {self.c(['50', '60'])}",
                           f"crcl {self.c(['in', 'not in'])} {{50 mL/min, 3 L/h}}",
                           f"(crcl in mL/min) - (age at screening in a) {self.c(['>', '<='])} 0",
                           f"bmi * 2 {self.c(['>=', '<'])} 50 kg/m2"])
        return f"crcl >= ({self.c(['60 mL/min', '3 L/h'])} if {self.cond(depth + 1)} else {self.c(['50 mL/min', '30 mL/min'])})"

    def age(self):
        a = self.c(ANCHORS)
        unit, lo, hi = self.c([("a", 18, 75), ("mo", 216, 900), ("wk", 939, 3913), ("d", 6574, 27393)])
        k = self.r.randrange(5)
        if k == 0:
            return f"age at {a} {self.c(['>=', '<', '>', '<=', '=', '!='])} {lo} {unit}"
        if k == 1:
            return f"{lo} {unit} <= age at {a} < {hi} {unit}"
        if k == 2:
            return f"age at {a} in {unit} {self.c(['>=', '<'])} {lo}"
        if k == 3:
            return f"(age at {a} in a) * 12 {self.c(['>=', '<'])} 216"
        return f"age at {a} {self.c(['>=', '<'])} ({lo} {unit} if {self.cond(3)} else {hi} {unit})"

    def dates(self):
        a, b = self.c(ANCHORS), self.c(ANCHORS)
        d = self.c(["1 mo", "6 mo", "1 a", "2 wk", "30 d", "12 months"])
        return self.c([f"{a} {self.c(['<=', '<', '=', '>='])} {b} {self.c(['+', '-'])} {d}",
                       f"{a} - {d} {self.c(['<', '>='])} {b}", f"day0 {self.c(['<', '>=', '='])} {a}",
                       f"{a} + {d} - {self.c(['1 d', '2 wk'])} >= {b}"])

    # ------------------------------------------------------------------ items
    def treat_filter(self, depth):
        t = self.c(["daily_dose as pred > 10 mg", "daily_dose as pred <= 7.5 mg", "daily_dose as pred >= 0.01 g",
                    "route is oral", "route not in {oral, inhaled}", "purpose is not prophylaxis",
                    "purpose is replacement", "half_life > 1 d", "half_life <= 36 h", "recorded half_life",
                    "start > first_dose", "start >= screening - 6 mo", "end <= screening - 4 wk", "recorded end",
                    "class in {steroid}", "end >= start + 14 d", "10 mg < daily_dose as pred <= 20 mg",
                    "daily_dose as pred between 5 mg and 10 mg"])
        if depth < 3 and self.p(0.25):
            return f"({t} {self.c(['and', 'or'])} {self.treat_filter(depth + 1)})"
        if depth < 3 and self.p(0.1):
            return f"({t} and {self.cond(depth + 1)})"
        return t

    def washout(self, depth):
        d = self.c(["wash", "shorter of 28 d and 5 x half_life", "longer of 5 x half_life and 2 wk",
                    "5 x half_life", "2.5 x half_life", "half_life", "(5 x half_life if recorded half_life else 21 d)",
                    "(45 d if class in {immuno} else 28 d)", "shorter of 1 mo and 3 x half_life",
                    "longer of 6 mo and half_life", "28 d", "(2 wk if route is oral else 4 wk)"])
        return d

    def treatment(self, depth):
        names = ", ".join(self.r.sample(["chemo", "steroid", "immuno"], self.c([1, 1, 2])))
        q = self.c(["any", "any", "no", "every", "at least 2", "at most 1"])
        ref = self.c(["first_dose", "screening", "enrollment", "(first_dose - 1 d)"])
        w = self.c([f"within {self.washout(depth)} before {ref}", f"within {self.washout(depth)} before {ref}",
                    f"within {self.washout(depth)} after {ref}", f"on or after {ref}", f"on or before {ref}",
                    f"between screening and first_dose", "ever", ""])
        text = f"{q} {names} {w}".rstrip()
        if self.p(0.6) or q == "every":
            fil = self.treat_filter(depth)
            if "course" not in fil and self.p(0.2) and (w.startswith("within") or w.startswith("on or before")) \
                    and w.split()[-1] in ANCHORS:
                fil = self.c(["course <= 7 d", "course > 2 wk"])
            text += f" {self.c(['where', 'unless'])} {fil if fil.startswith('(') or ' ' not in fil else '(' + fil + ')'}"
        return text

    def item_query(self, depth):
        if self.p(0.25):
            return self.treatment(depth)
        if self.p(0.3):
            q = self.c(["any", "no", "every"])
            code, cond = self.c([("hb", "value < 9 g/dL"), ("crea", "value > 1.5 x ULN"), ("dna", "value > LLOQ"),
                                 ("temp", "value > 100.4 [degF]"), ("ast", "value between LLN and ULN"),
                                 ("plt", "value >= 100 10*3/uL"), ("hbsag", "value is positive"),
                                 ("weight", "(value in kg) > 50")])
            return f"{q} {code} {self.window(depth)} where ({cond})"
        if self.p(0.25):
            q = self.c(["any", "no", "at least 1"])
            return (f"{q} surgery {self.window(depth)} {self.c(['where', 'unless'])} "
                    f"({self.c(['intent is palliative', 'fractions = 1', 'fractions > 2.5', 'intent in {curative}', 'date >= screening - 6 mo'])})")
        names = ", ".join(self.r.sample(["tox", "infection"], self.c([1, 1, 2])))
        q = self.c(["any", "no", "every", "at least 2", "at most 1", "any active"])
        f = self.c(["grade >= 3", "grade in {3, 4}", "1 <= grade < 3", "grade between 2 and 4", "kind is severe",
                    "kind not in {mild}", "size > 1 cm", "size <= 10 mm", "0.5 cm <= size < 20 mm", "size in {10 mm}",
                    "status is active", "status is not resolved", "recorded grade", "recorded size",
                    "onset >= screening - 12 mo", "end <= first_dose - 6 mo", "onset + 1 mo > screening"])
        if depth < 3 and self.p(0.25):
            f = f"{f} {self.c(['and', 'or'])} {self.cond(depth + 1)}"
        text = f"{q} {names} {self.window(depth)}".rstrip()
        if self.p(0.75) or q == "every":
            text += f" {self.c(['where', 'unless'])} ({f})"
        if self.p(0.12):  # a window measured from the item's own dates (calendar months)
            inner = self.c([f"any chemo within {self.c(['6 mo', '1 a', '28 d'])} before onset",
                            f"any surgery within {self.c(['1 mo', '48 h', '2 wk'])} after onset",
                            f"no infection between onset and (onset + {self.c(['1 mo', '6 mo'])})",
                            f"any hb within {self.c(['1 mo', '7 d'])} after onset where (value < 9 g/dL)",
                            "any chemo on or after end where (daily_dose as pred > 10 mg)"])
            text = f"{q} tox {self.window(depth)} where ({inner})".replace(" ever where", " where") if self.p(0.5) else \
                f"{q} tox where ({inner})"
        elif self.p(0.12):
            text = f"{q} {names} within ({self.c(['7 d', '1 mo'])} if grade >= 3 else {self.c(['6 mo', '1 a'])}) before {self.c(ANCHORS)}"
        return text

    # ------------------------------------------------------------------ composition
    def atom(self, depth=0):
        k = self.r.randrange(14 if depth < 3 else 8)
        if k in (0, 1, 2):
            return self.latest(depth)
        if k == 3:
            return self.derived(depth)
        if k == 4:
            return self.arith(depth)
        if k == 5:
            return self.age()
        if k == 6:
            return self.dates()
        if k == 7:
            return self.c(["consent", "sex is female", "recorded sex", "not consent"])
        if k in (8, 9, 10):
            return self.item_query(depth)
        if k == 11:  # a record value inside a filter of a condition query
            return f"{self.c(['any', 'no', 'every'])} tox {self.window(depth)} {self.c(['where', 'unless'])} ({self.atom(depth + 1)})"
        if k == 12:
            return self.treatment(depth)
        return self.derived(depth)

    def expr(self, depth=0):
        if depth >= 3:
            return self.atom(depth)
        return bool_expr(self.r, ["atom"] * 3 + list(COMBINATORS), lambda _: self.atom(depth),
                         lambda: self.expr(depth + 1), WHOLE)

    def criterion(self, i):
        kind = self.c(["inclusion", "exclusion"])
        lets = []
        body = self.expr()
        r = self.r.random()
        if r < 0.2:
            lets.append(f"    let x{i} = {self.expr(1)}\n")
            body = f"(x{i} {self.c(['and', 'or'])} {body})"
        elif r < 0.3:  # a local limit and a local selection
            lets.append(f"    let l{i} = ({self.c(['2.5 x ULN', 'ULN'])} if {self.cond(1)} else {self.c(['1.5 x ULN', '40 U/L'])})\n")
            lets.append(f"    let s{i} = latest ast {self.window(1)}\n")
            body = f"(s{i} <= l{i} {self.c(['and', 'or'])} {body})"
        elif r < 0.33:  # a local name shadowing a global one
            lets.append(f"    let hb_lim = {self.c(['110 g/L', '(9 g/dL if sex is female else 10 g/dL)'])}\n")
            body = f"(latest hb {self.window(1)} >= hb_lim {self.c(['and', 'or'])} {body})"
        elif r < 0.38:
            lets.append(f"    let w{i} = {self.c(['longer of 5 x half_life and 2 wk', '(45 d if class in {immuno} else 3 x half_life)'])}\n")
            body = f"({body} or any chemo, immuno within w{i} before first_dose)"
        verb = "require" if kind == "inclusion" else "exclude when"
        return f'{kind} c{i} {{\n    ref R{i}\n    quote "q"\n' + "".join(lets) + f"    {verb} {body}\n}}\n"


def write_trial(seed: int, n: int) -> list[str]:
    g = Gen(random.Random(seed))
    return [g.criterion(i) for i in range(n)]


# a global `let` reading a treatment's half-life is refused when no query uses it (checked
# outside any query): it is declared only when some criterion uses it
WASH = "let wash = shorter of 28 d and 5 x half_life\n"


def _vocab(crits) -> str:
    return VOCAB + (WASH if any(re.search(r"\bwash\b", c) for c in crits) else "")


def compile_trial(crits: list[str]):
    """Compile; drop the criteria the compiler refuses (a positioned diagnostic inside their
    lines) and compile again. Returns (result, kept criteria, refusals)."""
    refused = []
    for _ in range(6):
        vocab = _vocab(crits)
        text = HEAD + vocab + "".join(crits)
        res = compile_sources({"v.elig": text})
        for d in res.diagnostics:
            assert_positioned(d, {"v.elig": text})
        if res.ok:
            return res, crits, refused
        line = len((HEAD + vocab).splitlines())
        spans = []
        for c in crits:
            n = c.count("\n")
            spans.append((line + 1, line + n))
            line += n
        bad = set()
        for d in res.diagnostics:
            if d.severity != "error":
                continue
            hit = [i for i, (lo, hi) in enumerate(spans) if lo <= d.span.line <= hi]
            assert hit, f"a diagnostic outside the generated criteria: {d.message} at {d.span}\n{text}"
            bad |= set(hit)
            refused.append((crits[hit[0]], d.message))
        crits = [c for i, c in enumerate(crits) if i not in bad]
        if not crits:
            return None, [], refused
    raise AssertionError("still refused after dropping the refused criteria")


# ---------------------------------------------------------------------- records


def _date_near(rec: dict, rng: random.Random):
    """A date on, or a day off, a window end around one of the record's anchors (calendar
    months clamped to the month's end), or now and then an unusable one."""
    good = []
    for v in (rec.get("anchors") or {}).values():
        try:
            good.append(datetime.date.fromisoformat(v))
        except (TypeError, ValueError):
            pass
    if not good or rng.random() < 0.03:
        return rng.choice(["2026-02-30", "bad", None, "2026-01-15"])
    a = rng.choice(good)
    k = rng.choice([0, 1, 7, 14, 2, "mo", "6mo", "a", "3mo"])
    sign = rng.choice([-1, -1, 1])
    if isinstance(k, str):
        months = {"mo": 1, "3mo": 3, "6mo": 6, "a": 12}[k] * sign
        y, m = divmod(a.year * 12 + a.month - 1 + months, 12)
        b = datetime.date(y, m + 1, min(a.day, calendar.monthrange(y, m + 1)[1]))
    else:
        b = a + datetime.timedelta(days=sign * k)
    return (b + datetime.timedelta(days=rng.choice([0, 0, 1, -1]))).isoformat()


def _readings(rec: dict, program, hints: Hints, rng: random.Random) -> None:
    """More readings than records_for writes (most criteria read several observations): each
    observation, now and then, gets one or two readings at a limit (in any unit the limit was
    folded to) or at a reference-limit multiple, dated at a window edge."""
    obs = rec.setdefault("observations", [])
    if not isinstance(obs, list):
        return
    for el in program.observations:
        for _ in range(rng.choice([0, 1, 1, 2])):
            o = {"code": el.name, "date": _date_near(rec, rng)}
            if el.kind == "qualitative":
                o["value"] = rng.choice(list(el.values) * 3 + ["Positive"])
            else:
                lims = sorted(hints.limits[el.name], key=str)
                unit, lim = rng.choice(lims) if lims else (el.unit, Fraction(1))
                o["value"], o["unit"] = rng.choice(_near(lim)), unit
                for which, mult in sorted(hints.ref_multiples[el.name], key=str):
                    if rng.random() < 0.85:
                        ref = rng.choice([1, 1.2, 40, 0.5, 20])
                        o[which] = ref
                        if rng.random() < 0.6:
                            o["value"] = _as_json_number(mult * Fraction(repr(ref))
                                                         + rng.choice([0, 0, Fraction(1, 100), -Fraction(1, 100)]))
                if unit == "1" and rng.random() < 0.5:
                    del o["unit"]
            obs.append(o)


# record numbers at the edges of binary floating point and of 128-bit fractions
EXTREMES = [1e-300, 5e-324, 2.5e-320, 1e300, 1.7e308, -1e-300, 1.5e-200, 12345678901234567890123456789,
            10 ** 30, 98765432109876543210987654321098765]


def _extremes(rec: dict, rng: random.Random) -> None:
    """Readings at extreme exponents: in one record in six the weights and creatinines scaled by
    10^2k and the heights by 10^k (k from -160 to 140: the BMI and the clearance keep their exact
    value, often at a limit, far beyond 128-bit fractions and near or below the subnormals), and
    a few values replaced by EXTREMES."""
    obs = [o for o in rec.get("observations") or [] if isinstance(o, dict) and type(o.get("value")) in (int, float)]
    if obs and rng.random() < 0.17:
        k = rng.choice([-160, -150, -120, 100, 140])
        for o in obs:
            j = {"weight": 2 * k, "crea": 2 * k, "height": k}.get(o.get("code"))
            if j is not None and (isinstance(o["value"], int) or math.isfinite(o["value"])):  # (records_for draws NaN and infinities too)
                with contextlib.suppress(OverflowError):  # (beyond doubles: the reading stays as it was)
                    o["value"] = float(Fraction(repr(o["value"])) * Fraction(10) ** j)
    for o in obs:
        if rng.random() < 0.03:
            o["value"] = rng.choice(EXTREMES)


def _tweak(rec: dict, rng: random.Random, program=None, hints=None) -> dict:
    """What records_for does not write: more readings at limits and window edges, measured
    attributes as quantities in mm or cm (at the 1 cm / 10 mm limits), grades off the scale,
    readings at extreme exponents (_extremes),
    codes the vocabulary does not know, code-less items and readings, anchors at a month's end
    or on 29 February."""
    anchors = rec.get("anchors")
    if isinstance(anchors, dict) and rng.random() < 0.25:
        day = datetime.date.fromisoformat(rng.choice(["2026-08-31", "2024-02-29", "2026-03-31", "2025-02-28"]))
        for k in list(anchors):
            if isinstance(anchors[k], str) and anchors[k][:1] == "2":
                anchors[k] = (day + datetime.timedelta(days=rng.choice([0, 0, -1, 1, -7, 30]))).isoformat()
    if program is not None:
        _readings(rec, program, hints, rng)
    _extremes(rec, rng)
    for o in rec.get("observations") or []:
        if isinstance(o, dict) and rng.random() < 0.03:
            o.pop("code", None) if rng.random() < 0.7 else o.update(code=rng.choice(["", 5, "unknown_lab"]))
    for c in rec.get("conditions") or []:
        if isinstance(c, dict) and isinstance(c.get("attributes"), dict) and rng.random() < 0.8:
            c["attributes"]["size"] = rng.choice([{"value": 10, "unit": "mm"}, {"value": 1, "unit": "cm"},
                                                  {"value": 1.01, "unit": "cm"}, {"value": 9.9, "unit": "mm"},
                                                  {"value": 0.5, "unit": "cm"}, {"value": 20, "unit": "mm"},
                                                  {"value": 2, "unit": "kg"}, {"value": 3}, 12,
                                                  {"value": "x", "unit": "mm"}])
        if isinstance(c, dict) and isinstance(c.get("attributes"), dict) and rng.random() < 0.2:
            c["attributes"]["grade"] = rng.choice([2.5, 7, 0, "3", 3.0, 5])
    if rng.random() < 0.2:
        rec.setdefault("observations", []).append({"code": "unknown_lab", "value": 1, "unit": "g/L",
                                                   "date": rec.get("anchors", {}).get("screening")})
    return _uncoded(rec, rng)


def check_trial(data, seed: int, tmp_path, n_crits: int, n_records: int, stats: dict, sql: bool = True):
    res, crits, refused = compile_trial(write_trial(seed, n_crits))
    stats["criteria"] = stats.get("criteria", 0) + len(crits)
    stats.setdefault("refused", []).extend(refused)
    if res is None:
        return
    text = HEAD + _vocab(crits) + "".join(crits)
    try:
        mod = types.ModuleType(f"gen_values_{seed}")
        exec(compile(res.python, f"<gen_values_{seed}>", "exec"), mod.__dict__)
    except Exception as exc:  # a module that does not import is a defect
        raise AssertionError(f"seed {seed}: the module does not import: {exc!r}\n{text}") from exc
    interp = Interpreter(res.program)
    hints = Hints(res.program)
    rng = random.Random(seed)
    recs = [_tweak(data.draw(records_for(res.program, hints)), rng, res.program, hints) for _ in range(n_records)]
    for i, rec in enumerate(recs):
        rec["id"] = f"V{i}"
    pys = []
    for rec in recs:
        try:
            diffs = compare(mod, interp, rec)
        except Exception as exc:
            raise AssertionError(f"seed {seed}: evaluating raised {exc!r}\nrecord {json.dumps(rec, default=str)}\n{text}") from exc
        assert not diffs, f"seed {seed}: " + "\n".join(diffs) + "\nrecord: " + json.dumps(rec, default=str) + "\n" + text
    lines = [json.dumps(r, default=str) for r in recs]
    pys = [mod.evaluate_json(t) for t in lines]
    for p in pys:
        assert p["status"] != "error" or "internal" not in str(p.get("error")), p
        stats.setdefault("outcomes", set()).update(c["outcome"] for c in p.get("criteria", []))
    if not sql:
        return
    for relational in (True, False):
        diffs, refused = sql_form_diffs(res, mod, pys, lines, tmp_path, relational)
        stats.setdefault("sql_refused", []).extend(p for ps in refused.values() for p in ps)
        if diffs is None:
            continue
        if diffs:
            bad = {d[2] for d in diffs}
            shown = [c for c in crits if re.match(r"\w+ (\w+) ", c).group(1) in bad]
            recids = {d[1] for d in diffs}
            raise AssertionError(f"seed {seed}\n" + "\n".join(map(str, diffs[:10])) + "\n" + "".join(shown)
                                 + "\nrecords: " + "\n".join(x for x, r in zip(lines, recs) if r["id"] in recids))


NOSHRINK = [Phase.explicit, Phase.reuse, Phase.generate]  # a shrink recompiles the trial: slow
# (records_for draws much: more than ~15 records per example overruns hypothesis's buffer and
# the example is drawn again and again; more examples of 14 records instead)


_FAST = {"examples": 0}


@settings(DIFF, max_examples=_n(6), phases=NOSHRINK)
@given(seed=st.integers(0, 10 ** 6), data=st.data())
def test_generated_value_trials_agree(seed, data, tmp_path_factory):
    """Six generated trials, the module against the IR interpreter (about 0.3 CPU s each); the
    third (hypothesis's first is its simplest: records without readings) through both DuckDB
    forms too (about 4 CPU s)."""
    _FAST["examples"] += 1
    sql = _FAST["examples"] == 3
    check_trial(data, seed, tmp_path_factory.mktemp("val"), 5 if sql else 8, 14, {}, sql=sql)


@pytest.mark.slow
@settings(DIFF, max_examples=_n(100), phases=NOSHRINK)
@given(seed=st.integers(0, 10 ** 6), data=st.data())
def test_many_generated_value_trials_agree_module_and_interpreter(seed, data, tmp_path_factory):
    check_trial(data, seed, tmp_path_factory.mktemp("val"), 10, 14, {}, sql=False)


@pytest.mark.slow
@settings(DIFF, max_examples=_n(8), phases=NOSHRINK)
@given(seed=st.integers(0, 10 ** 6), data=st.data())
def test_many_generated_value_trials_agree_in_duckdb(seed, data, tmp_path_factory):
    check_trial(data, seed, tmp_path_factory.mktemp("val"), 10, 14, {})


def test_the_generator_writes_mostly_valid_rules():
    """Most of what the writer composes compiles: at least 4 criteria in 5 over 4 trials."""
    kept = total = 0
    for s in range(4):
        crits = write_trial(s, 10)
        res, ok, refused = compile_trial(crits)
        total += len(crits)
        kept += len(ok)
    assert kept >= 0.8 * total, (kept, total)


# ---------------------------------------------------------------------- defects found, kept fixed


def outcomes_everywhere(body: str, recs: list[dict], tmp_path, vocab: str = "") -> list[tuple]:
    """The outcome of `inclusion c0 { require BODY }` (this file's vocabulary) on each record:
    (module, interpreter, DuckDB relational, DuckDB lambda)."""
    c = f'inclusion c0 {{\n    ref R0\n    quote "q"\n    require {body}\n}}\n'
    res = compile_sources({"v.elig": HEAD + VOCAB + vocab + c})
    assert res.ok, [d.message for d in res.diagnostics]
    mod = types.ModuleType("gen_values_fixed")
    exec(compile(res.python, "<gen_values_fixed>", "exec"), mod.__dict__)
    interp = Interpreter(res.program)
    out = [[mod.evaluate(r)["criteria"][0]["outcome"], interp.evaluate(r)["criteria"][0]["outcome"]] for r in recs]
    lines = [json.dumps(r) for r in recs]
    for relational in (True, False):
        for o, r in zip(out, _sql(res, mod, lines, tmp_path, relational, {"c0"})):
            o.append(r["criteria"][0]["outcome"])
    return [tuple(o) for o in out]


def outcomes_in_python(body: str, recs: list[dict]) -> list[tuple]:
    """(module, interpreter) outcomes of `inclusion c0 { require BODY }` on each record."""
    res = compile_sources({"v.elig": HEAD + VOCAB + f'inclusion c0 {{\n    ref R0\n    quote "q"\n    require {body}\n}}\n'})
    assert res.ok, [d.message for d in res.diagnostics]
    mod = types.ModuleType("gen_values_py")
    exec(compile(res.python, "<gen_values_py>", "exec"), mod.__dict__)
    interp = Interpreter(res.program)
    return [(mod.evaluate(r)["criteria"][0]["outcome"], interp.evaluate(r)["criteria"][0]["outcome"]) for r in recs]


def _rec(**kw) -> dict:
    rec = {"format": 1, "id": "F", "sex": "male", "birth_date": "1970-01-01",
           "anchors": {"screening": "2026-01-05", "enrollment": "2026-01-10", "first_dose": "2026-01-15"},
           "observations": [], "conditions": [], "treatments": [], "procedures": [], "facts": {}}
    rec.update(kw)
    return rec


def _obs(code, value, unit=None, date="2026-01-12", **kw):
    o = {"code": code, "value": value, "date": date, **kw}
    if unit is not None:
        o["unit"] = unit
    return o


def test_fixed_a_derived_value_divided_by_zero_is_not_recorded(tmp_path):
    """`recorded bmi` with a height of 0 cm: the formula divides by zero, so the value is not
    usable and `recorded` is false. The module's float pass gave NaN (the divisor 0.0 might be a
    rounded tiny number) and read NaN as a recorded value; the interpreter and both DuckDB forms
    said not recorded. Generated trial, seed 5213."""
    w = _obs("weight", 70, "kg")
    zero, tall = _rec(observations=[w, _obs("height", 0, "cm")]), _rec(observations=[w, _obs("height", 170, "cm")])
    assert outcomes_everywhere("recorded bmi", [zero, tall], tmp_path) == [("fail",) * 4, ("pass",) * 4]
    assert outcomes_in_python("bmi >= 30 kg/m2", [zero, tall]) == [("unknown",) * 2, ("fail",) * 2]
    assert outcomes_in_python("recorded ((latest weight ever in kg) / (latest height ever in m))",
                              [zero, tall]) == [("fail",) * 2, ("pass",) * 2]


def test_fixed_an_age_limit_conditional_in_months_weeks_or_days(tmp_path):
    """`age at screening >= (6 mo if sex is male else 12 mo)` was refused ("age in days, weeks
    or months is compared with a fixed limit") though the same in years was accepted and
    docs/language.md gives conditional limits on sex; a conditional of whole constants in one
    unit is now accepted in every age unit, and every side counts completed months."""
    born = ["2025-07-05", "2025-01-05", "2025-07-06"]  # 6 months, 12 months, not 6 months on 2026-01-05
    recs = [_rec(birth_date=b, **kw) for b in born for kw in ({}, {"sex": "female"}, {"sex": None})]
    assert outcomes_everywhere("age at screening >= (6 mo if sex is male else 12 mo)", recs, tmp_path) == [
        (o,) * 4 for o in ("pass", "fail", "unknown", "pass", "pass", "pass", "fail", "fail", "fail")]
    assert outcomes_everywhere("age at screening < (26 wk if sex is male else 364 d)", recs[:3], tmp_path) == [
        (o,) * 4 for o in ("fail", "pass", "unknown")]
    # a fractional limit is still refused, at its position
    c = 'inclusion c0 {\n    ref R0\n    quote "q"\n    require age at screening >= (6 mo if sex is male else 183 d)\n}\n'
    [d] = compile_sources({"v.elig": HEAD + VOCAB + c}).diagnostics
    assert "whole units" in d.message and d.span.line == (HEAD + VOCAB).count("\n") + 4


@pytest.mark.xfail(strict=True, raises=AssertionError, reason="open: alternatives from one unknown condition are "
                   "combined as if independent (a derived value's sex factor and a sex-specific limit)")
def test_open_the_same_unknown_sex_in_a_formula_and_in_its_limit():
    """`crcl >= (50 mL/min if sex is male else 42.5 mL/min)` with sex not recorded, crcl 50 mL/min
    for a man and 42.5 (x 0.85) for a woman: true for either sex, so records.md says pass
    ("unknown only where the missing data could still change it"); every side (module,
    interpreter, both DuckDB forms) pairs the man's clearance with the woman's limit too and
    says unknown. Found by hand next to the generated trials."""
    body = "crcl >= (50 mL/min if sex is male else 42.5 mL/min)"
    src = HEAD + VOCAB + f'inclusion c0 {{\n    ref R0\n    quote "q"\n    require {body}\n}}\n'
    res = compile_sources({"v.elig": src})
    mod = types.ModuleType("open_sex")
    exec(compile(res.python, "<open_sex>", "exec"), mod.__dict__)
    rec = _rec(sex=None, observations=[_obs("weight", 60, "kg", date="2026-01-10"), _obs("crea", 1.4, "mg/dL", date="2026-01-10")])
    assert mod.evaluate(rec)["criteria"][0]["outcome"] == "pass"


@pytest.mark.slow  # (the script's size is checked in the fast suite: the next test)
def test_fixed_an_observation_query_in_an_item_filter_is_written_once(tmp_path):
    """`any tox where (any hb within 7 d after onset where (value < 9 g/dL))`: inside an item's
    filter the readings' list of the observation query was written out at each of its seven
    uses (a 309 kB script; DuckDB took 13.4 CPU s to bind it whatever the number of records, 4.4
    once bound with a lambda). Its script is now under 180 kB (the list is bound three times: for the
    truth, the missing codes and the review test, which names no code) and every side agrees."""
    body = "any tox where (any hb within 7 d after onset where (value < 9 g/dL))"
    res = compile_sources({"v.elig": HEAD + VOCAB + f'inclusion c0 {{\n    ref R0\n    quote "q"\n    require {body}\n}}\n'})
    for relational in (True, False):
        assert len(screen.prepare_script(res.program, res.lowered, only={"c0"}, relational=relational).text()) < 180_000
    tox = [{"code": "tox", "onset": "2026-01-01", "status": "active"}]
    recs = [_rec(conditions=tox, observations=[_obs("hb", v, u, date=d)]) for v, u, d in
            [(8, "g/dL", "2026-01-08"), (8, "g/dL", "2026-01-09"), (95, "g/L", "2026-01-02"), (8, "g/dL", "bad")]]
    recs.append(_rec(conditions=tox))
    assert outcomes_everywhere(body, recs, tmp_path) == [(o,) * 4 for o in ("pass", "unknown", "fail", "unknown", "unknown")]


def test_fixed_an_observation_query_in_an_item_filter_script_size():
    """The fast half of the test above: the script of the nested observation query stays under
    180 kB in both forms (it was 309 kB, 13.4 CPU s for DuckDB to bind; 159 kB before numbers
    carried a decimal exponent, 167 kB with it: the field of 776 constants)."""
    body = "any tox where (any hb within 7 d after onset where (value < 9 g/dL))"
    res = compile_sources({"v.elig": HEAD + VOCAB + f'inclusion c0 {{\n    ref R0\n    quote "q"\n    require {body}\n}}\n'})
    for relational in (True, False):
        assert len(screen.prepare_script(res.program, res.lowered, only={"c0"}, relational=relational).text()) < 180_000
