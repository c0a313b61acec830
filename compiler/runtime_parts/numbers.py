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
