"""The checked program: plain frozen dataclasses with every name resolved, every unit folded
to exact fractions and every type known. The backends only print these (see ``lower.py`` for
the target-ready module description built from them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Optional, Union

from .ast import Span
from .units import Conversion


# ------------------------------------------------------------------ vocabulary


@dataclass(frozen=True)
class TrialInfo:
    name: str
    title: str
    protocol: Optional[str]
    anchors: tuple[str, ...]
    span: Span


@dataclass(frozen=True)
class ObsElement:
    name: str
    label: str
    codes: tuple[tuple[str, str], ...]
    kind: str  # "quantity" | "qualitative"
    unit: Optional[str]
    units: tuple[tuple[str, Conversion], ...]  # accepted unit -> conversion to `unit`
    molar_mass: Optional[Fraction]
    values: tuple[str, ...]
    limits: tuple[str, ...]  # "uln", "lln", "lloq"
    span: Span
    attributes: tuple["Attribute", ...] = ()  # method, specimen, assay ... of each reading


@dataclass(frozen=True)
class Attribute:
    name: str
    type: str  # boolean | number | date | text | enum
    values: tuple[str, ...]
    unit: Optional[str] = None  # a number attribute measured in a UCUM unit
    units: tuple[tuple[str, Conversion], ...] = ()  # accepted unit -> conversion to `unit`
    scale: Optional[tuple[int, int]] = None  # `integer LO to HI`: an integer from LO to HI (a grade)


@dataclass(frozen=True)
class ItemElement:
    kind: str  # condition | procedure
    name: str
    label: str
    codes: tuple[tuple[str, str], ...]
    attributes: tuple[Attribute, ...]
    span: Span


@dataclass(frozen=True)
class ClassElement:
    name: str
    label: str
    codes: tuple[tuple[str, str], ...]
    span: Span


@dataclass(frozen=True)
class FactElement:
    name: str
    judgment: bool
    label: str
    codes: tuple[tuple[str, str], ...]
    span: Span


@dataclass(frozen=True)
class EquivalenceTable:
    name: str
    label: str
    unit: str
    entries: tuple[tuple[str, Fraction], ...]  # agent -> amount equal to the reference amount
    reference: Fraction  # the amount of the table's own agent (name) in `unit`
    factors: tuple[tuple[str, Fraction], ...]  # agent -> multiply a dose to get the equivalent
    units: tuple[tuple[str, Fraction], ...]  # dose unit accepted -> factor to `unit`
    span: Span


@dataclass(frozen=True)
class DerivedElement:
    name: str
    label: str
    unit: str
    formula: "Num"
    span: Span


# ------------------------------------------------------------------ windows and durations


@dataclass(frozen=True)
class DConst:
    kind: str  # "days" | "months"
    amount: Fraction  # days (exact) or whole calendar months
    text: str


@dataclass(frozen=True)
class DHalfLife:
    multiple: Fraction
    text: str


@dataclass(frozen=True)
class DExtreme:
    which: str  # shorter | longer
    left: "Dur"
    right: "Dur"
    text: str


@dataclass(frozen=True)
class DIf:
    cond: "Bool"
    then: "Dur"
    otherwise: "Dur"
    text: str


Dur = Union[DConst, DHalfLife, DExtreme, DIf]


@dataclass(frozen=True)
class Win:
    kind: str  # within_before | within_after | on_or_before | on_or_after | between | ever
    anchor: Optional[str]
    duration: Optional[Dur]
    item_dependent: bool
    text: str
    # the reference date when it is not an anchor (an enclosing item's date, a shifted date);
    # such a window is computed where it is used, not once per record
    at: Optional["Date"] = None
    until: Optional["Date"] = None  # the end of `between A and B` (A is `anchor` or `at`)


# ------------------------------------------------------------------ selections and limits


@dataclass(frozen=True)
class SelLatest:
    code: str
    window: Win
    text: str
    var: Optional[str] = None  # with a filter: the reading being tested
    pred: Optional["Bool"] = None  # only readings for which pred holds are selected


@dataclass(frozen=True)
class SelItem:
    """The current observation inside `any <observation> ... where value ...`."""

    code: str
    var: str
    text: str


Sel = Union[SelLatest, SelItem]


@dataclass(frozen=True)
class LConst:
    table: tuple[tuple[str, Fraction], ...]  # accepted unit -> the limit in that unit
    text: str


@dataclass(frozen=True)
class LRef:
    which: str  # uln | lln | lloq
    multiple: Fraction
    text: str


@dataclass(frozen=True)
class LIf:
    cond: "Bool"
    then: "Lim"
    otherwise: "Lim"
    text: str


Lim = Union[LConst, LRef, LIf]


# ------------------------------------------------------------------ numbers and dates


@dataclass(frozen=True)
class NConst:
    value: Fraction
    text: str


@dataclass(frozen=True)
class NObs:
    sel: Sel
    table: tuple[tuple[str, Conversion], ...]  # patient unit -> target unit
    unit: str


@dataclass(frozen=True)
class NAge:
    anchor: str
    unit: str = "a"  # completed calendar years (a), months (mo), weeks (wk) or days (d)


@dataclass(frozen=True)
class NArith:
    op: str
    left: "Num"
    right: "Num"


@dataclass(frozen=True)
class NIf:
    cond: "Bool"
    then: "Num"
    otherwise: "Num"


@dataclass(frozen=True)
class NDerived:
    name: str


@dataclass(frozen=True)
class NScale:
    """A number converted between units of one dimension: value * scale + offset."""

    operand: "Num"
    scale: Fraction
    offset: Fraction


@dataclass(frozen=True)
class NAttr:
    var: str
    name: str
    unit: Optional[str] = None  # a quantity attribute: its unit, and accepted unit -> conversion
    units: tuple[tuple[str, Conversion], ...] = ()


@dataclass(frozen=True)
class NDose:
    var: str
    table: str
    unit: str


@dataclass(frozen=True)
class NCourse:
    var: str
    # an ongoing course counts to the date its query's window is measured from: an anchor's
    # name, or the date itself when the window is measured from a computed date (a Date)
    anchor: "Union[str, Date]"


@dataclass(frozen=True)
class NHalfLife:
    var: str


Num = Union[NConst, NObs, NAge, NArith, NIf, NDerived, NScale, NAttr, NDose, NCourse, NHalfLife]


@dataclass(frozen=True)
class DtAnchor:
    name: str


@dataclass(frozen=True)
class DtAttr:
    var: str
    name: str


@dataclass(frozen=True)
class DtShift:
    date: "Date"
    sign: int
    duration: Dur
    text: str


@dataclass(frozen=True)
class DtItem:
    """A date an item carries: a condition's onset / end, a treatment's start / end, a
    procedure's or observation's date. An ongoing treatment or an active condition without an
    end has not ended: its end is later than any date."""

    var: str
    field: str  # onset | end | start | date
    kind: str  # condition | procedure | treatment | observation


Date = Union[DtAnchor, DtAttr, DtShift, DtItem]


# ------------------------------------------------------------------ booleans


@dataclass(frozen=True)
class BAnd:
    items: tuple["Bool", ...]


@dataclass(frozen=True)
class BOr:
    items: tuple["Bool", ...]


@dataclass(frozen=True)
class BNot:
    operand: "Bool"


@dataclass(frozen=True)
class BImplies:
    cond: "Bool"
    then: "Bool"


@dataclass(frozen=True)
class BIf:
    cond: "Bool"
    then: "Bool"
    otherwise: "Bool"


@dataclass(frozen=True)
class BFact:
    name: str
    judgment: bool


@dataclass(frozen=True)
class BSexIs:
    values: tuple[str, ...]
    negated: bool


@dataclass(frozen=True)
class BObsCmp:
    sel: Sel
    op: str
    limit: Lim


@dataclass(frozen=True)
class BObsBetween:
    sel: Sel
    low: Lim
    high: Lim


@dataclass(frozen=True)
class BObsIs:
    sel: Sel
    values: tuple[str, ...]
    negated: bool
    text: str


@dataclass(frozen=True)
class BNumCmp:
    left: Num
    op: str
    right: Num
    unit: str


@dataclass(frozen=True)
class BDateCmp:
    left: Date
    op: str
    right: Date


@dataclass(frozen=True)
class BQuery:
    kind: str  # condition | procedure | treatment
    codes: tuple[str, ...]
    quantifier: str  # any | no | every
    active: bool
    window: Optional[Win]
    var: str
    pred: Optional["Bool"]
    negate_pred: bool  # unless
    text: str
    count: Optional[int] = None  # quantifier at_least / at_most: the number of items
    distinct: bool = False  # count the distinct codes (classes) among the items, not the items


@dataclass(frozen=True)
class BRecorded:
    """Whether a value, date, fact or attribute is recorded and usable: true or false, never unknown."""

    operand: Union["Bool", "Num", "Date"]
    kind: str  # bool | num | date
    text: str


@dataclass(frozen=True)
class BObsQuery:
    code: str
    quantifier: str
    window: Win
    var: str
    pred: "Bool"
    text: str


@dataclass(frozen=True)
class BAttrBool:
    var: str
    name: str


@dataclass(frozen=True)
class BAttrIs:
    var: str
    name: str
    type: str
    values: tuple[str, ...]
    tests: tuple[str, ...]
    negated: bool


@dataclass(frozen=True)
class BFieldIs:
    var: str
    field: str  # route | purpose
    tests: tuple[str, ...]
    negated: bool


@dataclass(frozen=True)
class BClassIn:
    var: str
    tests: tuple[str, ...]
    negated: bool


Bool = Union[
    BAnd, BOr, BNot, BImplies, BIf, BFact, BSexIs, BObsCmp, BObsBetween, BObsIs, BNumCmp, BDateCmp,
    BQuery, BObsQuery, BAttrBool, BAttrIs, BFieldIs, BClassIn, BRecorded,
]


# ------------------------------------------------------------------ criteria and program


@dataclass(frozen=True)
class CriterionIR:
    id: str
    kind: str
    refs: tuple[str, ...]
    quotes: tuple[str, ...]
    notes: tuple[str, ...]
    body: Bool
    body_source: str  # the rule's body as written, for the HTML page and the module comment
    file: str
    line: int
    span: Span
    reads: tuple[str, ...]  # vocabulary elements the criterion reads
    quote_spans: tuple[Span, ...] = ()
    ref_span: Optional[Span] = None
    body_span: Optional[Span] = None
    cohorts: tuple[str, ...] = ()  # the cohorts it applies to; () = every cohort


@dataclass(frozen=True)
class CohortElement:
    name: str
    label: str
    codes: tuple[tuple[str, str], ...]
    span: Span


@dataclass(frozen=True)
class Uncomputable:
    ref: str
    reason: str
    span: Span


@dataclass(frozen=True)
class OutlineItem:
    ref: str
    anchor: str
    heading: bool
    span: Span


@dataclass(frozen=True)
class Program:
    trial: TrialInfo
    observations: tuple[ObsElement, ...]
    items: tuple[ItemElement, ...]
    classes: tuple[ClassElement, ...]
    facts: tuple[FactElement, ...]
    equivalences: tuple[EquivalenceTable, ...]
    derived: tuple[DerivedElement, ...]
    criteria: tuple[CriterionIR, ...]
    uncomputable: tuple[Uncomputable, ...]
    aliases: tuple[tuple[str, str], ...]
    files: tuple[str, ...] = field(default=())
    outline: tuple[OutlineItem, ...] = field(default=())
    cohorts: tuple[CohortElement, ...] = field(default=())
