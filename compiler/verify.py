"""`elig verify`: the machine's proof that the compiled rules say what the protocol says.

1. Every quote appears verbatim in the protocol text the trial header names.
2. Every numbered item of the protocol's eligibility list is in the outline (anchored to its
   text), and every item of the outline is cited by a rule or declared `uncomputable`.
3. Every limit in a quote (a number with its unit or multiplier) has its counterpart in the
   compiled logic of the rules that cite it, with the same direction and inclusivity, and every
   limit of a rule's logic appears in its quotes or in a note that explains it.
4. Every window points where the text says, and each clause of a list keeps its own window
   (`compiler.verify_windows`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from fractions import Fraction
from typing import Optional

from . import ir as I
from . import units as U
from .ast import Span
from .diagnostics import Diagnostic


@dataclass(frozen=True)
class CoverageRow:
    ref: str
    status: str  # "encoded" | "uncomputable" | "heading" | "not covered"
    rules: tuple[str, ...]
    reason: str


# Limits in protocol text, the sense of a sentence and the numbered items are read by verify_text.
from .verify_text import Limit, inverted_at, item_markers, limits_in_text, whichever_in  # noqa: E402
from .verify_windows import changed_clause_window_diags, clause_window_diags, direction_diags, note_direction_diags, note_window_diags  # noqa: E402


# ---------------------------------------------------------------------- limits in compiled logic


def _split_text(text: str) -> tuple[Fraction, str]:
    parts = text.strip().split(None, 1)
    try:
        value = Fraction(parts[0])
    except (ValueError, ZeroDivisionError):
        return Fraction(0), "?"
    return value, (parts[1] if len(parts) > 1 else "")


def _flip(op: Optional[str], neg: bool) -> Optional[str]:
    return _COMPLEMENT.get(op, op) if (neg and op) else op


# a date comparison `X op A - D` read as the time from X to A compared with D
_MIRROR = {"<=": ">=", "<": ">", ">=": "<=", ">": "<"}


def _win_text(w) -> str:
    return w.text if w is not None and w.duration is not None else ""


class _LogicLimits:
    """The limits of a criterion's compiled logic, each with the sense it has for the criterion:
    a comparison under `not`, `unless`, `no` or the condition of `if ... then` counts reversed."""

    def __init__(self, program: I.Program):
        self.derived = {d.name: d for d in program.derived}
        self.out: list[Limit] = []
        self.extremes: list[tuple[str, list, list]] = []
        # (reads a window of some length, only active items, text, the window as written)
        self.queries: list[tuple[bool, bool, str, str]] = []
        self.alternatives: list[list[tuple[bool, bool, str, str]]] = []  # the first reading of each alternative of an `or`
        self.seen_derived: set = set()

    def add(self, value, unit, op, text, side=None):
        self.out.append(Limit(Fraction(value), unit, op, text, side))

    def bool_(self, b, neg=False):
        if isinstance(b, (I.BAnd, I.BOr)) and self.number_set(b, neg):
            return
        if isinstance(b, I.BOr):
            # the dated readings of a list of alternatives ("any of the following in the 6 months ..."),
            # each alternative's own readings: the first query of an `and` counts as the alternative's
            group = []
            for x in b.items:
                n0 = len(self.queries)
                self.bool_(x, neg)
                if len(self.queries) > n0:
                    group.append(self.queries[n0])
            if len(group) > 1:
                self.alternatives.append(group)
        elif isinstance(b, I.BAnd):
            for x in b.items:
                self.bool_(x, neg)
        elif isinstance(b, I.BNot):
            self.bool_(b.operand, not neg)
        elif isinstance(b, I.BImplies):
            self.bool_(b.cond, not neg)
            self.bool_(b.then, neg)
        elif isinstance(b, I.BIf):
            self.bool_(b.cond, neg)
            self.bool_(b.then, neg)
            self.bool_(b.otherwise, neg)
        elif isinstance(b, I.BObsCmp):
            self.sel(b.sel)
            self.lim(b.limit, _flip(b.op, neg))
        elif isinstance(b, I.BObsBetween):
            self.sel(b.sel)
            self.lim(b.low, _flip(">=", neg))
            self.lim(b.high, _flip("<=", neg))
        elif isinstance(b, I.BObsIs):
            self.sel(b.sel)
        elif isinstance(b, I.BNumCmp):
            left, op, right = b.left, b.op, b.right
            if isinstance(left, I.NConst) and not isinstance(right, I.NConst):
                left, right, op = right, left, _MIRROR.get(op, op)
            self.num(left)
            if isinstance(right, I.NConst):
                v, u = _split_text(right.text) if right.text else (right.value, "")
                unit = "" if not u else u
                eop = _flip(op, neg)
                self.add(v, unit, eop, f"{eop} {right.text or right.value}")
            else:
                self.num(right)
        elif isinstance(b, I.BDateCmp):
            left, op, right = b.left, b.op, b.right
            if isinstance(left, I.DtShift) and not isinstance(right, I.DtShift):
                left, right, op = right, left, _MIRROR.get(op, op)
            self.date(left)
            if isinstance(right, I.DtShift):
                # X op A - D: the time from X to A against D; X op A + D: from A to X
                self.date(right.date)
                if right.sign < 0:
                    self.dur(right.duration, _flip(_MIRROR.get(op, op), neg), _date_side(left, "before"))
                else:
                    self.dur(right.duration, _flip(op, neg), _date_side(left, "after"))
            else:
                self.date(right)
        elif isinstance(b, I.BQuery):
            self.queries.append((_query_windowed(b), b.active, b.text, _win_text(b.window)))
            if b.count is not None:
                self.count(b, neg)
            if b.window is not None:
                self.win(b.window)
            if b.pred is not None:
                self.bool_(b.pred, neg ^ (b.quantifier == "no") ^ bool(b.negate_pred))
        elif getattr(I, "BRecorded", None) is not None and isinstance(b, I.BRecorded):
            if b.kind == "bool":
                self.bool_(b.operand, neg)
            elif b.kind == "num":
                self.num(b.operand)
            else:
                self.date(b.operand)
        elif isinstance(b, I.BObsQuery):
            self.queries.append((b.window.duration is not None, False, b.text, _win_text(b.window)))
            self.win(b.window)
            self.bool_(b.pred, neg ^ (b.quantifier == "no"))

    def sel(self, s):
        if isinstance(s, I.SelLatest):
            self.queries.append((s.window.duration is not None, False, s.text, _win_text(s.window)))
            self.win(s.window)
            if s.pred is not None:
                self.bool_(s.pred)

    def lim(self, l, op):
        if isinstance(l, I.LConst):
            v, u = _split_text(l.text)
            self.add(v, U.TIME_WORDS.get(u, u), op, f"{op} {l.text}")
        elif isinstance(l, I.LRef):
            self.add(l.multiple, l.which.upper(), op, f"{op} {l.text}")
        elif isinstance(l, I.LIf):
            self.bool_(l.cond)
            self.lim(l.then, op)
            self.lim(l.otherwise, op)

    def win(self, w: I.Win):
        if w.duration is not None:
            side = {"within_before": "before", "within_after": "after"}.get(w.kind)
            self.dur(w.duration, None, side)
        for d in (getattr(w, "at", None), getattr(w, "until", None)):  # a window measured from a computed date
            if d is not None:
                self.date(d)

    def dur(self, d, op=None, side=None):
        if isinstance(d, I.DConst):
            v, u = _split_text(d.text)
            if u:
                self.add(v, U.TIME_WORDS.get(u, u), op, d.text, side)
            else:
                self.add(d.amount, "d" if d.kind == "days" else "mo", op, d.text, side)
        elif isinstance(d, I.DHalfLife):
            self.add(d.multiple, "half-life", op, d.text, side)
        elif isinstance(d, I.DExtreme):
            n0 = len(self.out)
            self.dur(d.left, op, side)
            n1 = len(self.out)
            self.dur(d.right, op, side)
            self.extremes.append((d.which, self.out[n0:n1], self.out[n1:]))
        elif isinstance(d, I.DIf):
            self.bool_(d.cond)
            self.dur(d.then, op, side)
            self.dur(d.otherwise, op, side)

    def num(self, n):
        if isinstance(n, I.NObs):
            self.sel(n.sel)
        elif isinstance(n, I.NArith):
            self.num(n.left)
            self.num(n.right)
        elif isinstance(n, I.NIf):
            self.bool_(n.cond)
            self.num(n.then)
            self.num(n.otherwise)
        elif isinstance(n, I.NScale):
            self.num(n.operand)
        elif isinstance(n, I.NDerived) and n.name not in self.seen_derived:
            # the windows a derived value reads are part of the logic; its coefficients are not limits
            self.seen_derived.add(n.name)
            d = self.derived.get(n.name)
            if d is not None:
                kept = list(self.queries)  # a derived value's own readings are its definition's, not the quote's
                self.num(d.formula)
                self.queries = kept

    def date(self, d):
        if isinstance(d, I.DtShift):
            self.date(d.date)
            self.dur(d.duration)

    # -- the constructs of the grown language (counts, numbers in sets)

    def count(self, b, neg):
        """`at least N X` / `at most N X`: the count of items is a limit on a whole-number scale
        ("at least two prior therapies", "more than 3 brain metastases" = `not (at most 3 ...)`)."""
        op = _COUNT_OPS[b.quantifier]
        self.add(b.count, "", _flip(op, neg), f"{_OP_WORDS[op]} {b.count} {b.text}")

    def number_set(self, b, neg) -> bool:
        """`X in {0, 1}` (or `not in`) of consecutive whole numbers: the closed range the text
        states as "0 or 1"; a set of other numbers keeps one `=` limit per member."""
        got = _consecutive_set(b)
        if got is None:
            return False
        subject, low, high, negated = got
        if isinstance(subject, (I.SelLatest, I.SelItem)):
            self.sel(subject)
        else:
            self.num(subject)
        n = neg ^ negated
        self.add(low, "", _flip(">=", n), f"{_flip('>=', n)} {low}")
        self.add(high, "", _flip("<=", n), f"{_flip('<=', n)} {high}")
        return True


_COUNT_OPS = {"at_least": ">=", "at_most": "<="}


def _set_member(x):
    """(subject, value, op) of one comparison of a lowered set, or None."""
    if isinstance(x, I.BObsCmp) and isinstance(x.limit, I.LConst):
        v, u = _split_text(x.limit.text)
        return (x.sel, v, x.op) if u == "" else None
    if isinstance(x, I.BNumCmp) and isinstance(x.right, I.NConst) and x.unit in ("", "1"):
        return (x.left, x.right.value, x.op)
    return None


def _consecutive_set(b):
    """A set of two or more consecutive whole numbers tested on one subject, as lowered:
    `or` of `=` (in) or `and` of `!=` (not in). (subject, low, high, negated) or None."""
    want = "=" if isinstance(b, I.BOr) else "!="
    members = [_set_member(x) for x in b.items]
    if len(members) < 2 or any(m is None or m[2] != want for m in members):
        return None
    if any(m[0] != members[0][0] for m in members):
        return None
    values = sorted({m[1] for m in members})
    if any(v.denominator != 1 for v in values) or len(values) < 2:
        return None
    if values != [values[0] + k for k in range(len(values))]:
        return None
    return members[0][0], values[0], values[-1], want == "!="


def _date_side(left, side: str):
    """The side of a date comparison's window: an item's own date compared with a shifted
    anchor (`date <= first_dose - 4 wk`) is said from either end ("4 weeks before first dose",
    "4 weeks after surgery"), so its side is left to the comparison's direction."""
    return None if isinstance(left, (I.DtItem, I.DtAttr)) else side


