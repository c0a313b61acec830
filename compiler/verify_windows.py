"""What `elig verify` checks of windows beyond their lengths: the direction a window points from
the anchor the criterion is judged at, and which window each clause of a list carries.

1. **Direction.** A window that reads items after a trial anchor (`on or after A`, `within D
   after A`) must be what the quoted text says: a quote that says "after", "following" or
   "since" allows it; a quote that says only "before", "prior to", "previous", "history of",
   "preceding", "ago" or "in the past" contradicts it; and a quote that states no direction
   allows it only for conditions and treatments read `on or after A`, which holds the items
   ongoing at A (the present tense: "on renal replacement therapy", "requiring steroids");
   `within D after A` reads the D after A, which such a text does not state.
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
from fractions import Fraction
from typing import Iterator, Optional

from . import ir as I
from . import units as U
from .diagnostics import Diagnostic
from .verify_text import limits_in_text

_AFTER = re.compile(r"\b(?:after|following|since|thereafter|onwards?|or\s+later)\b", re.IGNORECASE)
_BEFORE = re.compile(r"\b(?:before|prior|previous(?:ly)?|preceding|ago|history|in\s+the\s+(?:past|last)|ha(?:s|ve)\s+had)\b",
                     re.IGNORECASE)
# the present tense of a status: "currently using", "requiring steroids", "On renal replacement therapy"
_PRESENT = re.compile(r"\b(?:current(?:ly)?|concurrent(?:ly)?|ongoing|requir(?:es|ing)|receiving|undergoing)\b|"
                      r"(?:^\s*|\b(?:is|are|being)\s+)on\s+(?!or\b)(?=[a-z])", re.IGNORECASE)
_AFTER_KINDS = ("on_or_after", "within_after")
# conditions and treatments overlap a window: `on or after A` holds those ongoing at A
_OVERLAPPING = ("condition", "treatment")


def _windows(node) -> Iterator[tuple[I.Win, str, str, bool]]:
    """(window, the kind of item it reads, the reading as written, whether it reads only active
    items) for every window of an IR expression, nested filters included."""
    if isinstance(node, I.SelLatest):
        yield node.window, "observation", node.text, False
    elif isinstance(node, I.BObsQuery):
        yield node.window, "observation", node.text, False
    elif isinstance(node, I.BQuery) and node.window is not None:
        yield node.window, node.kind, node.text, node.active
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
    present = _said(_PRESENT, c.quotes)
    out, seen = [], set()
    for w, kind, text, active in _windows(c.body):
        anchor = _anchor_of(w)
        if anchor not in anchors or (w.text, text) in seen:
            continue
        seen.add((w.text, text))
        if w.kind in _AFTER_KINDS and not after:
            if before:
                out.append(Diagnostic(span, f"the quote of '{c.id}' says {before!r} but its logic reads '{text}' "
                                            f"{_win_words(w)}: the window points the other way",
                                      hint=f"read up to the anchor (`on or before {anchor}`, `within D before {anchor}`)"))
            elif kind not in _OVERLAPPING or w.kind == "within_after":
                out.append(Diagnostic(span, f"the quote of '{c.id}' states no time after {anchor}, but its logic reads "
                                            f"'{text}' {_win_words(w)}: eligibility is decided at {anchor}, "
                                            f"before any such {kind} is known",
                                      hint=f"read up to the anchor (`on or before {anchor}`); if the text means after it, "
                                           f"quote the words that say so (\"after\", \"following\", \"since\")"))
        elif w.kind == "on_or_before" and kind in _OVERLAPPING and not active and not before and present:
            out.append(Diagnostic(span, f"the quote of '{c.id}' says {present!r} (at {anchor}) but its logic reads '{text}' "
                                        f"{_win_words(w)}, which holds items that ended at any time before it",
                                  hint=f"read those ongoing at the anchor: `active` (a condition), `on or after {anchor}` "
                                       f"(ongoing at it or later) or `within 0 d before {anchor}` (ongoing or given on its day)"))
        elif w.kind == "on_or_before" and (kind == "observation" or (kind in _OVERLAPPING and not active)):
            # "weight at screening" (a quote), "(a patient on anticoagulants) at enrollment" (a quote,
            # or the note that explains the reading of a treatment or condition): the state at the anchor
            at = _said(re.compile(r"\bat\s+(?:the\s+)?(?:time\s+of\s+(?:the\s+)?)?" + _words_of(anchor) + r"\b(?!\s+or\b)",
                                  re.IGNORECASE), c.quotes if kind == "observation" else c.quotes + c.notes)
            if at:
                what = "a reading of any date up to it" if kind == "observation" else "which holds items that ended at any time before it"
                out.append(Diagnostic(span, f"the text of '{c.id}' says {at!r} but its logic reads '{text}' {_win_words(w)}, "
                                            f"{what}",
                                      hint=f"read it on that day (`within 0 d before {anchor}`) or in the window the text "
                                           f"gives; a value whose date does not matter (a fact of birth) is read with `ever`"))
    return out


def _words_of(name: str) -> str:
    """A pattern for an anchor's or a field's name as prose writes it: first_dose -> "first dose",
    visit1 -> "Visit 1"."""
    parts = [p for p in re.split(r"_|(?<=[A-Za-z])(?=\d)", name) if p]
    return r"[\s_-]*".join(re.escape(p) for p in parts)


def _win_words(w: I.Win) -> str:
    return f"in the window '{w.text}'" if w.text else "after its anchor"


# ---------------------------------------------------------------------- a note's direction

_NOTE_BEFORE = r"(?:before|prior\s+to|up\s+to|until|preceding)"
_NOTE_AFTER = r"(?:after|following|since)"
_DIRECTION = {"on_or_before": "before", "within_before": "before", "on_or_after": "after", "within_after": "after"}


def _note_directions(notes, ref: str) -> dict[str, str]:
    """direction -> the words of the notes that read items before or after ref ("up to
    enrollment", "on or after its start", "screening or later")."""
    name = _words_of(ref)
    the = r"\s+(?:the\s+|its\s+|their\s+|each\s+)?"
    found = {}
    for n in notes:
        for d, word, tail in (("before", _NOTE_BEFORE, r"earlier|before"), ("after", _NOTE_AFTER, r"later|after")):
            m = (re.search(r"\b" + word + the + name + r"\b", n, re.IGNORECASE)
                 or re.search(r"\b" + name + r"\s+or\s+(?:" + tail + r")\b", n, re.IGNORECASE))
            if m and d not in found:
                found[d] = " ".join(m.group(0).split())
    return found


def note_direction_diags(program: I.Program, c: I.CriterionIR, span) -> list[Diagnostic]:
    """A window whose direction from its anchor (or from the item date it is measured from)
    contradicts the one direction the criterion's notes give it: a note explains a reading but
    never vouches for the opposite one."""
    if not c.notes:
        return []
    anchors = set(program.trial.anchors)
    out, seen = [], set()
    for w, _, text, _ in _windows(c.body):
        d = _DIRECTION.get(w.kind)
        anchor = _anchor_of(w)
        ref = anchor if anchor in anchors else (w.at.field if isinstance(w.at, I.DtItem) else None)
        if d is None or ref is None or (w.text, text) in seen:
            continue
        seen.add((w.text, text))
        said = _note_directions(c.notes, ref)
        if len(said) == 1 and d not in said:
            words = next(iter(said.values()))
            out.append(Diagnostic(span, f"the logic of '{c.id}' reads '{text}' {_win_words(w)} but its note says "
                                        f"{words!r}: the window points the other way"))
    return out


def note_window_diags(c: I.CriterionIR, note_sentences, logic, quote_limits, span) -> list[Diagnostic]:
    """A note that reads the text with a window ("the count at Visit 1 (0 days before visit1)")
    names a window of the logic: a window of a note sentence, with its side, that neither the
    logic nor a quote has is a reading the logic no longer does (`within 0 d before visit1`
    changed to `on or before visit1`). Sentences saying `not a criterion` are left out."""
    from .verify import _NOT_A_CRITERION, _same_value

    out = []
    for sen, limits in note_sentences:
        if _NOT_A_CRITERION.search(sen):
            continue
        for n in limits:
            if n.unit not in _TIME_UNITS or not n.side:
                continue
            if any(_same_value(n, l) for l in logic) or any(_same_value(n, q) for q, _ in quote_limits):
                continue
            out.append(Diagnostic(span, f"the note of '{c.id}' reads a window {n.show()!r} ({n.side} its anchor) "
                                        f"that its logic does not have",
                                  hint="give the logic the window the note explains, or correct the note"))
    return out


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


# which clause of the text an alternative of the logic reads: the words of its names
_STOP = {"any", "the", "and", "other", "with", "for", "not"}


def _first_query(node):
    """(names, window) of the first dated reading of an IR expression, in the order written."""
    if isinstance(node, I.BQuery):
        return (node.codes, node.window) if not node.active else None
    if isinstance(node, I.BObsQuery):
        return (node.code,), node.window
    if isinstance(node, I.SelLatest):
        return (node.code,), node.window
    if isinstance(node, tuple):
        for x in node:
            got = _first_query(x)
            if got is not None:
                return got
    elif hasattr(node, "__dataclass_fields__") and not isinstance(node, I.Win):
        for f in node.__dataclass_fields__:
            got = _first_query(getattr(node, f))
            if got is not None:
                return got
    return None


def _or_groups(node, out):
    """The alternatives of every `or` of an IR expression, each as (names, window) of its first
    reading and the alternative itself."""
    if isinstance(node, I.BOr):
        group = [(*q, x) for q, x in ((_first_query(x), x) for x in node.items) if q is not None]
        if len(group) > 1:
            out.append(group)
    if isinstance(node, tuple):
        for x in node:
            _or_groups(x, out)
    elif hasattr(node, "__dataclass_fields__") and not isinstance(node, I.Win):
        for f in node.__dataclass_fields__:
            _or_groups(getattr(node, f), out)
    return out


def _tokens(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def _match(word: str, tok: str) -> bool:
    stem = word[:max(4, len(word) - 2)] if len(word) > 4 else word
    return tok == word or (len(word) > 4 and tok.startswith(stem))


def _clause_score(name: str, seg: str) -> float:
    """How well a name (`active_infection`) is said by a clause: the share of its words the clause
    has, and half a point more when they stand together ("an uncontrolled active infection")."""
    words = [w for w in name.lower().split("_") if len(w) > 2 and w not in _STOP]
    toks = _tokens(seg)
    if not words or not toks:
        return 0.0
    share = sum(any(_match(w, t) for t in toks) for w in words) / len(words)
    together = any(all(_match(w, toks[i + k]) for k, w in enumerate(words)) for i in range(len(toks) - len(words) + 1))
    return share + (0.5 if together and share == 1 else 0.0)


def _clause_of(names, segs) -> Optional[int]:
    """The one clause (index into segs) that says every name best, or None."""
    found = set()
    for name in names:
        scores = [_clause_score(name, s) for s in segs]
        best = max(scores)
        if best < 1 or scores.count(best) > 1:
            continue
        found.add(scores.index(best))
    return found.pop() if len(found) == 1 else None


def _window_limits(seg: str):
    return [l for l, off in limits_in_text(seg)
            if l.unit in _TIME_UNITS and (l.side or _WITHIN.search(seg[max(0, off - 40):off]))]


def _clause_by_limits(program, alt, segs) -> Optional[int]:
    """The one clause that states a limit (other than a time) the alternative compares with
    ("unexplained fever \\>38 ° C" for `any body_temperature ... where value > 38 Cel`), or None."""
    from .verify import _LogicLimits, _same_value

    w = _LogicLimits(program)
    w.bool_(alt)
    mine = [l for l in w.out if l.unit not in _TIME_UNITS]
    found = {k for k, seg in enumerate(segs) for q, _ in limits_in_text(seg)
             if q.unit not in _TIME_UNITS and any(_same_value(q, l) for l in mine)}
    return found.pop() if len(found) == 1 else None


def changed_clause_window_diags(program: I.Program, c: I.CriterionIR, span) -> list[Diagnostic]:
    """An alternative that one clause of the quote names (by the words of its names, or by the
    limit it compares with), read in a window of another clause ("an active infection ...
    within 7 days" read `within 4 wk`)."""
    from .verify import _same_value
    from .verify_text import Limit

    segs = _segments(c.quotes)
    if len(segs) < 2 or not all(_states_window(s) for s in segs):
        return []
    wins = [_window_limits(s) for s in segs]
    out = []
    for group in _or_groups(c.body, []):
        for names, w, alt in group:
            if w is None or not isinstance(w.duration, I.DConst):
                continue
            k = _clause_of(names, segs)
            if k is None:
                k = _clause_by_limits(program, alt, segs)
            if k is None:
                continue
            d = w.duration  # its length as written ("4 wk"), or in days or months (a `let` of a length)
            parts = d.text.split()
            try:
                have = Limit(Fraction(parts[0]), U.TIME_WORDS.get(parts[-1], parts[-1]), None, d.text)
            except (ValueError, IndexError, ZeroDivisionError):
                have = Limit(Fraction(d.amount), "d" if d.kind == "days" else "mo", None, d.text)
            if have.unit not in _TIME_UNITS:
                have = Limit(Fraction(d.amount), "d" if d.kind == "days" else "mo", None, d.text)
            if any(_same_value(have, l) for l in wins[k]) or not any(_same_value(have, l) for ws in wins for l in ws):
                continue  # its own clause's window, or a length no clause states (reported as such)
            out.append(Diagnostic(span, f"the quote of '{c.id}' gives '{', '.join(names)}' the window of its clause "
                                        f"({wins[k][0].show()!r}: {' '.join(segs[k].split())[:60]!r}) but its logic reads "
                                        f"it in '{w.text}', the window of another clause",
                                  hint="give each clause the window the text states for it"))
    return out
