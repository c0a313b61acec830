"""The checker: resolves names, checks kinds, units, windows and durations, and builds the
checked program (``compiler.ir``). It reports every error of a run, sorted by position, and
never stops at the first.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Optional

from . import ast as A
from . import ir as I
from . import terminology as T
from . import units as U
from .diagnostics import Diagnostic

TREATMENT_FIELDS = ("half_life", "daily_dose", "route", "purpose", "course", "class")
# the dates each kind of item carries, readable inside a query over it (and as a window's reference)
ITEM_DATES = {"condition": ("onset", "end"), "treatment": ("start", "end"), "procedure": ("date",),
              "observation": ("date",)}
MAX_DEPTH = 60


class _Fail(Exception):
    """An expression that cannot be checked further (its error is already reported)."""


@dataclass
class Scope:
    lets: dict  # name -> A.LetDecl (criterion lets shadow global ones)
    item: Optional["ItemCtx"] = None
    let_stack: tuple = ()
    depth: int = 0


@dataclass(frozen=True)
class ItemCtx:
    kind: str  # condition | procedure | treatment | observation
    codes: tuple[str, ...]
    var: str
    anchor: Optional[str]


# types
BOOL = ("bool",)
DATE = ("date",)
CLASSES = ("classes",)


def num_t(unit):
    return ("num", unit)


def _suggest(name: str, candidates) -> str:
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""




def render(e) -> str:
    if isinstance(e, A.Number):
        return e.value
    if isinstance(e, A.Quantity):
        return f"{e.value} {e.unit.code}"
    if isinstance(e, A.Name):
        return e.ident.name
    if isinstance(e, A.RefLimit):
        return e.which
    if isinstance(e, A.Age):
        return f"age at {e.anchor.name}"
    if isinstance(e, A.Window):
        return render_window(e)
    if isinstance(e, A.Latest):
        s = f"latest {e.code.name} {render_window(e.window)}"
        return s + (f" {e.filter_kind} {render(e.filter)}" if e.filter is not None else "")
    if isinstance(e, A.Recorded):
        return f"recorded {render(e.operand)}"
    if isinstance(e, A.Query):
        q = e.quantifier.replace("_", " ") + (f" {e.count}" if e.count is not None else "") + (" distinct" if e.distinct else "")
        s = q + (" active" if e.active else "") + " " + ", ".join(c.name for c in e.codes)
        if e.window:
            s += " " + render_window(e.window)
        if e.filter is not None:
            s += f" {e.filter_kind} {render(e.filter)}"
        return s
    if isinstance(e, A.Compare):
        return f"{render(e.left)} {e.op} {render(e.right)}"
    if isinstance(e, A.IsValue):
        return f"{render(e.subject)} is {'not ' if e.negated else ''}{e.value.name}"
    if isinstance(e, A.Between):
        return f"{render(e.subject)} between {render(e.low)} and {render(e.high)}"
    if isinstance(e, A.Arith):
        op = "x" if e.op == "*" else e.op
        return f"{render(e.left)} {op} {render(e.right)}"
    if isinstance(e, A.Neg):
        return f"-{render(e.operand)}"
    if isinstance(e, A.Convert):
        return f"{render(e.operand)} in {e.unit.code}"
    if isinstance(e, A.Member):
        vals = ", ".join(v.name if isinstance(v, A.Ident) else render(v) for v in e.values)
        return f"{render(e.subject)} {'not ' if e.negated else ''}in {{{vals}}}"
    if isinstance(e, A.Chain):
        return f"{render(e.left)} {e.op1} {render(e.middle)} {e.op2} {render(e.right)}"
    if isinstance(e, A.EquivalentOf):
        return f"{render(e.operand)} as {e.table.name}"
    if isinstance(e, A.And):
        return " and ".join(_paren(x, (A.Or, A.IfElse, A.Implies)) for x in e.items)
    if isinstance(e, A.Or):
        return " or ".join(_paren(x, (A.IfElse, A.Implies)) for x in e.items)
    if isinstance(e, A.Not):
        return "not " + _paren(e.operand, (A.And, A.Or, A.IfElse, A.Implies))
    if isinstance(e, A.IfElse):
        return f"{render(e.then)} if {render(e.cond)} else {render(e.otherwise)}"
    if isinstance(e, A.Implies):
        return f"if {render(e.cond)} then {render(e.then)}"
    if isinstance(e, A.Extreme):
        return f"{e.kind} of {render(e.left)} and {render(e.right)}"
    return "?"


def _paren(e, kinds) -> str:
    s = render(e)
    return f"({s})" if isinstance(e, kinds) else s


def _render_ref(ref) -> str:
    if isinstance(ref, A.Ident):
        return ref.name
    return f"({render(ref)})"


def render_window(w: A.Window) -> str:
    if w.kind == "ever":
        return "ever"
    ref = _render_ref(w.anchor if w.anchor is not None else w.at)
    if w.kind == "on_or_before":
        return f"on or before {ref}"
    if w.kind == "on_or_after":
        return f"on or after {ref}"
    if w.kind == "between":
        return f"between {ref} and {_render_ref(w.until)}"
    word = "before" if w.kind == "within_before" else "after"
    d = render(w.duration)
    if isinstance(w.duration, (A.IfElse,)):
        d = f"({d})"
    return f"within {d} {word} {ref}"


class Checker:
    def __init__(self, files: list[A.SourceFile]):
        self.files = files
        self.diags: list[Diagnostic] = []
        self.trial: Optional[A.TrialDecl] = None
        self.anchors: dict[str, A.Ident] = {}
        self.obs: dict[str, A.ObservationDecl] = {}
        self.items: dict[str, A.ItemDecl] = {}
        self.classes: dict[str, tuple[A.Ident, A.TreatmentClassDecl]] = {}
        self.facts: dict[str, A.FactDecl] = {}
        self.derived: dict[str, A.DerivedDecl] = {}
        self.equiv: dict[str, A.EquivalenceDecl] = {}
        self.global_lets: dict[str, A.LetDecl] = {}
        self.cohorts: dict[str, A.CohortDecl] = {}
        self.names: dict[str, tuple[str, A.Span]] = {}  # every declared name -> (kind, span)
        self.obs_ir: dict[str, I.ObsElement] = {}
        self.derived_ir: dict[str, I.DerivedElement] = {}
        self.derived_state: dict[str, str] = {}
        self.equiv_ir: dict[str, I.EquivalenceTable] = {}
        self.reads: list[str] = []
        self.used_lets: set = set()
        self._var_counter = 0

    # ------------------------------------------------------------------ reporting
    def error(self, span: A.Span, msg: str, hint: Optional[str] = None):
        self.diags.append(Diagnostic(span, msg, hint=hint))

    def fail(self, span: A.Span, msg: str, hint: Optional[str] = None):
        self.error(span, msg, hint)
        raise _Fail()

    # ------------------------------------------------------------------ declarations
    def _declare(self, ident: A.Ident, kind: str) -> bool:
        prev = self.names.get(ident.name)
        if prev is not None:
            self.error(ident.span, f"'{ident.name}' is already declared as {prev[0]} at {prev[1]}")
            return False
        if ident.name in ("sex", "value", "age", "true", "false") or ident.name in TREATMENT_FIELDS:
            self.error(ident.span, f"'{ident.name}' is a built-in name of the language and cannot be declared")
            return False
        self.names[ident.name] = (kind, ident.span)
        return True

    def collect(self):
        trials = [d for f in self.files for d in f.decls if isinstance(d, A.TrialDecl)]
        if trials:  # anchors are declared first, so a clash is reported at the later declaration
            for a in trials[0].anchors:
                if a.name in self.anchors:
                    self.error(a.span, f"anchor '{a.name}' is listed twice")
                else:
                    self.anchors[a.name] = a
                    self.names[a.name] = ("an anchor", a.span)
        for f in self.files:
            for d in f.decls:
                if isinstance(d, A.TrialDecl):
                    pass
                elif isinstance(d, A.ObservationDecl):
                    if self._declare(d.name, "an observation"):
                        self.obs[d.name.name] = d
                elif isinstance(d, A.ItemDecl):
                    if self._declare(d.name, f"a {d.kind}"):
                        self.items[d.name.name] = d
                elif isinstance(d, A.TreatmentClassDecl):
                    for n in d.names:
                        if self._declare(n, "a treatment class"):
                            self.classes[n.name] = (n, d)
                elif isinstance(d, A.FactDecl):
                    if self._declare(d.name, "a judgment" if d.judgment else "a fact"):
                        self.facts[d.name.name] = d
                elif isinstance(d, A.DerivedDecl):
                    if self._declare(d.name, "a derived value"):
                        self.derived[d.name.name] = d
                elif isinstance(d, A.EquivalenceDecl):
                    if self._declare(d.name, "an equivalence table"):
                        self.equiv[d.name.name] = d
                elif isinstance(d, A.LetDecl):
                    if self._declare(d.name, "a named expression"):
                        self.global_lets[d.name.name] = d
                elif isinstance(d, A.CohortDecl):
                    if self._declare(d.name, "a cohort"):
                        self.cohorts[d.name.name] = d
        if not trials:
            first = self.files[0] if self.files else None
            span = A.Span(first.path if first else "<rules>", 1, 1, 1, 2)
            self.error(span, "no trial header: one rule file must declare `trial NAME { ... }`")
        for extra in trials[1:]:
            self.error(extra.name.span, f"a second trial header; the trial is already declared at {trials[0].span}")
        if trials:
            self.trial = trials[0]
            t = self.trial
            for kind, sp in t.repeats:
                self.error(sp, f"'{kind}' is given twice in the trial header")
            if t.title is None:
                self.error(t.name.span, "the trial header needs a title")
            if t.protocol is None:
                self.error(t.name.span, "the trial header needs the protocol text file it cites (protocol \"...\")")
            elif not _safe_relative(t.protocol.value):
                self.error(t.protocol.span, "the protocol text is a file inside the rules directory: a relative path "
                                            "without '..' (it is published on the criteria page)")
            if not t.anchors:
                self.error(t.name.span, "the trial header needs its anchors (anchors screening, ...)")

    def check_observation(self, d: A.ObservationDecl) -> Optional[I.ObsElement]:
        seen = {}
        for kind, sp in d.fields:
            if kind in seen and kind not in ("code", "accepts"):
                self.error(sp, f"'{kind}' is given twice for observation '{d.name.name}'")
            seen[kind] = sp
        label = d.label.value if d.label else d.name.name
        codes = self._codes(d.codes)
        limits = []
        for l in d.limits:
            if l.name.lower() in limits:
                self.error(l.span, f"limit {l.name} is listed twice")
            limits.append(l.name.lower())
        if d.qualitative:
            if d.unit is not None or d.accepts or d.molar_mass is not None:
                self.error(d.name.span, f"observation '{d.name.name}' is qualitative and cannot have units")
            vals = []
            for v in d.qualitative:
                if v.name in vals:
                    self.error(v.span, f"value '{v.name}' is listed twice")
                vals.append(v.name)
            if limits:
                self.error(d.name.span, "a qualitative observation has no ULN, LLN or LLOQ")
            return I.ObsElement(d.name.name, label, codes, "qualitative", None, (), None, tuple(vals), tuple(limits), d.span,
                                self._obs_attributes(d))
        if d.unit is None:
            self.error(d.name.span, f"observation '{d.name.name}' needs a unit (or `qualitative` values)",
                       hint="write `unit 1` for a score or a count")
            return None
        unit = self._unit(d.unit)
        if unit is None:
            return None
        molar = None
        if d.molar_mass is not None:
            mu = self._unit(d.molar_mass.unit)
            if mu is not None:
                conv = U.conversion(mu, "g/mol")
                if conv is None:
                    self.error(d.molar_mass.unit.span, f"a molar mass is given in g/mol, not {mu}")
                else:
                    molar = conv.apply(U.decimal_fraction(d.molar_mass.value))
                    if molar <= 0:
                        self.error(d.molar_mass.span, "a molar mass must be positive")
                        molar = None
        extra = []
        for a in d.accepts:
            au = self._unit(a)
            if au is None:
                continue
            if U.conversion(au, unit, molar) is None:
                why = U.dimension(au) if U.check_unit(au) is None else "?"
                hint = None
                if molar is None and ("mol" in au or "mol" in unit):
                    hint = "a conversion between mass and substance needs `molar_mass ... g/mol`"
                self.error(a.span, f"cannot accept {au} for {unit}: {why} does not convert to {U.dimension(unit)}", hint)
                continue
            extra.append(au)
        table = U.accepted_units(unit, tuple(extra), molar)
        return I.ObsElement(d.name.name, label, codes, "quantity", unit, tuple(table.items()), molar, (), tuple(limits), d.span,
                            self._obs_attributes(d))

    def _obs_attributes(self, d: A.ObservationDecl) -> tuple:
        """An observation's attributes (method, specimen, assay ...), checked like an item's."""
        attrs = []
        for a in d.attributes:
            if a.name.name in {x.name for x in attrs}:
                self.error(a.name.span, f"attribute '{a.name.name}' is declared twice")
                continue
            if a.name.name in ("value", "date", "unit", "code", "uln", "lln", "lloq", "status") or a.name.name in TREATMENT_FIELDS:
                self.error(a.name.span, f"'{a.name.name}' is a built-in field and cannot be an attribute name")
                continue
            attrs.append(I.Attribute(a.name.name, a.type, tuple(v.name for v in a.values)))
        return tuple(attrs)

    def _codes(self, codes) -> tuple:
        out = []
        known = set(T.SYSTEMS)
        for c in codes:
            if c.system.name.lower() not in known:
                self.error(c.system.span, f"unknown terminology '{c.system.name}'{_suggest(c.system.name.lower(), known)}",
                           hint="known: " + ", ".join(sorted(known)))
            else:
                why = T.code_error(c.system.name.lower(), c.value.value)
                if why is not None:
                    self.error(c.value.span, why)
                elif (c.system.name.lower(), c.value.value) in out:
                    self.error(c.value.span, f"code {c.system.name} \"{c.value.value}\" is given twice")
            out.append((c.system.name.lower(), c.value.value))
        return tuple(out)

    def _unit(self, u: A.UnitRef) -> Optional[str]:
        code = U.TIME_WORDS.get(u.code, u.code)
        if code in ("ULN", "LLN", "LLOQ"):
            self.error(u.span, f"a multiple of {code} is written with x: 2.5 x {code}")
            return None
        err = U.check_unit(code)
        if err is not None:
            alias = U.ALIASES.get(code)
            hint = f"in UCUM this is written {alias}" if alias else None
            self.error(u.span, err, hint)
            return None
        return code

    def check_item(self, d: A.ItemDecl) -> I.ItemElement:
        for kind, sp in d.repeats:
            self.error(sp, f"'{kind}' is given twice for {d.kind} '{d.name.name}'")
        attrs = []
        seen = set()
        for a in d.attributes:
            if a.name.name in seen:
                self.error(a.name.span, f"attribute '{a.name.name}' is declared twice")
                continue
            if a.name.name in ("status", "value", "class", "course") or a.name.name in TREATMENT_FIELDS:
                self.error(a.name.span, f"'{a.name.name}' is a built-in field and cannot be an attribute name")
                continue
            seen.add(a.name.name)
            scale = None
            if a.scale is not None:
                scale = self._scale(a)
            if a.unit is not None:
                unit = self._unit(a.unit)
                if unit is None:
                    continue
                if unit in U.CALENDAR_UNITS:
                    self.error(a.unit.span, f"a measured {'month' if unit == 'mo' else 'year'} has no fixed length; declare the attribute in days or weeks",
                               hint="calendar months and years are for windows on dates and for age")
                    continue
                table = U.accepted_units(unit)
                attrs.append(I.Attribute(a.name.name, a.type, (), unit, tuple(table.items())))
                continue
            attrs.append(I.Attribute(a.name.name, a.type, tuple(v.name for v in a.values), scale=scale))
        return I.ItemElement(d.kind, d.name.name, d.label.value if d.label else d.name.name, self._codes(d.codes), tuple(attrs), d.span)

    def _scale(self, a: A.AttributeDecl):
        """`integer LO to HI`: whole numbers, LO <= HI (a value outside it is unusable in a record)."""
        try:
            lo, hi = (Fraction(x) for x in a.scale)
        except (ValueError, ZeroDivisionError):
            lo = hi = None
        if lo is None or lo.denominator != 1 or hi.denominator != 1:
            self.error(a.span, f"the scale of '{a.name.name}' must be two whole numbers, as in 'integer 1 to 5'")
            return None
        if lo > hi:
            self.error(a.span, f"the scale of '{a.name.name}' runs from {lo} down to {hi}; write the smaller number first")
            return None
        return (int(lo), int(hi))

    def check_equivalence(self, d: A.EquivalenceDecl) -> Optional[I.EquivalenceTable]:
        entries = []
        unit = None
        ref_amount = None
        seen = set()
        for e in d.entries:
            u = self._unit(e.amount.unit)
            if u is None:
                continue
            if e.agent.name in seen:
                self.error(e.agent.span, f"'{e.agent.name}' is listed twice")
                continue
            seen.add(e.agent.name)
            amount = U.decimal_fraction(e.amount.value)
            if unit is None:
                unit = u
            conv = U.conversion(u, unit)
            if conv is None or conv.offset:
                self.error(e.amount.unit.span, f"cannot compare {u} with {unit}")
                continue
            amount = conv.apply(amount)
            if amount <= 0:
                self.error(e.amount.span, "an equivalent amount must be positive")
                continue
            entries.append((e.agent.name, amount))
            if e.agent.name == d.name.name:
                ref_amount = amount
        if unit is None:
            return None
        if ref_amount is None:
            self.error(d.name.span, f"the table '{d.name.name}' must list '{d.name.name}' itself, the agent its doses are expressed in")
            return None
        factors = tuple((a, ref_amount / amt) for a, amt in entries)
        units = tuple((u, c.scale) for u, c in U.accepted_units(unit).items() if not c.offset)
        return I.EquivalenceTable(d.name.name, d.label.value if d.label else d.name.name, unit, tuple(entries),
                                  ref_amount, factors, units, d.span)

    # ------------------------------------------------------------------ program
    def run(self) -> Optional[I.Program]:
        self.collect()
        for name, d in self.obs.items():
            el = self.check_observation(d)
            if el is not None:
                self.obs_ir[name] = el
        items_ir = [self.check_item(d) for d in self.items.values()]
        self.items_ir = {x.name: x for x in items_ir}
        for name, d in self.equiv.items():
            t = self.check_equivalence(d)
            if t is not None:
                self.equiv_ir[name] = t
        for name in self.derived:
            self._derived(name, self.derived[name].name.span)
        criteria = self._criteria()
        for name, d in self.global_lets.items():  # a named expression nothing uses is still checked
            if id(d) in self.used_lets:
                continue
            try:
                self.any_expr(d.expr, Scope(dict(self.global_lets), let_stack=(name,)))
            except _Fail:
                pass
            except RecursionError:
                self.error(d.span, "expression is nested too deeply")
        uncomputable = []
        outline: list[I.OutlineItem] = []
        outline_refs: dict[str, A.Span] = {}
        outline_decls = []
        for f in self.files:
            for d in f.decls:
                if isinstance(d, A.UncomputableDecl):
                    uncomputable.append(I.Uncomputable(d.ref.name, d.reason.value, d.span))
                elif isinstance(d, A.OutlineDecl):
                    outline_decls.append(d)
        for extra in outline_decls[1:]:
            self.error(extra.span, f"a second outline; the protocol's outline is already declared at {outline_decls[0].span}")
        for d in outline_decls[:1]:
            for e in d.entries:
                if e.ref.name in outline_refs:
                    self.error(e.ref.span, f"'{e.ref.name}' is already in the outline at {outline_refs[e.ref.name]}")
                    continue
                if not e.anchor.value.strip():
                    self.error(e.anchor.span, "an outline item is anchored to the protocol text it starts with; this is empty")
                outline_refs[e.ref.name] = e.ref.span
                outline.append(I.OutlineItem(e.ref.name, e.anchor.value, e.heading, e.span))
        cohorts = tuple(I.CohortElement(n, d.label.value if d.label else n, self._codes(d.codes), d.span)
                        for n, d in self.cohorts.items())
        decl_codes = {}  # one check per declaration (`treatment_class a, b { code ... }` names two)
        for ident, d in self.classes.values():
            if id(d) not in decl_codes:
                decl_codes[id(d)] = self._codes(d.codes)
        class_codes = {n: decl_codes[id(d)] for n, (ident, d) in self.classes.items()}
        fact_codes = {n: self._codes(d.codes) for n, d in self.facts.items()}
        if any(x.severity == "error" for x in self.diags) or self.trial is None:
            return None
        t = self.trial
        trial = I.TrialInfo(t.name.name, t.title.value if t.title else t.name.name,
                            t.protocol.value if t.protocol else None, tuple(a.name for a in t.anchors), t.span)
        classes = tuple(I.ClassElement(n, d.label.value if d.label else n, class_codes[n], ident.span)
                        for n, (ident, d) in self.classes.items())
        facts = tuple(I.FactElement(n, d.judgment, d.label.value if d.label else n, fact_codes[n], d.span)
                      for n, d in self.facts.items())
        return I.Program(
            trial, tuple(self.obs_ir.values()), tuple(items_ir), classes, facts, tuple(self.equiv_ir.values()),
            tuple(self.derived_ir[n] for n in self.derived if n in self.derived_ir), tuple(criteria),
            tuple(uncomputable), tuple(sorted(U.ALIASES.items())), tuple(f.path for f in self.files),
            tuple(outline), cohorts,
        )

    def _criteria(self) -> list:
        criteria = []
        ids: dict[str, A.Span] = {}
        for f in self.files:
            for d in f.decls:
                if isinstance(d, A.Criterion):
                    if d.name.name in ids:
                        self.error(d.name.span, f"criterion id '{d.name.name}' is already used at {ids[d.name.name]}")
                    ids.setdefault(d.name.name, d.name.span)
                    c = self.criterion(d, f)
                    if c is not None:
                        criteria.append(c)
        # inclusion criteria first, then exclusion, as protocols list them (stable: file order,
        # then order inside each file)
        return sorted(criteria, key=lambda c: c.kind != "inclusion")

    def _derived(self, name: str, use_span: A.Span) -> Optional[I.DerivedElement]:
        state = self.derived_state.get(name)
        if state == "done":
            return self.derived_ir.get(name)
        if state == "active":
            self.error(use_span, f"derived value '{name}' is defined in terms of itself")
            return None
        d = self.derived[name]
        self.derived_state[name] = "active"
        result = None
        unit = self._unit(d.unit)
        try:
            ir, ty = self.value(d.formula, Scope(dict(self.global_lets)))
            if ty[0] != "num":
                self.error(d.formula.span, f"the formula of '{name}' must give a number, not {self._tname(ty)}")
            elif ty[1] not in (None, "1"):
                self.error(d.formula.span, f"the formula of '{name}' gives {ty[1]}; take each input's number with `X in UNIT` so the formula gives a plain number in {unit}")
            elif unit is not None:
                result = I.DerivedElement(name, d.label.value if d.label else name, unit, ir, d.span)
        except _Fail:
            pass
        except RecursionError:
            self.error(d.formula.span, "expression is nested too deeply")
        self.derived_state[name] = "done"
        if result is not None:
            self.derived_ir[name] = result
        return result

    def criterion(self, d: A.Criterion, f: A.SourceFile) -> Optional[I.CriterionIR]:
        if not d.refs:
            self.error(d.name.span, f"criterion '{d.name.name}' needs a protocol ref (ref I7b)")
        for r in d.refs[1:]:
            self.error(r.span, "a criterion has one ref; write a separate criterion for another protocol item")
        if not d.quotes:
            self.error(d.name.span, f"criterion '{d.name.name}' needs the protocol text it encodes (quote \"...\")")
        for q in d.quotes:
            if not q.value.strip():
                self.error(q.span, "a quote cannot be empty")
        if d.kind == "inclusion" and d.body_kind != "require":
            self.error(d.body_span, "an inclusion criterion says what must hold: write `require ...`")
        if d.kind == "exclusion" and d.body_kind != "exclude_when":
            self.error(d.body_span, "an exclusion criterion says what excludes: write `exclude when ...`")
        cohorts = []
        for c in d.cohorts:
            if c.name not in self.cohorts:
                what = self.names[c.name][0] if c.name in self.names else None
                self.error(c.span, f"'{c.name}' is {what}, not a cohort" if what else
                           f"unknown cohort '{c.name}'{_suggest(c.name, self.cohorts)}",
                           hint="declare it: cohort NAME { label \"...\" }" if not self.cohorts else
                           "the trial's cohorts are: " + ", ".join(self.cohorts))
            elif c.name in cohorts:
                self.error(c.span, f"cohort '{c.name}' is listed twice")
            else:
                cohorts.append(c.name)
        lets = dict(self.global_lets)
        seen = {}
        for l in d.lets:
            if l.name.name in seen:
                self.error(l.name.span, f"'{l.name.name}' is already named in this criterion")
            elif l.name.name in self.names and l.name.name not in self.global_lets:
                self.error(l.name.span, f"'{l.name.name}' is already declared as {self.names[l.name.name][0]}")
            seen[l.name.name] = l
            lets[l.name.name] = l
        self.reads = []
        scope = Scope(lets)
        body = None
        try:
            body = self.bool_(d.body, scope)
        except _Fail:
            pass
        except RecursionError:
            self.error(d.body_span, "expression is nested too deeply")
        # named expressions that are never used are still checked
        for l in d.lets:
            if id(l) in self.used_lets:
                continue
            try:
                self.any_expr(l.expr, Scope(lets, let_stack=(l.name.name,)))
            except _Fail:
                pass
            except RecursionError:
                self.error(l.span, "expression is nested too deeply")
        if body is None:
            return None
        lines = f.text.split("\n")
        src = "\n".join(lines[d.body_span.line - 1: d.body_span.end_line])
        return I.CriterionIR(
            d.name.name, d.kind, tuple(r.name for r in d.refs[:1]), tuple(q.value for q in d.quotes),
            tuple(n.value for n in d.notes), body, _dedent(src), f.path, d.span.line, d.span,
            tuple(dict.fromkeys(self.reads)), tuple(q.span for q in d.quotes),
            d.refs[0].span if d.refs else None, d.body_span, tuple(cohorts),
        )

    # ------------------------------------------------------------------ expressions
    def _tname(self, ty) -> str:
        k = ty[0]
        if k == "num":
            return f"a quantity in {ty[1]}" if ty[1] not in (None, "1") else "a number"
        if k == "obs":
            return f"an observation ({ty[1]})"
        return {"bool": "a yes/no condition", "date": "a date", "cat": "a category",
                "classes": "treatment classes", "limit": "a limit relative to a reference limit", "dur": "a duration"}.get(k, k)

    def _enter(self, sc: Scope) -> Scope:
        if sc.depth > MAX_DEPTH:
            raise RecursionError()
        return replace(sc, depth=sc.depth + 1)

    def _let(self, name: str, e: A.Expr, sc: Scope) -> Optional[A.LetDecl]:
        d = sc.lets.get(name)
        if d is None:
            return None
        if name in sc.let_stack:
            self.fail(e.span, f"'{name}' is defined in terms of itself")
        self.used_lets.add(id(d))
        return d

    def _let_scope(self, name: str, sc: Scope) -> Scope:
        return replace(sc, let_stack=sc.let_stack + (name,))

    def any_expr(self, e, sc):
        """Check an expression of whatever type (for unused named expressions)."""
        if isinstance(e, (A.And, A.Or, A.Not, A.Implies, A.Query, A.Compare, A.IsValue, A.Between, A.Member, A.Recorded, A.Chain)):
            return self.bool_(e, sc)
        if isinstance(e, A.Extreme):
            return self.duration(e, sc)
        return self.value(e, sc)

    def bool_(self, e, sc: Scope) -> I.Bool:
        sc = self._enter(sc)
        if isinstance(e, A.And):
            return I.BAnd(tuple(self._collect_bools(e.items, sc)))
        if isinstance(e, A.Or):
            return I.BOr(tuple(self._collect_bools(e.items, sc)))
        if isinstance(e, A.Not):
            return I.BNot(self.bool_(e.operand, sc))
        if isinstance(e, A.Implies):
            c, t = self._both(lambda: self.bool_(e.cond, sc), lambda: self.bool_(e.then, sc))
            return I.BImplies(c, t)
        if isinstance(e, A.IfElse):
            a, c, b = self._all3(lambda: self.bool_(e.then, sc), lambda: self.bool_(e.cond, sc), lambda: self.bool_(e.otherwise, sc))
            return I.BIf(c, a, b)
        if isinstance(e, A.Query):
            return self.query(e, sc)
        if isinstance(e, A.Recorded):
            return self.recorded(e, sc)
        if isinstance(e, A.Compare):
            return self.compare(e, sc)
        if isinstance(e, A.Chain):
            return self.chain(e, sc)
        if isinstance(e, A.Between):
            return self.between(e, sc)
        if isinstance(e, A.IsValue):
            return self.is_value(e.subject, (e.value,), e.negated, e, sc)
        if isinstance(e, A.Member):
            if any(not isinstance(v, A.Ident) for v in e.values):
                return self.number_set(e, sc)
            return self.is_value(e.subject, e.values, e.negated, e, sc)
        if isinstance(e, A.Name):
            return self.bool_name(e, sc)
        if isinstance(e, A.Latest):
            self.fail(e.span, f"'latest {e.code.name}' is a value, not a yes/no condition; compare it with a limit",
                      hint=f"for example: latest {e.code.name} ... >= LIMIT")
        ir, ty = self.value(e, sc)
        self.fail(e.span, f"expected a yes/no condition, found {self._tname(ty)}")

    def _collect_bools(self, items, sc):
        out = []
        failed = False
        for x in items:
            try:
                out.append(self.bool_(x, sc))
            except _Fail:
                failed = True
        if failed:
            raise _Fail()
        return out

    def _both(self, f1, f2):
        failed = False
        r1 = r2 = None
        try:
            r1 = f1()
        except _Fail:
            failed = True
        try:
            r2 = f2()
        except _Fail:
            failed = True
        if failed:
            raise _Fail()
        return r1, r2

    def _all3(self, f1, f2, f3):
        r = []
        failed = False
        for f in (f1, f2, f3):
            try:
                r.append(f())
            except _Fail:
                failed = True
                r.append(None)
        if failed:
            raise _Fail()
        return r

    def bool_name(self, e: A.Name, sc: Scope) -> I.Bool:
        name = e.ident.name
        d = self._let(name, e, sc)
        if d is not None:
            return self.bool_(d.expr, self._let_scope(name, sc))
        if name in self.facts:
            f = self.facts[name]
            self.reads.append(name)
            return I.BFact(name, f.judgment)
        if sc.item is not None and sc.item.kind in ("condition", "procedure", "observation"):
            attr = self._attribute(sc.item, name)
            if attr is not None:
                if attr.type != "boolean":
                    self.fail(e.span, f"attribute '{name}' is {attr.type}, not a yes/no value; compare it")
                return I.BAttrBool(sc.item.var, name)
        if name in self.items or name in self.classes:
            self.fail(e.span, f"'{name}' is a {self.names[name][0][2:]}; ask whether it is recorded with `any {name}`")
        if name in self.obs:
            self.fail(e.span, f"'{name}' is an observation; select a value with `latest {name} <window>`")
        ir, ty = self.value(e, sc)
        self.fail(e.span, f"expected a yes/no condition, found {self._tname(ty)}")

    def _attribute(self, item: ItemCtx, name: str) -> Optional[I.Attribute]:
        found = None
        for code in item.codes:
            el = self.items_ir.get(code) if item.kind != "observation" else self.obs_ir.get(code)
            if el is None:
                return None
            a = next((x for x in el.attributes if x.name == name), None)
            if a is None:
                return None
            if found is not None and (found.type, found.values) != (a.type, a.values):
                return None
            found = a
        return found

    # ---- windows and durations
    def window(self, w: A.Window, sc: Scope, item: Optional[ItemCtx] = None) -> I.Win:
        text = render_window(w)
        if w.kind == "ever":
            return I.Win("ever", None, None, False, "ever")
        if w.anchor is None or w.anchor.name not in self.anchors or w.until is not None or w.kind == "on_or_after":
            return self._date_window(w, sc, item, text)
        anchor = self._anchor(w.anchor)
        if w.kind == "on_or_before":
            return I.Win("on_or_before", anchor, None, False, text)
        dsc = replace(sc, item=item) if item is not None else sc
        dur = self.duration(w.duration, dsc)
        dependent = self._item_dependent(dur)
        if not isinstance(dur, I.DIf):  # a conditional duration keeps the name its author gave it
            word = "before" if w.kind == "within_before" else "after"
            text = f"within {_dur_text(dur)} {word} {anchor}"
        return I.Win(w.kind, anchor, dur, dependent, text)

    def _window_ref(self, ref, sc: Scope) -> I.Date:
        """A window's reference date: an anchor, a date of the enclosing query's item, a named
        date, or a parenthesized date expression (read in the scope around the query)."""
        if isinstance(ref, A.Ident):
            name = ref.name
            if name in self.anchors:
                return I.DtAnchor(name)
            known = name in sc.lets or name in self.names or (sc.item is not None and (
                name in ITEM_DATES.get(sc.item.kind, ()) or self._attribute(sc.item, name) is not None))
            if not known:
                if name in ("onset", "end", "start", "date"):
                    self.fail(ref.span, f"'{name}' is a date of an item and is only known inside a query over one",
                              hint="a window measured from an item's date is written inside a query over that item: "
                                   f"any X where (any Y within 6 mo after {name})")
                self._anchor(ref)
            ref = A.Name(ref, ref.span)
        d, t = self.value(ref, sc)
        if t[0] != "date":
            self.fail(ref.span, f"a window is measured from a date, not from {self._tname(t)}")
        return d

    def _date_window(self, w: A.Window, sc: Scope, item: Optional[ItemCtx], text: str) -> I.Win:
        """A window measured from a date that is not (only) an anchor: computed where it is used."""
        at, until = self._both(lambda: self._window_ref(w.anchor if w.anchor is not None else w.at, sc),
                               lambda: self._window_ref(w.until, sc) if w.until is not None else None)
        if w.kind in ("on_or_before", "on_or_after", "between"):
            return I.Win(w.kind, None, None, False, text, at, until)
        dsc = replace(sc, item=item) if item is not None else sc
        dur = self.duration(w.duration, dsc)
        return I.Win(w.kind, None, dur, self._item_dependent(dur), text, at, None)

    def _item_dependent(self, d) -> bool:
        if isinstance(d, I.DHalfLife):
            return True
        if isinstance(d, I.DExtreme):
            return self._item_dependent(d.left) or self._item_dependent(d.right)
        if isinstance(d, I.DIf):
            return True if _bool_uses_item(d.cond) else self._item_dependent(d.then) or self._item_dependent(d.otherwise)
        return False

    def _anchor(self, ident: A.Ident) -> str:
        if ident.name not in self.anchors:
            self.fail(ident.span, f"unknown anchor '{ident.name}'{_suggest(ident.name, self.anchors)}",
                      hint="the trial's anchors are: " + ", ".join(self.anchors) if self.anchors else None)
        return ident.name

    def duration(self, e, sc: Scope) -> I.Dur:
        sc = self._enter(sc)
        if isinstance(e, A.Quantity):
            unit = self._unit(e.unit)
            if unit is None:
                raise _Fail()
            if not U.is_time(unit):
                self.fail(e.unit.span, f"a duration needs a unit of time (d, wk, mo, a), not {unit}")
            if unit not in U.DAYS_PER and unit not in U.CALENDAR_UNITS:
                self.fail(e.unit.span, f"a duration is written in d, wk, h, min, s, ms, or calendar mo or a, not {unit}")
            amount = U.decimal_fraction(e.value)
            if unit in U.CALENDAR_UNITS:
                if amount.denominator != 1:
                    word = "months" if unit == "mo" else "years"
                    self.fail(e.span, f"a fractional number of {word} ({e.value} {unit}) is ambiguous; write the duration in days or weeks",
                              hint="record the reading in a note, e.g. note \"1.5 months is read as 45 days\"")
                months = int(amount) * (12 if unit == "a" else 1)
                return I.DConst("months", Fraction(months), f"{e.value} {unit}")
            return I.DConst("days", U.time_in_days(amount, unit), f"{e.value} {unit}")
        if isinstance(e, A.Name):
            name = e.ident.name
            d = self._let(name, e, sc)
            if d is not None:
                return self.duration(d.expr, self._let_scope(name, sc))
            if name == "half_life":
                self._need_item(e, sc, "treatment", "half_life")
                return I.DHalfLife(Fraction(1), "half_life")
            self._unknown_name(e, sc, "a duration")
        if isinstance(e, A.Arith) and e.op == "*":
            k, other = (e.left, e.right) if isinstance(e.left, A.Number) else (e.right, e.left)
            if isinstance(k, A.Number):
                dur = self.duration(other, sc)
                mult = U.decimal_fraction(k.value)
                return self._scale_dur(dur, mult, e)
        if isinstance(e, A.Extreme):
            a, b = self._both(lambda: self.duration(e.left, sc), lambda: self.duration(e.right, sc))
            return I.DExtreme(e.kind, a, b, render(e))
        if isinstance(e, A.IfElse):
            a, c, b = self._all3(lambda: self.duration(e.then, sc), lambda: self.bool_(e.cond, sc), lambda: self.duration(e.otherwise, sc))
            return I.DIf(c, a, b, render(e))
        if isinstance(e, A.Number):
            self.fail(e.span, f"a duration needs a unit: write {e.value} d, {e.value} wk or {e.value} mo")
        self.fail(e.span, f"expected a duration (such as 28 d, 5 x half_life or shorter of 28 d and 5 x half_life), found {render(e)!r}")

    def _scale_dur(self, dur: I.Dur, k: Fraction, e) -> I.Dur:
        if isinstance(dur, I.DHalfLife):
            return I.DHalfLife(dur.multiple * k, render(e))
        if isinstance(dur, I.DConst):
            if dur.kind == "months":
                amount = dur.amount * k
                if amount.denominator != 1:
                    self.fail(e.span, "a fractional number of months is ambiguous; write the duration in days or weeks")
                return I.DConst("months", amount, render(e))
            return I.DConst("days", dur.amount * k, render(e))
        self.fail(e.span, "only a fixed duration or a half-life can be multiplied")

    def _need_item(self, e, sc: Scope, kind: str, what: str):
        if sc.item is None or sc.item.kind != kind:
            where = {"treatment": "a treatment (any <treatment class> ...)"}.get(kind, kind)
            self.fail(e.span, f"'{what}' is a field of {where} and is only known inside a query over one")

    def _unknown_name(self, e: A.Name, sc: Scope, expected: str):
        name = e.ident.name
        if sc.item is None:
            field = None
            if name in TREATMENT_FIELDS:
                field = "a treatment"
            elif name == "value":
                field = "an observation"
            elif name in ("onset", "end", "start", "date"):
                field = " or ".join(f"a {k}" for k, ds in ITEM_DATES.items() if name in ds)
                field += f" (its {name} date)"
            elif name == "status" or any(name in {a.name for a in el.attributes} for el in self.items_ir.values()):
                field = "a condition or procedure"
            if field:
                self.fail(e.span, f"'{name}' is a field of {field} and is only known inside a query over one",
                          hint="`where` and `unless` take one term: put a compound condition in parentheses, "
                               "where (A and B)")
        cands = list(self.names) + list(sc.lets) + list(self.anchors) + ["sex"]
        if sc.item is not None and name in ("onset", "end", "start", "date"):
            self.fail(e.span, f"a {sc.item.kind} has no '{name}'; its dates are: " + ", ".join(ITEM_DATES[sc.item.kind]))
        if sc.item is not None:
            if sc.item.kind in ("condition", "procedure"):
                for c in sc.item.codes:
                    el = self.items_ir.get(c)
                    if el:
                        cands += [a.name for a in el.attributes]
                cands.append("status")
            elif sc.item.kind == "treatment":
                cands += list(TREATMENT_FIELDS)
            else:
                cands.append("value")
        self.fail(e.span, f"unknown name '{name}'{_suggest(name, cands)}")

    # ---- queries
    def _new_var(self) -> str:
        self._var_counter += 1
        return f"it{self._var_counter}"

    def query(self, e: A.Query, sc: Scope) -> I.Bool:
        kinds = []
        codes = []
        failed = False
        for c in e.codes:
            n = c.name
            if n in self.items:
                kinds.append(self.items[n].kind)
            elif n in self.classes:
                kinds.append("treatment")
            elif n in self.obs:
                kinds.append("observation")
            else:
                cands = list(self.items) + list(self.classes) + list(self.obs)
                what = self.names[n][0] if n in self.names else None
                if what:
                    self.error(c.span, f"'{n}' is {what}; `{e.quantifier}` asks about conditions, procedures, treatment classes or observations")
                else:
                    self.error(c.span, f"unknown condition, procedure, treatment class or observation '{n}'{_suggest(n, cands)}")
                failed = True
                continue
            codes.append(n)
            self.reads.append(n)
        if failed:
            raise _Fail()
        if len(set(kinds)) > 1:
            self.fail(e.codes[0].span, "one query asks about one kind of item: " + ", ".join(f"{c} is a {k}" for c, k in zip(codes, kinds)))
        kind = kinds[0]
        var = self._new_var()
        if e.count is not None:
            if not isinstance(e.count, int):
                self.fail(e.span, f"`{e.quantifier.replace('_', ' ')}` counts items: write a whole number, not {e.count}")
            if kind == "observation":
                self.fail(e.span, "counting applies to conditions, procedures and treatments, not to observation readings")
        if kind == "observation":
            if len(codes) > 1:
                self.fail(e.codes[1].span, "a query over observations names one observation")
            if e.active:
                self.fail(e.span, "`active` applies to conditions, not observations")
            if e.window is None:
                self.fail(e.span, "a query over observations needs a window (within ... before ANCHOR, on or before ANCHOR, or ever)")
            if e.filter is None:
                self.fail(e.span, "a query over observations needs a condition on the value: where value ...")
            item = ItemCtx("observation", tuple(codes), var, self._win_anchor(e.window))
            win, pred = self._both(lambda: self.window(e.window, sc), lambda: self.bool_(e.filter, replace(sc, item=item)))
            if e.filter_kind == "unless":
                pred = I.BNot(pred)
            return I.BObsQuery(codes[0], e.quantifier, win, var, pred, _query_text(e, render))
        if e.active and kind != "condition":
            self.fail(e.span, "`active` applies to conditions (their status), not to treatments or procedures")
        item = ItemCtx(kind, tuple(codes), var, self._win_anchor(e.window))
        win = None
        pred = None
        errs = False
        if e.window is not None:
            try:
                win = self.window(e.window, sc, item)
            except _Fail:
                errs = True
        if e.filter is not None:
            try:
                pred = self.bool_(e.filter, replace(sc, item=item))
            except _Fail:
                errs = True
        if errs:
            raise _Fail()
        if e.distinct and len(codes) < 2:
            self.fail(e.span, "`distinct` counts the different names of a query that are present: name two or more")
        return I.BQuery(kind, tuple(codes), e.quantifier, e.active, win, var, pred, e.filter_kind == "unless", _query_text(e, render),
                        e.count, e.distinct)

    def _win_anchor(self, w: Optional[A.Window]) -> Optional[str]:
        """The anchor a window is measured from (None when it is measured from another date)."""
        if w is None or w.anchor is None or w.anchor.name not in self.anchors or w.until is not None:
            return None
        return w.anchor.name

    def recorded(self, e: A.Recorded, sc: Scope) -> I.Bool:
        """`recorded X`: true when X is recorded and usable, false otherwise; never unknown."""
        op = e.operand
        text = render(op)
        if self._peek(op, sc) == "obs":
            sel, el = self.selection(op, sc)
            if el.kind == "qualitative":
                return I.BRecorded(I.BObsIs(sel, el.values, False, text), "bool", text)
            return I.BRecorded(I.NObs(sel, el.units, el.unit), "num", text)
        if isinstance(op, A.Name):
            name = op.ident.name
            d = self._let(name, op, sc)
            if d is not None:
                return self.recorded(A.Recorded(d.expr, e.span), self._let_scope(name, sc))
            it = sc.item
            if name == "sex" and name not in sc.lets:
                self.reads.append("sex")
                return I.BRecorded(I.BSexIs(("male", "female"), False), "bool", text)
            if it is not None and it.kind == "treatment" and name in ("route", "purpose"):
                return I.BRecorded(I.BFieldIs(it.var, name, (), True), "bool", text)
            if it is not None and it.kind in ("condition", "procedure", "observation"):
                attr = self._attribute(it, name)
                if attr is not None and attr.type in ("enum", "text"):
                    return I.BRecorded(I.BAttrIs(it.var, name, attr.type, attr.values, (), True), "bool", text)
        if isinstance(op, (A.And, A.Or, A.Not, A.Implies, A.Query, A.Compare, A.IsValue, A.Between, A.Member, A.Recorded)):
            self.fail(op.span, "`recorded` asks whether a value, a date, a fact or an attribute is recorded, not a condition",
                      hint="write recorded NAME, recorded latest X WINDOW, recorded half_life ...")
        ir, ty = self.value(op, sc)
        if ty[0] in ("num", "date"):
            return I.BRecorded(ir, ty[0], text)
        if ty[0] == "bool":
            return I.BRecorded(ir, "bool", text)
        self.fail(op.span, f"`recorded` asks about a value, a date, a fact or an attribute, not {self._tname(ty)}")

    # ---- comparisons
    def compare(self, e: A.Compare, sc: Scope) -> I.Bool:
        left, right, op = e.left, e.right, e.op
        if isinstance(right, A.Age) and not isinstance(left, A.Age):  # 28 d <= age at screening
            left, right, op = right, left, _FLIP[op]
        lty = self._peek(left, sc)
        if lty != "obs" and self._peek(right, sc) == "obs":
            left, right, op = right, left, _FLIP[op]
            lty = "obs"
        if lty == "obs":
            sel, el = self.selection(left, sc)
            if el.kind == "qualitative":
                self.fail(e.span, f"'{el.name}' is qualitative ({', '.join(el.values)}); test it with `is {el.values[0]}`")
            lim = self.limit(right, sc, el)
            return I.BObsCmp(sel, op, lim)
        lir, lt = self.value(left, sc)
        if lt[0] == "date":
            rir, rt = self.value(right, sc)
            if rt[0] != "date":
                self.fail(right.span, f"cannot compare a date with {self._tname(rt)}")
            return I.BDateCmp(lir, op, rir)
        if lt[0] != "num":
            self.fail(left.span, f"cannot compare {self._tname(lt)} with '{op}'",
                      hint="test a category with `is VALUE` or `in {A, B}`" if lt[0] == "cat" else None)
        rir, rt = self.value(right, sc)
        if rt[0] != "num":
            self.fail(right.span, f"cannot compare {self._tname(lt)} with {self._tname(rt)}")
        if isinstance(lir, I.NAge):
            lir, lt, rir = self._age_cmp(lir, rir, rt, right)
        rir = self._to_unit(rir, rt[1], lt[1], right.span)
        return I.BNumCmp(lir, op, rir, _unit_text(lt[1]))

    def _age_cmp(self, age: I.NAge, rir, rt, right):
        """Age compared with a limit counts completed calendar units of the limit's unit."""
        unit = rt[1]
        if unit not in AGE_UNITS:
            self.fail(right.span, "age is counted in completed days, weeks, months or years: compare it with d, wk, mo or a, such as 18 a or 28 d",
                      hint="a plain number has no unit: write 18 a" if unit in (None, "1") else None)
        if not isinstance(rir, I.NConst) and unit != "a":
            self.fail(right.span, "age in days, weeks or months is compared with a fixed limit, such as 28 d")
        if isinstance(rir, I.NConst) and rir.value.denominator != 1:
            self.fail(right.span, "age is counted in whole units; write a fractional limit in a smaller unit (days or weeks)")
        return I.NAge(age.anchor, unit), num_t(unit), rir

    def chain(self, e: A.Chain, sc: Scope) -> I.Bool:
        up = {"<", "<="}
        down = {">", ">="}
        if not ((e.op1 in up and e.op2 in up) or (e.op1 in down and e.op2 in down)):
            self.fail(e.op2_span, f"a range reads in one direction: LOW <= X < HIGH or HIGH > X >= LOW, not '{e.op1}' then '{e.op2}'",
                      hint="for two separate conditions write them with `and`")
        first = A.Compare(e.op1, e.op1_span, e.left, e.middle, e.span)
        second = A.Compare(e.op2, e.op2_span, e.middle, e.right, e.span)
        a, b = self._both(lambda: self.compare(first, sc), lambda: self.compare(second, sc))
        return I.BAnd((a, b))

    def number_set(self, e: A.Member, sc: Scope) -> I.Bool:
        names = [v for v in e.values if isinstance(v, A.Ident)]
        if names:
            self.fail(names[0].span, "a set holds names or numbers, not both",
                      hint="numbers test a value (ecog in {0, 1}); names test a category (sex in {male, female})")
        if self._peek(e.subject, sc) != "obs":
            x, t = self.value(e.subject, sc)
            if t[0] == "cat":
                self.fail(e.values[0].span, f"{render(e.subject)} is a category; its values are names, not numbers",
                          hint="its values are: " + ", ".join(t[1]) if t[1] else None)
            if t[0] != "num":
                self.fail(e.subject.span, f"a set of numbers tests a number, found {self._tname(t)}")
        tests = [self.compare(A.Compare("=", v.span, e.subject, v, e.span), sc) for v in e.values]
        any_of = tests[0] if len(tests) == 1 else I.BOr(tuple(tests))
        return I.BNot(any_of) if e.negated else any_of

    def _to_unit(self, ir, src, dst, span) -> I.Num:
        s = src if src not in (None,) else "1"
        d = dst if dst not in (None,) else "1"
        if s == d:
            return ir
        conv = U.conversion(s, d)
        if conv is None:
            self.fail(span, f"cannot compare {_unit_text(dst) or 'a number'} with {_unit_text(src) or 'a number'}",
                      hint="a number without a unit compares only with a dimensionless value" if "1" in (s, d) else None)
        if isinstance(ir, I.NConst):
            return I.NConst(conv.apply(ir.value), ir.text)
        return I.NScale(ir, conv.scale, conv.offset)

    def _peek(self, e, sc: Scope, depth=0) -> str:
        """Whether e denotes a selected observation (without reporting anything)."""
        if depth > 50:
            return "?"
        if isinstance(e, A.Latest):
            return "obs"
        if isinstance(e, A.Name):
            if e.ident.name in sc.lets and e.ident.name not in sc.let_stack:
                return self._peek(sc.lets[e.ident.name].expr, self._let_scope(e.ident.name, sc), depth + 1)
            if e.ident.name == "value" and sc.item is not None and sc.item.kind == "observation":
                return "obs"
        return "?"

    def selection(self, e, sc: Scope):
        if isinstance(e, A.Latest):
            code = e.code.name
            if code not in self.obs:
                if code in self.names:
                    self.fail(e.code.span, f"'{code}' is {self.names[code][0]}; `latest` selects an observation"
                              + (f" (ask with `any {code}`)" if code in self.items or code in self.classes else ""))
                self.fail(e.code.span, f"unknown observation '{code}'{_suggest(code, self.obs)}")
            el = self.obs_ir.get(code)
            if el is None:
                raise _Fail()
            if e.filter is None:
                win = self.window(e.window, sc)
                self.reads.append(code)
                return I.SelLatest(code, win, f"latest {code} {win.text}"), el
            var = self._new_var()
            item = ItemCtx("observation", (code,), var, self._win_anchor(e.window))
            win, pred = self._both(lambda: self.window(e.window, sc), lambda: self.bool_(e.filter, replace(sc, item=item)))
            if e.filter_kind == "unless":
                pred = I.BNot(pred)
            self.reads.append(code)
            return I.SelLatest(code, win, f"latest {code} {win.text} {e.filter_kind} {render(e.filter)}", var, pred), el
        if isinstance(e, A.Name):
            name = e.ident.name
            d = self._let(name, e, sc)
            if d is not None:
                return self.selection(d.expr, self._let_scope(name, sc))
            if name == "value" and sc.item is not None and sc.item.kind == "observation":
                code = sc.item.codes[0]
                el = self.obs_ir.get(code)
                if el is None:
                    raise _Fail()
                return I.SelItem(code, sc.item.var, code), el
        self.fail(e.span, "expected an observation")

    def limit(self, e, sc: Scope, el: I.ObsElement) -> I.Lim:
        sc = self._enter(sc)
        if isinstance(e, A.IfElse):
            a, c, b = self._all3(lambda: self.limit(e.then, sc, el), lambda: self.bool_(e.cond, sc), lambda: self.limit(e.otherwise, sc, el))
            return I.LIf(c, a, b, render(e))
        if isinstance(e, A.Name):
            d = self._let(e.ident.name, e, sc)
            if d is not None:
                return self.limit(d.expr, self._let_scope(e.ident.name, sc), el)
        if isinstance(e, A.RefLimit):
            return self._ref_limit(e, Fraction(1), el, render(e))
        if isinstance(e, A.Arith) and e.op == "*" and (isinstance(e.left, A.RefLimit) or isinstance(e.right, A.RefLimit)):
            ref, k = (e.left, e.right) if isinstance(e.left, A.RefLimit) else (e.right, e.left)
            if not isinstance(k, A.Number):
                self.fail(k.span, f"a multiple of {ref.which} is a plain number, such as 2.5 x {ref.which}")
            return self._ref_limit(ref, U.decimal_fraction(k.value), el, render(e))
        if isinstance(e, A.Quantity):
            unit = self._unit(e.unit)
            if unit is None:
                raise _Fail()
            return self._const_limit(U.decimal_fraction(e.value), unit, el, e, f"{e.value} {e.unit.code}")
        if isinstance(e, A.Number):
            if el.unit != "1":
                self.fail(e.span, f"the limit for {el.name} needs a unit: {el.name} is measured in {el.unit}",
                          hint=f"write {e.value} {el.unit}")
            return self._const_limit(U.decimal_fraction(e.value), "1", el, e, e.value)
        if isinstance(e, A.Neg) and isinstance(e.operand, (A.Number, A.Quantity)):
            inner = e.operand
            unit = "1" if isinstance(inner, A.Number) else self._unit(inner.unit)
            if unit is None:
                raise _Fail()
            return self._const_limit(-U.decimal_fraction(inner.value), unit, el, e, render(e))
        self.fail(e.span, f"expected a limit for {el.name} (a quantity such as 90 {el.unit}, a multiple of ULN, or (A if CONDITION else B)), found {render(e)!r}")

    def _ref_limit(self, ref: A.RefLimit, k: Fraction, el: I.ObsElement, text: str) -> I.Lim:
        which = ref.which.lower()
        if which not in el.limits:
            article = "an" if ref.which in ("LLN", "LLOQ") else "a"
            self.fail(ref.span, f"observation '{el.name}' does not carry {article} {ref.which}",
                      hint=f"declare it in the vocabulary: limits {ref.which}")
        return I.LRef(which, k, text)

    def _const_limit(self, value: Fraction, unit: str, el: I.ObsElement, e, text: str) -> I.Lim:
        to_el = U.conversion(unit, el.unit, el.molar_mass)
        if to_el is None:
            span = e.unit.span if isinstance(e, A.Quantity) else e.span
            self.fail(span, f"cannot compare {_unit_text(el.unit) or 'a number'} with {_unit_text(unit) or 'a number'}",
                      hint=f"{el.name} is measured in {el.unit}")
        if U.is_time(unit) and unit in U.CALENDAR_UNITS and value.denominator != 1:
            self.fail(e.span, f"a fractional number of {'months' if unit == 'mo' else 'years'} is ambiguous; write it in days or weeks")
        in_el = to_el.apply(value)
        table = []
        for u, conv in el.units:  # conv: u -> el.unit ; limit in u = inverse
            table.append((u, conv.invert().apply(in_el)))
        return I.LConst(tuple(table), text)

    def between(self, e: A.Between, sc: Scope) -> I.Bool:
        if self._peek(e.subject, sc) == "obs":
            sel, el = self.selection(e.subject, sc)
            lo, hi = self._both(lambda: self.limit(e.low, sc, el), lambda: self.limit(e.high, sc, el))
            return I.BObsBetween(sel, lo, hi)
        x, t = self.value(e.subject, sc)
        if t[0] != "num":
            self.fail(e.subject.span, f"`between` needs a number, found {self._tname(t)}")
        (lo, lt), (hi, ht) = self._both(lambda: self.value(e.low, sc), lambda: self.value(e.high, sc))
        lo = self._to_unit(lo, lt[1], t[1], e.low.span)
        hi = self._to_unit(hi, ht[1], t[1], e.high.span)
        return I.BAnd((I.BNumCmp(x, ">=", lo, _unit_text(t[1])), I.BNumCmp(x, "<=", hi, _unit_text(t[1]))))

    def is_value(self, subject, values: tuple, negated: bool, e, sc: Scope) -> I.Bool:
        tests = tuple(v.name for v in values)
        if self._peek(subject, sc) == "obs":
            sel, el = self.selection(subject, sc)
            if el.kind != "qualitative":
                self.fail(e.span, f"'{el.name}' is a quantity in {el.unit}; compare it with a limit")
            for v in values:
                if v.name not in el.values:
                    self.error(v.span, f"'{v.name}' is not a value of {el.name}{_suggest(v.name, el.values)}",
                               hint="its values are: " + ", ".join(el.values))
            return I.BObsIs(sel, tests, negated, render(e))
        if isinstance(subject, A.Name):
            name = subject.ident.name
            d = self._let(name, subject, sc)
            if d is not None:
                return self.is_value(d.expr, values, negated, e, self._let_scope(name, sc))
            if name == "sex" and name not in sc.lets:
                for v in values:
                    if v.name not in ("male", "female"):
                        self.error(v.span, f"sex is male or female, not '{v.name}'")
                self.reads.append("sex")
                return I.BSexIs(tests, negated)
            it = sc.item
            if it is not None and it.kind == "treatment":
                if name in ("route", "purpose"):
                    return I.BFieldIs(it.var, name, tests, negated)
                if name == "class":
                    for v in values:
                        if v.name not in self.classes:
                            self.error(v.span, f"unknown treatment class '{v.name}'{_suggest(v.name, self.classes)}")
                    return I.BClassIn(it.var, tests, negated)
            if it is not None and it.kind in ("condition", "procedure", "observation"):
                if name == "status" and it.kind == "condition":
                    for v in values:
                        if v.name not in ("active", "resolved"):
                            self.error(v.span, f"status is active or resolved, not '{v.name}'")
                    return I.BAttrIs(it.var, "status", "status", ("active", "resolved"), tests, negated)
                attr = self._attribute(it, name)
                if attr is not None:
                    if attr.type == "enum":
                        for v in values:
                            if v.name not in attr.values:
                                self.error(v.span, f"'{v.name}' is not a value of {name}{_suggest(v.name, attr.values)}",
                                           hint="its values are: " + ", ".join(attr.values))
                    elif attr.type != "text":
                        self.fail(e.span, f"attribute '{name}' is {attr.type}; " + (
                            "use it as a condition itself" if attr.type == "boolean" else "compare it with a number"))
                    return I.BAttrIs(it.var, name, attr.type, attr.values, tests, negated)
        x, t = self.value(subject, sc)
        self.fail(subject.span, f"cannot test {self._tname(t)} with `is`/`in`; they test a category (sex, an attribute, a qualitative result)")

    # ---- values
    def value(self, e, sc: Scope):
        sc = self._enter(sc)
        if isinstance(e, A.Number):
            return I.NConst(U.decimal_fraction(e.value), e.value), num_t(None)
        if isinstance(e, A.Quantity):
            unit = self._unit(e.unit)
            if unit is None:
                raise _Fail()
            v = U.decimal_fraction(e.value)
            if unit in U.CALENDAR_UNITS and v.denominator != 1:
                self.fail(e.span, f"a fractional number of {'months' if unit == 'mo' else 'years'} ({e.value} {unit}) is ambiguous; write it in days or weeks")
            return I.NConst(v, f"{e.value} {e.unit.code}"), num_t(unit)
        if isinstance(e, A.Age):
            anchor = self._anchor(e.anchor)
            self.reads.append("birth_date")
            return I.NAge(anchor), num_t("a")
        if isinstance(e, A.Name):
            return self.value_name(e, sc)
        if isinstance(e, A.Convert):
            unit = self._unit(e.unit)
            if unit is None:
                raise _Fail()
            if self._peek(e.operand, sc) == "obs":
                sel, el = self.selection(e.operand, sc)
                if el.kind == "qualitative":
                    self.fail(e.span, f"'{el.name}' is qualitative and has no number")
                conv = U.conversion(el.unit, unit, el.molar_mass)
                if conv is None:
                    self.fail(e.unit.span, f"cannot convert {el.name} ({_unit_text(el.unit)}) to {unit}",
                              hint="a conversion between mass and substance needs the element's molar_mass" if el.molar_mass is None else None)
                table = tuple((u, Conversion_compose(c, conv)) for u, c in el.units)
                return I.NObs(sel, table, unit), num_t(None)
            x, t = self.value(e.operand, sc)
            if t[0] != "num":
                self.fail(e.span, f"cannot convert {self._tname(t)} to {unit}")
            if t[1] in (None, "1") and unit != "1":
                self.fail(e.span, f"a plain number has no unit to convert to {unit}")
            if isinstance(x, I.NAge):
                if unit not in AGE_UNITS:
                    self.fail(e.unit.span, "age is counted in completed days, weeks, months or years: take it `in d`, `in wk`, `in mo` or `in a`")
                return I.NAge(x.anchor, unit), num_t(None)
            conv = U.conversion(t[1] or "1", unit)
            if conv is None:
                self.fail(e.unit.span, f"cannot convert {t[1]} to {unit}")
            if conv.scale == 1 and conv.offset == 0:
                return x, num_t(None)
            return I.NScale(x, conv.scale, conv.offset), num_t(None)
        if isinstance(e, A.Arith):
            return self.arith(e, sc)
        if isinstance(e, A.Neg):
            x, t = self.value(e.operand, sc)
            if t[0] != "num":
                self.fail(e.span, f"cannot negate {self._tname(t)}")
            if isinstance(x, I.NConst):
                return I.NConst(-x.value, "-" + x.text), t
            return I.NArith("-", I.NConst(Fraction(0), "0"), x), t
        if isinstance(e, A.IfElse):
            (a, at), c, (b, bt) = self._all3(lambda: self.value(e.then, sc), lambda: self.bool_(e.cond, sc), lambda: self.value(e.otherwise, sc))
            if at[0] != "num" or bt[0] != "num":
                self.fail(e.span, "both branches of `if ... else` must be numbers (or both yes/no conditions)")
            b = self._to_unit(b, bt[1], at[1], e.otherwise.span)
            return I.NIf(c, a, b), at
        if isinstance(e, A.EquivalentOf):
            table = e.table.name
            if table not in self.equiv:
                self.fail(e.table.span, f"unknown equivalence table '{table}'{_suggest(table, self.equiv)}")
            t = self.equiv_ir.get(table)
            if t is None:
                raise _Fail()
            if not (isinstance(e.operand, A.Name) and e.operand.ident.name == "daily_dose"):
                self.fail(e.operand.span, "`as TABLE` converts a treatment's daily_dose")
            self._need_item(e.operand, sc, "treatment", "daily_dose")
            return I.NDose(sc.item.var, table, t.unit), num_t(t.unit)
        if isinstance(e, A.Latest):
            sel, el = self.selection(e, sc)
            return sel, ("obs", el.name)
        if isinstance(e, A.RefLimit):
            self.fail(e.span, f"{e.which} is the reference limit of the observation being compared; use it on the right of a comparison with `latest ...`")
        if isinstance(e, A.Extreme):
            self.fail(e.span, "`shorter of` / `longer of` give a window's duration (within shorter of A and B before ANCHOR)")
        if isinstance(e, (A.And, A.Or, A.Not, A.Compare, A.Query, A.IsValue, A.Member, A.Between, A.Implies, A.Chain)):
            self.fail(e.span, "expected a value, found a yes/no condition")
        self.fail(e.span, f"unexpected expression {render(e)!r}")

    def value_name(self, e: A.Name, sc: Scope):
        name = e.ident.name
        d = self._let(name, e, sc)
        if d is not None:
            return self.value(d.expr, self._let_scope(name, sc))
        if name in self.derived:
            el = self._derived(name, e.span)
            if el is None:
                raise _Fail()
            self.reads.append(name)
            return I.NDerived(name), num_t(el.unit)
        if name in self.anchors:
            return I.DtAnchor(name), DATE
        it = sc.item
        if it is not None:
            if it.kind == "treatment":
                if name == "half_life":
                    return I.NHalfLife(it.var), num_t("d")
                if name == "course":
                    if it.anchor is None:
                        self.fail(e.span, "`course` counts days up to the window's anchor; give the query a window")
                    return I.NCourse(it.var, it.anchor), num_t("d")
                if name == "daily_dose":
                    self.fail(e.span, "a daily dose is compared through an equivalence table: daily_dose as TABLE")
            elif it.kind in ("condition", "procedure", "observation"):
                attr = self._attribute(it, name)
                if attr is not None:
                    if attr.type == "number":
                        return I.NAttr(it.var, name, attr.unit, attr.units), num_t(attr.unit)
                    if attr.type == "date":
                        return I.DtAttr(it.var, name), DATE
                    if attr.type == "boolean":
                        return I.BAttrBool(it.var, name), BOOL
                    return None, ("cat", attr.values)
            if name in ITEM_DATES.get(it.kind, ()):
                return I.DtItem(it.var, name, it.kind), DATE
        if name == "sex":
            return None, ("cat", ("male", "female"))
        if name in self.facts:
            return I.BFact(name, self.facts[name].judgment), BOOL
        if name in self.obs:
            self.fail(e.span, f"'{name}' is an observation; select a value with `latest {name} <window>`")
        if name in self.items or name in self.classes:
            self.fail(e.span, f"'{name}' is {self.names[name][0]}; ask whether it is recorded with `any {name}`")
        self._unknown_name(e, sc, "a value")

    def arith(self, e: A.Arith, sc: Scope):
        (l, lt), (r, rt) = self._both(lambda: self.value(e.left, sc), lambda: self.value(e.right, sc))
        if lt[0] == "date" and e.op in "+-":
            dur = self.duration(e.right, sc)
            return I.DtShift(l, 1 if e.op == "+" else -1, dur, render(e)), DATE
        if lt[0] != "num" or rt[0] != "num":
            bad = e.left if lt[0] != "num" else e.right
            self.fail(bad.span, f"arithmetic needs numbers, found {self._tname(lt if lt[0] != 'num' else rt)}")
        lu, ru = lt[1] or "1", rt[1] or "1"
        if e.op in "+-":
            if lu != ru:
                r = self._to_unit(r, ru, lu, e.right.span)
            return self._fold(e.op, l, r), num_t(lt[1])
        if lu != "1" and ru != "1":
            self.fail(e.span, f"cannot multiply or divide {lu} by {ru}; take each value's number with `X in UNIT` first")
        if e.op == "/" and ru != "1":
            self.fail(e.right.span, f"cannot divide by {ru}; take its number with `X in UNIT` first")
        unit = lt[1] if lu != "1" else rt[1]
        return self._fold(e.op, l, r), num_t(unit)

    def _fold(self, op, l, r) -> I.Num:
        if isinstance(l, I.NConst) and isinstance(r, I.NConst):
            a, b = l.value, r.value
            if op == "/" and b == 0:
                return I.NArith(op, l, r)
            v = {"+": a + b, "-": a - b, "*": a * b, "/": a / b if b else a}[op]
            return I.NConst(v, f"{l.text} {op} {r.text}")
        return I.NArith(op, l, r)


