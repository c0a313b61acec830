"""What `elig verify` checks of windows beyond their lengths: the direction a window points from
the anchor the criterion is judged at, and which window each clause of a list carries.

1. **Direction.** A window that reads items after a trial anchor (`on or after A`, `within D
   after A`) must be what the quoted text says: a quote that says "after", "following" or
   "since" allows it; a quote that says only "before", "prior to", "previous", "history of",
   "preceding", "ago" or "in the past" contradicts it; and a quote that states no direction
   allows it only for conditions and treatments, whose window `on or after A` holds the items
   ongoing at A (the present tense: "on renal replacement therapy", "requiring steroids").
   Readings of observations and dated procedures after A are what is not known when
   eligibility is decided at A. (A window of some length is also checked by its length's side:
   "within 7 days prior to" against `within 7 d after`, in `compiler.verify`.)
2. **Clause windows.** A quote whose clauses each state their window ("A, B or C within 4 weeks
   prior to X; or D or E within 7 days prior to X") gives every clause a window: an
   alternative of the rule's `or` that reads dated items of any date while its siblings read
   the text's windows has lost its window. (A single window for every alternative is checked
   in `compiler.verify`.)

Windows measured from an item's own dates (`any response on or after start`) are the text's
order of events, not a reading at the anchor, and are left to the limits' sides.
"""

from __future__ import annotations

import re
from typing import Iterator, Optional

from . import ir as I
from .diagnostics import Diagnostic
from .verify_text import limits_in_text

_AFTER = re.compile(r"\b(?:after|following|since|thereafter|onwards?|or\s+later)\b", re.IGNORECASE)
_BEFORE = re.compile(r"\b(?:before|prior|previous(?:ly)?|preceding|ago|history|in\s+the\s+(?:past|last))\b", re.IGNORECASE)
_AFTER_KINDS = ("on_or_after", "within_after")
# conditions and treatments overlap a window: `on or after A` holds those ongoing at A
_OVERLAPPING = ("condition", "treatment")


def _windows(node, kind: Optional[str] = None) -> Iterator[tuple[I.Win, str, str]]:
    """(window, the kind of item it reads, the reading as written) for every window of an IR
    expression, nested filters included."""
    if isinstance(node, I.SelLatest):
        yield node.window, "observation", node.text
    elif isinstance(node, I.BObsQuery):
        yield node.window, "observation", node.text
    elif isinstance(node, I.BQuery) and node.window is not None:
        yield node.window, node.kind, node.text
    if isinstance(node, tuple):
        for x in node:
            yield from _windows(x)
    elif hasattr(node, "__dataclass_fields__") and not isinstance(node, I.Win):
        for f in node.__dataclass_fields__:
            yield from _windows(getattr(node, f))


def _anchor_of(w: I.Win) -> Optional[str]:
    """The trial anchor a window is measured from, or None (an item's date, a shifted date)."""
    if w.at is None:
        return w.anchor
    return w.at.name if isinstance(w.at, I.DtAnchor) else None


def _said(pattern: re.Pattern, texts) -> Optional[str]:
    for t in texts:
        m = pattern.search(t)
        if m:
            return " ".join(m.group(0).split())
    return None


def direction_diags(program: I.Program, c: I.CriterionIR, span) -> list[Diagnostic]:
    """The windows of a criterion that point away from what its quotes say (module docstring, 1)."""
    anchors = set(program.trial.anchors)
    after = _said(_AFTER, c.quotes)
    before = _said(_BEFORE, c.quotes)
    out, seen = [], set()
    for w, kind, text in _windows(c.body):
        anchor = _anchor_of(w)
        if anchor not in anchors or (w.text, text) in seen:
            continue
        seen.add((w.text, text))
        if w.kind in _AFTER_KINDS and not after:
            if before:
                out.append(Diagnostic(span, f"the quote of '{c.id}' says {before!r} but its logic reads '{text}' "
                                            f"{_win_words(w)}: the window points the other way",
                                      hint=f"read up to the anchor (`on or before {anchor}`, `within D before {anchor}`)"))
            elif kind not in _OVERLAPPING:
                out.append(Diagnostic(span, f"the quote of '{c.id}' states no time after {anchor}, but its logic reads "
                                            f"'{text}' {_win_words(w)}: eligibility is decided at {anchor}, "
                                            f"before any such {kind} is known",
                                      hint=f"read up to the anchor (`on or before {anchor}`); if the text means after it, "
                                           f"quote the words that say so (\"after\", \"following\", \"since\")"))
    return out


def _win_words(w: I.Win) -> str:
    return f"in the window '{w.text}'" if w.text else "after its anchor"


# ---------------------------------------------------------------------- clause windows

_CLAUSE_END = re.compile(r"[;；]|\.(?=\s|$)")
_TIME_UNITS = ("h", "d", "wk", "mo", "a")
_WITHIN = re.compile(r"\b(?:within|in|during)(?:\s+the\s+(?:last|past|previous|preceding))?\s*$", re.IGNORECASE)


def _segments(quotes) -> list[str]:
    """The clauses' sentences of the quotes: split at ';' and at a sentence's end."""
    out = []
    for q in quotes:
        out += [s for s in _CLAUSE_END.split(q) if re.search(r"[A-Za-z]{3}", s)]
    return out


def _states_window(seg: str) -> bool:
    """Whether a sentence states a window: a duration on a side of its anchor, or "within" one."""
    for l, off in limits_in_text(seg):
        if l.unit in _TIME_UNITS and (l.side or _WITHIN.search(seg[max(0, off - 40):off])):
            return True
    return False


def clause_window_diags(c: I.CriterionIR, alternatives, span) -> list[Diagnostic]:
    """An alternative that lost the window its clause states (module docstring, 2)."""
    segs = _segments(c.quotes)
    if len(segs) < 2 or not all(_states_window(s) for s in segs):
        return []
    out = []
    for group in alternatives:
        dated = [g for g in group if not g[1]]  # (windowed, active, text, window as written)
        bare = [g for g in dated if not g[0]]
        wins = {g[3] for g in dated if g[0]}
        if not bare or not wins or (len(bare) == 1 and len(wins) == 1):
            continue  # the single-window case is compiler.verify's
        for _, _, text, _ in bare:
            out.append(Diagnostic(span, f"every clause of the quote of '{c.id}' states its window "
                                        f"({'; '.join(' '.join(s.split())[:50] for s in segs)}), "
                                        f"but '{text}' reads items of any date",
                                  hint="give it the window its clause states, or read only active items"))
    return out
