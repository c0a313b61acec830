# ---- Elig evaluator runtime (standard library only) ------------------------------------
# This text and the other parts of compiler/runtime_parts, in the order of its PARTS, are copied
# verbatim into every generated evaluator module by the Python backend.
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
