"""Numbers and text as the criteria page (``backend_html``) shows them: exact fractions and unit
conversions, formulas in words, the protocol text with the quoted passages marked, registry
markdown made readable, and criterion ids as titles."""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Sequence

from . import ir as I
from .backend_html_view import TextSegment
from .lower import num_words


# ---------------------------------------------------------------------- numbers


def frac_text(x: Fraction) -> str:
    """An exact number: an integer, a terminating decimal, or a/b."""
    x = Fraction(x)
    if x.denominator == 1:
        return str(x.numerator)
    d = x.denominator
    twos = fives = 0
    while d % 2 == 0:
        d //= 2
        twos += 1
    while d % 5 == 0:
        d //= 5
        fives += 1
    if d != 1:
        sign = "−" if x < 0 else ""
        return f"{sign}{abs(x.numerator)}/{x.denominator}"
    places = max(twos, fives)
    n = abs(x) * 10 ** places
    assert n.denominator == 1
    digits = str(n.numerator).rjust(places + 1, "0")
    s = digits[:-places] + "." + digits[-places:]
    return ("−" if x < 0 else "") + s


def approx_text(x: Fraction) -> str:
    """A short decimal approximation of a non-terminating fraction, else ""."""
    exact = frac_text(x)
    if "/" not in exact:
        return ""
    return "≈ " + _sig(x, 6)


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def _sig(x: Fraction, digits: int) -> str:
    """x to `digits` significant digits: positional, or "m × 10ⁿ" when very large or small."""
    from decimal import Decimal

    f = float(x)
    if f != 0 and not (1e-4 <= abs(f) < 1e9):
        mant, exp = format(f, f".{digits - 1}e").split("e")
        mant = mant.rstrip("0").rstrip(".")
        return f"{mant} × 10{str(int(exp)).translate(_SUPERSCRIPT)}".replace("-", "−")
    s = format(Decimal(format(f, f".{digits}g")), "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s.replace("-", "−")


def conversion_formula(scale: Fraction, offset: Fraction) -> str:
    """to = x * scale + offset, as "x × 10" or "(x − 32) × 5/9"."""
    scale, offset = Fraction(scale), Fraction(offset)
    if offset == 0:
        return f"x × {frac_text(scale)}"
    shift = offset / scale
    sign = "+" if shift > 0 else "−"
    inner = f"x {sign} {frac_text(abs(shift))}"
    return inner if scale == 1 else f"({inner}) × {frac_text(scale)}"


# ---------------------------------------------------------------------- formulas


def formula_text(n) -> str:
    s = num_words(n)
    if s.startswith("(") and s.endswith(")") and _balanced(s[1:-1]):
        s = s[1:-1]
    return s


def _balanced(s: str) -> bool:
    depth = 0
    for ch in s:
        depth += ch == "("
        depth -= ch == ")"
        if depth < 0:
            return False
    return depth == 0


# ---------------------------------------------------------------------- the protocol text

_WS = re.compile(r"\s+")


def normalise_space(s: str) -> str:
    return _WS.sub(" ", s).strip()


def _clean_protocol(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return "\n".join(line.rstrip() for line in text.strip("\n").split("\n"))


def protocol_segments(text: str, quotes: Sequence[str]) -> tuple[TextSegment, ...]:
    """The protocol text cut into runs, marking every passage some rule quotes exactly."""
    text = _clean_protocol(text)
    spans = []
    for q in sorted(set(quotes)):
        if not q:
            continue
        start = text.find(q)
        while start >= 0:
            spans.append((start, start + len(q)))
            start = text.find(q, start + 1)
    spans.sort()
    merged: list[list[int]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    out = []
    pos = 0
    for a, b in merged:
        if a > pos:
            out.append(TextSegment(display_text(text[pos:a], pos == 0 or text[pos - 1] == "\n"), False))
        out.append(TextSegment(display_text(text[a:b], a == 0 or text[a - 1] == "\n"), True))
        pos = b
    if pos < len(text):
        out.append(TextSegment(display_text(text[pos:], pos == 0 or text[pos - 1] == "\n"), False))
    return tuple(out)


# ---------------------------------------------------------------------- text as displayed
# Protocol registries publish their text with markdown escapes and bullets ("- • 1. Male",
# "\\>450", "10\\^9/L"). Quotes stay verbatim in the rules (`elig verify` matches them against
# the text as it is); the page shows them as a reader expects.

_MD_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!<>^|~])")
_POWER = re.compile(r"\^(-?[0-9]+)")
_BULLET = re.compile(r"(?m)^([ \t]*)-[ \t]+(?:[•*][ \t]*)?(?=([0-9]+[.)]|[a-z][.)])?)")


def display_text(text: str, at_line_start: bool = True) -> str:
    """Registry markdown rendered for reading: escapes dropped (`\\>` -> `>`), powers raised
    (`10^9` -> `10⁹`), and a list item's markup ("- • ", "- * ", "- ") reduced to the item's
    own number ("1.", "a)"), or to "• " where it has none. `at_line_start`: whether the text begins a line of the protocol."""
    def bullet(m):
        return m.group(1) + ("" if m.group(2) else "• ")

    if at_line_start:
        text = _BULLET.sub(bullet, text)
    else:
        head, nl, rest = text.partition("\n")
        text = head + nl + _BULLET.sub(bullet, rest) if nl else text
    text = _MD_ESCAPE.sub(r"\1", text)
    return _POWER.sub(lambda m: m.group(1).translate(_SUPERSCRIPT), text)


def criterion_titles(program: I.Program):
    """A criterion's id as a title for the contents ("inr_limit" -> "INR limit"): words
    separated, the first capitalised, and the abbreviations that the vocabulary's labels and the
    trial's name spell in capitals written that way."""
    spelled: dict[str, str] = {}
    labels = [e.label for g in (program.observations, program.items, program.classes, program.facts,
                                program.derived) for e in g if e.label]
    for word in re.findall(r"[A-Za-z][A-Za-z0-9]*", " ".join(labels + [program.trial.name])):
        if sum(ch.isupper() for ch in word) >= 2 or (word[0].isupper() and any(ch.isdigit() for ch in word)):
            spelled.setdefault(word.lower(), word)

    for label in labels:  # "Left ventricular ejection fraction": lvef -> LVEF
        initials = "".join(w[0] for w in re.findall(r"[A-Za-z]+", label.split("(")[0]))
        if len(initials) >= 3:
            spelled.setdefault(initials.lower(), initials.upper())

    def title(cid: str) -> str:
        words = [spelled.get(w.lower(), w.upper() if len(w) == 1 else w) for w in cid.split("_") if w]
        if words and words[0] == words[0].lower():
            words[0] = words[0][:1].upper() + words[0][1:]
        return " ".join(words) or cid

    return title
