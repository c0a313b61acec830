"""Reporting, and the declarations: names, observations, items, equivalence tables: a part of the checker's class
(compiler.checker.Checker).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Optional

from . import ast as A
from . import ir as I
from . import terminology as T
from . import units as U
from .diagnostics import Diagnostic
from .check_common import TREATMENT_FIELDS, _Fail, _suggest, _safe_relative


class DeclarationsMixin:
    """Reporting, and the declarations: names, observations, items, equivalence tables."""

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
