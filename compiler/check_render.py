"""Expressions as rule text, for the checker's messages and the IR's texts (compiler/checker.py).
"""

from __future__ import annotations

from . import ast as A


def render(e) -> str:
    if isinstance(e, A.Number):
        return e.value
    if isinstance(e, A.Quantity):
        return f"{e.value} {e.unit.code}"
    if isinstance(e, A.Name):
        return e.ident.name
    if isinstance(e, A.RefLimit):
        return e.which
    if isinstance(e, A.Age):
        return f"age at {e.anchor.name}"
    if isinstance(e, A.Window):
        return render_window(e)
    if isinstance(e, A.Latest):
        s = f"latest {e.code.name} {render_window(e.window)}"
        return s + (f" {e.filter_kind} {render(e.filter)}" if e.filter is not None else "")
    if isinstance(e, A.Recorded):
        return f"recorded {render(e.operand)}"
    if isinstance(e, A.Query):
        q = e.quantifier.replace("_", " ") + (f" {e.count}" if e.count is not None else "") + (" distinct" if e.distinct else "")
        s = q + (" active" if e.active else "") + " " + ", ".join(c.name for c in e.codes)
        if e.window:
            s += " " + render_window(e.window)
        if e.filter is not None:
            s += f" {e.filter_kind} {render(e.filter)}"
        return s
    if isinstance(e, A.Compare):
        return f"{render(e.left)} {e.op} {render(e.right)}"
    if isinstance(e, A.IsValue):
        return f"{render(e.subject)} is {'not ' if e.negated else ''}{e.value.name}"
    if isinstance(e, A.Between):
        return f"{render(e.subject)} between {render(e.low)} and {render(e.high)}"
    if isinstance(e, A.Arith):
        op = "x" if e.op == "*" else e.op
        return f"{render(e.left)} {op} {render(e.right)}"
    if isinstance(e, A.Neg):
        return f"-{render(e.operand)}"
    if isinstance(e, A.Convert):
        return f"{render(e.operand)} in {e.unit.code}"
    if isinstance(e, A.Member):
        vals = ", ".join(v.name if isinstance(v, A.Ident) else render(v) for v in e.values)
        return f"{render(e.subject)} {'not ' if e.negated else ''}in {{{vals}}}"
    if isinstance(e, A.Chain):
        return f"{render(e.left)} {e.op1} {render(e.middle)} {e.op2} {render(e.right)}"
    if isinstance(e, A.EquivalentOf):
        return f"{render(e.operand)} as {e.table.name}"
    if isinstance(e, A.And):
        return " and ".join(_paren(x, (A.Or, A.IfElse, A.Implies)) for x in e.items)
    if isinstance(e, A.Or):
        return " or ".join(_paren(x, (A.IfElse, A.Implies)) for x in e.items)
    if isinstance(e, A.Not):
        return "not " + _paren(e.operand, (A.And, A.Or, A.IfElse, A.Implies))
    if isinstance(e, A.IfElse):
        return f"{render(e.then)} if {render(e.cond)} else {render(e.otherwise)}"
    if isinstance(e, A.Implies):
        return f"if {render(e.cond)} then {render(e.then)}"
    if isinstance(e, A.Extreme):
        return f"{e.kind} of {render(e.left)} and {render(e.right)}"
    return "?"


def _paren(e, kinds) -> str:
    s = render(e)
    return f"({s})" if isinstance(e, kinds) else s


def _render_ref(ref) -> str:
    if isinstance(ref, A.Ident):
        return ref.name
    return f"({render(ref)})"


def render_window(w: A.Window) -> str:
    if w.kind == "ever":
        return "ever"
    ref = _render_ref(w.anchor if w.anchor is not None else w.at)
    if w.kind == "on_or_before":
        return f"on or before {ref}"
    if w.kind == "on_or_after":
        return f"on or after {ref}"
    if w.kind == "between":
        return f"between {ref} and {_render_ref(w.until)}"
    word = "before" if w.kind == "within_before" else "after"
    d = render(w.duration)
    if isinstance(w.duration, (A.IfElse,)):
        d = f"({d})"
    return f"within {d} {word} {ref}"
