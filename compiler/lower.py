"""Lowering: the checked program as a target-ready module description.

Everything a backend's template needs is computed here: safe names, file paths relative to
the rules directory, vocabulary tables, and the criteria rendered as plain words for readers.
"""

from __future__ import annotations

import keyword
import re
import sys
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import PurePath
from contextvars import ContextVar
from typing import Optional

from . import ir as I
from .readable import readable, unit_words
from .fingerprint import fingerprint
from .hoist import hoist

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Words:
    """A criterion as plain words: a sentence, or a list joined by all/any of."""

    text: str
    joiner: str = ""  # "all of" | "any of" | ""
    items: tuple["Words", ...] = ()


@dataclass(frozen=True)
class LoweredCriterion:
    ir: I.CriterionIR
    id: str
    func: str
    ref: str
    kind: str
    quotes: tuple[str, ...]
    notes: tuple[str, ...]
    file: str
    line: int
    body_source: str
    reads: tuple[str, ...]
    words: Words
    anchor_id: str


@dataclass(frozen=True)
class LoweredModule:
    program: I.Program
    module_name: str
    trial: I.TrialInfo
    criteria: tuple[LoweredCriterion, ...]
    derived: tuple[I.DerivedElement, ...]
    derived_funcs: dict
    equiv_consts: dict
    vocab_observations: tuple  # (name, kind, units tuple, unit, values)
    vocab_conditions: tuple[str, ...]
    vocab_procedures: tuple[str, ...]
    vocab_classes: tuple[str, ...]
    vocab_facts: tuple[str, ...]
    aliases: tuple[tuple[str, str], ...]
    refs_in_order: tuple[str, ...]
    source_files: tuple[str, ...]
    fingerprint: str = ""  # the meaning of the program (compiler/fingerprint.py)
    terminology: tuple[tuple[str, str, str, str], ...] = ()  # (kind, name, system, code)


def module_name_for(trial: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_]", "_", trial).lower()
    if not name or name[0].isdigit():
        name = "trial_" + name
    if name in sys.stdlib_module_names or name in sys.builtin_module_names or keyword.iskeyword(name) \
            or name.startswith("__"):
        # a module named json.py, re.py or datetime.py would shadow the standard-library module
        # it imports when run as a script (its directory comes first on sys.path)
        name += "_trial"
    return name


def _rel(path: str, root: Optional[str]) -> str:
    p = PurePath(path)
    if root is not None:
        try:
            p = p.relative_to(PurePath(root).parent)
        except ValueError:
            pass
    return p.as_posix()


def lower(program: I.Program, rules_root: Optional[str] = None) -> LoweredModule:
    token = _LABELS.set(vocabulary_labels(program))
    try:
        return _lower(program, rules_root)
    finally:
        _LABELS.reset(token)


def vocabulary_labels(program: I.Program) -> dict[str, str]:
    """code -> the vocabulary's label, for the plain words (facts keep their own key)."""
    out: dict[str, str] = {}
    for group in (program.observations, program.items, program.classes, program.derived):
        for e in group:
            if e.label:
                out[e.name] = e.label
    for f in program.facts:
        if f.label:
            out["fact:" + f.name] = f.label
    return out


_LABELS: ContextVar[dict] = ContextVar("elig_vocabulary_labels", default={})


def _label(code: str) -> str:
    """A code as a reader reads it: its label, lower-cased where it starts a common noun
    ("platelet count"; "HIV infection" keeps its capitals: the second letter is one)."""
    lab = _LABELS.get().get(code)
    if not lab:
        return code.replace("_", " ")
    return lab[0].lower() + lab[1:] if len(lab) > 1 and lab[1].islower() else lab


def _fact(name: str) -> str:
    lab = _LABELS.get().get("fact:" + name)
    return f"“{lab}”" if lab else name.replace("_", " ")


