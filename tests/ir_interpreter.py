"""A second, independent evaluator of Elig rules: it interprets the checked IR
(``compiler.ir``: ``compiled.program``) directly on a patient record.

Written from the contract (result and record formats in ``docs/records.md``, the semantics and
the SM3321 readings it summarises) and ``docs/language.md`` only. It does not import or copy
``compiler/runtime.py`` or the Python backend: the point is to have two independent ways of
evaluating the same rules, so that tests can compare them (tests/test_differential.py).

Design (deliberately different from the runtime's):

* Truth values are ``Tri`` objects (True / False / None = unknown) with a "review" flag (the
  unknown rests only on unrecorded judgments) and the codes that are missing.
* Numbers and dates are *sets of possible exact values* (``fractions.Fraction`` / ordinals),
  or ``None`` when anything is possible. A comparison is decided when every possible value
  gives the same answer ("unknown only where the missing data could still change the outcome").
* Durations are intervals of days ``(lo, hi)`` (``hi`` may be infinite): a half-life that is not
  recorded is only known to lie in [0, inf), and a window is decided wherever the interval
  decides it.
* A most-recent selection is a set of candidate readings: an item whose date is unusable
  "could lie anywhere in time", so it is a candidate wherever it could be the most recent one.

Only ``outcome`` per criterion and ``status`` are meant to be compared; reasons are not built.

It gives the spec's answer only: where the generated evaluator differed, the runtime was fixed
(tests/test_differential.py keeps each case as a `test_fixed_*` regression test).
"""

from __future__ import annotations

import datetime
import functools
import math
import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Optional

from compiler import ir as I

INF = math.inf
SET_CAP = 256  # beyond this many possible values, a number is simply unknown

# ---------------------------------------------------------------------------------- three-valued


@dataclass(frozen=True)
class Tri:
    v: Optional[bool]
    review: bool = False
    missing: tuple = ()


TRUE = Tri(True)
FALSE = Tri(False)


def unknown(*missing, review=False) -> Tri:
    return Tri(None, review, tuple(dict.fromkeys(m for m in missing if m)))


def _merge(parts) -> tuple:
    out = []
    for p in parts:
        for m in p.missing:
            if m not in out:
                out.append(m)
    return tuple(out)


def k_and(parts) -> Tri:
    parts = list(parts)
    if any(p.v is False for p in parts):
        return FALSE
    unk = [p for p in parts if p.v is None]
    if unk:
        return Tri(None, all(p.review for p in unk), _merge(unk))
    return TRUE


def k_or(parts) -> Tri:
    parts = list(parts)
    if any(p.v is True for p in parts):
        return TRUE
    unk = [p for p in parts if p.v is None]
    if unk:
        return Tri(None, all(p.review for p in unk), _merge(unk))
    return FALSE


def k_not(p: Tri) -> Tri:
    return p if p.v is None else (FALSE if p.v else TRUE)


def k_if(c: Tri, a: Tri, b: Tri) -> Tri:
    if c.v is True:
        return a
    if c.v is False:
        return b
    if a.v is not None and a.v == b.v:
        return a
    unk = [c] + [x for x in (a, b) if x.v is None]
    return Tri(None, all(p.review for p in unk), _merge(unk))


def from_truths(truths: set, missing=()) -> Tri:
    """A leaf decided when every possible world gives the same answer."""
    if truths == {True}:
        return TRUE
    if truths == {False}:
        return FALSE
    return unknown(*missing)


# ---------------------------------------------------------------------------------- record values


class Bad:
    """An unusable field."""

    def __init__(self, why: str):
        self.why = why

    def __repr__(self):
        return f"Bad({self.why!r})"


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")


def parse_date(v):
    """An ISO 8601 calendar date (ASCII digits, YYYY-MM-DD) as an ordinal, else Bad."""
    if not isinstance(v, str) or not _ISO_DATE.match(v):
        return Bad("not an ISO date")
    try:
        return datetime.date(int(v[0:4]), int(v[5:7]), int(v[8:10])).toordinal()
    except ValueError:
        return Bad("not a calendar date")


def parse_number(v):
    """A JSON number (not a boolean, finite) as its exact decimal value, else Bad."""
    if isinstance(v, bool):
        return Bad("boolean")
    if isinstance(v, int):
        return Fraction(v)
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return Bad("not finite")
        return Fraction(repr(v))  # the shortest decimal that reads back as v: the value as written
    return Bad("not a number")


ORD_MAX = datetime.date.max.toordinal()  # 9999-12-31; day arithmetic goes on beyond it, unbounded


def is_leap(y: int) -> bool:
    return y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)


def month_shift(ordinal: int, months: int):
    """The same day ``months`` calendar months away, clamped to month end; None off the calendar."""
    d = datetime.date.fromordinal(ordinal)
    total = d.year * 12 + (d.month - 1) + months
    y, m = divmod(total, 12)
    m += 1
    if not 1 <= y <= 9999:
        return None
    last = [31, 29 if is_leap(y) else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1]
    return datetime.date(y, m, min(d.day, last)).toordinal()


def completed_years(birth: int, at: int) -> int:
    b = datetime.date.fromordinal(birth)
    a = datetime.date.fromordinal(at)
    bday = (b.month, b.day)
    if bday == (2, 29) and not is_leap(a.year):
        bday = (3, 1)  # born on 29 February: the birthday is 1 March in a common year
    return a.year - b.year - (1 if (a.month, a.day) < bday else 0)