def _reads_dates_of(node, var: str) -> bool:
    """Whether an IR expression reads a date of the item bound to var (its onset, end, date or a
    date attribute), directly or as the reference of a nested query's window."""
    if isinstance(node, (I.DtItem, I.DtAttr)):
        return node.var == var
    if isinstance(node, tuple):
        return any(_reads_dates_of(x, var) for x in node)
    if hasattr(node, "__dataclass_fields__"):
        return any(_reads_dates_of(getattr(node, f), var) for f in node.__dataclass_fields__)
    return False


def _query_windowed(b) -> bool:
    """A query reads items in a window: its own, or one its filter measures from the item's own
    dates (`any A where (any B within 48 h after onset)`, `every surgery where date <= X - 4 wk`)."""
    if b.window is not None and b.window.duration is not None:
        return True
    return b.pred is not None and _reads_dates_of(b.pred, b.var)


def _logic(program: I.Program, c: I.CriterionIR):
    w = _LogicLimits(program)
    w.bool_(c.body)
    out = []
    for l in w.out:
        if l not in out:
            out.append(l)
    return out, w.extremes, w.alternatives


# ---------------------------------------------------------------------- matching

_COMPLEMENT = {">=": "<", "<": ">=", "<=": ">", ">": "<=", "=": "!=", "!=": "="}


