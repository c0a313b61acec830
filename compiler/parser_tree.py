"""The Lark parse tree of a rule file to the frozen AST of ``compiler.ast``: one Transformer,
run by ``compiler.parser.parse_source`` over the whole tree at once."""

from __future__ import annotations

from lark import Token, Transformer, v_args

from . import ast as A

# operators in their other spellings
_OPS = {"≥": ">=", "≤": "<=", "≠": "!=", "×": "*", "x": "*"}


def _span(file: str, meta_or_token) -> A.Span:
    m = meta_or_token
    line = getattr(m, "line", None) or 1
    col = getattr(m, "column", None) or 1
    end_line = getattr(m, "end_line", None) or line
    end_col = getattr(m, "end_column", None) or col + 1
    return A.Span(file, line, col, end_line, end_col)


def _join(file: str, a: A.Span, b: A.Span) -> A.Span:
    return A.Span(file, a.line, a.column, b.end_line, b.end_column)


def _unescape(raw: str) -> str:
    body = raw[1:-1]
    out = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body) and body[i + 1] in '"\\':
            out.append(body[i + 1])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


class ToAst(Transformer):
    """Turns the whole parse tree into AST nodes at once."""

    def __init__(self, file: str):
        super().__init__(visit_tokens=False)
        self.file = file

    # helpers ---------------------------------------------------------------
    def _sp(self, x) -> A.Span:
        return _span(self.file, x)

    def _id(self, tok: Token) -> A.Ident:
        return A.Ident(str(tok), self._sp(tok))

    def _names(self, toks) -> tuple:
        return tuple(self._id(t) for t in toks if isinstance(t, Token) and t.type == "NAME")

    # strings, units ------------------------------------------------------------
    @v_args(meta=True)
    def string(self, meta, toks):
        return A.Text("".join(_unescape(str(t)) for t in toks), self._sp(meta))

    def unit(self, toks):
        t = toks[0]
        return A.UnitRef(str(t), self._sp(t))

    def unit_one(self, toks):
        t = toks[0]
        return A.UnitRef(str(t), self._sp(t))

    # header --------------------------------------------------------------------
    @v_args(meta=True)
    def title(self, meta, c):
        return ("title", c[0], self._sp(meta))

    @v_args(meta=True)
    def protocol(self, meta, c):
        return ("protocol", c[0], self._sp(meta))

    @v_args(meta=True)
    def anchors(self, meta, c):
        return ("anchors", self._names(c), self._sp(meta))

    @v_args(meta=True)
    def trial(self, meta, c):
        fields = {}
        repeats = []
        for kind, value, sp in c[1:]:
            if kind in fields:
                repeats.append((kind, sp))
            fields.setdefault(kind, value)
        return A.TrialDecl(
            self._id(c[0]), fields.get("title"), fields.get("protocol"), fields.get("anchors", ()), self._sp(meta),
            tuple(repeats),
        )

    # vocabulary ----------------------------------------------------------------
    @v_args(meta=True)
    def label(self, meta, c):
        return ("label", c[0], self._sp(meta))

    @v_args(meta=True)
    def code(self, meta, c):
        return ("code", A.TerminologyCode(self._id(c[0]), c[1]), self._sp(meta))

    @v_args(meta=True)
    def unit_field(self, meta, c):
        return ("unit", c[0], self._sp(meta))

    @v_args(meta=True)
    def accepts(self, meta, c):
        return ("accepts", tuple(c), self._sp(meta))

    @v_args(meta=True)
    def molar_mass(self, meta, c):
        num, unit = c
        return ("molar_mass", A.Quantity(str(num), unit, self._sp(meta)), self._sp(meta))

    @v_args(meta=True)
    def qualitative(self, meta, c):
        return ("qualitative", self._names(c), self._sp(meta))

    @v_args(meta=True)
    def reference_limits(self, meta, c):
        return ("limits", tuple(self._id(t) for t in c), self._sp(meta))

    @v_args(meta=True)
    def observation_decl(self, meta, c):
        name = self._id(c[0])
        label = unit = molar = None
        codes, accepts, qual, limits, seen = [], [], (), (), []
        attrs = tuple(x for x in c[1:] if isinstance(x, A.AttributeDecl))
        for kind, value, sp in (x for x in c[1:] if not isinstance(x, A.AttributeDecl)):
            seen.append((kind, sp))
            if kind == "label":
                label = label or value
            elif kind == "code":
                codes.append(value)
            elif kind == "unit":
                unit = unit or value
            elif kind == "accepts":
                accepts.extend(value)
            elif kind == "molar_mass":
                molar = molar or value
            elif kind == "qualitative":
                qual = qual or value
            elif kind == "limits":
                limits = limits + value
        return A.ObservationDecl(
            name, label, tuple(codes), unit, tuple(accepts), molar, qual, limits, tuple(seen), self._sp(meta), attrs
        )

    @v_args(meta=True)
    def attribute(self, meta, c):
        name, typ = c[0], c[1]
        if typ[0] == "scale":
            return A.AttributeDecl(self._id(name), "number", (), self._sp(meta), scale=typ[1])
        unit = typ[2] if len(typ) > 2 else None
        return A.AttributeDecl(self._id(name), typ[0], typ[1], self._sp(meta), unit)

    def type_scale(self, c):
        lo, hi = c
        return ("scale", (str(lo), str(hi)))

    def type_boolean(self, c):
        return ("boolean", ())

    def type_number(self, c):
        return ("number", (), c[0]) if c else ("number", ())

    def type_date(self, c):
        return ("date", ())

    def type_text(self, c):
        return ("text", ())

    def type_enum(self, c):
        return ("enum", self._names(c))

    def _item(self, kind, meta, c):
        name = self._id(c[0])
        label, codes, attrs, repeats = None, [], [], []
        for x in c[1:]:
            if isinstance(x, A.AttributeDecl):
                attrs.append(x)
            elif x[0] == "label":
                if label is not None:
                    repeats.append(("label", x[2]))
                label = label or x[1]
            elif x[0] == "code":
                codes.append(x[1])
        return A.ItemDecl(kind, name, label, tuple(codes), tuple(attrs), self._sp(meta), tuple(repeats))

    @v_args(meta=True)
    def condition_decl(self, meta, c):
        return self._item("condition", meta, c)

    @v_args(meta=True)
    def procedure_decl(self, meta, c):
        return self._item("procedure", meta, c)

    def _label_codes(self, rest):
        label, codes = None, []
        for x in rest:
            if x[0] == "label":
                label = label or x[1]
            elif x[0] == "code":
                codes.append(x[1])
        return label, tuple(codes)

    @v_args(meta=True)
    def treatment_class_decl(self, meta, c):
        names = self._names(c)
        label, codes = self._label_codes([x for x in c if isinstance(x, tuple)])
        return A.TreatmentClassDecl(names, label, codes, self._sp(meta))

    def _fact(self, judgment: bool, meta, c):
        label, codes = self._label_codes(c[1:])
        return A.FactDecl(self._id(c[0]), judgment, label, codes, self._sp(meta))

    @v_args(meta=True)
    def fact_decl(self, meta, c):
        return self._fact(False, meta, c)

    @v_args(meta=True)
    def cohort_decl(self, meta, c):
        label, codes = self._label_codes(c[1:])
        return A.CohortDecl(self._id(c[0]), label, codes, self._sp(meta))

    @v_args(meta=True)
    def cohorts(self, meta, c):
        return ("cohorts", self._names(c))

    @v_args(meta=True)
    def judgment_decl(self, meta, c):
        return self._fact(True, meta, c)

    @v_args(meta=True)
    def derived_decl(self, meta, c):
        name = self._id(c[0])
        label = None
        rest = c[1:]
        if isinstance(rest[0], tuple) and rest[0][0] == "label":
            label = rest[0][1]
            rest = rest[1:]
        unit, formula = rest
        return A.DerivedDecl(name, label, unit, formula, self._sp(meta))

    @v_args(meta=True)
    def equivalent(self, meta, c):
        agent, num, unit = c
        return A.Equivalent(self._id(agent), A.Quantity(str(num), unit, _join(self.file, self._sp(num), unit.span)))

    @v_args(meta=True)
    def equivalence_decl(self, meta, c):
        name = self._id(c[0])
        label = None
        entries = []
        for x in c[1:]:
            if isinstance(x, tuple):
                label = x[1]
            else:
                entries.append(x)
        return A.EquivalenceDecl(name, label, tuple(entries), self._sp(meta))

    @v_args(meta=True)
    def uncomputable_decl(self, meta, c):
        return A.UncomputableDecl(self._id(c[0]), c[1], self._sp(meta))

    @v_args(meta=True)
    def outline_item(self, meta, c):
        return A.OutlineEntry(self._id(c[0]), c[1], False, self._sp(meta))

    @v_args(meta=True)
    def outline_heading(self, meta, c):
        return A.OutlineEntry(self._id(c[0]), c[1], True, self._sp(meta))

    @v_args(meta=True)
    def outline_decl(self, meta, c):
        return A.OutlineDecl(tuple(c), self._sp(meta))

    @v_args(meta=True)
    def let_stmt(self, meta, c):
        return A.LetDecl(self._id(c[0]), c[1], self._sp(meta))

    # criteria --------------------------------------------------------------------
    @v_args(meta=True)
    def ref(self, meta, c):
        return ("ref", self._id(c[0]))

    def quote(self, c):
        return ("quote", c[0])

    def note(self, c):
        return ("note", c[0])

    @v_args(meta=True)
    def require(self, meta, c):
        return ("body", "require", c[0], self._sp(meta))

    @v_args(meta=True)
    def exclude_when(self, meta, c):
        return ("body", "exclude_when", c[0], self._sp(meta))

    @v_args(meta=True)
    def criterion(self, meta, c):
        kind = str(c[0])
        name = self._id(c[1])
        refs, quotes, notes, lets, cohorts = [], [], [], [], []
        body = None
        for x in c[2:]:
            if isinstance(x, A.LetDecl):
                lets.append(x)
            elif x[0] == "cohorts":
                cohorts.extend(x[1])
            elif x[0] == "ref":
                refs.append(x[1])
            elif x[0] == "quote":
                quotes.append(x[1])
            elif x[0] == "note":
                notes.append(x[1])
            elif x[0] == "body":
                body = x
        return A.Criterion(
            kind, name, tuple(refs), tuple(quotes), tuple(notes), tuple(lets), body[1], body[2], body[3],
            self._sp(meta), tuple(cohorts),
        )

    def start(self, c):
        return tuple(c)

    # expressions -------------------------------------------------------------------
    @v_args(meta=True)
    def number(self, meta, c):
        return A.Number(str(c[0]), self._sp(meta))

    @v_args(meta=True)
    def quantity(self, meta, c):
        return A.Quantity(str(c[0]), c[1], self._sp(meta))

    @v_args(meta=True)
    def name(self, meta, c):
        ident = self._id(c[0])
        return A.Name(ident, ident.span)

    @v_args(meta=True)
    def ref_limit(self, meta, c):
        return A.RefLimit(str(c[0]), self._sp(meta))

    @v_args(meta=True)
    def age(self, meta, c):
        return A.Age(self._id(c[0]), self._sp(meta))

    @v_args(meta=True)
    def latest(self, meta, c):
        fkind, fexpr = c[2] if len(c) > 2 else (None, None)
        return A.Latest(self._id(c[0]), c[1], self._sp(meta), fkind, fexpr)

    def _wref(self, kind, duration, ref, meta, until=None):
        """A window from a name (anchor or item date) or from a parenthesized date expression."""
        if isinstance(until, Token):
            until = self._id(until)
        if isinstance(ref, Token):
            return A.Window(kind, duration, self._id(ref), self._sp(meta), None, until)
        return A.Window(kind, duration, None, self._sp(meta), ref, until)

    @v_args(meta=True)
    def within_before(self, meta, c):
        return self._wref("within_before", c[0], c[1], meta)

    @v_args(meta=True)
    def within_after(self, meta, c):
        return self._wref("within_after", c[0], c[1], meta)

    @v_args(meta=True)
    def on_or_before(self, meta, c):
        return self._wref("on_or_before", None, c[0], meta)

    @v_args(meta=True)
    def on_or_after(self, meta, c):
        return self._wref("on_or_after", None, c[0], meta)

    @v_args(meta=True)
    def between_window(self, meta, c):
        return self._wref("between", None, c[0], meta, c[1])

    def at_least(self, c):
        return ("at_least", int(str(c[0])) if str(c[0]).isdigit() else str(c[0]), len(c) > 1)

    def at_most(self, c):
        return ("at_most", int(str(c[0])) if str(c[0]).isdigit() else str(c[0]), len(c) > 1)

    def distinct(self, c):
        return "distinct"

    @v_args(meta=True)
    def recorded(self, meta, c):
        return A.Recorded(c[0], self._sp(meta))

    @v_args(meta=True)
    def ever(self, meta, c):
        return A.Window("ever", None, None, self._sp(meta))

    def only_active(self, c):
        return ("active",)

    @v_args(meta=True)
    def where(self, meta, c):
        return ("where", c[0])

    @v_args(meta=True)
    def unless(self, meta, c):
        return ("unless", c[0])

    @v_args(meta=True)
    def query(self, meta, c):
        count = None
        distinct = False
        if isinstance(c[0], tuple):  # at least N / at most N [distinct]
            quant, count, distinct = c[0]
        else:
            quant = str(c[0])
        active = False
        codes = []
        window = None
        fkind = fexpr = None
        for x in c[1:]:
            if isinstance(x, Token):
                codes.append(self._id(x))
            elif isinstance(x, A.Window):
                window = x
            elif x == ("active",):
                active = True
            else:
                fkind, fexpr = x
        return A.Query(quant, active, tuple(codes), window, fkind, fexpr, self._sp(meta), count, distinct)

    @v_args(meta=True)
    def compare(self, meta, c):
        left, op, right = c
        return A.Compare(_OPS.get(str(op), str(op)), self._sp(op), left, right, self._sp(meta))

    @v_args(meta=True)
    def range_compare(self, meta, c):
        left, op1, mid, op2, right = c
        return A.Chain(left, _OPS.get(str(op1), str(op1)), self._sp(op1), mid, _OPS.get(str(op2), str(op2)),
                       self._sp(op2), right, self._sp(meta))

    @v_args(meta=True)
    def set_number(self, meta, c):
        if len(c) > 1:
            return A.Quantity(str(c[0]), c[1], self._sp(meta))
        return A.Number(str(c[0]), self._sp(meta))

    def _set(self, items):
        return tuple(self._id(x) if isinstance(x, Token) else x for x in items)

    @v_args(meta=True)
    def is_value(self, meta, c):
        return A.IsValue(c[0], self._id(c[1]), False, self._sp(meta))

    @v_args(meta=True)
    def is_not_value(self, meta, c):
        return A.IsValue(c[0], self._id(c[1]), True, self._sp(meta))

    @v_args(meta=True)
    def between(self, meta, c):
        return A.Between(c[0], c[1], c[2], self._sp(meta))

    @v_args(meta=True)
    def shorter_of(self, meta, c):
        return A.Extreme("shorter", c[0], c[1], self._sp(meta))

    @v_args(meta=True)
    def longer_of(self, meta, c):
        return A.Extreme("longer", c[0], c[1], self._sp(meta))

    @v_args(meta=True)
    def arith(self, meta, c):
        left, op, right = c
        return A.Arith(_OPS.get(str(op), str(op)), left, right, self._sp(meta))

    @v_args(meta=True)
    def neg(self, meta, c):
        return A.Neg(c[0], self._sp(meta))

    @v_args(meta=True)
    def convert(self, meta, c):
        return A.Convert(c[0], c[1], self._sp(meta))

    @v_args(meta=True)
    def member(self, meta, c):
        return A.Member(c[0], self._set(c[1:]), False, self._sp(meta))

    @v_args(meta=True)
    def not_member(self, meta, c):
        return A.Member(c[0], self._set(c[1:]), True, self._sp(meta))

    @v_args(meta=True)
    def equivalent_of(self, meta, c):
        return A.EquivalentOf(c[0], self._id(c[1]), self._sp(meta))

    def _flat(self, node, meta, c):
        """An `and` (`or`) of its operands, with the operands that are themselves one flattened in."""
        items = []
        for x in c:
            items.extend(x.items if isinstance(x, node) else (x,))
        return node(tuple(items), self._sp(meta))

    @v_args(meta=True)
    def and_(self, meta, c):
        return self._flat(A.And, meta, c)

    @v_args(meta=True)
    def or_(self, meta, c):
        return self._flat(A.Or, meta, c)

    @v_args(meta=True)
    def not_(self, meta, c):
        return A.Not(c[0], self._sp(meta))

    @v_args(meta=True)
    def ifelse(self, meta, c):
        return A.IfElse(c[0], c[1], c[2], self._sp(meta))

    @v_args(meta=True)
    def implies(self, meta, c):
        return A.Implies(c[0], c[1], self._sp(meta))
