"""Typed, frozen AST of the Elig language.

The parser's Transformer (``compiler.parser_tree``) builds these from the Lark parse tree; no
``lark.Tree`` travels past ``compiler.parser``. Every node carries the ``Span`` of the source text it came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Union


@dataclass(frozen=True)
class Span:
    file: str
    line: int
    column: int
    end_line: int
    end_column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Ident:
    name: str
    span: Span


@dataclass(frozen=True)
class Text:
    """A string literal (adjacent literals are joined)."""

    value: str
    span: Span


@dataclass(frozen=True)
class UnitRef:
    """A UCUM unit as written in the rule file."""

    code: str
    span: Span


# ------------------------------------------------------------------ expressions


@dataclass(frozen=True)
class Number:
    value: str  # decimal text as written, folded exactly by the checker
    span: Span


@dataclass(frozen=True)
class Quantity:
    value: str
    unit: UnitRef
    span: Span


@dataclass(frozen=True)
class Name:
    ident: Ident
    span: Span


@dataclass(frozen=True)
class RefLimit:
    which: str  # "ULN" | "LLN" | "LLOQ"
    span: Span


@dataclass(frozen=True)
class Age:
    anchor: Ident
    span: Span


@dataclass(frozen=True)
class Window:
    kind: str  # "within_before" | "within_after" | "on_or_before" | "on_or_after" | "between" | "ever"
    duration: Optional["Expr"]
    anchor: Optional[Ident]  # the reference date when written as a name (an anchor, an item's date)
    span: Span
    at: Optional["Expr"] = None  # the reference date when written as a parenthesized expression
    until: Optional[Union[Ident, "Expr"]] = None  # the second date of `between A and B`


@dataclass(frozen=True)
class Latest:
    code: Ident
    window: Window
    span: Span
    filter_kind: Optional[str] = None  # "where" | "unless": only readings that pass count
    filter: Optional["Expr"] = None


@dataclass(frozen=True)
class Query:
    quantifier: str  # "any" | "no" | "every"
    active: bool
    codes: tuple[Ident, ...]
    window: Optional[Window]
    filter_kind: Optional[str]  # "where" | "unless"
    filter: Optional["Expr"]
    span: Span
    count: Optional[int] = None  # for "at_least" / "at_most": the number of items
    distinct: bool = False  # count the named codes present (distinct classes), not the records


@dataclass(frozen=True)
class Recorded:
    """`recorded X`: whether a value, date, fact or attribute is recorded and usable (never unknown)."""

    operand: "Expr"
    span: Span


@dataclass(frozen=True)
class Compare:
    op: str  # canonical: ">=", "<=", ">", "<", "=", "!="
    op_span: Span
    left: "Expr"
    right: "Expr"
    span: Span


@dataclass(frozen=True)
class IsValue:
    subject: "Expr"
    value: Ident
    negated: bool
    span: Span


@dataclass(frozen=True)
class Between:
    subject: "Expr"
    low: "Expr"
    high: "Expr"
    span: Span


@dataclass(frozen=True)
class Arith:
    op: str  # "+", "-", "*", "/"
    left: "Expr"
    right: "Expr"
    span: Span


@dataclass(frozen=True)
class Neg:
    operand: "Expr"
    span: Span


@dataclass(frozen=True)
class Convert:
    operand: "Expr"
    unit: UnitRef
    span: Span


@dataclass(frozen=True)
class Member:
    subject: "Expr"
    values: tuple  # Ident (a name), Number or Quantity (a number in a set)
    negated: bool
    span: Span


@dataclass(frozen=True)
class Chain:
    """A range written as a chained comparison: low <= x < high."""

    left: "Expr"
    op1: str
    op1_span: Span
    middle: "Expr"
    op2: str
    op2_span: Span
    right: "Expr"
    span: Span


@dataclass(frozen=True)
class EquivalentOf:
    operand: "Expr"
    table: Ident
    span: Span


@dataclass(frozen=True)
class And:
    items: tuple["Expr", ...]
    span: Span


@dataclass(frozen=True)
class Or:
    items: tuple["Expr", ...]
    span: Span


@dataclass(frozen=True)
class Not:
    operand: "Expr"
    span: Span


@dataclass(frozen=True)
class IfElse:
    then: "Expr"
    cond: "Expr"
    otherwise: "Expr"
    span: Span


@dataclass(frozen=True)
class Implies:
    cond: "Expr"
    then: "Expr"
    span: Span


@dataclass(frozen=True)
class Extreme:
    kind: str  # "shorter" | "longer"
    left: "Expr"
    right: "Expr"
    span: Span


Expr = Union[
    Number, Quantity, Name, RefLimit, Age, Latest, Query, Compare, IsValue, Between, Arith, Neg,
    Convert, Member, EquivalentOf, And, Or, Not, IfElse, Implies, Extreme, Recorded,
]


# ------------------------------------------------------------------ declarations


@dataclass(frozen=True)
class TerminologyCode:
    system: Ident
    value: Text


@dataclass(frozen=True)
class TrialDecl:
    name: Ident
    title: Optional[Text]
    protocol: Optional[Text]
    anchors: tuple[Ident, ...]
    span: Span
    repeats: tuple[tuple[str, Span], ...] = ()  # fields given more than once


@dataclass(frozen=True)
class ObservationDecl:
    name: Ident
    label: Optional[Text]
    codes: tuple[TerminologyCode, ...]
    unit: Optional[UnitRef]
    accepts: tuple[UnitRef, ...]
    molar_mass: Optional[Quantity]
    qualitative: tuple[Ident, ...]
    limits: tuple[Ident, ...]  # which of ULN / LLN / LLOQ the observation carries
    fields: tuple[tuple[str, Span], ...]  # every field as written, to find repeats
    span: Span
    attributes: tuple["AttributeDecl", ...] = ()  # method, specimen, assay ... of each reading


@dataclass(frozen=True)
class AttributeDecl:
    name: Ident
    type: str  # "boolean" | "number" | "date" | "text" | "enum"
    values: tuple[Ident, ...]
    span: Span
    unit: Optional[UnitRef] = None  # a number attribute measured in a UCUM unit
    scale: Optional[tuple[str, str]] = None  # `integer LO to HI`: a number on that scale (written text)


@dataclass(frozen=True)
class ItemDecl:
    """A condition or a procedure, with its typed attributes."""

    kind: str  # "condition" | "procedure"
    name: Ident
    label: Optional[Text]
    codes: tuple[TerminologyCode, ...]
    attributes: tuple[AttributeDecl, ...]
    span: Span
    repeats: tuple[tuple[str, Span], ...] = ()


@dataclass(frozen=True)
class TreatmentClassDecl:
    names: tuple[Ident, ...]
    label: Optional[Text]
    codes: tuple[TerminologyCode, ...]
    span: Span


@dataclass(frozen=True)
class FactDecl:
    name: Ident
    judgment: bool
    label: Optional[Text]
    codes: tuple[TerminologyCode, ...]
    span: Span


@dataclass(frozen=True)
class DerivedDecl:
    name: Ident
    label: Optional[Text]
    unit: UnitRef
    formula: Expr
    span: Span


@dataclass(frozen=True)
class Equivalent:
    agent: Ident
    amount: Quantity


@dataclass(frozen=True)
class EquivalenceDecl:
    name: Ident
    label: Optional[Text]
    entries: tuple[Equivalent, ...]
    span: Span


@dataclass(frozen=True)
class LetDecl:
    name: Ident
    expr: Expr
    span: Span


@dataclass(frozen=True)
class UncomputableDecl:
    ref: Ident
    reason: Text
    span: Span


@dataclass(frozen=True)
class OutlineEntry:
    ref: Ident
    anchor: Text  # the verbatim protocol text the item starts with
    heading: bool  # a heading whose numbered sub-items carry the criteria
    span: Span


@dataclass(frozen=True)
class OutlineDecl:
    entries: tuple[OutlineEntry, ...]
    span: Span


@dataclass(frozen=True)
class Criterion:
    kind: str  # "inclusion" | "exclusion"
    name: Ident
    refs: tuple[Ident, ...]
    quotes: tuple[Text, ...]
    notes: tuple[Text, ...]
    lets: tuple[LetDecl, ...]
    body_kind: str  # "require" | "exclude_when"
    body: Expr
    body_span: Span
    span: Span
    cohorts: tuple[Ident, ...] = ()  # the cohorts the criterion applies to (all when empty)


@dataclass(frozen=True)
class CohortDecl:
    name: Ident
    label: Optional[Text]
    codes: tuple[TerminologyCode, ...]
    span: Span


Decl = Union[
    TrialDecl, ObservationDecl, ItemDecl, TreatmentClassDecl, FactDecl, DerivedDecl,
    EquivalenceDecl, LetDecl, UncomputableDecl, OutlineDecl, Criterion, CohortDecl,
]


@dataclass(frozen=True)
class SourceFile:
    path: str
    text: str
    decls: tuple[Decl, ...] = field(default=())
