"""HTML backend: the published criteria page for reviewers, ethics committees and sites.

Everything the page shows is prepared here as a plain "view model" (frozen dataclasses of
strings, tuples and booleans, in ``backend_html_view``; numbers and text as shown are written by
``backend_html_text``); the Jinja2 template ``criteria.html.j2`` only loops over it and prints
it, with autoescaping on. The page is one self-contained file: the stylesheet ``criteria.css`` is
inlined, there are no scripts, and every link is a fragment of the page.

The output is deterministic: iteration follows the program's order (or an explicit sort) and
nothing depends on the clock, the machine or absolute paths.
"""

from __future__ import annotations

import dataclasses
import re
from fractions import Fraction
from pathlib import PurePath
from typing import Iterable, Optional, Sequence

from . import ir as I
from .backend_html_text import (approx_text, conversion_formula, criterion_titles, display_text, formula_text,
                                frac_text, normalise_space, protocol_segments)
from .backend_html_view import (AnchorView, AttributeView, ConversionView, CoverageRow, CoverageView, CriterionView,
                                DerivedView, EquivalenceRow, EquivalenceView, ItemSection, ItemView, KindGroup, Link,
                                ObservationView, Page, QuoteView, SimpleView, TocEntry, WordNode)
from .lower import LoweredCriterion, LoweredModule, Words
from .terminology import SYSTEMS
from .templates import render_template

# ---------------------------------------------------------------------- units


def _conversions(units: Iterable[tuple[str, object]], target: str) -> tuple[ConversionView, ...]:
    out = []
    for unit, conv in units:
        scale = getattr(conv, "scale", conv)
        offset = getattr(conv, "offset", Fraction(0))
        if unit == target and scale == 1 and offset == 0:
            continue
        approx = approx_text(Fraction(scale)) if offset == 0 else ""
        out.append(ConversionView(unit, conversion_formula(scale, offset), approx))
    return tuple(out)


def _unit_note(unit: Optional[str]) -> str:
    return "a pure number (count, score or ratio)" if unit == "1" else ""


# ---------------------------------------------------------------------- ids and links

_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


