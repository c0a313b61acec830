# ---- Elig evaluator runtime (standard library only) ------------------------------------
# This text is copied verbatim into every generated evaluator module by the Python backend.
# It implements patient-record format 1 and the semantics of docs/records.md:
# three-valued (Kleene) logic, inclusive windows, calendar months clamped to month end,
# overlap of treatments and conditions with a window, most-recent selection with its tie
# rule, closed-world items and open-world observations and facts, unusable items, and limits
# compared exactly in the patient value's own unit.
#
# A boolean result is a tuple (truth, why, missing, review): truth is True, False or None
# (unknown); why is a readable fragment; missing a tuple of codes; review is True when the
# unknown comes only from an unrecorded judgment.

import datetime as _dt
import json as _json
import math as _math
import re as _re
from fractions import Fraction as _F

_INF = float("inf")
_NAN = float("nan")
_NEVER_LO = -(10 ** 9)
_NEVER_HI = 10 ** 9
_DATE_CACHE = {}
_EVER = (-(10 ** 9), -(10 ** 9), 10 ** 9, 10 ** 9, "recorded", "", ())


class _RecordError(Exception):
    """The record cannot be read at all: the result is an error result."""


class _Bad:
    """An unusable field: where it would be read, the criterion is unknown with this reason."""

    __slots__ = ("why",)

    def __init__(self, why):
        self.why = why

    def __repr__(self):
        return "_Bad(%r)" % (self.why,)


def _remember(cache, key, value, limit=200000):
    """Store value in a cache shared across records (bounded: emptied when it grows too big)."""
    if len(cache) > limit:
        cache.clear()
    cache[key] = value
    return value


def _date(value):
    """An ISO 8601 calendar date as a proleptic ordinal, or _Bad."""
    if type(value) is str:
        hit = _DATE_CACHE.get(value)
        if hit is not None:
            return hit
        if len(value) == 10 and value.isascii() and value[4] == "-" and value[7] == "-" \
                and value[:4].isdigit() and value[5:7].isdigit() and value[8:].isdigit():
            try:
                out = _dt.date.fromisoformat(value).toordinal()  # (YYYY-MM-DD only, checked above)
            except ValueError:
                out = _Bad("%r is not a calendar date" % (value,))
        else:
            out = _Bad("%r is not an ISO date (YYYY-MM-DD)" % (value[:40],))
        return _remember(_DATE_CACHE, value, out)
    if value is None:
        return _Bad("date is missing")
    return _Bad("date is not a string")


_ISO = {}


# Dates are day numbers (proleptic Gregorian ordinals, 0001-01-01 is 1). Arithmetic in days is
# exact and unbounded, so a computed date beyond the calendar's ends (0001-01-01 - 14 d) still
# compares correctly with every recorded date; it is written "before 0001-01-01" or "after
# 9999-12-31". A calendar-month shift past either end gives the day just beyond it (_ORD_LO or
# _ORD_HI), which lies before (after) every date a record can hold.
_ORD_MAX = 3652059  # 9999-12-31
_ORD_LO = 0
_ORD_HI = _ORD_MAX + 1


def _iso(ordinal):
    s = _ISO.get(ordinal)
    if s is None:
        if ordinal < 1:
            return "before 0001-01-01"
        if ordinal > _ORD_MAX:
            return "after 9999-12-31"
        s = _dt.date.fromordinal(ordinal).isoformat()
        _remember(_ISO, ordinal, s)
    return s


def _shift_months(ordinal, months):
    """The same day ``months`` calendar months away, clamped to the month's last day; None
    beyond the calendar (or from a computed date already beyond it)."""
    if not 1 <= ordinal <= _ORD_MAX:
        return None
    d = _dt.date.fromordinal(ordinal)
    m0 = d.month - 1 + months
    y = d.year + m0 // 12
    m = m0 % 12 + 1
    if not 1 <= y <= 9999:
        return None
    if m == 12:
        last = 31
    else:
        last = (_dt.date(y, m + 1, 1) - _dt.timedelta(days=1)).day
    return _dt.date(y, m, min(d.day, last)).toordinal()


def _num(value):
    """A JSON number as an exact-capable Python number, or _Bad."""
    t = type(value)
    if t is int:
        return value
    if t is float:
        if value != value or value in (_INF, -_INF):
            return _Bad("%s is not a finite number" % (value,))
        return value
    if t is bool:
        return _Bad("%s is not a number" % (_json.dumps(value),))
    if t is str:
        return _Bad("%r is a string, not a number" % (value[:40],))
    return _Bad("%s is not a number" % (type(value).__name__,))


def _exact(x):
    """The exact value of a record number as written (its shortest decimal)."""
    if type(x) is float:
        f = _EXACT.get(x)
        return f if f is not None else _remember(_EXACT, x, _F(repr(x)), 100000)
    return _F(x)


_EXACT = {}


def _fmt(x):
    """A number for a reason sentence."""
    if type(x) is int:
        return str(x)
    if type(x) is float:
        if x.is_integer() and abs(x) < 1e15:
            return str(int(x))
        return repr(x)
    if isinstance(x, _F):
        if x.denominator == 1:
            return str(x.numerator)
        f = float(x)
        s = "%.6g" % f
        return s
    return str(x)


def _cmp3(v, lf, lq):
    """Sign of (v - limit) for a record number v against a limit given as (float, Fraction).

    Floats decide where they clearly can; a value at (or within rounding of) the limit is
    compared exactly, so 100.4 [degF] is exactly 38 Cel and 1.8 is exactly 1.5 x 1.2.
    """
    try:
        d = v - lf
    except OverflowError:
        d = None
    if d is not None and d == d:
        tol = 1e-9 * (abs(lf) + 1.0)
        if d > tol:
            return 1
        if d < -tol:
            return -1
    if type(lq) is tuple:  # k x a reference limit, made exact only when needed
        lq = lq[0] * _exact(lq[1])
    e = _exact(v) - lq
    return (e > 0) - (e < 0)


def _holds(op, sign):
    if op == ">=":
        return sign >= 0
    if op == "<=":
        return sign <= 0
    if op == ">":
        return sign > 0
    if op == "<":
        return sign < 0
    if op == "=":
        return sign == 0
    return sign != 0


_NEGATE = {">=": "<", "<=": ">", ">": "<=", "<": ">=", "=": "!=", "!=": "="}


# ---------------------------------------------------------------------- Kleene logic


def _join(parts):
    """One reason from the reasons of its parts, naming each fact once (the same reading or
    fact read by two parts of a rule is said once)."""
    out = []
    for p in parts:
        if p:
            if "; " in p:
                for atom in p.split("; "):
                    if atom not in out:
                        out.append(atom)
            elif p not in out:
                out.append(p)
    if len(out) == 1:
        return out[0]
    return "; ".join(out)


# Units as a reader writes them, in reasons (the JSON fields keep UCUM codes: `missing`, and
# the data dictionary of the page): 10*9/L -> ×10⁹/L, umol/L -> µmol/L, Cel -> °C, a -> years.
_UNIT_WORDS = {"1": "", "a": "years", "mo": "months", "wk": "weeks", "d": "days", "h": "hours",
               "min": "minutes", "s": "s", "Cel": "°C", "[degF]": "°F", "mm[Hg]": "mmHg", "[lb_av]": "lb",
               "[in_i]": "in", "[ft_i]": "ft", "kg/m2": "kg/m²", "mL/min/{1.73_m2}": "mL/min/1.73 m²"}
_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


def _unit_words(u):
    """A UCUM unit code as people write it (unknown codes as they are)."""
    w = _UNIT_WORDS.get(u)
    if w is None:
        if type(u) is not str or len(u) > 40:
            return u
        w = _re.sub(r"10\*(-?[0-9]+)", lambda m: "×10" + m.group(1).translate(_SUPERSCRIPT), u)
        w = _re.sub(r"(^|/)u(mol|g|L|IU)\b", "\\1µ\\2", w)
        w = _re.sub(r"\[([A-Za-z]+)\]", "\\1", w)
        w = _re.sub(r"\{([^}]*)\}", "\\1", w)
        w = _re.sub(r"([A-Za-z])2\b", "\\1²", w)
        if len(_UNIT_WORDS) < 512:
            _UNIT_WORDS[u] = w
    return w


# The vocabulary's labels, for reasons: code -> the label as a sentence names it ("platelet
# count", "HIV infection"), and fact -> its label in quotes. The generated module fills them from
# the rule files at compile time; `missing` and the JSON fields keep the codes.
_LABELS = {}
_FACT_LABELS = {}


def _lb(code):
    """A code as a reason names it: its label where the vocabulary gives one, else the code."""
    return _LABELS.get(code, code)


def _merge_missing(results):
    seen = []
    for r in results:
        for m in r[2]:
            if m not in seen:
                seen.append(m)
    return tuple(seen)


def _and(*rs):
    falses = [r for r in rs if r[0] is False]
    if falses:
        return (False, _join([r[1] for r in falses]), (), False)
    unknown = [r for r in rs if r[0] is None]
    if unknown:
        return (None, _join([r[1] for r in unknown]), _merge_missing(unknown), all(r[3] for r in unknown))
    return (True, _join([r[1] for r in rs]), (), False)


def _or(*rs):
    trues = [r for r in rs if r[0] is True]
    if trues:
        return (True, _join([r[1] for r in trues]), (), False)
    unknown = [r for r in rs if r[0] is None]
    if unknown:
        return (None, _join([r[1] for r in unknown]), _merge_missing(unknown), all(r[3] for r in unknown))
    return (False, _join([r[1] for r in rs]), (), False)


def _not(r):
    t = r[0]
    return (None if t is None else not t, r[1], r[2], r[3])


def _implies(c, t):
    """if c then t: true when c is false."""
    if c[0] is False:
        return (True, c[1], (), False)
    if c[0] is True:
        return t
    if t[0] is True:
        return t
    return (None, _join((c[1], t[1])), _merge_missing((c, t)), c[3] and t[3])


def _if(c, a, b):
    """a if c else b, for booleans: with c unknown, decided only where a and b agree."""
    if c[0] is True:
        return a
    if c[0] is False:
        return b
    if a[0] is not None and a[0] == b[0]:
        return (a[0], _join((a[1], b[1])), (), False)
    return (None, _join((c[1], a[1], b[1])), _merge_missing((c, a, b)), c[3] and a[3] and b[3])


# ---------------------------------------------------------------------- the prepared record


