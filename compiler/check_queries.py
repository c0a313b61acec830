"""Item queries, their filters, and `recorded`: a part of the checker's class
(compiler.checker.Checker).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Optional

from . import ast as A
from . import ir as I
from .check_common import _Fail, Scope, ItemCtx, _suggest, _query_text
from .check_render import render


class QueriesMixin:
    """Item queries, their filters, and `recorded`."""

    # ---- queries
    def _new_var(self) -> str:
        self._var_counter += 1
        return f"it{self._var_counter}"

    def query(self, e: A.Query, sc: Scope) -> I.Bool:
        kinds = []
        codes = []
        failed = False
        for c in e.codes:
            n = c.name
            if n in self.items:
                kinds.append(self.items[n].kind)
            elif n in self.classes:
                kinds.append("treatment")
            elif n in self.obs:
                kinds.append("observation")
            else:
                cands = list(self.items) + list(self.classes) + list(self.obs)
                what = self.names[n][0] if n in self.names else None
                if what:
                    self.error(c.span, f"'{n}' is {what}; `{e.quantifier}` asks about conditions, procedures, treatment classes or observations")
                else:
                    self.error(c.span, f"unknown condition, procedure, treatment class or observation '{n}'{_suggest(n, cands)}")
                failed = True
                continue
            codes.append(n)
            self.reads.append(n)
        if failed:
            raise _Fail()
        if len(set(kinds)) > 1:
            self.fail(e.codes[0].span, "one query asks about one kind of item: " + ", ".join(f"{c} is a {k}" for c, k in zip(codes, kinds)))
        kind = kinds[0]
        var = self._new_var()
        if e.count is not None:
            if not isinstance(e.count, int):
                self.fail(e.span, f"`{e.quantifier.replace('_', ' ')}` counts items: write a whole number, not {e.count}")
            if kind == "observation":
                self.fail(e.span, "counting applies to conditions, procedures and treatments, not to observation readings")
        if kind == "observation":
            if len(codes) > 1:
                self.fail(e.codes[1].span, "a query over observations names one observation")
            if e.active:
                self.fail(e.span, "`active` applies to conditions, not observations")
            if e.window is None:
                self.fail(e.span, "a query over observations needs a window (within ... before ANCHOR, on or before ANCHOR, or ever)")
            if e.filter is None:
                self.fail(e.span, "a query over observations needs a condition on the value: where value ...")
            item = ItemCtx("observation", tuple(codes), var, self._win_anchor(e.window))
            win, pred = self._both(lambda: self.window(e.window, sc), lambda: self.bool_(e.filter, replace(sc, item=item)))
            if e.filter_kind == "unless":
                pred = I.BNot(pred)
            return I.BObsQuery(codes[0], e.quantifier, win, var, pred, _query_text(e, render))
        if e.active and kind != "condition":
            self.fail(e.span, "`active` applies to conditions (their status), not to treatments or procedures")
        item = ItemCtx(kind, tuple(codes), var, self._win_anchor(e.window))
        win = None
        pred = None
        errs = False
        if e.window is not None:
            try:
                win = self.window(e.window, sc, item)
            except _Fail:
                errs = True
            if win is not None and item.anchor is None and win.at is not None and win.until is None:
                # measured from a computed date: an ongoing course (`course`) counts to that date
                item = replace(item, anchor=win.at)
        if e.filter is not None:
            try:
                pred = self.bool_(e.filter, replace(sc, item=item))
            except _Fail:
                errs = True
        if errs:
            raise _Fail()
        if e.distinct and len(codes) < 2:
            self.fail(e.span, "`distinct` counts the different names of a query that are present: name two or more")
        return I.BQuery(kind, tuple(codes), e.quantifier, e.active, win, var, pred, e.filter_kind == "unless", _query_text(e, render),
                        e.count, e.distinct)

    def _win_anchor(self, w: Optional[A.Window]) -> Optional[str]:
        """The anchor a window is measured from (None when it is measured from another date)."""
        if w is None or w.anchor is None or w.anchor.name not in self.anchors or w.until is not None:
            return None
        return w.anchor.name

    def recorded(self, e: A.Recorded, sc: Scope) -> I.Bool:
        """`recorded X`: true when X is recorded and usable, false otherwise; never unknown."""
        op = e.operand
        text = render(op)
        if self._peek(op, sc) == "obs":
            sel, el = self.selection(op, sc)
            if el.kind == "qualitative":
                return I.BRecorded(I.BObsIs(sel, el.values, False, text), "bool", text)
            return I.BRecorded(I.NObs(sel, el.units, el.unit), "num", text)
        if isinstance(op, A.Name):
            name = op.ident.name
            d = self._let(name, op, sc)
            if d is not None:
                return self.recorded(A.Recorded(d.expr, e.span), self._let_scope(name, sc))
            it = sc.item
            if name == "sex" and name not in sc.lets:
                self.reads.append("sex")
                return I.BRecorded(I.BSexIs(("male", "female"), False), "bool", text)
            if it is not None and it.kind == "treatment" and name in ("route", "purpose"):
                return I.BRecorded(I.BFieldIs(it.var, name, (), True), "bool", text)
            if it is not None and it.kind in ("condition", "procedure", "observation"):
                attr = self._attribute(it, name)
                if attr is not None and attr.type in ("enum", "text"):
                    return I.BRecorded(I.BAttrIs(it.var, name, attr.type, attr.values, (), True), "bool", text)
        if isinstance(op, (A.And, A.Or, A.Not, A.Implies, A.Query, A.Compare, A.IsValue, A.Between, A.Member, A.Recorded)):
            self.fail(op.span, "`recorded` asks whether a value, a date, a fact or an attribute is recorded, not a condition",
                      hint="write recorded NAME, recorded latest X WINDOW, recorded half_life ...")
        ir, ty = self.value(op, sc)
        if ty[0] in ("num", "date"):
            return I.BRecorded(ir, ty[0], text)
        if ty[0] == "bool":
            return I.BRecorded(ir, "bool", text)
        self.fail(op.span, f"`recorded` asks about a value, a date, a fact or an attribute, not {self._tname(ty)}")
