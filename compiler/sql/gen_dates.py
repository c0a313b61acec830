"""The dates, windows and durations of the SQL generators (compiler/sql/generate.py): a date as a
day number (anchors, item dates, attributes, shifted dates), a window's bounds (runtime._window_at,
fixed, computed and item-dependent), and durations (half-lives, the shorter/longer of two, a
choice by a condition) as {lo, hi, m} structs. A mixin of Generator."""

from __future__ import annotations

from .. import ir as I
from . import numbers as N
from .gen_types import EMPTY, Num, Window, ident, q, qlist

NEVER = 1000000000  # the evaluator's _NEVER_HI: a window end that no date reaches


class DateNodes:
    # ------------------------------------------------------------------ dates
    def date(self, d, ctx) -> Num:
        """A date as (day number or NULL, missing)."""
        if isinstance(d, I.DtAnchor):
            a = ident("a_" + d.name)
            return Num(a, qlist([d.name]))
        if isinstance(d, I.DtAttr):
            kind, x = self._item(d.var, ctx)
            j = self.attr_json(x, d.name)
            s = f"json_extract_string({j}, '$')"
            ok = (f"json_type({x}.a) = 'OBJECT' AND json_type({j}) = 'VARCHAR' AND "
                  f"regexp_full_match({s}, '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}') AND {s} >= '0001'")
            v = f"(CASE WHEN {ok} THEN CAST(CAST(try_strptime({s}, '%Y-%m-%d') AS DATE) - DATE '1970-01-01' AS INTEGER) END)"
            return Num(v, f"[{x}.c]")
        if isinstance(d, I.DtItem):
            return self.item_date(d, ctx)
        if isinstance(d, I.DtShift):
            base = self.date(d.date, ctx)
            dur = d.duration
            if isinstance(dur, I.DConst) and dur.kind == "days":
                v = f"(({base.v}) + {d.sign * int(dur.amount.__floor__())})" if d.sign > 0 else f"(({base.v}) - {int(dur.amount.__floor__())})"
                return Num(v, base.m, base.lvl)
            if isinstance(dur, I.DConst) and dur.kind == "months":
                n = int(dur.amount) * d.sign
                v = f"CAST(CAST((DATE '1970-01-01' + ({base.v})) + INTERVAL ({n}) MONTH AS DATE) - DATE '1970-01-01' AS INTEGER)"
                return Num(v, base.m, base.lvl)
            self.unsupported("a date shifted by a computed duration has no SQL form yet")
        self.unsupported(f"date {type(d).__name__} has no SQL form yet")

    def item_date(self, d, ctx) -> Num:
        """A date an item carries (runtime._item_date): onset / start / date, or end; an ongoing
        treatment or an active condition without an end has not ended (NEVER); a resolved
        condition without an end ended on its onset."""
        kind, x = self._item(d.var, ctx)
        if kind == "observation":
            self.unsupported("the date of an observation as a reference date has no SQL form yet")
        code = f"[{x}.c]"
        if d.field != "end":
            return Num(f"{x}.s", code)
        if kind == "procedure":
            return Num(f"{x}.s", code)
        if kind == "treatment":
            return Num(f"(CASE {x}.est WHEN 0 THEN {NEVER} WHEN 1 THEN {x}.e END)", code)
        return Num(f"(CASE WHEN {x}.est = 1 THEN {x}.e WHEN {x}.est = 0 AND {x}.st = 'active' THEN {NEVER} "
                   f"WHEN {x}.est = 0 AND {x}.st = 'resolved' THEN {x}.s END)", code)

    # ------------------------------------------------------------------ windows and durations
    def _bind(self, fields: dict, body) -> str:
        """Evaluate each field expression once and use it by name: a one-element list_transform
        (DuckDB has no LET); body(z) builds the result from the bound struct z."""
        self._z = getattr(self, "_z", 0) + 1
        z = f"z{self._z}"
        packed = "{" + ", ".join(f"{q(k)}: {v}" for k, v in fields.items()) + "}"
        return f"list_transform([{packed}], lambda {z}: {body(z)})[1]"

    def duration(self, d, ctx):
        """A duration as one struct expression {lo, hi, m}: whole days (floored, NEVER for
        infinity) it is known to lie between, and what it lacks when lo <> hi; and its level."""
        if isinstance(d, I.DConst):
            if d.kind != "days":
                self.unsupported("a calendar-month duration inside a computed window has no SQL form yet")
            n = int(d.amount.__floor__())
            return f"{{'lo': CAST({n} AS BIGINT), 'hi': CAST({n} AS BIGINT), 'm': {EMPTY}}}", 0
        if isinstance(d, I.DHalfLife):
            if ctx.dur_var is None:
                self.unsupported("a half-life outside a treatment query")
            kind, x = ctx.vars[ctx.dur_var]
            days = f"(CASE WHEN {x}.hl IS NOT NULL THEN CAST({self.floor_times(f'{x}.hl', d.multiple)} AS BIGINT) END)"
            return self._bind({"d": days, "c": f"{x}.c"}, lambda z: (
                f"{{'lo': coalesce({z}.d, 0), 'hi': coalesce({z}.d, {NEVER}), "
                f"'m': CASE WHEN {z}.d IS NULL THEN [{z}.c] ELSE {EMPTY} END}}")), 0
        if isinstance(d, I.DExtreme):
            a, la = self.duration(d.left, ctx)
            b, lb = self.duration(d.right, ctx)
            f = "least" if d.which == "shorter" else "greatest"
            return self._bind({"a": a, "b": b}, lambda z: (
                f"{{'lo': {f}({z}.a.lo, {z}.b.lo), 'hi': {f}({z}.a.hi, {z}.b.hi), "
                f"'m': CASE WHEN {f}({z}.a.lo, {z}.b.lo) = {f}({z}.a.hi, {z}.b.hi) THEN {EMPTY} "
                f"ELSE flatten([{z}.a.m, {z}.b.m]) END}}")), max(la, lb)
        if isinstance(d, I.DIf):
            c = self.b(d.cond, ctx)
            a, la = self.duration(d.then, ctx)
            b, lb = self.duration(d.otherwise, ctx)
            return self._bind({"t": c.t, "cm": c.m, "a": a, "b": b}, lambda z: (
                f"CASE WHEN {z}.t THEN {z}.a WHEN NOT {z}.t THEN {z}.b ELSE "
                f"{{'lo': least({z}.a.lo, {z}.b.lo), 'hi': greatest({z}.a.hi, {z}.b.hi), "
                f"'m': flatten([{z}.cm, {z}.a.m, {z}.b.m])}} END")), max(c.lvl, la, lb)
        self.unsupported(f"duration {type(d).__name__} has no SQL form yet")

    def floor_times(self, a: str, k) -> str:
        """floor(a * k), a an exact number, k a constant (elig_floor of elig_mul)."""
        return f"elig_floor(elig_mul({a}, {N.const(k)}))"

    def _between(self, w: I.Win, ctx) -> Window:
        """between A and B (runtime._window_at): from A to B, both inclusive; unknown when either
        date is; empty (nothing in it) when A is after B."""
        for dt in (w.at, w.until):
            base = dt
            while isinstance(base, I.DtShift):
                base = base.date
            if not isinstance(base, (I.DtAnchor, I.DtItem)) or (isinstance(base, I.DtItem) and base is not dt):
                self.unsupported(f"a window between dates read from {type(base).__name__} has no SQL form yet")
        d = self.date(w.at, ctx)
        u = self.date(w.until, ctx)
        a, b = f"({d.v})", f"({u.v})"
        return Window(f"({a} IS NOT NULL AND {b} IS NOT NULL)", a, a, b, b, EMPTY,
                      f"(CASE WHEN {a} IS NULL THEN {d.m} ELSE {u.m} END)", lvl=max(d.lvl, u.lvl), empty=f"({a} > {b})")

    def window(self, w: I.Win, ctx) -> Window:
        """A window at patient level (helper columns), or for the item of ctx (inline)."""
        if w.kind == "ever":
            return Window("TRUE", str(-NEVER), str(-NEVER), str(NEVER), str(NEVER), EMPTY, EMPTY, ever=True)
        if w.at is not None:
            # measured from a date: supported when it is an anchor, or an anchor shifted by a fixed
            # duration (runtime._window_at: an absent date leaves the window unknown)
            base = w.at
            while isinstance(base, I.DtShift):
                base = base.date
            if w.kind == "between":
                return self._between(w, ctx)
            if w.until is not None:
                self.unsupported(f"a window {w.kind} with an end date has no SQL form yet")
            if not isinstance(base, (I.DtAnchor, I.DtItem)):
                self.unsupported(f"a window measured from {type(base).__name__} has no SQL form yet")
            if w.duration is not None and not isinstance(w.duration, I.DConst):
                self.unsupported("a computed duration measured from a date other than an anchor has no SQL form yet")
            if isinstance(base, I.DtItem) and not isinstance(w.at, I.DtItem):
                self.unsupported("a window measured from a shifted item date has no SQL form yet")
            d = self.date(w.at, ctx)
            a = f"({d.v})"
            if isinstance(base, I.DtItem) and w.kind in ("within_before", "within_after"):
                # from a date never reached (an ongoing item's end): an empty window, nothing in it
                win = self.window(I.Win(w.kind, "_", w.duration, False, w.text), ctx)  # from the anchor "_" ...
                never = f"({a} >= {NEVER})"

                def e(x, v):  # ... which is the item's date
                    return f"(CASE WHEN {never} THEN {v} ELSE {x.replace(ident('a__'), a)} END)"

                return Window(f"({a} IS NOT NULL)", e(win.lo, NEVER + 1), e(win.lom, NEVER + 1), e(win.hi, NEVER),
                              e(win.him, NEVER), EMPTY, d.m, empty=never)
            ok = f"({a} IS NOT NULL)"
            amiss = d.m
        else:
            a = ident("a_" + w.anchor)
            ok = f"({a} IS NOT NULL)"
            amiss = qlist([w.anchor])
        if w.kind == "on_or_before":
            return Window(ok, str(-NEVER), str(-NEVER), a, a, EMPTY, amiss)
        if w.kind == "on_or_after":
            return Window(ok, a, a, str(NEVER), str(NEVER), EMPTY, amiss)
        dur = w.duration
        if w.kind not in ("within_before", "within_after"):
            self.unsupported(f"window kind {w.kind} has no SQL form yet")
        if isinstance(dur, I.DConst) and dur.kind == "months":
            n = int(dur.amount)
            sign = -1 if w.kind == "within_before" else 1
            other = f"CAST(CAST((DATE '1970-01-01' + {a}) + INTERVAL ({sign * n}) MONTH AS DATE) - DATE '1970-01-01' AS INTEGER)"
            if w.kind == "within_before":
                return Window(ok, other, other, a, a, EMPTY, amiss)
            return Window(ok, a, a, other, other, EMPTY, amiss)
        if isinstance(dur, I.DConst):
            n = int(dur.amount.__floor__())
            if w.kind == "within_before":
                return Window(ok, f"({a} - {n})", f"({a} - {n})", a, a, EMPTY, amiss)
            return Window(ok, a, a, f"({a} + {n})", f"({a} + {n})", EMPTY, amiss)
        d, lvl = self.duration(dur, ctx)
        before = w.kind == "within_before"
        body = lambda z: (
            f"{{'lo': {z}.a - {z}.d.lo, 'lom': {z}.a - {z}.d.hi, 'hi': {z}.a, 'him': {z}.a, 'm': {z}.d.m, "
            if before else
            f"{{'lo': {z}.a, 'lom': {z}.a, 'hi': {z}.a + {z}.d.lo, 'him': {z}.a + {z}.d.hi, 'm': {z}.d.m, ") + (
            f"'am': list_concat({amiss}, CASE WHEN {z}.d.lo <> {z}.d.hi THEN list_filter({z}.d.m, lambda c: c <> {q(w.anchor)}) "
            f"ELSE {EMPTY} END)}}")
        ws = self._bind({"a": a, "d": d}, body)
        if ctx.item_level:
            return Window(ok, "", "", "", "", "", "", lvl=lvl, struct=ws)
        col, lvl = self.helper(ws, lvl)
        return Window(ok, f"{col}.lo", f"{col}.lom", f"{col}.hi", f"{col}.him", f"{col}.m", f"{col}.am", lvl=lvl)
