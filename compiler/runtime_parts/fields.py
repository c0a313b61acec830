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
    a = rec.anchors.get(anchor_name)
    return _course_days_to(it, (a, None, ()) if type(a) is int else (None, "%s is not recorded" % anchor_name, (anchor_name,)))


def _course_days_to(it, d):
    """Length of a treatment course counting first and last day; an ongoing course counts to d =
    (ordinal, why it is not known, missing codes): the window's anchor (_course_days) or the
    computed date its window is measured from."""
    s = it.start
    if isinstance(s, _Bad):
        return (None, "%s: start %s" % (_lb(it.code), s.why), (it.code,))
    e = it.end
    if e is None:
        if d[0] is None:
            return (None, "%s is ongoing and %s" % (_lb(it.code), d[1]), tuple(dict.fromkeys((it.code,) + tuple(d[2]))))
        e = d[0]
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