AGE_UNITS = ("d", "wk", "mo", "a")

_FLIP = {">=": "<=", "<=": ">=", ">": "<", "<": ">", "=": "=", "!=": "!="}


def Conversion_compose(first: U.Conversion, second: U.Conversion) -> U.Conversion:
    """second(first(x))"""
    return U.Conversion(first.scale * second.scale, first.offset * second.scale + second.offset)


def _dur_text(d) -> str:
    if isinstance(d, (I.DConst, I.DHalfLife)):
        return d.text
    if isinstance(d, I.DExtreme):
        return f"{d.which} of {_dur_text(d.left)} and {_dur_text(d.right)}"
    return d.text


def _safe_relative(path: str) -> bool:
    import posixpath

    if not path or "\\" in path or ":" in path or "\x00" in path or path.startswith("/"):
        return False
    return ".." not in posixpath.normpath(path).split("/") and not posixpath.isabs(path)


def _unit_text(u) -> str:
    return "" if u in (None, "1") else u


def _query_text(e: A.Query, r) -> str:
    return ", ".join(c.name for c in e.codes)


def _bool_uses_item(b) -> bool:
    return isinstance(b, (I.BClassIn, I.BFieldIs, I.BAttrBool, I.BAttrIs)) or any(
        _bool_uses_item(x) for x in getattr(b, "items", ()) or ()) or (
        isinstance(b, (I.BNot,)) and _bool_uses_item(b.operand))


def _dedent(src: str) -> str:
    lines = src.split("\n")
    if not lines:
        return src
    first = lines[0].lstrip()
    rest = lines[1:]
    indents = [len(l) - len(l.lstrip()) for l in rest if l.strip()]
    cut = min(indents) if indents else 0
    return "\n".join([first] + [l[cut:] for l in rest])


def check_program(files: list[A.SourceFile]) -> tuple[Optional[I.Program], list[Diagnostic]]:
    c = Checker(files)
    try:
        prog = c.run()
    except RecursionError:
        first = files[0].path if files else "<rules>"
        c.error(A.Span(first, 1, 1, 1, 2), "rules are nested too deeply to check")
        prog = None
    return prog, sorted(c.diags, key=Diagnostic.sort_key)
