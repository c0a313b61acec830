"""Python backend: the checked program as a standard-library-only evaluator module.

Every IR node has one emitter; an unknown node raises. Text from rule files reaches the
generated code only through ``repr()`` of a str, int or bool (see ``_lit``), and names only as
validated identifiers.
"""

from __future__ import annotations

import ast as pyast
import dataclasses
from fractions import Fraction
from importlib import resources

from . import ir as I
from .lower import LoweredModule
from .labels import fact_labels, labelled, reason_labels
from .readable import readable
from .templates import render_template



class BackendError(Exception):
    pass


def _lit(v) -> str:
    """A plain literal for generated code: only str, int, bool, None, float, Fraction, tuples."""
    if v is None or isinstance(v, bool):
        return repr(v)
    if isinstance(v, int):
        return repr(v)
    if isinstance(v, float):
        if v != v or v in (float("inf"), float("-inf")):
            raise BackendError("non-finite constant")
        return repr(v)
    if isinstance(v, Fraction):
        return f"_F({v.numerator}, {v.denominator})" if v.denominator != 1 else f"_F({v.numerator})"
    if isinstance(v, str):
        return repr(v)
    if isinstance(v, tuple):
        inner = ", ".join(_lit(x) for x in v)
        return f"({inner},)" if len(v) == 1 else f"({inner})"
    raise BackendError(f"no literal for {type(v).__name__}")


class _Call:
    __slots__ = ("fn", "args")

    def __init__(self, fn, *args):
        self.fn = fn
        self.args = args


def _fixed_duration(d) -> bool:
    """Whether a duration is the same for every record (no condition, no half-life in it)."""
    if isinstance(d, I.DConst):
        return True
    if isinstance(d, I.DExtreme):
        return _fixed_duration(d.left) and _fixed_duration(d.right)
    return False


class _Raw:
    __slots__ = ("code",)

    def __init__(self, code):
        self.code = code


def _flat(node, memo) -> str:
    """A node on one line (memoised: formatting stays linear in the size of the tree)."""
    key = id(node)
    hit = memo.get(key)
    if hit is not None:
        return hit
    if isinstance(node, _Raw):
        out = node.code
    elif isinstance(node, str):
        out = node
    elif isinstance(node, _Lambda):
        out = f"lambda {node.var}: {_flat(node.body, memo)}"
    else:
        out = f"{node.fn}({', '.join(_flat(a, memo) for a in node.args)})"
    memo[key] = out
    return out


def _fmt(node, indent=0, width=96, memo=None) -> str:
    """Pretty-print nested calls: on one line when short, else one argument per line."""
    if memo is None:
        memo = {}
    flat = _flat(node, memo)
    if len(flat) + indent <= width:
        return flat
    if isinstance(node, (_Raw, str)):
        return flat
    if isinstance(node, _Lambda):
        return f"lambda {node.var}: {_fmt(node.body, indent, width, memo)}"
    pad = " " * (indent + 4)
    parts = [pad + _fmt(a, indent + 4, width, memo) for a in node.args]
    return f"{node.fn}(\n" + ",\n".join(parts) + ",\n" + " " * indent + ")"


class _Lambda:
    __slots__ = ("var", "body")

    def __init__(self, var, body):
        self.var = var
        self.body = body