class _Record:
    __slots__ = ("id", "sex", "birth", "anchors", "obs", "conds", "treats", "procs", "facts", "warnings", "vocab",
                 "wcache")


def _list_field(record, name):
    v = record.get(name, _ABSENT)
    if v is _ABSENT:
        return []  # an absent list: nothing recorded
    if type(v) is not list:
        raise _RecordError("%s must be a list, not %s" % (name, _json_type(v)))
    return v


def _object_field(record, name):
    v = record.get(name, _ABSENT)
    if v is _ABSENT:
        return {}
    if type(v) is not dict:
        raise _RecordError("%s must be an object, not %s" % (name, _json_type(v)))
    return v


_ABSENT = object()


def _prepare(record, vocab):
    if type(record) is not dict:
        raise _RecordError("a record must be a JSON object, not %s" % (_json_type(record),))
    fmt = record.get("format")
    if "format" not in record:
        raise _RecordError("format is missing (this evaluator reads format 1)")
    if type(fmt) not in (int, float) or fmt != 1:  # JSON's 1 and 1.0 are the same number
        raise _RecordError("format %s is not supported (this evaluator reads format 1)" % (_short(fmt),))
    pid = record.get("id")
    if type(pid) is not str or not pid.strip():
        raise _RecordError("id is missing or empty" if pid in (None, "") or type(pid) is str
                           else "id must be a string, not %s" % (_json_type(pid),))
    rec = _Record()
    rec.id = pid
    rec.vocab = vocab
    rec.wcache = {}
    warnings = []
    rec.warnings = warnings
    # warnings of the source the record was converted from (the FHIR adapter), passed through
    src = record.get("warnings")
    if type(src) is list:
        warnings.extend(w[:500] for w in src if type(w) is str)
    elif src is not None:
        warnings.append("warnings must be a list of strings, not %s; ignored" % (_json_type(src),))
    sex = record.get("sex")
    if sex is None:
        rec.sex = None
    elif sex in ("male", "female"):
        rec.sex = sex
    else:
        rec.sex = _Bad("sex %s is not \"male\" or \"female\"" % (_short(sex),))
    rec.birth = _date(record["birth_date"]) if record.get("birth_date") is not None else None
    anchors = {}
    known = vocab.get("anchors")
    for k, v in _object_field(record, "anchors").items():
        anchors[k] = _date(v) if v is not None else None
        if known is not None and k not in known:
            warnings.append("unknown anchor %r ignored" % (k[:60],))
    rec.anchors = anchors
    facts = {}
    for k, v in _object_field(record, "facts").items():
        if k not in vocab["facts"]:
            warnings.append("unknown fact %r ignored" % (k[:60],))
        if v is None:
            continue
        facts[k] = v if type(v) is bool else _Bad("recorded as %s, not true or false" % (_short(v),))
    rec.facts = facts
    if len(record) > 10 or not _FIELDS.issuperset(record):
        for k in record:
            if k not in _FIELDS:
                warnings.append(_unknown_field(k))
    rec.obs = _prepare_observations(_list_field(record, "observations"), vocab, warnings)
    specs = vocab.get("attributes")
    rec.conds = _prepare_items(_list_field(record, "conditions"), "conditions", vocab["conditions"], warnings, "onset",
                               specs)
    rec.procs = _prepare_items(_list_field(record, "procedures"), "procedures", vocab["procedures"], warnings, "date",
                               specs)
    rec.treats = _prepare_treatments(_list_field(record, "treatments"), vocab, warnings)
    return rec


# the top-level fields of patient-record format 1
_FIELDS = frozenset(("format", "id", "sex", "birth_date", "anchors", "observations", "conditions", "treatments",
                     "procedures", "facts", "warnings"))


def _unknown_field(k):
    """A warning for a top-level field format 1 does not define, with the nearest one it does."""
    import difflib

    near = difflib.get_close_matches(k, sorted(_FIELDS), 1, 0.6)
    hint = " (did you mean %r?)" % (near[0],) if near else ""
    return "unknown field %r ignored%s" % (k[:60], hint)


def _json_type(v):
    if v is None:
        return "null"
    if type(v) is bool:
        return "a boolean"
    if type(v) in (int, float):
        return "a number"
    if type(v) is str:
        return "a string"
    if type(v) is list:
        return "an array"
    return type(v).__name__


def _short(v):
    try:
        s = _json.dumps(v)
    except (TypeError, ValueError):
        s = repr(v)
    return s if len(s) <= 40 else s[:37] + "..."


class _Obs:
    """An observation selected by a rule; its value and unit are checked when it is selected."""

    __slots__ = ("code", "index", "date", "value", "unit", "item", "text", "attrs")

    def describe(self):
        t = self.text
        if t is not None:
            return t
        d = _iso(self.date) if type(self.date) is int else "an unusable date"
        if type(self.value) is _Bad:
            t = "%s on %s" % (_lb(self.code), d)
        elif self.unit is None or self.unit == "1":
            t = "%s %s on %s" % (_lb(self.code), _fmt(self.value), d)
        else:
            t = "%s %s %s on %s" % (_lb(self.code), _fmt(self.value), _unit_words(self.unit), d)
        self.text = t
        return t


def _prepare_observations(items, vocab, warnings):
    """Observations grouped by code as (date, index, item); values are read when selected."""
    elements = vocab["observations"]
    out = {}
    out_get = out.get
    cached_date = _DATE_CACHE.get
    wild = None
    for i, it in enumerate(items):
        if type(it) is not dict:
            warnings.append("observations[%d] is not an object; ignored" % i)
            continue
        code = it.get("code")
        if type(code) is str and code in elements:
            ds = it.get("date")
            d = cached_date(ds) if type(ds) is str else None
            if d is None:
                d = _date(ds)
            lst = out_get(code)
            if lst is None:
                out[code] = [(d, i, it)]
            else:
                lst.append((d, i, it))
        elif type(code) is not str or not code.strip():
            warnings.append("observations[%d] has %s: it could be any observation, so a rule that reads "
                            "one is unknown where it could change the outcome" % (i, _no_code(code)))
            if wild is None:
                wild = []
            ds = it.get("date")
            wild.append((_date(ds), i, it, True))
        else:
            warnings.append("unknown observation code %r ignored" % (code[:60],))
    if wild is not None:
        # an observation without a code could be a reading of any code: each code sees it as a
        # possible reading (marked, so that it adds a possibility rather than replacing one)
        for code in elements:
            lst = out.get(code, []) + wild
            lst.sort(key=lambda e: e[1])
            out[code] = lst
        out[None] = wild  # (a mark _latest looks for)
    return out


def _no_code(code):
    if code is None:
        return "no code"
    if type(code) is str:
        return "an empty code"
    return "a code that is %s, not a string" % (_json_type(code),)


def _make_obs(rec, code, entry):
    """The observation of an entry with its value and unit checked against the vocabulary."""
    el = rec.vocab["observations"][code]
    d = entry[0]
    i = entry[1]
    it = entry[2]
    o = _Obs()
    o.text = None if len(entry) < 4 else "observations[%d] without a code (perhaps %s) on %s" % (
        i, _lb(code), _iso(d) if type(d) is int else "an unusable date")
    o.code = code
    o.index = i
    o.item = it
    o.date = d
    o.attrs = _attrs_of(it)
    raw = it.get("value")
    if el[0] == "qualitative":
        o.unit = None
        if type(raw) is str and raw in el[1]:
            o.value = raw
        elif raw is None:
            o.value = _Bad("no value")
        else:
            o.value = _Bad("value %s is not one of %s" % (_short(raw), ", ".join(sorted(el[1]))))
        return o
    units = el[1]
    unit = it.get("unit")
    if unit is None:
        unit = "1" if el[2] == "1" else None
    elif type(unit) is str:
        aliases = rec.vocab["aliases"]
        if unit not in units or unit in aliases:  # (most records spell it as the vocabulary does)
            unit = _spelled(unit, units, aliases, code)
    v = _num(raw) if raw is not None else _Bad("no value")
    if type(v) is _Bad:
        o.value = v
        o.unit = unit if type(unit) is str else None
    elif unit is None:
        o.value = _Bad("value %s has no unit (it needs one such as %s)" % (_fmt(v), _unit_words(el[2]) or el[2]))
        o.unit = None
    elif type(unit) is not str or unit not in units:
        o.value = _Bad("unit %s cannot be converted to %s" % (_short(it.get("unit")), el[2]))
        o.unit = None
    else:
        o.value = v
        o.unit = unit
    return o


# Spellings of one UCUM unit: `10*9/l`, `10*9.L-1` and `10^9/L` are all `10*9/L`, and an
# annotation is only a comment (`{cells}/uL` is `/uL`, `{score}` is `1`). A unit a record spells
# another way than the vocabulary is found by its canonical form: each atom (litre written l or
# L, micro written u or µ) with its summed exponent, and the power of ten.
_UNIT_ANNOTATION = _re.compile(r"\{[^{}]*\}")
_UNIT_COMPONENT = _re.compile(r"([./]?)([^./]+)")
_UNIT_LITRE = _re.compile(r"(da|[munpfcdkhMG]?)l")
_UNIT_POWER = _re.compile(r"10[*^]([+-]?[0-9]{1,3})")
_UNIT_ATOM = _re.compile(r"(.*?[^0-9+-])([+-]?[0-9]{1,3})?")
_UNIT_CANON = {}
_RESPELL = {}


def _canon_unit(u):
    """A canonical form of a UCUM unit's spelling, or None when it is not a plain UCUM term."""
    c = _UNIT_CANON.get(u, _ABSENT)
    if c is not _ABSENT:
        return c
    c = None
    t = _UNIT_ANNOTATION.sub("", u).replace("\u00b5", "u").replace("\u03bc", "u")
    if len(u) <= 60 and not any(ch in t for ch in "{}()") and not any(ch.isspace() for ch in t):
        parts = _UNIT_COMPONENT.findall(t)
        if "".join(op + comp for op, comp in parts) == t:
            atoms = {}
            ok = True
            for op, comp in parts:
                sign = -1 if op == "/" else 1
                m = _UNIT_POWER.fullmatch(comp)
                if m:
                    atoms["10*"] = atoms.get("10*", 0) + sign * int(m.group(1))
                    continue
                if comp.isdigit():
                    if comp != "1":
                        atoms[comp] = atoms.get(comp, 0) + sign
                    continue
                m = _UNIT_ATOM.fullmatch(comp)
                if m is None or comp.count("[") != comp.count("]"):
                    ok = False
                    break
                atom = m.group(1)
                if _UNIT_LITRE.fullmatch(atom):
                    atom = atom[:-1] + "L"
                atoms[atom] = atoms.get(atom, 0) + sign * int(m.group(2) or 1)
            if ok:
                c = tuple(sorted((k, v) for k, v in atoms.items() if v))
    return _remember(_UNIT_CANON, u, c, 10000)


