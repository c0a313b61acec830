"""The item queries of the relational DuckDB generator (compiler/sql/relational.py): `any active
X`, `any X within 4 wk before first_dose where ... unless ...`, `no X, Y ...`, `at least N`
(docs/sql.md, "The SQL").

The meaning is Generator.item_parts' (one item's truth and missing codes, runtime's per-item
rule), computed as columns of the item rows (elig_cx / elig_px / elig_tx) and aggregated per
patient. This DuckDB form differs from the former one (kept for Spark, whose script must not
change: RelGenerator.b_BQuery with decimals false) only in how the rows are written:

- a treatment's classes are tested with ``list_contains`` (one per class asked, ORed) instead of
  ``len(list_intersect(...)) > 0``, which built a list per row: 4 to 9 times cheaper on the
  375,704 treatment rows of the benchmark cohort;
- the item's missing codes are computed only for the items whose truth is unknown (the only ones
  the aggregate reads), and no per-row struct {t, m} is built: the aggregates read the columns;
- the item struct of the rows has only the fields the steps read (every step is a MATERIALIZED
  copy of the rows); the rows, a computed window's bound values, the window (a column x0w beside
  the item x0i, not a {x, w} struct copying it) and its "inside" are one step of nested
  projections; the filter that drops surely false items is a WHERE of the next step; the last
  projection (truth, missing codes) is not materialized; the rows are not joined with the
  patients where none of their columns is read;
- inside an item query, an attribute's JSON value is a row column (extracted once), and two
  numbers of one value each are compared by elig_sign's body written inline (its lambdas only
  for several values, and not at all where neither side can have several: _single);
- the row steps are nested projections, one MATERIALIZED CTE per run of them (_join_rows); a
  number's values, a dose's exact products and factors, the attributes' object test and an
  attribute's text are row columns computed once; a node's missing codes only where its truth
  is unknown (item_missing); a computed window's duration as scalar columns (duration);
- the items surely outside the widest window a computed duration allows are left out before
  the window is computed (_wide_outside), and an observation query reads only the readings
  inside or perhaps inside its window (obs_rows_kept).
"""

from __future__ import annotations

import re

from . import numbers as N
from .. import ir as I
from .gen_dates import NEVER
from .gen_types import EMPTY, B, Window, ident, q
from .gen_types import Num as _Num

PREV = "\x00PREV\x00"  # relational.PREV


def has_any(lst: str, names) -> str:
    """Any of the names in the list ``lst`` (a non-NULL list of strings): the truth of
    ``len(list_intersect(lst, [names])) > 0`` without building a list."""
    return "(" + " OR ".join(f"list_contains({lst}, {q(c)})" for c in names) + ")"


