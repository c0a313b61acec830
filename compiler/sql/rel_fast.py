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
from .gen_types import EMPTY, ident, q, qlist

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
        self.fast_ts: dict[str, tuple] = {}  # a comparison's truth -> (decided, truth, missing, level)

    def helper(self, sql: str, lvl: int):
        if getattr(self, "guards", None):
            cond = " AND ".join(g for g, _ in self.guards)
            lvl = max([lvl] + [lv for _, lv in self.guards])
            sql = f"(CASE WHEN {cond} THEN {sql} END)"
        return super().helper(sql, lvl)

    def _col(self, sql: str, lvl: int):
        """A helper column of the patients."""
        return self.helper(sql, lvl)

    def _fh(self, v: str, e: str, st: str, m: str, lvl: int):
        """A double, its bound, its state and missing codes as columns (read several times
        above)."""
        hv, lv = self._col(v, lvl)
        he, _ = self._col(e, lvl)
        hs, _ = self._col(st, lvl)
        hm, _ = self._col(f"(CASE WHEN {hs} = 0 THEN {m} END)", lvl)
        return hv, he, hs, hm, lv

    def fnum(self, n, ctx):
        """(double, error bound, state, missing codes, level) of a number, or None when the node
        has no such form. The state is 1 where the exact number (Generator.num) is one known
        value (the double is then its value within the bound), 0 where it is surely unknown
        (NULL), with the missing codes Generator.num gives it, NULL where neither is sure."""
        if ctx.item_level:
            return None
        if isinstance(n, I.NConst):
            f = float(n.value)
            exact = Fraction(f) == Fraction(n.value)
            return _lit(f), (ZERO if exact else _lit(abs(f) * 1e-15 + 1e-300)), "1", EMPTY, 0
        if isinstance(n, I.NAge) and n.unit in ("a", "d"):
            a = ident("a_" + n.anchor)
            years = self.age_years(n.anchor) if n.unit == "a" else f"({a} - birth)"
            # NULL when the birth date or the anchor is (their arithmetic is NULL)
            v, lv = self._col(f"CAST({years} AS DOUBLE)", 0)
            st = f"(CASE WHEN birth IS NULL OR {a} IS NULL THEN 0 ELSE 1 END)"
            m = f"(CASE WHEN birth IS NULL THEN ['birth_date'] ELSE [{q(n.anchor)}] END)"
            return v, ZERO, st, m, lv
        if isinstance(n, I.NDerived):
            d = self.derived.get(n.name)
            return None if d is None else self.fnum(d.formula, ctx)
        if isinstance(n, I.NScale):
            a = self.fnum(n.operand, ctx)
            if a is None:
                return None
            va, ea, sa, ma, la = a
            s, o = float(n.scale), float(n.offset)
            v = f"(({va}) * {_lit(s)} + {_lit(o)})"
            e = f"(abs({s!r}) * ({ea}) + (abs(({va}) * {_lit(s)}) + {abs(o)!r} + abs({v})) * {EPS} + {TINY})"
            return self._fh(v, e, sa, ma, la)
        if isinstance(n, I.NArith):
            a = self.fnum(n.left, ctx)
            b = self.fnum(n.right, ctx) if a is not None else None
            if b is None:
                return None
            (va, ea, sa, ma, la), (vb, eb, sb, mb, lb) = a, b
            lvl = max(la, lb)
            both = f"({sa}) = 1 AND ({sb}) = 1"
            if n.op in ("+", "-"):
                v = f"(({va}) {n.op} ({vb}))"
                e = f"(({ea}) + ({eb}) + abs({v}) * {EPS} + {TINY})"
            elif n.op == "*":
                v = f"(({va}) * ({vb}))"
                e = f"(abs({va}) * ({eb}) + abs({vb}) * ({ea}) + ({ea}) * ({eb}) + abs({v}) * {EPS} + {TINY})"
            else:  # the divisor surely not zero, else the exact path (a zero divisor)
                both += f" AND abs({vb}) > 2 * ({eb})"
                v = f"(CASE WHEN abs({vb}) > 2 * ({eb}) THEN ({va}) / ({vb}) END)"
                e = (f"((abs({va}) * ({eb}) + abs({vb}) * ({ea})) / (abs({vb}) * (abs({vb}) - ({eb}))) "
                     f"+ abs({v}) * {EPS} + {TINY})")
            # Generator.n_NArith: unknown where an operand is, with the missing codes of those
            st = (f"(CASE WHEN {both} THEN 1 WHEN ({sa}) IS NOT NULL AND ({sb}) IS NOT NULL "
                  f"AND (({sa}) = 0 OR ({sb}) = 0) THEN 0 END)")
            m = (f"flatten([CASE WHEN ({sa}) = 0 THEN {ma} ELSE {EMPTY} END, "
                 f"CASE WHEN ({sb}) = 0 THEN {mb} ELSE {EMPTY} END])")
            return self._fh(v, e, st, m, lvl)
        if isinstance(n, I.NIf):
            a = self.fnum(n.then, ctx)
            b = self.fnum(n.otherwise, ctx) if a is not None else None
            if b is None:
                return None
            c = self.b(n.cond, ctx)
            (va, ea, sa, ma, la), (vb, eb, sb, mb, lb) = a, b
            v = f"(CASE WHEN ({c.t}) THEN ({va}) WHEN NOT ({c.t}) THEN ({vb}) END)"
            e = f"(CASE WHEN ({c.t}) THEN ({ea}) WHEN NOT ({c.t}) THEN ({eb}) END)"
            # Generator.n_NIf: the branch the condition takes; with the condition unknown, unknown
            # where a branch is (both branches' states known), else several values (the exact path)
            st = (f"(CASE WHEN ({c.t}) THEN ({sa}) WHEN NOT ({c.t}) THEN ({sb}) "
                  f"WHEN ({sa}) IS NOT NULL AND ({sb}) IS NOT NULL AND (({sa}) = 0 OR ({sb}) = 0) THEN 0 END)")
            m = (f"(CASE WHEN ({c.t}) THEN {ma} WHEN NOT ({c.t}) THEN {mb} ELSE flatten([{c.m}, "
                 f"CASE WHEN ({sa}) = 0 THEN {ma} ELSE {EMPTY} END, CASE WHEN ({sb}) = 0 THEN {mb} ELSE {EMPTY} END]) END)")
            return self._fh(v, e, st, m, max(la, lb, c.lvl))
        if isinstance(n, I.NObs) and isinstance(n.sel, I.SelLatest) and n.sel.pred is None:
            # DuckDB: the latest reading's value and unit from rel_latest's first stage (plain
            # columns, no struct per reading); the exact path's readings for the undecided only
            st1 = None if self.guards or self.rows_only is not None else self.latest_stage1(n.sel, ctx, set())
            if st1 is not None:
                top, one, none, bad, miss, lc = st1
                v, e, usable = self._latest_double(n, top, one, bad)
                st = f"(CASE WHEN {one} THEN {usable} WHEN {none} THEN 0 END)"
                m = f"(CASE WHEN {one} THEN {qlist([n.sel.code])} ELSE {miss} END)"
                return self._fh(v, e, st, m, lc)
            cands, cmiss, lc = self._latest_lazy(n.sel, ctx)
            top, one = self.latest_one[cands]
            v, e, usable = self._latest_double(n, top, one, f"{top}.bad")
            # RelGenerator.n_NObs: the one latest reading, usable (1) or not (0: its code); no
            # candidate at all (0: the missing codes of the selection); several: the exact path
            st = f"(CASE WHEN {one} THEN {usable} WHEN ({cands}) IS NULL THEN 0 END)"
            m = f"(CASE WHEN {one} THEN {qlist([n.sel.code])} ELSE {cmiss} END)"
            return self._fh(v, e, st, m, lc)
        return None

    def _latest_double(self, n, top, one, bad):
        """The one latest reading ``top`` (fields v, u) of the number ``n`` as a double in the
        accepted unit with its error bound, and its state: 0 unusable (``bad``), 1 usable."""
        units = ", ".join(q(u) for u, _ in n.table)
        sc = " ".join(f"WHEN {q(u)} THEN {_lit(float(c.scale))}" for u, c in n.table)
        of = " ".join(f"WHEN {q(u)} THEN {_lit(float(c.offset))}" for u, c in n.table)
        p = f"({top}.v * (CASE {top}.u {sc} END))"
        o = f"(CASE {top}.u {of} END)"
        v = f"(CASE WHEN {one} AND NOT {bad} THEN {p} + {o} END)"
        e = f"((abs({p}) + abs({o}) + abs({v})) * {EPS} + {TINY})"
        return v, e, f"(CASE WHEN {bad} THEN 0 WHEN {top}.u IN ({units}) THEN 1 END)"

    def fast_cmp(self, n, ctx, exact):
        """The comparison n decided without lists where the operands' states decide it (both
        one value, apart by more than their bounds: the doubles' truth; either surely unknown:
        unknown, with Generator.b_BNumCmp's missing codes), else exact(n, ctx) computed under the
        guard (its helper columns only for the undecided patients): a B, or None when an operand
        has no double form."""
        a = self.fnum(n.left, ctx)
        b = self.fnum(n.right, ctx) if a is not None else None
        if b is None:
            return None
        (va, ea, sa, ma, la), (vb, eb, sb, mb, lb) = a, b
        d = f"(({va}) - ({vb}))"
        ok = f"abs({va}) < 1e300 AND abs({vb}) < 1e300 AND ({ea}) + ({eb}) < 1e300"
        sign = {">=": ">= 0", "<=": "<= 0", ">": "> 0", "<": "< 0", "=": "= 0", "!=": "<> 0"}[n.op]
        apart = f"({sa}) = 1 AND ({sb}) = 1 AND {ok} AND (({ea}) + ({eb}) = 0 OR abs({d}) > 2 * (({ea}) + ({eb})))"
        unknown = f"({sa}) IS NOT NULL AND ({sb}) IS NOT NULL AND (({sa}) = 0 OR ({sb}) = 0)"
        lvl = max(la, lb)
        gd, lg = self._col(f"coalesce(({apart}) OR ({unknown}), FALSE)", lvl)
        gt, _ = self._col(f"(CASE WHEN {apart} THEN {d} {sign} END)", lvl)
        gm, _ = self._col(f"(CASE WHEN {unknown} THEN flatten([CASE WHEN ({sa}) = 0 THEN {ma} ELSE {EMPTY} END, "
                          f"CASE WHEN ({sb}) = 0 THEN {mb} ELSE {EMPTY} END]) END)", lvl)
        saved, rows_only = dict(self.lazy_latest), self.rows_only
        self.guards.append((f"NOT {gd}", lg))
        if rows_only is None and self.decimals:  # the exact path's readings: its patients' only (rel_latest)
            self.rows_only = (f"NOT {gd}", lg)
        try:
            x = exact(n, ctx)
        finally:
            self.guards.pop()
            self.lazy_latest = saved  # candidates built under the guard are not for others
            self.rows_only = rows_only
        t = f"(CASE WHEN {gd} THEN {gt} ELSE {x.t} END)"
        m = f"(CASE WHEN {gd} THEN {gm} ELSE {x.m} END)"
        if not self.guards:
            self.fast_ts[t] = (gd, gt, gm, lg)
        return type(x)(t, m, x.r, max(lg, x.lvl))