def _canon(l: Limit) -> Limit:
    """A whole-number scale (a grade, a count, a score) says > 1 and >= 2 alike: strict limits on
    such a scale are made inclusive so that both spellings match."""
    if l.unit in ("", "grade") and l.value.denominator == 1 and l.op in (">", "<"):
        v = l.value + 1 if l.op == ">" else l.value - 1
        return Limit(v, l.unit, l.op + "=", l.text, l.side)
    return l


def _same_value(a: Limit, b: Limit) -> bool:
    a, b = _canon(a), _canon(b)
    if a.unit == b.unit or {a.unit, b.unit} == {"", "grade"}:
        return a.value == b.value
    days = {"d": Fraction(1), "wk": Fraction(7), "h": Fraction(1, 24)}
    if a.unit in days and b.unit in days:
        return a.value * days[a.unit] == b.value * days[b.unit]
    cal = {"mo": 1, "a": 12}
    if a.unit in cal and b.unit in cal:
        return a.value * cal[a.unit] == b.value * cal[b.unit]
    if {a.unit, b.unit} & {"", "ULN", "LLN", "LLOQ", "half-life", "grade"}:
        return False
    try:
        ok = U.check_unit(a.unit) is None and U.check_unit(b.unit) is None
        conv = U.conversion(a.unit, b.unit) if ok else None
    except Exception:  # a unit read from prose that the registry cannot place
        return False
    return conv is not None and conv.apply(a.value) == b.value