class _Ids:
    """Allocates page-unique element ids."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def make(self, prefix: str, name: str) -> str:
        base = prefix + (_ID_UNSAFE.sub("_", name) or "x")
        cand, n = base, 2
        while cand in self.used:
            cand = f"{base}-{n}"
            n += 1
        self.used.add(cand)
        return cand


def _codes(codes: Sequence[tuple[str, str]]) -> tuple[str, ...]:
    names = {k: v.title for k, v in SYSTEMS.items()}
    return tuple(f"{names.get(sys.lower(), sys)} {code}" for sys, code in codes)


# ---------------------------------------------------------------------- anchors, record fields

_ANCHOR_MEANINGS = {
    "screening": "the date of the screening visit.",
    "enrollment": "the date the subject is enrolled in the study.",
    "first_dose": "the planned Day 1 of study treatment (first administration of the study drug).",
}

_RECORD_FIELDS = {
    "sex": "Sex, from the patient record.",
    "birth_date": "Date of birth, from the patient record; age is counted in completed years at an anchor date.",
}


# ---------------------------------------------------------------------- walking the IR


def _walk_reads(node, out: list[str]) -> None:
    """Names a formula (or any IR fragment) reads, in order of first appearance."""

    def add(name: str) -> None:
        if name not in out:
            out.append(name)

    if isinstance(node, (I.SelLatest, I.SelItem)):
        add(node.code)
    elif isinstance(node, I.NDerived):
        add(node.name)
    elif isinstance(node, I.NAge):
        add("birth_date")
    elif isinstance(node, I.BSexIs):
        add("sex")
    elif isinstance(node, I.BFact):
        add(node.name)
    elif isinstance(node, (I.BQuery,)):
        for c in node.codes:
            add(c)
    elif isinstance(node, I.BObsQuery):
        add(node.code)
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        for f in dataclasses.fields(node):
            _walk_reads(getattr(node, f.name), out)
    elif isinstance(node, tuple):
        for x in node:
            _walk_reads(x, out)


# ---------------------------------------------------------------------- plain words


def _group(w: Words) -> tuple[str, tuple[Words, ...]]:
    """The lead-in words and children of a joined Words node."""
    if w.joiner == "none of" and len(w.items) == 1 and w.items[0].joiner == "all of":
        return "not all of", w.items[0].items
    return w.joiner, w.items


def _word_nodes(items: Sequence[Words]) -> tuple[WordNode, ...]:
    out = []
    for w in items:
        if w.joiner and w.items:
            lead, kids = _group(w)
            out.append(WordNode(lead + ":", _word_nodes(kids)))
        else:
            out.append(WordNode(w.text))
    return tuple(out)


def criterion_words(c: LoweredCriterion) -> tuple[str, str, tuple[WordNode, ...]]:
    """The lead-in ("Eligible when" / "Excluded when"), the rest of its sentence, and the list under it."""
    head = {"inclusion": "Eligible when", "exclusion": "Excluded when"}.get(c.kind, "Applies when")
    w = c.words
    if w.joiner and w.items:
        lead, kids = _group(w)
        return head, f"{lead} the following:", _word_nodes(kids)
    text = w.text.rstrip()
    if not text.endswith("."):
        text += "."
    return head, text, ()


# ---------------------------------------------------------------------- coverage


def coverage_rows(program: I.Program) -> list[CoverageRow]:
    """Every ref the rules cite (in rule order) with the rules citing it, then declared gaps."""
    rows: dict[str, list[str]] = {}
    for c in _ordered_criteria(program.criteria):
        for r in c.refs:
            rows.setdefault(r, [])
            if c.id not in rows[r]:
                rows[r].append(c.id)
    out = [CoverageRow(r, "encoded", tuple(ids)) for r, ids in rows.items()]
    for u in program.uncomputable:
        out.append(CoverageRow(u.ref, "uncomputable", tuple(rows.get(u.ref, ())), u.reason))
    return out


def _ordered_criteria(criteria):
    """Inclusion criteria first, then exclusion, each in rule order (a stable partition)."""
    order = {"inclusion": 0, "exclusion": 1}
    return sorted(criteria, key=lambda c: order.get(c.kind, 2))


_STATUS_CLASSES = {
    "encoded": "ok", "verified": "ok", "covered": "ok",
    "uncomputable": "warn", "partial": "warn", "review": "warn",
    "missing": "bad", "uncovered": "bad", "failed": "bad",
}


# ---------------------------------------------------------------------- building the page


def build_page(mod: LoweredModule, protocol_text: Optional[str],
               coverage: Optional[Sequence[CoverageRow]] = None) -> Page:
    prog = mod.program
    trial = mod.trial
    ids = _Ids()
    # fixed section ids first, so nothing from the rules can take them
    for fixed in ("top", "about", "contents", "contents-title", "criteria", "dictionary", "coverage", "protocol",
                  "inclusion", "exclusion", "dict-observations", "dict-conditions",
                  "dict-procedures", "dict-classes", "dict-equivalences", "dict-facts",
                  "dict-derived", "dict-record", "dict-units", "anchors"):
        ids.used.add(fixed)

    criteria = _ordered_criteria(mod.criteria)
    for c in criteria:
        ids.used.add(c.anchor_id)

    # -- data dictionary anchors (one per element name; first kind wins on a clash)
    data_anchor: dict[str, str] = {}

    def data_id(name: str) -> str:
        a = ids.make("data-", name)
        data_anchor.setdefault(name, a)
        return a

    obs_ids = [data_id(o.name) for o in prog.observations]
    item_ids = [data_id(x.name) for x in prog.items]
    class_ids = [data_id(x.name) for x in prog.classes]
    eq_ids = [data_id(x.name) for x in prog.equivalences]
    fact_ids = [data_id(x.name) for x in prog.facts]
    derived_ids = [data_id(x.name) for x in prog.derived]
    known = set(data_anchor)
    extra_fields: list[str] = []
    for c in criteria:
        for r in c.reads:
            if r not in known and r not in extra_fields:
                extra_fields.append(r)
    derived_inputs: dict[str, list[str]] = {}
    for d in prog.derived:
        ins: list[str] = []
        _walk_reads(d.formula, ins)
        derived_inputs[d.name] = ins
        for r in ins:
            if r not in known and r not in extra_fields:
                extra_fields.append(r)
    field_ids = [data_id(n) for n in extra_fields]

    def data_link(name: str) -> Link:
        return Link(name, "#" + data_anchor[name] if name in data_anchor else "")

    # -- who uses each element: direct readers, and readers of a derived value through it
    used: dict[str, list[LoweredCriterion]] = {}
    for c in criteria:
        for r in c.reads:
            lst = used.setdefault(r, [])
            if c not in lst:
                lst.append(c)
    for d in prog.derived:
        for r in derived_inputs[d.name]:
            lst = used.setdefault(r, [])
            for c in used.get(d.name, ()):
                if c not in lst:
                    lst.append(c)
    # equivalence tables are used by the criteria that convert doses with them
    for c in criteria:
        for node_table in _dose_tables(c.ir.body):
            lst = used.setdefault(node_table, [])
            if c not in lst:
                lst.append(c)

    def used_by(name: str) -> tuple[Link, ...]:
        cs = used.get(name, ())
        refs = [c.ref for c in cs]
        return tuple(Link(c.ref if c.ref and refs.count(c.ref) == 1 else f"{c.ref} ({c.id})" if c.ref else c.id,
                          "#" + c.anchor_id, c.id) for c in cs)

    # -- criteria
    found_label = f"Found verbatim in {trial.protocol}" if trial.protocol else "Found verbatim in the protocol"
    titles = criterion_titles(prog)
    groups = []
    for kind, title, intro in (
        ("inclusion", "Inclusion criteria",
         "A subject must meet every inclusion criterion."),
        ("exclusion", "Exclusion criteria",
         "A subject who meets any exclusion criterion is not eligible."),
    ):
        views = []
        toc: dict[str, list[Link]] = {}
        for c in criteria:
            if c.kind != kind:
                continue
            refs = c.ir.refs or ((c.ref,) if c.ref else ())
            for r in refs:
                toc.setdefault(r, []).append(Link(titles(c.id), "#" + c.anchor_id))
            quotes = []
            for q in c.quotes:
                if protocol_text is None:
                    quotes.append(QuoteView(display_text(q), "", ""))
                elif normalise_space(q) in normalise_space(protocol_text):
                    quotes.append(QuoteView(display_text(q), "found", found_label))
                else:
                    quotes.append(QuoteView(display_text(q), "missing", "Not found verbatim in the protocol text"))
            head, lead, words = criterion_words(c)
            cohort_labels = {k.name: k.label for k in prog.cohorts}
            label = kind.capitalize()
            if c.ir.cohorts:  # a criterion of some cohorts only: say which
                label += " · only for " + "; ".join(cohort_labels.get(k, k) for k in c.ir.cohorts)
            views.append(CriterionView(
                c.id, c.anchor_id, tuple(refs), c.kind, label,
                "inc" if kind == "inclusion" else "exc", tuple(quotes), head, lead, words, tuple(c.notes),
                tuple(data_link(r) for r in c.reads), c.body_source, f"{c.file}:{c.line}",
            ))
        if views:
            groups.append(KindGroup(kind, title, kind, intro,
                                    tuple(TocEntry(r, tuple(ls)) for r, ls in toc.items()), tuple(views)))
    # criteria of any other kind (not expected, but never dropped)
    others = [c for c in criteria if c.kind not in ("inclusion", "exclusion")]
    if others:
        views, toc = [], {}
        for c in others:
            refs = c.ir.refs or ((c.ref,) if c.ref else ())
            for r in refs:
                toc.setdefault(r, []).append(Link(titles(c.id), "#" + c.anchor_id))
            head, lead, words = criterion_words(c)
            views.append(CriterionView(
                c.id, c.anchor_id, tuple(refs), c.kind, c.kind.capitalize(), "other",
                tuple(QuoteView(display_text(q), "", "") for q in c.quotes), head, lead, words, tuple(c.notes),
                tuple(data_link(r) for r in c.reads), c.body_source, f"{c.file}:{c.line}",
            ))
        groups.append(KindGroup("other", "Other criteria", ids.make("", "other-criteria"), "",
                                tuple(TocEntry(r, tuple(ls)) for r, ls in toc.items()), tuple(views)))

    # -- vocabulary
    observations = []
    for o, a in zip(prog.observations, obs_ids):
        limits = tuple({"uln": "ULN (upper limit of normal)", "lln": "LLN (lower limit of normal)",
                        "lloq": "LLOQ (lower limit of quantification)"}.get(x, x.upper()) for x in o.limits)
        observations.append(ObservationView(
            a, o.name, o.label, _codes(o.codes), o.kind, o.unit or "", _unit_note(o.unit),
            _conversions(o.units, o.unit) if o.unit is not None else (),
            f"{frac_text(o.molar_mass)} g/mol" if o.molar_mass is not None else "",
            limits, tuple(o.values), used_by(o.name),
        ))

    def item_view(x: I.ItemElement, a: str) -> ItemView:
        attrs = []
        for at in x.attributes:
            if at.type == "enum":
                t = " | ".join(at.values)
            elif at.type == "boolean":
                t = "yes / no"
            elif at.scale is not None:
                t = f"integer {at.scale[0]} to {at.scale[1]}"
            else:
                t = at.type
            attrs.append(AttributeView(at.name, t))
        return ItemView(a, x.name, x.label, _codes(x.codes), tuple(attrs), used_by(x.name))

    conditions = tuple(item_view(x, a) for x, a in zip(prog.items, item_ids) if x.kind == "condition")
    procedures = tuple(item_view(x, a) for x, a in zip(prog.items, item_ids) if x.kind == "procedure")
    classes = tuple(SimpleView(a, x.name, x.label, _codes(x.codes), "", False, used_by(x.name))
                    for x, a in zip(prog.classes, class_ids))
    facts = tuple(SimpleView(a, x.name, x.label, _codes(x.codes),
                             "Judgment: review when not recorded" if x.judgment
                             else "Fact: unknown when not recorded",
                             x.judgment, used_by(x.name))
                  for x, a in zip(prog.facts, fact_ids))
    record_fields = tuple(SimpleView(a, n, _RECORD_FIELDS.get(n, "Field of the patient record."), (), "",
                                     False, used_by(n))
                          for n, a in zip(extra_fields, field_ids))
    equivalences = []
    for t, a in zip(prog.equivalences, eq_ids):
        rows = tuple(EquivalenceRow(agent, f"{frac_text(amount)} {t.unit}", _factor_text(t, agent),
                                    agent == t.name)
                     for agent, amount in t.entries)
        equivalences.append(EquivalenceView(
            a, t.name, t.label, t.unit, f"{frac_text(t.reference)} {t.unit} of {t.name}", rows,
            _conversions(t.units, t.unit), used_by(t.name),
        ))
    derived = tuple(DerivedView(a, d.name, d.label, d.unit, formula_text(d.formula),
                                tuple(data_link(n) for n in derived_inputs[d.name]), used_by(d.name))
                    for d, a in zip(prog.derived, derived_ids))

    # -- anchors
    anchors = tuple(AnchorView(n, _ANCHOR_MEANINGS.get(n, "")) for n in trial.anchors)

    # -- coverage
    rows = list(coverage) if coverage is not None else coverage_rows(prog)
    by_id = {c.id: c for c in mod.criteria}
    cov = []
    for r in rows:
        links = tuple(Link(i, "#" + by_id[i].anchor_id) if i in by_id else Link(i) for i in r.rules)
        cov.append(CoverageView(r.ref, r.status, _STATUS_CLASSES.get(r.status, "other"), links, r.reason))
    n_enc = sum(1 for r in rows if r.status == "encoded")
    n_unc = sum(1 for r in rows if r.status == "uncomputable")
    coverage_summary = (f"{n_enc} protocol reference{'s' if n_enc != 1 else ''} encoded by rules; "
                        f"{n_unc} declared uncomputable.")

    n_inc = sum(1 for c in mod.criteria if c.kind == "inclusion")
    n_exc = sum(1 for c in mod.criteria if c.kind == "exclusion")
    counts = (f"{n_inc} inclusion rule{'s' if n_inc != 1 else ''} and {n_exc} exclusion "
              f"rule{'s' if n_exc != 1 else ''}, citing {len(mod.refs_in_order)} protocol "
              f"reference{'s' if len(mod.refs_in_order) != 1 else ''}.")

    protocol_file = PurePath(trial.protocol).name if trial.protocol else ""
    return Page(
        lang="en",
        doc_title=f"{trial.name} eligibility criteria",
        trial_id=trial.name,
        title=trial.title or trial.name,
        protocol_file=protocol_file,
        protocol_available=protocol_text is not None,
        protocol_segments=protocol_segments(protocol_text, [q for c in mod.criteria for q in c.quotes])
        if protocol_text is not None else (),
        anchors=anchors,
        counts=counts,
        groups=tuple(groups),
        observations=tuple(observations),
        item_sections=tuple(sec for sec in (ItemSection("dict-conditions", "Conditions", conditions),
                                            ItemSection("dict-procedures", "Procedures", procedures))
                            if sec.items),
        classes=classes,
        facts=facts,
        record_fields=record_fields,
        equivalences=tuple(equivalences),
        derived=derived,
        aliases=tuple(prog.aliases),
        coverage=tuple(cov),
        coverage_summary=coverage_summary,
        source_files=tuple(mod.source_files),
    )


def _dose_tables(node) -> list[str]:
    out: list[str] = []

    def walk(n) -> None:
        if isinstance(n, I.NDose) and n.table not in out:
            out.append(n.table)
        if dataclasses.is_dataclass(n) and not isinstance(n, type):
            for f in dataclasses.fields(n):
                walk(getattr(n, f.name))
        elif isinstance(n, tuple):
            for x in n:
                walk(x)

    walk(node)
    return out


def _factor_text(t: I.EquivalenceTable, agent: str) -> str:
    for a, f in t.factors:
        if a == agent:
            return f"dose × {frac_text(f)}"
    return ""


def emit_html(mod: LoweredModule, protocol_text: Optional[str],
              coverage: Optional[Sequence[CoverageRow]] = None) -> str:
    """The criteria page as one self-contained HTML5 document."""
    page = build_page(mod, protocol_text, coverage)
    return render_template("criteria.html.j2", page=page, fingerprint=mod.fingerprint)