def _spelled(unit, units, aliases, key):
    """A record's unit string as the accepted unit it means: through the alias table (an alias
    that means several units: the one accepted here), else as another UCUM spelling (key: the
    accepted units' cache key). Unchanged when it means none of them."""
    alias = aliases.get(unit)
    if type(alias) is tuple:
        unit = next((a for a in alias if a in units), alias[0])
    elif alias is not None:
        unit = alias
    if unit not in units:
        unit = _respell(key, units, unit) or unit
    return unit


def _respell(code, units, unit):
    """The vocabulary's spelling of a unit a record writes another way, or None."""
    m = _RESPELL.get(code)
    if m is None:
        m = _RESPELL[code] = {}
        for a in sorted(units):
            c = _canon_unit(a)
            if c is not None:
                m.setdefault(c, a)
    c = _canon_unit(unit)
    return None if c is None else m.get(c)


class _Item:
    __slots__ = ("code", "index", "kind", "start", "end", "status", "attrs", "item", "classes",
                 "half_life", "dose", "route", "purpose", "class_text", "text", "wild")


def _attrs_of(it):
    a = it.get("attributes")
    if a is None:
        return {}
    if type(a) is not dict:
        return _Bad("attributes is not an object")
    return a


def _prepare_items(items, field, known, warnings, date_field, specs=None):
    out = {}
    for i, it in enumerate(items):
        if type(it) is not dict:
            warnings.append("%s[%d] is not an object; ignored" % (field, i))
            continue
        code = it.get("code")
        wild = False
        if type(code) is not str or not code.strip():
            # it could be any condition (procedure): every query over them sees it, as unknown
            warnings.append("%s[%d] has %s: it could be any %s, so a rule that reads one is unknown where "
                            "it could change the outcome" % (field, i, _no_code(code), field[:-1]))
            code = "%s[%d]" % (field, i)
            wild = True
        elif code not in known:
            warnings.append("unknown %s code %r ignored" % (field[:-1], code[:60]))
            continue
        x = _Item()
        x.text = None
        x.code = code
        x.index = i
        x.item = it
        x.wild = wild
        x.attrs = _attrs_of(it)
        if specs and not wild and x.attrs and type(x.attrs) is dict:
            spec = specs.get(code)
            if spec is not None:
                x.attrs = _check_attrs(code, x.attrs, spec, warnings)
        if date_field == "onset":
            x.kind = "condition"
            x.start = _date(it.get("onset"))
            end = it.get("end")
            x.end = None if end is None else _date(end)
            _end_after_start(x, "onset", warnings)
            st = it.get("status")
            x.status = st if st in ("active", "resolved") else _Bad(
                "status is missing" if st is None else "status %s is not active or resolved" % (_short(st),))
        else:
            x.kind = "procedure"
            x.start = _date(it.get("date"))
            x.end = x.start
            x.status = None
        out.setdefault(None if wild else code, []).append(x)
    return out


def _check_attrs(code, attrs, spec, warnings):
    """Attributes with a value outside the listed values or off their scale made unusable (a
    _Bad in their place, read as unknown), each with a warning naming the value."""
    out = attrs
    for name, s in spec.items():
        v = attrs.get(name)
        if v is None:
            continue
        if s[0] == "enum":
            if type(v) is str and v in s[1]:
                continue
            why = "%s %s is not one of %s" % (name, _short(v), ", ".join(s[1]))
        else:
            if type(v) in (int, float) and s[1] <= v <= s[2] and v == int(v):
                continue
            why = "%s %s is not on its scale (an integer from %d to %d)" % (name, _short(v), s[1], s[2])
        warnings.append("%s: %s; read as unusable" % (code[:60], why))
        if out is attrs:
            out = dict(attrs)
        out[name] = _Bad(why)
    return out


def _end_after_start(x, start_name, warnings):
    """An end before the start contradicts itself: the end is unknown (the start still places
    the item), with a warning."""
    if type(x.start) is int and type(x.end) is int and x.end < x.start:
        why = "end %s is before %s %s" % (_iso(x.end), start_name, _iso(x.start))
        warnings.append("%s: %s; its end is read as unknown" % (x.code[:60], why))
        x.end = _Bad(why)


def _treatment_end(it):
    """A treatment's last administration: None while ongoing (`"end": null`); a treatment that
    does not say (no `end` at all) has an unknown end, not an ongoing one."""
    end = it.get("end", _ABSENT)
    if end is None:
        return None
    if end is _ABSENT:
        return _Bad("end is not recorded (null means ongoing)")
    return _date(end)


def _prepare_treatments(items, vocab, warnings):
    known = vocab["classes"]
    out = {}
    for i, it in enumerate(items):
        if type(it) is not dict:
            warnings.append("treatments[%d] is not an object; ignored" % i)
            continue
        code = it.get("code")
        classes = it.get("classes")
        if type(code) is not str or not code.strip():
            warnings.append("treatments[%d] has %s: it is read by its classes; a rule that needs its agent "
                            "(a dose equivalence) is unknown" % (i, _no_code(code)))
            code = "treatments[%d]" % i
        usable = type(classes) is list and all(type(c) is str for c in classes)
        x = _Item()
        x.text = None
        x.code = code
        x.index = i
        x.kind = "treatment"
        x.item = it
        x.classes = tuple(classes) if usable else None
        x.class_text = None
        x.start = _date(it.get("start"))
        x.end = _treatment_end(it)
        _end_after_start(x, "start", warnings)
        x.status = None
        x.wild = False
        x.attrs = _attrs_of(it)
        x.half_life = it.get("half_life")
        x.dose = it.get("daily_dose")
        x.route = it.get("route")
        x.purpose = it.get("purpose")
        if not usable:
            # unusable classes: the treatment could be of any class, so every class query sees it
            out.setdefault(None, []).append(x)
            continue
        matched = False
        for c in classes:
            if c in known:
                lst = out.setdefault(c, [])
                if not lst or lst[-1] is not x:
                    lst.append(x)
                matched = True
            else:
                warnings.append("unknown treatment class %r of %r ignored" % (c[:60], code[:60]))
        if not matched and not classes:
            warnings.append("treatment %r has no class; ignored by the rules" % (code[:60],))
    return out


# ---------------------------------------------------------------------- windows
# A window is (lo_sure, lo_maybe, hi_sure, hi_maybe, text): a date t is inside for certain when
# lo_sure <= t <= hi_sure, outside for certain when t < lo_maybe or t > hi_maybe, and unknown
# in between (a duration that is only known to lie in an interval). None for a window whose
# anchor is absent or unusable; its reason is in the text.


def _days_floor(x):
    if x == _INF:
        return _NEVER_HI
    return int(_math.floor(x))


def _duration_days(anchor, dur):
    """(lo, hi, why, missing) in days for a duration spec evaluated against an anchor date.

    A spec is ("days", n) exact, ("months", n) calendar, ("range", lo, hi, why, missing) known
    to lie in an interval, ("extreme", "shorter"|"longer", a, b) or ("if", condition, a, b).
    The interval makes partial evaluation exact: the shorter of 28 d and an unknown number of
    half-lives lies in [0, 28].
    """
    kind = dur[0]
    if kind == "days":
        return (dur[1], dur[1], "", ())
    if kind == "months":
        start = _shift_months(anchor, -dur[1])
        if start is None:  # reaches before year 1: longer than any span of recorded dates
            return (_INF, _INF, "", ())
        n = anchor - start
        return (n, n, "", ())
    if kind == "range":
        return (dur[1], dur[2], dur[3], dur[4])
    if kind == "extreme":
        alo, ahi, awhy, amiss = _duration_days(anchor, dur[2])
        blo, bhi, bwhy, bmiss = _duration_days(anchor, dur[3])
        if dur[1] == "shorter":
            lo, hi = min(alo, blo), min(ahi, bhi)
        else:
            lo, hi = max(alo, blo), max(ahi, bhi)
        if lo == hi:
            return (lo, hi, "", ())
        return (lo, hi, _join((awhy, bwhy)), tuple(dict.fromkeys(amiss + bmiss)))
    # ("if", c, a, b)
    c = dur[1]
    if c[0] is True:
        return _duration_days(anchor, dur[2])
    if c[0] is False:
        return _duration_days(anchor, dur[3])
    alo, ahi, awhy, amiss = _duration_days(anchor, dur[2])
    blo, bhi, bwhy, bmiss = _duration_days(anchor, dur[3])
    return (min(alo, blo), max(ahi, bhi), _join((c[1], awhy, bwhy)), tuple(dict.fromkeys(c[2] + amiss + bmiss)))


def _dur_extreme(which, a, b):
    return ("extreme", which, a, b)


def _dur_if(c, a, b):
    return ("if", c, a, b)


def _window(rec, kind, anchor_name, dur, text):
    if kind == "ever":
        return (_NEVER_LO, _NEVER_LO, _NEVER_HI, _NEVER_HI, text, "", ())
    a = rec.anchors.get(anchor_name)
    if a is None or type(a) is _Bad:
        why = ("%s date is not recorded" % anchor_name if a is None
               else "%s date is unusable (%s)" % (anchor_name, a.why))
        miss = (anchor_name,)
        if dur is not None and kind in ("within_before", "within_after") and dur[0] != "months":
            # what else the window needs once the anchor is known (a half-life, say)
            lo, hi, dwhy, dmiss = _duration_days(0, dur)
            if lo != hi:
                miss += tuple(m for m in dmiss if m != anchor_name)
        return (None, why, miss)
    if kind == "on_or_before":
        return (_NEVER_LO, _NEVER_LO, a, a, text, "", ())
    return _window_on(a, kind, dur, text)


