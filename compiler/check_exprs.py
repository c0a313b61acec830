"""Expressions: boolean structure, names, attributes, values and arithmetic: a part of the checker's class
(compiler.checker.Checker).
"""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction
from typing import Optional

from . import ast as A
from . import ir as I
from . import units as U
from .check_common import (ITEM_DATES, MAX_DEPTH, _Fail, Scope, ItemCtx, BOOL, DATE, num_t, _suggest, AGE_UNITS,
    Conversion_compose, _unit_text)
from .check_render import render


class ExpressionsMixin:
    """Expressions: boolean structure, names, attributes, values and arithmetic."""

    # ------------------------------------------------------------------ expressions
    def _tname(self, ty) -> str:
        k = ty[0]
        if k == "num":
            return f"a quantity in {ty[1]}" if ty[1] not in (None, "1") else "a number"
        if k == "obs":
            return f"an observation ({ty[1]})"
        return {"bool": "a yes/no condition", "date": "a date", "cat": "a category",
                "classes": "treatment classes", "limit": "a limit relative to a reference limit", "dur": "a duration"}.get(k, k)

    def _enter(self, sc: Scope) -> Scope:
        if sc.depth > MAX_DEPTH:
            raise RecursionError()
        return replace(sc, depth=sc.depth + 1)

    def _let(self, name: str, e: A.Expr, sc: Scope) -> Optional[A.LetDecl]:
        d = sc.lets.get(name)
        if d is None:
            return None
        if name in sc.let_stack:
            self.fail(e.span, f"'{name}' is defined in terms of itself")
        self.used_lets.add(id(d))
        return d

    def _let_scope(self, name: str, sc: Scope) -> Scope:
        return replace(sc, let_stack=sc.let_stack + (name,))

    def any_expr(self, e, sc):
        """Check an expression of whatever type (for unused named expressions)."""
        if isinstance(e, (A.And, A.Or, A.Not, A.Implies, A.Query, A.Compare, A.IsValue, A.Between, A.Member, A.Recorded, A.Chain)):
            return self.bool_(e, sc)
        if isinstance(e, A.Extreme):
            return self.duration(e, sc)
        return self.value(e, sc)

    def bool_(self, e, sc: Scope) -> I.Bool:
        sc = self._enter(sc)
        if isinstance(e, A.And):
            return I.BAnd(tuple(self._collect_bools(e.items, sc)))
        if isinstance(e, A.Or):
            return I.BOr(tuple(self._collect_bools(e.items, sc)))
        if isinstance(e, A.Not):
            return I.BNot(self.bool_(e.operand, sc))
        if isinstance(e, A.Implies):
            c, t = self._both(lambda: self.bool_(e.cond, sc), lambda: self.bool_(e.then, sc))
            return I.BImplies(c, t)
        if isinstance(e, A.IfElse):
            a, c, b = self._all3(lambda: self.bool_(e.then, sc), lambda: self.bool_(e.cond, sc), lambda: self.bool_(e.otherwise, sc))
            return I.BIf(c, a, b)
        if isinstance(e, A.Query):
            return self.query(e, sc)
        if isinstance(e, A.Recorded):
            return self.recorded(e, sc)
        if isinstance(e, A.Compare):
            return self.compare(e, sc)
        if isinstance(e, A.Chain):
            return self.chain(e, sc)
        if isinstance(e, A.Between):
            return self.between(e, sc)
        if isinstance(e, A.IsValue):
            return self.is_value(e.subject, (e.value,), e.negated, e, sc)
        if isinstance(e, A.Member):
            if any(not isinstance(v, A.Ident) for v in e.values):
                return self.number_set(e, sc)
            return self.is_value(e.subject, e.values, e.negated, e, sc)
        if isinstance(e, A.Name):
            return self.bool_name(e, sc)
        if isinstance(e, A.Latest):
            self.fail(e.span, f"'latest {e.code.name}' is a value, not a yes/no condition; compare it with a limit",
                      hint=f"for example: latest {e.code.name} ... >= LIMIT")
        ir, ty = self.value(e, sc)
        self.fail(e.span, f"expected a yes/no condition, found {self._tname(ty)}")

    def _collect_bools(self, items, sc):
        out = []
        failed = False
        for x in items:
            try:
                out.append(self.bool_(x, sc))
            except _Fail:
                failed = True
        if failed:
            raise _Fail()
        return out

    def _both(self, f1, f2):
        failed = False
        r1 = r2 = None
        try:
            r1 = f1()
        except _Fail:
            failed = True
        try:
            r2 = f2()
        except _Fail:
            failed = True
        if failed:
            raise _Fail()
        return r1, r2

    def _all3(self, f1, f2, f3):
        r = []
        failed = False
        for f in (f1, f2, f3):
            try:
                r.append(f())
            except _Fail:
                failed = True
                r.append(None)
        if failed:
            raise _Fail()
        return r

    def bool_name(self, e: A.Name, sc: Scope) -> I.Bool:
        name = e.ident.name
        d = self._let(name, e, sc)
        if d is not None:
            return self.bool_(d.expr, self._let_scope(name, sc))
        if name in self.facts:
            f = self.facts[name]
            self.reads.append(name)
            return I.BFact(name, f.judgment)
        if sc.item is not None and sc.item.kind in ("condition", "procedure", "observation"):
            attr = self._attribute(sc.item, name)
            if attr is not None:
                if attr.type != "boolean":
                    self.fail(e.span, f"attribute '{name}' is {attr.type}, not a yes/no value; compare it")
                return I.BAttrBool(sc.item.var, name)
        if name in self.items or name in self.classes:
            self.fail(e.span, f"'{name}' is a {self.names[name][0][2:]}; ask whether it is recorded with `any {name}`")
        if name in self.obs:
            self.fail(e.span, f"'{name}' is an observation; select a value with `latest {name} <window>`")
        ir, ty = self.value(e, sc)
        self.fail(e.span, f"expected a yes/no condition, found {self._tname(ty)}")

    def _attribute(self, item: ItemCtx, name: str) -> Optional[I.Attribute]:
        found = None
        for code in item.codes:
            el = self.items_ir.get(code) if item.kind != "observation" else self.obs_ir.get(code)
            if el is None:
                return None
            a = next((x for x in el.attributes if x.name == name), None)
            if a is None:
                return None
            if found is not None and (found.type, found.values) != (a.type, a.values):
                return None
            found = a
        return found

    # ---- values
    def value(self, e, sc: Scope):
        sc = self._enter(sc)
        if isinstance(e, A.Number):
            return I.NConst(U.decimal_fraction(e.value), e.value), num_t(None)
        if isinstance(e, A.Quantity):
            unit = self._unit(e.unit)
            if unit is None:
                raise _Fail()
            v = U.decimal_fraction(e.value)
            if unit in U.CALENDAR_UNITS and v.denominator != 1:
                self.fail(e.span, f"a fractional number of {'months' if unit == 'mo' else 'years'} ({e.value} {unit}) is ambiguous; write it in days or weeks")
            return I.NConst(v, f"{e.value} {e.unit.code}"), num_t(unit)
        if isinstance(e, A.Age):
            anchor = self._anchor(e.anchor)
            self.reads.append("birth_date")
            return I.NAge(anchor), num_t("a")
        if isinstance(e, A.Name):
            return self.value_name(e, sc)
        if isinstance(e, A.Convert):
            unit = self._unit(e.unit)
            if unit is None:
                raise _Fail()
            if self._peek(e.operand, sc) == "obs":
                sel, el = self.selection(e.operand, sc)
                if el.kind == "qualitative":
                    self.fail(e.span, f"'{el.name}' is qualitative and has no number")
                conv = U.conversion(el.unit, unit, el.molar_mass)
                if conv is None:
                    self.fail(e.unit.span, f"cannot convert {el.name} ({_unit_text(el.unit)}) to {unit}",
                              hint="a conversion between mass and substance needs the element's molar_mass" if el.molar_mass is None else None)
                table = tuple((u, Conversion_compose(c, conv)) for u, c in el.units)
                return I.NObs(sel, table, unit), num_t(None)
            x, t = self.value(e.operand, sc)
            if t[0] != "num":
                self.fail(e.span, f"cannot convert {self._tname(t)} to {unit}")
            if t[1] in (None, "1") and unit != "1":
                self.fail(e.span, f"a plain number has no unit to convert to {unit}")
            if isinstance(x, I.NAge):
                if unit not in AGE_UNITS:
                    self.fail(e.unit.span, "age is counted in completed days, weeks, months or years: take it `in d`, `in wk`, `in mo` or `in a`")
                return I.NAge(x.anchor, unit), num_t(None)
            conv = U.conversion(t[1] or "1", unit)
            if conv is None:
                self.fail(e.unit.span, f"cannot convert {t[1]} to {unit}")
            if conv.scale == 1 and conv.offset == 0:
                return x, num_t(None)
            return I.NScale(x, conv.scale, conv.offset), num_t(None)
        if isinstance(e, A.Arith):
            return self.arith(e, sc)
        if isinstance(e, A.Neg):
            x, t = self.value(e.operand, sc)
            if t[0] != "num":
                self.fail(e.span, f"cannot negate {self._tname(t)}")
            if isinstance(x, I.NConst):
                return I.NConst(-x.value, "-" + x.text), t
            return I.NArith("-", I.NConst(Fraction(0), "0"), x), t
        if isinstance(e, A.IfElse):
            (a, at), c, (b, bt) = self._all3(lambda: self.value(e.then, sc), lambda: self.bool_(e.cond, sc), lambda: self.value(e.otherwise, sc))
            if at[0] != "num" or bt[0] != "num":
                self.fail(e.span, "both branches of `if ... else` must be numbers (or both yes/no conditions)")
            b = self._to_unit(b, bt[1], at[1], e.otherwise.span)
            return I.NIf(c, a, b), at
        if isinstance(e, A.EquivalentOf):
            table = e.table.name
            if table not in self.equiv:
                self.fail(e.table.span, f"unknown equivalence table '{table}'{_suggest(table, self.equiv)}")
            t = self.equiv_ir.get(table)
            if t is None:
                raise _Fail()
            if not (isinstance(e.operand, A.Name) and e.operand.ident.name == "daily_dose"):
                self.fail(e.operand.span, "`as TABLE` converts a treatment's daily_dose")
            self._need_item(e.operand, sc, "treatment", "daily_dose")
            return I.NDose(sc.item.var, table, t.unit), num_t(t.unit)
        if isinstance(e, A.Latest):
            sel, el = self.selection(e, sc)
            return sel, ("obs", el.name)
        if isinstance(e, A.RefLimit):
            self.fail(e.span, f"{e.which} is the reference limit of the observation being compared; use it on the right of a comparison with `latest ...`")
        if isinstance(e, A.Extreme):
            self.fail(e.span, "`shorter of` / `longer of` give a window's duration (within shorter of A and B before ANCHOR)")
        if isinstance(e, (A.And, A.Or, A.Not, A.Compare, A.Query, A.IsValue, A.Member, A.Between, A.Implies, A.Chain)):
            self.fail(e.span, "expected a value, found a yes/no condition")
        self.fail(e.span, f"unexpected expression {render(e)!r}")

    def value_name(self, e: A.Name, sc: Scope):
        name = e.ident.name
        d = self._let(name, e, sc)
        if d is not None:
            return self.value(d.expr, self._let_scope(name, sc))
        if name in self.derived:
            el = self._derived(name, e.span)
            if el is None:
                raise _Fail()
            self.reads.append(name)
            return I.NDerived(name), num_t(el.unit)
        if name in self.anchors:
            return I.DtAnchor(name), DATE
        it = sc.item
        if it is not None:
            if it.kind == "treatment":
                if name == "half_life":
                    return I.NHalfLife(it.var), num_t("d")
                if name == "course":
                    if it.anchor is None:
                        self.fail(e.span, "`course` counts an ongoing course up to the date its query's window is measured "
                                          "from; give the query a window measured from one date (within D before X, on or "
                                          "before X): not `ever`, not `between X and Y`")
                    return I.NCourse(it.var, it.anchor), num_t("d")
                if name == "daily_dose":
                    self.fail(e.span, "a daily dose is compared through an equivalence table: daily_dose as TABLE")
            elif it.kind in ("condition", "procedure", "observation"):
                attr = self._attribute(it, name)
                if attr is not None:
                    if attr.type == "number":
                        return I.NAttr(it.var, name, attr.unit, attr.units), num_t(attr.unit)
                    if attr.type == "date":
                        return I.DtAttr(it.var, name), DATE
                    if attr.type == "boolean":
                        return I.BAttrBool(it.var, name), BOOL
                    return None, ("cat", attr.values)
            if name in ITEM_DATES.get(it.kind, ()):
                return I.DtItem(it.var, name, it.kind), DATE
        if name == "sex":
            return None, ("cat", ("male", "female"))
        if name in self.facts:
            return I.BFact(name, self.facts[name].judgment), BOOL
        if name in self.obs:
            self.fail(e.span, f"'{name}' is an observation; select a value with `latest {name} <window>`")
        if name in self.items or name in self.classes:
            self.fail(e.span, f"'{name}' is {self.names[name][0]}; ask whether it is recorded with `any {name}`")
        self._unknown_name(e, sc, "a value")

    def arith(self, e: A.Arith, sc: Scope):
        (l, lt), (r, rt) = self._both(lambda: self.value(e.left, sc), lambda: self.value(e.right, sc))
        if lt[0] == "date" and e.op in "+-":
            dur = self.duration(e.right, sc)
            return I.DtShift(l, 1 if e.op == "+" else -1, dur, render(e)), DATE
        if lt[0] != "num" or rt[0] != "num":
            bad = e.left if lt[0] != "num" else e.right
            self.fail(bad.span, f"arithmetic needs numbers, found {self._tname(lt if lt[0] != 'num' else rt)}")
        lu, ru = lt[1] or "1", rt[1] or "1"
        if e.op in "+-":
            if lu != ru:
                r = self._to_unit(r, ru, lu, e.right.span)
            return self._fold(e.op, l, r), num_t(lt[1])
        if lu != "1" and ru != "1":
            self.fail(e.span, f"cannot multiply or divide {lu} by {ru}; take each value's number with `X in UNIT` first")
        if e.op == "/" and ru != "1":
            self.fail(e.right.span, f"cannot divide by {ru}; take its number with `X in UNIT` first")
        unit = lt[1] if lu != "1" else rt[1]
        return self._fold(e.op, l, r), num_t(unit)

    def _fold(self, op, l, r) -> I.Num:
        if isinstance(l, I.NConst) and isinstance(r, I.NConst):
            a, b = l.value, r.value
            if op == "/" and b == 0:
                return I.NArith(op, l, r)
            v = {"+": a + b, "-": a - b, "*": a * b, "/": a / b if b else a}[op]
            return I.NConst(v, f"{l.text} {op} {r.text}")
        return I.NArith(op, l, r)
