"""The SQL backend (DuckDB dialect): the checked program as one screening query over the tables
of docs/sql.md.

Why a small printer of our own and not sqlglot trees: the meaning lives in a few dozen DuckDB
constructs (lambdas over per-patient lists, STRUCTs, HUGEINT fractions, TRY) that are emitted
from templates per IR node; sqlglot would parse them back into its own trees only to print the
same text, and it does not model DuckDB's lambda syntax of this version. Each dialect is one
generator; a node a generator does not know raises ``SqlUnsupported`` naming the rule, its
file:line and why, when the SQL is compiled, never when it runs.

Meaning (compiler/runtime.py is the reference): every boolean node becomes three values, truth
(BOOLEAN, NULL for unknown: SQL's AND/OR/NOT are Kleene's), missing (VARCHAR[], meaningful when
the truth is NULL) and review (BOOLEAN, an unknown that comes only from an unrecorded judgment).
Patient-level nodes become columns of per-criterion common table expressions (one level per
CTE, so no expression is repeated); nodes inside an item query are inline lambda expressions
over that patient's list of items.
"""

from __future__ import annotations


from .. import ir as I
from . import numbers as N
from .gen_age import AgeNodes
from .gen_dates import NEVER, DateNodes
from .gen_types import EMPTY, B, Ctx, Num, SqlUnsupported, Window, ident, key_day, key_index, q, qlist  # noqa: F401 (re-exported)