def _lower(program: I.Program, rules_root: Optional[str] = None) -> LoweredModule:
    crit = []
    formulas = {d.name: d.formula for d in program.derived}
    for c in program.criteria:
        if not _IDENT.match(c.id):
            raise ValueError(f"criterion id {c.id!r} is not an identifier")
        body = hoist(c.body, formulas)  # judgment conditionals of values as conditionals of conditions
        crit.append(LoweredCriterion(
            c if body == c.body else replace(c, body=body), c.id, "c_" + c.id, c.refs[0] if c.refs else "", c.kind, c.quotes, c.notes,
            _rel(c.file, rules_root), c.line, c.body_source, c.reads, criterion_words(c),
            "crit-" + c.id,
        ))
    refs = []
    for c in crit:
        if c.ref not in refs:
            refs.append(c.ref)
    derived_funcs = {d.name: "_d_" + d.name for d in program.derived}
    equiv_consts = {t.name: "_EQ_" + t.name for t in program.equivalences}
    obs = tuple((o.name, o.kind, tuple(u for u, _ in o.units), o.unit, o.values) for o in program.observations)
    return LoweredModule(
        program, module_name_for(program.trial.name), program.trial, tuple(crit), program.derived, derived_funcs,
        equiv_consts, obs,
        tuple(x.name for x in program.items if x.kind == "condition"),
        tuple(x.name for x in program.items if x.kind == "procedure"),
        tuple(x.name for x in program.classes), tuple(x.name for x in program.facts), program.aliases, tuple(refs),
        tuple(_rel(f, rules_root) for f in program.files), fingerprint(program), terminology(program),
    )


def terminology(program: I.Program) -> tuple[tuple[str, str, str, str], ...]:
    """Every declared standard code: (kind, vocabulary name, code system, code), in declaration order."""
    out = []
    for o in program.observations:
        out.extend(("observation", o.name, sys, code) for sys, code in o.codes)
    for x in program.items:
        out.extend((x.kind, x.name, sys, code) for sys, code in x.codes)
    for c in program.classes:
        out.extend(("class", c.name, sys, code) for sys, code in c.codes)
    for f in program.facts:
        out.extend(("fact", f.name, sys, code) for sys, code in f.codes)
    return tuple(out)


# ---------------------------------------------------------------------- plain words

_OPS = {">=": "at least", "<=": "at most", ">": "above", "<": "below", "=": "exactly", "!=": "not"}
_NEG_OPS = {">=": "below", "<=": "above", ">": "at most", "<": "at least", "=": "not", "!=": "exactly"}


def _q(x: Fraction) -> str:
    if x.denominator == 1:
        return str(x.numerator)
    f = float(x)
    s = ("%.6f" % f).rstrip("0").rstrip(".")
    return s


_UNIT_NAMES = {"a": "years", "d": "days", "wk": "weeks", "mo": "months", "h": "hours"}


def _amount(number: str, unit: str) -> str:
    if not unit:
        return number
    name = _UNIT_NAMES.get(unit) or unit_words(unit)
    if not name:
        return number
    if number == "1" and name.endswith("s") and unit in _UNIT_NAMES:
        name = name[:-1]
    return f"{number} {name}"


def window_words(w: Optional[I.Win]) -> str:
    if w is None:
        return "at any time"
    if w.kind == "ever":
        return "at any time"
    ref = _anchor(w.anchor) if w.at is None else date_words(w.at)
    if w.kind == "on_or_before":
        return f"on or before {ref}"
    if w.kind == "on_or_after":
        return f"on or after {ref}"
    if w.kind == "between":
        return f"between {ref} and {date_words(w.until)} (both days included)"
    d = dur_words(w.duration)
    word = "before" if w.kind == "within_before" else "after"
    return f"within {d} {word} {ref} (both days included)"


def _anchor(a: str) -> str:
    return a.replace("_", " ")


_UNIT_WORDS = {"d": ("day", "days"), "wk": ("week", "weeks"), "mo": ("calendar month", "calendar months"),
               "a": ("year", "years"), "h": ("hour", "hours")}