def completed_units(birth: int, at: int, unit: str) -> int:
    """Completed days, weeks or calendar months from birth to `at`: the n-th month is complete
    on the day whose date n months earlier (clamped to month end) is not before the birth."""
    if unit == "d":
        return at - birth
    if unit == "wk":
        return (at - birth) // 7
    if at < birth:
        return -1
    n = 0
    while True:
        back = month_shift(at, -(n + 1))
        if back is None or back < birth:
            return n
        n += 1


# half-life units a record may use (docs/units.md): exact days; mo and a by UCUM's mean values
_HALF_LIFE_DAYS = {
    "d": Fraction(1), "h": Fraction(1, 24), "min": Fraction(1, 1440), "s": Fraction(1, 86400),
    "wk": Fraction(7), "mo": Fraction(487, 16), "a": Fraction(1461, 4),
}


class RecordError(Exception):
    pass


class Item:
    """A condition, procedure or treatment of the record."""

    def __init__(self, kind, index, raw):
        self.kind = kind
        self.index = index
        self.raw = raw
        self.code = raw.get("code")
        self.codeless = False
        if kind == "procedure":
            self.start = self._date(raw.get("date"))
            self.ends = [self.start]
        elif kind == "condition":
            self.start = self._date(raw.get("onset"))
            st = raw.get("status")
            self.status = st if st in ("active", "resolved") else Bad("status")
            end = raw.get("end")
            if end is not None:
                self.ends = [self._date(end)]
            elif self.status == "active":
                self.ends = [INF]
            elif self.status == "resolved":
                self.ends = [self.start]  # a resolved condition without end ended on its onset
            else:
                self.ends = [INF, self.start]
        else:  # treatment
            self.start = self._date(raw.get("start"))
            end = raw.get("end", "absent")  # null: ongoing; no end at all: unknown
            self.ends = [INF] if end is None else [Bad("end")] if end == "absent" else [self._date(end)]
            cl = raw.get("classes")
            if isinstance(cl, list) and all(isinstance(c, str) for c in cl):
                self.classes = frozenset(cl)
            else:
                self.classes = Bad("classes")
        if kind != "procedure" and isinstance(self.start, int):
            # an end before the start contradicts itself: unknown (the start still places the item)
            self.ends = [Bad("end before start") if isinstance(e, int) and e < self.start else e for e in self.ends]
        a = raw.get("attributes")
        self.attrs = {} if a is None else (a if isinstance(a, dict) else Bad("attributes"))

    def _date(self, v):
        return read_date(v)


def _has_code(it: dict) -> bool:
    c = it.get("code")
    return isinstance(c, str) and c.strip() != ""


def _check_attributes(x: Item, attributes) -> None:
    """An attribute value outside its listed values, or off its integer scale, is unusable."""
    if not isinstance(x.attrs, dict):
        return
    for at in attributes:
        v = x.attrs.get(at.name)
        if v is None:
            continue
        if at.type == "enum" and not (isinstance(v, str) and v in at.values):
            x.attrs = {**x.attrs, at.name: Bad("not a listed value")}
        elif at.scale is not None:
            n = parse_number(v)
            lo, hi = at.scale
            if isinstance(n, Bad) or n.denominator != 1 or not lo <= n <= hi:
                x.attrs = {**x.attrs, at.name: Bad("off the scale")}


def read_date(v):
    return Bad("missing") if v is None else parse_date(v)


class Record:
    def __init__(self, program: I.Program, raw):
        if not isinstance(raw, dict):
            raise RecordError("not an object")
        if "format" not in raw:
            raise RecordError("format missing")
        fmt = raw["format"]
        if isinstance(fmt, bool) or not isinstance(fmt, (int, float)) or fmt != 1:  # 1.0 is JSON's 1 too
            raise RecordError("format not 1")
        pid = raw.get("id")
        if not isinstance(pid, str) or not pid.strip():
            raise RecordError("id")
        self.id = pid
        raw = dict(raw)
        for name, typ in (("observations", list), ("conditions", list), ("treatments", list),
                          ("procedures", list), ("anchors", dict), ("facts", dict)):
            if name in raw and not isinstance(raw[name], typ):
                raise RecordError(f"{name} is not a {typ.__name__}")
        self.program = program
        sex = raw.get("sex")
        self.sex = None if sex is None else (sex if sex in ("male", "female") else Bad("sex"))
        b = raw.get("birth_date")
        self.birth = None if b is None else read_date(b)
        self.anchors = {}
        for k, v in raw.get("anchors", {}).items():
            if v is not None:
                self.anchors[k] = read_date(v)
        self.facts = {}
        for k, v in raw.get("facts", {}).items():
            if v is not None:
                self.facts[k] = v if isinstance(v, bool) else Bad("fact")
        obs_names = {o.name for o in program.observations}
        self.obs: dict[str, list] = {}
        # docs/records.md: an item whose code is missing, empty or not a string could be any
        # item of its kind; it is never dropped
        self.codeless_obs: set[int] = set()
        for i, it in enumerate(raw.get("observations", [])):
            if isinstance(it, dict) and not _has_code(it):
                self.codeless_obs.add(i)
                for name in obs_names:
                    self.obs.setdefault(name, []).append((i, it))
            elif isinstance(it, dict) and it["code"] in obs_names:
                self.obs.setdefault(it["code"], []).append((i, it))
        for lst in self.obs.values():
            lst.sort(key=lambda e: e[0])
        cond_names = {x.name for x in program.items if x.kind == "condition"}
        proc_names = {x.name for x in program.items if x.kind == "procedure"}
        specs = {x.name: x.attributes for x in program.items}
        self.items = {"condition": [], "procedure": [], "treatment": []}
        for kind, field_name, names in (("condition", "conditions", cond_names),
                                        ("procedure", "procedures", proc_names)):
            for i, it in enumerate(raw.get(field_name, [])):
                if isinstance(it, dict) and not _has_code(it):
                    x = Item(kind, i, it)
                    x.codeless = True
                    x.code = f"{field_name}[{i}]"  # named by its place (its code is unusable)
                    self.items[kind].append(x)
                elif isinstance(it, dict) and it["code"] in names:
                    x = Item(kind, i, it)
                    _check_attributes(x, specs[it["code"]])
                    self.items[kind].append(x)
        for i, it in enumerate(raw.get("treatments", [])):
            if isinstance(it, dict):
                self.items["treatment"].append(Item("treatment", i, it))