class Generator(AgeNodes, DateNodes):
    """Compiles one criterion at a time into helper columns grouped by level."""

    def __init__(self, program: I.Program, lowered):
        self.p = program
        self.mod = lowered
        self.obs = {o.name: o for o in program.observations}
        self.items = {x.name: x for x in program.items}
        self.facts = {f.name: f for f in program.facts}
        self.equiv = {t.name: t for t in program.equivalences}
        self.derived = {d.name: d for d in program.derived}
        self.anchors = program.trial.anchors
        self._n = 0

    # ------------------------------------------------------------------ helpers and levels
    def start(self, crit):
        self.crit = crit
        self.helpers: list[tuple[str, str, int]] = []
        self._n = 0

    def helper(self, sql: str, lvl: int) -> tuple[str, int]:
        self._n += 1
        name = f"{self.crit.id}__h{self._n}"
        self.helpers.append((name, sql, lvl + 1))
        return ident(name), lvl + 1

    def mat(self, b: B, ctx: Ctx) -> B:
        """A patient-level boolean becomes three columns (referenced by name from then on)."""
        if ctx.item_level:
            return b
        t, lt = self.helper(b.t, b.lvl)
        m, _ = self.helper(b.m, b.lvl)
        r, _ = self.helper(b.r, b.lvl)
        return B(t, m, r, lt)

    def unsupported(self, what: str):
        raise SqlUnsupported(what)

    # ------------------------------------------------------------------ booleans
    def b(self, n, ctx: Ctx) -> B:
        m = getattr(self, "b_" + type(n).__name__, None)
        if m is None:
            self.unsupported(f"{type(n).__name__} has no SQL form yet")
        return self.mat(m(n, ctx), ctx)

    @staticmethod
    def _unk(b: B, what: str) -> str:
        return f"CASE WHEN ({b.t}) IS NULL THEN {what} ELSE {EMPTY} END"

    def b_BAnd(self, n, ctx):
        parts = [self.b(x, ctx) for x in n.items]
        return self._andor(parts, "AND")

    def b_BOr(self, n, ctx):
        parts = [self.b(x, ctx) for x in n.items]
        return self._andor(parts, "OR")

    def _andor(self, parts, op):
        t = "(" + f" {op} ".join(f"({p.t})" for p in parts) + ")"
        m = "flatten([" + ", ".join(self._unk(p, p.m) for p in parts) + "])"
        r = "(" + " AND ".join(f"(({p.t}) IS NOT NULL OR ({p.r}))" for p in parts) + ")"
        return B(t, m, r, max(p.lvl for p in parts))

    def b_BNot(self, n, ctx):
        a = self.b(n.operand, ctx)
        return B(f"(NOT ({a.t}))", a.m, a.r, a.lvl)

    def b_BImplies(self, n, ctx):
        c = self.b(n.cond, ctx)
        th = self.b(n.then, ctx)
        t = f"(CASE WHEN ({c.t}) IS FALSE THEN TRUE WHEN ({c.t}) THEN ({th.t}) WHEN ({th.t}) THEN TRUE END)"
        m = f"(CASE WHEN ({c.t}) IS NULL THEN flatten([{c.m}, {self._unk(th, th.m)}]) ELSE {th.m} END)"
        r = f"(CASE WHEN ({c.t}) IS NULL THEN ({c.r}) AND (({th.t}) IS NOT NULL OR ({th.r})) ELSE ({th.r}) END)"
        return B(t, m, r, max(c.lvl, th.lvl))

    def b_BIf(self, n, ctx):
        c = self.b(n.cond, ctx)
        a = self.b(n.then, ctx)
        e = self.b(n.otherwise, ctx)
        t = (f"(CASE WHEN ({c.t}) THEN ({a.t}) WHEN NOT ({c.t}) THEN ({e.t}) "
             f"WHEN ({a.t}) IS NOT NULL AND ({a.t}) = ({e.t}) THEN ({a.t}) END)")
        m = (f"(CASE WHEN ({c.t}) THEN {a.m} WHEN NOT ({c.t}) THEN {e.m} "
             f"ELSE flatten([{c.m}, {self._unk(a, a.m)}, {self._unk(e, e.m)}]) END)")
        r = (f"(CASE WHEN ({c.t}) THEN ({a.r}) WHEN NOT ({c.t}) THEN ({e.r}) "
             f"ELSE ({c.r}) AND (({a.t}) IS NOT NULL OR ({a.r})) AND (({e.t}) IS NOT NULL OR ({e.r})) END)")
        return B(t, m, r, max(c.lvl, a.lvl, e.lvl))

    def b_BRecorded(self, n, ctx):
        """recorded X: true when X is known and usable, false otherwise (never unknown)."""
        if n.kind == "bool":
            x = self.b(n.operand, ctx)
            return B(f"(({x.t}) IS NOT NULL)", EMPTY, "FALSE", x.lvl)
        x = self.num(n.operand, ctx) if n.kind == "num" else self.date(n.operand, ctx)
        return B(f"(({x.v}) IS NOT NULL)", EMPTY, "FALSE", x.lvl)

    def b_BFact(self, n, ctx):
        col = ident("f_" + n.name)
        st = ident("f_" + n.name + "_st")
        if n.judgment:
            return B(col, f"(CASE WHEN {st} = 0 THEN {EMPTY} ELSE {qlist([n.name])} END)", f"({st} = 0)")
        return B(col, qlist([n.name]), "FALSE")

    def b_BSexIs(self, n, ctx):
        vals = ", ".join(q(v) for v in n.values)
        neg = "NOT " if n.negated else ""
        return B(f"(CASE WHEN sex IS NOT NULL THEN {neg}(sex IN ({vals})) END)", qlist(["sex"]), "FALSE")

    def b_BNumCmp(self, n, ctx):
        a = self.num(n.left, ctx)
        b = self.num(n.right, ctx)
        sign = N.holds(n.op, "elig_sign(x, y)")
        truths = f"flatten(list_transform({a.v}, lambda x: list_transform({b.v}, lambda y: {sign})))"
        t = (f"(CASE WHEN ({a.v}) IS NULL OR ({b.v}) IS NULL THEN NULL WHEN list_bool_and({truths}) THEN TRUE "
             f"WHEN NOT list_bool_or({truths}) THEN FALSE END)")
        m = (f"(CASE WHEN ({a.v}) IS NULL OR ({b.v}) IS NULL THEN flatten([CASE WHEN ({a.v}) IS NULL THEN {a.m} ELSE {EMPTY} END, "
             f"CASE WHEN ({b.v}) IS NULL THEN {b.m} ELSE {EMPTY} END]) ELSE flatten([{a.m}, {b.m}]) END)")
        return B(t, m, "FALSE", max(a.lvl, b.lvl))

    def b_BDateCmp(self, n, ctx):
        a = self.date(n.left, ctx)
        b = self.date(n.right, ctx)
        d = f"(({a.v}) - ({b.v}))"
        t = N.holds(n.op, f"sign({d})")
        m = f"flatten([CASE WHEN ({a.v}) IS NULL THEN {a.m} ELSE {EMPTY} END, CASE WHEN ({b.v}) IS NULL THEN {b.m} ELSE {EMPTY} END])"
        return B(t, m, "FALSE", max(a.lvl, b.lvl))

    # ------------------------------------------------------------------ observations
    def obs_list(self, code: str) -> str:
        return ident("o_" + code)

    def obs_wild(self, code: str) -> str:
        """The observations without a code, each read as a reading of code (flag w)."""
        return ident("ow_" + code)

    def select(self, s, ctx):
        """(candidates list or NULL, missing when NULL, level) of a selection."""
        if isinstance(s, I.SelItem):
            kind, name = ctx.vars[s.var]
            return f"[{name}]", EMPTY, 0
        if not isinstance(s, I.SelLatest):
            self.unsupported(f"selection {type(s).__name__} has no SQL form yet")
        if ctx.item_level:
            self.unsupported("a 'latest' selection inside an item query has no SQL form yet")
        w = self.window(s.window, ctx)
        code = qlist([s.code])
        if s.pred is not None:
            return self._latest_where(s, w, code, ctx)
        return self._latest(self.obs_list(s.code), self.obs_wild(s.code), w, code, w.lvl)

    def _latest_where(self, s, w, code, ctx):
        """latest X ... where (filter) (runtime._latest_where): the most recent reading the filter
        surely holds for; a reading whose filter is unknown and that could be as recent is a
        further candidate (when there is a sure one; else the reading is unknown)."""
        p = self.b(s.pred, ctx.bind(s.var, "observation", "x"))
        L0, LW0 = self.obs_list(s.code), self.obs_wild(s.code)
        lv = max(w.lvl, p.lvl)
        sL, _ = self.helper(f"list_filter({L0}, lambda x: ({p.t}) IS TRUE)", lv)
        sW, _ = self.helper(f"list_filter({LW0}, lambda x: ({p.t}) IS TRUE)", lv)
        mb, lv = self.helper(f"list_sort(list_concat(list_filter({L0}, lambda x: ({p.t}) IS NULL), "
                             f"list_filter({LW0}, lambda x: ({p.t}) IS NULL)))", lv)
        c0, m0, lc = self._latest(sL, sW, w, code, lv)
        return self.latest_where_parts(c0, m0, lc, mb, w, code, f"(len({L0}) + len({LW0}) > 0)",
                                       f"(len({sL}) + len({sW}) = 0)", nullable=False)

    def latest_where_parts(self, c0, m0, lc, mb, w, code, any_items: str, no_sure: str, nullable: bool):
        """The candidates, missing codes and level of `latest ... where` from those of the sure
        readings (c0, m0 at level lc) and the readings whose filter is unknown (the list mb): a
        further candidate is an unknown one that could be as recent (any_items: the code has
        readings; no_sure: none is sure; nullable: mb may be NULL, the relational form's
        aggregate over no rows). The lambda form's and the relational form's."""
        best = f"list_max(list_transform(list_filter({c0}, lambda x: x.d IS NOT NULL), lambda x: x.d))"
        extra, lx = self.helper(f"list_filter({mb}, lambda x: x.d IS NULL OR (x.d BETWEEN ({w.lom}) AND ({w.him}) "
                                f"AND ({best} IS NULL OR x.d >= {best})))", lc)
        ok = f"coalesce({w.ok}, FALSE)"
        has = f"coalesce(len({extra}), 0) > 0" if nullable else f"len({extra}) > 0"
        none = f"NOT {has}" if nullable else f"len({extra}) = 0"
        cands = (f"(CASE WHEN NOT {any_items} OR NOT {ok} OR {none} THEN {c0} "
                 f"WHEN ({c0}) IS NULL THEN NULL ELSE list_concat({c0}, {extra}) END)")
        miss = (f"(CASE WHEN NOT {any_items} THEN {m0} WHEN NOT {ok} AND {no_sure} THEN {code} WHEN NOT {ok} THEN {m0} "
                f"WHEN {has} THEN {code} ELSE {m0} END)")
        c, lvl = self.helper(cands, lx)
        m, _ = self.helper(miss, lx)
        return c, m, lvl

    def _latest(self, L, LW, w, code, lvl):
        """The candidates of the most recent reading of L (and of LW, readings without a code) in
        window w: (candidates or NULL, missing when NULL, level)."""
        inw = f"x.d IS NOT NULL AND x.d BETWEEN ({w.lo}) AND ({w.hi})"
        key, lk = self.helper(f"list_max(list_transform(list_filter({L}, lambda x: {inw}), lambda x: CAST(x.d AS BIGINT) * 1048576 + x.i))", lvl)
        # observations without a code that could be the most recent reading (runtime._latest_wild)
        extra, lx = self.helper(
            f"(CASE WHEN len({LW}) = 0 THEN {LW} ELSE list_filter({LW}, lambda x: x.d IS NULL OR (x.d BETWEEN ({w.lom}) AND ({w.him}) "
            f"AND ({key} IS NULL OR CAST(x.d AS BIGINT) * 1048576 + x.i > {key}))) END)", lk)
        floating = f"list_filter({L}, lambda x: x.d IS NULL)"
        cands, miss = self.latest_parts(
            w, code, key, count=f"len({L})", top=f"list_filter({L}, lambda x: x.i = {key_index(key)})",
            late=f"list_filter({L}, lambda x: x.d IS NULL AND ({key_day(key)} < ({w.him}) OR x.i > {key_index(key)}))",
            extra=extra, has_extra=f"len({extra}) > 0", floating=floating, has_floating=f"len({floating}) > 0",
            maybe=f"len(list_filter({L}, lambda x: x.d BETWEEN ({w.lom}) AND ({w.him}) AND NOT (x.d BETWEEN ({w.lo}) AND ({w.hi})))) > 0",
            later=f"len(list_filter({L}, lambda x: x.d > ({w.hi}) AND x.d <= ({w.him}))) > 0")
        c, lc = self.helper(cands, lx)
        m, _ = self.helper(miss, lx)
        return c, m, lc

    @staticmethod
    def latest_parts(w, code, key, count, top, late, extra, has_extra, floating, has_floating, maybe, later="FALSE"):
        """The candidates and missing codes of the most recent reading in window w from its parts
        (runtime._latest): count, the readings of the code; key, the (day, index) key of the
        latest dated one in the window (NULL: none); top, the list of that reading; late, the
        readings without a usable date that could be later; extra, the readings without a code
        that could be; floating, the readings without a usable date; maybe, whether a reading
        dated in the window's margin could be in it; later, whether one is dated in the margin
        after the window's sure end (it could be the most recent: runtime._latest's `late`). The
        lambda form's (over lists) and the relational form's (over per-patient aggregates)."""
        float_ok = "TRUE" if w.ever else "FALSE"
        cands = (f"(CASE WHEN NOT coalesce({w.ok}, FALSE) OR {count} = 0 THEN NULL "
                 f"WHEN {key} IS NOT NULL AND {later} THEN NULL "
                 f"WHEN {key} IS NOT NULL THEN list_concat(list_concat({top}, {late}), {extra}) "
                 f"WHEN {has_extra} THEN (CASE WHEN {float_ok} AND {has_floating} THEN list_concat({floating}, {extra}) END) "
                 f"WHEN {float_ok} AND {has_floating} THEN {floating} END)")
        miss = (f"(CASE WHEN NOT coalesce({w.ok}, FALSE) THEN (CASE WHEN {count} > 0 THEN {w.amiss} ELSE list_concat({code}, {w.amiss}) END) "
                f"WHEN {key} IS NOT NULL AND {later} THEN list_concat({code}, {w.miss}) "
                f"WHEN {count} = 0 OR {has_extra} THEN {code} "
                f"WHEN {has_floating} THEN {code} "
                f"WHEN {maybe} THEN list_concat({code}, {w.miss}) ELSE {code} END)")
        return cands, miss

    def limit_truths(self, lim, op: str, x: str, ctx) -> tuple[str, str, int]:
        """(list of truths of candidate x against the limit's alternatives, cond-missing, level)."""
        if isinstance(lim, I.LConst):
            cases = " ".join(f"WHEN {q(u)} THEN {N.const(v)}" for u, v in lim.table)
            return f"[{N.holds(op, f'elig_sign_rec({x}.v, {x}.vi, CASE {x}.u {cases} END)')}]", EMPTY, 0
        if isinstance(lim, I.LRef):
            w = lim.which
            k = N.const(lim.multiple)
            cmp = N.holds(op, f"elig_sign_ref({x}.v, {x}.vi, {k}, {x}.{w}, {x}.{w}i)")
            return f"[CASE WHEN {x}.{w} IS NOT NULL THEN {cmp} END]", EMPTY, 0
        if isinstance(lim, I.LIf):
            c = self.b(lim.cond, ctx)
            a, am, la = self.limit_truths(lim.then, op, x, ctx)
            b, bm, lb = self.limit_truths(lim.otherwise, op, x, ctx)
            t = f"(CASE WHEN ({c.t}) THEN {a} WHEN NOT ({c.t}) THEN {b} ELSE list_concat({a}, {b}) END)"
            cm = f"(CASE WHEN ({c.t}) THEN {am} WHEN NOT ({c.t}) THEN {bm} ELSE flatten([{c.m}, {am}, {bm}]) END)"
            return t, cm, max(c.lvl, la, lb)
        self.unsupported(f"limit {type(lim).__name__} has no SQL form yet")

    def b_BObsCmp(self, n, ctx):
        cands, cmiss, lc = self.select(n.sel, ctx)
        code = qlist([n.sel.code])
        truths, cm, lt = self.limit_truths(n.limit, n.op, "x", ctx)
        per = f"list_transform({cands}, lambda x: CASE WHEN x.bad THEN [CAST(NULL AS BOOLEAN)] ELSE {truths} END)"
        lvl = max(lc, lt)
        if not ctx.item_level:
            per, lvl = self.helper(per, lvl)
            cm, lvl = self.helper(f"(CASE WHEN len(list_filter({cands}, lambda x: NOT x.bad)) > 0 THEN {cm} ELSE {EMPTY} END)", lvl)
        else:
            cm = f"(CASE WHEN len(list_filter({cands}, lambda x: NOT x.bad)) > 0 THEN {cm} ELSE {EMPTY} END)"
        flat = f"flatten({per})"
        t = (f"(CASE WHEN ({cands}) IS NULL THEN NULL WHEN list_bool_and(list_transform({flat}, lambda t: coalesce(t, FALSE))) THEN TRUE "
             f"WHEN list_bool_and(list_transform({flat}, lambda t: coalesce(NOT t, FALSE))) THEN FALSE END)")
        m0 = self.candidates_missing(cands, per, cm, code)
        m = (f"(CASE WHEN ({cands}) IS NULL THEN {cmiss} WHEN len({m0}) > 0 THEN {m0} WHEN len({cm}) > 0 THEN {cm} ELSE {code} END)")
        return B(t, m, "FALSE", lvl)

    @staticmethod
    def candidates_missing(cands: str, per: str, cm: str, code: str) -> str:
        """The missing codes of a comparison over several candidate readings (b_BObsCmp; the
        relational form's latest comparisons): per is each candidate's list of truths, cm the
        missing codes of the limits, code the reading's own: the code where a candidate's truth is
        unknown or the candidates' truths differ, cm where a candidate's limits disagree."""
        flat = f"flatten({per})"
        has_none = f"len(list_filter({flat}, lambda t: t IS NULL)) > 0"
        mixed = f"len(list_filter({per}, lambda ts: list_contains(ts, TRUE) AND list_contains(ts, FALSE))) > 0"
        differ = (f"(len({cands}) > 1 AND len(list_distinct(list_transform({per}, lambda ts: "
                  f"array_to_string(list_sort(list_distinct(list_transform(ts, lambda t: coalesce(CAST(t AS INTEGER), 2)))), ',')))) > 1)")
        return (f"flatten([CASE WHEN {has_none} THEN {code} ELSE {EMPTY} END, CASE WHEN {mixed} THEN {cm} ELSE {EMPTY} END, "
                f"CASE WHEN {differ} THEN {code} ELSE {EMPTY} END])")

    def b_BObsBetween(self, n, ctx):
        cands, cmiss, lc = self.select(n.sel, ctx)
        code = qlist([n.sel.code])
        lo, lom, l1 = self.limit_truths(n.low, ">=", "x", ctx)
        hi, him, l2 = self.limit_truths(n.high, "<=", "x", ctx)
        if lom != EMPTY or him != EMPTY:
            self.unsupported("'between' with conditional limits has no SQL form yet")
        # per candidate: (low) AND (high), each over its alternatives
        def agg(ts):
            return (f"(CASE WHEN list_bool_and(list_transform({ts}, lambda t: coalesce(t, FALSE))) THEN TRUE "
                    f"WHEN list_bool_and(list_transform({ts}, lambda t: coalesce(NOT t, FALSE))) THEN FALSE END)")
        per = f"list_transform({cands}, lambda x: CASE WHEN x.bad THEN CAST(NULL AS BOOLEAN) ELSE ({agg(lo)} AND {agg(hi)}) END)"
        lvl = max(lc, l1, l2)
        if not ctx.item_level:
            per, lvl = self.helper(per, lvl)
        t = (f"(CASE WHEN ({cands}) IS NULL THEN NULL WHEN list_bool_and(list_transform({per}, lambda t: coalesce(t, FALSE))) THEN TRUE "
             f"WHEN list_bool_and(list_transform({per}, lambda t: coalesce(NOT t, FALSE))) THEN FALSE END)")
        m = f"(CASE WHEN ({cands}) IS NULL THEN {cmiss} ELSE {code} END)"
        return B(t, m, "FALSE", lvl)

    def b_BObsIs(self, n, ctx):
        cands, cmiss, lc = self.select(n.sel, ctx)
        code = qlist([n.sel.code])
        vals = ", ".join(q(v) for v in n.values)
        neg = "NOT " if n.negated else ""
        per = f"list_transform({cands}, lambda x: CASE WHEN x.bad THEN CAST(NULL AS BOOLEAN) ELSE {neg}(x.s IN ({vals})) END)"
        lvl = lc
        if not ctx.item_level:
            per, lvl = self.helper(per, lvl)
        t = (f"(CASE WHEN ({cands}) IS NULL THEN NULL WHEN list_bool_and(list_transform({per}, lambda t: coalesce(t, FALSE))) THEN TRUE "
             f"WHEN list_bool_and(list_transform({per}, lambda t: coalesce(NOT t, FALSE))) THEN FALSE END)")
        m = f"(CASE WHEN ({cands}) IS NULL THEN {cmiss} ELSE {code} END)"
        return B(t, m, "FALSE", lvl)

    def b_BObsQuery(self, n, ctx):
        w = self.window(n.window, ctx)
        L0, LW = self.obs_list(n.code), self.obs_wild(n.code)
        # readings in the record's order, those without a code among them (perhaps of this code)
        L = f"(CASE WHEN len({LW}) = 0 THEN {L0} ELSE list_sort(list_concat({L0}, {LW})) END)"
        code = qlist([n.code])
        var = f"o{len(ctx.vars)}"
        ictx = ctx.bind(n.var, "observation", var)
        p = self.b(n.pred, ictx)
        pt = f"(NOT ({p.t}))" if n.quantifier == "every" else f"({p.t})"
        # a reading with an unusable date could lie anywhere in time: in a window reaching every
        # date (`ever`), surely inside (runtime _obs_query)
        undated = f"(CASE WHEN ({w.lo}) = {-NEVER} AND ({w.hi}) = {NEVER} THEN TRUE END)"
        inside = f"(CASE {'WHEN ' + w.empty + ' THEN FALSE ' if w.empty else ''}WHEN {var}.d IS NULL THEN {undated} WHEN {var}.d BETWEEN ({w.lo}) AND ({w.hi}) THEN TRUE WHEN {var}.d < ({w.lom}) OR {var}.d > ({w.him}) THEN FALSE END)"
        sure = f"({inside} IS NOT NULL AND NOT {var}.w)"  # dated inside, and surely of this code
        # per reading: (truth, missing, dated inside); readings outside the window are left out
        item = (f"{{'t': CASE WHEN NOT {sure} THEN (CASE WHEN {pt} IS FALSE THEN FALSE END) ELSE {pt} END, "
                f"'m': CASE WHEN NOT {sure} THEN list_concat({code}, CASE WHEN {pt} IS NULL THEN {p.m} ELSE {EMPTY} END) ELSE {p.m} END, "
                f"'n': {sure}}}")
        res = f"list_transform(list_filter({L}, lambda {var}: {inside} IS NOT FALSE), lambda {var}: {item})"
        lvl = max(w.lvl, p.lvl)
        bind = None
        if not ctx.item_level:
            res, lvl = self.helper(res, lvl)
        else:  # inside an item query's filter: the readings' list is bound once (not written out
            # at each of its seven uses below: a 300 kB script that DuckDB took 13 s to bind)
            bind, res = res, f"r{var}"
        found_t = (f"(CASE WHEN len(list_filter({res}, lambda z: z.t)) > 0 THEN TRUE "
                   f"WHEN len(list_filter({res}, lambda z: z.t IS NULL)) > 0 THEN NULL "
                   f"WHEN len(list_filter({res}, lambda z: z.n)) = 0 THEN NULL ELSE FALSE END)")
        found_m = (f"(CASE WHEN len(list_filter({res}, lambda z: z.t IS NULL)) > 0 "
                   f"THEN flatten(list_transform(list_filter({res}, lambda z: z.t IS NULL), lambda z: z.m)) ELSE {code} END)")
        t = (f"(CASE WHEN NOT coalesce({w.ok}, FALSE) OR len({res}) = 0 THEN NULL ELSE "
             + ("" if n.quantifier == "any" else "NOT ") + f"{found_t} END)")
        m = (f"(CASE WHEN NOT coalesce({w.ok}, FALSE) THEN (CASE WHEN len({L}) > 0 THEN {w.amiss} ELSE list_concat({code}, {w.amiss}) END) "
             f"WHEN len({res}) = 0 THEN {code} ELSE {found_m} END)")
        if bind is not None:
            t = f"list_transform([{bind}], lambda {res}: {t})[1]"
            m = f"list_transform([{bind}], lambda {res}: {m})[1]"
        # review when the readings undecided are so only by an unrecorded judgment: they alone
        # name no code (runtime _obs_query: _or of the readings)
        return B(t, m, f"(len({m}) = 0)", lvl)

    # ------------------------------------------------------------------ item queries
    def item_window(self, n, ctx, ictx, var, it):
        """The window of an item query: (window or None, the item's expression, its context, and
        the item's wrapping or None). A window of the item's own (computed per item) is computed
        once: the item ``{var}i`` becomes ``{'x': item, 'w': window}`` (the wrapping returned),
        the item is then ``{var}.x`` and the window's bounds its ``w`` fields. Shared by the lambda
        form (b_BQuery) and the relational form (relational.RelGenerator)."""
        if n.window is None or n.window.kind == "ever":
            return None, it, ictx, None
        w = self.window(n.window, ictx if n.window.item_dependent else ctx)
        if not w.struct:
            return w, it, ictx, None
        inner = var + "i"
        it = f"{var}.x"
        ictx = ctx.bind(n.var, n.kind, it, dur=(n.kind == "treatment"))
        wrap = f"{{'x': {inner}, 'w': {self._rename(w.struct, var, inner)}}}"
        w = Window(w.ok, f"{var}.w.lo", f"{var}.w.lom", f"{var}.w.hi", f"{var}.w.him", f"{var}.w.m",
                   f"{var}.w.am", lvl=w.lvl)
        return w, it, ictx, wrap

    def item_parts(self, n, ctx, ictx, it, w, zq):
        """One item's judgment in a query (runtime's per-item rule): the values bound once
        (``ins``: inside the window, ``pt``: the condition), the truths and missing codes of its
        parts, their level, and the ``k`` field of `distinct` counting. Shared by the lambda
        form (b_BQuery) and the relational form (relational.RelGenerator.item_expr)."""
        bound = {}
        parts_t = []
        parts_m = []
        code = f"[{it}.c]"
        lvl = 0
        if n.kind == "treatment":
            parts_t.append(f"(CASE WHEN {it}.cls IS NULL THEN NULL ELSE TRUE END)")
            parts_m.append(f"CASE WHEN {it}.cls IS NULL THEN {code} ELSE {EMPTY} END")
        else:  # an item without a code could be any of the codes
            parts_t.append(f"(CASE WHEN {it}.w THEN NULL ELSE TRUE END)")
            parts_m.append(f"CASE WHEN {it}.w THEN {code} ELSE {EMPTY} END")
        if n.active:
            act = f"(CASE {it}.st WHEN 'active' THEN TRUE WHEN 'resolved' THEN FALSE END)"
            parts_t.append(act)
            parts_m.append(f"CASE WHEN {act} IS NULL THEN {code} ELSE {EMPTY} END")
        if w is not None:
            lvl = max(lvl, w.lvl)
            bound["ins"] = f"(CASE WHEN coalesce({w.ok}, FALSE) THEN {self.occurs(n.kind, it, w)} END)"
            own = self.own_dates(n.kind, it)
            parts_t.append(f"{zq}.ins")
            parts_m.append(f"CASE WHEN NOT coalesce({w.ok}, FALSE) THEN list_concat({w.amiss}, CASE WHEN {own} THEN {code} ELSE {EMPTY} END) "
                           f"WHEN {zq}.ins IS NULL THEN list_concat({self.inside_why_miss(n.kind, it, w)}, {code}) ELSE {EMPTY} END")
        if n.pred is not None:
            p = self.b(n.pred, ictx)
            lvl = max(lvl, p.lvl)
            pt = f"(NOT ({p.t}))" if n.negate_pred else f"({p.t})"
            if n.quantifier == "every":
                pt = f"(NOT {pt})"
            bound["pt"] = pt
            parts_t.append(f"{zq}.pt")
            # a filter undecided only by an unrecorded judgment adds no code (runtime _query: rev)
            parts_m.append(f"CASE WHEN {zq}.pt IS NULL THEN (CASE WHEN len({p.m}) > 0 THEN {p.m} WHEN {p.r} THEN {EMPTY} "
                           f"ELSE {code} END) ELSE {EMPTY} END")
        elif n.quantifier == "every":
            self.unsupported("'every' without a condition has no SQL form")
        kfield = ""
        if n.count is not None and n.distinct:
            # the names an item stands for (runtime._count_distinct): a treatment its listed
            # classes (all of them when its classes are unusable), another item its code
            names = qlist(n.codes)
            k = (f"CASE WHEN {it}.cls IS NULL THEN {names} ELSE list_intersect({it}.cls, {names}) END"
                 if n.kind == "treatment" else f"[{it}.c]")
            kfield = f", 'k': {k}"
        return bound, parts_t, parts_m, lvl, kfield

    def b_BQuery(self, n, ctx):
        var = f"x{len(ctx.vars)}"
        it = var  # how the item is reached inside the per-item lambda
        ictx = ctx.bind(n.var, n.kind, var, dur=(n.kind == "treatment"))
        if n.kind == "treatment":
            codes = ", ".join(q(c) for c in n.codes)
            L = f"list_filter(t_all, lambda {var}: {var}.cls IS NULL OR len(list_intersect({var}.cls, [{codes}])) > 0)"
        else:
            prefix = "c_" if n.kind == "condition" else "p_"
            # items without a code could be any: every query sees them (runtime._collect)
            wl = ident(prefix + "_wild")
            if len(n.codes) == 1:
                L = f"(CASE WHEN len({wl}) = 0 THEN {ident(prefix + n.codes[0])} ELSE list_sort(list_concat({ident(prefix + n.codes[0])}, {wl})) END)"
            else:
                L = ("list_sort(flatten([" + ", ".join(ident(prefix + c) for c in n.codes) + f", {wl}]))")
        w, it, ictx, wrap = self.item_window(n, ctx, ictx, var, it)
        if wrap:
            L = f"list_transform({L}, lambda {var}i: {wrap})"
        zq = f"q{var}"
        bound, parts_t, parts_m, lvl, kfield = self.item_parts(n, ctx, ictx, it, w, zq)
        code = f"[{it}.c]"
        if parts_t:
            it_t = "(" + " AND ".join(parts_t) + ")"
            it_m = "flatten([" + ", ".join(parts_m) + "])"
            item = (f"list_transform([{{'t': {it_t}, 'm': {it_m}}}], lambda {zq}m: "
                    f"{{'t': {zq}m.t, 'm': {zq}m.m{kfield}}})[1]")
            if bound:
                packed = "{" + ", ".join(f"{q(k)}: {v}" for k, v in bound.items()) + "}"
                item = f"list_transform([{packed}], lambda {zq}: {item})[1]"
        else:
            item = f"{{'t': TRUE, 'm': {EMPTY}{kfield}}}"
        res = f"list_transform({L}, lambda {var}: {item})"
        if not ctx.item_level:
            res, lvl = self.helper(res, lvl)
        t = (f"(CASE WHEN len(list_filter({res}, lambda z: z.t)) > 0 THEN TRUE "
             f"WHEN len(list_filter({res}, lambda z: z.t IS NULL)) > 0 THEN NULL ELSE FALSE END)")
        m = f"flatten(list_transform(list_filter({res}, lambda z: z.t IS NULL), lambda z: z.m))"
        if n.quantifier in ("no", "every"):
            t = f"(NOT {t})"
        if n.count is not None:  # at least N / at most N (runtime._count): sure and perhaps items
            sure = f"len(list_filter({res}, lambda z: z.t))"
            top = f"len(list_filter({res}, lambda z: z.t IS NOT FALSE))"
            if n.distinct:  # ... or the distinct names they stand for
                sure = f"len(list_distinct(flatten(list_transform(list_filter({res}, lambda z: z.t), lambda z: z.k))))"
                top = f"len(list_distinct(flatten(list_transform(list_filter({res}, lambda z: z.t IS NOT FALSE), lambda z: z.k))))"
            t = self.count_truth(n, sure, top)
        # review when the items that perhaps count do so only by an unrecorded judgment: they
        # alone name no code (runtime _query)
        return B(t, m, f"(len({m}) = 0)", lvl)

    def count_truth(self, n, sure: str, top: str) -> str:
        """The truth of `at least N` / `at most N` (runtime._count) from the number of items
        surely counted (sure) and of those that could be (top): the lambda form's and the
        relational form's."""
        k = int(n.count)
        if n.quantifier == "at_least":
            return f"(CASE WHEN {sure} >= {k} THEN TRUE WHEN {top} < {k} THEN FALSE END)"
        if n.quantifier == "at_most":
            return f"(CASE WHEN {top} <= {k} THEN TRUE WHEN {sure} > {k} THEN FALSE END)"
        self.unsupported(f"quantifier {n.quantifier} has no SQL form yet")

    @staticmethod
    def _rename(text: str, old: str, new: str) -> str:
        import re
        return re.sub(r"\b" + re.escape(old) + r"\.", new + ".", text)

    def end_of(self, kind, x):
        """(effective end day or NULL when unknown, whether the end is unknown)."""
        if kind == "procedure":
            return f"{x}.s"
        if kind == "treatment":
            return f"(CASE {x}.est WHEN 0 THEN {NEVER} WHEN 1 THEN {x}.e END)"
        return (f"(CASE WHEN {x}.est = 1 THEN {x}.e WHEN {x}.est = 0 AND {x}.st = 'active' THEN {NEVER} "
                f"WHEN {x}.est = 0 AND {x}.st = 'resolved' THEN {x}.s END)")

    def end_known(self, kind, x):
        if kind == "treatment":
            return f"({x}.est <> 2)"
        return f"({x}.est = 1 OR ({x}.est = 0 AND {x}.st IS NOT NULL))"

    def occurs(self, kind, x, w: Window) -> str:
        if w.empty:  # an empty window (measured from a date never reached): nothing is in it
            return f"(CASE WHEN {w.empty} THEN FALSE ELSE {self._occurs(kind, x, w)} END)"
        return self._occurs(kind, x, w)

    def _occurs(self, kind, x, w: Window) -> str:
        s = f"{x}.s"
        if kind == "procedure":
            return (f"(CASE WHEN {s} IS NULL THEN NULL WHEN {s} BETWEEN ({w.lo}) AND ({w.hi}) THEN TRUE "
                    f"WHEN {s} < ({w.lom}) OR {s} > ({w.him}) THEN FALSE END)")
        e = self.end_of(kind, x)
        return (f"(CASE WHEN {s} IS NULL THEN (CASE WHEN {e} IS NOT NULL AND {e} < ({w.lom}) THEN FALSE "
                f"WHEN {e} BETWEEN ({w.lo}) AND ({w.hi}) THEN TRUE END) "
                f"WHEN NOT {self.end_known(kind, x)} THEN (CASE WHEN {s} > ({w.him}) THEN FALSE WHEN {s} BETWEEN ({w.lo}) AND ({w.hi}) THEN TRUE END) "
                f"WHEN {s} <= ({w.hi}) AND {e} >= ({w.lo}) THEN TRUE WHEN {s} > ({w.him}) OR {e} < ({w.lom}) THEN FALSE END)")

    def inside_why_miss(self, kind, x, w: Window) -> str:
        """When an item's place in a known window is unknown: the window's own missing codes,
        unless the item's dates gave a reason (runtime: `if inside is None and not iwhy`)."""
        if kind == "procedure":
            has_why = f"({x}.s IS NULL)"
        else:
            has_why = f"({x}.s IS NULL OR NOT {self.end_known(kind, x)})"
        return f"(CASE WHEN {has_why} THEN {EMPTY} ELSE {w.miss} END)"

    def own_dates(self, kind, x) -> str:
        if kind == "procedure":
            return f"({x}.s IS NULL)"
        if kind == "treatment":
            return f"({x}.s IS NULL OR {x}.est = 2)"
        return f"({x}.s IS NULL OR {x}.est = 2 OR ({x}.est = 0 AND {x}.st IS NULL))"

    # ------------------------------------------------------------------ item fields
    def _item(self, var, ctx):
        kind, name = ctx.vars[var]
        if kind == "observation" and not any(o.attributes for o in self.p.observations):
            self.unsupported("the trial declares no attributes of observations")
        return kind, name

    def attr_json(self, x, name):
        return f"json_extract({x}.a, {q('$.' + name)})"

    def b_BAttrBool(self, n, ctx):
        kind, x = self._item(n.var, ctx)
        j = self.attr_json(x, n.name)
        t = f"(CASE WHEN json_type({x}.a) = 'OBJECT' AND json_type({j}) = 'BOOLEAN' THEN CAST({j} AS BOOLEAN) END)"
        return B(t, f"[{x}.c]", "FALSE")

    def b_BAttrIs(self, n, ctx):
        kind, x = self._item(n.var, ctx)
        neg = "NOT " if n.negated else ""
        tests = ", ".join(q(v) for v in n.tests)
        if n.name == "status":
            return B(f"(CASE WHEN {x}.st IS NOT NULL THEN {neg}({x}.st IN ({tests})) END)", f"[{x}.c]", "FALSE")
        j = self.attr_json(x, n.name)
        if n.type not in ("enum", "text"):
            self.unsupported(f"attribute test of type {n.type} has no SQL form yet")
        ok = f"json_type({x}.a) = 'OBJECT' AND json_type({j}) = 'VARCHAR'"
        if n.values:
            ok += f" AND json_extract_string({j}, '$') IN ({', '.join(q(v) for v in n.values)})"
        t = f"(CASE WHEN {ok} THEN {neg}(json_extract_string({j}, '$') IN ({tests})) END)"
        return B(t, f"[{x}.c]", "FALSE")

    def b_BFieldIs(self, n, ctx):
        kind, x = self._item(n.var, ctx)
        neg = "NOT " if n.negated else ""
        tests = ", ".join(q(v) for v in n.tests)
        f = f"{x}.{n.field}"
        t = f"(CASE WHEN json_type({f}) = 'VARCHAR' THEN {neg}(json_extract_string({f}, '$') IN ({tests})) END)"
        return B(t, f"[{x}.c]", "FALSE")

    def b_BClassIn(self, n, ctx):
        kind, x = self._item(n.var, ctx)
        tests = ", ".join(q(v) for v in n.tests)
        neg = "NOT " if n.negated else ""
        t = f"(CASE WHEN {x}.cls IS NOT NULL THEN {neg}(len(list_intersect({x}.cls, [{tests}])) > 0) END)"
        return B(t, f"[{x}.c]", "FALSE")

    # ------------------------------------------------------------------ numbers
    def num(self, n, ctx) -> Num:
        m = getattr(self, "n_" + type(n).__name__, None)
        if m is None:
            self.unsupported(f"number {type(n).__name__} has no SQL form yet")
        out = m(n, ctx)
        if not ctx.item_level:
            v, lv = self.helper(out.v, out.lvl)
            mm, _ = self.helper(out.m, out.lvl)
            return Num(v, mm, lv)
        return out

    def n_NConst(self, n, ctx):
        return Num(f"[{N.const(n.value)}]", EMPTY)

    def n_NArith(self, n, ctx):
        a = self.num(n.left, ctx)
        b = self.num(n.right, ctx)
        fn = {"+": "elig_add", "-": "elig_sub", "*": "elig_mul", "/": "elig_div"}[n.op]
        prod = f"flatten(list_transform({a.v}, lambda x: list_transform({b.v}, lambda y: {fn}(x, y))))"
        unknown = f"flatten([CASE WHEN ({a.v}) IS NULL THEN {a.m} ELSE {EMPTY} END, CASE WHEN ({b.v}) IS NULL THEN {b.m} ELSE {EMPTY} END])"
        if n.op == "/":
            reads = qlist(self.codes_read(n.right))
            zero = f"len(list_filter({b.v}, lambda y: elig_zero(y))) > 0"
            v = f"(CASE WHEN ({a.v}) IS NULL OR ({b.v}) IS NULL OR {zero} THEN NULL ELSE list_distinct_ordered({prod}) END)"
            m = (f"(CASE WHEN ({a.v}) IS NULL OR ({b.v}) IS NULL THEN {unknown} WHEN {zero} THEN {reads} "
                 f"ELSE flatten([{a.m}, {b.m}]) END)")
        else:
            v = f"(CASE WHEN ({a.v}) IS NULL OR ({b.v}) IS NULL THEN NULL ELSE list_distinct_ordered({prod}) END)"
            m = f"(CASE WHEN ({a.v}) IS NULL OR ({b.v}) IS NULL THEN {unknown} ELSE flatten([{a.m}, {b.m}]) END)"
        return Num(v.replace("list_distinct_ordered", "elig_dedupe"), m, max(a.lvl, b.lvl))

    def codes_read(self, node):
        from ..backend_python import PythonEmitter
        return PythonEmitter(self.mod).codes_read(node)

    def n_NIf(self, n, ctx):
        c = self.b(n.cond, ctx)
        a = self.num(n.then, ctx)
        b = self.num(n.otherwise, ctx)
        unknown = (f"flatten([{c.m}, CASE WHEN ({a.v}) IS NULL THEN {a.m} ELSE {EMPTY} END, "
                   f"CASE WHEN ({b.v}) IS NULL THEN {b.m} ELSE {EMPTY} END])")
        v = (f"(CASE WHEN ({c.t}) THEN {a.v} WHEN NOT ({c.t}) THEN {b.v} "
             f"WHEN ({a.v}) IS NULL OR ({b.v}) IS NULL THEN NULL ELSE elig_dedupe(list_concat({a.v}, {b.v})) END)")
        m = (f"(CASE WHEN ({c.t}) THEN {a.m} WHEN NOT ({c.t}) THEN {b.m} "
             f"WHEN ({a.v}) IS NULL OR ({b.v}) IS NULL THEN {unknown} ELSE flatten([{c.m}, {a.m}, {b.m}]) END)")
        return Num(v, m, max(c.lvl, a.lvl, b.lvl))

    def n_NDerived(self, n, ctx):
        d = self.derived.get(n.name)
        if d is None:
            self.unsupported(f"derived value {n.name} is not defined")
        return self.num(d.formula, ctx)

    def n_NScale(self, n, ctx):
        a = self.num(n.operand, ctx)
        v = (f"(CASE WHEN ({a.v}) IS NOT NULL THEN elig_dedupe(list_transform({a.v}, lambda x: "
             f"elig_add(elig_mul(x, {N.const(n.scale)}), {N.const(n.offset)}))) END)")
        return Num(v, a.m, a.lvl)

    def n_NObs(self, n, ctx):
        cands, cmiss, lc = self.select(n.sel, ctx)
        code = qlist([n.sel.code])
        conv = " ".join(f"WHEN {q(u)} THEN elig_add(elig_mul(elig_dec(x.v, elig_textn(x.v, x.vi)), {N.const(c.scale)}), {N.const(c.offset)})"
                        for u, c in n.table)
        vals = f"list_transform({cands}, lambda x: CASE WHEN x.bad THEN NULL ELSE (CASE x.u {conv} END) END)"
        ok = f"len(list_filter({vals}, lambda y: y IS NULL)) = 0"
        v = f"(CASE WHEN ({cands}) IS NOT NULL AND {ok} THEN elig_dedupe({vals}) END)"
        m = f"(CASE WHEN ({cands}) IS NULL THEN {cmiss} WHEN NOT {ok} OR len({cands}) > 1 THEN {code} ELSE {EMPTY} END)"
        return Num(v, m, lc)

    def n_NAttr(self, n, ctx):
        kind, x = self._item(n.var, ctx)
        if n.unit is not None or n.units:
            return self._attr_qty(n, kind, x)
        j = self.attr_json(x, n.name)
        isnum = f"json_type({x}.a) = 'OBJECT' AND json_type({j}) IN ('BIGINT', 'UBIGINT', 'DOUBLE', 'HUGEINT') AND isfinite(CAST({j} AS DOUBLE))"
        # `integer LO to HI` attributes of the item's code: a number off the scale is unusable
        # (runtime._check_attrs; items without a code are not checked)
        scales = [(it.name, a.scale) for it in self.p.items for a in it.attributes
                  if a.name == n.name and a.scale and kind != "observation"]
        if scales:
            dj = f"CAST({j} AS DOUBLE)"
            isnum += (f" AND (CASE {x}.c " + " ".join(
                f"WHEN {q(c)} THEN {dj} BETWEEN {lo} AND {hi} AND {dj} = floor({dj})" for c, (lo, hi) in scales)
                + " ELSE TRUE END)")
        v = f"(CASE WHEN {isnum} THEN [elig_rec(CAST({j} AS DOUBLE), CAST({j} AS VARCHAR))] END)"
        return Num(v, f"(CASE WHEN {v} IS NULL THEN [{x}.c] ELSE {EMPTY} END)")

    def _attr_qty(self, n, kind, x):
        """A number attribute measured in a unit ({"value": 12, "unit": "mm"}) converted exactly
        to the rule's unit (runtime._attr_qty); the spelling was resolved by the loader's map."""
        from .script import attr_unit_keys
        if kind not in ("condition", "procedure"):
            self.unsupported(f"an attribute measured in a unit of a {kind} has no SQL form yet")
        keys = attr_unit_keys(self.p)
        key = (n.name, tuple(u for u, _ in n.units))
        if key not in keys:
            self.unsupported(f"attribute {n.name} in {n.unit} is not declared with these units")
        au = f"{x}.au{keys.index(key)}"
        j = self.attr_json(x, n.name)
        vj = f"json_extract({j}, '$.value')"
        isnum = (f"json_type({x}.a) = 'OBJECT' AND json_type({j}) = 'OBJECT' AND json_type({vj}) IN ('BIGINT', 'UBIGINT', 'DOUBLE', 'HUGEINT') "
                 f"AND isfinite(CAST({vj} AS DOUBLE)) AND {au} IS NOT NULL")
        conv = " ".join(f"WHEN {q(u)} THEN elig_add(elig_mul(elig_rec(CAST({vj} AS DOUBLE), CAST({vj} AS VARCHAR)), "
                        f"{N.const(c.scale)}), {N.const(c.offset)})" for u, c in n.units)
        v = f"(CASE WHEN {isnum} THEN [CASE {au} {conv} END] END)"
        return Num(v, f"(CASE WHEN {v} IS NULL THEN [{x}.c] ELSE {EMPTY} END)")

    def n_NCourse(self, n, ctx):
        kind, x = self._item(n.var, ctx)
        if isinstance(n.anchor, str):
            a, am = ident("a_" + n.anchor), f"[{x}.c, {q(n.anchor)}]"
        else:  # a window measured from a computed date: an ongoing course counts to it (runtime _course_days_to)
            d = self.date(n.anchor, ctx)
            a, am = f"({d.v})", f"list_distinct(list_concat([{x}.c], {d.m}))"
        e = f"(CASE {x}.est WHEN 1 THEN {x}.e WHEN 0 THEN {a} END)"
        days = f"({e} - {x}.s + 1)"
        v = f"(CASE WHEN {x}.s IS NOT NULL AND {e} IS NOT NULL THEN [{self.int_num(days)}] END)"
        m = (f"(CASE WHEN {x}.s IS NULL OR {x}.est = 2 THEN [{x}.c] WHEN {x}.est = 0 AND {a} IS NULL "
             f"THEN {am} ELSE {EMPTY} END)")
        return Num(v, m)

    def n_NHalfLife(self, n, ctx):
        kind, x = self._item(n.var, ctx)
        hl = f"{x}.hl"
        v = f"(CASE WHEN {hl} IS NOT NULL THEN [{hl}] END)"
        return Num(v, f"(CASE WHEN {hl} IS NULL THEN [{x}.c] ELSE {EMPTY} END)")

    def n_NDose(self, n, ctx):
        kind, x = self._item(n.var, ctx)
        t = self.equiv[n.table]
        factors = " ".join(f"WHEN {q(agent)} THEN {N.const(f)}" for agent, f in t.factors)
        f = (f"(CASE {x}.c {factors} ELSE (CASE lower(trim({x}.c)) {factors} END) END)")
        units = " ".join(f"WHEN {q(u)} THEN {N.const(c)}" for u, c in t.units)
        conv = f"(CASE {x}.{ident('du_' + n.table)} {units} END)"
        v = (f"(CASE WHEN {x}.dv IS NOT NULL AND {conv} IS NOT NULL AND {f} IS NOT NULL "
             f"THEN [elig_mul(elig_mul({x}.dv, {conv}), {f})] END)")
        return Num(v, f"(CASE WHEN {v} IS NULL THEN [{x}.c] ELSE {EMPTY} END)")
