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

import functools
from typing import Optional

from compiler import ir as I
from ir_interpreter_values import (FALSE, TRUE, Bad, Ctx, Item, Record, RecordError, Tri, from_truths, k_and, k_if,
                                   k_not, k_or, parse_number, read_date, unknown)
from ir_interpreter_windows import Window, WindowsAndNumbers


class Interpreter(WindowsAndNumbers):
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
    def cond(self, c, ctx: Ctx) -> Tri:
        """The condition of a conditional value: as assumed by a split, else evaluated."""
        if c in ctx.assume:
            return TRUE if ctx.assume[c] else FALSE
        return self.b(c, ctx)

    def b(self, n, ctx: Ctx) -> Tri:
        if isinstance(n, _LEAVES):
            for c in _judged_conditions(n, self.derived):
                if c not in ctx.assume:
                    # docs/language.md, What a rule means: `review` when the only thing undecided
                    # is an unrecorded judgment. A value (limit, number, duration) that a
                    # judgment decides: the leaf is decided in each world the judgment allows,
                    # and review when only the judgment tells them apart
                    t = self.b(c, ctx)
                    if t.v is not None:
                        return self.b(n, ctx.assuming(c, t.v))
                    return k_if(t, self.b(n, ctx.assuming(c, True)), self.b(n, ctx.assuming(c, False)))
        return self._b(n, ctx)

    def _b(self, n, ctx: Ctx) -> Tri:
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
            # a window of uncertain length: the narrow window's selection, and the readings
            # without a code that the wide one adds (docs/records.md: such a reading could be of
            # any code of its kind, so it is a candidate wherever it could be the one selected);
            # a reading of this code itself in the uncertain part, or a different most recent
            # one, leaves the selection unknown (whether it falls in the window is unknown)
            b = self._latest_candidates(ctx.rec, sel.code, w.wide, w.ever)
            mine = {id(x) for x in a[0]}
            codeless = {id(it) for i, it in ctx.rec.obs.get(sel.code, ()) if i in ctx.rec.codeless_obs}
            extra = [x for x in b[0] if id(x) not in mine]
            if a[1] != b[1] or not mine <= {id(x) for x in b[0]} or any(id(x) not in codeless for x in extra):
                return None, True, ()
            return a[0] + extra, a[1], ()
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
            c = self.cond(lim.cond, ctx)
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
            # review when every item that perhaps counts does so only by an unrecorded judgment
            undecided = Tri(None, all(t.review for t in counted if t.v is None), miss)
            if n.quantifier == "at_least":
                return TRUE if sure >= n.count else FALSE if top < n.count else undecided
            return TRUE if top <= n.count else FALSE if sure > n.count else undecided
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


_LEAVES = (I.BObsCmp, I.BObsBetween, I.BObsIs, I.BNumCmp, I.BDateCmp, I.BQuery, I.BObsQuery)


def _judged_conditions(n, derived) -> list:
    """The conditions naming a judgment of the conditional limits, numbers and durations of a
    leaf (and of the derived values it reads), outside its filters (their own leaves) and outside
    `recorded` (never unknown). The
    window of a query over items is sized per item where its condition reads the item: such a
    condition is not one of the leaf's."""
    out = []

    def judged(c) -> bool:
        return any(isinstance(x, I.BFact) and x.judgment for x in _nodes(c))

    def reads_item(c) -> bool:
        bound = {x.var for x in _nodes(c) if isinstance(x, (I.BQuery, I.BObsQuery, I.SelLatest))}
        return any(getattr(x, "var", None) not in (None, *bound) for x in _nodes(c)
                   if not isinstance(x, (I.BQuery, I.BObsQuery, I.SelLatest)))

    def walk(x, window):
        if isinstance(x, (I.LIf, I.NIf, I.DIf)):
            if judged(x.cond) and not (window and reads_item(x.cond)) and x.cond not in out:
                out.append(x.cond)
            walk(x.then, window)
            walk(x.otherwise, window)
            return
        if isinstance(x, I.NDerived):
            walk(derived[x.name].formula, window)  # a derived value: its formula, where it is read
            return
        if isinstance(x, I.BRecorded) or not hasattr(x, "__dataclass_fields__"):
            return
        for f in x.__dataclass_fields__:
            if f not in ("pred", "cond"):
                walk(getattr(x, f), window or (f == "window" and isinstance(x, (I.BQuery, I.BObsQuery))))

    walk(n, False)
    return out


def _nodes(x):
    """x and every IR node inside it."""
    if isinstance(x, (tuple, list)):
        for y in x:
            yield from _nodes(y)
        return
    if not hasattr(x, "__dataclass_fields__"):
        return
    yield x
    for f in x.__dataclass_fields__:
        yield from _nodes(getattr(x, f))


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
