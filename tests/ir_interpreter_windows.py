"""Windows, durations, numbers and dates of the IR interpreter (tests/ir_interpreter.py): one
part of ``Interpreter``, as a mixin; the booleans, selections and queries it calls are in the
interpreter itself."""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Optional

from compiler import ir as I
from ir_interpreter_values import (INF, ORD_MAX, SET_CAP, HALF_LIFE_DAYS, Bad, Ctx, Item, completed_units,
                                   completed_years, month_shift, parse_date, parse_number, read_date)


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


class WindowsAndNumbers:
    """The part of ``Interpreter`` that computes windows, durations, numbers and dates."""

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
            c = self.cond(d.cond, ctx)
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
        u = self.resolve_unit(u, HALF_LIFE_DAYS)
        if u is None:
            return None
        return v * HALF_LIFE_DAYS[u]

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
            c = self.cond(n.cond, ctx)
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
                if isinstance(n.anchor, str):
                    e = ctx.rec.anchors.get(n.anchor)
                else:  # the window's computed date (one value, or unknown)
                    ds, _ = self.date(n.anchor, ctx)
                    e = next(iter(ds)) if ds is not None and len(ds) == 1 else None
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
