"""The checker's shared parts: the scope of an expression, the types it gives, and small helpers
of every concern (compiler/checker.py).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Optional

from . import ast as A
from . import ir as I
from . import units as U


TREATMENT_FIELDS = ("half_life", "daily_dose", "route", "purpose", "course", "class")
# the dates each kind of item carries, readable inside a query over it (and as a window's reference)
ITEM_DATES = {"condition": ("onset", "end"), "treatment": ("start", "end"), "procedure": ("date",),
              "observation": ("date",)}
MAX_DEPTH = 60


class _Fail(Exception):
    """An expression that cannot be checked further (its error is already reported)."""


@dataclass
class Scope:
    lets: dict  # name -> A.LetDecl (criterion lets shadow global ones)
    item: Optional["ItemCtx"] = None
    let_stack: tuple = ()
    depth: int = 0
    unused: Optional[str] = None  # the named expression nothing uses, checked on its own


@dataclass(frozen=True)
class ItemCtx:
    kind: str  # condition | procedure | treatment | observation
    codes: tuple[str, ...]
    var: str
    anchor: Optional[str]


# types
BOOL = ("bool",)
DATE = ("date",)


def num_t(unit):
    return ("num", unit)


def _suggest(name: str, candidates) -> str:
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


AGE_UNITS = ("d", "wk", "mo", "a")

_FLIP = {">=": "<=", "<=": ">=", ">": "<", "<": ">", "=": "=", "!=": "!="}


def Conversion_compose(first: U.Conversion, second: U.Conversion) -> U.Conversion:
    """second(first(x))"""
    return U.Conversion(first.scale * second.scale, first.offset * second.scale + second.offset)


def _dur_text(d) -> str:
    if isinstance(d, (I.DConst, I.DHalfLife)):
        return d.text
    if isinstance(d, I.DExtreme):
        return f"{d.which} of {_dur_text(d.left)} and {_dur_text(d.right)}"
    return d.text


def _safe_relative(path: str) -> bool:
    import posixpath

    if not path or "\\" in path or ":" in path or "\x00" in path or path.startswith("/"):
        return False
    return ".." not in posixpath.normpath(path).split("/") and not posixpath.isabs(path)


def _unit_text(u) -> str:
    return "" if u in (None, "1") else u


def _query_text(e: A.Query, r) -> str:
    return ", ".join(c.name for c in e.codes)


_ITEM_READS = (I.BClassIn, I.BFieldIs, I.BAttrBool, I.BAttrIs, I.NAttr, I.NDose, I.NCourse, I.NHalfLife,
               I.DtAttr, I.DtItem, I.SelItem)


def any_node(x, test, enter=None, ctx=None) -> bool:
    """Whether an IR expression decides `test` true somewhere in it, walked depth first: x, the
    items of its tuples and lists, the fields of its dataclasses. test(node, ctx) is True or False
    where the node decides (its parts are not walked), None to walk its parts; enter(node, ctx)
    gives the ctx its parts are walked with (ctx unchanged without it)."""
    got = test(x, ctx)
    if got is not None:
        return got
    if isinstance(x, (tuple, list)):
        return any(any_node(y, test, enter, ctx) for y in x)
    fields = getattr(x, "__dataclass_fields__", None)
    if not fields:
        return False
    if enter is not None:
        ctx = enter(x, ctx)
    return any(any_node(getattr(x, f), test, enter, ctx) for f in fields)


def _bool_uses_item(b, bound: frozenset = frozenset()) -> bool:
    """Whether an expression reads a field of an enclosing query's item (its class, route,
    attributes, dates, dose, half-life), anywhere in it: in a comparison (`grade >= 3`), a
    conditional, a nested query's filter or window. The items of queries nested in it (their
    own `var`, bound for its parts) are not enclosing ones."""
    return any_node(b, lambda n, bound: n.var not in bound if isinstance(n, _ITEM_READS) else None,
                    lambda n, bound: bound | {n.var} if isinstance(n, (I.BQuery, I.BObsQuery, I.SelLatest))
                    and n.var is not None else bound, bound)


def _dur_uses_item(d) -> bool:
    """Whether a duration reads the enclosing query's item (one window per item): a half-life,
    or a conditional whose condition reads the item (`_bool_uses_item`)."""
    if isinstance(d, I.DHalfLife):
        return True
    if isinstance(d, I.DExtreme):
        return _dur_uses_item(d.left) or _dur_uses_item(d.right)
    if isinstance(d, I.DIf):
        # any read of the item in the condition (_bool_uses_item walks the whole expression:
        # `size > 1 cm`, a date, `recorded grade`, a nested query measured from the item)
        return _bool_uses_item(d.cond) or _dur_uses_item(d.then) or _dur_uses_item(d.otherwise)
    return False


def _dedent(src: str) -> str:
    lines = src.split("\n")
    if not lines:
        return src
    first = lines[0].lstrip()
    rest = lines[1:]
    indents = [len(l) - len(l.lstrip()) for l in rest if l.strip()]
    cut = min(indents) if indents else 0
    return "\n".join([first] + [l[cut:] for l in rest])
