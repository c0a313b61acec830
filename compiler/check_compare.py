"""Comparisons: units and quantities, limits, ranges, sets and `is` values: a part of the checker's class
(compiler.checker.Checker).
"""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

from . import ast as A
from . import ir as I
from . import units as U
from .check_common import _Fail, Scope, ItemCtx, num_t, _suggest, AGE_UNITS, _FLIP, _unit_text
from .check_render import render


class ComparisonsMixin:
    """Comparisons: units and quantities, limits, ranges, sets and `is` values."""

    # ---- comparisons
    def compare(self, e: A.Compare, sc: Scope) -> I.Bool:
        left, right, op = e.left, e.right, e.op
        if isinstance(right, A.Age) and not isinstance(left, A.Age):  # 28 d <= age at screening
            left, right, op = right, left, _FLIP[op]
        lty = self._peek(left, sc)
        if lty != "obs" and self._peek(right, sc) == "obs":
            left, right, op = right, left, _FLIP[op]
            lty = "obs"
        if lty == "obs":
            sel, el = self.selection(left, sc)
            if el.kind == "qualitative":
                self.fail(e.span, f"'{el.name}' is qualitative ({', '.join(el.values)}); test it with `is {el.values[0]}`")
            lim = self.limit(right, sc, el)
            return I.BObsCmp(sel, op, lim)
        lir, lt = self.value(left, sc)
        if lt[0] == "date":
            rir, rt = self.value(right, sc)
            if rt[0] != "date":
                self.fail(right.span, f"cannot compare a date with {self._tname(rt)}")
            return I.BDateCmp(lir, op, rir)
        if lt[0] != "num":
            self.fail(left.span, f"cannot compare {self._tname(lt)} with '{op}'",
                      hint="test a category with `is VALUE` or `in {A, B}`" if lt[0] == "cat" else None)
        rir, rt = self.value(right, sc)
        if rt[0] != "num":
            self.fail(right.span, f"cannot compare {self._tname(lt)} with {self._tname(rt)}")
        if isinstance(lir, I.NAge) and lt[1] is not None:  # (`age at A in a` is a plain number)
            lir, lt, rir = self._age_cmp(lir, rir, rt, right)
        rir = self._to_unit(rir, rt[1], lt[1], right.span)
        return I.BNumCmp(lir, op, rir, _unit_text(lt[1]))

    def _age_cmp(self, age: I.NAge, rir, rt, right):
        """Age compared with a limit counts completed calendar units of the limit's unit."""
        unit = rt[1]
        if unit not in AGE_UNITS:
            self.fail(right.span, "age is counted in completed days, weeks, months or years: compare it with d, wk, mo or a, such as 18 a or 28 d",
                      hint="a plain number has no unit: write 18 a" if unit in (None, "1") else None)
        consts = _if_leaves(rir)  # a fixed limit, or a conditional of fixed limits (28 d if C else 90 d)
        if consts is None and unit != "a":
            self.fail(right.span, "age in days, weeks or months is compared with a fixed limit, such as 28 d, "
                                  "or a conditional of fixed limits, such as (28 d if sex is male else 90 d)")
        if consts and any(c.value.denominator != 1 for c in consts):
            self.fail(right.span, "age is counted in whole units; write a fractional limit in a smaller unit (days or weeks)")
        return I.NAge(age.anchor, unit), num_t(unit), rir

    def chain(self, e: A.Chain, sc: Scope) -> I.Bool:
        up = {"<", "<="}
        down = {">", ">="}
        if not ((e.op1 in up and e.op2 in up) or (e.op1 in down and e.op2 in down)):
            self.fail(e.op2_span, f"a range reads in one direction: LOW <= X < HIGH or HIGH > X >= LOW, not '{e.op1}' then '{e.op2}'",
                      hint="for two separate conditions write them with `and`")
        first = A.Compare(e.op1, e.op1_span, e.left, e.middle, e.span)
        second = A.Compare(e.op2, e.op2_span, e.middle, e.right, e.span)
        a, b = self._both(lambda: self.compare(first, sc), lambda: self.compare(second, sc))
        return I.BAnd((a, b))

    def number_set(self, e: A.Member, sc: Scope) -> I.Bool:
        names = [v for v in e.values if isinstance(v, A.Ident)]
        if names:
            self.fail(names[0].span, "a set holds names or numbers, not both",
                      hint="numbers test a value (ecog in {0, 1}); names test a category (sex in {male, female})")
        if self._peek(e.subject, sc) != "obs":
            x, t = self.value(e.subject, sc)
            if t[0] == "cat":
                self.fail(e.values[0].span, f"{render(e.subject)} is a category; its values are names, not numbers",
                          hint="its values are: " + ", ".join(t[1]) if t[1] else None)
            if t[0] != "num":
                self.fail(e.subject.span, f"a set of numbers tests a number, found {self._tname(t)}")
        tests = [self.compare(A.Compare("=", v.span, e.subject, v, e.span), sc) for v in e.values]
        any_of = tests[0] if len(tests) == 1 else I.BOr(tuple(tests))
        return I.BNot(any_of) if e.negated else any_of

    def _to_unit(self, ir, src, dst, span) -> I.Num:
        s = src if src not in (None,) else "1"
        d = dst if dst not in (None,) else "1"
        if s == d:
            return ir
        conv = U.conversion(s, d)
        if conv is None:
            self.fail(span, f"cannot compare {_unit_text(dst) or 'a number'} with {_unit_text(src) or 'a number'}",
                      hint="a number without a unit compares only with a dimensionless value" if "1" in (s, d) else None)
        if isinstance(ir, I.NConst):
            return I.NConst(conv.apply(ir.value), ir.text)
        return I.NScale(ir, conv.scale, conv.offset)

    def _peek(self, e, sc: Scope, depth=0) -> str:
        """Whether e denotes a selected observation (without reporting anything)."""
        if depth > 50:
            return "?"
        if isinstance(e, A.Latest):
            return "obs"
        if isinstance(e, A.Name):
            if e.ident.name in sc.lets and e.ident.name not in sc.let_stack:
                return self._peek(sc.lets[e.ident.name].expr, self._let_scope(e.ident.name, sc), depth + 1)
            if e.ident.name == "value" and sc.item is not None and sc.item.kind == "observation":
                return "obs"
        return "?"

    def selection(self, e, sc: Scope):
        if isinstance(e, A.Latest):
            code = e.code.name
            if code not in self.obs:
                if code in self.names:
                    self.fail(e.code.span, f"'{code}' is {self.names[code][0]}; `latest` selects an observation"
                              + (f" (ask with `any {code}`)" if code in self.items or code in self.classes else ""))
                self.fail(e.code.span, f"unknown observation '{code}'{_suggest(code, self.obs)}")
            el = self.obs_ir.get(code)
            if el is None:
                raise _Fail()
            if e.filter is None:
                win = self.window(e.window, sc)
                self.reads.append(code)
                return I.SelLatest(code, win, f"latest {code} {win.text}"), el
            var = self._new_var()
            item = ItemCtx("observation", (code,), var, self._win_anchor(e.window))
            win, pred = self._both(lambda: self.window(e.window, sc), lambda: self.bool_(e.filter, replace(sc, item=item)))
            if e.filter_kind == "unless":
                pred = I.BNot(pred)
            self.reads.append(code)
            return I.SelLatest(code, win, f"latest {code} {win.text} {e.filter_kind} {render(e.filter)}", var, pred), el
        if isinstance(e, A.Name):
            name = e.ident.name
            d = self._let(name, e, sc)
            if d is not None:
                return self.selection(d.expr, self._let_scope(name, sc))
            if name == "value" and sc.item is not None and sc.item.kind == "observation":
                code = sc.item.codes[0]
                el = self.obs_ir.get(code)
                if el is None:
                    raise _Fail()
                return I.SelItem(code, sc.item.var, code), el
        self.fail(e.span, "expected an observation")

    def limit(self, e, sc: Scope, el: I.ObsElement) -> I.Lim:
        sc = self._enter(sc)
        if isinstance(e, A.IfElse):
            a, c, b = self._all3(lambda: self.limit(e.then, sc, el), lambda: self.bool_(e.cond, sc), lambda: self.limit(e.otherwise, sc, el))
            return I.LIf(c, a, b, render(e))
        if isinstance(e, A.Name):
            d = self._let(e.ident.name, e, sc)
            if d is not None:
                return self.limit(d.expr, self._let_scope(e.ident.name, sc), el)
        if isinstance(e, A.RefLimit):
            return self._ref_limit(e, Fraction(1), el, render(e))
        if isinstance(e, A.Arith) and e.op == "*" and (isinstance(e.left, A.RefLimit) or isinstance(e.right, A.RefLimit)):
            ref, k = (e.left, e.right) if isinstance(e.left, A.RefLimit) else (e.right, e.left)
            if not isinstance(k, A.Number):
                self.fail(k.span, f"a multiple of {ref.which} is a plain number, such as 2.5 x {ref.which}")
            return self._ref_limit(ref, U.decimal_fraction(k.value), el, render(e))
        if isinstance(e, A.Quantity):
            unit = self._unit(e.unit)
            if unit is None:
                raise _Fail()
            return self._const_limit(U.decimal_fraction(e.value), unit, el, e, f"{e.value} {e.unit.code}")
        if isinstance(e, A.Number):
            if el.unit != "1":
                self.fail(e.span, f"the limit for {el.name} needs a unit: {el.name} is measured in {el.unit}",
                          hint=f"write {e.value} {el.unit}")
            return self._const_limit(U.decimal_fraction(e.value), "1", el, e, e.value)
        if isinstance(e, A.Neg) and isinstance(e.operand, (A.Number, A.Quantity)):
            inner = e.operand
            unit = "1" if isinstance(inner, A.Number) else self._unit(inner.unit)
            if unit is None:
                raise _Fail()
            return self._const_limit(-U.decimal_fraction(inner.value), unit, el, e, render(e))
        self.fail(e.span, f"expected a limit for {el.name} (a quantity such as 90 {el.unit}, a multiple of ULN, or (A if CONDITION else B)), found {render(e)!r}")

    def _ref_limit(self, ref: A.RefLimit, k: Fraction, el: I.ObsElement, text: str) -> I.Lim:
        which = ref.which.lower()
        if which not in el.limits:
            article = "an" if ref.which in ("LLN", "LLOQ") else "a"
            self.fail(ref.span, f"observation '{el.name}' does not carry {article} {ref.which}",
                      hint=f"declare it in the vocabulary: limits {ref.which}")
        return I.LRef(which, k, text)

    def _const_limit(self, value: Fraction, unit: str, el: I.ObsElement, e, text: str) -> I.Lim:
        to_el = U.conversion(unit, el.unit, el.molar_mass)
        if to_el is None:
            span = e.unit.span if isinstance(e, A.Quantity) else e.span
            self.fail(span, f"cannot compare {_unit_text(el.unit) or 'a number'} with {_unit_text(unit) or 'a number'}",
                      hint=f"{el.name} is measured in {el.unit}")
        if U.is_time(unit) and unit in U.CALENDAR_UNITS and value.denominator != 1:
            self.fail(e.span, f"a fractional number of {'months' if unit == 'mo' else 'years'} is ambiguous; write it in days or weeks")
        in_el = to_el.apply(value)
        table = []
        for u, conv in el.units:  # conv: u -> el.unit ; limit in u = inverse
            table.append((u, conv.invert().apply(in_el)))
        return I.LConst(tuple(table), text)

    def between(self, e: A.Between, sc: Scope) -> I.Bool:
        if self._peek(e.subject, sc) == "obs":
            sel, el = self.selection(e.subject, sc)
            lo, hi = self._both(lambda: self.limit(e.low, sc, el), lambda: self.limit(e.high, sc, el))
            return I.BObsBetween(sel, lo, hi)
        x, t = self.value(e.subject, sc)
        if t[0] != "num":
            self.fail(e.subject.span, f"`between` needs a number, found {self._tname(t)}")
        (lo, lt), (hi, ht) = self._both(lambda: self.value(e.low, sc), lambda: self.value(e.high, sc))
        lo = self._to_unit(lo, lt[1], t[1], e.low.span)
        hi = self._to_unit(hi, ht[1], t[1], e.high.span)
        return I.BAnd((I.BNumCmp(x, ">=", lo, _unit_text(t[1])), I.BNumCmp(x, "<=", hi, _unit_text(t[1]))))

    def is_value(self, subject, values: tuple, negated: bool, e, sc: Scope) -> I.Bool:
        tests = tuple(v.name for v in values)
        if self._peek(subject, sc) == "obs":
            sel, el = self.selection(subject, sc)
            if el.kind != "qualitative":
                self.fail(e.span, f"'{el.name}' is a quantity in {el.unit}; compare it with a limit")
            for v in values:
                if v.name not in el.values:
                    self.error(v.span, f"'{v.name}' is not a value of {el.name}{_suggest(v.name, el.values)}",
                               hint="its values are: " + ", ".join(el.values))
            return I.BObsIs(sel, tests, negated, render(e))
        if isinstance(subject, A.Name):
            name = subject.ident.name
            d = self._let(name, subject, sc)
            if d is not None:
                return self.is_value(d.expr, values, negated, e, self._let_scope(name, sc))
            if name == "sex" and name not in sc.lets:
                for v in values:
                    if v.name not in ("male", "female"):
                        self.error(v.span, f"sex is male or female, not '{v.name}'")
                self.reads.append("sex")
                return I.BSexIs(tests, negated)
            it = sc.item
            if it is not None and it.kind == "treatment":
                if name in ("route", "purpose"):
                    return I.BFieldIs(it.var, name, tests, negated)
                if name == "class":
                    for v in values:
                        if v.name not in self.classes:
                            self.error(v.span, f"unknown treatment class '{v.name}'{_suggest(v.name, self.classes)}")
                    return I.BClassIn(it.var, tests, negated)
            if it is not None and it.kind in ("condition", "procedure", "observation"):
                if name == "status" and it.kind == "condition":
                    for v in values:
                        if v.name not in ("active", "resolved"):
                            self.error(v.span, f"status is active or resolved, not '{v.name}'")
                    return I.BAttrIs(it.var, "status", "status", ("active", "resolved"), tests, negated)
                attr = self._attribute(it, name)
                if attr is not None:
                    if attr.type == "enum":
                        for v in values:
                            if v.name not in attr.values:
                                self.error(v.span, f"'{v.name}' is not a value of {name}{_suggest(v.name, attr.values)}",
                                           hint="its values are: " + ", ".join(attr.values))
                    elif attr.type != "text":
                        self.fail(e.span, f"attribute '{name}' is {attr.type}; " + (
                            "use it as a condition itself" if attr.type == "boolean" else "compare it with a number"))
                    return I.BAttrIs(it.var, name, attr.type, attr.values, tests, negated)
        x, t = self.value(subject, sc)
        self.fail(subject.span, f"cannot test {self._tname(t)} with `is`/`in`; they test a category (sex, an attribute, a qualitative result)")


def _if_leaves(n):
    """The constants of a fixed limit or of a conditional of fixed limits (None otherwise)."""
    if isinstance(n, I.NConst):
        return [n]
    if isinstance(n, I.NIf):
        a, b = _if_leaves(n.then), _if_leaves(n.otherwise)
        return None if a is None or b is None else a + b
    return None