def _window_on(a, kind, dur, text):
    """within D before / after the date ordinal a."""
    if kind == "within_before" and dur[0] == "months":
        # calendar months back from the anchor, clamped to month end (before year 1: every date)
        start = _shift_months(a, -dur[1])
        if start is None:
            start = _NEVER_LO
        return (start, start, a, a, text, "", ())
    if kind == "within_after" and dur[0] == "months":
        end = _shift_months(a, dur[1])
        if end is None:
            end = _NEVER_HI
        return (a, a, end, end, text, "", ())
    lo, hi, why, miss = _duration_days(a, dur)
    if dur[0] != "days":  # a computed length (shorter of, by class, half-lives): say what it came to
        if lo == hi:
            text = "%s (%s d)" % (text, _fmt_calc(lo))
        elif hi == _INF:
            text = "%s (%s d or more)" % (text, _fmt_calc(lo))
        else:
            text = "%s (%s to %s d)" % (text, _fmt_calc(lo), _fmt_calc(hi))
    if kind == "within_before":
        return (a - _days_floor(lo), a - _days_floor(hi), a, a, text, why, miss)
    return (a, a, a + _days_floor(lo), a + _days_floor(hi), text, why, miss)


def _win(rec, spec):
    """The window of a constant spec (kind, anchor, duration, text), computed once per record."""
    if len(spec) != 4:  # a window already computed where it is used (_window_at)
        return spec
    key = id(spec)
    w = rec.wcache.get(key)
    if w is None:
        w = rec.wcache[key] = _window(rec, spec[0], spec[1], spec[2], spec[3])
    return w


def _window_at(rec, kind, d, until, dur, text):
    """A window measured from a computed date d = (ordinal, why, missing): an item's onset or
    end, a shifted date; `between` runs from d to until. An unusable or absent date leaves the
    window unknown, like an absent anchor. A date that is never reached (the end of an ongoing
    treatment) gives a window no recorded date falls in."""
    if d[0] is None:
        return (None, d[1], d[2])
    a = d[0]
    if kind == "between":
        if until[0] is None:
            return (None, until[1], until[2])
        return (a, a, until[0], until[0], "%s (%s to %s)" % (text, d[1], until[1]), "", ())
    text = "%s (%s)" % (text, d[1])
    if kind == "on_or_after":
        return (a, a, _NEVER_HI, _NEVER_HI, text, "", ())
    if kind == "on_or_before":
        return (_NEVER_LO, _NEVER_LO, a, a, text, "", ())
    if a >= _NEVER_HI:  # measured from a date never reached: an empty window (no date, not even "ongoing")
        return (_NEVER_HI + 1, _NEVER_HI + 1, _NEVER_HI, _NEVER_HI, text, "", ())
    return _window_on(a, kind, dur, text)


def _item_date(it, field):
    """A date an item carries, as (ordinal, why, missing): onset / start / date, or end. An
    ongoing treatment, or an active condition without an end, has not ended: its end is later
    than every date. A resolved condition without an end ended on its onset."""
    code = it.code
    if field != "end":
        v = it.date if type(it) is _Obs else it.start
    else:
        v = it.end
        if v is None:
            if it.kind == "treatment" or it.status == "active":
                return (_NEVER_HI, "%s ongoing" % _lb(code), ())
            if it.status == "resolved":
                v = it.start
            else:
                return (None, "%s: end not recorded and %s" % (_lb(code), it.status.why if type(it.status) is _Bad else "status unknown"),
                        (code,))
    if type(v) is not int:
        return (None, "%s has an unusable %s (%s)" % (_lb(code), field, v.why if type(v) is _Bad else "not recorded"), (code,))
    return (v, "%s %s %s" % (_lb(code), field, _iso(v)), ())


def _recorded_v(f, text):
    """recorded X for a number or a date: true when it is known, false otherwise (never unknown)."""
    v = f(False)
    if v[0] is not None:
        return (True, "%s is recorded (%s)" % (text, v[1]) if v[1] else "%s is recorded" % text, (), False)
    return (False, "%s is not recorded (%s)" % (text, v[1]) if v[1] else "%s is not recorded" % text, (), False)


def _recorded_b(r, text):
    """recorded X for a fact, a yes/no attribute or a category: true when known."""
    if r[0] is not None:
        return (True, "%s is recorded (%s)" % (text, r[1]) if r[1] else "%s is recorded" % text, (), False)
    return (False, "%s is not recorded (%s)" % (text, r[1]) if r[1] else "%s is not recorded" % text, (), False)


def _date_in(w, t):
    """Is date ordinal t inside window w: True, False or None."""
    if w[0] <= t <= w[2]:
        return True
    if t < w[1] or t > w[3]:
        return False
    return None


def _span_in(w, start, end):
    """Does the span [start, end] overlap window w (both ends inclusive)."""
    if start <= w[2] and end >= w[0]:
        return True
    if start > w[3] or end < w[1]:
        return False
    return None


def _half_life_days(item, k):
    """k half-lives of a treatment item, in days, as a duration spec."""
    hl = item.half_life
    if hl is None:
        return ("range", 0, _INF, "half-life of %s is not recorded" % _lb(item.code), (item.code,))
    if type(hl) is not dict:
        return ("range", 0, _INF, "half-life of %s is unusable" % _lb(item.code), (item.code,))
    v = hl.get("value")
    unit = hl.get("unit")
    key = (v, unit, k.numerator, k.denominator)
    try:
        r = _HL_DAYS.get(key)  # the same half-lives recur across a registry
    except TypeError:  # an unhashable value or unit: unusable, said below
        r = None
    if r is not None and type(v) in (int, float):
        return r
    v = _num(v)
    per = _HALF_LIFE_UNITS.get(unit) if type(unit) is str else None
    if per is None and type(unit) is str:
        per = _HALF_LIFE_UNITS.get(_TIME_ALIASES.get(unit.strip().lower(), ""))
    if isinstance(v, _Bad) or per is None or v < 0:
        return ("range", 0, _INF, "half-life of %s is unusable (%s %s)" % (
            item.code, _short(hl.get("value")), _short(unit)), (item.code,))
    days = _exact(v) * per * k
    return _remember(_HL_DAYS, key, ("range", days, days, "", ()), 10000)


_HL_DAYS = {}


_TIME_ALIASES = {"day": "d", "days": "d", "hr": "h", "hrs": "h", "hour": "h", "hours": "h", "week": "wk",
                 "weeks": "wk", "minute": "min", "minutes": "min", "month": "mo", "months": "mo", "year": "a",
                 "years": "a", "yr": "a", "d": "d", "h": "h", "wk": "wk"}
_HALF_LIFE_UNITS = {"d": _F(1), "h": _F(1, 24), "min": _F(1, 1440), "wk": _F(7), "s": _F(1, 86400),
                    "mo": _F(487, 16), "a": _F(1461, 4)}


# ---------------------------------------------------------------------- observations


def _latest(rec, code, wspec, pred=None, items=None):
    """Most recent observation of code inside a window.

    Returns (candidates, why, missing): candidates are the observations that could be the
    selected one (the most recent dated one, the last of those on its date, and any whose date
    is unusable, since it could lie anywhere); empty when nothing is there. With pred (a
    filter: `latest lvef ... where (method in {echo, muga})`), only readings it holds for.
    """
    w = _win(rec, wspec)
    if items is None:
        items = rec.obs.get(code)
        if pred is not None and items:
            return _latest_where(rec, code, wspec, w, items, pred)
    wild = None
    if items and None in rec.obs:  # the record has observations without a code
        wild = [e for e in items if len(e) > 3]
        items = [e for e in items if len(e) < 4]
    if w[0] is None:  # the anchor is missing (and the readings too, if there are none)
        return ((), "%s: %s" % (_lb(code), w[1]), w[2] if items else (code,) + w[2])
    if not items:
        return ((), "no %s %s" % (_lb(code), w[4]), (code,))
    lo, lom, hi, him = w[0], w[1], w[2], w[3]
    best = None
    bd = 0
    floating = None
    maybe = False
    for e in items:
        d = e[0]
        if type(d) is int:
            if lo <= d <= hi:
                if best is None or d >= bd:
                    best = e
                    bd = d
            elif lom <= d <= him:
                maybe = True
        elif floating is None:
            floating = [e]
        else:
            floating.append(e)
    if wild:
        r = _latest_wild(rec, code, w, best, bd, floating, maybe, wild)
        if r is not None:
            return r
    if best is None:
        if floating and lo == _NEVER_LO and hi == _NEVER_HI:
            # `ever` holds every reading: each undated one could be the most recent
            return (tuple(_make_obs(rec, code, e) for e in floating), "", ())
        if floating:
            return ((), "%s has an unusable date (%s)" % (_lb(code), floating[0][0].why), (code,))
        if maybe:
            return ((), "whether a reading of %s falls %s is unknown (%s)" % (_lb(code), w[4], w[5]), (code,) + tuple(w[6]))
        return ((), "no %s %s" % (_lb(code), w[4]), (code,))
    if floating and bd >= him:
        # the best is on the window's last day: an undated item beats it only on that same day,
        # later in the list (the tie rule)
        floating = [e for e in floating if e[1] > best[1]]
    if floating:
        return ((_make_obs(rec, code, best),) + tuple(_make_obs(rec, code, e) for e in floating), "", ())
    return ((_make_obs(rec, code, best),), "", ())


def _latest_wild(rec, code, w, best, bd, floating, maybe, wild):
    """_latest when observations without a code could be readings of code: those that could be
    the most recent one in the window are further candidates; with no reading of code for
    certain, whether there is one at all is unknown. None: they change nothing."""
    lo, lom, hi, him = w[0], w[1], w[2], w[3]
    extra = []
    for e in wild:
        d = e[0]
        if type(d) is not int:
            extra.append(e)  # it could lie anywhere
        elif lom <= d <= him and (best is None or d > bd or (d == bd and e[1] > best[1])):
            extra.append(e)
    if not extra:
        return None
    if best is None:
        if floating and lo == _NEVER_LO and hi == _NEVER_HI:
            return (tuple(_make_obs(rec, code, e) for e in floating + extra), "", ())
        return ((), "no %s known %s (an observation without a code could be one)" % (_lb(code), w[4]), (code,))
    if floating and bd >= him:
        floating = [e for e in floating if e[1] > best[1]]
    cands = [best] + (floating or []) + extra
    return (tuple(_make_obs(rec, code, e) for e in cands), "", ())


