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
    late = False  # a reading in the window's margin after its sure end: perhaps the most recent
    for e in items:
        d = e[0]
        if type(d) is int:
            if lo <= d <= hi:
                if best is None or d >= bd:
                    best = e
                    bd = d
            elif lom <= d <= him:
                maybe = True
                late = late or d > hi
        elif floating is None:
            floating = [e]
        else:
            floating.append(e)
    if best is not None and late:
        # `within (60 d if C else 7 d) after A` with C unknown: a reading on day 30 is the most
        # recent if C holds, and the one in the sure part is not
        return ((), "whether a reading of %s falls %s is unknown (%s)" % (_lb(code), w[4], w[5]), (code,) + tuple(w[6]))
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
