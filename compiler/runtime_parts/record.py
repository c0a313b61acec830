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