def _latest_where(rec, code, wspec, w, items, pred):
    """The most recent reading that passes a filter. A reading whose filter is unknown (its
    method not recorded) could be the selected one where it is at least as recent as the best
    sure one: it is then a candidate too, and decides only when all candidates agree."""
    sure = []
    maybe = []
    whys = []
    for e in items:
        p = pred(_make_obs(rec, code, e))
        if p[0] is True:
            sure.append(e)
        elif p[0] is None:
            maybe.append(e)
            whys.append(p[1])
    r = _latest(rec, code, wspec, None, sure) if sure else ((), "no %s %s passing the filter" % (_lb(code), w[4]) if w[0] is not None
                                                               else "%s: %s" % (_lb(code), w[1]), (code,))
    if not maybe or w[0] is None:
        return r
    cands = r[0]
    best = max((o.date for o in cands if type(o.date) is int), default=None)
    extra = []
    for e in maybe:
        d = e[0]
        if type(d) is not int or (_date_in(w, d) is not False and (best is None or d >= best)):
            extra.append(_make_obs(rec, code, e))
    if not extra:
        return r
    if not cands:
        return ((), "whether a reading of %s passes the filter is unknown (%s)" % (_lb(code), _join(_dedupe(whys))), (code,))
    return (cands + tuple(extra), "", ())


def _lim_if(c, a, b):
    if c[0] is True:
        return a
    if c[0] is False:
        return b
    return ("either", c, a, b)




def _limit_values(o, spec):
    """Alternatives [(float, Fraction, text) or (None, why, missing)] of a limit for observation o.

    A spec is ("const", {unit: (float, Fraction)}, text): a fixed limit folded to every accepted
    unit; ("ref", "uln"|"lln"|"lloq", k float, k Fraction, text): k times the observation's own
    reference limit; or ("either", condition, spec, spec) from _lim_if when the condition is unknown.
    """
    kind = spec[0]
    if kind == "const":
        lim = spec[1].get(o.unit)
        if lim is None:
            return [(None, "no limit for unit %s" % o.unit, (o.code,))]
        return [(lim[0], lim[1], spec[2])]
    if kind == "ref":
        which = spec[1]
        raw = o.item.get(which)
        if raw is None:
            return [(None, "%s has no %s, so the %s limit is unknown" % (o.describe(), which.upper(), spec[4]), (o.code,))]
        v = _num(raw)
        if not isinstance(v, _Bad) and (v <= 0 if which == "uln" else v < 0):
            v = _Bad("%s is not %s" % (_fmt(v), "greater than zero" if which == "uln" else "zero or more"))
        if isinstance(v, _Bad):
            return [(None, "%s has an unusable %s (%s)" % (o.describe(), which.upper(), v.why), (o.code,))]
        try:
            lf = spec[2] * v
        except OverflowError:
            lf = _INF
        return [(lf, (spec[3], v), "%s (%s %s)" % (spec[4], which.upper(), _fmt(v)))]
    # either: the condition is unknown; both limits are possible
    return [(None, spec[1][1], spec[1][2]) + ("cond",)] + _limit_values(o, spec[2]) + _limit_values(o, spec[3])


def _obs_cmp(rec, sel, op, spec):
    """The selected observation compared with a limit in its own unit."""
    cands, why, miss = sel
    if not cands:
        return (None, why, miss, False)
    if len(cands) == 1 and spec[0] == "const":
        o = cands[0]
        if type(o.value) is not _Bad:
            lim = spec[1].get(o.unit)
            if lim is not None:
                t = _holds(op, _cmp3(o.value, lim[0], lim[1]))
                return (t, "%s %s %s" % (o.describe(), op if t else _NEGATE[op], spec[2]), (), False)
    whys = []
    missing = []
    cond_missing = []
    per_candidate = []  # the truths each candidate gives over the limit's alternatives
    for o in cands:
        ts = []
        per_candidate.append(ts)
        if type(o.value) is _Bad:
            ts.append(None)
            whys.append("%s has an unusable value (%s)" % (o.describe(), o.value.why))
            missing.append(o.code)
            continue
        for alt in _limit_values(o, spec):
            if len(alt) == 4:  # the unknown condition of an either-limit: missing if it matters
                whys.append(alt[1])
                cond_missing.extend(alt[2])
                continue
            if alt[0] is None:
                ts.append(None)
                whys.append(alt[1])
                missing.extend(alt[2])
                continue
            t = _holds(op, _cmp3(o.value, alt[0], alt[1]))
            ts.append(t)
            whys.append("%s %s %s" % (o.describe(), op if t else _NEGATE[op], alt[2]))
    truths = [t for ts in per_candidate for t in ts]
    if truths and all(t is True for t in truths):
        return (True, _join(_dedupe(whys)), (), False)
    if truths and all(t is False for t in truths):
        return (False, _join(_dedupe(whys)), (), False)
    # what is missing is what could change the answer: the condition when one reading's answer
    # depends on it, the readings' dates when the candidates answer differently
    if any(True in ts and False in ts for ts in per_candidate):
        missing += cond_missing
    if len(per_candidate) > 1 and len({tuple(sorted(set(ts), key=str)) for ts in per_candidate}) > 1:
        missing += [o.code for o in cands]
    return (None, _join(_dedupe(whys)), tuple(dict.fromkeys(missing or cond_missing or [cands[0].code])), False)


def _dedupe(parts):
    out = []
    for p in parts:
        if p and p not in out:
            out.append(p)
    return out


def _obs_between(rec, sel, lo_spec, hi_spec):
    cands = sel[0]
    if len(cands) > 1:
        # an undated reading could be the selected one: each candidate is in range or not as a
        # whole (one may fail the low limit and another the high one: then it fails either way)
        rs = [_obs_between(rec, ((o,), "", ()), lo_spec, hi_spec) for o in cands]
        if all(r[0] is True for r in rs):
            return (True, _join(_dedupe([r[1] for r in rs])), (), False)
        if all(r[0] is False for r in rs):
            return (False, _join(_dedupe([r[1] for r in rs])), (), False)
        miss = tuple(dict.fromkeys(m for r in rs for m in r[2])) or (cands[0].code,)
        return (None, _join(_dedupe([r[1] for r in rs])), miss, False)
    a = _obs_cmp(rec, sel, ">=", lo_spec)
    b = _obs_cmp(rec, sel, "<=", hi_spec)
    r = _and(a, b)
    if r[0] is True:
        o = sel[0][0]
        return (True, "%s between %s and %s" % (o.describe(), lo_spec[2], hi_spec[2]), (), False)
    return r


def _obs_is(rec, sel, values, negated, text):
    """A qualitative observation's value is (not) one of values."""
    cands, why, miss = sel
    if not cands:
        return (None, why, miss, False)
    truths, whys, missing = [], [], []
    for o in cands:
        if type(o.value) is _Bad:
            truths.append(None)
            whys.append("%s has an unusable value (%s)" % (o.describe(), o.value.why))
            missing.append(o.code)
            continue
        t = (o.value in values) != negated
        truths.append(t)
        whys.append("%s%s %s (%s)" % ("" if why == "reading" else "most recent ", _lb(o.code), o.value,
                                      _iso(o.date) if type(o.date) is int else "date unusable"))
    if all(t is True for t in truths):
        return (True, _join(_dedupe(whys)), (), False)
    if all(t is False for t in truths):
        return (False, _join(_dedupe(whys)), (), False)
    return (None, _join(_dedupe(whys)), tuple(dict.fromkeys(missing or [cands[0].code])), False)


def _obs_number(sel, conv, unit_text, ex):
    """The selected observation's value converted to a unit, as V=(value, why, missing).

    ex: exactly (Fractions), else in floats (the first, fast pass of a comparison).
    """
    cands, why, miss = sel
    if not cands:
        return (None, why, miss)
    if len(cands) > 1:
        # an undated observation could be the most recent: the number is one of the candidates'
        vals = []
        whys = []
        for o in cands:
            v = _obs_number(((o,), "", ()), conv, unit_text, ex)
            if v[0] is None:
                return (None, "%s; it could be the most recent %s (its date is unusable)" % (v[1], _lb(o.code)), (o.code,))
            vals.extend(_vals(v[0]))
            whys.append(v[1])
        return (_alts(vals), " or ".join(whys), (cands[0].code,))  # which one it is: the dates decide
    o = cands[0]
    if type(o.value) is _Bad:
        return (None, "%s has an unusable value (%s)" % (o.describe(), o.value.why), (o.code,))
    c = conv.get(o.unit)
    if c is None:
        return (None, "%s cannot be converted to %s" % (o.describe(), unit_text), (o.code,))
    if o.unit == unit_text:
        if ex:
            return (_exact(o.value), o.describe(), ())
        try:
            return (float(o.value), o.describe(), ())
        except OverflowError:  # an integer beyond floats: infinite in the fast pass, exact later
            return (_INF if o.value > 0 else -_INF, o.describe(), ())
    if ex:
        v = _exact(o.value) * c[0] + c[1]
    else:
        try:
            v = o.value * c[2] + c[3]
        except OverflowError:
            v = _INF
    return (v, "%s (= %s %s)" % (o.describe(), _fmt_calc(v), _unit_words(unit_text)), ())


# ---------------------------------------------------------------------- numbers (exact)


class _Alts(tuple):
    """A number known to be one of a few values (a formula whose condition is unknown)."""

    __slots__ = ()


def _vals(x):
    return tuple(x) if type(x) is _Alts else (x,)


def _alts(values):
    out = tuple(dict.fromkeys(values))
    return out[0] if len(out) == 1 else _Alts(out)




def _n_arith(op, a, b, divisor_reads=()):
    """a op b for computed numbers V; divisor_reads: the codes the divisor reads, missing when
    it is zero (a creatinine of 0 cannot be divided by)."""
    x = a[0]
    y = b[0]
    if x is not None and y is not None and type(x) is not _Alts and type(y) is not _Alts:
        if op == "*":
            v = x * y
        elif op == "-":
            v = x - y
        elif op == "+":
            v = x + y
        elif y == 0:
            if type(y) is float:  # may be a tiny number rounded to 0.0: the exact pass decides
                v = _NAN
            else:
                return (None, "division by zero (%s)" % b[1], divisor_reads)
        else:
            try:
                v = x / y
            except OverflowError:
                v = _NAN
        why = _join((a[1], b[1])) if a[1] and b[1] else a[1] or b[1]  # height read twice: named once
        return (v, why, a[2] + b[2] if b[2] else a[2])
    if a[0] is None or b[0] is None:
        bad = [x for x in (a, b) if x[0] is None]
        return (None, _join(x[1] for x in bad), tuple(dict.fromkeys(m for x in bad for m in x[2])))
    out = []
    for x in _vals(a[0]):
        for y in _vals(b[0]):
            if op == "+":
                out.append(x + y)
            elif op == "-":
                out.append(x - y)
            elif op == "*":
                out.append(x * y)
            elif y == 0:
                return (None, "division by zero (%s)" % b[1], divisor_reads)
            else:
                out.append(x / y)
    return (_alts(out), _join((a[1], b[1])), tuple(dict.fromkeys(a[2] + b[2])))


