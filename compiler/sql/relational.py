"""The relational DuckDB generator (docs/sql.md, "The SQL"): each criterion over long tables of
items, without per-patient lists of all items.

The chain of a criterion starts from the narrow per-patient table ``elig_pat`` (seq, patient_id,
error, sex, birth, a_<anchor>..., f_<fact>..., f_<fact>_st...); every node that reads items is a
LEFT JOIN of a per-``seq`` aggregate over the item rows of its code(s) joined with the patient's
columns it needs (``GROUP BY seq`` with max / arg_max / bool_or / count, and ``list(...)`` only of
the few rows that can matter: readings without a usable date, readings without a code, the
missing codes of unknown items in the record's order). The item rows are built once per
screening, without aggregation, as the tables

- ``elig_ox(code, seq, i, d, w, x)``: readings of the trial's observation codes, plus every
  reading without a code once per observation code (``w``), sorted by code (a criterion reads the
  row groups of its code only); ``x`` is the reading's struct of the lambda generator;
- ``elig_cx`` / ``elig_px(seq, i, code, x)``: conditions / procedures of the trial's codes and
  those without a code (``code`` NULL);
- ``elig_tx(seq, i, cls, x)``: treatments.

Everything else is the lambda generator's (compiler/sql/generate.py): the B-triple composition,
exact numbers, windows, and the per-item expressions, which here are row expressions (the item
struct is a column, a selection's few candidates a short list). A node with no relational form
(an item or observation query inside an item query) raises SqlUnsupported;
that criterion alone is then compiled by the lambda generator and reads the table elig_input
(docs/sql.md names them; SM3321 has none).
"""

from __future__ import annotations

import re
from fractions import Fraction

from .. import ir as I
from . import numbers as N
from .generate import EMPTY, Generator, SqlUnsupported, Window, B, Ctx, ident, q, qlist
from .generate import Num as _Num
from .gen_dates import NEVER
from .gen_types import key_day as _key_day, key_index as _key_index
from .rel_fast import FastNumbers
from .rel_items import ItemQueries
from .rel_latest import LatestStages
from .script import SqlCompileError, assemble, input_view

PREV = "\x00PREV\x00"  # the previous CTE of the chain, filled in when the chain is assembled
BIG = 1048576  # (day, index) keys: day * BIG + index (an index is below BIG)



