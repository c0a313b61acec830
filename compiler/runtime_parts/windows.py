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
    """recorded X for a number or a date: true when it is known, false otherwise (never unknown).
    The float pass gives NaN where it cannot tell (a divisor rounded to 0.0, an overflow): the
    exact pass decides then (a height of 0 cm makes a body mass index not recorded)."""
    v = f(False)
    if v[0] is not None and any(type(x) is float and x != x for x in _vals(v[0])):
        v = f(True)
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
