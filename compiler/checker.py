"""The checker: resolves names, checks kinds, units, windows and durations, and builds the
checked program (``compiler.ir``). It reports every error of a run, sorted by position, and
never stops at the first.

The class is made of one part per concern, each in its own module: reporting and declarations
(check_decls.py), expressions and values (check_exprs.py), windows, dates and durations
(check_windows.py), item queries and filters (check_queries.py), comparisons, units and limits
(check_compare.py); the scope, types and helpers they share are in check_common.py and the text
of expressions for messages in check_render.py. This module runs a whole program through them.
"""

from __future__ import annotations

from typing import Optional

from . import ast as A
from . import ir as I
from . import units as U
from .diagnostics import Diagnostic
from .check_common import Scope, _dedent, _Fail, _suggest
from .check_compare import ComparisonsMixin
from .check_decls import DeclarationsMixin
from .check_exprs import ExpressionsMixin
from .check_queries import QueriesMixin
from .check_windows import WindowsMixin


class Checker(DeclarationsMixin, ExpressionsMixin, WindowsMixin, QueriesMixin, ComparisonsMixin):
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
                self.any_expr(d.expr, Scope(dict(self.global_lets), let_stack=(name,), unused=name))
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
                self.any_expr(l.expr, Scope(lets, let_stack=(l.name.name,), unused=l.name.name))
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


def check_program(files: list[A.SourceFile]) -> tuple[Optional[I.Program], list[Diagnostic]]:
    c = Checker(files)
    try:
        prog = c.run()
    except RecursionError:
        first = files[0].path if files else "<rules>"
        c.error(A.Span(first, 1, 1, 1, 2), "rules are nested too deeply to check")
        prog = None
    return prog, sorted(c.diags, key=Diagnostic.sort_key)