class RelGenerator(ItemQueries, LatestStages, FastNumbers, Generator):
    """The lambda generator with relational leaves: joins (level, subquery) per criterion.
    ``decimals``: exact comparisons near a limit in DECIMAL(38, 18) where they fit (DuckDB); the
    Spark script keeps the fraction macros (numbers.near_sign)."""

    decimals = True

    def start(self, crit):
        super().start(crit)
        self.joins: list[tuple[int, str]] = []
        self.latest_one: dict[str, tuple[str, str]] = {}  # candidates column -> (top, "it is [top]")
        self.rowh = None  # inside an item query: the row helpers [(row level, name, expression)]
        self.lazy_latest: dict[tuple, tuple] = {}  # (code, window) -> _rel_latest(lazy) of n_NObs
        self.fast_start()
        self.bind_steps = None  # inside an item query's window: the values _bind binds, as row steps

    def int_num(self, x: str) -> str:
        """AgeNodes.int_num without elig_num's lambda (DuckDB runs a lambda at a cost per vector
        of rows, a millisecond: the exact days of every treatment row of a course duration were
        most of autoimmune_or_immunosuppression's step): an integer is its own reduced fraction
        (n = x, d = 1: elig_num's gcd is 1). Spark keeps the macro."""
        if not self.decimals:
            return super().int_num(x)
        return f"{{'f': CAST({x} AS DOUBLE), 'n': CAST({x} AS HUGEINT), 'd': CAST(1 AS HUGEINT), 'e': CAST(0 AS INTEGER)}}"

    def floor_times(self, a: str, k) -> str:
        """elig_floor(elig_mul(a, k)) written out without its macros' lambdas (DuckDB; Spark keeps
        the macros): the exact product's floor (elig_efloor: n/d x 10^e) where it fits in HUGEINT
        (a's denominator is positive), else the floor of the floating product; at most 10^9 days
        (never: a window that long reaches every date, as the evaluator's exact one does; a
        half-life of 1e300 d overflowed the script's BIGINT)."""
        if not self.decimals:
            return super().floor_times(a, k)
        k = Fraction(k)
        n, d = f"TRY({a}.n * CAST('{k.numerator}' AS HUGEINT))", f"TRY({a}.d * CAST('{k.denominator}' AS HUGEINT))"
        return f"least(coalesce(elig_efloor({n}, {d}, {a}.e), floor({a}.f * CAST({float(k)!r} AS DOUBLE))), {NEVER})"

    def _bind(self, fields: dict, body) -> str:
        """Generator._bind (each field computed once, read by name) without a lambda where the
        values are those of an item query's rows (its window's durations: a half-life, the longer
        or shorter of two, a choice by the item's class): the struct of the fields is a column of
        the rows, computed in a step of its own before the window (a one-element list_transform
        per row cost milliseconds per vector: most of anticancer_washout)."""
        if self.bind_steps is None or not self.decimals:  # (Spark: its driver ran out of heap on them)
            return super()._bind(fields, body)
        self._z = getattr(self, "_z", 0) + 1
        z = f"_zb{self._z}"
        packed = "{" + ", ".join(f"{q(k)}: {v}" for k, v in fields.items()) + "}"
        for b, name in self.bind_steps:  # the same values bound twice (a half-life read twice)
            if b == packed:
                return body(name)
        self.bind_steps.append((packed, z))
        return body(z)

    def item_window(self, n, ctx, ictx, var, it):
        """Generator.item_window; a window that does not depend on the item (`within (7 d if
        consent else 14 d) before first_dose`) is a patient-level value: its durations are not
        bound as row columns of the item rows (_bind, rel_items.duration), which the patient's
        helper column holding the window cannot read (DuckDB: Referenced table "_zb5" not found)."""
        if n.window is None or n.window.item_dependent or self.bind_steps is None:
            return super().item_window(n, ctx, ictx, var, it)
        saved, self.bind_steps = self.bind_steps, None
        try:
            return super().item_window(n, ctx, ictx, var, it)
        finally:
            self.bind_steps = saved

    def b_BNumCmp(self, n, ctx):
        """Two numbers compared: decided by doubles with error bounds where they decide it
        (rel_fast.FastNumbers), the exact lists of Generator.b_BNumCmp for the other patients."""
        # (inside an item query, tried: the row columns cost more than they saved; on Spark,
        # decimals false, the guarded columns made the driver run out of heap planning the step)
        if not ctx.item_level and self.decimals:
            out = self.fast_cmp(n, ctx, super().b_BNumCmp)
            if out is not None:
                return out
        return super().b_BNumCmp(n, ctx)

    # ------------------------------------------------------------------ row helpers
    # Inside an item query every boolean and number node becomes a column of the item rows,
    # computed once in a step of its own: written inline, an operand is repeated in every
    # expression that reads it (a dose comparison was ~25 copies of the exact-number macros,
    # 0.7 ms a row), as the patient-level helper columns avoid for patient-level nodes.
    def _rowcol(self, expr: str) -> str:
        if self.rowh is None or expr in ("TRUE", "FALSE", EMPTY) or re.fullmatch(r"_rh\d+", expr):
            return expr
        deps = [self.rowlvl[int(k)] for k in re.findall(r"\b_rh(\d+)\b", expr)]
        k = len(self.rowlvl)
        self.rowlvl.append(1 + max(deps, default=0))
        self.rowh.append((self.rowlvl[k], f"_rh{k}", expr))
        return f"_rh{k}"

    def mat(self, b: B, ctx: Ctx) -> B:
        if ctx.item_level and self.rowh is not None:
            t = self._rowcol(b.t)
            return B(t, self._rowcol(self.item_missing(t, b.m)), self._rowcol(b.r), b.lvl)
        if ctx.item_level:
            return b
        # the missing codes matter only where the truth is unknown (every reader of B.m reads
        # it then): built only for those patients (a list per patient and node was most of the
        # cost of the patient-level columns)
        t, lt = self.helper(b.t, b.lvl)
        m, _ = self.helper(f"(CASE WHEN ({b.t}) IS NULL THEN {b.m} END)" if len(b.t) < 600 else b.m, b.lvl)
        r, _ = self.helper(b.r, b.lvl)
        if b.t in self.fast_ts:  # a comparison decided by doubles where its guard is known
            self.fast_ts[t] = self.fast_ts[b.t]
        return B(t, m, r, lt)

    def num(self, n, ctx):
        out = super().num(n, ctx)
        if ctx.item_level and self.rowh is not None:
            return type(out)(self._rowcol(out.v), self._rowcol(out.m), out.lvl)
        return out

    def row_scope(self):
        self.rowh, self.rowlvl = [], []

    def row_steps(self, guard: str = "") -> tuple:
        """The row helpers of the scope as steps (one per row level; ``guard``: rows where the
        helpers are computed, NULL elsewhere); the scope ends."""
        steps = []
        levels = sorted({lv for lv, _, _ in self.rowh})
        for lv in levels:
            cols = ", ".join((f"CASE WHEN {guard} THEN {e} END" if guard else e) + f" AS {n}"
                             for l2, n, e in self.rowh if l2 == lv)
            steps.append(f"SELECT *, {cols} FROM @R")
        self.rowh = None
        return tuple(steps)

    def rel_join(self, src: str, aggs: list[str], lvl: int) -> tuple[list[str], int]:
        """A LEFT JOIN of per-seq aggregates over the rows of ``src`` (which reads PREV, the CTE
        holding every column up to ``lvl``): the aggregates as columns at level lvl + 1."""
        names = []
        for _ in aggs:
            self._n += 1
            names.append(f"{self.crit.id}__h{self._n}")
        cols = ",\n      ".join(f"{a} AS {ident(n)}" for a, n in zip(aggs, names))
        if isinstance(src, tuple):
            # the first step joins the patient's columns: only those read later (a MATERIALIZED
            # CTE keeps every column it selects)
            later = "\n".join(src[1:]) + "\n".join(aggs)
            need = sorted({n for n in re.findall(r'"([^"]+)"', later)
                           if n.startswith(("a_", "f_", self.crit.id + "__h"))})
            need = [ident(n) for n in need] + [c for c in ("sex", "birth") if re.search(rf"\b{c}\b", later)]
            src = (src[0].replace("SELECT p.*,", "SELECT " + "".join(f"p.{c}, " for c in ["seq"] + need), 1),) + src[1:]
            # row expressions read more than once: each step a MATERIALIZED CTE, which DuckDB's
            # optimizer does not inline (inlined, every reference repeats the whole expression:
            # seconds of planning per criterion and as many evaluations per row)
            ctes = ", ".join(f"_r{i} AS MATERIALIZED ({sql.replace('@R', f'_r{i - 1}')})" for i, sql in enumerate(src))
            src = f"(WITH {ctes} SELECT * FROM _r{len(src) - 1})"
        self.joins.append((lvl + 1, f"(SELECT seq,\n      {cols}\n    FROM {src}\n    GROUP BY seq)"))
        return [ident(n) for n in names], lvl + 1

    # ------------------------------------------------------------------ latest
    def select(self, s, ctx):
        if isinstance(s, I.SelLatest) and not ctx.item_level:
            w = self.window(s.window, ctx)
            return self._rel_latest(s.code, w, qlist([s.code]), w.lvl, s if s.pred is not None else None, ctx)
        return super().select(s, ctx)

    def _rel_latest(self, code_name, w: Window, code, lvl, sel=None, ctx=None, carry=None, lazy=False):
        """The candidates of the most recent reading in window w (Generator._latest over lists):
        the latest dated reading in the window (max (day, index)), readings without a usable
        date, readings without a code that could be the most recent; and its missing codes.
        With ``sel`` (latest ... where, Generator._latest_where): the same over the readings the
        filter surely holds for, plus the readings whose filter is unknown that could be as recent.
        With ``carry`` (a row expression over the reading ``_x``, no ``sel``): the candidates are
        ``{i, d, t}`` structs, t the expression computed once per reading row (no list of reading
        structs to go through), and the candidates and missing codes are computed only where
        they are not the one latest reading (NULL there: the caller reads latest_one first); so
        with ``lazy`` (the reading structs as they are)."""
        rows = (f"SELECT p.*, o.i AS _i, o.d AS _d, o.w AS _w, o.x AS _x FROM elig_ox o JOIN {PREV} p ON p.seq = o.seq "
                f"WHERE o.code = {q(code_name)}")
        if self.rows_only is not None:  # the exact path of rel_latest: the rows of its patients only
            rows += f" AND {self.rows_only[0]}"
            lvl = max(lvl, self.rows_only[1])
        sure = "TRUE"
        if sel is not None:
            self.row_scope()
            p = self.b(sel.pred, ctx.bind(sel.var, "observation", "_x"))
            src = (rows,) + self.row_steps() + (f"SELECT *, ({p.t}) AS _p FROM @R",)
            sure = "_p IS TRUE"
            lvl = max(lvl, p.lvl)
        elif carry is not None:
            src = f"(SELECT *, {carry} AS _t FROM ({rows}))"
        else:
            src = f"({rows})"
        val = "{'i': _i, 'd': _d, 't': _t}" if carry is not None else "_x"
        inw = f"_d IS NOT NULL AND _d BETWEEN ({w.lo}) AND ({w.hi})"
        key = f"CAST(_d AS BIGINT) * {BIG} + _i"
        aggs = [f"count(*) FILTER (WHERE NOT _w AND {sure})",
                f"max({key}) FILTER (WHERE NOT _w AND {sure} AND {inw})",
                f"arg_max({val}, {key}) FILTER (WHERE NOT _w AND {sure} AND {inw})",
                f"list_sort(list({val}) FILTER (WHERE NOT _w AND {sure} AND _d IS NULL))",
                f"list_sort(list({val}) FILTER (WHERE _w AND {sure}))"]
        fixed = w.lo == w.lom and w.hi == w.him
        aggs.append("NULL" if fixed else f"bool_or(_d BETWEEN ({w.lom}) AND ({w.him}) AND NOT (_d BETWEEN ({w.lo}) AND ({w.hi}))) "
                                         f"FILTER (WHERE NOT _w AND {sure})")
        # a reading in the margin after the window's sure end (runtime._latest's `late`)
        aggs.append("NULL" if fixed or w.hi == w.him else
                    f"bool_or(_d > ({w.hi}) AND _d <= ({w.him})) FILTER (WHERE NOT _w AND {sure})")
        if sel is not None:  # all readings, those the filter surely holds for, those it is unknown for
            aggs += ["count(*)", "count(*) FILTER (WHERE _p IS TRUE)", "list_sort(list(_x) FILTER (WHERE _p IS NULL))"]
        cols, lj = self.rel_join(src, aggs, lvl)
        n, k, top, fl, wl = cols[:5]
        maybe = f"coalesce({cols[5]}, FALSE)" if not fixed else "FALSE"
        later = f"coalesce({cols[6]}, FALSE)" if not (fixed or w.hi == w.him) else "FALSE"
        n = f"coalesce({n}, 0)"
        extra, lx = self.helper(
            f"(CASE WHEN {wl} IS NOT NULL THEN list_filter({wl}, lambda x: x.d IS NULL OR (x.d BETWEEN ({w.lom}) AND ({w.him}) "
            f"AND ({k} IS NULL OR CAST(x.d AS BIGINT) * {BIG} + x.i > {k}))) END)", lj)
        has_extra = f"coalesce(len({extra}), 0) > 0"
        has_fl = f"coalesce(len({fl}), 0) > 0"
        cands, miss = self.latest_parts(
            w, code, k, count=n, top=f"[{top}]",
            late=f"list_filter({fl}, lambda x: ({_key_day(k)} < ({w.him}) OR x.i > {_key_index(k)}))",
            extra=extra, has_extra=has_extra, floating=fl, has_floating=has_fl, maybe=maybe, later=later)
        one = (f"(coalesce({w.ok}, FALSE) AND {n} > 0 AND {k} IS NOT NULL "
               f"AND coalesce(len({fl}), 0) = 0 AND NOT {has_extra} AND NOT {later})")
        if carry is not None or lazy:
            cands, miss = f"(CASE WHEN NOT {one} THEN {cands} END)", f"(CASE WHEN NOT {one} THEN {miss} END)"
        c, lc = self.helper(cands, lx)
        m, _ = self.helper(miss, lx)
        if sel is not None:
            nall, nsure, mb = cols[7:10]
            return self.latest_where_parts(c, m, lc, mb, w, code, f"(coalesce({nall}, 0) > 0)",
                                           f"coalesce({nsure}, 0) = 0", nullable=True)
        # the usual case: the one candidate is the latest dated reading in the window
        self.latest_one[c] = (top, one)
        return c, m, lc

    def limit_truths(self, lim, op: str, x: str, ctx):
        """A fixed limit: the sign decided in floating point inline where the reading is clearly
        apart from the limit (elig_sign_rec's own first test, written out so that its exact
        fallback, a macro of lambdas, runs only near the limit)."""
        if isinstance(lim, I.LConst) and self.decimals and len(lim.table) > 1 and x == "_x":  # (a latest reading's)
            return f"[{N.holds(op, self.compact_sign(lim, x))}]", EMPTY, 0  # (rel_latest)
        if isinstance(lim, I.LConst):
            def sign(v):
                f = float(v)
                eps = 1e-9 * (abs(f) + 1.0)
                fd, ed = f"CAST({f!r} AS DOUBLE)", f"CAST({eps!r} AS DOUBLE)"
                return (f"(CASE WHEN {x}.v - {fd} > {ed} THEN 1 WHEN {x}.v - {fd} < -{ed} THEN -1 "
                        f"ELSE {N.near_sign(f'{x}.v', f'{x}.vi', v, self.decimals)} END)")
            cases = " ".join(f"WHEN {q(u)} THEN {sign(v)}" for u, v in lim.table)
            return f"[{N.holds(op, f'(CASE {x}.u {cases} END)')}]", EMPTY, 0
        if isinstance(lim, I.LRef):  # elig_sign_ref's float tests inline, the same way
            w = lim.which
            kr = f"(CAST({float(lim.multiple)!r} AS DOUBLE) * {x}.{w})"
            eps = f"1e-9 * (abs({kr}) + 1.0)"
            sign = (f"(CASE WHEN {x}.v - {kr} > {eps} THEN 1 WHEN {x}.v - {kr} < -{eps} THEN -1 "
                    f"ELSE {N.near_sign_ref(f'{x}.v', f'{x}.vi', lim.multiple, f'{x}.{w}', f'{x}.{w}i', self.decimals)} END)")
            return f"[CASE WHEN {x}.{w} IS NOT NULL THEN {N.holds(op, sign)} END]", EMPTY, 0
        return super().limit_truths(lim, op, x, ctx)

    def n_NObs(self, n, ctx):
        """A reading's value in the rule's unit (Generator.n_NObs) with the converted candidates a
        helper column: inline, the conversion (exact-number macros) ran four times. The latest
        reading (no filter): its candidates only where it is not the one latest reading."""
        if ctx.item_level or not isinstance(n.sel, I.SelLatest) or n.sel.pred is not None:
            return super().n_NObs(n, ctx)
        cands, cmiss, lc = self._latest_lazy(n.sel, ctx)
        top, one = self.latest_one[cands]
        code = qlist([n.sel.code])
        # the factor and offset of the reading's unit looked up, the exact arithmetic written once
        # (once per unit, its macros cost per vector of rows reaching each unit's branch)
        units = ", ".join(q(u) for u, _ in n.table)
        sc = "CASE x.u " + " ".join(f"WHEN {q(u)} THEN {N.const(c.scale)}" for u, c in n.table) + " END"
        of = "CASE x.u " + " ".join(f"WHEN {q(u)} THEN {N.const(c.offset)}" for u, c in n.table) + " END"
        conv = f"(CASE WHEN x.u IN ({units}) THEN elig_add(elig_mul(elig_dec(x.v, elig_textn(x.v, x.vi)), {sc}), {of}) END)"
        if self.decimals and all(c.offset == 0 for _, c in n.table):
            # (DuckDB) no offset: elig_mulz, the product plus 0.0 (elig_add's of a zero: -0.0 becomes
            # 0.0, the fraction the same); the factor from a list at the unit's position (cheaper to
            # bind than a CASE of constants)
            sc = f"[{', '.join(N.const(c.scale) for _, c in n.table)}][list_position([{units}], x.u)]"
            conv = f"(CASE WHEN x.u IN ({units}) THEN elig_mulz(elig_dec(x.v, elig_textn(x.v, x.vi)), {sc}) END)"
        each = (f"(CASE WHEN {one} THEN [CASE WHEN {top}.bad THEN NULL ELSE {self._rename(conv, 'x', top)} END] "
                f"ELSE list_transform({cands}, lambda x: CASE WHEN x.bad THEN NULL ELSE {conv} END) END)")
        vals, lv = self.helper(each, lc)
        ok = f"len(list_filter({vals}, lambda y: y IS NULL)) = 0"
        v = f"(CASE WHEN ({one} OR ({cands}) IS NOT NULL) AND {ok} THEN elig_dedupe({vals}) END)"
        m = (f"(CASE WHEN {one} THEN (CASE WHEN NOT {ok} THEN {code} ELSE {EMPTY} END) WHEN ({cands}) IS NULL THEN {cmiss} "
             f"WHEN NOT {ok} OR len({cands}) > 1 THEN {code} ELSE {EMPTY} END)")
        return _Num(v, m, lv)

    def _latest_lazy(self, s, ctx):
        """_rel_latest(lazy) of a latest reading, once per code and window in a criterion."""
        w = self.window(s.window, ctx)
        key = (s.code, w.ok, w.lo, w.lom, w.hi, w.him, w.miss, w.amiss, w.ever, w.lvl)
        if key not in self.lazy_latest:
            self.lazy_latest[key] = self._rel_latest(s.code, w, qlist([s.code]), w.lvl, lazy=True)
        return self.lazy_latest[key]

    def b_BObsCmp(self, n, ctx):
        """The reading of an observation query against a fixed limit or a reference limit: one
        candidate and one alternative, so Generator.b_BObsCmp's lists reduce to its truth (NULL
        when the reading is unusable or the reference absent) and the missing code."""
        if isinstance(n.sel, I.SelItem) and isinstance(n.limit, (I.LConst, I.LRef)):
            kind, x = ctx.vars[n.sel.var]
            truths, _, _ = self.limit_truths(n.limit, n.op, x, ctx)
            assert truths.startswith("[") and truths.endswith("]")
            return B(f"(CASE WHEN {x}.bad THEN NULL ELSE {truths[1:-1]} END)", qlist([n.sel.code]), "FALSE", 0)
        if isinstance(n.sel, I.SelLatest) and n.sel.pred is None and not ctx.item_level and self._leafy(n.limit):
            leaves: list[str] = []
            pre = self._leaf_truths(n.limit, n.op, ctx, leaves) + (leaves,)
            return self.latest_staged(n.sel, ctx, self.float_leaves(n.limit, n.op, []), pre[3], pre[2], isinstance(n.limit, I.LIf),
                                      lambda: self._latest_cmp(n, ctx, pre))
        return super().b_BObsCmp(n, ctx)

    @classmethod
    def _leafy(cls, lim) -> bool:
        """A limit of fixed and reference limits chosen by conditions (_latest_cmp's)."""
        if isinstance(lim, I.LIf):
            return cls._leafy(lim.then) and cls._leafy(lim.otherwise)
        return isinstance(lim, (I.LConst, I.LRef))

    def _latest_cmp(self, n, ctx, pre):
        """latest X ... against a limit (fixed, a multiple of the reading's reference, or a choice
        of those by a condition): each reading's truth against each alternative limit computed
        once on its row (fields t0, t1... of the candidates, b: unusable); where the candidates
        are the one latest reading, the truth is read from it directly; elsewhere (readings
        without a date or a code that could be the latest) Generator.b_BObsCmp over the list."""
        truths, cm, lt, one_v, leaves = pre  # (_leaf_truths, its leaves)
        t, m, lc, (cands, cmiss, top, one) = self._latest_rows(n.sel, ctx, leaves, one_v, lt)
        code = qlist([n.sel.code])
        if cm == EMPTY:  # no conditional limit: the code unless the candidates are unknown
            return B(t, m, "FALSE", lc)
        # Generator.b_BObsCmp's missing codes over the candidates ([top] where it is the one),
        # the per-candidate lists only where the truth is unknown (only there are they read)
        L = f"(CASE WHEN {one} THEN [{top}] ELSE {cands} END)"
        per = f"list_transform({L}, lambda x: CASE WHEN x.t.b THEN [CAST(NULL AS BOOLEAN)] ELSE {truths} END)"
        tc, lvl = self.helper(t, lc)
        per, lvl = self.helper(f"(CASE WHEN {tc} IS NULL THEN {per} END)", lvl)
        cm, lvl = self.helper(f"(CASE WHEN {tc} IS NULL THEN (CASE WHEN len(list_filter({L}, lambda x: NOT x.t.b)) > 0 "
                              f"THEN {cm} ELSE {EMPTY} END) END)", lvl)
        m0 = self.candidates_missing(L, per, cm, code)
        m = (f"(CASE WHEN {tc} IS NOT NULL THEN {EMPTY} WHEN ({L}) IS NULL THEN {cmiss} WHEN len({m0}) > 0 THEN {m0} "
             f"WHEN len({cm}) > 0 THEN {cm} ELSE {code} END)")
        return B(tc, m, "FALSE", lvl)

    def _latest_rows(self, s, ctx, leaves, one_v, lvl):
        """The latest reading of selection s with the row truths ``leaves`` (expressions over
        _x, fields t0, t1... of the candidates; b: unusable) and a candidate's truth ``one_v``
        over x: (truth, missing codes as Generator.b_BObsCmp/b_BObsBetween/b_BObsIs give them
        with one alternative, level, (candidates, their missing codes, top, one)). The truth is
        TRUE when every candidate's is, FALSE when every candidate's is FALSE, else NULL."""
        w = self.window(s.window, ctx)
        code = qlist([s.code])
        carry = "{'b': _x.bad, " + ", ".join(f"'t{j}': {e}" for j, e in enumerate(leaves)) + "}"
        cands, cmiss, lc = self._rel_latest(s.code, w, code, max(w.lvl, lvl), carry=carry)
        top, one = self.latest_one[cands]
        tx = f"(CASE WHEN x.t.b THEN NULL ELSE {one_v} END)"
        t = (f"(CASE WHEN {one} THEN (CASE WHEN {top}.t.b THEN NULL ELSE {self._rename(one_v, 'x', top)} END) "
             f"WHEN ({cands}) IS NULL THEN NULL "
             f"WHEN list_bool_and(list_transform({cands}, lambda x: coalesce({tx}, FALSE))) THEN TRUE "
             f"WHEN list_bool_and(list_transform({cands}, lambda x: coalesce(NOT {tx}, FALSE))) THEN FALSE END)")
        m = f"(CASE WHEN {one} THEN {code} WHEN ({cands}) IS NULL THEN {cmiss} ELSE {code} END)"
        return t, m, lc, (cands, cmiss, top, one)

    def _latest_plain(self, s, ctx) -> bool:
        return isinstance(s, I.SelLatest) and s.pred is None and not ctx.item_level

    def b_BObsBetween(self, n, ctx):
        """latest X between two fixed or reference limits: the row truths of _latest_rows."""
        if self._latest_plain(n.sel, ctx) and all(isinstance(x, (I.LConst, I.LRef)) for x in (n.low, n.high)):
            lo, _, _ = self.limit_truths(n.low, ">=", "_x", ctx)
            hi, _, _ = self.limit_truths(n.high, "<=", "_x", ctx)
            leaves, one_v = [lo[1:-1], hi[1:-1]], "(x.t.t0 AND x.t.t1)"
            floats = [self.float_leaf(n.low, ">="), self.float_leaf(n.high, "<=")]
            return self.latest_staged(n.sel, ctx, floats, one_v, 0, False, lambda: self._latest_b(n.sel, ctx, leaves, one_v))
        return super().b_BObsBetween(n, ctx)

    def b_BObsIs(self, n, ctx):
        """latest X is one of the values: the row truths of _latest_rows."""
        if self._latest_plain(n.sel, ctx):
            vals = ", ".join(q(v) for v in n.values)
            neg = "NOT " if n.negated else ""
            # (no first stage: the row truth of a value in a list costs little; measured, the
            # two stages cost more than they saved, hepatitis B and C, the pregnancy test)
            t, m, lc, _ = self._latest_rows(n.sel, ctx, [f"{neg}(_x.s IN ({vals}))"], "x.t.t0", 0)
            return B(t, m, "FALSE", lc)
        return super().b_BObsIs(n, ctx)

    def _latest_b(self, s, ctx, leaves, one_v):
        t, m, lc, _ = self._latest_rows(s, ctx, leaves, one_v, 0)
        return B(t, m, "FALSE", lc)

    def _leaf_truths(self, lim, op, ctx, leaves):
        """Generator.limit_truths over the candidate x whose field t<j> holds the truth of leaf
        limit j (a fixed or reference limit: its row expression over _x appended to leaves):
        (truths list, cond-missing, level, the candidate's truth as one value: TRUE when every
        alternative holds, FALSE when none does, else NULL)."""
        if isinstance(lim, (I.LConst, I.LRef)):
            truths, _, _ = self.limit_truths(lim, op, "_x", ctx)
            leaves.append(truths[1:-1])
            f = f"x.t.t{len(leaves) - 1}"
            return f"[{f}]", EMPTY, 0, f
        if isinstance(lim, I.LIf):
            c = self.b(lim.cond, ctx)
            a, am, la, va = self._leaf_truths(lim.then, op, ctx, leaves)
            b, bm, lb, vb = self._leaf_truths(lim.otherwise, op, ctx, leaves)
            t = f"(CASE WHEN ({c.t}) THEN {a} WHEN NOT ({c.t}) THEN {b} ELSE list_concat({a}, {b}) END)"
            cm = f"(CASE WHEN ({c.t}) THEN {am} WHEN NOT ({c.t}) THEN {bm} ELSE flatten([{c.m}, {am}, {bm}]) END)"
            v = f"(CASE WHEN ({c.t}) THEN {va} WHEN NOT ({c.t}) THEN {vb} WHEN {va} = {vb} THEN {va} END)"
            return t, cm, max(c.lvl, la, lb), v
        raise SqlUnsupported("limit")

    # ------------------------------------------------------------------ observation queries
    def b_BObsQuery(self, n, ctx):
        if ctx.item_level:
            self.unsupported("an observation query inside an item query has no relational SQL form yet")
        w = self.window(n.window, ctx)
        code = qlist([n.code])
        var = "o0"
        ictx = ctx.bind(n.var, "observation", var)
        self.row_scope()
        p = self.b(n.pred, ictx)
        pt = f"(NOT ({p.t}))" if n.quantifier == "every" else f"({p.t})"
        # a reading with an unusable date could lie anywhere in time: in a window reaching every
        # date (`ever`), surely inside (runtime _obs_query)
        undated = f"(CASE WHEN ({w.lo}) = {-NEVER} AND ({w.hi}) = {NEVER} THEN TRUE END)"
        inside = (f"(CASE {'WHEN ' + w.empty + ' THEN FALSE ' if w.empty else ''}WHEN {var}.d IS NULL THEN {undated} "
                  f"WHEN {var}.d BETWEEN ({w.lo}) AND ({w.hi}) THEN TRUE WHEN {var}.d < ({w.lom}) OR {var}.d > ({w.him}) THEN FALSE END)")
        sure = f"(_in IS NOT NULL AND NOT {var}.w)"  # dated inside (_in: inside, below), and surely of this code
        item = (f"{{'t': CASE WHEN NOT {sure} THEN (CASE WHEN {pt} IS FALSE THEN FALSE END) ELSE {pt} END, "
                f"'m': CASE WHEN NOT {sure} THEN list_concat({code}, CASE WHEN {pt} IS NULL THEN {p.m} ELSE {EMPTY} END) ELSE {p.m} END, "
                f"'n': {sure}}}")
        rows = (f"(SELECT p.*, o.i AS _i, o.x AS {var} FROM elig_ox o JOIN {PREV} p ON p.seq = o.seq "
                f"WHERE o.code = {q(n.code)}{self.obs_rows_kept(inside, var, w)})")
        # a reading outside the window counts only in count(*) (the readings of the code)
        src = (rows[1:-1], f"SELECT *, {inside} AS _in FROM @R") + self.row_steps("_in IS NOT FALSE") + (
            f"SELECT seq, _i, _in, CASE WHEN _in IS NOT FALSE THEN {item} END AS _z FROM @R",)
        r = "_in IS NOT FALSE"
        cols, lvl = self.rel_join(src, [
            "count(*)", f"count(*) FILTER (WHERE {r})", f"bool_or(_z.t) FILTER (WHERE {r})",
            f"bool_or(_z.t IS NULL) FILTER (WHERE {r})", f"bool_or(_z.n) FILTER (WHERE {r})",
            f"flatten(list(_z.m ORDER BY _i) FILTER (WHERE {r} AND _z.t IS NULL))"], max(w.lvl, p.lvl))
        nl, nres, anyt, anynull, anyn, um = cols
        nl, nres = f"coalesce({nl}, 0)", f"coalesce({nres}, 0)"
        found_t = (f"(CASE WHEN coalesce({anyt}, FALSE) THEN TRUE WHEN coalesce({anynull}, FALSE) THEN NULL "
                   f"WHEN NOT coalesce({anyn}, FALSE) THEN NULL ELSE FALSE END)")
        found_m = f"(CASE WHEN coalesce({anynull}, FALSE) THEN {um} ELSE {code} END)"
        t = (f"(CASE WHEN NOT coalesce({w.ok}, FALSE) OR {nres} = 0 THEN NULL ELSE "
             + ("" if n.quantifier == "any" else "NOT ") + f"{found_t} END)")
        m = (f"(CASE WHEN NOT coalesce({w.ok}, FALSE) THEN (CASE WHEN {nl} > 0 THEN {w.amiss} ELSE list_concat({code}, {w.amiss}) END) "
             f"WHEN {nres} = 0 THEN {code} ELSE {found_m} END)")
        return B(t, m, f"(len({m}) = 0)", lvl)  # review: Generator.b_BObsQuery

    # ------------------------------------------------------------------ item queries
    def b_BQuery(self, n, ctx):
        if self.decimals:  # DuckDB: rel_items.ItemQueries (Spark's script keeps this form)
            return self.items_query(n, ctx)
        if ctx.item_level:
            self.unsupported("an item query inside an item query has no relational SQL form yet")
        var = "x0"
        it = var
        ictx = ctx.bind(n.var, n.kind, var, dur=(n.kind == "treatment"))
        codes = ", ".join(q(c) for c in n.codes)
        rows = self.item_rows(n, f"len(list_intersect(t.cls, [{codes}])) > 0")
        if self.bind_steps is not None:  # a query in the duration of an enclosing item query's window
            self.unsupported("a query in the duration of an item query's window (the lambda form)")
        self.bind_steps = []
        try:
            w, it, ictx, wrap = self.item_window(n, ctx, ictx, var, it)
        finally:
            binds, self.bind_steps = tuple(f"SELECT *, {p} AS {z} FROM @R" for p, z in self.bind_steps), None
        # the item's own window, computed once per item: the row's item is {x: item, w: window}
        # (its durations' bound values columns of the rows, steps before it: _bind)
        if binds:  # one step: the binds as nested projections over it, in their order
            nested = "@R"
            for b in binds:
                nested = "(" + b.replace("@R", nested) + ")"
            binds = (f"SELECT * FROM {nested}",)
        if wrap:
            src = (rows.replace('{v}', var + "i"),) + tuple(self._rename(b, var, var + "i") for b in binds) + (
                f"SELECT *, {wrap} AS {var} FROM @R",)
        else:
            src = (rows.replace('{v}', var),) + binds
        self.row_scope()
        first, pre, then, item, lvl = self.item_expr(n, ctx, ictx, it, w)
        # an item surely false (of no class asked, inactive, outside the window) adds nothing to
        # any aggregate below: left out before its condition is read
        body = src + first + (f"SELECT * FROM @R WHERE ({pre}) IS NOT FALSE",) + self.row_steps() + then + (
            f"SELECT seq, _i, {item} AS _z FROM @R",)
        cols, lvl = self.rel_join(body, self.item_aggs(n, "_z.t", "_z.m", "_z.k"), lvl)
        return self.items_truth(n, cols, lvl)

    @staticmethod
    def item_rows(n, cls_test):
        """The query's item rows joined to the patients of the chain ({v}: the item's column):
        treatments whose classes pass ``cls_test`` (over t.cls) or are unknown; conditions or
        procedures of its codes, or of none (items without a code could be any: every query
        sees them, runtime._collect)."""
        if n.kind == "treatment":
            return (f"SELECT p.*, t.i AS _i, t.x AS {{v}} FROM elig_tx t JOIN {PREV} p ON p.seq = t.seq "
                    f"WHERE t.cls IS NULL OR {cls_test}")
        tbl = "elig_cx" if n.kind == "condition" else "elig_px"
        codes = ", ".join(q(c) for c in n.codes)
        return (f"SELECT p.*, t.i AS _i, t.x AS {{v}} FROM {tbl} t JOIN {PREV} p ON p.seq = t.seq "
                f"WHERE t.code IN ({codes}) OR t.code IS NULL")

    @staticmethod
    def item_aggs(n, t, m, k):
        """The per-patient aggregates of a query's item rows (truth ``t``, missing codes ``m``,
        key ``k``): any sure, any unknown, the unknown ones' missing codes in item order; for
        `at least`/`at most N` the sure and the possible counts (of distinct keys if asked)."""
        aggs = [f"bool_or({t})", f"bool_or({t} IS NULL)", f"flatten(list({m} ORDER BY _i) FILTER (WHERE {t} IS NULL))"]
        if n.count is not None:
            if n.distinct:
                aggs += [f"len(list_distinct(flatten(list({k}) FILTER (WHERE {t}))))",
                         f"len(list_distinct(flatten(list({k}) FILTER (WHERE {t} IS NOT FALSE))))"]
            else:
                aggs += [f"count(*) FILTER (WHERE {t})", f"count(*) FILTER (WHERE {t} IS NOT FALSE)"]
        return aggs

    def items_truth(self, n, cols, lvl):
        """The query's truth and missing codes from the columns of item_aggs (NULL: no item)."""
        anyt, anynull, um = cols[:3]
        t = f"(CASE WHEN coalesce({anyt}, FALSE) THEN TRUE WHEN coalesce({anynull}, FALSE) THEN NULL ELSE FALSE END)"
        m = f"coalesce({um}, {EMPTY})"
        if n.quantifier in ("no", "every"):
            t = f"(NOT {t})"
        if n.count is not None:  # at least N / at most N (runtime._count): sure and perhaps items
            t = self.count_truth(n, f"coalesce({cols[3]}, 0)", f"coalesce({cols[4]}, 0)")
        return B(t, m, f"(len({m}) = 0)", lvl)  # review: Generator.b_BQuery

    def item_expr(self, n, ctx, ictx, it, w):
        """One item's {t, m[, k]} (Generator.b_BQuery's per-item expression) as row steps, with
        no lambda (a lambda binding the values of each item row cost milliseconds per vector of
        rows): (steps before the filter, the filter, steps after the row helpers, the item
        struct, level). The values bound once (``ins``, ``pt``) and the item's truth and missing
        codes are columns of the item rows (_bins, _bpt, _zt, _zm)."""
        bound, code, it_t, it_m, pre, lvl, kfield = self.item_columns(n, ctx, ictx, it, w)
        first = (f"SELECT *, {bound['ins']} AS _bins FROM @R",) if "ins" in bound else ()
        then = ((f"SELECT *, {bound['pt']} AS _bpt FROM @R",) if "pt" in bound else ()) + (
            f"SELECT *, {it_t} AS _zt, {it_m} AS _zm FROM @R",)
        item = f"{{'t': _zt, 'm': _zm{kfield}}}"
        return first, pre, then, item, lvl

    def item_columns(self, n, ctx, ictx, it, w):
        """Generator.item_parts over the item rows' columns: the values bound once (``ins``,
        ``pt``) read as the columns _bins and _bpt. (bound, the item's code list, its truth, its
        missing codes, the filter leaving out the items surely false, level, the key field)."""
        zq = "qx0"
        bound, parts_t, parts_m, lvl, kfield = self.item_parts(n, ctx, ictx, it, w, zq)
        col = {"ins": "_bins", "pt": "_bpt"}

        def cols(x):
            return re.sub(rf"\b{zq}\.(ins|pt)\b", lambda m: col[m.group(1)], x)
        it_t = cols("(" + " AND ".join(parts_t) + ")")
        it_m = cols("flatten([" + ", ".join(parts_m) + "])")
        pre = " AND ".join(cols(x) for x in parts_t if x != f"{zq}.pt") or "TRUE"
        return bound, f"[{it}.c]", it_t, it_m, pre, lvl, kfield