def _n_scale(a, scale, offset):
    if a[0] is None:
        return a
    return (_alts(x * scale + offset for x in _vals(a[0])), a[1], a[2])


def _n_if(c, a, b):
    if c[0] is True:
        return (a[0], _join((c[1], a[1])), a[2])
    if c[0] is False:
        return (b[0], _join((c[1], b[1])), b[2])
    if a[0] is None or b[0] is None:
        bad = [x for x in (c, a, b) if x[0] is None]
        return (None, _join(x[1] for x in bad), tuple(dict.fromkeys(m for x in bad for m in x[2])))
    # the condition is unknown: the number is one of both branches
    return (_alts(_vals(a[0]) + _vals(b[0])), _join((c[1], a[1], b[1])), tuple(dict.fromkeys(c[2] + a[2] + b[2])))


def _fmt_calc(x):
    """A computed number for a reason sentence (six significant digits)."""
    if type(x) is int:
        return str(x)
    if isinstance(x, _F) and x.denominator == 1 and abs(x.numerator) < 10 ** 15:
        return str(x.numerator)
    try:
        f = float(x)
    except OverflowError:  # an exact value beyond floats
        return "-1e308+" if x < 0 else "1e308+"
    if f.is_integer() and abs(f) < 1e15:
        return str(int(f))
    return "%.6g" % f


def _n_cmp(left, op, right, unit_text):
    """A comparison of two computed numbers: in floats, and exactly when they are within
    rounding of each other (so a clearance of exactly 50 mL/min is at the limit)."""
    a = left(False)
    b = right(False)
    x = a[0]
    y = b[0]
    exact = type(x) in (int, _F) and type(y) in (int, _F)  # an age, a count: nothing to refine
    if x is not None and y is not None and not exact and any(_near(p, q) for p in _vals(x) for q in _vals(y)):
        a = left(True)
        b = right(True)
    return _n_cmp_values(a, op, b, unit_text)


def _near(x, y):
    """Are two numbers within floating-point rounding of each other (or beyond floats)?"""
    try:
        d = float(x) - float(y)
    except OverflowError:
        return True
    return d != d or abs(d) <= 1e-9 * (abs(float(y)) + 1.0)


def _n_cmp_values(a, op, b, unit_text):
    if a[0] is None or b[0] is None:
        bad = [x for x in (a, b) if x[0] is None]
        return (None, _join(x[1] for x in bad), tuple(dict.fromkeys(m for x in bad for m in x[2])), False)
    u = (" " + _unit_words(unit_text)) if unit_text and _unit_words(unit_text) else ""
    truths = []
    shown = []
    for x in _vals(a[0]):
        for y in _vals(b[0]):
            d = x - y
            t = _holds(op, (d > 0) - (d < 0))
            truths.append(t)
            shown.append("%s%s %s %s%s" % (_fmt_calc(x), u, op if t else _NEGATE[op], _fmt_calc(y), u))
    head = " or ".join(shown)
    why = "%s: %s" % (a[1], head) if a[1] else head
    if all(truths):
        return (True, why, (), False)
    if not any(truths):
        return (False, why, (), False)
    return (None, why, tuple(dict.fromkeys(a[2] + b[2])), False)


def _birth_and_anchor(rec, anchor_name):
    """(birth, anchor) as day numbers, or (V, None): the unknown age, naming what is missing."""
    b = rec.birth
    if b is None:
        return (None, "birth_date is not recorded", ("birth_date",)), None
    if isinstance(b, _Bad):
        return (None, "birth_date is unusable (%s)" % b.why, ("birth_date",)), None
    a = rec.anchors.get(anchor_name)
    if a is None:
        return (None, "%s date is not recorded" % anchor_name, (anchor_name,)), None
    if isinstance(a, _Bad):
        return (None, "%s date is unusable (%s)" % (anchor_name, a.why), (anchor_name,)), None
    return b, a


def _age(rec, anchor_name):
    """Age in completed calendar years at the anchor, as V."""
    b, a = _birth_and_anchor(rec, anchor_name)
    if a is None:
        return b
    bd = _dt.date.fromordinal(b)
    ad = _dt.date.fromordinal(a)
    years = ad.year - bd.year - ((ad.month, ad.day) < (bd.month, bd.day))
    return (years, "age %d years at %s %s (born %s)" % (years, anchor_name, ad.isoformat(), bd.isoformat()), ())


_AGE_WORDS = {"d": "days", "wk": "weeks", "mo": "months", "a": "years"}


def _age_in(rec, anchor_name, unit):
    """Age in completed calendar days, weeks, months or years at the anchor, as V: the largest
    N with birth <= anchor - N units (months and years counted back from the anchor and clamped
    to the month's end, as windows are; so a child born on 31 January is one month old on
    1 March, and one born on 29 February has the birthday on 1 March in a common year)."""
    b, a = _birth_and_anchor(rec, anchor_name)
    if a is None:
        return b
    if unit in ("d", "wk"):
        n = (a - b) // (7 if unit == "wk" else 1)
    else:
        bd = _dt.date.fromordinal(b)
        ad = _dt.date.fromordinal(a)
        step = 12 if unit == "a" else 1
        n = ((ad.year - bd.year) * 12 + ad.month - bd.month) // step
        while n > 0 and _shift_months(a, -n * step) < b:
            n -= 1
        if a < b:
            n = -1  # born after the anchor
    return (n, "age %d %s at %s %s (born %s)" % (n, _AGE_WORDS[unit], anchor_name, _iso(a), _iso(b)), ())


# ---------------------------------------------------------------------- facts and sex


def _fact(rec, name, judgment):
    """A fact, named in its reason by its label: "“Informed consent signed”: yes"."""
    v = rec.facts.get(name)
    said = _FACT_LABELS.get(name, name)
    if v is True:
        return (True, "%s: yes" % said, (), False)
    if v is False:
        return (False, "%s: no" % said, (), False)
    if v is None:
        if judgment:
            return (None, "%s: not recorded (investigator judgment)" % said, (), True)
        return (None, "%s: not recorded" % said, (name,), False)
    return (None, "%s: unusable (%s)" % (said, v.why), (name,), False)


def _sex_is(rec, values, negated):
    s = rec.sex
    if s is None:
        return (None, "sex is not recorded", ("sex",), False)
    if isinstance(s, _Bad):
        return (None, s.why, ("sex",), False)
    t = (s in values) != negated
    return (t, "sex %s" % s, (), False)


# ---------------------------------------------------------------------- items (closed world)


def _occurs(it, w):
    """Does item it fall in window w: True, False or None, with a reason when unknown.

    An unusable date could be any date, so it decides nothing by itself; the other end of the
    item may still decide (a treatment whose last administration is before the window).
    """
    if w[0] == _NEVER_LO and w[2] == _NEVER_HI:
        return (True, "")
    if w[1] > w[3]:  # an empty window (measured from a date never reached): nothing is in it
        return (False, "")
    s = it.start
    kind = it.kind
    if kind == "procedure":
        if type(s) is _Bad:
            return (None, "%s has an unusable date (%s)" % (_lb(it.code), s.why))
        return (_date_in(w, s), "")
    e = it.end
    why = ""
    if type(e) is _Bad:
        why = "%s has an unusable end date (%s)" % (_lb(it.code), e.why)
        e = None  # unknown: [start, forever]
        e_known = False
    elif e is None:
        if kind == "treatment":
            e = _NEVER_HI  # ongoing: extends to the anchor
        else:
            st = it.status
            if st == "active":
                e = _NEVER_HI
            elif st == "resolved":
                e = s  # a resolved condition without end ended on its onset
            else:
                why = "%s: %s" % (_lb(it.code), st.why)
        e_known = e is not None
    else:
        e_known = True
    if type(s) is _Bad:
        why = _join((why, "%s has an unusable date (%s)" % (_lb(it.code), s.why)))
        if e_known and type(e) is int:
            if e < w[1]:
                return (False, "")  # whatever its start, it was over before the window
            if w[0] <= e <= w[2]:
                return (True, "")  # whatever its start, it was there on its last date, in the window
        return (None, why)
    if not e_known:
        if s > w[3]:
            return (False, "")  # it began after the window
        if w[0] <= s <= w[2]:
            return (True, "")  # present on its first date, which lies in the window
        return (None, why)
    return (_span_in(w, s, e), "")


def _active(it):
    st = it.status
    if st == "active":
        return (True, "")
    if st == "resolved":
        return (False, "")
    return (None, "%s: %s" % (_lb(it.code), st.why if isinstance(st, _Bad) else "status is missing"))


def _item_text(it):
    """An item as a reason names it (made once per item)."""
    t = it.text
    if t is not None:
        return t
    kind = it.kind
    if kind == "procedure":
        d = it.start
        t = "%s on %s" % (_lb(it.code), _iso(d) if type(d) is int else "an unusable date")
    elif kind == "treatment":
        s = it.start
        e = it.end
        st = _iso(s) if type(s) is int else "?"
        en = "ongoing" if e is None else (_iso(e) if type(e) is int else "?")
        t = "%s (%s) %s to %s" % (_lb(it.code), ", ".join(map(_lb, it.classes)) if it.classes is not None else "classes unusable", st, en)
    else:
        s = it.start
        st = _iso(s) if type(s) is int else "unusable onset"
        extra = ""
        if it.end is not None:
            extra = ", ended %s" % (_iso(it.end) if type(it.end) is int else "?")
        status = it.status if type(it.status) is str else "status unknown"
        t = "%s (%s, onset %s%s)" % (_lb(it.code), status, st, extra)
    it.text = t
    return t


def _about(it, why):
    """A reason about an item, after the item's own text: without the item's name in front of
    its parts ("solid tumour (active, ...): extent is not recorded", not "...: solid tumour:
    extent is not recorded")."""
    head = _lb(it.code) + ": "
    if head not in why:
        return why
    return "; ".join(a[len(head):] if a.startswith(head) else a for a in why.split("; "))