class PythonEmitter:
    def __init__(self, mod: LoweredModule):
        self.mod = mod
        self.consts: list[tuple[str, str, str]] = []  # (name, code, comment)
        self._const_index: dict[str, str] = {}
        # the vocabulary's labels for reason texts (compiler/labels.py)
        self.labels = reason_labels(mod.program)
        self.fact_labels = fact_labels(mod.program)

    def said(self, text: str) -> str:
        """A text from the rule source as a reason says it: units readable, codes as labels."""
        return labelled(readable(text), self.labels, self.fact_labels)

    def lit(self, v) -> str:
        """A literal in expression code; exact numbers are built once, as module constants."""
        if isinstance(v, Fraction):
            return self.const(_lit(v), "exact number")
        return _lit(v)

    def const(self, code: str, comment: str = "") -> str:
        if code in self._const_index:
            return self._const_index[code]
        name = f"_K{len(self.consts) + 1}"
        self.consts.append((name, code, comment))
        self._const_index[code] = name
        return name

    # -------------------------------------------------------------- booleans
    def b(self, n):
        m = getattr(self, "b_" + type(n).__name__, None)
        if m is None:
            raise BackendError(f"the Python backend has no emitter for {type(n).__name__}")
        return m(n)

    def b_BAnd(self, n):
        return _Call("_and", *[self.b(x) for x in n.items])

    def b_BOr(self, n):
        return _Call("_or", *[self.b(x) for x in n.items])

    def b_BNot(self, n):
        return _Call("_not", self.b(n.operand))

    def b_BImplies(self, n):
        return _Call("_implies", self.b(n.cond), self.b(n.then))

    def b_BIf(self, n):
        return _Call("_if", self.b(n.cond), self.b(n.then), self.b(n.otherwise))

    def b_BFact(self, n):
        return _Call("_fact", "r", self.lit(n.name), self.lit(n.judgment))

    def b_BSexIs(self, n):
        return _Call("_sex_is", "r", self.lit(tuple(n.values)), self.lit(n.negated))

    def b_BObsCmp(self, n):
        return _Call("_obs_cmp", "r", self.sel(n.sel), self.lit(n.op), self.lim(n.limit))

    def b_BObsBetween(self, n):
        return _Call("_obs_between", "r", self.sel(n.sel), self.lim(n.low), self.lim(n.high))

    def b_BObsIs(self, n):
        return _Call("_obs_is", "r", self.sel(n.sel), self.lit(tuple(n.values)), self.lit(n.negated), self.lit(self.said(n.text)))

    def b_BNumCmp(self, n):
        # both sides are computed in floats, and again exactly (ex=True) only when the result lies
        # within rounding of the limit
        return _Call("_n_cmp", _Lambda("ex", self.num(n.left)), self.lit(n.op), _Lambda("ex", self.num(n.right)),
                     self.lit(n.unit))

    def b_BDateCmp(self, n):
        return _Call("_date_cmp", self.date(n.left), self.lit(n.op), self.date(n.right))

    def b_BQuery(self, n):
        # a half-life in the window is the half-life of this query's item
        prev, self._dur_var = self._dur_var, n.var
        try:
            return self._query(n)
        finally:
            self._dur_var = prev

    def _query(self, n):
        win = "None"
        wfn = "None"
        if n.window is not None:
            if n.window.item_dependent:
                wfn = _Lambda(n.var, self.item_win(n.window))
            else:
                win = self.win(n.window)
        pred = "None" if n.pred is None else _Lambda(n.var, self.b(n.pred))
        text = query_text(n, self.said, self.labels)
        if n.count is not None:  # at least N / at most N: the quantifier carries the number
            quant = (n.quantifier, n.count, tuple(n.codes)) if n.distinct else (n.quantifier, n.count)
            return _Call("_query", "r", self.lit(n.kind), self.lit(tuple(n.codes)), self.lit(quant), self.lit(n.active),
                         win, wfn, pred, self.lit(n.negate_pred), self.lit(text))
        if n.quantifier == "every":
            return _Call("_every", "r", self.lit(n.kind), self.lit(tuple(n.codes)), self.lit(n.active), win, wfn, pred,
                         self.lit(n.negate_pred), self.lit(text))
        return _Call("_query", "r", self.lit(n.kind), self.lit(tuple(n.codes)), self.lit(n.quantifier), self.lit(n.active), win, wfn,
                     pred, self.lit(n.negate_pred), self.lit(text))

    def b_BObsQuery(self, n):
        return _Call("_obs_query", "r", self.lit(n.code), self.lit(n.quantifier), self.win(n.window), _Lambda(n.var, self.b(n.pred)),
                     self.lit(query_text(n, self.said, self.labels)))

    def b_BRecorded(self, n):
        if n.kind == "bool":
            return _Call("_recorded_b", self.b(n.operand), self.lit(self.said(n.text)))
        body = self.num(n.operand) if n.kind == "num" else self.date(n.operand)
        return _Call("_recorded_v", _Lambda("ex", body), self.lit(self.said(n.text)))

    def b_BAttrBool(self, n):
        return _Call("_attr_bool", n.var, self.lit(n.name))

    def b_BAttrIs(self, n):
        if n.name == "status":
            return _Call("_status_is", n.var, self.lit(tuple(n.tests)), self.lit(n.negated))
        return _Call("_attr_is", n.var, self.lit(n.name), self.lit(n.type), self.lit(tuple(n.values) or None) if n.values else "None",
                     self.lit(tuple(n.tests)), self.lit(n.negated))

    def b_BFieldIs(self, n):
        return _Call("_field_is", n.var, self.lit(n.field), self.lit(tuple(n.tests)), self.lit(n.negated))

    def b_BClassIn(self, n):
        return _Call("_class_in", n.var, self.lit(tuple(n.tests)), self.lit(n.negated))

    # -------------------------------------------------------------- selections, limits, windows
    def sel(self, s):
        if isinstance(s, I.SelLatest):
            if s.pred is not None:
                return _Call("_latest", "r", self.lit(s.code), self.win(s.window), _Lambda(s.var, self.b(s.pred)))
            return _Call("_latest", "r", self.lit(s.code), self.win(s.window))
        if isinstance(s, I.SelItem):
            # the reading a query is testing (its text says "reading", not "most recent")
            return _Raw(f"(({s.var},), 'reading', ())")
        raise BackendError(f"the Python backend has no emitter for {type(s).__name__}")

    def lim(self, l):
        if isinstance(l, I.LConst):
            table = "{" + ", ".join(f"{_lit(u)}: ({_lit(float(v))}, {_lit(v)})" for u, v in l.table) + "}"
            # a fixed limit is a module constant, built once: ("const", unit -> limit, text)
            return _Raw(self.const(f"('const', {self.const(table, l.text)}, {_lit(self.said(l.text))})", "limit"))
        if isinstance(l, I.LRef):
            return _Raw(self.const(f"('ref', {_lit(l.which)}, {_lit(float(l.multiple))}, {self.lit(l.multiple)}, "
                                   f"{_lit(self.said(l.text))})", "limit"))
        if isinstance(l, I.LIf):
            return _Call("_lim_if", self.b(l.cond), self.lim(l.then), self.lim(l.otherwise))
        raise BackendError(f"the Python backend has no emitter for {type(l).__name__}")

    def win(self, w: I.Win):
        """A window of the record: a module constant, computed once per record, where its
        duration is fixed; built where used where the duration depends on the record
        (`within (28 d if any anemia ever else 14 d) before screening`)."""
        if w.at is not None:
            return self.date_win(w)
        if w.duration is not None and not _fixed_duration(w.duration):
            return _Call("_window", "r", self.lit(w.kind), self.lit(w.anchor), self.dur(w.duration),
                         self.lit(self.said(w.text)))
        dur = "None" if w.duration is None else _flat(self.dur(w.duration), {})
        return self.const(f"({_lit(w.kind)}, {_lit(w.anchor)}, {dur}, {_lit(self.said(w.text))})", "window")

    def item_win(self, w: I.Win):
        """A window whose duration depends on the item (its class, its half-life)."""
        if w.at is not None:
            return self.date_win(w)
        dur = "None" if w.duration is None else self.dur(w.duration)
        return _Call("_window", "r", self.lit(w.kind), self.lit(w.anchor), dur, self.lit(self.said(w.text)))

    def date_win(self, w: I.Win):
        """A window measured from a computed date (an item's date, a shifted date): built where used."""
        dur = "None" if w.duration is None else self.dur(w.duration)
        until = "None" if w.until is None else self.date(w.until)
        return _Call("_window_at", "r", self.lit(w.kind), self.date(w.at), until, dur, self.lit(self.said(w.text)))

    def dur(self, d):
        if isinstance(d, I.DConst):
            amount = int(d.amount) if d.amount.denominator == 1 else d.amount
            return _Raw(f"({self.lit(d.kind)}, {self.lit(amount)})")
        if isinstance(d, I.DHalfLife):
            return _Call("_half_life_days", self._var_of_dur(), self.lit(d.multiple))
        if isinstance(d, I.DExtreme):
            return _Call("_dur_extreme", self.lit(d.which), self.dur(d.left), self.dur(d.right))
        if isinstance(d, I.DIf):
            return _Call("_dur_if", self.b(d.cond), self.dur(d.then), self.dur(d.otherwise))
        raise BackendError(f"the Python backend has no emitter for {type(d).__name__}")

    _dur_var = None

    def _var_of_dur(self):
        if self._dur_var is None:
            raise BackendError("a half-life outside a treatment query")
        return self._dur_var

    # -------------------------------------------------------------- numbers and dates
    def num(self, n):
        m = getattr(self, "n_" + type(n).__name__, None)
        if m is None:
            raise BackendError(f"the Python backend has no emitter for {type(n).__name__}")
        return m(n)

    def exact_or_float(self, v: Fraction) -> str:
        """A number in the evaluator's two modes: exact when ex, else a float."""
        if v.denominator == 1:
            return _lit(int(v))
        return f"({self.lit(v)} if ex else {_lit(float(v))})"

    def n_NConst(self, n):
        if n.value.denominator == 1:
            return _Raw(self.const(f"({_lit(int(n.value))}, '', ())", "number"))
        return _Raw(f"({self.const(f'({_lit(n.value)}, {_lit(chr(39) * 0)}, ())', 'exact number')} if ex else "
                    f"{self.const(f'({_lit(float(n.value))}, {_lit(chr(39) * 0)}, ())', 'number')})")

    def n_NObs(self, n):
        table = "{" + ", ".join(f"{_lit(u)}: ({_lit(c.scale)}, {_lit(c.offset)}, {_lit(float(c.scale))}, {_lit(float(c.offset))})"
                                for u, c in n.table) + "}"
        return _Call("_obs_number", self.sel(n.sel), self.const(table, f"to {n.unit}"), self.lit(n.unit), "ex")

    def n_NAge(self, n):
        if n.unit != "a":
            return _Call("_age_in", "r", self.lit(n.anchor), self.lit(n.unit))
        return _Call("_age", "r", self.lit(n.anchor))

    def n_NArith(self, n):
        if n.op == "/":
            return _Call("_n_arith", self.lit(n.op), self.num(n.left), self.num(n.right),
                         self.lit(self.codes_read(n.right)))
        return _Call("_n_arith", self.lit(n.op), self.num(n.left), self.num(n.right))

    def codes_read(self, node) -> tuple[str, ...]:
        """The record codes a number reads (observations, birth_date), through derived values."""
        out: list[str] = []
        formulas = {d.name: d.formula for d in self.mod.derived}
        seen: set[str] = set()

        def walk(x):
            if isinstance(x, (I.SelLatest, I.SelItem)):
                out.append(x.code)
            elif isinstance(x, I.NAge):
                out.append("birth_date")
            elif isinstance(x, I.NDerived):
                if x.name not in seen and x.name in formulas:
                    seen.add(x.name)
                    walk(formulas[x.name])
            elif dataclasses.is_dataclass(x) and not isinstance(x, type):
                for f in dataclasses.fields(x):
                    walk(getattr(x, f.name))
            elif isinstance(x, tuple):
                for y in x:
                    walk(y)

        walk(node)
        return tuple(dict.fromkeys(out))

    def n_NIf(self, n):
        return _Call("_n_if", self.b(n.cond), self.num(n.then), self.num(n.otherwise))

    def n_NDerived(self, n):
        return _Call(self.mod.derived_funcs[n.name], "r", "ex")

    def n_NScale(self, n):
        return _Call("_n_scale", self.num(n.operand), _Raw(self.exact_or_float(n.scale)), _Raw(self.exact_or_float(n.offset)))

    def n_NAttr(self, n):
        if n.unit is not None:
            table = "{" + ", ".join(f"{_lit(u)}: ({_lit(c.scale)}, {_lit(c.offset)})" for u, c in n.units) + "}"
            return _Call("_attr_qty", n.var, self.lit(n.name), self.lit(n.unit), self.const(table, f"to {n.unit}"))
        return _Call("_attr_num", n.var, self.lit(n.name))

    def n_NDose(self, n):
        return _Call("_dose_equivalent", n.var, self.mod.equiv_consts[n.table], self.lit(n.table), self.lit(n.unit))

    def n_NCourse(self, n):
        if not isinstance(n.anchor, str):  # a window measured from a computed date
            return _Call("_course_days_to", n.var, self.date(n.anchor))
        return _Call("_course_days", n.var, "r", self.lit(n.anchor))

    def n_NHalfLife(self, n):
        return _Call("_half_life_value", n.var)

    def date(self, d):
        if isinstance(d, I.DtAnchor):
            return _Call("_anchor_date", "r", self.lit(d.name))
        if isinstance(d, I.DtAttr):
            return _Call("_attr_date", d.var, self.lit(d.name))
        if isinstance(d, I.DtShift):
            return _Call("_date_shift", "r", self.date(d.date), self.lit(d.sign), self.dur(d.duration), self.lit(self.said(d.text)))
        if isinstance(d, I.DtItem):
            return _Call("_item_date", d.var, self.lit(d.field))
        raise BackendError(f"the Python backend has no emitter for {type(d).__name__}")


