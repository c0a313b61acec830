"""The vocabulary's labels in the reasons of the generated evaluator.

A reason names an observation, a condition, a procedure, a treatment class or a derived value by
its label as a sentence reads it ("platelet count", "HIV infection": see ``lower._label``), and a
fact by its label in quotes ("“Informed consent signed”: yes"). Codes stay where they identify:
``missing``, the JSON field names, warnings about the record and the page's data dictionary.

Labels are looked up here, at compile time: the texts the backend passes to the runtime carry
them already, and the tables ``_LABELS`` / ``_FACT_LABELS`` written into the module serve the
codes that only a record supplies (the code of an item, the classes of a treatment).
"""

from __future__ import annotations

import re

from . import ir as I

__all__ = ["reason_labels", "fact_labels", "labelled"]

_WORD = re.compile(r"(?<![\w.\[{*/])[A-Za-z_][A-Za-z0-9_]*(?![\w\]}*/])")


_NOTE = re.compile(r"^(?P<name>.+?) \((?P<note>[^()]*)\)$")


def _short(label: str) -> str:
    """A label without a trailing note that is longer than the name it follows: such a note is
    for whoever records the data ("Radiotherapy (date of the last fraction)", "Prior systemic
    anticancer therapy (one record per line / regimen)") and stays on the page's data
    dictionary; a short one is part of the name ("Aspartate aminotransferase (AST)",
    "Evaluable lesions (RECIST v1.1)")."""
    m = _NOTE.match(label)
    if m and len(m.group("note").split()) > len(m.group("name").split()):
        return m.group("name")
    return label


def _reading(label: str) -> str:
    """A label as a sentence reads it: lower-cased where it starts with a common noun ("Platelet
    count" -> "platelet count"); "HIV infection", "ECOG performance status" keep their capitals."""
    label = _short(label)
    return label[0].lower() + label[1:] if len(label) > 1 and label[1].islower() else label


def reason_labels(program: I.Program) -> dict[str, str]:
    """code -> the label as a reason names it, for every labelled element but facts."""
    out: dict[str, str] = {}
    for group in (program.observations, program.items, program.classes, program.derived):
        for e in group:
            if e.label and e.label != e.name:
                out[e.name] = _reading(e.label)
    return out


def fact_labels(program: I.Program) -> dict[str, str]:
    """fact -> its label in quotes, as a reason names it."""
    return {f.name: f"“{_short(f.label)}”" for f in program.facts if f.label and f.label != f.name}


def labelled(text: str, labels: dict[str, str], facts: dict[str, str] | None = None) -> str:
    """A text written from the rule source ("latest hbsag on or before first_dose is positive")
    with each vocabulary code in it replaced by its label; other words (anchors, keywords,
    units) stay as they are."""
    if not text or not (labels or facts):
        return text

    def sub(m):
        w = m.group(0)
        hit = labels.get(w)
        if hit is None and facts:
            hit = facts.get(w)
        return w if hit is None else hit

    return _WORD.sub(sub, text)
