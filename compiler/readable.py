"""Quantities and units as people read them, for the text the compiler writes for people
(reasons of the generated evaluator, plain words of the page). UCUM codes stay where they
identify: the data dictionary, `missing`, the JSON fields.

The unit table itself is the runtime's (`_unit_words` in compiler/runtime.py), so that the
evaluator's reasons and the compiler's texts render a unit the same way.
"""

from __future__ import annotations

import re

from .runtime import _unit_words as unit_words

__all__ = ["readable", "unit_words"]

# a number followed by a UCUM unit: "100 10*9/L", "7 d", "38 Cel", "5 a"
_QUANTITY = re.compile(r"(?<![\w.*])(-?[0-9]+(?:\.[0-9]+)?) ((?:[0-9]+\*[0-9-]+|[\[\]{}A-Za-z_%/.0-9*])+)(?![\w\]])")
_SINGULAR = {"years": "year", "months": "month", "weeks": "week", "days": "day", "hours": "hour", "minutes": "minute"}


def readable(text: str) -> str:
    """`text` with every number-and-UCUM-unit written as people write it:
    "100 10*9/L" -> "100 ×10⁹/L", "within 7 d before first_dose" -> "within 7 days before first_dose"."""

    def sub(m):
        number, unit = m.group(1), m.group(2)
        if unit in ("x", "X", "and", "or", "to") or unit.isdigit():
            return m.group(0)
        words = unit_words(unit)
        if number == "1":
            words = _SINGULAR.get(words, words)
        return f"{number} {words}" if words else number

    return _QUANTITY.sub(sub, re.sub(r"(?<=[0-9]) x (?=[UL]LN\b)", " × ", text))
