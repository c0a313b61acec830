"""Windows, dates, anchors and durations: a part of the checker's class
(compiler.checker.Checker).
"""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction
from typing import Optional

from . import ast as A
from . import ir as I
from . import units as U
from .check_common import TREATMENT_FIELDS, ITEM_DATES, _Fail, Scope, ItemCtx, _suggest, _dur_text, _dur_uses_item
from .check_render import render, render_window


class WindowsMixin:
    """Windows, dates, anchors and durations."""

    # ---- windows and durations
    def window(self, w: A.Window, sc: Scope, item: Optional[ItemCtx] = None) -> I.Win:
        text = render_window(w)
        if w.kind == "ever":
            return I.Win("ever", None, None, False, "ever")
        if w.anchor is None or w.anchor.name not in self.anchors or w.until is not None or w.kind == "on_or_after":
            return self._date_window(w, sc, item, text)
        anchor = self._anchor(w.anchor)
        if w.kind == "on_or_before":
            return I.Win("on_or_before", anchor, None, False, text)
        dsc = replace(sc, item=item) if item is not None else sc
        dur = self.duration(w.duration, dsc)
        dependent = _dur_uses_item(dur)
        if not isinstance(dur, I.DIf):  # a conditional duration keeps the name its author gave it
            word = "before" if w.kind == "within_before" else "after"
            text = f"within {_dur_text(dur)} {word} {anchor}"
        return I.Win(w.kind, anchor, dur, dependent, text)

    def _window_ref(self, ref, sc: Scope) -> I.Date:
        """A window's reference date: an anchor, a date of the enclosing query's item, a named
        date, or a parenthesized date expression (read in the scope around the query)."""
        if isinstance(ref, A.Ident):
            name = ref.name
            if name in self.anchors:
                return I.DtAnchor(name)
            known = name in sc.lets or name in self.names or (sc.item is not None and (
                name in ITEM_DATES.get(sc.item.kind, ()) or self._attribute(sc.item, name) is not None))
            if not known:
                if name in ("onset", "end", "start", "date"):
                    self.fail(ref.span, f"'{name}' is a date of an item and is only known inside a query over one",
                              hint="a window measured from an item's date is written inside a query over that item: "
                                   f"any X where (any Y within 6 mo after {name})")
                self._anchor(ref)
            ref = A.Name(ref, ref.span)
        d, t = self.value(ref, sc)
        if t[0] != "date":
            self.fail(ref.span, f"a window is measured from a date, not from {self._tname(t)}")
        return d

    def _date_window(self, w: A.Window, sc: Scope, item: Optional[ItemCtx], text: str) -> I.Win:
        """A window measured from a date that is not (only) an anchor: computed where it is used."""
        at, until = self._both(lambda: self._window_ref(w.anchor if w.anchor is not None else w.at, sc),
                               lambda: self._window_ref(w.until, sc) if w.until is not None else None)
        if w.kind in ("on_or_before", "on_or_after", "between"):
            return I.Win(w.kind, None, None, False, text, at, until)
        dsc = replace(sc, item=item) if item is not None else sc
        dur = self.duration(w.duration, dsc)
        return I.Win(w.kind, None, dur, _dur_uses_item(dur), text, at, None)

    def _anchor(self, ident: A.Ident) -> str:
        if ident.name not in self.anchors:
            self.fail(ident.span, f"unknown anchor '{ident.name}'{_suggest(ident.name, self.anchors)}",
                      hint="the trial's anchors are: " + ", ".join(self.anchors) if self.anchors else None)
        return ident.name

    def duration(self, e, sc: Scope) -> I.Dur:
        sc = self._enter(sc)
        if isinstance(e, A.Quantity):
            unit = self._unit(e.unit)
            if unit is None:
                raise _Fail()
            if not U.is_time(unit):
                self.fail(e.unit.span, f"a duration needs a unit of time (d, wk, mo, a), not {unit}")
            if unit not in U.DAYS_PER and unit not in U.CALENDAR_UNITS:
                self.fail(e.unit.span, f"a duration is written in d, wk, h, min, s, ms, or calendar mo or a, not {unit}")
            amount = U.decimal_fraction(e.value)
            if unit in U.CALENDAR_UNITS:
                if amount.denominator != 1:
                    word = "months" if unit == "mo" else "years"
                    self.fail(e.span, f"a fractional number of {word} ({e.value} {unit}) is ambiguous; write the duration in days or weeks",
                              hint="record the reading in a note, e.g. note \"1.5 months is read as 45 days\"")
                months = int(amount) * (12 if unit == "a" else 1)
                return I.DConst("months", Fraction(months), f"{e.value} {unit}")
            return I.DConst("days", U.time_in_days(amount, unit), f"{e.value} {unit}")
        if isinstance(e, A.Name):
            name = e.ident.name
            d = self._let(name, e, sc)
            if d is not None:
                return self.duration(d.expr, self._let_scope(name, sc))
            if name == "half_life":
                self._need_item(e, sc, "treatment", "half_life")
                return I.DHalfLife(Fraction(1), "half_life")
            self._unknown_name(e, sc, "a duration")
        if isinstance(e, A.Arith) and e.op == "*":
            k, other = (e.left, e.right) if isinstance(e.left, A.Number) else (e.right, e.left)
            if isinstance(k, A.Number):
                dur = self.duration(other, sc)
                mult = U.decimal_fraction(k.value)
                return self._scale_dur(dur, mult, e)
        if isinstance(e, A.Extreme):
            a, b = self._both(lambda: self.duration(e.left, sc), lambda: self.duration(e.right, sc))
            return I.DExtreme(e.kind, a, b, render(e))
        if isinstance(e, A.IfElse):
            a, c, b = self._all3(lambda: self.duration(e.then, sc), lambda: self.bool_(e.cond, sc), lambda: self.duration(e.otherwise, sc))
            return I.DIf(c, a, b, render(e))
        if isinstance(e, A.Number):
            self.fail(e.span, f"a duration needs a unit: write {e.value} d, {e.value} wk or {e.value} mo")
        self.fail(e.span, f"expected a duration (such as 28 d, 5 x half_life or shorter of 28 d and 5 x half_life), found {render(e)!r}")

    def _scale_dur(self, dur: I.Dur, k: Fraction, e) -> I.Dur:
        if isinstance(dur, I.DHalfLife):
            return I.DHalfLife(dur.multiple * k, render(e))
        if isinstance(dur, I.DConst):
            if dur.kind == "months":
                amount = dur.amount * k
                if amount.denominator != 1:
                    self.fail(e.span, "a fractional number of months is ambiguous; write the duration in days or weeks")
                return I.DConst("months", amount, render(e))
            return I.DConst("days", dur.amount * k, render(e))
        self.fail(e.span, "only a fixed duration or a half-life can be multiplied")

    def _need_item(self, e, sc: Scope, kind: str, what: str):
        if sc.item is None or sc.item.kind != kind:
            where = {"treatment": "a treatment (any <treatment class> ...)"}.get(kind, kind)
            msg, hint = self._field_outside(sc, f"'{what}' is a field of {where} and is only known inside a query over one",
                                            None)
            self.fail(e.span, msg, hint=hint)

    def _field_outside(self, sc: Scope, msg: str, hint):
        """The error of an item's field read outside a query over the item, said for a named
        expression that reads it (docs/language.md section 4: a `let` is checked where it is used,
        and one that nothing uses is checked on its own, outside every query). The use suggested
        for one nothing uses is a window when it is a duration, a filter otherwise."""
        if sc.item is not None or not sc.let_stack:
            return msg, hint
        name = sc.let_stack[0]
        if sc.unused == name:
            d = sc.lets.get(name)
            if d is not None and _is_duration(d.expr, sc.lets):
                anchor = next(iter(self.anchors), "first_dose")
                use = f"as the window of a query over the item (any X within {name} before {anchor})"
            else:
                use = f"inside a query over the item (any X where ({name}))"
            return (f"{msg}; the named expression '{name}' is used nowhere, so it is read outside every query",
                    f"use '{name}' {use}, or remove it")
        return msg, f"'{name}' is used outside a query; a named expression that reads an item's fields is used inside a query over the item: any X where ({name})"

    def _unknown_name(self, e: A.Name, sc: Scope, expected: str):
        name = e.ident.name
        if sc.item is None:
            field = None
            if name in TREATMENT_FIELDS:
                field = "a treatment"
            elif name == "value":
                field = "an observation"
            elif name in ("onset", "end", "start", "date"):
                field = " or ".join(f"{'an' if k[0] in 'aeiou' else 'a'} {k}" for k, ds in ITEM_DATES.items() if name in ds)
                field += " (its date)" if name == "date" else f" (its {name} date)"
            elif name == "status" or any(name in {a.name for a in el.attributes} for el in self.items_ir.values()):
                field = "a condition or procedure"
            if field:
                msg, hint = self._field_outside(
                    sc, f"'{name}' is a field of {field} and is only known inside a query over one",
                    "`where` and `unless` take one term: put a compound condition in parentheses, where (A and B)")
                self.fail(e.span, msg, hint=hint)
        cands = list(self.names) + list(sc.lets) + list(self.anchors) + ["sex"]
        if sc.item is not None and name in ("onset", "end", "start", "date"):
            self.fail(e.span, f"a {sc.item.kind} has no '{name}'; its dates are: " + ", ".join(ITEM_DATES[sc.item.kind]))
        if sc.item is not None and sc.item.kind in ("condition", "procedure") and len(sc.item.codes) > 1:
            has = [c for c in sc.item.codes if self.items_ir.get(c)
                   and any(a.name == name for a in self.items_ir[c].attributes)]
            if has:  # not "did you mean 'grade'?": some of the codes lack it
                lack = [c for c in sc.item.codes if c not in has]
                self.fail(e.span, f"'{name}' is an attribute of {', '.join(has)} but not of {', '.join(lack)}: a query "
                                  "over several codes reads only the attributes every one of them declares")
        if sc.item is not None:
            if sc.item.kind in ("condition", "procedure"):
                for c in sc.item.codes:
                    el = self.items_ir.get(c)
                    if el:
                        cands += [a.name for a in el.attributes]
                cands.append("status")
            elif sc.item.kind == "treatment":
                cands += list(TREATMENT_FIELDS)
            else:
                cands.append("value")
        self.fail(e.span, f"unknown name '{name}'{_suggest(name, cands)}")


def _is_duration(e, lets: dict, seen: frozenset = frozenset()) -> bool:
    """Whether an expression is written as a duration (the forms `duration` reads: a quantity in
    a unit of time, `half_life`, a number times a duration, `shorter of`/`longer of`, a
    conditional between durations, a named expression that is one), before it is checked."""
    if isinstance(e, A.Quantity):
        code = U.TIME_WORDS.get(e.unit.code, e.unit.code)
        return code in U.DAYS_PER or code in U.CALENDAR_UNITS
    if isinstance(e, A.Name):
        name = e.ident.name
        d = lets.get(name)
        if d is not None and name not in seen:
            return _is_duration(d.expr, lets, seen | {name})
        return name == "half_life"
    if isinstance(e, A.Arith) and e.op == "*":
        return any(isinstance(k, A.Number) and _is_duration(o, lets, seen)
                   for k, o in ((e.left, e.right), (e.right, e.left)))
    if isinstance(e, A.Extreme):
        return True
    if isinstance(e, A.IfElse):
        return _is_duration(e.then, lets, seen) or _is_duration(e.otherwise, lets, seen)
    return False
