"""The values of the IR interpreter (tests/ir_interpreter.py): three-valued truths (Kleene logic
with the codes that are missing), unusable values, dates as day numbers and calendar arithmetic,
and the patient record read into items, anchors and facts."""

from __future__ import annotations

import datetime
import math
import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Optional

from compiler import ir as I

INF = math.inf
SET_CAP = 256  # beyond this many possible values, a number is simply unknown

# ---------------------------------------------------------------------------------- three-valued


@dataclass(frozen=True)
class Tri:
    v: Optional[bool]
    review: bool = False
    missing: tuple = ()


TRUE = Tri(True)
FALSE = Tri(False)


def unknown(*missing, review=False) -> Tri:
    return Tri(None, review, tuple(dict.fromkeys(m for m in missing if m)))


def _merge(parts) -> tuple:
    out = []
    for p in parts:
        for m in p.missing:
            if m not in out:
                out.append(m)
    return tuple(out)


def _kleene(parts, decisive: bool) -> Tri:
    """`and` (decisive False) or `or` (decisive True): decisive as soon as one part is, else
    unknown with every unknown part's missing codes, else the other value."""
    parts = list(parts)
    if any(p.v is decisive for p in parts):
        return TRUE if decisive else FALSE
    unk = [p for p in parts if p.v is None]
    if unk:
        return Tri(None, all(p.review for p in unk), _merge(unk))
    return FALSE if decisive else TRUE


def k_and(parts) -> Tri:
    return _kleene(parts, False)


def k_or(parts) -> Tri:
    return _kleene(parts, True)


def k_not(p: Tri) -> Tri:
    return p if p.v is None else (FALSE if p.v else TRUE)


def k_if(c: Tri, a: Tri, b: Tri) -> Tri:
    if c.v is True:
        return a
    if c.v is False:
        return b
    if a.v is not None and a.v == b.v:
        return a
    unk = [c] + [x for x in (a, b) if x.v is None]
    return Tri(None, all(p.review for p in unk), _merge(unk))


def from_truths(truths: set, missing=()) -> Tri:
    """A leaf decided when every possible world gives the same answer."""
    if truths == {True}:
        return TRUE
    if truths == {False}:
        return FALSE
    return unknown(*missing)


# ---------------------------------------------------------------------------------- record values


class Bad:
    """An unusable field."""

    def __init__(self, why: str):
        self.why = why

    def __repr__(self):
        return f"Bad({self.why!r})"


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")


def parse_date(v):
    """An ISO 8601 calendar date (ASCII digits, YYYY-MM-DD) as an ordinal, else Bad."""
    if not isinstance(v, str) or not _ISO_DATE.match(v):
        return Bad("not an ISO date")
    try:
        return datetime.date(int(v[0:4]), int(v[5:7]), int(v[8:10])).toordinal()
    except ValueError:
        return Bad("not a calendar date")


def parse_number(v):
    """A JSON number (not a boolean, finite) as its exact decimal value, else Bad."""
    if isinstance(v, bool):
        return Bad("boolean")
    if isinstance(v, int):
        return Fraction(v)
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return Bad("not finite")
        return Fraction(repr(v))  # the shortest decimal that reads back as v: the value as written
    return Bad("not a number")


ORD_MAX = datetime.date.max.toordinal()  # 9999-12-31; day arithmetic goes on beyond it, unbounded


def is_leap(y: int) -> bool:
    return y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)


def month_shift(ordinal: int, months: int):
    """The same day ``months`` calendar months away, clamped to month end; None off the calendar."""
    d = datetime.date.fromordinal(ordinal)
    total = d.year * 12 + (d.month - 1) + months
    y, m = divmod(total, 12)
    m += 1
    if not 1 <= y <= 9999:
        return None
    last = [31, 29 if is_leap(y) else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1]
    return datetime.date(y, m, min(d.day, last)).toordinal()


def completed_years(birth: int, at: int) -> int:
    b = datetime.date.fromordinal(birth)
    a = datetime.date.fromordinal(at)
    bday = (b.month, b.day)
    if bday == (2, 29) and not is_leap(a.year):
        bday = (3, 1)  # born on 29 February: the birthday is 1 March in a common year
    return a.year - b.year - (1 if (a.month, a.day) < bday else 0)


def completed_units(birth: int, at: int, unit: str) -> int:
    """Completed days, weeks or calendar months from birth to `at`: the n-th month is complete
    on the day whose date n months earlier (clamped to month end) is not before the birth."""
    if unit == "d":
        return at - birth
    if unit == "wk":
        return (at - birth) // 7
    if at < birth:
        return -1
    n = 0
    while True:
        back = month_shift(at, -(n + 1))
        if back is None or back < birth:
            return n
        n += 1


# half-life units a record may use (docs/units.md): exact days; mo and a by UCUM's mean values
HALF_LIFE_DAYS = {
    "d": Fraction(1), "h": Fraction(1, 24), "min": Fraction(1, 1440), "s": Fraction(1, 86400),
    "wk": Fraction(7), "mo": Fraction(487, 16), "a": Fraction(1461, 4),
}


class RecordError(Exception):
    pass


