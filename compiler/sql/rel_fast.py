"""A two-valued fast path of the relational generator (compiler/sql/relational.py) for a
comparison of two numbers (`age at screening >= 18 a`, a derived value such as the Cockcroft-Gault
creatinine clearance against a limit): docs/sql.md, "The SQL".

Each operand is also computed as one DOUBLE with a bound of its rounding error (both columns of
the patient rows, no list and no lambda), where it is a single value: a constant, an age in
completed years or days, the one latest reading of a code converted to the rule's unit, a
conversion, arithmetic of those, a choice of those by a known condition. Where both are known and
their difference is larger than twice the sum of the bounds (or both bounds are zero: exact
doubles), the comparison is decided by the doubles. Every other patient (a value unknown, several
candidates, a condition unknown, a tie or a near-tie) gets the exact comparison over the lists of
exact numbers (Generator.b_BNumCmp), whose columns are all computed only for those patients
(CASE WHEN <undecided> THEN ... END: DuckDB evaluates the branch of the rows that take it only).

The error bounds: a double operation rounds with a relative error of at most 2^-53; EPS is
1e-15 (about 4.5 times 2^-52), TINY an absolute floor for underflow. A reading's double is the
nearest double to its JSON number; a constant's is float() of the exact fraction (bound 0 when it
is exact). A sum's bound is the operands' plus EPS of the result; a product's |a| eb + |b| ea +
ea eb plus EPS of the result; a quotient's (|a| eb + |b| ea) / (|b| (|b| - eb)) plus EPS of the
result, only where |b| > 2 eb (the divisor's sign is sure and it is not zero). Values beyond
1e300 (or NaN) are left to the exact path.
"""

from __future__ import annotations

from fractions import Fraction

from .. import ir as I
from .gen_types import ident, q

EPS = "1e-15"
TINY = "1e-300"
ZERO = "CAST(0 AS DOUBLE)"


def _lit(f: float) -> str:
    return f"CAST({f!r} AS DOUBLE)"


