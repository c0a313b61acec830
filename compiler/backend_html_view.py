"""The view model of the criteria page (``backend_html``): frozen dataclasses of strings, tuples
and booleans that ``build_page`` fills and the template ``criteria.html.j2`` only prints."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Link:
    """Text that links to a fragment of the page (href is "" when there is no target)."""

    text: str
    href: str = ""
    title: str = ""


@dataclass(frozen=True)
class WordNode:
    """One node of a criterion's plain-words tree: a sentence, or a lead-in with children."""

    text: str
    children: tuple["WordNode", ...] = ()


@dataclass(frozen=True)
class QuoteView:
    text: str
    status: str  # "found" | "missing" | "" (no protocol text to check against)
    status_text: str


@dataclass(frozen=True)
class CriterionView:
    id: str
    anchor: str
    refs: tuple[str, ...]
    kind: str
    kind_label: str
    kind_class: str
    quotes: tuple[QuoteView, ...]
    lead_head: str
    lead: str
    words: tuple[WordNode, ...]
    notes: tuple[str, ...]
    reads: tuple[Link, ...]
    body_source: str
    location: str


@dataclass(frozen=True)
class TocEntry:
    ref: str
    rules: tuple[Link, ...]


@dataclass(frozen=True)
class KindGroup:
    kind: str
    title: str
    anchor: str
    intro: str
    toc: tuple[TocEntry, ...]
    criteria: tuple[CriterionView, ...]


@dataclass(frozen=True)
class AnchorView:
    name: str
    meaning: str


@dataclass(frozen=True)
class ConversionView:
    unit: str
    formula: str
    approx: str


@dataclass(frozen=True)
class ObservationView:
    anchor: str
    name: str
    label: str
    codes: tuple[str, ...]
    kind: str
    unit: str
    unit_note: str
    conversions: tuple[ConversionView, ...]
    molar_mass: str
    limits: tuple[str, ...]
    values: tuple[str, ...]
    used_by: tuple[Link, ...]


@dataclass(frozen=True)
class AttributeView:
    name: str
    type: str


@dataclass(frozen=True)
class ItemView:
    anchor: str
    name: str
    label: str
    codes: tuple[str, ...]
    attributes: tuple[AttributeView, ...]
    used_by: tuple[Link, ...]


@dataclass(frozen=True)
class ItemSection:
    anchor: str
    title: str
    items: tuple[ItemView, ...]


@dataclass(frozen=True)
class SimpleView:
    """A treatment class, a fact or a judgment, or a field of the patient record."""

    anchor: str
    name: str
    label: str
    codes: tuple[str, ...]
    note: str
    is_judgment: bool
    used_by: tuple[Link, ...]


@dataclass(frozen=True)
class EquivalenceRow:
    agent: str
    amount: str
    factor: str
    is_reference: bool


@dataclass(frozen=True)
class EquivalenceView:
    anchor: str
    name: str
    label: str
    unit: str
    reference: str
    rows: tuple[EquivalenceRow, ...]
    dose_units: tuple[ConversionView, ...]
    used_by: tuple[Link, ...]


@dataclass(frozen=True)
class DerivedView:
    anchor: str
    name: str
    label: str
    unit: str
    formula: str
    inputs: tuple[Link, ...]
    used_by: tuple[Link, ...]


@dataclass(frozen=True)
class CoverageRow:
    """One protocol reference and how the rules cover it.

    ``elig verify`` may pass its own rows (any status, e.g. "verified" or "missing") to
    :func:`backend_html.emit_html`; without them the rows are derived from the program.
    """

    ref: str
    status: str  # "encoded" | "uncomputable" | any other word a later tool reports
    rules: tuple[str, ...]  # criterion ids
    reason: str = ""


@dataclass(frozen=True)
class CoverageView:
    ref: str
    status: str
    status_class: str
    rules: tuple[Link, ...]
    reason: str


@dataclass(frozen=True)
class TextSegment:
    text: str
    quoted: bool


@dataclass(frozen=True)
class Page:
    lang: str
    doc_title: str
    trial_id: str
    title: str
    protocol_file: str
    protocol_available: bool
    protocol_segments: tuple[TextSegment, ...]
    anchors: tuple[AnchorView, ...]
    counts: str
    groups: tuple[KindGroup, ...]
    observations: tuple[ObservationView, ...]
    item_sections: tuple[ItemSection, ...]
    classes: tuple[SimpleView, ...]
    facts: tuple[SimpleView, ...]
    record_fields: tuple[SimpleView, ...]
    equivalences: tuple[EquivalenceView, ...]
    derived: tuple[DerivedView, ...]
    aliases: tuple[tuple[str, str], ...]
    coverage: tuple[CoverageView, ...]
    coverage_summary: str
    source_files: tuple[str, ...]
