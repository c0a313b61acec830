"""Judgment conditionals of values lifted to conditionals of conditions (one meaning of `review`).

`review` means that the only thing undecided is an unrecorded judgment (docs/language.md, What a
rule means). A judgment can decide a condition (`(A if fit else B)`), and also a value inside one:
a limit (`latest hb ever >= (100 g/L if fit else 90 g/L)`), a number (`(1 if fit else 2) * x`) or
a duration (`within (28 d if fit else 14 d) before screening`). A comparison over such a value is
the conditional of two comparisons, one per branch:

    latest hb ever >= (100 g/L if fit else 90 g/L)
        ==  (latest hb ever >= 100 g/L if fit else latest hb ever >= 90 g/L)

and the conditional of conditions already gives `review` when both comparisons are decided and
differ (runtime `_if`, the SQL forms' BIf). `hoist` rewrites a criterion body so: every value
conditional whose condition names a judgment is lifted to the innermost condition that holds it
(a comparison, a query, a selection's test), every copy of the same condition in that condition
taking the same branch. Both branches are then decided where the data decides them, so
`missing` and the outcome are the same as with the value's alternatives, except that an
undecided judgment alone gives `review` (with `missing` empty) instead of `unknown`.

Not lifted: a condition that reads the item of the query whose window it sizes (`within (7 d if
grade >= 3 and fit else 14 d)`: one window per item); anything under `recorded` (never unknown:
`recorded` of a conditional value keeps its alternatives). The Python backend and both SQL forms
read the lifted body (compiler/lower.py); the HTML page and the fingerprint read the rule as
written. The IR interpreter (tests/ir_interpreter.py) decides the same cases by evaluating each
branch, independently of this rewrite.
"""

from __future__ import annotations

import dataclasses

from . import ir as I
from .check_common import _bool_uses_item, _dur_uses_item, any_node

_VALUE_IFS = (I.LIf, I.NIf, I.DIf)


def names_judgment(b) -> bool:
    """Whether an expression reads a judgment anywhere in it."""
    return any_node(b, lambda n, _: n.judgment if isinstance(n, I.BFact) else None)


def hoist(b, derived=None):
    """The condition b with its judgment conditionals of values lifted (see the module doc).
    derived: name -> formula of the trial's derived values; a derived value whose formula names
    a judgment is read as its formula where a comparison uses it (so its conditional is lifted)."""
    derived = derived or {}
    if isinstance(b, (I.BAnd, I.BOr)):
        return type(b)(tuple(hoist(x, derived) for x in b.items))
    if isinstance(b, I.BNot):
        return I.BNot(hoist(b.operand, derived))
    if isinstance(b, I.BImplies):
        return I.BImplies(hoist(b.cond, derived), hoist(b.then, derived))
    if isinstance(b, I.BIf):
        return I.BIf(hoist(b.cond, derived), hoist(b.then, derived), hoist(b.otherwise, derived))
    if isinstance(b, I.BRecorded) or not isinstance(b, (I.BObsCmp, I.BObsBetween, I.BObsIs, I.BNumCmp, I.BDateCmp,
                                                       I.BQuery, I.BObsQuery)):
        return b
    b = _inner(b, derived)
    cond = _first(b, False)
    if cond is None:
        return b
    return I.BIf(hoist(cond, derived), hoist(_assume(b, cond, True, False), derived),
                 hoist(_assume(b, cond, False, False), derived))


def _inner(b, derived):
    """b with the conditions nested in it (filters of queries and selections) lifted in place,
    and the derived values that name a judgment as their formulas."""
    if isinstance(b, (I.BQuery, I.BObsQuery, I.SelLatest)) and b.pred is not None:
        b = dataclasses.replace(b, pred=hoist(b.pred, derived))
    if isinstance(b, (I.BObsCmp, I.BObsBetween, I.BObsIs)) and isinstance(b.sel, I.SelLatest):
        b = dataclasses.replace(b, sel=_inner(b.sel, derived))
    if isinstance(b, I.BNumCmp):
        b = dataclasses.replace(b, left=_inner_num(b.left, derived), right=_inner_num(b.right, derived))
    return b


def _inner_num(n, derived):
    if isinstance(n, I.NObs) and isinstance(n.sel, I.SelLatest):
        return dataclasses.replace(n, sel=_inner(n.sel, derived))
    if isinstance(n, I.NArith):
        return I.NArith(n.op, _inner_num(n.left, derived), _inner_num(n.right, derived))
    if isinstance(n, I.NIf):
        return I.NIf(n.cond, _inner_num(n.then, derived), _inner_num(n.otherwise, derived))
    if isinstance(n, I.NScale):
        return dataclasses.replace(n, operand=_inner_num(n.operand, derived))
    if isinstance(n, I.NDerived) and n.name in derived and names_judgment(derived[n.name]):
        return _inner_num(derived[n.name], derived)
    return n


def _parts(x):
    """The value parts of a node: its dataclass fields, except the conditions that are a scope
    of their own (filters) or a condition of a conditional."""
    for f in x.__dataclass_fields__:
        if f in ("pred", "cond"):
            continue
        v = getattr(x, f)
        if hasattr(v, "__dataclass_fields__"):
            yield f, v


def _first(x, in_window):
    """The condition of the first liftable judgment conditional among x's value parts, or None.
    in_window: inside the window of a query over items (whose condition may read the item)."""
    if isinstance(x, _VALUE_IFS):
        if names_judgment(x.cond) and not (in_window and _bool_uses_item(x.cond)):
            return x.cond
        return _first(x.then, in_window) or _first(x.otherwise, in_window)
    if isinstance(x, I.BRecorded):
        return None
    for f, v in _parts(x):
        c = _first(v, in_window or (isinstance(x, (I.BQuery, I.BObsQuery)) and f == "window"))
        if c is not None:
            return c
    return None


def _assume(x, cond, branch, in_window):
    """x with every liftable conditional on cond replaced by its branch (then when branch)."""
    if isinstance(x, _VALUE_IFS):
        if x.cond == cond and not (in_window and _bool_uses_item(x.cond)):
            return _assume(x.then if branch else x.otherwise, cond, branch, in_window)
        return dataclasses.replace(x, then=_assume(x.then, cond, branch, in_window),
                                   otherwise=_assume(x.otherwise, cond, branch, in_window))
    if isinstance(x, I.BRecorded):
        return x
    changes = {}
    for f, v in _parts(x):
        nv = _assume(v, cond, branch, in_window or (isinstance(x, (I.BQuery, I.BObsQuery)) and f == "window"))
        if nv is not v and nv != v:
            changes[f] = nv
    if not changes:
        return x
    if "text" in x.__dataclass_fields__:
        # a text names the value it was built from (a window's, a shifted date's): say the branch
        # (texts tell windows apart where the SQL forms share their columns)
        text = x.text
        for f, nv in changes.items():
            old = getattr(x, f)
            if hasattr(old, "text") and hasattr(nv, "text") and old.text and old.text in text:
                text = text.replace(old.text, nv.text, 1)
            elif hasattr(nv, "text"):
                text = "%s [%s]" % (text, nv.text)
        changes["text"] = text
    if isinstance(x, I.Win) and "duration" in changes:
        changes["item_dependent"] = _dur_uses_item(changes["duration"])
    return dataclasses.replace(x, **changes)
