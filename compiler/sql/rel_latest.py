"""Two stages for `latest X ... <compare> <limit>` in the relational DuckDB script (a mixin of
relational.RelGenerator; docs/sql.md, "The SQL"): the patients decided from a few cheap per-patient
aggregates leave the exact chain, as rel_fast.py does for comparisons of two numbers.

Stage 1 is one aggregate per patient over the rows of the code in elig_ox (the loaded view or the
work table), reading only the row columns d, i, w and the plain columns x_<field> (script.FLAT_OX:
the value and unit, or the qualitative value, and uln/lln/lloq) of the struct x, which a view
computes whole for any query that reads one of its fields: the readings of the code, the latest
dated key in the window and that reading's fields (arg_max), the readings without a date, the
readings without a code that could lie in the window. A patient is decided where the latest
reading is the one candidate (RelGenerator._rel_latest's ``one``: the anchor known, a dated
reading in the window, no reading without a date, no reading without a code undated or dated in
the window's widest span) and either unusable (from its value and unit: its code missing) or
clearly apart from the limit: the comparison is evaluated once per patient on that reading by
doubles (float_leaf: elig_sign_rec's and elig_sign_ref's own first test, or an integer reading
against a limit that is a double), NULL near the limit (the exact path's); or where there is no
candidate at all (Generator.latest_parts: the window unknown, no reading, no dated reading in a
window of sure bounds and, for `latest ... ever`, no undated one). With a conditional limit
(`5 x ULN if ... else 2.5 x ULN`) only a known truth is decided. rel_fast.FastNumbers.fnum takes
the latest reading of a number comparison (a creatinine clearance) from the same stage 1.

Every other patient goes through the former exact path (RelGenerator._rel_latest with the row
truths), unchanged but computed only for them: its helper columns under the guard (FastNumbers.
helper) and its item rows filtered by it (``rows_only``: the reading structs are built for their
rows only). Where the comparison is the whole criterion, the decided patients leave the chain
(build: their outcome the stage's, UNION ALL with the others). DuckDB only: the Spark script
(decimals false) keeps the one chain."""

from __future__ import annotations

import re
from fractions import Fraction

from .. import ir as I
from . import numbers as N
from .gen_types import B, q, qlist
from .script import FLAT_OX

PREV = "\x00PREV\x00"  # relational.PREV: the previous CTE of the chain
BIG = 1048576  # relational.BIG: (day, index) keys