# ---------------------------------------------------------------------------------- windows


@dataclass(frozen=True)
class Window:
    """A window over dates: the smallest and the largest it can be (they differ when its duration
    is only known to lie in an interval); ``known`` is False when the anchor is unusable."""

    known: bool
    ever: bool = False
    narrow: tuple = (-INF, INF)
    wide: tuple = (-INF, INF)
    missing: tuple = ()


def _floor(x):
    return x if x == INF else math.floor(x)


@dataclass
class Ctx:
    rec: Record
    bind: dict = field(default_factory=dict)  # query variable -> the item or reading it stands for

    def with_var(self, var, value):
        b = dict(self.bind)
        b[var] = value
        return Ctx(self.rec, b)


class Interpreter:
    def __init__(self, program: I.Program):
        self.p = program
        self.obs_el = {o.name: o for o in program.observations}
        self.derived = {d.name: d for d in program.derived}
        self.equiv = {t.name: t for t in program.equivalences}
        self.aliases = dict(program.aliases)

    # ------------------------------------------------------------------ entry point
    def evaluate(self, raw) -> dict:
        try:
            rec = Record(self.p, raw)
        except RecordError as exc:
            pid = raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) else None
            return {"patient_id": pid, "status": "error", "error": str(exc)}
        out = []
        for c in self.p.criteria:
            t = self.b(c.body, Ctx(rec))
            out.append({"id": c.id, "kind": c.kind, "outcome": self.outcome(c.kind, t), "missing": list(t.missing)})
        outcomes = [x["outcome"] for x in out]
        status = "ineligible" if "fail" in outcomes else ("eligible" if all(o == "pass" for o in outcomes) else "indeterminate")
        result = {"patient_id": rec.id, "status": status, "criteria": out}
        if self.p.cohorts:
            # a cohort's status is over the criteria of every cohort and its own; the patient is
            # eligible for the trial when eligible for some cohort
            per = []
            for k in self.p.cohorts:
                mine = [o for o, c in zip(outcomes, self.p.criteria) if not c.cohorts or k.name in c.cohorts]
                if "fail" in mine:
                    per.append({"id": k.name, "status": "ineligible"})
                elif all(o == "pass" for o in mine):
                    per.append({"id": k.name, "status": "eligible"})
                else:
                    per.append({"id": k.name, "status": "indeterminate"})
            kinds = {x["status"] for x in per}
            result["cohorts"] = per
            result["status"] = ("eligible" if "eligible" in kinds else
                                "ineligible" if kinds == {"ineligible"} else "indeterminate")
        return result

    @staticmethod
    def outcome(kind: str, t: Tri) -> str:
        if t.v is None:
            return "review" if t.review else "unknown"
        holds = t.v
        if kind == "inclusion":
            return "pass" if holds else "fail"
        return "fail" if holds else "pass"

    # ------------------------------------------------------------------ booleans
    def b(self, n, ctx: Ctx) -> Tri:
        if isinstance(n, I.BAnd):
            return k_and(self.b(x, ctx) for x in n.items)
        if isinstance(n, I.BOr):
            return k_or(self.b(x, ctx) for x in n.items)
        if isinstance(n, I.BNot):
            return k_not(self.b(n.operand, ctx))
        if isinstance(n, I.BImplies):
            return k_or([k_not(self.b(n.cond, ctx)), self.b(n.then, ctx)])
        if isinstance(n, I.BIf):
            return k_if(self.b(n.cond, ctx), self.b(n.then, ctx), self.b(n.otherwise, ctx))
        if isinstance(n, I.BFact):
            v = ctx.rec.facts.get(n.name)
            if v is None:
                return unknown(n.name, review=n.judgment)
            if isinstance(v, Bad):
                return unknown(n.name)
            return TRUE if v else FALSE
        if isinstance(n, I.BSexIs):
            s = ctx.rec.sex
            if s is None or isinstance(s, Bad):
                return unknown("sex")
            return TRUE if (s in n.values) != n.negated else FALSE
        if isinstance(n, I.BObsCmp):
            return self.obs_test(n.sel, ctx, lambda ob, el: self.cmp_limit(ob, el, n.op, n.limit, ctx))
        if isinstance(n, I.BObsBetween):
            return self.obs_test(n.sel, ctx, lambda ob, el: self.between_truths(ob, el, n.low, n.high, ctx))
        if isinstance(n, I.BObsIs):
            return self.obs_test(n.sel, ctx, lambda ob, el: self.is_truths(ob, el, n.values, n.negated))
        if isinstance(n, I.BNumCmp):
            left, lm = self.num(n.left, ctx)
            right, rm = self.num(n.right, ctx)
            if left is None or right is None:
                return unknown(*(lm + rm))
            truths = set()
            for a in left:
                for c in right:
                    truths.add(_holds(n.op, a, c))
            return from_truths(truths, lm + rm)
        if isinstance(n, I.BDateCmp):
            left, lm = self.date(n.left, ctx)
            right, rm = self.date(n.right, ctx)
            if left is None or right is None:
                return unknown(*(lm + rm))
            return from_truths({_holds(n.op, a, c) for a in left for c in right}, lm + rm)
        if isinstance(n, I.BQuery):
            return self.query(n, ctx)
        if isinstance(n, I.BObsQuery):
            return self.obs_query(n, ctx)
        if isinstance(n, I.BRecorded):
            if n.kind == "bool":
                known = self.b(n.operand, ctx).v is not None
            elif n.kind == "num":
                known = self.num(n.operand, ctx)[0] is not None
            else:
                known = self.date(n.operand, ctx)[0] is not None
            return TRUE if known else FALSE
        if isinstance(n, I.BAttrBool):
            it = ctx.bind[n.var]
            v = self.attr(it, n.name)
            if not isinstance(v, bool):
                return unknown(_code_of(it))
            return TRUE if v else FALSE
        if isinstance(n, I.BAttrIs):
            it = ctx.bind[n.var]
            if n.name == "status" and n.type == "status":
                v = it.status
            else:
                v = self.attr(it, n.name)
                if not isinstance(v, str) or (n.type == "enum" and v not in n.values):
                    v = Bad("attribute")
            if isinstance(v, Bad):
                return unknown(_code_of(it))
            return TRUE if (v in n.tests) != n.negated else FALSE
        if isinstance(n, I.BFieldIs):
            it = ctx.bind[n.var]
            v = it.raw.get(n.field)
            if not isinstance(v, str):
                return unknown(it.code if isinstance(it.code, str) else "treatment")
            return TRUE if (v in n.tests) != n.negated else FALSE
        if isinstance(n, I.BClassIn):
            it = ctx.bind[n.var]
            if isinstance(it.classes, Bad):
                return unknown("treatment")
            return TRUE if bool(it.classes & set(n.tests)) != n.negated else FALSE
        raise TypeError(f"no interpretation for {type(n).__name__}")

    @staticmethod
    def attr(it, name: str):
        attrs = it.attrs if isinstance(it, Item) else it.get("attributes", {})  # an item, or a reading
        if attrs is None:
            attrs = {}
        if not isinstance(attrs, dict):
            return Bad("attributes")
        v = attrs.get(name)
        return Bad("not recorded") if v is None else v

    # ------------------------------------------------------------------ observations
    def obs_test(self, sel, ctx: Ctx, test) -> Tri:
        """A leaf over a selected reading: decided when every possible selection agrees."""
        cands, none_possible, missing = self.select(sel, ctx)
        el = self.obs_el[sel.code]
        if cands is None or none_possible:
            return unknown(sel.code, *missing)
        truths = set()
        for ob in cands:
            truths |= test(ob, el)
        return from_truths(truths, (sel.code,) + missing)

    def select(self, sel, ctx: Ctx):
        """(candidate readings, whether no reading at all is possible, missing) or (None, ...)
        when nothing useful is known."""
        if isinstance(sel, I.SelItem):
            return [ctx.bind[sel.var]], False, ()
        w = self.window(sel.window, ctx, None)
        if not w.known:
            return None, True, w.missing
        if sel.pred is not None:
            return self._filtered_candidates(sel, ctx, w)
        a = self._latest_candidates(ctx.rec, sel.code, w.narrow, w.ever)
        if w.narrow != w.wide:
            b = self._latest_candidates(ctx.rec, sel.code, w.wide, w.ever)
            if [id(x) for x in a[0]] != [id(x) for x in b[0]] or a[1] != b[1]:
                return None, True, ()
        return a[0], a[1], ()

    def _filtered_candidates(self, sel, ctx: Ctx, w: Window):
        """`latest X W where (F)`: the most recent reading F holds for. A reading whose F is unknown
        could be the selected one if it is not older than the most recent sure one."""
        sure, maybe = [], []
        for i, ob in ctx.rec.obs.get(sel.code, ()):
            t = self.b(sel.pred, ctx.with_var(sel.var, ob))
            if t.v is True:
                sure.append((i, ob))
            elif t.v is None:
                maybe.append((i, ob))
        cands, none_possible = self._latest_candidates(ctx.rec, sel.code, w.narrow, w.ever, sure)
        if w.narrow != w.wide:
            return None, True, ()
        lo, hi = w.narrow
        best = max((d for d in (read_date(ob.get("date")) for ob in cands) if not isinstance(d, Bad)), default=None)
        extra = []
        for i, ob in maybe:
            d = read_date(ob.get("date"))
            if isinstance(d, Bad) or (lo <= d <= hi and (best is None or d >= best)):
                extra.append(ob)
        if extra and (none_possible or not cands):
            return None, True, (sel.code,)
        return cands + extra, none_possible, ()

    def _latest_candidates(self, rec: Record, code: str, win, ever: bool, readings=None):
        lo, hi = win
        valid, bad = [], []
        perhaps = []  # readings without a code: perhaps of this code
        for i, it in (rec.obs.get(code, ()) if readings is None else readings):
            d = read_date(it.get("date"))
            if i in rec.codeless_obs:
                perhaps.append((d, i, it))
            elif isinstance(d, Bad):
                bad.append((i, it))
            elif lo <= d <= hi:
                valid.append((d, i, it))
        best = max(valid, key=lambda x: (x[0], x[1])) if valid else None
        cands = []
        if best is not None:
            cands.append(best[2])
        for i, it in bad:
            if ever or best is None:
                cands.append(it)
            elif best[0] < hi or i > best[1]:
                cands.append(it)  # could be dated after the most recent one (or on its day, later in the list)
        for d, i, it in perhaps:
            if isinstance(d, Bad) or (lo <= d <= hi and (best is None or (d, i) > (best[0], best[1]))):
                cands.append(it)  # if it is a reading of this code, it could be the one selected
        none_possible = best is None and not (ever and bad)
        return cands, none_possible

    def reading(self, ob: dict, el: I.ObsElement):
        """(exact value, unit) of a quantity reading, or Bad."""
        v = parse_number(ob.get("value"))
        if isinstance(v, Bad):
            return v
        unit = ob.get("unit")
        accepted = {u for u, _ in el.units}
        if unit is None:
            if el.unit != "1":
                return Bad("no unit")
            unit = "1"
        if not isinstance(unit, str):
            return Bad("unit")
        unit = self.resolve_unit(unit, accepted)
        if unit is None:
            return Bad("unit")
        return v, unit

    def resolve_unit(self, unit: str, accepted) -> Optional[str]:
        """A record's unit as one the element accepts: itself, or what its alias names (an alias
        may name several candidates; the first the element accepts)."""
        if unit in accepted:
            return unit
        target = self.aliases.get(unit)
        for t in (target,) if isinstance(target, str) else (target or ()):
            if t in accepted:
                return t
        return self._same_ucum_unit(unit, tuple(sorted(accepted)))

    @staticmethod
    @functools.lru_cache(maxsize=None)
    def _same_ucum_unit(unit: str, accepted: tuple) -> Optional[str]:
        """Another spelling of an accepted unit (10*9/l for 10*9/L, {cells}/uL for /uL): pint,
        reading both through ucumvert, builds the same units from them. An equal value is not
        enough: 10*3/uL is not a spelling of 10*9/L."""
        from compiler import units as U

        try:
            q = U._quantity(unit)
        except U.UnitError:
            return None
        for a in accepted:
            try:
                qa = U._quantity(a)
            except U.UnitError:
                continue
            if q.units == qa.units and q.magnitude == qa.magnitude:
                return a
        return None

    def limit_values(self, lim, ob: dict, el: I.ObsElement, unit: str, ctx: Ctx) -> set:
        """Possible values of a limit in the reading's own unit; an element Bad when unusable."""
        if isinstance(lim, I.LConst):
            return {dict(lim.table)[unit]}
        if isinstance(lim, I.LRef):
            ref = parse_number(ob.get(lim.which))
            # docs/records.md: uln greater than zero, lln and lloq zero or more, else unusable
            if not isinstance(ref, Bad) and (ref <= 0 if lim.which == "uln" else ref < 0):
                ref = Bad("reference limit out of range")
            if isinstance(ref, Bad):
                return {ref}
            return {lim.multiple * ref}
        if isinstance(lim, I.LIf):
            c = self.b(lim.cond, ctx)
            if c.v is True:
                return self.limit_values(lim.then, ob, el, unit, ctx)
            if c.v is False:
                return self.limit_values(lim.otherwise, ob, el, unit, ctx)
            return self.limit_values(lim.then, ob, el, unit, ctx) | self.limit_values(lim.otherwise, ob, el, unit, ctx)
        raise TypeError(type(lim).__name__)

    def cmp_limit(self, ob, el, op, lim, ctx) -> set:
        r = self.reading(ob, el)
        if isinstance(r, Bad):
            return {True, False}
        v, unit = r
        out = set()
        for L in self.limit_values(lim, ob, el, unit, ctx):
            out |= {True, False} if isinstance(L, Bad) else {_holds(op, v, L)}
        return out

    def between_truths(self, ob, el, low, high, ctx) -> set:
        r = self.reading(ob, el)
        if isinstance(r, Bad):
            return {True, False}
        v, unit = r
        out = set()
        for lo in self.limit_values(low, ob, el, unit, ctx):
            for hi in self.limit_values(high, ob, el, unit, ctx):
                above = None if isinstance(lo, Bad) else v >= lo
                below = None if isinstance(hi, Bad) else v <= hi
                if above is False or below is False:
                    out.add(False)  # outside one known bound: decided whatever the other
                elif above is None or below is None:
                    out |= {True, False}
                else:
                    out.add(True)
        return out

    @staticmethod
    def is_truths(ob, el, values, negated) -> set:
        v = ob.get("value")
        if not isinstance(v, str) or v not in el.values:
            return {True, False}
        return {(v in values) != negated}

    def obs_query(self, n: I.BObsQuery, ctx: Ctx) -> Tri:
        """any / no / every over the readings of one observation (open world)."""
        w = self.window(n.window, ctx, None)
        pred_of = (lambda t: k_not(t)) if n.quantifier == "every" else (lambda t: t)
        contributions = []
        some_inside = False
        for i, ob in ctx.rec.obs.get(n.code, ()):
            d = read_date(ob.get("date"))
            if not w.known:
                inside = unknown(*w.missing)
            elif isinstance(d, Bad):
                inside = TRUE if w.ever else FALSE if w.wide[0] > w.wide[1] else unknown(n.code)
            else:
                inside = self._in(d, d, w)
            if inside.v is False:
                continue
            if i in ctx.rec.codeless_obs:
                inside = k_and([inside, unknown(n.code)])  # perhaps a reading of this code
            if inside.v is True:
                some_inside = True
            p = pred_of(self.b(n.pred, ctx.with_var(n.var, ob)))
            contributions.append(k_and([inside, p]))
        found = k_or(contributions)
        if found.v is False and not some_inside:
            found = unknown(n.code, *w.missing)  # open world: no reading known to be in the window
        if n.quantifier == "any":
            return found
        return k_not(found)  # no: none matches; every: none fails

    # ------------------------------------------------------------------ item queries
    def query(self, n: I.BQuery, ctx: Ctx) -> Tri:
        items = []
        for it in ctx.rec.items[n.kind]:
            if n.kind == "treatment":
                if isinstance(it.classes, Bad):
                    items.append((it, unknown("treatment")))
                elif it.classes & set(n.codes):
                    items.append((it, TRUE))
            elif it.codeless:
                items.append((it, unknown(n.kind)))  # it could be any of its kind
            elif it.code in n.codes:
                items.append((it, TRUE))
        per_item = []
        for it, match in items:
            ictx = ctx.with_var(n.var, it)
            counts = [match]
            if n.active:
                st = it.status
                counts.append(unknown(it.code) if isinstance(st, Bad) else (TRUE if st == "active" else FALSE))
            if n.window is not None:
                counts.append(self.item_in_window(it, self.window(n.window, ictx, it)))
            p = None
            if n.pred is not None:
                p = self.b(n.pred, ictx)
                if n.negate_pred:
                    p = k_not(p)
            per_item.append((k_and(counts), p))
        if n.count is not None:  # at least N / at most N: items that surely count, and that perhaps do
            counted = [k_and([c] + ([p] if p is not None else [])) for c, p in per_item]
            sure = sum(1 for t in counted if t.v is True)
            top = sure + sum(1 for t in counted if t.v is None)
            if n.distinct:  # the named codes the items stand for, not the items
                sure_codes, maybe_codes = set(), set()
                for (it, _), t in zip(items, counted):
                    if t.v is False:
                        continue
                    if n.kind == "treatment":
                        codes = set(n.codes) if isinstance(it.classes, Bad) else set(it.classes) & set(n.codes)
                        certain = t.v is True and not isinstance(it.classes, Bad)
                    else:
                        codes, certain = {it.code}, t.v is True
                    (sure_codes if certain else maybe_codes).update(codes)
                sure, top = len(sure_codes), len(sure_codes | maybe_codes)
            miss = tuple(m for t in counted if t.v is None for m in t.missing)
            if n.quantifier == "at_least":
                return TRUE if sure >= n.count else FALSE if top < n.count else unknown(*miss)
            return TRUE if top <= n.count else FALSE if sure > n.count else unknown(*miss)
        if n.quantifier == "every":
            # every item in the window passes the filter (true when there is none: closed world)
            return k_and(k_or([k_not(c), p if p is not None else TRUE]) for c, p in per_item)
        found = k_or(k_and([c] + ([p] if p is not None else [])) for c, p in per_item)
        return found if n.quantifier == "any" else k_not(found)

    def item_in_window(self, it: Item, w: Window) -> Tri:
        if w.ever:
            return TRUE
        if w.known and w.narrow[0] > w.narrow[1] and w.wide[0] > w.wide[1]:
            return FALSE  # an empty window
        if not w.known:
            return unknown(*w.missing, it.code if isinstance(it.code, str) else "treatment")
        t = self._in(it.start, None, w, ends=it.ends)
        if t.v is None:
            return unknown(it.code if isinstance(it.code, str) else "treatment")
        return t

    def _in(self, start, end, w: Window, ends=None) -> Tri:
        """Whether [start, end] overlaps the window: decided when both the narrowest and the
        widest window the duration allows agree."""
        ends = [end] if ends is None else ends
        small = self._overlap(start, ends, w.narrow)
        if small is True:
            return TRUE
        large = self._overlap(start, ends, w.wide)
        if large is False:
            return FALSE
        return unknown()

    @staticmethod
    def _overlap(start, ends, win) -> Optional[bool]:
        lo, hi = win
        if not isinstance(start, Bad) and start > hi:
            return False
        answers = set()
        for e in ends:
            if isinstance(e, Bad):
                # present on its first date: inside the window, whatever its unusable end
                answers.add(True if not isinstance(start, Bad) and lo <= start <= hi else None)
            elif e < lo:
                answers.add(False)
            elif isinstance(start, Bad):
                # present on its last date: inside the window, whatever its unusable start
                answers.add(True if e <= hi else None)
            else:
                answers.add(True)
        if answers == {True}:
            return True
        if answers == {False}:
            return False
        return None

    # ------------------------------------------------------------------ windows and durations
    def window(self, w: I.Win, ctx: Ctx, item: Optional[Item]) -> Window:
        if w.kind == "ever":
            return Window(True, ever=True)
        if w.at is not None:  # measured from a computed date (an item's onset or end, a shifted date)
            ds, dm = self.date(w.at, ctx)
            if ds is None or len(ds) != 1:
                return Window(False, missing=dm)
            a = next(iter(ds))
            if w.kind == "between":
                us, um = self.date(w.until, ctx)
                if us is None or len(us) != 1:
                    return Window(False, missing=um)
                u = next(iter(us))
                return Window(True, narrow=(a, u), wide=(a, u))
            if w.kind == "on_or_after":
                return Window(True, narrow=(a, INF), wide=(a, INF))
            if a == INF:  # the end of something that has not ended: the window holds no date at all
                return Window(True, narrow=(INF, -INF), wide=(INF, -INF))
        else:
            a = ctx.rec.anchors.get(w.anchor)
            if a is None or isinstance(a, Bad):
                return Window(False, missing=(w.anchor,))
        if w.kind == "on_or_before":
            return Window(True, narrow=(-INF, a), wide=(-INF, a))
        sign = -1 if w.kind == "within_before" else 1
        lo, hi = self.dur(w.duration, ctx, item, a, sign)
        if sign < 0:
            return Window(True, narrow=(a - _floor(lo), a), wide=(a - _floor(hi), a))
        return Window(True, narrow=(a, a + _floor(lo)), wide=(a, a + _floor(hi)))

    def dur(self, d, ctx: Ctx, item: Optional[Item], anchor: int, sign: int):
        """A duration as an interval of days (lo, hi), measured from anchor in direction sign."""
        if isinstance(d, I.DConst):
            if d.kind == "days":
                return d.amount, d.amount
            n = int(d.amount)
            if n > 10 ** 6:
                return INF, INF
            shifted = month_shift(anchor, sign * n)
            days = INF if shifted is None else abs(anchor - shifted)
            return days, days
        if isinstance(d, I.DHalfLife):
            hl = self.half_life_days(item)
            if hl is None:
                return Fraction(0), INF
            return d.multiple * hl, d.multiple * hl
        if isinstance(d, I.DExtreme):
            a = self.dur(d.left, ctx, item, anchor, sign)
            b = self.dur(d.right, ctx, item, anchor, sign)
            if d.which == "shorter":
                return min(a[0], b[0]), min(a[1], b[1])
            return max(a[0], b[0]), max(a[1], b[1])
        if isinstance(d, I.DIf):
            c = self.b(d.cond, ctx)
            if c.v is True:
                return self.dur(d.then, ctx, item, anchor, sign)
            if c.v is False:
                return self.dur(d.otherwise, ctx, item, anchor, sign)
            a = self.dur(d.then, ctx, item, anchor, sign)
            b = self.dur(d.otherwise, ctx, item, anchor, sign)
            return min(a[0], b[0]), max(a[1], b[1])
        raise TypeError(type(d).__name__)

    def half_life_days(self, item: Optional[Item]):
        if item is None:
            return None
        h = item.raw.get("half_life")
        if not isinstance(h, dict):
            return None
        v = parse_number(h.get("value"))
        u = h.get("unit")
        if isinstance(v, Bad) or v < 0 or not isinstance(u, str):
            return None
        u = self.resolve_unit(u, _HALF_LIFE_DAYS)
        if u is None:
            return None
        return v * _HALF_LIFE_DAYS[u]

    # ------------------------------------------------------------------ numbers
    def num(self, n, ctx: Ctx):
        """(set of possible exact values, or None for anything; missing codes)."""
        if isinstance(n, I.NConst):
            return {n.value}, ()
        if isinstance(n, I.NObs):
            cands, none_possible, missing = self.select(n.sel, ctx)
            if cands is None or none_possible:
                return None, (n.sel.code,) + missing
            el = self.obs_el[n.sel.code]
            table = dict(n.table)
            out = set()
            for ob in cands:
                r = self.reading(ob, el)
                if isinstance(r, Bad) or r[1] not in table:
                    return None, (n.sel.code,)
                conv = table[r[1]]
                out.add(r[0] * conv.scale + conv.offset)
            return out, ()
        if isinstance(n, I.NAge):
            a = ctx.rec.anchors.get(n.anchor)
            b = ctx.rec.birth
            miss = []
            if a is None or isinstance(a, Bad):
                miss.append(n.anchor)
            if b is None or isinstance(b, Bad):
                miss.append("birth_date")
            if miss:
                return None, tuple(miss)
            if n.unit != "a":
                return {Fraction(completed_units(b, a, n.unit))}, ()
            return {Fraction(completed_years(b, a))}, ()
        if isinstance(n, I.NArith):
            left, lm = self.num(n.left, ctx)
            right, rm = self.num(n.right, ctx)
            if left is None or right is None:
                return None, lm + rm
            out = set()
            for x in left:
                for y in right:
                    if n.op == "+":
                        out.add(x + y)
                    elif n.op == "-":
                        out.add(x - y)
                    elif n.op == "*":
                        out.add(x * y)
                    elif y == 0:
                        return None, ()
                    else:
                        out.add(x / y)
            return (out if len(out) <= SET_CAP else None), ()
        if isinstance(n, I.NIf):
            c = self.b(n.cond, ctx)
            if c.v is True:
                return self.num(n.then, ctx)
            if c.v is False:
                return self.num(n.otherwise, ctx)
            a, am = self.num(n.then, ctx)
            b, bm = self.num(n.otherwise, ctx)
            if a is None or b is None:
                return None, c.missing + am + bm
            return a | b, ()
        if isinstance(n, I.NDerived):
            return self.num(self.derived[n.name].formula, ctx)
        if isinstance(n, I.NScale):
            x, m = self.num(n.operand, ctx)
            if x is None:
                return None, m
            return {v * n.scale + n.offset for v in x}, ()
        if isinstance(n, I.NAttr) and n.unit is not None:
            it = ctx.bind[n.var]
            q = self.attr(it, n.name)
            if isinstance(q, Bad) or not isinstance(q, dict):
                return None, (it.code,)
            v = parse_number(q.get("value"))
            units = dict(n.units)
            u = q.get("unit")
            if isinstance(u, str) and u not in units:
                u = self.resolve_unit(u, set(units))
            if isinstance(v, Bad) or u not in units:
                return None, (it.code,)
            return {v * units[u].scale + units[u].offset}, ()
        if isinstance(n, I.NAttr):
            it = ctx.bind[n.var]
            v = self.attr(it, n.name)
            v = v if isinstance(v, Bad) else parse_number(v)
            return (None, (it.code,)) if isinstance(v, Bad) else ({v}, ())
        if isinstance(n, I.NDose):
            it = ctx.bind[n.var]
            t = self.equiv[n.table]
            dose = it.raw.get("daily_dose")
            if not isinstance(dose, dict):
                return None, ("treatment",)
            v = parse_number(dose.get("value"))
            units = dict(t.units)
            factors = dict(t.factors)
            u = dose.get("unit")
            if isinstance(u, str) and u not in units:  # an alias (mcg) or another UCUM spelling
                u = self.resolve_unit(u, set(units))
            code = it.code
            if isinstance(code, str) and code not in factors:
                code = code.strip().lower()  # drug names in any case
            if isinstance(v, Bad) or not isinstance(u, str) or u not in units or code not in factors:
                return None, ("treatment",)
            return {v * units[u] * factors[code]}, ()
        if isinstance(n, I.NCourse):
            it = ctx.bind[n.var]
            s = it.start
            e = it.ends[0]
            if e == INF:
                e = ctx.rec.anchors.get(n.anchor)
                if e is None:
                    e = Bad("anchor")
            if isinstance(s, Bad) or isinstance(e, Bad):
                return None, ("treatment",)
            return {Fraction(e - s + 1)}, ()
        if isinstance(n, I.NHalfLife):
            hl = self.half_life_days(ctx.bind[n.var])
            return (None, ("treatment",)) if hl is None else ({hl}, ())
        raise TypeError(f"no interpretation for {type(n).__name__}")

    # ------------------------------------------------------------------ dates
    def date(self, d, ctx: Ctx):
        if isinstance(d, I.DtAnchor):
            a = ctx.rec.anchors.get(d.name)
            return (None, (d.name,)) if a is None or isinstance(a, Bad) else ({a}, ())
        if isinstance(d, I.DtAttr):
            it = ctx.bind[d.var]
            v = self.attr(it, d.name)
            v = v if isinstance(v, Bad) else parse_date(v)
            return (None, (it.code,)) if isinstance(v, Bad) else ({v}, ())
        if isinstance(d, I.DtItem):
            it = ctx.bind[d.var]
            if not isinstance(it, Item):  # an observation reading: its date
                v = read_date(it.get("date"))
                return (None, (it.get("code"),)) if isinstance(v, Bad) else ({v}, ())
            if d.field != "end":
                return (None, (it.code,)) if isinstance(it.start, Bad) else ({it.start}, ())
            ends = set(it.ends)
            if len(ends) != 1 or any(isinstance(e, Bad) for e in ends):
                return None, (it.code,)
            return ends, ()
        if isinstance(d, I.DtShift):
            base, m = self.date(d.date, ctx)
            if base is None:
                return None, m
            out = set()
            for x in base:
                if x == INF:  # never reached: stays so
                    out.add(x)
                    continue
                dur = d.duration
                if isinstance(dur, I.DConst) and dur.kind == "months":
                    if not 1 <= x <= ORD_MAX:
                        return None, ()  # calendar months from a date beyond the calendar: undefined
                    s = month_shift(x, d.sign * int(dur.amount)) if abs(dur.amount) <= 10 ** 6 else None
                    if s is None:  # beyond an end of the calendar: before (after) every recorded date
                        s = 0 if d.sign * dur.amount < 0 else ORD_MAX + 1
                    out.add(s)
                    continue
                lo, hi = self.dur(dur, ctx, None, x, d.sign)
                if lo != hi or lo == INF:
                    return None, ()
                out.add(x + d.sign * math.floor(lo))
            return out, ()
        raise TypeError(type(d).__name__)


def _code_of(it) -> str:
    return it.code if isinstance(it, Item) else it.get("code")


def _holds(op: str, a, b) -> bool:
    if op == ">=":
        return a >= b
    if op == "<=":
        return a <= b
    if op == ">":
        return a > b
    if op == "<":
        return a < b
    if op == "=":
        return a == b
    if op == "!=":
        return a != b
    raise ValueError(op)


def evaluate(program: I.Program, record) -> dict:
    """One record -> {"patient_id", "status", "criteria": [{"id", "kind", "outcome", "missing"}]}."""
    return Interpreter(program).evaluate(record)
