"""`elig verify`: the machine's proof that the compiled rules say what the protocol says.

1. Every quote appears verbatim in the protocol text the trial header names.
2. Every numbered item of the protocol's eligibility list is in the outline (anchored to its
   text), and every item of the outline is cited by a rule or declared `uncomputable`.
3. Every limit in a quote (a number with its unit or multiplier) has its counterpart in the
   compiled logic of the rules that cite it, with the same direction and inclusivity, and every
   limit of a rule's logic appears in its quotes or in a note that explains it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Limit:
    value: Fraction
    unit: str  # normalised: UCUM code, "ULN", "half-life", "grade", or "" for a plain number
    op: Optional[str]  # ">=", "<=", ">", "<", or None (a window length, a bare number)
    text: str

    def show(self) -> str:
        return self.text


# ---------------------------------------------------------------------- limits in protocol text

_OPS = {"≥": ">=", "≤": "<=", ">": ">", "<": "<", "\\>": ">", "\\<": "<", ">=": ">=", "<=": "<=",
        "greater than": ">", "more than": ">", "no more than": "<=", "less than": "<", "at least": ">=",
        "at most": "<="}
_OP_RE = r"(?P<op>≥|≤|\\>|\\<|>=|<=|>|<|no more than|greater than|more than|less than|at least|at most)?\s*"
_UNIT_RE = (
    r"(?P<unit>\s*[×x]\s*(?:ULN|LLN|LLOQ)|\s*[×x]\s*10\\?\^(?P<exp>\d+)\s*/\s*(?:L|µL|uL)|"
    r"\s*(?:g|mg|µg|ug|ng|pg)/(?:dL|L|mL)\b|\s*(?:mol|mmol|µmol|umol|nmol)/L\b|\s*(?:m|meq|mEq)/L\b|"
    r"\s*(?:IU|U|mU|kIU)/(?:L|mL)\b|\s*mL/min(?:/1\.73\s*m²|/1\.73\s*m2)?|\s*kg/m[²2]|\s*kg\b|\s*cm\b|"
    r"\s*ms\b|\s*%|\s*mmHg|\s*kPa\b|\s*bpm\b|"
    r"\s*°\s*[CF]\b|\s*cells\s*/\s*[µu]L|\s*mg\b|\s*hours?\b|\s*days?\b|\s*weeks?\b|\s*months?\b|\s*years?\b|"
    r"\s*half-lives\b)"
)
_NUM_RE = r"(?<![\w.\-])(?P<num>\d+(?:\.\d+)?)"
_LIMIT = re.compile(_OP_RE + _NUM_RE + _UNIT_RE, re.IGNORECASE)
_GRADE = re.compile(_OP_RE + r"grade\s*(?P<num>\d+)", re.IGNORECASE)
_RANGE = re.compile(r"(?<![\w.])(?P<lo>\d+)\s*-\s*(?P<hi>\d+)\s*points", re.IGNORECASE)
_OR_MORE = re.compile(r"^\s*(or older|or more|or greater)", re.IGNORECASE)

_UNIT_WORDS = {"day": "d", "days": "d", "week": "wk", "weeks": "wk", "month": "mo", "months": "mo", "year": "a",
               "years": "a", "hour": "h", "hours": "h", "half-lives": "half-life", "mmhg": "mm[Hg]", "bpm": "/min",
               "kg/m²": "kg/m2", "µmol/l": "umol/L", "µg/l": "ug/L", "µg/ml": "ug/mL", "meq/l": "meq/L"}


def _norm_unit(raw: str, exp: Optional[str]) -> str:
    u = re.sub(r"\s+", "", raw)
    if "ULN" in u.upper():
        return "ULN"
    if exp is not None:
        return f"10*{exp}/L"
    if u.startswith("°"):
        return "Cel" if u.endswith("C") else "[degF]"
    if u.lower().startswith("cells"):
        return "/uL"
    m = re.fullmatch(r"mL/min/1\.73m[²2]", u)
    if m:
        return "mL/min/{1.73_m2}"
    if u.lower() in _UNIT_WORDS:
        return _UNIT_WORDS[u.lower()]
    alias = U.ALIASES.get(u)
    if isinstance(alias, tuple):
        return alias[0]
    return alias or u


def limits_in_text(text: str) -> list[tuple[Limit, int]]:
    """The limits a sentence of protocol text states, with their offsets."""
    out = []
    taken = []
    for m in _RANGE.finditer(text):
        out.append((Limit(Fraction(m["lo"]), "", ">=", f"{m['lo']} to {m['hi']}"), m.start()))
        out.append((Limit(Fraction(m["hi"]), "", "<=", f"{m['lo']} to {m['hi']}"), m.start()))
        taken.append((m.start(), m.end()))
    for m in _LIMIT.finditer(text):
        if any(a <= m.start("num") < b for a, b in taken):
            continue
        op = _OPS.get((m["op"] or "").lower()) if m["op"] else None
        if op is None and _OR_MORE.match(text[m.end():]):
            op = ">="
        unit = _norm_unit(m["unit"], m["exp"])
        out.append((Limit(Fraction(m["num"]), unit, op, m.group(0).strip()), m.start()))
    for m in _GRADE.finditer(text):
        op = _OPS.get((m["op"] or "").lower()) if m["op"] else None
        out.append((Limit(Fraction(m["num"]), "grade", op, m.group(0).strip()), m.start()))
    return sorted(out, key=lambda x: x[1])


# ---------------------------------------------------------------------- limits in compiled logic


def _split_text(text: str) -> tuple[Fraction, str]:
    parts = text.strip().split(None, 1)
    try:
        value = Fraction(parts[0])
    except (ValueError, ZeroDivisionError):
        return Fraction(0), "?"
    return value, (parts[1] if len(parts) > 1 else "")


class _LogicLimits:
    def __init__(self, program: I.Program):
        self.derived = {d.name: d for d in program.derived}
        self.out: list[Limit] = []
        self.seen_derived: set = set()

    def add(self, value, unit, op, text):
        self.out.append(Limit(Fraction(value), unit, op, text))

    def bool_(self, b):
        if isinstance(b, (I.BAnd, I.BOr)):
            for x in b.items:
                self.bool_(x)
        elif isinstance(b, I.BNot):
            self.bool_(b.operand)
        elif isinstance(b, I.BImplies):
            self.bool_(b.cond)
            self.bool_(b.then)
        elif isinstance(b, I.BIf):
            self.bool_(b.cond)
            self.bool_(b.then)
            self.bool_(b.otherwise)
        elif isinstance(b, I.BObsCmp):
            self.sel(b.sel)
            self.lim(b.limit, b.op)
        elif isinstance(b, I.BObsBetween):
            self.sel(b.sel)
            self.lim(b.low, ">=")
            self.lim(b.high, "<=")
        elif isinstance(b, I.BObsIs):
            self.sel(b.sel)
        elif isinstance(b, I.BNumCmp):
            self.num(b.left)
            if isinstance(b.right, I.NConst):
                v, u = _split_text(b.right.text) if b.right.text else (b.right.value, "")
                unit = "" if not u else u
                self.add(v, unit, b.op, f"{b.op} {b.right.text or b.right.value}")
            else:
                self.num(b.right)
        elif isinstance(b, I.BDateCmp):
            self.date(b.left)
            self.date(b.right)
        elif isinstance(b, I.BQuery):
            if b.count is not None:  # at least N / at most N items
                op = ">=" if b.quantifier == "at_least" else "<="
                self.add(b.count, "", op, f"{b.quantifier.replace('_', ' ')} {b.count}")
            if b.window is not None:
                self.win(b.window)
            if b.pred is not None:
                self.bool_(b.pred)
        elif isinstance(b, I.BRecorded):
            if b.kind == "bool":
                self.bool_(b.operand)
            elif b.kind == "num":
                self.num(b.operand)
            else:
                self.date(b.operand)
        elif isinstance(b, I.BObsQuery):
            self.win(b.window)
            self.bool_(b.pred)

    def sel(self, s):
        if isinstance(s, I.SelLatest):
            self.win(s.window)
            if s.pred is not None:
                self.bool_(s.pred)

    def lim(self, l, op):
        if isinstance(l, I.LConst):
            v, u = _split_text(l.text)
            self.add(v, U.TIME_WORDS.get(u, u), op, f"{op} {l.text}")
        elif isinstance(l, I.LRef):
            if l.multiple != 1:
                self.add(l.multiple, l.which.upper(), op, f"{op} {l.text}")
        elif isinstance(l, I.LIf):
            self.bool_(l.cond)
            self.lim(l.then, op)
            self.lim(l.otherwise, op)

    def win(self, w: I.Win):
        if w.duration is not None:
            self.dur(w.duration)
        for d in (w.at, w.until):  # a window measured from a computed date
            if d is not None:
                self.date(d)

    def dur(self, d):
        if isinstance(d, I.DConst):
            v, u = _split_text(d.text)
            if u:
                self.add(v, U.TIME_WORDS.get(u, u), None, d.text)
            else:
                self.add(d.amount, "d" if d.kind == "days" else "mo", None, d.text)
        elif isinstance(d, I.DHalfLife):
            self.add(d.multiple, "half-life", None, d.text)
        elif isinstance(d, I.DExtreme):
            self.dur(d.left)
            self.dur(d.right)
        elif isinstance(d, I.DIf):
            self.bool_(d.cond)
            self.dur(d.then)
            self.dur(d.otherwise)

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
                self.num(d.formula)

    def date(self, d):
        if isinstance(d, I.DtShift):
            self.date(d.date)
            self.dur(d.duration)


def logic_limits(program: I.Program, c: I.CriterionIR) -> list[Limit]:
    w = _LogicLimits(program)
    w.bool_(c.body)
    out = []
    for l in w.out:
        if l not in out:
            out.append(l)
    return out


# ---------------------------------------------------------------------- matching

_COMPLEMENT = {">=": "<", "<": ">=", "<=": ">", ">": "<="}


def _same_value(a: Limit, b: Limit) -> bool:
    if a.unit == b.unit:
        return a.value == b.value
    days = {"d": Fraction(1), "wk": Fraction(7)}
    if a.unit in days and b.unit in days:
        return a.value * days[a.unit] == b.value * days[b.unit]
    cal = {"mo": 1, "a": 12}
    if a.unit in cal and b.unit in cal:
        return a.value * cal[a.unit] == b.value * cal[b.unit]
    if {a.unit, b.unit} & {"", "ULN", "half-life", "grade"}:
        return False
    conv = U.conversion(a.unit, b.unit) if U.check_unit(a.unit) is None and U.check_unit(b.unit) is None else None
    return conv is not None and conv.apply(a.value) == b.value


def _same_direction(a: Limit, b: Limit) -> bool:
    """Same boundary on the same side: an op or its complement (≤ 10 excepted is > 10 excluded)."""
    if a.op is None or b.op is None:
        return True
    return a.op == b.op or _COMPLEMENT.get(a.op) == b.op


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
        quote_limits = [(l, span) for q, span in zip(c.quotes, c.quote_spans) for l, _ in limits_in_text(q)]
        notes = " ".join(c.notes)
        note_limits = [l for n in c.notes for l, _ in limits_in_text(n)]
        logic = logic_limits(program, c)
        for ql, span in quote_limits:
            same = [l for l in logic if _same_value(ql, l)]
            if any(_same_direction(ql, l) for l in same):
                continue
            # a note explains a reading the logic does not state; it cannot excuse a changed direction
            if not same and any(_same_value(ql, n) for n in note_limits):
                continue
            if same:
                diags.append(Diagnostic(span, f"the quote of '{c.id}' says {ql.show()!r} but its logic says "
                                              f"{', '.join(repr(l.show()) for l in same)}: direction or inclusivity differs"))
            else:
                have = ", ".join(l.show() for l in logic) or "no limits"
                diags.append(Diagnostic(span, f"limit {ql.show()!r} in the quote of '{c.id}' has no counterpart in its logic (which has: {have})",
                                        hint="encode it, or explain the reading in a note that names it"))
        quote_text = " ".join(c.quotes)
        for l in logic:
            same_q = [q for q, _ in quote_limits if _same_value(q, l)]
            if any(_same_direction(q, l) for q in same_q):
                continue
            if same_q:
                continue  # reported above, on the quote
            if any(_same_value(n, l) for n in note_limits):
                continue
            if l.unit == "" and (_plain_number_in(quote_text, l.value) or _plain_number_in(notes, l.value)):
                continue
            span = c.body_span or c.span
            diags.append(Diagnostic(span, f"limit {l.show()!r} in the logic of '{c.id}' appears neither in its quotes nor in a note",
                                    hint="cite the protocol text that states it, or explain the reading in a note"))
    return sorted(diags, key=Diagnostic.sort_key), rows


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


# a numbered item: "1." or "1)" at the start of a line (after list marks such as "-", "•", "*"),
# or a lettered sub-item "a)" at a line start or after white space, ';' or ':'
_MARKER = re.compile(
    r"(?:^[ \t]*(?:[-•*·][ \t]*)*(?P<num>\d+)[.)][ \t])|(?:(?:^[ \t]*(?:[-•*·][ \t]*)*|(?<=[\s;:]))(?P<let>[a-z])\)[ \t])",
    re.MULTILINE)


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
    for m in _MARKER.finditer(protocol_text):
        pos = m.start("num") if m["num"] else m.start("let")
        if pos not in starts:
            line, col = _position(protocol_text, pos)
            marker = (m["num"] + ".") if m["num"] else (m["let"] + ")")
            diags.append(Diagnostic(Span(protocol_path, line, col, line, col + len(marker)),
                                    f"numbered item {marker!r} of the protocol is not in the outline"))
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


def format_coverage(rows: list[CoverageRow]) -> str:
    lines = [f"{'ref':<6} {'status':<13} rules / reason"]
    for r in rows:
        detail = ", ".join(r.rules) if r.rules else r.reason
        lines.append(f"{r.ref:<6} {r.status:<13} {detail}")
    n = sum(1 for r in rows if r.status in ("encoded", "uncomputable"))
    total = sum(1 for r in rows if r.status != "heading")
    lines.append(f"{n} of {total} items encoded or declared not computable")
    return "\n".join(lines)
