"""The values the SQL generators pass around (compiler/sql/generate.py): quoting, a boolean
node's B triple, a number's alternatives, a window, the context of an expression."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional


class SqlUnsupported(Exception):
    """An IR construct this SQL dialect cannot express yet (raised at compile time)."""


def q(s: str) -> str:
    return "'" + str(s).replace("'", "''") + "'"


def qlist(items) -> str:
    items = list(items)
    if not items:
        return "CAST([] AS VARCHAR[])"
    return "[" + ", ".join(q(x) for x in items) + "]"


EMPTY = "CAST([] AS VARCHAR[])"


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass
class B:
    """A boolean node: truth, missing (when unknown), review (when unknown), and its level."""
    t: str
    m: str
    r: str
    lvl: int = 0


@dataclass
class Num:
    """A number: alternatives (a list of number structs, NULL when unknown) and missing codes."""
    v: str
    m: str
    lvl: int = 0


@dataclass
class Window:
    ok: str  # the anchor is usable (NULL/false: the window is unknown)
    lo: str
    lom: str
    hi: str
    him: str
    miss: str  # what the duration lacks (w[6])
    amiss: str  # what is missing when the anchor is (w[2])
    ever: bool = False
    lvl: int = 0
    struct: str = ""  # an item-dependent window: one struct expression, bound per item by the query
    empty: str = ""  # when not "": true when the window is empty (measured from a date never reached)


@dataclass
class Ctx:
    """Where an expression is: at patient level, or inside item lambdas (var -> (kind, sql name))."""
    vars: dict = field(default_factory=dict)
    dur_var: Optional[str] = None

    @property
    def item_level(self) -> bool:
        return bool(self.vars)

    def bind(self, var, kind, name, dur=False):
        c = Ctx(dict(self.vars), self.dur_var)
        c.vars[var] = (kind, name)
        if dur:
            c.dur_var = var
        return c


def key_index(k: str) -> str:
    """The index of a (day, index) key (day * 1048576 + index): its remainder modulo 1048576, non-negative also for a day
    before 1970 (SQL's `%` takes the dividend's sign)."""
    return f"((({k} % 1048576) + 1048576) % 1048576)"


def key_day(k: str) -> str:
    """The day of a (day, index) key (an exact division once the index is taken off: `//`
    truncates toward zero, which is one day late for a negative key)."""
    return f"(({k} - {key_index(k)}) // 1048576)"