def _same_direction(a: Limit, b: Limit) -> bool:
    """The same boundary on the same side: the same comparison (once whole-number scales are made
    inclusive) and, for a window, the same side of its anchor. Either limit may leave it unsaid."""
    if a.side and b.side and a.side != b.side:
        return False
    a, b = _canon(a), _canon(b)
    if a.op is None or b.op is None:
        return True
    return a.op == b.op


_SENTENCE = re.compile(r"(?<=[.])\s+|\n")
_NOT_A_CRITERION = re.compile(r"\bnot\s+a\s+criterion\b", re.IGNORECASE)


def _sense(text: str) -> list[Limit]:
    """The limits of a quote or note sentence, each in the sense it has for the criterion
    (reversed after an exception: "may be eligible if ... ≥ 350" states the criterion's < 350)."""
    out = []
    for l, off in limits_in_text(text):
        l = _range_low_op(text, _within_op(text, l, off), off)
        if l.op and inverted_at(text, off):
            l = Limit(l.value, l.unit, _COMPLEMENT[l.op], l.text, l.side)
        out.append(l)
    return out


_WITHIN = re.compile(r"\b(?:within|in|during)(?:\s+the\s+(?:last|past|previous|preceding))?\s*$", re.IGNORECASE)


def _within_op(text: str, l: Limit, off: int) -> Limit:
    """"within 12 months (before X)": the time between the item and X is at most 12 months, which
    is what a date comparison (`onset >= screening - 12 mo`) says with its comparator. (A window
    of the logic has no comparator and matches it either way.)"""
    if l.op is None and l.unit in ("h", "d", "wk", "mo", "a") and _WITHIN.search(text[max(0, off - 40):off]):
        start = max([m.end() for m in _SENTENCE_END_RE.finditer(text, 0, off)] or [0])
        if _WITHOUT.search(text, start, off):
            # "without complete remission within the last 5 years": whether the remission must
            # start within the window or last through it is the reading's, not the text's
            return l
        return Limit(l.value, l.unit, "<=", l.text, l.side)
    return l


_SENTENCE_END_RE = re.compile(r"\.(?=\s|$)|\n|;")
_WITHOUT = re.compile(r"\bwithout\b", re.IGNORECASE)


_TO_NEXT = re.compile(r"\s*to\s+(?:\\?<|≤|≥|>|\d)")


def _range_low_op(text: str, l: Limit, off: int) -> Limit:
    """"0 days to < 14 days of age": the low end of "A to B" is included."""
    if l.op is not None:
        return l
    at = text.find(l.text, off)
    if at >= 0 and _TO_NEXT.match(text, at + len(l.text)):
        return Limit(l.value, l.unit, ">=", l.text, l.side)
    return l


