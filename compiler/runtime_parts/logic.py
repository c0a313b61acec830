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
    # review when every undecided part is an unrecorded judgment (a decided t does not count)
    return (None, _join((c[1], t[1])), _merge_missing((c, t)), c[3] and (t[0] is not None or t[3]))


def _if(c, a, b):
    """a if c else b, for booleans: with c unknown, decided only where a and b agree."""
    if c[0] is True:
        return a
    if c[0] is False:
        return b
    if a[0] is not None and a[0] == b[0]:
        return (a[0], _join((a[1], b[1])), (), False)
    # review when every undecided part is an unrecorded judgment: with a and b decided (and
    # different), only c is
    return (None, _join((c[1], a[1], b[1])), _merge_missing((c, a, b)),
            c[3] and (a[0] is not None or a[3]) and (b[0] is not None or b[3]))