class LatestStages:
    """latest_staged: the two-stage form of a latest-reading comparison."""

    rows_only = None  # (guard, level): the exact path's item rows are those of the patients it holds for

    def latest_staged(self, s, ctx, leaves, one_v, lt, strict, exact):
        """The B of `latest` selection s compared with its limit: ``leaves`` the row truths over
        the reading ``_x`` (RelGenerator._latest_rows' fields t0, t1...), ``one_v`` the truth of a
        candidate x from them (x.t.t<j>), ``lt`` its level (a conditional limit's conditions),
        ``strict`` whether only a known truth is decided, ``exact()`` the former path's B."""
        if not self.decimals or self.guards or self.rows_only is not None or ctx.item_level:
            return exact()
        st = self.latest_stage1(s, ctx, set(re.findall(r"\b_x\.(\w+)", " ".join(leaves))))
        if st is None:
            return exact()
        top, one, none, bad, miss, l1 = st
        lone = [self._rename(e, "_x", top) for e in leaves]
        tv = re.sub(r"\bx\.t\.(t\d+|b)\b",
                    lambda m: f"({bad})" if m.group(1) == "b" else f"({lone[int(m.group(1)[1:])]})", one_v)
        td, ld = self.helper(f"(CASE WHEN {one} THEN (CASE WHEN {bad} THEN NULL ELSE {tv} END) END)", max(l1, lt))
        # decided: the truth known by the doubles, or surely unknown (an unusable reading: its
        # code missing; with a conditional limit, the exact path's missing codes), or no candidate
        known = f"{td} IS NOT NULL" if strict else f"({td} IS NOT NULL OR {bad})"
        decided = f"({one} AND {known}) OR {none}"
        gd, lg = self.helper(f"coalesce({decided}, FALSE)", ld)
        md, _ = self.helper(f"(CASE WHEN {td} IS NULL THEN {miss} END)", ld)  # (read where decided: gd's level)
        saved = dict(self.lazy_latest)
        self.guards.append((f"NOT {gd}", lg))
        self.rows_only = (f"NOT {gd}", lg)
        try:
            x = exact()
        finally:
            self.guards.pop()
            self.rows_only = None
            self.lazy_latest = saved
        t = f"(CASE WHEN {gd} THEN {td} ELSE {x.t} END)"
        m = f"(CASE WHEN {gd} THEN {md} ELSE {x.m} END)"
        self.fast_ts[t] = (gd, td, md, lg)
        return B(t, m, x.r, max(lg, x.lvl))

    def latest_stage1(self, s, ctx, fields):
        """Stage 1 of `latest` selection s (no filter) with the reading's plain columns ``fields``
        (FLAT_OX): (the latest reading's struct of them, whether it is the one candidate, whether
        there is surely none, whether it is unusable, the missing codes where there is none,
        level), or None where the code or a field has no plain column."""
        w = self.window(s.window, ctx)
        decl = self.obs.get(s.code)
        if decl is None:
            return None
        # whether the reading is unusable (the struct's bad, script.obs_rows), from its value and
        # unit on the one latest reading rather than on every row
        qual = decl.kind == "qualitative"
        fields = set(fields) | ({"s"} if qual else {"v", "u"})
        if not fields <= set(FLAT_OX):
            return None
        fields = sorted(fields)
        packed = "{" + ", ".join(f"{q(f)}: o.x_{f}" for f in fields) + "}"
        # (the always true `o.d IS NOT DISTINCT FROM o.d`: DuckDB's optimizer otherwise takes this
        # scan of the code's rows and the exact path's for one subplan, and materializes all the
        # columns of all its rows to read them twice: most of the cost of the step)
        rows = (f"(SELECT p.*, o.i AS _i, o.d AS _d, o.w AS _w, {packed} AS _y FROM elig_ox o "
                f"JOIN {PREV} p ON p.seq = o.seq WHERE o.code = {q(s.code)} AND o.d IS NOT DISTINCT FROM o.d)")
        inw = f"_d IS NOT NULL AND _d BETWEEN ({w.lo}) AND ({w.hi})"
        key = f"CAST(_d AS BIGINT) * {BIG} + _i"
        aggs = ["count(*) FILTER (WHERE NOT _w)",
                f"max({key}) FILTER (WHERE NOT _w AND {inw})",
                f"arg_max(_y, {key}) FILTER (WHERE NOT _w AND {inw})",
                "count(*) FILTER (WHERE NOT _w AND _d IS NULL)",
                # a reading without a code could be the latest: undated, or dated in the widest span
                f"count(*) FILTER (WHERE _w AND (_d IS NULL OR NOT coalesce(_d < ({w.lom}) OR _d > ({w.him}), FALSE)))"]
        # a reading in the margin after the window's sure end could be the latest (runtime._latest's `late`)
        aggs.append("FALSE" if w.hi == w.him else f"bool_or(NOT _w AND _d > ({w.hi}) AND _d <= ({w.him}))")
        (n, k, top, nfl, nwild, later), l1 = self.rel_join(rows, aggs, w.lvl)
        n = f"coalesce({n}, 0)"
        ok = f"coalesce({w.ok}, FALSE)"
        alone = f"coalesce({nfl}, 0) = 0 AND coalesce({nwild}, 0) = 0"
        # the candidates (RelGenerator._rel_latest, Generator.latest_parts): the one latest reading
        one = f"({ok} AND {n} > 0 AND {k} IS NOT NULL AND {alone} AND NOT coalesce({later}, FALSE))"
        # or none (Generator.latest_parts' candidates NULL, its missing codes those of `miss`):
        # the window unknown, no reading of the code, or, in a window whose bounds are sure (no
        # reading in its margin: `maybe` false), no dated reading in it and, where a reading
        # without a usable date could be the latest (w.ever), none of those
        fixed = w.lo == w.lom and w.hi == w.him
        lone_k = f" OR ({k} IS NULL" + (f" AND coalesce({nfl}, 0) = 0" if w.ever else "") + ")"
        none = f"(NOT {ok} OR {n} = 0" + (lone_k if fixed else "") + ")"
        if qual:
            bad = f"NOT coalesce({top}.s IN ({', '.join(q(v) for v in decl.values)}), FALSE)"
        else:
            bad = f"({top}.v IS NULL OR coalesce({top}.u NOT IN ({', '.join(q(u) for u, _ in decl.units)}), TRUE))"
        code = qlist([s.code])
        miss = f"(CASE WHEN NOT {ok} THEN (CASE WHEN {n} > 0 THEN {w.amiss} ELSE list_concat({code}, {w.amiss}) END) ELSE {code} END)"
        return top, one, none, bad, miss, l1

    def float_leaves(self, lim, op: str, out: list) -> list:
        """The float-only truths of reading _x against the alternatives of a limit, in the order of
        RelGenerator._leaf_truths (its fields t0, t1...): float_leaf of each."""
        if isinstance(lim, I.LIf):
            self.float_leaves(lim.then, op, out)
            self.float_leaves(lim.otherwise, op, out)
        else:
            out.append(self.float_leaf(lim, op))
        return out

    @staticmethod
    def float_leaf(lim, op: str, x: str = "_x") -> str:
        """The truth of reading x against a fixed or reference limit where the doubles decide it,
        NULL where the reading is within rounding of the limit (elig_sign_rec's and
        elig_sign_ref's own first tests: the exact comparison then decides, the exact path's) or
        its unit or reference is unknown; except an integer reading against a limit that is a
        double (ECOG 2 between 0 and 2, 90 g/L against 90 g/L): the doubles' sign is exact."""
        if isinstance(lim, I.LConst):
            def sign(v):
                f = float(v)
                fd, ed = f"CAST({f!r} AS DOUBLE)", f"CAST({1e-9 * (abs(f) + 1.0)!r} AS DOUBLE)"
                # within rounding of a limit that is a double: an integer reading below 2^53 is
                # its own exact value (its shortest decimal), so the doubles' sign is the exact one
                same = (f" WHEN {x}.v = round({x}.v) AND abs({x}.v) < 9e15 THEN sign({x}.v - {fd})"
                        if Fraction(f) == Fraction(v) else "")
                return f"(CASE WHEN {x}.v - {fd} > {ed} THEN 1 WHEN {x}.v - {fd} < -{ed} THEN -1{same} END)"
            cases = " ".join(f"WHEN {q(u)} THEN {sign(v)}" for u, v in lim.table)
            return N.holds(op, f"(CASE {x}.u {cases} END)")
        w = lim.which
        kr = f"(CAST({float(lim.multiple)!r} AS DOUBLE) * {x}.{w})"
        eps = f"1e-9 * (abs({kr}) + 1.0)"
        return N.holds(op, f"(CASE WHEN {x}.v - {kr} > {eps} THEN 1 WHEN {x}.v - {kr} < -{eps} THEN -1 END)")

    def compact_sign(self, lim, x: str) -> str:
        """The exact sign of reading x against a fixed limit given in several units, written once
        with the limit's double, tolerance, decimal and fraction looked up by the reading's unit
        (RelGenerator.limit_truths' per-unit form repeated the exact fallback, macros of lambdas,
        once per unit: most of the cost of planning a step): the same tests in the same order."""
        def look(f):
            return f"(CASE {x}.u " + " ".join(f"WHEN {q(u)} THEN {f(v)}" for u, v in lim.table) + " END)"
        units = "[" + ", ".join(q(u) for u, _ in lim.table) + "]"
        # (the doubles from a list at the unit's position: cheaper to bind than a CASE of them)
        fd = f"[{', '.join(f'CAST({float(v)!r} AS DOUBLE)' for _, v in lim.table)}][list_position({units}, {x}.u)]"
        ed = (f"[{', '.join(f'CAST({1e-9 * (abs(float(v)) + 1.0)!r} AS DOUBLE)' for _, v in lim.table)}]"
              f"[list_position({units}, {x}.u)]")
        decs = {u: N.dec_lit(v) for u, v in lim.table}
        dl = look(lambda v: N.dec_lit(v) or "CAST(NULL AS DECIMAL(38, 18))")
        near = N.near_sign_table(f"{x}.v", f"{x}.vi", f"{x}.u", lim.table)  # (the keys of numbers.py)
        if near is None:
            near = f"elig_sign_rec({x}.v, {x}.vi, {look(N.const)})"
        if near.startswith("elig_sign_rec") and any(decs.values()):
            near = (f"(CASE WHEN {x}.v IS NULL THEN NULL WHEN elig_xok({x}.v, {x}.vi) AND {dl} IS NOT NULL "
                    f"THEN elig_dsign(elig_xdec({x}.v, {x}.vi), {dl}) ELSE {near} END)")
        units = ", ".join(q(u) for u, _ in lim.table)
        return (f"(CASE WHEN {x}.u IN ({units}) THEN (CASE WHEN {x}.v - {fd} > {ed} THEN 1 WHEN {x}.v - {fd} < -{ed} THEN -1 "
                f"ELSE {near} END) END)")