# "within the specified period prior to Visit 1: ... a cutaneous malignancy; 180 days": a quote
# that states a window's side without its length gives it to the lengths of the other quotes
_PERIOD_SIDE = re.compile(r"\bwithin\s+the\s+(?:specified|following|indicated|listed)\s+(?:time\s+)?periods?\s+"
                          r"(?P<w>prior\s+to|before|preceding|after|following)\b", re.IGNORECASE)


def _period_sides(quotes, quote_limits):
    """The limits of a criterion's quotes, a duration with no side taking the side another of its
    quotes states for "the specified period"."""
    sides = {("after" if m["w"].lower() in ("after", "following") else "before")
             for q in quotes for m in _PERIOD_SIDE.finditer(q)}
    if len(sides) != 1:
        return quote_limits
    side = sides.pop()
    return [(Limit(l.value, l.unit, l.op, l.text, side) if l.side is None and l.unit in ("h", "d", "wk", "mo", "a") else l, span)
            for l, span in quote_limits]


def _plain_number_in(text: str, value: Fraction) -> bool:
    s = str(value.numerator) if value.denominator == 1 else _dec(value)
    return re.search(r"(?<![\w.])" + re.escape(s) + r"(?![\w]|\.\d)", text) is not None


def _dec(v: Fraction) -> str:
    return ("%.6f" % float(v)).rstrip("0").rstrip(".")


def verify_program(program: I.Program, protocol_text: Optional[str], protocol_path: str,
                   sources: dict) -> tuple[list[Diagnostic], list[CoverageRow]]:
    diags: list[Diagnostic] = []
    t = program.trial
    if protocol_text is None:
        diags.append(Diagnostic(t.span, f"cannot read the protocol text {t.protocol!r} that the trial header names"))
        return diags, []
    sources[protocol_path] = protocol_text

    # 1. quotes verbatim (a run of white space matches any run: a quote may cross a line break)
    flat = _flat(protocol_text)
    for c in program.criteria:
        for q, span in zip(c.quotes, c.quote_spans):
            if _flat(q) not in flat:
                diags.append(Diagnostic(span, f"the quote of '{c.id}' does not appear verbatim in {t.protocol}",
                                        hint=_closest_hint(q, protocol_text)))

    # 2. outline and coverage
    rows = _coverage(program, protocol_text, protocol_path, diags)

    # 3. limits
    for c in program.criteria:
        diags.extend(_check_limits(program, c))
    return sorted(diags, key=Diagnostic.sort_key), rows