class ItemQueries:
    """A mixin of RelGenerator (DuckDB only: ``self.decimals``)."""

    _in_items = False  # inside items_query (its row helpers)

    def b_BClassIn(self, n, ctx):
        if not self.decimals:
            return super().b_BClassIn(n, ctx)
        kind, x = self._item(n.var, ctx)
        neg = "NOT " if n.negated else ""
        t = f"(CASE WHEN {x}.cls IS NOT NULL THEN {neg}{has_any(f'{x}.cls', n.tests)} END)"
        return B(t, f"[{x}.c]", "FALSE")

    def duration(self, d, ctx):
        """Generator.duration inside an item query's window (DuckDB, RelGenerator._bind's row
        steps): the duration's lo, hi and missing codes each a scalar column of the rows (a
        list only where lo and hi differ), the struct {lo, hi, m} built once, not one struct
        of structs per level (a choice by class of the shorter or longer of half-lives and
        fixed lengths was nine nested structs per row: most of anticancer_washout)."""
        if self.bind_steps is None or not self.decimals:
            return super().duration(d, ctx)
        lo, hi, m, lvl = self._dur_cols(d, ctx)
        return f"{{'lo': {lo}, 'hi': {hi}, 'm': {m}}}", lvl

    def _bound(self, expr: str) -> str:
        """A scalar of the item rows computed once: a row step of its own (_bind's)."""
        for b, name in self.bind_steps:
            if b == expr:
                return name
        self._z = getattr(self, "_z", 0) + 1
        name = f"_zd{self._z}"
        self.bind_steps.append((expr, name))
        return name

    def _dur_cols(self, d, ctx):
        """(lo, hi, missing codes, level) of Generator.duration, as columns or constants."""
        if isinstance(d, I.DConst) or not isinstance(d, (I.DHalfLife, I.DExtreme, I.DIf)):
            t, lvl = super().duration(d, ctx)  # (a constant; or no SQL form: its error)
            n = int(d.amount.__floor__())
            return f"CAST({n} AS BIGINT)", f"CAST({n} AS BIGINT)", EMPTY, lvl
        if isinstance(d, I.DHalfLife):
            if ctx.dur_var is None:
                self.unsupported("a half-life outside a treatment query")
            kind, x = ctx.vars[ctx.dur_var]
            days = self._bound(f"(CASE WHEN {x}.hl IS NOT NULL THEN CAST({self.floor_times(f'{x}.hl', d.multiple)} AS BIGINT) END)")
            return (self._bound(f"coalesce({days}, 0)"), self._bound(f"coalesce({days}, {NEVER})"),
                    self._bound(f"(CASE WHEN {days} IS NULL THEN [{x}.c] ELSE {EMPTY} END)"), 0)
        if isinstance(d, I.DExtreme):
            alo, ahi, am, la = self._dur_cols(d.left, ctx)
            blo, bhi, bm, lb = self._dur_cols(d.right, ctx)
            f = "least" if d.which == "shorter" else "greatest"
            lo, hi = self._bound(f"{f}({alo}, {blo})"), self._bound(f"{f}({ahi}, {bhi})")
            m = self._bound(f"(CASE WHEN {lo} = {hi} THEN {EMPTY} ELSE flatten([{am}, {bm}]) END)")
            return lo, hi, m, max(la, lb)
        c = self.b(d.cond, ctx)
        alo, ahi, am, la = self._dur_cols(d.then, ctx)
        blo, bhi, bm, lb = self._dur_cols(d.otherwise, ctx)
        t = self._bound(c.t)
        lo = self._bound(f"(CASE WHEN {t} THEN {alo} WHEN NOT {t} THEN {blo} ELSE least({alo}, {blo}) END)")
        hi = self._bound(f"(CASE WHEN {t} THEN {ahi} WHEN NOT {t} THEN {bhi} ELSE greatest({ahi}, {bhi}) END)")
        m = self._bound(f"(CASE WHEN {t} THEN {am} WHEN NOT {t} THEN {bm} ELSE flatten([{c.m}, {am}, {bm}]) END)")
        return lo, hi, m, max(c.lvl, la, lb)

    def _dur_ub(self, d, x: str, qvar: str):
        """A DOUBLE no smaller than the duration's longest value in days (its ``hi``,
        Generator.duration) for the item ``x``, cheap to compute per row (no struct, no list), or
        None: a constant; k half-lives (their floating product plus a day, 10^9 (never) where
        the half-life is unknown or not finite); the shorter or longer of two (their least or
        greatest); a choice by the item's classes the branch chosen (the greatest of both where
        the classes are unusable), by another condition the greatest of both."""
        if isinstance(d, I.DConst):
            return f"{float(d.amount.__floor__())!r}" if d.kind == "days" else None
        if isinstance(d, I.DHalfLife):
            return (f"(CASE WHEN isfinite({x}.hl.f) THEN {x}.hl.f * {float(d.multiple)!r} + 1.0 "
                    f"ELSE {float(NEVER)!r} END)")
        if isinstance(d, (I.DExtreme, I.DIf)):
            a = self._dur_ub(d.left if isinstance(d, I.DExtreme) else d.then, x, qvar)
            b = self._dur_ub(d.right if isinstance(d, I.DExtreme) else d.otherwise, x, qvar)
            if a is None or b is None:
                return None
            if isinstance(d, I.DExtreme):
                return f"{'least' if d.which == 'shorter' else 'greatest'}({a}, {b})"
            c = d.cond
            if isinstance(c, I.BClassIn) and c.var == qvar:
                t = f"({x}.cls IS NOT NULL AND {'NOT ' if c.negated else ''}{has_any(f'{x}.cls', c.tests)})"
                return f"(CASE WHEN {x}.cls IS NULL THEN greatest({a}, {b}) WHEN {t} THEN {a} ELSE {b} END)"
            return f"greatest({a}, {b})"
        return None

    def _wide_outside(self, n, var: str, v0: str):
        """For a window of the item's own duration before an anchor: FALSE where the item is
        surely outside the widest window the duration allows (from the anchor back by _dur_ub), hence surely outside its own (Generator._occurs: it started after the window's
        latest end, or its end is known and before the window's earliest start), with no
        per-item struct; its rows left out before the window's per-item structs are computed
        (anticancer_washout: most treatments ended long before any washout). None for other
        windows."""
        win = n.window
        if (win.at is not None or win.kind != "within_before" or win.duration is None
                or isinstance(win.duration, I.DConst) or not win.item_dependent):
            return None
        ub = self._dur_ub(win.duration, v0, n.var)
        if ub is None:
            return None
        a = ident("a_" + win.anchor)
        s = f"{v0}.s"
        # (an end day known (end_of not NULL) is one Generator._occurs reads: end_known holds)
        e = s if n.kind == "procedure" else self.end_of(n.kind, v0)
        return (f"(CASE WHEN {a} IS NULL THEN TRUE WHEN {s} IS NOT NULL AND {s} > {a} THEN FALSE "
                f"WHEN {e} IS NOT NULL AND {e} < {a} - {ub} THEN FALSE ELSE TRUE END)")

    def obs_rows_kept(self, inside: str, var: str, w) -> str:
        """RelGenerator.b_BObsQuery's readings (DuckDB): only those inside or perhaps inside
        its window, or all of them where the window is unknown (the only case the count of all
        readings is read); a reading surely outside counts in no other aggregate. The test
        reads the reading's day column (o.d), not its struct: the view elig_ox builds the
        struct only for the readings kept (recent_serious_infection_or_fever: 518,252
        temperatures, most long before first dose). Spark's script keeps every reading."""
        if not self.decimals:
            return ""
        return f" AND (({inside.replace(f'{var}.d', 'o.d')}) IS NOT FALSE OR NOT coalesce({w.ok}, FALSE))"

    def item_missing(self, t: str, m: str) -> str:
        """A node's missing codes as a row column of an item query (RelGenerator.mat): only for
        the rows where its truth ``t`` is unknown, the only ones a reader reads them for, as
        the patient-level columns are (a list per row and node was built: ``[x0.c]`` for each
        attribute test, their flatten for each AND)."""
        if not (self.decimals and self._in_items) or m == EMPTY or t in ("TRUE", "FALSE"):
            return m
        return f"(CASE WHEN {t} IS NULL THEN {m} END)"

    def _items_rows(self, ctx) -> bool:
        """Inside an item query's row helpers (DuckDB): a node's parts may be row columns."""
        return self.decimals and ctx.item_level and self.rowh is not None and self._in_items

    def _icol(self, expr: str) -> str:
        """A row column of ``expr``, the same column for the same expression (RelGenerator._rowcol
        adds one per call)."""
        for _, name, e in self.rowh:
            if e == expr:
                return name
        return self._rowcol(expr)

    def num(self, n, ctx):
        """Inside an item query: the number's values a row column first, its missing codes
        reading that column (Generator's nodes repeat the values' expression in the missing
        codes' test ``CASE WHEN (v) IS NULL``: a dose's two exact products computed twice)."""
        out = super().num(n, ctx)
        if not self._items_rows(ctx) or out.v in (EMPTY, "NULL") or out.v.startswith("[{"):
            return out
        v = self._icol(out.v)
        return type(out)(v, out.m.replace(out.v, v), out.lvl)

    def n_NDose(self, n, ctx):
        """Inside an item query: the dose times its unit's factor times the agent's factor as
        row columns, elig_mul's body written out (its lambdas, and elig_num's, cost per vector
        of rows; the factors' CASEs were evaluated three times each)."""
        if not self._items_rows(ctx):
            return super().n_NDose(n, ctx)
        kind, x = self._item(n.var, ctx)
        t = self.equiv[n.table]
        factors = " ".join(f"WHEN {q(agent)} THEN {N.const(f)}" for agent, f in t.factors)
        f = self._icol(f"(CASE {x}.c {factors} ELSE (CASE lower(trim({x}.c)) {factors} END) END)")
        units = " ".join(f"WHEN {q(u)} THEN {N.const(c)}" for u, c in t.units)
        conv = self._icol(f"(CASE {x}.{ident('du_' + n.table)} {units} END)")
        ok = self._icol(f"({x}.dv IS NOT NULL AND {conv} IS NOT NULL AND {f} IS NOT NULL)")
        d = self._icol(f"(CASE WHEN {ok} THEN {self._mul(f'{x}.dv', conv, ok)} END)")
        v = f"(CASE WHEN {ok} THEN [{self._mul(d, f, ok)}] END)"
        return _Num(v, f"(CASE WHEN {v} IS NULL THEN [{x}.c] ELSE {EMPTY} END)")

    def _mul(self, a: str, b: str, guard: str) -> str:
        """elig_mul(a, b) of two exact numbers (columns or fields) without its lambdas: the
        product's parts a row column (where ``guard``), then elig_num's reduction."""
        p = self._icol(f"(CASE WHEN {guard} THEN {{'f': {a}.f * {b}.f, 'n': TRY({a}.n * {b}.n), "
                      f"'d': TRY({a}.d * {b}.d), 'e': TRY(CAST({a}.e + {b}.e AS INTEGER))}} END)")
        return (f"(CASE WHEN {p}.n IS NULL OR {p}.d IS NULL OR {p}.d = 0 OR {p}.e IS NULL "
                f"THEN {{'f': {p}.f, 'n': CAST(NULL AS HUGEINT), 'd': CAST(NULL AS HUGEINT), 'e': CAST(0 AS INTEGER)}} "
                f"ELSE {{'f': {p}.f, 'n': TRY((CASE WHEN {p}.d < 0 THEN -{p}.n ELSE {p}.n END) // gcd({p}.n, {p}.d)), "
                f"'d': TRY(abs({p}.d) // gcd({p}.n, {p}.d)), 'e': {p}.e}} END)")

    def _obj(self, x: str) -> str:
        """The attributes are an object: a row column (each attribute test parsed them again)."""
        return self._icol(f"(json_type({x}.a) = 'OBJECT')")

    def _text(self, j: str) -> str:
        """A JSON value's text where it is a JSON string (else NULL), a row column."""
        return self._icol(f"(CASE WHEN json_type({j}) = 'VARCHAR' THEN json_extract_string({j}, '$') END)")

    def b_BAttrIs(self, n, ctx):
        if not self._items_rows(ctx) or n.name == "status" or n.type not in ("enum", "text"):
            return super().b_BAttrIs(n, ctx)
        kind, x = self._item(n.var, ctx)
        neg = "NOT " if n.negated else ""
        tests = ", ".join(q(v) for v in n.tests)
        s = self._text(self.attr_json(x, n.name))
        ok = f"{self._obj(x)} AND " + (f"{s} IN ({', '.join(q(v) for v in n.values)})" if n.values else f"{s} IS NOT NULL")
        return B(f"(CASE WHEN {ok} THEN {neg}({s} IN ({tests})) END)", f"[{x}.c]", "FALSE")

    def b_BAttrBool(self, n, ctx):
        if not self._items_rows(ctx):
            return super().b_BAttrBool(n, ctx)
        kind, x = self._item(n.var, ctx)
        j = self.attr_json(x, n.name)
        t = f"(CASE WHEN {self._obj(x)} AND json_type({j}) = 'BOOLEAN' THEN CAST({j} AS BOOLEAN) END)"
        return B(t, f"[{x}.c]", "FALSE")

    def b_BFieldIs(self, n, ctx):
        if not self._items_rows(ctx):
            return super().b_BFieldIs(n, ctx)
        kind, x = self._item(n.var, ctx)
        neg = "NOT " if n.negated else ""
        tests = ", ".join(q(v) for v in n.tests)
        s = self._text(f"{x}.{n.field}")
        return B(f"(CASE WHEN {s} IS NOT NULL THEN {neg}({s} IN ({tests})) END)", f"[{x}.c]", "FALSE")

    def attr_json(self, x, name):
        """Inside an item query: the attribute's JSON value a row column of its own, extracted
        once (inline, each test of it parsed the attributes' text again: four to six times)."""
        j = super().attr_json(x, name)
        if not (self.decimals and self.rowh is not None):
            return j
        return self._rowcol(j)

    def b_BNumCmp(self, n, ctx):
        """Inside an item query (its row helpers): two numbers of one value each (nearly every
        row) compared by elig_sign's own body written inline over the two structs (doubles
        apart by more than 1e-9 (|b| + 1), else the exact values by elig_esign, else unknown), the
        nested list_transform lambdas of Generator.b_BNumCmp only for rows with several values
        (a lambda costs per vector of rows that reaches it: a tie at the limit, a dose of
        exactly 10 mg or a course of exactly 7 days, is in nearly every vector)."""
        if not (ctx.item_level and self.decimals and self.rowh is not None):
            return super().b_BNumCmp(n, ctx)
        a = self.num(n.left, ctx)
        b = self.num(n.right, ctx)
        sign = N.holds(n.op, "elig_sign(x, y)")
        truths = f"flatten(list_transform({a.v}, lambda x: list_transform({b.v}, lambda y: {sign})))"
        x, y = f"{a.v}[1]", f"{b.v}[1]"
        ok = f"NOT isnan({x}.f - {y}.f) AND "
        one = (f"(CASE WHEN {ok}{x}.f - {y}.f > 1e-9 * (abs({y}.f) + 1.0) THEN 1 "
               f"WHEN {ok}{x}.f - {y}.f < -1e-9 * (abs({y}.f) + 1.0) THEN -1 "
               f"ELSE elig_esign(TRY({x}.n * {y}.d), {x}.e, TRY({y}.n * {x}.d), {y}.e) END)")
        if self._single(n.left) and self._single(n.right):  # (the lists' lambdas never reached)
            t = f"(CASE WHEN ({a.v}) IS NULL OR ({b.v}) IS NULL THEN NULL ELSE {N.holds(n.op, one)} END)"
        else:
            t = (f"(CASE WHEN ({a.v}) IS NULL OR ({b.v}) IS NULL THEN NULL "
                 f"WHEN len({a.v}) = 1 AND len({b.v}) = 1 THEN {N.holds(n.op, one)} "
                 f"WHEN list_bool_and({truths}) THEN TRUE WHEN NOT list_bool_or({truths}) THEN FALSE END)")
        m = (f"(CASE WHEN ({a.v}) IS NULL OR ({b.v}) IS NULL THEN flatten([CASE WHEN ({a.v}) IS NULL THEN {a.m} ELSE {EMPTY} END, "
             f"CASE WHEN ({b.v}) IS NULL THEN {b.m} ELSE {EMPTY} END]) ELSE flatten([{a.m}, {b.m}]) END)")
        return B(t, m, "FALSE", max(a.lvl, b.lvl))

    def _single(self, n) -> bool:
        """The number's values are one value or none (NULL), never a longer list: a constant, an
        item's attribute, dose, course or half-life, and conversions and arithmetic of those
        (Generator's n_ nodes: one-element lists, their products deduplicated). Its comparison
        needs no lambda over lists (binding the two nested list_transform of elig_sign cost
        milliseconds of planning per comparison)."""
        if isinstance(n, (I.NConst, I.NAttr, I.NDose, I.NCourse, I.NHalfLife)):
            return True
        if isinstance(n, I.NScale):
            return self._single(n.operand)
        if isinstance(n, I.NArith):
            return self._single(n.left) and self._single(n.right)
        if isinstance(n, I.NDerived) and n.name in self.derived:
            return self._single(self.derived[n.name].formula)
        return False

    @staticmethod
    def _slim(steps, last, v):
        """The item struct ``v`` of the rows (``t.x AS v`` in the first step) with only the fields
        the steps read: every step is materialized with it (a treatment's struct has twelve
        fields, two of them structs, three of them text). Unchanged where the struct is read as
        a whole."""
        text = "\n".join(steps) + last
        alias = f"t.x AS {v}"
        if text.count(alias) != 1:
            return steps
        rest = text.replace(alias, "")
        if re.search(rf"\b{v}\b(?!\.)", rest):
            return steps
        fields = sorted({m.group(2) for m in re.finditer(rf'\b{v}\.("?)(\w+)\1', rest)})
        if not fields:
            return steps
        packed = "{" + ", ".join(f"{q(f)}: t.x.{ident(f)}" for f in fields) + "}"
        return tuple(x.replace(alias, f"{packed} AS {v}") for x in steps)

    def _join_rows(self, steps, aggs, lvl, last):
        """RelGenerator.rel_join of a chain of row steps: the first joins the patient's columns
        read by any step (only those: a MATERIALIZED CTE keeps every column it selects), each
        step a MATERIALIZED CTE (DuckDB's optimizer does not inline it: inlined, every reference
        repeats the whole expression), the aggregates over ``last`` (a projection of the last
        step, not materialized): the aggregates as columns at level lvl + 1."""
        names = []
        for _ in aggs:
            self._n += 1
            names.append(f"{self.crit.id}__h{self._n}")
        cols = ",\n      ".join(f"{a} AS {ident(n)}" for a, n in zip(aggs, names))
        later = "\n".join(steps) + "\n".join(aggs) + last
        need = sorted({n for n in re.findall(r'"([^"]+)"', later) if n.startswith(("a_", "f_", self.crit.id + "__h"))})
        need = [ident(n) for n in need] + [c for c in ("sex", "birth") if re.search(rf"\b{c}\b", later)]
        if need:
            first = steps[0].replace("SELECT p.*,", "SELECT " + "".join(f"p.{c}, " for c in ["seq"] + need), 1)
        else:  # no column of the patient read: the item rows alone (the LEFT JOIN keeps the chain's patients)
            join = f" JOIN {PREV} p ON p.seq = t.seq"
            assert steps[0].count(join) == 1
            first = steps[0].replace("SELECT p.*,", "SELECT t.seq,", 1).replace(join, "", 1)
        steps = (first,) + steps[1:]
        # the steps nested projections, one MATERIALIZED CTE per run of them (a materialized
        # step copies every column of every row: one per row level cost more than the level's
        # expressions), a new one where a step filters the rows (a filter over a nested
        # projection is pushed below it: the columns it reads computed twice)
        runs = [[steps[0]]]
        for sql in steps[1:]:
            if re.search(r" FROM @R WHERE ", sql):
                runs.append([sql])
            else:
                runs[-1].append(sql)
        ctes = []
        for i, run in enumerate(runs):
            nested = run[0].replace("@R", f"_r{i - 1}")
            for sql in run[1:]:
                nested = sql.replace("@R", f"({nested})")
            ctes.append(f"_r{i} AS MATERIALIZED ({nested})")
        src = f"(WITH {', '.join(ctes)} {last.replace('@R', f'_r{len(runs) - 1}')})"
        self.joins.append((lvl + 1, f"(SELECT seq,\n      {cols}\n    FROM {src}\n    GROUP BY seq)"))
        return [ident(n) for n in names], lvl + 1

    def items_query(self, n, ctx):
        """RelGenerator.b_BQuery's meaning, written for DuckDB (the module's notes)."""
        if ctx.item_level:
            self.unsupported("an item query inside an item query has no relational SQL form yet")
        self._in_items = True
        try:
            return self._items_query(n, ctx)
        finally:
            self._in_items = False

    def _items_query(self, n, ctx):
        var = "x0"
        it = var
        ictx = ctx.bind(n.var, n.kind, var, dur=(n.kind == "treatment"))
        rows = self.item_rows(n, has_any("t.cls", n.codes))
        if self.bind_steps is not None:  # a query in the duration of an enclosing item query's window
            self.unsupported("a query in the duration of an item query's window (the lambda form)")
        self.bind_steps = []
        try:
            w, it, ictx, wrap = self.item_window(n, ctx, ictx, var, it)
        finally:
            binds, self.bind_steps = self.bind_steps, None
        # the item's own window, computed once per item (its durations' bound values columns of
        # the rows before it: RelGenerator._bind): one step with the item rows, the binds as
        # nested projections over them in their order (a step of their own was one more copy of
        # the rows); the window a column x0w of its own beside the item x0i (Generator.item_window
        # wraps them as {x: item, w: window}: a copy of each item's struct)
        v0 = var + "i" if wrap else var
        first_rows = rows.replace('{v}', v0)
        wide = self._wide_outside(n, var, v0) if wrap else None
        if wide is not None:  # the items surely outside every window of the durations left out first
            first_rows = f"SELECT * FROM ({first_rows}) WHERE {wide} IS NOT FALSE"
        for p, z in binds:
            first_rows = f"SELECT *, {self._rename(p, var, v0)} AS {z} FROM ({first_rows})"
        src = (first_rows,)
        head = f"{{'x': {var}i, 'w': "
        if wrap:
            assert wrap.startswith(head) and wrap.endswith("}")
            src += (f"SELECT *, {wrap[len(head):-1]} AS {var}w FROM @R",)
        self.row_scope()
        bound, code, it_t, it_m, pre, lvl, kfield = self.item_columns(n, ctx, ictx, it, w)
        # an item surely false (of no class asked, inactive, outside the window) adds nothing to
        # any aggregate below: left out before its condition is read (with its window's inside)
        # (the filter is a WHERE of the step after _bins: a filter over a projection of its own is
        # pushed below it by DuckDB, which then computes _bins twice)
        first = (f"SELECT *, {bound['ins']} AS _bins FROM @R",) if "ins" in bound else ()
        then = (f"SELECT *, {bound['pt']} AS _bpt FROM @R",) if "pt" in bound else ()
        after = self.row_steps() + then
        # the missing codes only of the items whose truth is unknown (the only ones read)
        k = kfield[len(", 'k': "):] if kfield else "NULL"
        last = (f"SELECT seq, _i, _zt, _zm0 AS _zm, {k} AS _zk "
                f"FROM (SELECT *, {it_t} AS _zt, CASE WHEN ({it_t}) IS NULL THEN {it_m} END AS _zm0 FROM @R)")
        keep = f" WHERE ({pre}) IS NOT FALSE"
        if after:
            assert after[0].endswith(" FROM @R")
            after = (after[0] + keep,) + after[1:]
        else:
            assert last.endswith(" FROM @R)")
            last = last[:-1] + keep + ")"
        body = first + after
        if wrap:  # the item x0.x is x0i, its window x0.w is x0w
            def unwrap(x):
                return re.sub(rf"\b{var}\.w\b", var + "w", re.sub(rf"\b{var}\.x\b", var + "i", x))
            body, last = tuple(unwrap(x) for x in body), unwrap(last)
        if wrap and first:  # the rows, binds, window and its inside: nested projections of one step
            drop = f" EXCLUDE ({', '.join(z for _, z in binds)})" if binds else ""
            inner = src[1].replace("@R", f"({src[0]})")
            body = (body[0].replace("SELECT *,", f"SELECT *{drop},", 1).replace("@R", f"({inner})"),) + body[1:]
            src = ()
        body = src + body
        body = self._slim(body, last, v0)
        cols_, lvl = self._join_rows(body, self.item_aggs(n, "_zt", "_zm", "_zk"), lvl, last)
        return self.items_truth(n, cols_, lvl)

