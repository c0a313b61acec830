"""What `elig verify` reads in protocol text: limits in symbols and in words, the sense a sentence
gives them (an exception states the opposite of the criterion), windows' sides, `whichever is
shorter/longer`, and the numbered items of an eligibility list in the layouts registries use.

Everything here works on plain text; `compiler.verify` matches it against the compiled logic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from fractions import Fraction
from typing import Optional

from . import units as U


@dataclass(frozen=True)
class Limit:
    value: Fraction
    unit: str  # normalised: UCUM code, "ULN", "half-life", "grade", or "" for a plain number
    op: Optional[str]  # ">=", "<=", ">", "<", or None (a window length, a bare number)
    text: str
    side: Optional[str] = None  # a window's side of its anchor: "before" | "after" | None (not said)

    def show(self) -> str:
        return self.text


# ---------------------------------------------------------------------- limits in protocol text

# comparison words before a number (longest first where one is a prefix of another)
_PREFIX_WORDS = {
    "greater than or equal to": ">=", "more than or equal to": ">=", "equal to or greater than": ">=",
    "equal to or more than": ">=", "less than or equal to": "<=", "equal to or less than": "<=",
    "no more than": "<=", "not more than": "<=", "no greater than": "<=", "not greater than": "<=",
    "not exceeding": "<=", "no higher than": "<=", "not higher than": "<=",
    "no less than": ">=", "not less than": ">=", "no fewer than": ">=", "not fewer than": ">=",
    "no lower than": ">=", "not lower than": ">=",
    "greater than": ">", "more than": ">", "higher than": ">", "older than": ">", "longer than": ">",
    "less than": "<", "fewer than": "<", "lower than": "<", "younger than": "<", "shorter than": "<",
    "larger than": ">", "bigger than": ">", "smaller than": "<", "no larger than": "<=", "not larger than": "<=",
    "no smaller than": ">=", "not smaller than": ">=",
    "at least": ">=", "a minimum of": ">=", "minimum of": ">=", "minimum": ">=",
    "at most": "<=", "a maximum of": "<=", "maximum of": "<=", "maximum": "<=", "up to": "<=",
    "exceeding": ">", "exceeds": ">", "exceed": ">", "above": ">", "over": ">", "below": "<", "under": "<",
}
_SYMBOLS = {"≥": ">=", "≤": "<=", ">": ">", "<": "<", "\\>": ">", "\\<": "<", ">=": ">=", "<=": "<=",
            "=>": ">=", "=<": "<=", "⩾": ">=", "⩽": "<=", "=": "=", "!=": "!=", "≠": "!="}
_POSTFIX_WORDS = {
    "or more": ">=", "or greater": ">=", "or older": ">=", "or higher": ">=", "or above": ">=", "or over": ">=",
    "or longer": ">=", "and above": ">=", "and over": ">=", "and older": ">=",
    "or less": "<=", "or fewer": "<=", "or lower": "<=", "or younger": "<=", "or below": "<=", "or under": "<=",
    "or shorter": "<=", "and below": "<=", "and under": "<=", "and younger": "<=",
    "or larger": ">=", "or smaller": "<=",
}
_NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fourteen": 14, "fifteen": 15, "eighteen": 18,
    "twenty": 20, "twenty-one": 21, "twenty-eight": 28, "thirty": 30, "forty-two": 42, "sixty": 60, "ninety": 90,
}


def _alt(words) -> str:
    return "|".join(re.escape(w).replace(r"\ ", r"\s+") for w in sorted(words, key=len, reverse=True))


_OP_RE = (r"(?:(?P<op>" + _alt(_SYMBOLS) + r")|(?<![\w])(?P<opw>" + _alt(_PREFIX_WORDS) + r")(?![\w]))?"
          r"\s*(?:(?:the|a|an)\s+)?")
_NUM_RE = (r"(?<![\w.,\-])(?P<num>\d+(?:\.\d+)?(?:,\d(?!\d{2}))?(?:,\d{1,2}(?!\d))?|"
           r"(?<![\w-])(?:" + _alt(_NUMBER_WORDS) + r")(?![\w-]))")
_UNIT_RE = (
    r"(?P<unit>\s*(?:[×x*]|times)?\s*(?:the\s+)?(?:ULN|LLN|LLOQ|upper\s+limits?\s+of\s+(?:the\s+)?normal(?:\s+range)?|"
    r"upper\s+normal\s+(?:value|limit)|institutional\s+upper\s+limit\s+of\s+normal)|"
    r"\s*[×x]\s*10\\?(?:\^(?P<exp>\d+)|(?P<sup>[⁰¹²³⁴⁵⁶⁷⁸⁹]+))\s*/\s*(?:L|µL|uL|l)|"
    r"\s*(?:g|mg|µg|ug|ng|pg)/(?:dL|L|mL)\b|\s*(?:mol|mmol|µmol|umol|nmol)/L\b|\s*(?:m|meq|mEq)/L\b|"
    r"\s*(?:IU|U|mU|kIU)/(?:L|mL)\b|\s*mL/min(?:\s*/\s*1\.73\s*m(?:²|2|\\?\^2))?|\s*kg/m[²2]|\s*kg\b|\s*cm\b|\s*mm\b|"
    r"\s*ms\b|\s*%|\s*mmHg|\s*kPa\b|\s*bpm\b|\s*mV\b|"
    r"\s*°\s*[CF]\b|\s*cells\s*/\s*(?:[µu]L|mm3|mm³)|\s*/\s*(?:[µu]L|mm3|mm³)|\s*mg\b|"
    r"\s*hours?\b|\s*days?\b|\s*weeks?\b|\s*months?\b|\s*years?\b|\s*half-lives\b|\s*half\s+lives\b|"
    r"\s*(?:lines?|cycles?|doses?|lesions?|nodules?|points?)\b)"
)
_LIMIT = re.compile(_OP_RE + _NUM_RE + _UNIT_RE, re.IGNORECASE)
# a reference limit in words, with no number: "higher than the lower limit of quantitation"
_REF_WORDS = re.compile(
    r"(?:(?P<op>" + _alt(_SYMBOLS) + r")|(?<![\w])(?P<opw>" + _alt(_PREFIX_WORDS) + r")(?![\w]))\s*(?:the\s+)?"
    r"(?P<unit>lower\s+limits?\s+of\s+(?:the\s+)?quantit\w*(?:\s+value)?|LLOQ|upper\s+limits?\s+of\s+(?:the\s+)?normal|ULN|"
    r"lower\s+limits?\s+of\s+(?:the\s+)?normal|LLN)\b", re.IGNORECASE)
# a comparison with a bare number: "score of ≥3", "no more than three brain metastases"
_BARE = re.compile(_OP_RE + _NUM_RE + r"(?![\d,]|\.\d|\s*[%×x°]|\s*\\?\^)", re.IGNORECASE)  # "≤ 2." ends a sentence
_GRADE = re.compile(_OP_RE + r"grade\s*(?P<num>\d+)", re.IGNORECASE)
# "18 to 75 years", "18 - 80 years", "between 18 and 75 years", "0-2 points", "12 to < 18 years"
_RANGE = re.compile(
    r"(?:between\s+)?(?<![\w.,])(?P<lo>\d+(?:\.\d+)?)\s*(?:(?:to|-|–|and)\s*(?:\\?<\s*)?)(?P<hi>\d+(?:\.\d+)?)"
    r"(?P<unit>\s*(?:years?|months?|weeks?|days?|hours?|points?|kg)\b)", re.IGNORECASE)
# "0 or 1", "0, 1 or 2": a set of consecutive whole numbers read as the closed range
_SET = re.compile(r"(?<![\w.,])(?P<nums>\d(?:\s*,\s*\d)*\s+or\s+\d)(?![\w,]|\.\d)", re.IGNORECASE)
# a thousands point in a count per volume: "100.000/µl"
_THOUSANDS = re.compile(r"\d{1,3}(?:\.\d{3})+")
_POSTFIX = re.compile(r"^\s*(?:\)\s*)?(?P<w>" + _alt(_POSTFIX_WORDS) + r")\b", re.IGNORECASE)
_BEFORE = re.compile(r"^[^.;:]{0,60}?\b(?P<w>before|prior\s+to|preceding|ago|in\s+the\s+(?:last|past)|after|following|since)\b",
                     re.IGNORECASE)
_WITHIN_LAST = re.compile(r"\b(?:within|in|during)\s+the\s+(?:last|past|previous|preceding)\s*$", re.IGNORECASE)

_UNIT_WORDS = {"day": "d", "days": "d", "week": "wk", "weeks": "wk", "month": "mo", "months": "mo", "year": "a",
               "years": "a", "hour": "h", "hours": "h", "half-lives": "half-life", "halflives": "half-life",
               "mmhg": "mm[Hg]", "bpm": "/min", "kg/m²": "kg/m2", "µmol/l": "umol/L", "µg/l": "ug/L",
               "µg/ml": "ug/mL", "meq/l": "meq/L", "mg/dl": "mg/dL", "g/dl": "g/dL", "mg/l": "mg/L", "g/l": "g/L",
               "mmol/l": "mmol/L", "umol/l": "umol/L", "ng/ml": "ng/mL", "pg/ml": "pg/mL", "u/l": "U/L",
               "iu/l": "[IU]/L", "iu/ml": "[IU]/mL", "ml/min": "mL/min", "mv": "mV", "mm": "mm", "cm": "cm",
               "kg": "kg", "ms": "ms", "kpa": "kPa", "mg": "mg",
               "line": "", "lines": "", "cycle": "", "cycles": "", "dose": "", "doses": "", "lesion": "",
               "lesions": "", "nodule": "", "nodules": "", "point": "", "points": ""}
_SUPERSCRIPT = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹", "0123456789")


def _norm_unit(raw: str, exp: Optional[str] = None, sup: Optional[str] = None) -> str:
    u = re.sub(r"\s+", "", raw)
    low = u.lower().lstrip("×x*").removeprefix("times").removeprefix("the")
    if "uln" in low or "upper" in low:
        return "ULN"
    if "lloq" in low:
        return "LLOQ"
    if "lln" in low:
        return "LLN"
    if sup:
        exp = sup.translate(_SUPERSCRIPT)
    if exp is not None:
        return f"10*{exp}/L"
    if u.startswith("°"):
        return "Cel" if u.endswith("C") else "[degF]"
    if low.startswith("cells") or low.startswith("/"):
        return "/uL" if ("µl" in low or "ul" in low) else "/mm3"
    if re.fullmatch(r"ml/min/1\.73m(?:²|2|\\?\^2)", low):
        return "mL/min/{1.73_m2}"
    if low.replace(" ", "") in ("half-lives", "halflives"):
        return "half-life"
    if low in _UNIT_WORDS:
        return _UNIT_WORDS[low]
    alias = U.ALIASES.get(u)
    if isinstance(alias, tuple):
        return alias[0]
    return alias or u


def _num(s: str) -> Fraction:
    s = s.lower()
    if s in _NUMBER_WORDS:
        return Fraction(_NUMBER_WORDS[s])
    if "," in s and "." not in s:
        s = s.replace(",", ".")
    return Fraction(s)


def _window_side(text: str, end: int, start: int) -> Optional[str]:
    """The side of its anchor a duration in text is on: "within 7 days before X" -> before."""
    if _WITHIN_LAST.search(text[max(0, start - 30):start]):
        return "before"
    m = _BEFORE.match(text[end:])
    if m is None:
        return None
    seg = text[end:end + 60]
    stop = re.search(r"[.;:]", seg)
    seg = seg[:stop.start()] if stop else seg
    words = {("after" if w.lower() in ("after", "following", "since") else "before")
             for w in re.findall(r"\b(before|prior\s+to|preceding|ago|after|following|since)\b", seg, re.IGNORECASE)}
    return words.pop() if len(words) == 1 else None  # "4 weeks after correction before the first dose": not said


def limits_in_text(text: str) -> list[tuple[Limit, int]]:
    """The limits a sentence of protocol text states, with their offsets (a new list each call;
    the reading of one text is computed once: verify reads the same quotes and items again for
    every rule, and the mutation score for every mutant)."""
    return list(_limits_in_text(text))


@lru_cache(maxsize=8192)
def _limits_in_text(text: str) -> tuple[tuple[Limit, int], ...]:
    out = []
    taken = []
    for m in _RANGE.finditer(text):
        lo, hi = _num(m["lo"]), _num(m["hi"])
        if lo >= hi:
            continue
        unit = _norm_unit(m["unit"])
        hi_op = "<" if re.search(r"\\?<\s*$", text[m.start("hi") - 3:m.start("hi")]) else "<="
        shown = " ".join(m.group(0).split())
        out.append((Limit(lo, unit, ">=", shown), m.start()))
        out.append((Limit(hi, unit, hi_op, shown), m.start()))
        taken.append((m.start(), m.end()))
    for m in _SET.finditer(text):
        if any(a <= m.start() < b for a, b in taken):
            continue
        nums = sorted(int(x) for x in re.findall(r"\d", m["nums"]))
        if nums == list(range(nums[0], nums[-1] + 1)) and len(nums) > 1:
            shown = " ".join(m.group(0).split())
            out.append((Limit(Fraction(nums[0]), "", ">=", shown), m.start()))
            out.append((Limit(Fraction(nums[-1]), "", "<=", shown), m.start()))
            taken.append((m.start(), m.end()))
    for m in _LIMIT.finditer(text):
        if any(a <= m.start("num") < b for a, b in taken):
            continue
        op = None
        if m["op"]:
            op = _SYMBOLS.get(m["op"])
        elif m["opw"]:
            op = _PREFIX_WORDS.get(" ".join(m["opw"].lower().split()))
        post = _POSTFIX.match(text[m.end():])
        if op is None and post:
            op = _POSTFIX_WORDS[" ".join(post["w"].lower().split())]
        unit = _norm_unit(m["unit"], m["exp"], m["sup"])
        value = _num(m["num"])
        if unit in ("/uL", "/mm3") and _THOUSANDS.fullmatch(m["num"]):
            value = Fraction(m["num"].replace(".", ""))  # a count is whole: "100.000/µl" is 100,000 per µL
        side = _window_side(text, m.end(), m.start()) if U.TIME_WORDS.get(unit, unit) in ("d", "wk", "mo", "a", "h") else None
        shown = m.group(0).strip() + (post.group(0).rstrip() if post else "")
        out.append((Limit(value, unit, op, shown, side), m.start()))
        taken.append((m.start(), m.end()))
    for m in _BARE.finditer(text):
        if any(a <= m.start("num") < b for a, b in taken) or not (m["op"] or m["opw"]):
            continue
        op = _SYMBOLS.get(m["op"]) if m["op"] else _PREFIX_WORDS.get(" ".join(m["opw"].lower().split()))
        out.append((Limit(_num(m["num"]), "", op, " ".join(m.group(0).split())), m.start()))
        taken.append((m.start(), m.end()))
    for m in re.finditer(r"(?<![\w.,\-])(?P<num>\d+(?:\.\d+)?|" + _alt(_NUMBER_WORDS) + r")(?=\s+(?:" + _alt(_POSTFIX_WORDS) + r")\b)",
                         text, re.IGNORECASE):  # "2 or more such leads"
        if any(a <= m.start() < b for a, b in taken):
            continue
        post = _POSTFIX.match(text[m.end():])
        out.append((Limit(_num(m["num"]), "", _POSTFIX_WORDS[" ".join(post["w"].lower().split())],
                          m.group(0) + post.group(0).rstrip()), m.start()))
        taken.append((m.start(), m.end() + len(post.group(0))))
    for m in _REF_WORDS.finditer(text):
        if any(a <= m.start() < b for a, b in taken):
            continue
        op = _SYMBOLS.get(m["op"]) if m["op"] else _PREFIX_WORDS.get(" ".join(m["opw"].lower().split()))
        if op in ("=", "!="):  # "ULN = upper limit of normal" defines a word, it is no limit
            continue
        unit = m["unit"].lower()
        unit = "LLOQ" if ("quantit" in unit or unit == "lloq") else "ULN" if ("upper" in unit or unit == "uln") else "LLN"
        out.append((Limit(Fraction(1), unit, op, " ".join(m.group(0).split())), m.start()))
        taken.append((m.start(), m.end()))
    for m in _GRADE.finditer(text):
        if any(a <= m.start("num") < b for a, b in taken):
            continue
        op = _SYMBOLS.get(m["op"]) if m["op"] else (_PREFIX_WORDS.get(" ".join(m["opw"].lower().split())) if m["opw"] else None)
        post = _POSTFIX.match(text[m.end():])
        if op is None and post:
            op = _POSTFIX_WORDS[" ".join(post["w"].lower().split())]
        out.append((Limit(Fraction(m["num"]), "grade", op, m.group(0).strip()), m.start()))
    return tuple(sorted(out, key=lambda x: x[1]))


# ---------------------------------------------------------------------- the sense of a sentence

# words after which, in the same sentence, a limit states when the patient is let in despite
# the criterion (or when the criterion does not hold): its sense is the criterion's opposite
_EXCEPTION = re.compile(
    r"\b(?:except(?:ions?|ing)?|unless|may\s+be\s+(?:eligible|enrolled|included)|may\s+participate|"
    r"(?:can|could)\s+be\s+(?:enrolled|included|eligible)|are\s+eligible|is\s+eligible|eligible\s+if|"
    r"(?:is|are)\s+(?:allowed|permitted)|allowing|provided\s+that|excludes?\s+unless)\b", re.IGNORECASE)
# words that reverse only the limit right after them: "had not returned to ≤ grade 1"
_NEGATED_LIMIT = re.compile(r"\b(?:not|never)\s+(?:returned|recovered|resolved|improved)\s+to\s*$", re.IGNORECASE)
_SENTENCE_END = re.compile(r"\.(?=\s|$)|\n")


def inverted_at(text: str, offset: int) -> bool:
    """Whether the sentence of text up to offset says an exception (its limits are the criterion's opposite)."""
    start = 0
    for m in _SENTENCE_END.finditer(text, 0, offset):
        start = m.end()
    return _EXCEPTION.search(text, start, offset) is not None or _NEGATED_LIMIT.search(text[max(start, offset - 40):offset]) is not None


_WHICHEVER = re.compile(r"whichever\s+is\s+(?P<w>shorter|longer|earlier|later|greater|less|lesser)", re.IGNORECASE)
_WHICH_NORM = {"shorter": "shorter", "earlier": "longer", "less": "shorter", "lesser": "shorter",
               "longer": "longer", "later": "shorter", "greater": "longer"}


def whichever_in(text: str) -> list[tuple[str, int]]:
    """("shorter" | "longer", offset) for each "whichever is shorter/longer" of text (the window's length)."""
    return [(_WHICH_NORM[m["w"].lower()], m.start()) for m in _WHICHEVER.finditer(text)]


# ---------------------------------------------------------------------- numbered items

_ROMAN = r"(?:i{1,3}|iv|v|vi{1,3}|ix|x|xi{1,3}|I{1,3}|IV|V|VI{1,3}|IX|X|XI{1,3})"
_BULLETS = r"[-•*·▪◦‣○●]"
# a numbered or lettered item at a line start (after indentation and bullets):
# 1.  1)  1\.  (1)  a)  (a)  a.  I.  ii)  (iv)
_LINE_ITEM = re.compile(
    r"^[ \t]*(?:" + _BULLETS + r"[ \t]*)*(?P<mark>(?:\((?:\d{1,2}|[a-zA-Z]|" + _ROMAN + r")\))|"
    r"(?:(?:\d{1,2}|" + _ROMAN + r"|[a-zA-Z])(?:\\?\.|\)))(?=[ \t]|(?<=\))[^\s\d)]))", re.MULTILINE)
# a numbered or lettered item inside a line, after ';', ':' or a full-width separator: "；2)Platelet", "; b) Blood"
_INLINE_ITEM = re.compile(r"(?:(?<=[;:；：])|(?<=[;:；：][ \t])|(?<=\s))(?P<mark>(?:\d{1,2}|[a-z])\))(?=[ \t]?[A-Za-z])")
_BULLET_LINE = re.compile(r"^(?P<indent>[ \t]*(?:-[ \t]+)?)(?P<mark>" + _BULLETS + r")[ \t]+(?=\S)", re.MULTILINE)


@dataclass(frozen=True)
class Marker:
    start: int  # offset of the marker in the text
    text_start: int  # offset of the item's text after the marker
    mark: str  # the marker as written ("1.", "a)", "•")
    bullet: bool  # an unnumbered bullet


def item_markers(text: str) -> list[Marker]:
    """The items of an eligibility list: numbered or lettered markers; where the list has no
    numbered item at a line start, its outermost bullets (nested bullets are clauses of the item)."""
    out: dict[int, Marker] = {}
    for m in _LINE_ITEM.finditer(text):
        mark = m["mark"]
        if mark.rstrip(".)\\").isalpha() and len(mark.rstrip(".)\\")) == 1 and mark.endswith(".") and not _letter_list(text, m):
            continue  # "A." alone could be an initial; a letter with '.' counts only in a run a., b., ...
        end = m.end("mark")
        out[m.start("mark")] = Marker(m.start("mark"), _skip_ws(text, end), mark.replace("\\", ""), False)
    for m in _INLINE_ITEM.finditer(text):
        if m.start("mark") not in out and not _in_parenthesis(text, m.start("mark")):
            out[m.start("mark")] = Marker(m.start("mark"), _skip_ws(text, m.end("mark")), m["mark"], False)
    numbered = any(not mk.bullet and mk.mark[:1].isdigit() or mk.mark[:2].strip("(").isdigit() for mk in out.values())
    if not numbered:
        bullets = [(len(m["indent"].expandtabs(4)), m) for m in _BULLET_LINE.finditer(text)]
        if bullets:
            top = min(i for i, _ in bullets)
            for indent, m in bullets:
                if indent == top and not any(m.start() <= k < m.end() + 8 for k in out):
                    out[m.start("mark")] = Marker(m.start("mark"), m.end(), m["mark"], True)
    return [out[k] for k in sorted(out)]


def _skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t":
        i += 1
    return i


def _in_parenthesis(text: str, i: int) -> bool:
    line_start = text.rfind("\n", 0, i) + 1
    seg = text[line_start:i]
    return seg.count("(") > seg.count(")")


def _letter_list(text: str, m) -> bool:
    """A single letter with a period ("a.", "I.") is an item only in a run: the next or the
    previous letter (or, for I, a roman II.) is an item of a line too."""
    letter = m["mark"][0]

    def line_with(mark: str, where: str) -> bool:
        return re.search(r"^[ \t]*(?:" + _BULLETS + r"[ \t]*)*\(?" + re.escape(mark) + r"[.)]", where, re.MULTILINE) is not None

    nxt, prev = chr(ord(letter) + 1), chr(ord(letter) - 1)
    after, before = text[m.end():], text[:m.start()]
    return (line_with(nxt, after) or (prev.isalpha() and line_with(prev, before))
            or (letter == "I" and line_with("II", after)) or (letter in "VX" and line_with(letter + "I", after)))