def _check_limits(program: I.Program, c: I.CriterionIR) -> list[Diagnostic]:
    """Every limit of the quotes has its counterpart, same direction, in the logic, and back.

    A note may explain a reading of a quote's limit (\"1.5 months\" is read as 45 days: the
    note's sentence names the quote's limit and the logic's); a note sentence saying `not a
    criterion` declares the limits it names out of the logic, with its reason. A note never
    vouches for a direction: a note limit that the logic contradicts is an error too.
    """
    diags = []
    quote_limits = _period_sides(c.quotes, [(l, span) for q, span in zip(c.quotes, c.quote_spans) for l in _sense(q)])
    sentences = [sen for n in c.notes for sen in _SENTENCE.split(n) if sen.strip()]
    note_sent = [(sen, _sense(sen)) for sen in sentences]
    note_limits = [l for _, ls in note_sent for l in ls]
    notes = " ".join(c.notes)
    logic, extremes, alternatives = _logic(program, c)
    span_body = c.body_span or c.span
    reported = set()

    def excused_by_note(ql: Limit, span) -> bool:
        for sen, ls in note_sent:
            if not any(_same_value(ql, n) for n in ls):
                continue
            if _NOT_A_CRITERION.search(sen):
                return True
            # a reading: the same sentence names the limit of the logic it is read as, one that no
            # other quote states (a note repeating two quotes' limits explains neither)
            others = [q for q, sp in quote_limits if sp != span]
            if any(not _same_value(ql, n) and not any(_same_value(n, q) for q in others)
                   and any(_same_value(n, l) and _same_direction(n, l) for l in logic) for n in ls):
                return True
        return False

    for ql, span in quote_limits:
        same = [l for l in logic if _same_value(ql, l)]
        if any(_same_direction(ql, l) for l in same):
            continue
        if same:
            reported.add(ql)
            diags.append(Diagnostic(span, f"the quote of '{c.id}' says {ql.show()!r} ({_words(ql)}) but its logic says "
                                          f"{', '.join(repr(l.show()) + ' (' + _words(l) + ')' for l in same)}: direction or inclusivity differs"))
        elif not excused_by_note(ql, span):
            have = ", ".join(l.show() for l in logic) or "no limits"
            diags.append(Diagnostic(span, f"limit {ql.show()!r} in the quote of '{c.id}' has no counterpart in its logic (which has: {have})",
                                    hint="encode it; or explain its reading in a note sentence that names it and the logic's limit; "
                                         "or, if it is no criterion, say so in a note: 'not a criterion: ...' with the reason"))
    # a bare number of the logic may be named in words elsewhere, but not by a limit of another value
    quote_text = _unlimited(" ".join(c.quotes))
    notes = _unlimited(notes)
    for l in logic:
        same_q = [q for q, _ in quote_limits if _same_value(q, l)]
        if any(_same_direction(q, l) for q in same_q):
            continue
        if same_q:
            if not any(q in reported for q in same_q):
                diags.append(Diagnostic(span_body, f"the logic of '{c.id}' says {l.show()!r} ({_words(l)}) but its quote says "
                                                   f"{', '.join(repr(q.show()) + ' (' + _words(q) + ')' for q in same_q)}: direction or inclusivity differs"))
            continue
        same_n = [n for n in note_limits if _same_value(n, l)]
        if same_n:
            if not any(_same_direction(n, l) for n in same_n):
                diags.append(Diagnostic(span_body, f"the logic of '{c.id}' says {l.show()!r} ({_words(l)}) but its note says "
                                                   f"{same_n[0].show()!r} ({_words(same_n[0])}): a note cannot vouch for a limit's direction"))
            continue
        if l.unit in ("", "grade") and (_plain_number_in(quote_text, l.value) or _plain_number_in(notes, l.value)):
            continue
        diags.append(Diagnostic(span_body, f"limit {l.show()!r} in the logic of '{c.id}' appears neither in its quotes nor in a note",
                                hint="cite the protocol text that states it, or explain the reading in a note"))
    # a note that contradicts the logic's direction or window side is an error, even where a quote agrees
    for l in logic:
        same_n = [n for n in note_limits if _same_value(n, l) and (n.op or n.side)]
        if same_n and not any(_same_direction(n, l) for n in same_n) and not any(
                d.message.startswith(f"the logic of '{c.id}' says {l.show()!r}") for d in diags):
            diags.append(Diagnostic(span_body, f"the logic of '{c.id}' says {l.show()!r} ({_words(l)}) but its note says "
                                               f"{same_n[0].show()!r} ({_words(same_n[0])}): a note cannot vouch for a limit's direction"))
    # the quote states a window and every alternative of an `or` but one reads its items in that
    # same window ("any of the following in the 6 months prior to screening"): the one left reads
    # items of any date (alternatives over active items only are left out)
    text_windows = [q for q, _ in quote_limits if q.side and q.unit in ("h", "d", "wk", "mo", "a")]
    if text_windows and any(l.side and any(_same_value(q, l) for q in text_windows) for l in logic):
        for group in alternatives:
            dated = [g for g in group if not g[1]]
            bare = [g for g in dated if not g[0]]
            wins = {g[3] for g in dated if g[0]}
            if len(bare) != 1 or len(dated) < 2 or len(wins) != 1:
                continue
            for _, _, text, _ in bare:
                diags.append(Diagnostic(span_body, f"the quote of '{c.id}' states a window ({text_windows[0].show()!r}) "
                                                   f"but '{text}' reads items of any date",
                                        hint="give it the window the text states, or read only active items"))
    # the direction of each window from its anchor, and the window of each clause of a list
    diags.extend(direction_diags(program, c, span_body))
    diags.extend(note_direction_diags(program, c, span_body))
    diags.extend(note_window_diags(c, note_sent, logic, quote_limits, span_body))
    diags.extend(clause_window_diags(c, alternatives, span_body))
    diags.extend(changed_clause_window_diags(program, c, span_body))
    # `shorter of` / `longer of` against "whichever is shorter / longer"
    for which, left, right in extremes:
        for q, span in zip(c.quotes, c.quote_spans):
            said = whichever_in(q)
            if not said:
                continue
            qls = [l for l, _ in limits_in_text(q)]
            if any(_same_value(a, x) for a in left for x in qls) and any(_same_value(b, x) for b in right for x in qls):
                if all(w != which for w, _ in said):
                    diags.append(Diagnostic(span_body, f"the logic of '{c.id}' takes the {which} of "
                                                       f"{left[0].show() if left else '?'} and {right[0].show() if right else '?'}, "
                                                       f"but its quote says 'whichever is {said[0][0]}'"))
                break
    return diags