class FastNumbers:
    """A mixin of RelGenerator: fnum (a number as (double, error bound, level) or None) and the
    guard that makes the exact path's helper columns lazy."""

    def fast_start(self):
        self.guards: list[tuple[str, int]] = []

    def helper(self, sql: str, lvl: int):
        if getattr(self, "guards", None):
            cond = " AND ".join(g for g, _ in self.guards)
            lvl = max([lvl] + [lv for _, lv in self.guards])
            sql = f"(CASE WHEN {cond} THEN {sql} END)"
        return super().helper(sql, lvl)

    def _fh(self, v: str, e: str, lvl: int):
        """A double and its bound as helper columns (read several times above)."""
        hv, lv = self.helper(v, lvl)
        he, _ = self.helper(e, lvl)
        return hv, he, lv

    def fnum(self, n, ctx):
        """(double, error bound, level) of a number with one value, NULL where it has not one
        known value; None when the node has no such form."""
        if ctx.item_level:
            return None
        if isinstance(n, I.NConst):
            f = float(n.value)
            exact = Fraction(f) == Fraction(n.value)
            return _lit(f), (ZERO if exact else _lit(abs(f) * 1e-15 + 1e-300)), 0
        if isinstance(n, I.NAge) and n.unit in ("a", "d"):
            a = ident("a_" + n.anchor)
            years = self.age_years(n.anchor) if n.unit == "a" else f"({a} - birth)"
            # NULL when the birth date or the anchor is (their arithmetic is NULL)
            v, lv = self.helper(f"CAST({years} AS DOUBLE)", 0)
            return v, ZERO, lv
        if isinstance(n, I.NDerived):
            d = self.derived.get(n.name)
            return None if d is None else self.fnum(d.formula, ctx)
        if isinstance(n, I.NScale):
            a = self.fnum(n.operand, ctx)
            if a is None:
                return None
            va, ea, la = a
            s, o = float(n.scale), float(n.offset)
            v = f"(({va}) * {_lit(s)} + {_lit(o)})"
            e = f"(abs({s!r}) * ({ea}) + (abs(({va}) * {_lit(s)}) + {abs(o)!r} + abs({v})) * {EPS} + {TINY})"
            return self._fh(v, e, la)
        if isinstance(n, I.NArith):
            a = self.fnum(n.left, ctx)
            b = self.fnum(n.right, ctx) if a is not None else None
            if b is None:
                return None
            (va, ea, la), (vb, eb, lb) = a, b
            lvl = max(la, lb)
            if n.op in ("+", "-"):
                v = f"(({va}) {n.op} ({vb}))"
                e = f"(({ea}) + ({eb}) + abs({v}) * {EPS} + {TINY})"
            elif n.op == "*":
                v = f"(({va}) * ({vb}))"
                e = f"(abs({va}) * ({eb}) + abs({vb}) * ({ea}) + ({ea}) * ({eb}) + abs({v}) * {EPS} + {TINY})"
            else:
                v = f"(CASE WHEN abs({vb}) > 2 * ({eb}) THEN ({va}) / ({vb}) END)"
                e = (f"((abs({va}) * ({eb}) + abs({vb}) * ({ea})) / (abs({vb}) * (abs({vb}) - ({eb}))) "
                     f"+ abs({v}) * {EPS} + {TINY})")
            return self._fh(v, e, lvl)
        if isinstance(n, I.NIf):
            a = self.fnum(n.then, ctx)
            b = self.fnum(n.otherwise, ctx) if a is not None else None
            if b is None:
                return None
            c = self.b(n.cond, ctx)
            (va, ea, la), (vb, eb, lb) = a, b
            v = f"(CASE WHEN ({c.t}) THEN ({va}) WHEN NOT ({c.t}) THEN ({vb}) END)"
            e = f"(CASE WHEN ({c.t}) THEN ({ea}) WHEN NOT ({c.t}) THEN ({eb}) END)"
            return self._fh(v, e, max(la, lb, c.lvl))
        if isinstance(n, I.NObs) and isinstance(n.sel, I.SelLatest) and n.sel.pred is None:
            cands, _, lc = self._latest_lazy(n.sel, ctx)
            top, one = self.latest_one[cands]
            sc = " ".join(f"WHEN {q(u)} THEN {_lit(float(c.scale))}" for u, c in n.table)
            of = " ".join(f"WHEN {q(u)} THEN {_lit(float(c.offset))}" for u, c in n.table)
            p = f"({top}.v * (CASE {top}.u {sc} END))"
            o = f"(CASE {top}.u {of} END)"
            v = f"(CASE WHEN {one} AND NOT {top}.bad THEN {p} + {o} END)"
            e = f"((abs({p}) + abs({o}) + abs({v})) * {EPS} + {TINY})"
            return self._fh(v, e, lc)
        return None

    def fast_cmp(self, n, ctx, exact):
        """The comparison n decided by the doubles where they decide it, else exact(n, ctx)
        computed under the guard (its helper columns only for the undecided patients): a B, or
        None when an operand has no double form."""
        a = self.fnum(n.left, ctx)
        b = self.fnum(n.right, ctx) if a is not None else None
        if b is None:
            return None
        (va, ea, la), (vb, eb, lb) = a, b
        d = f"(({va}) - ({vb}))"
        ok = f"abs({va}) < 1e300 AND abs({vb}) < 1e300 AND ({ea}) + ({eb}) < 1e300"
        sign = {">=": ">= 0", "<=": "<= 0", ">": "> 0", "<": "< 0", "=": "= 0", "!=": "<> 0"}[n.op]
        fast = f"(CASE WHEN {ok} AND (({ea}) + ({eb}) = 0 OR abs({d}) > 2 * (({ea}) + ({eb}))) THEN {d} {sign} END)"
        g, lg = self.helper(fast, max(la, lb))
        saved = dict(self.lazy_latest)
        self.guards.append((f"{g} IS NULL", lg))
        try:
            x = exact(n, ctx)
        finally:
            self.guards.pop()
            self.lazy_latest = saved  # candidates built under the guard are not for others
        t = f"(CASE WHEN {g} IS NOT NULL THEN {g} ELSE {x.t} END)"
        return type(x)(t, x.m, x.r, max(lg, x.lvl))
