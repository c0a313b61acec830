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


def _bool_uses_item(b) -> bool:
    return isinstance(b, (I.BClassIn, I.BFieldIs, I.BAttrBool, I.BAttrIs)) or any(
        _bool_uses_item(x) for x in getattr(b, "items", ()) or ()) or (
        isinstance(b, (I.BNot,)) and _bool_uses_item(b.operand))


def _dedent(src: str) -> str:
    lines = src.split("\n")
    if not lines:
        return src
    first = lines[0].lstrip()
    rest = lines[1:]
    indents = [len(l) - len(l.lstrip()) for l in rest if l.strip()]
    cut = min(indents) if indents else 0
    return "\n".join([first] + [l[cut:] for l in rest])