def query_text(n, said=readable, labels=None) -> str:
    """What a query looks for, for reason sentences ("no X within 7 d before first_dose"); with
    said and labels (PythonEmitter.said and its labels), in the vocabulary's labels."""
    if isinstance(n, I.BObsQuery):
        p = n.pred
        if isinstance(p, I.BObsCmp) and isinstance(p.sel, I.SelItem):
            return f"{p.op} {said(_limit_text(p.limit))}"
        if isinstance(p, I.BObsIs) and isinstance(p.sel, I.SelItem):
            return ("not " if p.negated else "") + " or ".join(p.values)
        if isinstance(p, I.BObsBetween) and isinstance(p.sel, I.SelItem):
            return f"between {said(_limit_text(p.low))} and {said(_limit_text(p.high))}"
        return "matching"
    codes = " / ".join((labels or {}).get(c, c) for c in n.codes)
    if n.active:
        codes = "active " + codes
    if n.window is None or n.window.kind == "ever":
        return f"{codes} recorded"
    return f"{codes} {said(n.window.text)}"


def _limit_text(l) -> str:
    if isinstance(l, (I.LConst, I.LRef, I.LIf)):
        return l.text
    return "?"


def runtime_source() -> str:
    """The evaluator runtime (its parts, in order: compiler/runtime_parts) and the record-stream
    reader, copied into every generated module."""
    from .runtime_parts import source

    records = resources.files("compiler").joinpath("records.py").read_text(encoding="utf-8")
    return "\n\n".join(text.rstrip() + "\n" for text in (source(), records))


def emit_python(mod: LoweredModule) -> str:
    em = PythonEmitter(mod)
    funcs = []
    for d in mod.derived:
        em._dur_var = None
        body = _fmt(em.num(d.formula), 4)
        funcs.append({"name": mod.derived_funcs[d.name], "body": body,
                      "derived": d.name, "unit": d.unit})
    criteria = []
    for c in mod.criteria:
        em._dur_var = None
        code = _fmt(em.b(c.ir.body), 4)
        criteria.append({"c": c, "body": code})
    consts = [{"name": n, "code": code, "comment": comment} for n, code, comment in em.consts]
    text = render_template(
        "evaluator.py.j2",
        mod=mod,
        runtime=runtime_source(),
        consts=consts,
        derived=funcs,
        criteria=criteria,
        labels=tuple(em.labels.items()),
        fact_labels=tuple(em.fact_labels.items()),
        cohorts=tuple((k.name, tuple(not c.ir.cohorts or k.name in c.ir.cohorts for c in mod.criteria))
                      for k in mod.program.cohorts),
    )
    try:
        pyast.parse(text)
    except SyntaxError as exc:  # a backend or template defect: never write such a module
        raise BackendError(f"generated Python does not parse: {exc}") from exc
    return text