class Item:
    """A condition, procedure or treatment of the record."""

    def __init__(self, kind, index, raw):
        self.kind = kind
        self.index = index
        self.raw = raw
        self.code = raw.get("code")
        self.codeless = False
        if kind == "procedure":
            self.start = self._date(raw.get("date"))
            self.ends = [self.start]
        elif kind == "condition":
            self.start = self._date(raw.get("onset"))
            st = raw.get("status")
            self.status = st if st in ("active", "resolved") else Bad("status")
            end = raw.get("end")
            if end is not None:
                self.ends = [self._date(end)]
            elif self.status == "active":
                self.ends = [INF]
            elif self.status == "resolved":
                self.ends = [self.start]  # a resolved condition without end ended on its onset
            else:
                self.ends = [INF, self.start]
        else:  # treatment
            self.start = self._date(raw.get("start"))
            end = raw.get("end", "absent")  # null: ongoing; no end at all: unknown
            self.ends = [INF] if end is None else [Bad("end")] if end == "absent" else [self._date(end)]
            cl = raw.get("classes")
            if isinstance(cl, list) and all(isinstance(c, str) for c in cl):
                self.classes = frozenset(cl)
            else:
                self.classes = Bad("classes")
        if kind != "procedure" and isinstance(self.start, int):
            # an end before the start contradicts itself: unknown (the start still places the item)
            self.ends = [Bad("end before start") if isinstance(e, int) and e < self.start else e for e in self.ends]
        a = raw.get("attributes")
        self.attrs = {} if a is None else (a if isinstance(a, dict) else Bad("attributes"))

    def _date(self, v):
        return read_date(v)


def _has_code(it: dict) -> bool:
    c = it.get("code")
    return isinstance(c, str) and c.strip() != ""


def _check_attributes(x: Item, attributes) -> None:
    """An attribute value outside its listed values, or off its integer scale, is unusable."""
    if not isinstance(x.attrs, dict):
        return
    for at in attributes:
        v = x.attrs.get(at.name)
        if v is None:
            continue
        if at.type == "enum" and not (isinstance(v, str) and v in at.values):
            x.attrs = {**x.attrs, at.name: Bad("not a listed value")}
        elif at.scale is not None:
            n = parse_number(v)
            lo, hi = at.scale
            if isinstance(n, Bad) or n.denominator != 1 or not lo <= n <= hi:
                x.attrs = {**x.attrs, at.name: Bad("off the scale")}


def read_date(v):
    return Bad("missing") if v is None else parse_date(v)


class Record:
    def __init__(self, program: I.Program, raw):
        if not isinstance(raw, dict):
            raise RecordError("not an object")
        if "format" not in raw:
            raise RecordError("format missing")
        fmt = raw["format"]
        if isinstance(fmt, bool) or not isinstance(fmt, (int, float)) or fmt != 1:  # 1.0 is JSON's 1 too
            raise RecordError("format not 1")
        pid = raw.get("id")
        if not isinstance(pid, str) or not pid.strip():
            raise RecordError("id")
        self.id = pid
        raw = dict(raw)
        for name, typ in (("observations", list), ("conditions", list), ("treatments", list),
                          ("procedures", list), ("anchors", dict), ("facts", dict)):
            if name in raw and not isinstance(raw[name], typ):
                raise RecordError(f"{name} is not a {typ.__name__}")
        self.program = program
        sex = raw.get("sex")
        self.sex = None if sex is None else (sex if sex in ("male", "female") else Bad("sex"))
        b = raw.get("birth_date")
        self.birth = None if b is None else read_date(b)
        self.anchors = {}
        for k, v in raw.get("anchors", {}).items():
            if v is not None:
                self.anchors[k] = read_date(v)
        self.facts = {}
        for k, v in raw.get("facts", {}).items():
            if v is not None:
                self.facts[k] = v if isinstance(v, bool) else Bad("fact")
        obs_names = {o.name for o in program.observations}
        self.obs: dict[str, list] = {}
        # docs/records.md: an item whose code is missing, empty or not a string could be any
        # item of its kind; it is never dropped
        self.codeless_obs: set[int] = set()
        for i, it in enumerate(raw.get("observations", [])):
            if isinstance(it, dict) and not _has_code(it):
                self.codeless_obs.add(i)
                for name in obs_names:
                    self.obs.setdefault(name, []).append((i, it))
            elif isinstance(it, dict) and it["code"] in obs_names:
                self.obs.setdefault(it["code"], []).append((i, it))
        for lst in self.obs.values():
            lst.sort(key=lambda e: e[0])
        cond_names = {x.name for x in program.items if x.kind == "condition"}
        proc_names = {x.name for x in program.items if x.kind == "procedure"}
        specs = {x.name: x.attributes for x in program.items}
        self.items = {"condition": [], "procedure": [], "treatment": []}
        for kind, field_name, names in (("condition", "conditions", cond_names),
                                        ("procedure", "procedures", proc_names)):
            for i, it in enumerate(raw.get(field_name, [])):
                if isinstance(it, dict) and not _has_code(it):
                    x = Item(kind, i, it)
                    x.codeless = True
                    x.code = f"{field_name}[{i}]"  # named by its place (its code is unusable)
                    self.items[kind].append(x)
                elif isinstance(it, dict) and it["code"] in names:
                    x = Item(kind, i, it)
                    _check_attributes(x, specs[it["code"]])
                    self.items[kind].append(x)
        for i, it in enumerate(raw.get("treatments", [])):
            if isinstance(it, dict):
                self.items["treatment"].append(Item("treatment", i, it))


@dataclass
class Ctx:
    rec: Record
    bind: dict = field(default_factory=dict)  # query variable -> the item or reading it stands for
    # condition -> the truth it is taken to have: a comparison over a value that a judgment
    # decides is evaluated once per branch (Interpreter.split)
    assume: dict = field(default_factory=dict)

    def with_var(self, var, value):
        b = dict(self.bind)
        b[var] = value
        return Ctx(self.rec, b, self.assume)

    def assuming(self, cond, truth: bool):
        a = dict(self.assume)
        a[cond] = truth
        return Ctx(self.rec, self.bind, a)
