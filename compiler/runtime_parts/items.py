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
    review = True  # every item that perhaps counts does so only by an unrecorded judgment
    for it in items:
        t = True
        whys = []
        miss = []
        rev = True  # t is None only by the filter's unrecorded judgment
        if kind == "treatment" and it.classes is None:
            # its classes are unusable: it could be of any class
            t = None
            whys.append("the classes of %s are unusable" % _lb(it.code))
            miss.append(it.code)
            rev = False
        elif it.wild:
            t = None
            rev = False
            whys.append("%s has no code: it could be %s" % (_lb(it.code), text))
            miss.append(it.code)
        if active:
            a, awhy = _active(it)
            if a is False:
                continue
            if a is None:
                t = None
                rev = False
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
            rev = False
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
                if not (p[3] and not p[2]):
                    rev = False
                    miss.extend(p[2] or (it.code,))
            else:
                parts = p[1]
        if t is True:
            found_whys.append("%s %s%s" % (_item_text(it), wtext, (": " + parts) if parts else ""))
        else:
            unknown_whys.append("%s: %s" % (_item_text(it), _about(it, _join(whys))))
            if not rev:
                review = False
                missing.extend(miss or (it.code,))
        if counted is not None:
            counted.append((it, t is True))
    if counted is not None:
        return _count_distinct(quant, counted, found_whys, unknown_whys, missing, text, review)
    if type(quant) is tuple:
        return _count(quant, found_whys, unknown_whys, missing, text, review)
    if found_whys:
        found = (True, _join(found_whys), (), False)
    elif unknown_whys:
        found = (None, _join(unknown_whys), tuple(dict.fromkeys(missing)), review)
    else:
        found = (False, _join(excepted) or _join(not_counted) or "no %s" % text, (), False)
    if quant == "any":
        return found
    if quant == "no":
        return _not(found)
    return found




_EMPTY = {}


def _count_distinct(quant, counted, found, unknown, missing, text, review=False):
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
    return (t, why, tuple(dict.fromkeys(missing)) if t is None else (), t is None and review)


def _count(quant, found, unknown, missing, text, review=False):
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
    return (t, why, tuple(dict.fromkeys(missing)) if t is None else (), t is None and review)


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
    with negate_pred (unless), every item fails pred. With no filter every item passes: true."""
    if pred is None:
        return (True, "every %s" % text, (), False)
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