def dur_words(d) -> str:
    if isinstance(d, I.DConst):
        if d.kind == "months":
            n = int(d.amount)
            if n % 12 == 0:
                return f"{n // 12} year{'s' if n != 12 else ''}"
            return f"{n} calendar month{'s' if n != 1 else ''}"
        n = d.amount
        if n.denominator == 1 and n % 7 == 0 and "wk" in d.text:
            return f"{n // 7} week{'s' if n != 7 else ''} ({n} days)"
        return f"{_q(n)} day{'s' if n != 1 else ''}"
    if isinstance(d, I.DHalfLife):
        return f"{_q(d.multiple)} half-li{'ves' if d.multiple != 1 else 'fe'} of the drug"
    if isinstance(d, I.DExtreme):
        return f"the {d.which} of {dur_words(d.left)} and {dur_words(d.right)}"
    if isinstance(d, I.DIf):
        parts = []
        cur = d
        while isinstance(cur, I.DIf):
            parts.append(f"{dur_words(cur.then)} if {bool_words(cur.cond).text}")
            cur = cur.otherwise
        parts.append(f"otherwise {dur_words(cur)}")
        return "; ".join(parts)
    return "?"


def lim_words(l) -> str:
    if isinstance(l, I.LConst):
        return readable(l.text)
    if isinstance(l, I.LRef):
        return f"{_q(l.multiple)} × {l.which.upper()}" if l.multiple != 1 else l.which.upper()
    if isinstance(l, I.LIf):
        return f"{lim_words(l.then)} if {bool_words(l.cond).text}, otherwise {lim_words(l.otherwise)}"
    return "?"


def sel_words(s) -> str:
    if isinstance(s, I.SelLatest):
        if s.pred is not None:
            return (f"the most recent {_label(s.code)} {window_words(s.window)} "
                    f"for which {bool_words(s.pred).text}")
        return f"the most recent {_label(s.code)} {window_words(s.window)}"
    return f"the {_label(s.code)} value"


def num_words(n) -> str:
    if isinstance(n, I.NConst):
        return _q(n.value)
    if isinstance(n, I.NObs):
        return f"{sel_words(n.sel)} in {unit_words(n.unit) or 'its unit'}"
    if isinstance(n, I.NAge):
        words = {"d": "days", "wk": "weeks", "mo": "calendar months", "a": "years"}.get(n.unit, n.unit)
        return f"age in completed {words} at {_anchor(n.anchor)}"
    if isinstance(n, I.NArith):
        op = {"*": "×", "/": "÷", "+": "+", "-": "−"}[n.op]
        return f"({num_words(n.left)} {op} {num_words(n.right)})"
    if isinstance(n, I.NIf):
        return f"({num_words(n.then)} if {bool_words(n.cond).text}, otherwise {num_words(n.otherwise)})"
    if isinstance(n, I.NDerived):
        return _label(n.name)
    if isinstance(n, I.NScale):
        return num_words(n.operand)
    if isinstance(n, I.NAttr):
        return n.name.replace("_", " ")
    if isinstance(n, I.NDose):
        return f"the daily dose as {n.table} equivalent"
    if isinstance(n, I.NCourse):
        return "the length of the course (first and last day counted)"
    if isinstance(n, I.NHalfLife):
        return "the half-life"
    return "?"


def date_words(d) -> str:
    if isinstance(d, I.DtAnchor):
        return _anchor(d.name)
    if isinstance(d, I.DtAttr):
        return d.name.replace("_", " ")
    if isinstance(d, I.DtShift):
        return f"{dur_words(d.duration)} {'before' if d.sign < 0 else 'after'} {date_words(d.date)}"
    if isinstance(d, I.DtItem):
        return {"onset": "its onset", "start": "its start", "date": "its date",
                "end": "its end (an ongoing one has not ended)"}[d.field]
    return "?"


def _flatten(kind, items):
    out = []
    for w in items:
        if w.joiner == kind:
            out.extend(w.items)
        else:
            out.append(w)
    return tuple(out)