# the work tables of the relational form: (name, query mode of script.input_view, sort order)
PREP = (("elig_pat", "pat", ""), ("elig_ox", "rows_o", "code"), ("elig_cx", "rows_c", ""),
        ("elig_px", "rows_p", ""), ("elig_tx", "rows_t", ""))


def build(program: I.Program, lowered, only=None, decimals: bool = True):
    """The relational DuckDB script (SqlCompileError naming every rule neither generator can
    express). A criterion with a node of no relational form is compiled by the lambda generator
    (its step reads elig_input; Script.lambda_steps). ``decimals`` false: for Spark, whose DECIMAL
    products lose scale (the exact comparisons by the fraction macros, RelGenerator.decimals)."""
    from .generate import Generator as LambdaGenerator

    rel = RelGenerator(program, lowered)
    rel.decimals = decimals
    lam = LambdaGenerator(program, lowered)
    problems, crits, lambda_ids, compiled = [], [], [], []
    for lc in lowered.criteria:
        c = lc.ir
        if only is not None and c.id not in only:
            continue
        rel.start(c)
        try:
            b = rel.b(c.body, Ctx())
            # the decided patients leave the chain on DuckDB only (Spark inlines a CTE read twice:
            # its script keeps the guarded columns, one chain)
            compiled.append((lc, b, rel.helpers, rel.joins, rel.fast_ts.get(b.t) if decimals else None))
            continue
        except SqlUnsupported:
            pass
        lam.start(c)
        try:
            b = lam.b(c.body, Ctx())
        except SqlUnsupported as exc:
            problems.append(f"{lc.file}:{c.line}: rule {c.id}: no SQL form: {exc}")
            continue
        compiled.append((lc, b, lam.helpers, [], True))  # (the last: lambda form, else the fast guard)
        lambda_ids.append(c.id)
    if problems:
        raise SqlCompileError(problems)
    first = "elig_input" if lambda_ids else "elig_pat"
    ctes, prev = [], first
    for lc, b, helpers, joins, fast in compiled:
        c = lc.ir
        is_lambda = fast is True
        fast = None if is_lambda else fast
        levels: dict[int, list] = {}
        for name, sql, lvl in helpers:
            levels.setdefault(lvl, [[], []])[0].append((name, sql))
        for lvl, sql in joins:
            levels.setdefault(lvl, [[], []])[1].append(sql)
        own, own_prev = [], ("elig_input" if is_lambda else "elig_pat")
        chain = []  # (name, head, cols, joins) of the criterion's CTEs
        for i, lvl in enumerate(sorted(levels)):
            name = c.id if i == len(levels) - 1 else f"{c.id}__{i + 1}"
            cols, js = levels[lvl]
            chain.append((name, cols, js, lvl))
        comment = f"-- {lc.file}:{c.line} {c.kind} {c.id} ({lc.ref})"
        for text_prev, out in ((prev, ctes), (own_prev, own)):
            p = text_prev
            decided = None
            for name, cols, js, lvl in chain:
                if out is own and fast is not None and decided is None and lvl > fast[3]:
                    # the step: the patients the doubles decided leave the chain here (their
                    # outcome is the guard's), the exact columns above only for the others
                    decided = p
                    for e in out:  # read twice (the filter and the union): computed once
                        if e[0] == p:
                            e[1] = True
                    # sorted: a sort writes its rows compactly (a filter leaves them spread over
                    # every vector of 2,048 rows, and a lambda costs per vector, whatever its rows)
                    out.append([f"{c.id}__u", False, comment + " (undecided by the doubles)",
                                f"(SELECT * FROM {ident(p)} WHERE NOT {fast[0]} ORDER BY seq)"])
                    p = f"{c.id}__u"
                sel = "".join(f",\n    {sql} AS {ident(n)}" for n, sql in cols)
                joined = "".join(f"\n  LEFT JOIN {j.replace(PREV, ident(p))} USING (seq)" for j in js)
                if js and out and out[-1][0] == p:
                    out[-1][1] = True  # read twice (by this CTE and its joins): computed once
                out.append([name, False, f"-- {lc.file}:{c.line} {c.kind} {c.id} ({lc.ref})"
                            + (" [lambda form]" if is_lambda else ""), f"(SELECT *{sel}\n  FROM {ident(p)}{joined})"])
                p = name
        if chain:
            prev = own_prev = chain[-1][0]
        if decided is not None:
            # the step's outcome reads the truth, missing codes and review of the criterion
            # (b.t, b.m, b.r: helper columns): the guard's for the decided patients
            own.append([f"{c.id}__all", False, comment + " (decided and undecided)",
                        f"(SELECT seq, {b.t}, {b.m}, {b.r} FROM {ident(own_prev)}\n  UNION ALL\n"
                        f"  SELECT seq, {fast[1]}, {fast[2]}, FALSE FROM {ident(decided)} WHERE {fast[0]})"])
            own_prev = f"{c.id}__all"
        crits.append((c.id, lc.ref, c.kind, b, own, own_prev))
    ctes = _render(ctes)
    crits = [(cid, ref, kind, b, _render(own), last) for cid, ref, kind, b, own, last in crits]
    # (DuckDB's elig_ox: with the reading's fields as columns too, for rel_latest's first stage)
    prep = tuple((name, input_view(program, obs_mode="rows_of" if decimals and mode == "rows_o" else mode, name=""), order)
                 for name, mode, order in PREP)
    views = [f"CREATE OR REPLACE TEMP VIEW {name} AS\n{sql}" for name, sql, _ in prep]
    if lambda_ids:
        views.append(input_view(program))
    lambda_steps = frozenset(i for i, x in enumerate(compiled) if x[4] is True)
    return assemble(program, lowered, only, crits, ctes, prev, "elig_pat", ";\n\n".join(views),
                    coded=decimals, prep=prep, lambda_steps=lambda_steps)


def _render(entries) -> list[str]:
    return [f"{comment}\n{ident(name)} AS " + ("MATERIALIZED " if mat else "") + body for name, mat, comment, body in entries]