def _query(rec, kind, codes, quant, active, wspec, wfn, pred, negate_pred, text, explain=True):
    """any / no / every over the closed-world items of codes.

    wspec is a constant window spec (or None when the window depends on the item: then
    wfn(item) gives it, or when there is no window); pred(item) is the where/unless filter
    (negate_pred for unless). An item counts when it is active (if asked), falls in the window,
    and passes the filter; each of these can be unknown, and the item then counts as unknown.
    When none counts, the reason names the items that did not and why (explain).
    """
    items = _collect(rec, kind, codes)
    if not items:
        return _quant_empty(quant, text)
    if wspec is not None:
        w = _win(rec, wspec)
    elif wfn is None:
        w = _EVER
    else:
        w = None
    found_whys = []
    unknown_whys = []
    counted = [] if type(quant) is tuple and len(quant) > 2 else None  # distinct: (item, sure) per item
    excepted = []
    not_counted = []  # items outside the window or ruled out by the filter, with why
    missing = []
    for it in items:
        t = True
        whys = []
        miss = []
        if kind == "treatment" and it.classes is None:
            # its classes are unusable: it could be of any class
            t = None
            whys.append("the classes of %s are unusable" % _lb(it.code))
            miss.append(it.code)
        elif it.wild:
            t = None
            whys.append("%s has no code: it could be %s" % (_lb(it.code), text))
            miss.append(it.code)
        if active:
            a, awhy = _active(it)
            if a is False:
                continue
            if a is None:
                t = None
                whys.append(awhy)
                miss.append(it.code)
        ww = w if w is not None else wfn(it)
        own_dates = True  # whether the item's own dates are missing from what decides it
        if ww[0] is None:  # the window's anchor is absent: the item could fall anywhere in it
            inside, iwhy = None, ww[1]
            wtext = ""
            miss.extend(ww[2])
            own_dates = type(it.start) is _Bad or type(it.end) is _Bad or (
                it.kind == "condition" and it.end is None and type(it.status) is _Bad)
        else:
            wtext = ww[4]
            inside, iwhy = _occurs(it, ww)
            if inside is None and not iwhy:
                iwhy = "whether it falls %s is unknown (%s)" % (wtext, ww[5] or "window unknown")
                miss.extend(ww[6])
        if inside is False:
            if explain and len(not_counted) < 3:
                not_counted.append("%s: not %s" % (_item_text(it), wtext))
            continue
        if inside is None:
            t = None
            whys.append(iwhy)
            if own_dates:
                miss.append(it.code)
        parts = ""
        if pred is not None:
            p = pred(it)
            if negate_pred:
                p = _not(p)
            if p[0] is False:
                if negate_pred:
                    excepted.append("%s %s%s, excepted: %s" % (
                        _item_text(it), "perhaps " if inside is None else "", wtext, _about(it, p[1])))
                elif explain and len(not_counted) < 3:
                    not_counted.append("%s%s: %s" % (_item_text(it), " " + wtext if wtext else "", _about(it, p[1])))
                continue
            if p[0] is None:
                t = None
                whys.append(p[1])
                miss.extend(p[2] or (it.code,))
            else:
                parts = p[1]
        if t is True:
            found_whys.append("%s %s%s" % (_item_text(it), wtext, (": " + parts) if parts else ""))
        else:
            unknown_whys.append("%s: %s" % (_item_text(it), _about(it, _join(whys))))
            missing.extend(miss or (it.code,))
        if counted is not None:
            counted.append((it, t is True))
    if counted is not None:
        return _count_distinct(quant, counted, found_whys, unknown_whys, missing, text)
    if type(quant) is tuple:
        return _count(quant, found_whys, unknown_whys, missing, text)
    if found_whys:
        found = (True, _join(found_whys), (), False)
    elif unknown_whys:
        found = (None, _join(unknown_whys), tuple(dict.fromkeys(missing)), False)
    else:
        found = (False, _join(excepted) or _join(not_counted) or "no %s" % text, (), False)
    if quant == "any":
        return found
    if quant == "no":
        return _not(found)
    return found




_EMPTY = {}


def _count_distinct(quant, counted, found, unknown, missing, text):
    """at least N distinct / at most N distinct: the named codes (treatment classes) that items
    surely stand for, and those they perhaps stand for (an item that perhaps counts; a
    treatment whose classes are unusable could be of any)."""
    which, n, names = quant
    sure = set()
    maybe = set()
    for it, is_sure in counted:
        if it.kind == "treatment":
            codes = set(names) if it.classes is None else set(it.classes) & set(names)
            if it.classes is None:
                is_sure = False
        else:
            codes = {it.code}
        (sure if is_sure else maybe).update(codes)
    maybe -= sure
    ns, top = len(sure), len(sure) + len(maybe)
    if which == "at_least":
        t = True if ns >= n else (False if top < n else None)
    else:
        t = True if top <= n else (False if ns > n else None)
    why = "%d distinct of %s%s" % (ns, text, (": " + ", ".join(sorted(map(_lb, sure)))) if sure else "")
    if maybe:
        why += "; perhaps also %s (%s)" % (", ".join(sorted(map(_lb, maybe))), _join(unknown))
    why += " (%s %d)" % (which.replace("_", " "), n)
    return (t, why, tuple(dict.fromkeys(missing)) if t is None else (), False)


def _count(quant, found, unknown, missing, text):
    """at least N / at most N items: items that surely count and items that perhaps count (an
    unusable date, an unrecorded attribute) make it unknown only where they could change it."""
    which, n = quant
    sure = len(found)
    top = sure + len(unknown)
    if which == "at_least":
        t = True if sure >= n else (False if top < n else None)
    else:
        t = True if top <= n else (False if sure > n else None)
    why = "%d %s%s" % (sure, text, (": " + _join(found)) if found else "")
    if unknown:
        why += "; %d more perhaps: %s" % (len(unknown), _join(unknown))
    why += " (%s %d)" % (which.replace("_", " "), n)
    return (t, why, tuple(dict.fromkeys(missing)) if t is None else (), False)


def _quant_empty(quant, text):
    """The result of a query that finds nothing (closed world), built once per query."""
    if type(quant) is tuple:  # at least N / at most N
        return (quant[0] == "at_most" or quant[1] <= 0, "no %s" % text, (), False)
    r = _EMPTY.get((quant, text))
    if r is None:
        r = _EMPTY[(quant, text)] = (quant == "no", "no %s" % text, (), False)
    return r


def _collect(rec, kind, codes):
    if kind == "condition":
        src = rec.conds
    elif kind == "procedure":
        src = rec.procs
    else:
        src = rec.treats
    if None in src:  # items without a code, treatments whose classes are unusable: in every query
        codes = tuple(codes) + (None,)
    if len(codes) == 1:
        return src.get(codes[0], ())
    seen = []
    for c in codes:
        lst = src.get(c)
        if lst:
            if not seen:
                seen = list(lst)
                continue
            for it in lst:
                if it not in seen:
                    seen.append(it)
    if len(seen) > 1:
        seen.sort(key=_by_index)
    return seen


def _by_index(it):
    return it.index


def _every(rec, kind, codes, active, wspec, wfn, pred, negate_pred, text):
    """every item in the window satisfies pred (vacuously true for no item: closed world);
    with negate_pred (unless), every item fails pred."""
    if negate_pred:
        inner = pred
        pred = lambda it: _not(inner(it))
    neg = _query(rec, kind, codes, "any", active, wspec, wfn, pred, True, text, False)
    r = _not(neg)
    if r[0] is True and not neg[1].startswith("no "):
        return (True, "every %s" % text, (), False)
    return r


def _obs_query(rec, code, quant, wspec, pred, text):
    """any / no / every over observations of code in a window (open world: none is unknown)."""
    w = _win(rec, wspec)
    if w[0] is None:
        return (None, "%s: %s" % (_lb(code), w[1]), w[2] if rec.obs.get(code) else (code,) + w[2], False)
    results = []
    n = 0
    for e in rec.obs.get(code, ()):
        d = e[0]
        # a reading with an unusable date could lie anywhere in time: in an `ever` window, inside
        inside = _date_in(w, d) if type(d) is int else (
            True if w[0] == _NEVER_LO and w[2] == _NEVER_HI else False if w[1] > w[3] else None)
        if inside is False:
            continue
        p = pred(_make_obs(rec, code, e))
        if quant == "every":
            p = _not(p)
        if inside is None:
            p = _and((None, "%s has an unusable date" % _lb(code) if type(d) is not int else
                      "whether a reading of %s falls %s is unknown" % (_lb(code), w[4]), (code,), False), p)
        elif len(e) > 3:  # an observation without a code: perhaps one of these
            p = _and((None, "observations[%d] has no code: perhaps a %s" % (e[1], _lb(code)), (code,), False), p)
        else:
            n += 1
        results.append(p)
    if not results:
        return (None, "no %s %s" % (_lb(code), w[4]), (code,), False)
    found = _or(*results)
    if found[0] is False and n == 0:
        # open world: no reading is known to lie in the window
        found = (None, "no %s known to lie %s (only readings with unusable dates)" % (_lb(code), w[4]), (code,), False)
    elif found[0] is False:
        found = (False, "%d %s reading(s) %s, none %s" % (n, _lb(code), w[4], text), (), False)
    if quant == "any":
        return found
    if quant == "no":
        return _not(found)
    r = _not(found)
    if r[0] is True:
        return (True, "%d %s reading(s) %s, all %s" % (n, _lb(code), w[4], text), (), False)
    return r




# ---------------------------------------------------------------------- item fields


def _attr(it, name, kind, values=None):
    """An attribute of a condition or procedure item as a V or boolean result."""
    a = it.attrs
    if isinstance(a, _Bad):
        return _Bad("%s: %s" % (_lb(it.code), a.why))
    if name not in a or a[name] is None:
        return _Bad("%s: %s is not recorded" % (_lb(it.code), name))
    v = a[name]
    if type(v) is _Bad:  # off its scale or outside its listed values (_check_attrs)
        return _Bad("%s: %s" % (_lb(it.code), v.why))
    if kind == "boolean":
        if type(v) is not bool:
            return _Bad("%s: %s is %s, not true or false" % (_lb(it.code), name, _short(v)))
        return v
    if kind == "number":
        n = _num(v)
        if isinstance(n, _Bad):
            return _Bad("%s: %s %s" % (_lb(it.code), name, n.why))
        return n
    if kind == "date":
        d = _date(v)
        if isinstance(d, _Bad):
            return _Bad("%s: %s %s" % (_lb(it.code), name, d.why))
        return d
    if type(v) is not str:
        return _Bad("%s: %s is %s, not text" % (_lb(it.code), name, _short(v)))
    if values is not None and v not in values:
        return _Bad("%s: %s %s is not one of %s" % (_lb(it.code), name, _short(v), ", ".join(values)))
    return v