def bool_words(b) -> Words:
    if isinstance(b, I.BAnd):
        items = _flatten("all of", [bool_words(x) for x in b.items])
        return Words("; and ".join(w.text for w in items), "all of", items)
    if isinstance(b, I.BOr):
        items = _flatten("any of", [bool_words(x) for x in b.items])
        return Words("; or ".join(w.text for w in items), "any of", items)
    if isinstance(b, I.BNot) and isinstance(b.operand, I.BFact):
        f = b.operand
        tail = " (investigator judgment; review when not recorded)" if f.judgment else ""
        return Words(f"the record says no to {_fact(f.name)}{tail}")
    if isinstance(b, I.BNot):
        inner = bool_words(b.operand)
        return Words(f"not ({inner.text})" if inner.joiner else f"not {inner.text}", "none of" if inner.joiner else "",
                     inner.items if inner.joiner == "any of" else ((inner,) if inner.joiner else ()))
    if isinstance(b, I.BImplies):
        c, t = bool_words(b.cond), bool_words(b.then)
        return Words(f"if {c.text}, then {t.text}")
    if isinstance(b, I.BIf):
        return Words(f"{bool_words(b.then).text} if {bool_words(b.cond).text}, otherwise {bool_words(b.otherwise).text}")
    if isinstance(b, I.BFact):
        tail = " (investigator judgment; review when not recorded)" if b.judgment else ""
        return Words(f"the record says {_fact(b.name)}{tail}")
    if isinstance(b, I.BSexIs):
        vals = " or ".join(b.values)
        return Words(f"sex is {'not ' if b.negated else ''}{vals}")
    if isinstance(b, I.BObsCmp):
        return Words(f"{sel_words(b.sel)} is {_OPS[b.op]} {lim_words(b.limit)}")
    if isinstance(b, I.BObsBetween):
        return Words(f"{sel_words(b.sel)} is between {lim_words(b.low)} and {lim_words(b.high)} (both included)")
    if isinstance(b, I.BObsIs):
        return Words(f"{sel_words(b.sel)} is {'not ' if b.negated else ''}{' or '.join(b.values)}")
    if isinstance(b, I.BNumCmp):
        return Words(f"{num_words(b.left)} is {_OPS[b.op]} {_amount(num_words(b.right), b.unit)}")
    if isinstance(b, I.BDateCmp):
        return Words(f"{date_words(b.left)} is {_DATE_OPS[b.op]} {date_words(b.right)}")
    if isinstance(b, I.BQuery):
        return Words(query_words(b))
    if isinstance(b, I.BObsQuery):
        q = {"any": "any", "no": "no", "every": "every"}[b.quantifier]
        return Words(f"{q} {_label(b.code)} reading {window_words(b.window)} for which {bool_words(b.pred).text}")
    if isinstance(b, I.BAttrBool):
        return Words(f"{b.name.replace('_', ' ')} is yes")
    if isinstance(b, I.BAttrIs):
        return Words(f"{b.name.replace('_', ' ')} is {'not ' if b.negated else ''}{' or '.join(b.tests)}")
    if isinstance(b, I.BFieldIs):
        return Words(f"{b.field} is {'not ' if b.negated else ''}{' or '.join(b.tests)}")
    if isinstance(b, I.BRecorded):
        return Words(f"{b.text.replace('_', ' ')} is recorded (a value that is not recorded or not usable makes this no, never unknown)")
    if isinstance(b, I.BClassIn):
        return Words(f"its class is {'not ' if b.negated else ''}{' or '.join(_label(t) for t in b.tests)}")
    raise ValueError(f"no words for {type(b).__name__}")


_DATE_OPS = {"<=": "on or before", "<": "before", ">=": "on or after", ">": "after", "=": "on", "!=": "not on"}


def query_words(b: I.BQuery) -> str:
    noun = {"condition": "recorded", "procedure": "recorded", "treatment": "given"}[b.kind]
    what = " or ".join(_label(c) for c in b.codes)
    if b.kind == "treatment":
        what = f"{'' if b.quantifier == 'no' else 'a '}treatment of class {what}"
    if b.active:
        what = f"an active {what}"
    if b.count is not None:
        q = "the number of different kinds among" if b.distinct else "the number of records of"
    else:
        q = {"any": "there is", "no": "there is no", "every": "every"}[b.quantifier]
    s = f"{q} {what} {noun} {window_words(b.window)}" if b.window else f"{q} {what} {noun} at any time"
    if b.pred is not None:
        p = bool_words(b.pred).text
        s += f", unless {p}" if b.negate_pred else f" for which {p}"
    if b.count is not None:
        s += f", is {'at least' if b.quantifier == 'at_least' else 'at most'} {b.count}"
    return s


def criterion_words(c: I.CriterionIR) -> Words:
    return bool_words(c.body)