def _unlimited(text: str) -> str:
    """text without the limits it states (their numbers are not plain numbers)."""
    for l, _ in limits_in_text(text):
        text = text.replace(l.text, " ")
    return text


_OP_WORDS = {">=": "at least", ">": "more than", "<=": "at most", "<": "less than", "=": "equal to", "!=": "not equal to"}


def _words(l: Limit) -> str:
    parts = [_OP_WORDS.get(l.op, "no direction")] if l.op or not l.side else []
    if l.side:
        parts.append(f"{l.side} its anchor")
    return ", ".join(parts)


def _flat(text: str) -> str:
    return " ".join(text.split())


def _closest_hint(q: str, text: str) -> Optional[str]:
    words = q.split()
    best = 0
    for n in range(len(words), 0, -1):
        if " ".join(words[:n]) in text:
            best = n
            break
    if best and best < len(words):
        return f"the text matches up to {' '.join(words[max(0, best - 3):best])!r}, then differs at {words[best]!r}"
    return None


def _position(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, col


def _coverage(program, protocol_text, protocol_path, diags) -> list[CoverageRow]:
    outline = program.outline
    if not outline:
        diags.append(Diagnostic(program.trial.span, "no outline: declare the protocol's numbered items (outline { item I1 \"1. ...\" ... })"))
        return []
    starts = {}
    for item in outline:
        n = protocol_text.count(item.anchor)
        if n == 0:
            diags.append(Diagnostic(item.span, f"outline item {item.ref}: {item.anchor!r} is not in {program.trial.protocol}"))
        elif n > 1:
            diags.append(Diagnostic(item.span, f"outline item {item.ref}: {item.anchor!r} occurs {n} times in {program.trial.protocol}; quote more of it"))
        else:
            starts[protocol_text.index(item.anchor)] = item
    # the protocol's items, in every layout (1. 1) 1\. (a) a) a. I. ii) bullets, nested lists):
    # an outline anchor starts at an item's marker or at its text
    markers = item_markers(protocol_text)
    item_at: dict[int, object] = {}
    for mk in markers:
        item = starts.get(mk.start) or starts.get(mk.text_start)
        if item is None:
            line, col = _position(protocol_text, mk.start)
            what = "bulleted item" if mk.bullet else "numbered item"
            text = " ".join(protocol_text[mk.text_start:mk.text_start + 40].split())
            diags.append(Diagnostic(Span(protocol_path, line, col, line, col + len(mk.mark)),
                                    f"{what} {mk.mark!r} of the protocol ({text!r}) is not in the outline",
                                    hint="add it to the outline: item REF \"<the text it starts with>\""))
        else:
            item_at[mk.start] = item
    _clauses(program, protocol_text, protocol_path, markers, item_at, starts, diags)
    cited: dict[str, list[str]] = {}
    for c in program.criteria:
        for r in c.refs:
            cited.setdefault(r, []).append(c.id)
    unc = {u.ref: u for u in program.uncomputable}
    refs = {item.ref for item in outline}
    for c in program.criteria:
        for r in c.refs:
            if r not in refs:
                diags.append(Diagnostic(c.ref_span or c.span, f"ref {r} of '{c.id}' is not an item of the protocol's outline"))
    for u in program.uncomputable:
        if u.ref not in refs:
            diags.append(Diagnostic(u.span, f"uncomputable {u.ref} is not an item of the protocol's outline"))
    rows = []
    for item in outline:
        rules = tuple(cited.get(item.ref, ()))
        if rules:
            rows.append(CoverageRow(item.ref, "encoded", rules, ""))
        elif item.ref in unc:
            rows.append(CoverageRow(item.ref, "uncomputable", (), unc[item.ref].reason))
        elif item.heading:
            rows.append(CoverageRow(item.ref, "heading", (), "its numbered sub-items carry the criteria"))
        else:
            rows.append(CoverageRow(item.ref, "not covered", (), ""))
            diags.append(Diagnostic(item.span, f"{item.ref} is not encoded by any rule",
                                    hint=f"write a criterion with `ref {item.ref}`, or declare `uncomputable {item.ref} \"why\"`"))
    return rows


@lru_cache(maxsize=4)
def _flat_index(protocol_text: str) -> tuple[str, tuple[int, ...]]:
    """The protocol text with each run of white space made one space (leading white space
    dropped), and the offset in protocol_text of each character of it."""
    flat_chars, index = [], []
    prev_space = True
    for i, ch in enumerate(protocol_text):
        if ch.isspace():
            if not prev_space:
                flat_chars.append(" ")
                index.append(i)
            prev_space = True
        else:
            flat_chars.append(ch)
            index.append(i)
            prev_space = False
    return "".join(flat_chars), tuple(index)


@lru_cache(maxsize=4096)
def _quote_ranges(q: str, protocol_text: str) -> tuple[tuple[int, int], ...]:
    """Every place of one quote in the protocol text (computed once per quote and text: verify
    looks each quote up again for every rule that cites an item, and the mutation score for
    every mutant)."""
    fq = _flat(q)
    if not fq:
        return ()
    flat, index = _flat_index(protocol_text)
    out = []
    at = flat.find(fq)
    while at >= 0:
        out.append((index[at], index[at + len(fq) - 1] + 1))
        at = flat.find(fq, at + 1)
    return tuple(out)


def _own_quoted_ranges(program, protocol_text: str, bounds, item_at, starts) -> list[tuple[int, int]]:
    """Where in the protocol text the rules' quotes are (a run of white space matches any run); a
    quote whose text occurs more than once ("weight at screening ≥ 40 kg" under two cohorts) covers only its occurrences inside the
    items its rule cites, so that deleting one of the two rules leaves its item's limit unquoted."""
    segments: dict[str, list[tuple[int, int]]] = {}
    for k, start in enumerate(bounds):
        item = item_at.get(start) or starts.get(start)
        if item is not None:
            end = bounds[k + 1] if k + 1 < len(bounds) else len(protocol_text)
            segments.setdefault(item.ref, []).append((start, end))
    out = []
    for c in program.criteria:
        own = [seg for r in c.refs for seg in segments.get(r, ())]
        for q in c.quotes:
            found = list(_quote_ranges(q, protocol_text))
            if len(found) > 1 and own:
                mine = [(a, b) for a, b in found if any(s <= a < e for s, e in own)]
                found = mine or found
            out.extend(found)
    return out


def _clauses(program, protocol_text, protocol_path, markers, item_at, starts, diags) -> None:
    """Every limit an item's text states is quoted by some rule (or the item is declared
    uncomputable): deleting one of several rules under one item leaves its limit unquoted."""
    unc = {u.ref for u in program.uncomputable}
    bounds = sorted({mk.start for mk in markers} | set(starts))
    quoted = _own_quoted_ranges(program, protocol_text, bounds, item_at, starts)
    for k, start in enumerate(bounds):
        item = item_at.get(start) or starts.get(start)
        if item is None or item.ref in unc:
            continue
        end = bounds[k + 1] if k + 1 < len(bounds) else len(protocol_text)
        seg = protocol_text[start:end]
        for l, off in limits_in_text(seg):
            pos = start + off
            if any(a <= pos < b for a, b in quoted):
                continue
            line, col = _position(protocol_text, pos)
            diags.append(Diagnostic(Span(protocol_path, line, col, line, col + len(l.text)),
                                    f"limit {l.show()!r} of {item.ref} is quoted by no rule",
                                    hint="quote it in the rule that encodes it; if it is no criterion, quote it and say why "
                                         "in a note: 'not a criterion: ...'"))


def format_coverage(rows: list[CoverageRow]) -> str:
    lines = [f"{'ref':<6} {'status':<13} rules / reason"]
    for r in rows:
        detail = ", ".join(r.rules) if r.rules else r.reason
        lines.append(f"{r.ref:<6} {r.status:<13} {detail}")
    n = sum(1 for r in rows if r.status in ("encoded", "uncomputable"))
    total = sum(1 for r in rows if r.status != "heading")
    lines.append(f"{n} of {total} items encoded or declared not computable")
    return "\n".join(lines)