def _status_is(it, tests, negated):
    st = it.status
    if isinstance(st, _Bad):
        return (None, "%s: %s" % (_lb(it.code), st.why), (it.code,), False)
    t = (st in tests) != negated
    return (t, "status %s" % st, (), False)


def _attr_bool(it, name):
    v = _attr(it, name, "boolean")
    if isinstance(v, _Bad):
        return (None, v.why, (it.code,), False)
    return (v, "%s %s" % (name, "yes" if v else "no") if v else "not %s" % name, (), False)


def _attr_num(it, name):
    v = _attr(it, name, "number")
    if isinstance(v, _Bad):
        return (None, v.why, (it.code,))
    return (_exact(v), "%s %s" % (name, _fmt(v)), ())


def _attr_date(it, name):
    v = _attr(it, name, "date")
    if isinstance(v, _Bad):
        return (None, v.why, (it.code,))
    return (v, "%s %s" % (name, _iso(v)), ())


def _attr_qty(it, name, unit, units):
    """A number attribute measured in a unit ({"value": 12, "unit": "mm"}), as V in `unit`:
    converted exactly from any unit the vocabulary accepts for it."""
    a = it.attrs
    if isinstance(a, _Bad):
        return (None, "%s: %s" % (_lb(it.code), a.why), (it.code,))
    q = a.get(name)
    if q is None:
        return (None, "%s: %s is not recorded" % (_lb(it.code), name), (it.code,))
    if type(q) is not dict:
        return (None, "%s: %s is %s, not a quantity {value, unit}" % (_lb(it.code), name, _short(q)), (it.code,))
    v = _num(q.get("value"))
    u = q.get("unit")
    if type(u) is str:
        u = _spelled(u, units, _UNIT_ALIASES, ("attr", id(units)))
    conv = units.get(u) if type(u) is str else None
    if isinstance(v, _Bad) or conv is None:
        return (None, "%s: %s %s %s is unusable" % (_lb(it.code), name, _short(q.get("value")), _short(q.get("unit"))), (it.code,))
    x = _exact(v) * conv[0] + conv[1]
    shown = "%s %s" % (_fmt(v), u)
    if u != unit:
        shown += " (= %s %s)" % (_fmt(x), unit)
    return (x, "%s %s" % (name, shown), ())


def _attr_is(it, name, kind, values, tests, negated):
    v = _attr(it, name, kind, values)
    if isinstance(v, _Bad):
        return (None, v.why, (it.code,), False)
    t = (v in tests) != negated
    return (t, "%s %s" % (name, v), (), False)


def _field_is(it, name, tests, negated):
    """route / purpose of a treatment (free text in the record)."""
    v = getattr(it, name)
    if v is None:
        return (None, "%s: %s is not recorded" % (_lb(it.code), name), (it.code,), False)
    if type(v) is not str:
        return (None, "%s: %s is %s, not text" % (_lb(it.code), name, _short(v)), (it.code,), False)
    t = (v in tests) != negated
    return (t, "%s %s" % (name, v), (), False)


def _class_in(it, tests, negated):
    if it.classes is None:
        return (None, "the classes of %s are unusable" % _lb(it.code), (it.code,), False)
    t = any(map(tests.__contains__, it.classes)) != negated
    text = it.class_text
    if text is None:
        text = it.class_text = "class " + ", ".join(map(_lb, it.classes))
    return (t, text, (), False)


def _dose_equivalent(it, table, unit_text, unit_of_table="mg"):
    """The item's daily dose converted through an equivalence table, as V in the table's unit."""
    factors, units = table
    d = it.dose
    if d is None:
        return (None, "%s: daily dose is not recorded" % _lb(it.code), (it.code,))
    if type(d) is not dict:
        return (None, "%s: daily dose is unusable" % _lb(it.code), (it.code,))
    v = _num(d.get("value"))
    unit = d.get("unit")
    if type(unit) is str:  # an alias (mcg) or UCUM's own other spelling (ug) of an accepted unit
        unit = _spelled(unit, units, _UNIT_ALIASES, ("dose", id(units)))
    conv = units.get(unit) if type(unit) is str else None
    if isinstance(v, _Bad) or conv is None:
        return (None, "%s: daily dose %s %s is unusable" % (_lb(it.code), _short(d.get("value")), _short(d.get("unit"))), (it.code,))
    f = factors.get(it.code)
    if f is None and type(it.code) is str:
        f = factors.get(it.code.strip().lower())  # drug names as sites write them (Dexamethasone)
    if f is None:
        return (None, "%s has no %s equivalent in the table" % (_lb(it.code), unit_text), (it.code,))
    x = (_exact(v) * conv) * f
    return (x, "%s %s %s/day (= %s %s %s)" % (_lb(it.code), _fmt(v), unit, _fmt(x), unit_of_table, unit_text), ())


_UNIT_ALIASES = {}  # the generated module fills it from its vocabulary's alias table


def _course_days(it, rec, anchor_name):
    """Length of a treatment course counting first and last day; ongoing counts to the anchor."""
    s = it.start
    if isinstance(s, _Bad):
        return (None, "%s: start %s" % (_lb(it.code), s.why), (it.code,))
    e = it.end
    if e is None:
        a = rec.anchors.get(anchor_name)
        if type(a) is not int:
            return (None, "%s is ongoing and %s is not recorded" % (_lb(it.code), anchor_name), (it.code, anchor_name))
        e = a
    elif isinstance(e, _Bad):
        return (None, "%s: end %s" % (_lb(it.code), e.why), (it.code,))
    n = e - s + 1
    return (_F(n), "course of %d days" % n, ())


def _half_life_value(it):
    """half-life as a number of days V (for comparisons)."""
    spec = _half_life_days(it, 1)
    if spec[1] != spec[2]:
        return (None, spec[3], spec[4])
    return (spec[1], "half-life %s d" % _fmt(spec[1]), ())


def _date_cmp(a, op, b):
    if a[0] is None or b[0] is None:
        bad = [x for x in (a, b) if x[0] is None]
        return (None, _join(x[1] for x in bad), tuple(dict.fromkeys(m for x in bad for m in x[2])), False)
    d = a[0] - b[0]
    t = _holds(op, (d > 0) - (d < 0))
    return (t, "%s %s %s" % (a[1], op if t else _NEGATE[op], b[1]), (), False)


def _anchor_date(rec, name):
    a = rec.anchors.get(name)
    if a is None:
        return (None, "%s date is not recorded" % name, (name,))
    if isinstance(a, _Bad):
        return (None, "%s date is unusable (%s)" % (name, a.why), (name,))
    return (a, "%s %s" % (name, _iso(a)), ())


def _date_shift(rec, d, sign, dur, text):
    if d[0] is None:
        return d
    if d[0] >= _NEVER_HI:  # a date never reached (an ongoing treatment's end) stays so
        return d
    if dur[0] == "months":
        if not 1 <= d[0] <= _ORD_MAX:
            return (None, "%s (%s): a shift in calendar months from a date beyond the calendar is undefined"
                    % (_iso(d[0]), text), ())
        s = _shift_months(d[0], sign * dur[1])
        if s is None:  # past an end of the calendar: before (after) every date a record holds
            s = _ORD_LO if sign * dur[1] < 0 else _ORD_HI
        return (s, "%s (%s)" % (_iso(s), text), ())
    lo, hi, why, miss = _duration_days(d[0], dur)
    if lo != hi:
        return (None, why, miss)
    shifted = d[0] + sign * _days_floor(lo)
    return (shifted, "%s (%s)" % (_iso(shifted), text), ())


# ---------------------------------------------------------------------- results




def _run(record, vocab, trial, criteria, cohorts=(), rules=None):
    """Evaluate one record: result format 1 (or an error result). Never raises.
    rules: the fingerprint of the rules, carried by every result as "rules" when given."""
    pid = None
    try:
        if type(record) is dict:
            p = record.get("id")
            pid = p if type(p) is str and p.strip() else None
        rec = _prepare(record, vocab)
    except _RecordError as exc:
        return _with_rules({"format": 1, "patient_id": pid, "status": "error", "error": str(exc)}, rules)
    except Exception as exc:  # a defect in this evaluator: report, never raise
        return _with_rules({"format": 1, "patient_id": pid, "status": "error",
                            "error": "internal error reading the record: %s" % (type(exc).__name__,)}, rules)
    out = []
    append = out.append
    n_fail = 0
    n_pass = 0
    for cid, ref, kind, fn in criteria:
        try:
            r = fn(rec)
        except Exception as exc:  # a defect in this evaluator: the criterion cannot be decided
            r = (None, "internal error evaluating %s: %s" % (cid, type(exc).__name__), (), False)
        t = r[0]
        if t is None:
            outcome = "review" if r[3] and not r[2] else "unknown"
        elif (t is True) == (kind == "inclusion"):
            outcome = "pass"
            n_pass += 1
        else:
            outcome = "fail"
            n_fail += 1
        append({"id": cid, "ref": ref, "kind": kind, "outcome": outcome,
                "reason": r[1] or outcome, "missing": list(r[2]) if outcome == "unknown" else []})
    status = "ineligible" if n_fail else ("eligible" if n_pass == len(out) else "indeterminate")
    result = {"format": 1, "patient_id": rec.id, "trial": trial}
    if rules is not None:
        result["rules"] = rules
    result["status"] = status
    result["criteria"] = out
    result["warnings"] = list(dict.fromkeys(rec.warnings))
    if cohorts:
        result["status"], result["cohorts"] = _cohort_status(out, cohorts)
    return result


def _cohort_status(out, cohorts):
    """Per cohort, the status over the criteria that apply to it (those of every cohort and its
    own); the patient is eligible when eligible for some cohort, ineligible when ineligible for
    every cohort, else indeterminate."""
    per = []
    for name, applies in cohorts:
        outcomes = [c["outcome"] for c, a in zip(out, applies) if a]
        st = ("ineligible" if "fail" in outcomes else
              "eligible" if all(o == "pass" for o in outcomes) else "indeterminate")
        per.append({"id": name, "status": st})
    sts = [c["status"] for c in per]
    status = ("eligible" if "eligible" in sts else
              "ineligible" if all(s == "ineligible" for s in sts) else "indeterminate")
    return status, per


def _with_rules(result, rules):
    """An error result with the rules' fingerprint after the patient id (when there is one)."""
    if rules is None:
        return result
    return {"format": 1, "patient_id": result["patient_id"], "rules": rules, "status": "error",
            "error": result["error"]}


# ---- end of runtime ----------------------------------------------------------------------
