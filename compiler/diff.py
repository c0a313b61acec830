"""`elig diff`: what an amendment changes in the meaning of a trial's criteria.

Criteria of the old and the new rules are matched by id; a criterion whose id is new is matched
to a removed one with the same meaning (a rename), or else to the only removed one of the same
kind and refs (a rename with changes). Each matched pair is compared in meaning (see
``fingerprint.py``); for a changed pair the two compiled logics are walked side by side and each
difference is said in plain words with its direction.

Directions, for a criterion (docs/amendments.md):

* ``stricter``: the change can only make patients fail the criterion who passed before, never
  the reverse; ``looser``: the reverse. For an exclusion, "the body is true more often" is
  stricter; for an inclusion it is looser. ``not``, ``no``, ``unless`` and the condition of an
  ``if ... then`` flip the direction of what they contain.
* ``neither``: the change can move patients both ways (a limit in one place raised and in
  another lowered, ``=`` to ``!=``, a wider window for the most recent reading, which lets
  readings count that could pass or fail).
* ``none``: no outcome can change (a quote, a ref).
* ``undecided``: Elig cannot tell (a changed condition of an ``if``, a changed formula, a
  changed vocabulary definition, a change of structure).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Optional

from . import ir as I
from .fingerprint import canon, criterion_canon, criterion_fingerprint, fingerprint, vocabulary
from .lower import bool_words, dur_words, lim_words

# effects of a change on the node it is in: the node is true (or selects items) more often,
# less often, both, never differently, or Elig cannot tell
BROADER, NARROWER, BOTH, NONE, UNDECIDED = "broader", "narrower", "both", "none", "undecided"
_FLIP = {BROADER: NARROWER, NARROWER: BROADER}


def _flip(e: str) -> str:
    return _FLIP.get(e, e)


@dataclass
class Change:
    text: str
    direction: str  # stricter | looser | neither | none | undecided
    effect: str = field(default=NONE, repr=False)  # on the criterion's body (internal)

    def as_json(self) -> dict:
        return {"change": self.text, "direction": self.direction}


@dataclass
class CriterionDiff:
    status: str  # added | removed | changed | unchanged
    id: str
    kind: str
    refs: tuple[str, ...]
    old: Optional[I.CriterionIR]
    new: Optional[I.CriterionIR]
    renamed_from: Optional[str] = None
    changes: list[Change] = field(default_factory=list)
    direction: str = "none"

    def as_json(self) -> dict:
        out = {"id": self.id, "status": self.status, "kind": self.kind, "refs": list(self.refs)}
        if self.renamed_from is not None:
            out["renamed_from"] = self.renamed_from
        if self.status != "unchanged":
            out["direction"] = self.direction
        if self.changes:
            out["changes"] = [c.as_json() for c in self.changes]
        return out


@dataclass
class ProtocolItemDiff:
    ref: str
    old_text: Optional[str]
    new_text: Optional[str]
    rules: tuple[str, ...]  # the rules that cite the item (or its sub-items) in the new version

    def as_json(self) -> dict:
        return {"ref": self.ref, "old_text": self.old_text, "new_text": self.new_text, "rules": list(self.rules)}


@dataclass
class ProgramDiff:
    trial: str
    old_fingerprint: str
    new_fingerprint: str
    criteria: list[CriterionDiff]
    trial_changes: list[Change]
    protocol_changed: bool = False
    protocol_items_changed: list[ProtocolItemDiff] = field(default_factory=list)
    rules_not_updated: list[ProtocolItemDiff] = field(default_factory=list)

    @property
    def same_meaning(self) -> bool:
        return self.old_fingerprint == self.new_fingerprint

    def count(self, status: str) -> int:
        return sum(1 for c in self.criteria if c.status == status)

    def as_json(self) -> dict:
        return {
            "trial": self.trial,
            "old_fingerprint": self.old_fingerprint,
            "new_fingerprint": self.new_fingerprint,
            "same_meaning": self.same_meaning,
            "summary": {s: self.count(s) for s in ("added", "removed", "changed", "unchanged")},
            "direction": overall_direction(self),
            "trial_changes": [c.as_json() for c in self.trial_changes],
            "criteria": [c.as_json() for c in self.criteria],
            "protocol": {
                "changed": self.protocol_changed,
                "items_changed": [p.ref for p in self.protocol_items_changed],
                "rules_not_updated": [p.as_json() for p in self.rules_not_updated],
            },
        }


# ---------------------------------------------------------------------- directions


def _criterion_direction(effect: str, kind: str) -> str:
    if effect == BROADER:
        return "looser" if kind == "inclusion" else "stricter"
    if effect == NARROWER:
        return "stricter" if kind == "inclusion" else "looser"
    if effect == BOTH:
        return "neither"
    return effect  # none | undecided


def combine(directions) -> str:
    ds = set(directions) - {"none"}
    if not ds:
        return "none"
    if "undecided" in ds:
        return "undecided"
    if ds == {"stricter"}:
        return "stricter"
    if ds == {"looser"}:
        return "looser"
    return "neither"


def overall_direction(d: ProgramDiff) -> str:
    return combine([c.direction for c in d.criteria if c.status != "unchanged"] +
                   [c.direction for c in d.trial_changes])


# ---------------------------------------------------------------------- words

_SYM = {">=": "≥", "<=": "≤", ">": ">", "<": "<", "=": "=", "!=": "≠"}


def _name(x: str) -> str:
    return x.replace("_", " ")


def _names(xs) -> str:
    xs = [_name(x) for x in xs]
    if len(xs) <= 1:
        return "".join(xs)
    return ", ".join(xs[:-1]) + " and " + xs[-1]


def _words(b) -> str:
    try:
        return bool_words(b).text
    except Exception:  # a node lowering cannot say: its type
        return type(b).__name__


def _subject(sel) -> str:
    return _name(sel.code)


def _anchor_words(w: I.Win) -> str:
    if w.kind == "within_before":
        return f"before {_name(w.anchor)}"
    if w.kind == "within_after":
        return f"after {_name(w.anchor)}"
    if w.kind == "on_or_before":
        return f"on or before {_name(w.anchor)}"
    return "at any time"


def _dur_short(d) -> str:
    if isinstance(d, (I.DConst, I.DHalfLife)):
        return d.text
    if isinstance(d, I.DExtreme):
        return f"{d.which} of {_dur_short(d.left)} and {_dur_short(d.right)}"
    return dur_words(d)


# ---------------------------------------------------------------------- comparing values

def _cmp_fraction(a: Fraction, b: Fraction) -> int:
    return (b > a) - (b < a)


def _lim_value(l) -> Optional[tuple]:
    if isinstance(l, I.LConst):
        return ("const", dict(l.table))
    if isinstance(l, I.LRef):
        return ("ref", l.which, l.multiple)
    return None


def _lim_order(old, new) -> Optional[int]:
    """+1 when the new limit is higher, -1 lower, 0 equal, None when they cannot be compared."""
    a, b = _lim_value(old), _lim_value(new)
    if a is None or b is None or a[0] != b[0]:
        return None
    if a[0] == "const":
        common = [u for u in a[1] if u in b[1]]
        if not common:
            return None
        return _cmp_fraction(a[1][common[0]], b[1][common[0]])
    if a[1] != b[1]:
        return None
    return _cmp_fraction(a[2], b[2])


def _limit_effect(op: str, order: Optional[int]) -> str:
    """Effect on `value OP limit` of raising (order +1) or lowering (-1) the limit."""
    if order is None:
        return UNDECIDED
    if order == 0:
        return NONE
    if op in (">=", ">"):
        return NARROWER if order > 0 else BROADER
    if op in ("<=", "<"):
        return BROADER if order > 0 else NARROWER
    return BOTH


def _op_effect(old: str, new: str) -> str:
    pairs = {(">=", ">"): NARROWER, (">", ">="): BROADER, ("<=", "<"): NARROWER, ("<", "<="): BROADER}
    return pairs.get((old, new), BOTH)


def _dur_order(a, b) -> Optional[int]:
    """+1 when duration b is longer than a for every item, -1 shorter, 0 same, None unknown."""
    if canon(a) == canon(b):
        return 0
    if isinstance(a, I.DConst) and isinstance(b, I.DConst):
        if a.kind == b.kind:
            return _cmp_fraction(a.amount, b.amount)
        # calendar months last 28 to 31 days
        if a.kind == "months":
            lo, hi = 28 * a.amount, 31 * a.amount
            if b.amount > hi:
                return 1
            if b.amount < lo:
                return -1
            return None
        lo, hi = 28 * b.amount, 31 * b.amount
        if a.amount > hi:
            return -1
        if a.amount < lo:
            return 1
        return None
    if isinstance(a, I.DHalfLife) and isinstance(b, I.DHalfLife):
        return _cmp_fraction(a.multiple, b.multiple)
    if isinstance(a, I.DExtreme) and isinstance(b, I.DExtreme) and a.which != b.which \
            and canon((a.left, a.right)) == canon((b.left, b.right)):
        return 1 if b.which == "longer" else -1  # the longer of two is never shorter than the shorter
    if isinstance(a, I.DExtreme) and isinstance(b, I.DExtreme) and a.which == b.which:
        left, right = _dur_order(a.left, b.left), _dur_order(a.right, b.right)
        if left is None or right is None:
            return None
        if left * right < 0:
            return None
        return left or right
    return None


# ---------------------------------------------------------------------- walking two logics


class _Walker:
    """Walks the old and the new logic of one criterion side by side. Every method returns a
    list of (words, effect on the node it was given)."""

    def __init__(self, kind: str = "", body=None):
        self.kind = kind
        # the queries that are the body or one of its top operands: "now also excludes X"
        self.top = set()
        self.root = id(body)
        if body is not None:
            self.top.add(id(body))
            if isinstance(body, (I.BOr, I.BAnd)):
                self.top.update(id(x) for x in body.items)

    def _codes_words(self, b, sign: str, what: str) -> str:
        if id(b) in self.top and self.kind == "exclusion" and b.quantifier == "any":
            return f"{'now also' if sign == '+' else 'no longer'} excludes {what}"
        if id(b) in self.top and self.kind == "inclusion" and b.quantifier == "no":
            return f"{'now also' if sign == '+' else 'no longer'} rules out {what}"
        return f"{_names(b.codes)}: {'now also counts' if sign == '+' else 'no longer counts'} {what}"

    def bool(self, a, b) -> list[tuple[str, str]]:
        if canon(a) == canon(b):
            return []
        if type(a) is not type(b):
            # one condition that became (or stopped being) one operand of an 'and' / 'or'
            if isinstance(b, (I.BAnd, I.BOr)) and not isinstance(a, (I.BAnd, I.BOr)):
                return self._connective(type(b)((a,)), b, isinstance(b, I.BAnd))
            if isinstance(a, (I.BAnd, I.BOr)) and not isinstance(b, (I.BAnd, I.BOr)):
                wrapped = type(a)((b,))
                if id(b) == self.root:
                    self.root = id(wrapped)
                return self._connective(a, wrapped, isinstance(a, I.BAnd))
            return [(f"logic changed: {_words(a)} → {_words(b)}", UNDECIDED)]
        m = getattr(self, "b_" + type(a).__name__, None)
        if m is None:
            return [(f"{_words(a)} → {_words(b)}", UNDECIDED)]
        return m(a, b)

    # -- connectives
    def _pair_items(self, olds, news):
        olds, news = list(olds), list(news)
        pairs = []
        for x in list(olds):  # identical items first
            cx = canon(x)
            for y in news:
                if canon(y) == cx:
                    olds.remove(x)
                    news.remove(y)
                    break
        for x in list(olds):  # then items of the same shape (same test of the same data)
            for y in news:
                if _shape(x) == _shape(y):
                    pairs.append((x, y))
                    olds.remove(x)
                    news.remove(y)
                    break
        return pairs, olds, news

    def _connective(self, a, b, conj: bool):
        pairs, removed, added = self._pair_items(a.items, b.items)
        out = []
        for x, y in pairs:
            out.extend(self.bool(x, y))
        verb = "requires" if conj else "counts"
        if id(b) == self.root and not conj and self.kind == "exclusion":
            verb = "excludes when"
        for x in removed:
            out.append((f"no longer {verb}: {_words(x)}", BROADER if conj else NARROWER))
        for y in added:
            out.append((f"now also {verb}: {_words(y)}", NARROWER if conj else BROADER))
        return out

    def b_BAnd(self, a, b):
        return self._connective(a, b, True)

    def b_BOr(self, a, b):
        return self._connective(a, b, False)

    def b_BNot(self, a, b):
        return [(t, _flip(e)) for t, e in self.bool(a.operand, b.operand)]

    def b_BImplies(self, a, b):
        return ([(t, _flip(e)) for t, e in self.bool(a.cond, b.cond)] + self.bool(a.then, b.then))

    def b_BIf(self, a, b):
        out = [(f"condition changed: {t}", UNDECIDED) for t, _ in self.bool(a.cond, b.cond)]
        return out + self.bool(a.then, b.then) + self.bool(a.otherwise, b.otherwise)

    # -- observations
    def _sel(self, a, b) -> list[tuple[str, str]]:
        if canon(a) == canon(b):
            return []
        if isinstance(a, I.SelLatest) and isinstance(b, I.SelLatest) and a.code == b.code:
            out = []
            for t, e in self.window(a.window, b.window, subject=_subject(a)):
                # the most recent reading of a wider window may be one that did not count before:
                # unknown may become pass or fail
                out.append((t, NONE if e == NONE else BOTH))
            return out
        return [(f"reads {_name(a.code)} → {_name(b.code)}", UNDECIDED)]

    def _limit(self, subject, op, la, lb) -> list[tuple[str, str]]:
        if canon(la) == canon(lb):
            return []
        if isinstance(la, I.LIf) and isinstance(lb, I.LIf):
            out = [(f"{subject}: condition of the limit changed: {t}", UNDECIDED) for t, _ in self.bool(la.cond, lb.cond)]
            return out + self._limit(subject, op, la.then, lb.then) + self._limit(subject, op, la.otherwise, lb.otherwise)
        order = _lim_order(la, lb)
        if order == 0 and lim_words(la) == lim_words(lb):
            return []  # the same limit: a changed unit table is a changed definition, said once
        text = f"{subject} {_SYM[op]} {lim_words(la)} → {_SYM[op]} {lim_words(lb)}"
        return [(text, _limit_effect(op, order))]

    def b_BObsCmp(self, a, b):
        out = self._sel(a.sel, b.sel)
        subject = _subject(b.sel)
        if a.op != b.op:
            if canon(a.limit) == canon(b.limit):
                out.append((f"{subject} {_SYM[a.op]} {lim_words(a.limit)} → {_SYM[b.op]} {lim_words(b.limit)}",
                            _op_effect(a.op, b.op)))
            else:
                out.append((f"{subject} {_SYM[a.op]} {lim_words(a.limit)} → {_SYM[b.op]} {lim_words(b.limit)}", UNDECIDED))
            return out
        return out + self._limit(subject, a.op, a.limit, b.limit)

    def b_BObsBetween(self, a, b):
        out = self._sel(a.sel, b.sel)
        subject = _subject(b.sel)
        for t, e in self._limit(subject, ">=", a.low, b.low):
            out.append((f"lower limit: {t}", e))
        for t, e in self._limit(subject, "<=", a.high, b.high):
            out.append((f"upper limit: {t}", e))
        return out

    def b_BObsIs(self, a, b):
        out = self._sel(a.sel, b.sel)
        if (a.negated, set(a.values)) != (b.negated, set(b.values)):
            out.append(self._set_change(_subject(b.sel), a.values, b.values, a.negated, b.negated))
        return out

    def _set_change(self, subject, olds, news, neg_a, neg_b):
        text = f"{subject} is {'not ' if neg_a else ''}{' or '.join(olds)} → is {'not ' if neg_b else ''}{' or '.join(news)}"
        if neg_a != neg_b:
            return (text, BOTH)
        sa, sb = set(olds), set(news)
        if sa < sb:
            e = BROADER
        elif sb < sa:
            e = NARROWER
        else:
            e = BOTH
        return (text, _flip(e) if neg_a else e)

    def b_BSexIs(self, a, b):
        return [self._set_change("sex", a.values, b.values, a.negated, b.negated)]

    def b_BClassIn(self, a, b):
        return [self._set_change("class", a.tests, b.tests, a.negated, b.negated)]

    def b_BFieldIs(self, a, b):
        if a.field != b.field:
            return [(f"{_words(a)} → {_words(b)}", UNDECIDED)]
        return [self._set_change(a.field, a.tests, b.tests, a.negated, b.negated)]

    def b_BAttrIs(self, a, b):
        if a.name != b.name:
            return [(f"{_words(a)} → {_words(b)}", UNDECIDED)]
        return [self._set_change(_name(a.name), a.tests, b.tests, a.negated, b.negated)]

    def b_BNumCmp(self, a, b):
        if canon(a.left) != canon(b.left) or a.unit != b.unit:
            return [(f"{_words(a)} → {_words(b)}", UNDECIDED)]
        subject = _num_subject(a.left)
        ra, rb = a.right, b.right
        if isinstance(ra, I.NConst) and isinstance(rb, I.NConst):
            text = f"{subject} {_SYM[a.op]} {ra.text} → {_SYM[b.op]} {rb.text}"  # the texts carry their units
            if a.op == b.op:
                return [(text, _limit_effect(a.op, _cmp_fraction(ra.value, rb.value)))]
            if ra.value == rb.value:
                return [(text, _op_effect(a.op, b.op))]
        return [(f"{_words(a)} → {_words(b)}", UNDECIDED)]

    # -- windows
    def window(self, a: Optional[I.Win], b: Optional[I.Win], subject: str = "") -> list[tuple[str, str]]:
        """Effects on the set of items the window lets in (broader: more items)."""
        if canon(a) == canon(b):
            return []
        pre = f"{subject}: " if subject else ""
        if a is None or b is None or a.kind != b.kind or a.anchor != b.anchor:
            wa = "at any time" if a is None else a.text
            wb = "at any time" if b is None else b.text
            e = UNDECIDED
            if a is None or a.kind == "ever":
                e = NARROWER
            elif b is None or b.kind == "ever":
                e = BROADER
            return [(f"{pre}window {wa} → {wb}", e)]
        return self._duration(a.duration, b.duration, f"{pre}window ", " " + _anchor_words(b))

    def _duration(self, da, db, pre, post):
        if canon(da) == canon(db):
            return []
        if isinstance(da, I.DIf) and isinstance(db, I.DIf) and canon(da.cond) == canon(db.cond):
            out = [(f"{pre.rstrip()} when {_words(db.cond)}: {t}", e)
                   for t, e in self._duration(da.then, db.then, "", post)]
            last = not isinstance(db.otherwise, I.DIf)
            return out + self._duration(da.otherwise, db.otherwise, f"{pre.rstrip()} otherwise: " if last else pre, post)
        if isinstance(da, I.DIf) or isinstance(db, I.DIf):
            return [(f"{pre}{_dur_short(da)} → {_dur_short(db)}{post}", UNDECIDED)]
        order = _dur_order(da, db)
        e = UNDECIDED if order is None else (NONE if order == 0 else (BROADER if order > 0 else NARROWER))
        return [(f"{pre}{_dur_short(da)} → {_dur_short(db)}{post}", e)]

    # -- queries
    def b_BQuery(self, a, b):
        what = _names(b.codes) if len(b.codes) <= 3 else ""
        if a.kind != b.kind or a.quantifier != b.quantifier:
            return [(f"{_words(a)} → {_words(b)}", UNDECIDED)]
        q = a.quantifier
        # how an effect on the items the query counts becomes an effect on the query
        to_query = (lambda e: e) if q == "any" else _flip
        out = []
        removed = [c for c in a.codes if c not in b.codes]
        added = [c for c in b.codes if c not in a.codes]
        if added:
            out.append((self._codes_words(b, "+", _names(added)), to_query(BROADER) if q != "every" else UNDECIDED))
        if removed:
            out.append((self._codes_words(b, "-", _names(removed)), to_query(NARROWER) if q != "every" else UNDECIDED))
        if a.active != b.active:
            e = NARROWER if b.active else BROADER
            out.append((f"{what + ': ' if what else ''}{'now only active ones count' if b.active else 'inactive ones count too'}", to_query(e)))
        for t, e in self.window(a.window, b.window, subject=what):
            out.append((t, to_query(e)))
        # the filter: items that pass it are counted (where), or those that do not (unless)
        if a.negate_pred == b.negate_pred and a.pred is not None and b.pred is not None:
            pred_to_items = _flip if a.negate_pred else (lambda e: e)
            to_q = (lambda e: e) if q == "any" else (_flip if q == "no" else (lambda e: e))
            for t, e in self.bool(a.pred, b.pred):
                e_items = pred_to_items(e)
                out.append((f"{what}: {t}" if what else t, to_q(e_items) if q != "every" else pred_to_items(e)))
        elif canon(a.pred) != canon(b.pred) or a.negate_pred != b.negate_pred:
            fa = "" if a.pred is None else (" unless " if a.negate_pred else " where ") + _words(a.pred)
            fb = "" if b.pred is None else (" unless " if b.negate_pred else " where ") + _words(b.pred)
            e = UNDECIDED
            if a.pred is None:  # a filter added: fewer items count
                e = to_query(NARROWER) if q != "every" else BROADER
            elif b.pred is None:
                e = to_query(BROADER) if q != "every" else NARROWER
            out.append((f"{what + ': ' if what else ''}filter{fa or ' none'} → {fb.strip() or 'none'}", e))
        return out

    def b_BObsQuery(self, a, b):
        if a.code != b.code or a.quantifier != b.quantifier:
            return [(f"{_words(a)} → {_words(b)}", UNDECIDED)]
        q = a.quantifier
        to_query = (lambda e: e) if q == "any" else _flip
        out = [(t, to_query(e)) for t, e in self.window(a.window, b.window, subject=_name(a.code))]
        for t, e in self.bool(a.pred, b.pred):
            out.append((t, e if q in ("any", "every") else _flip(e)))
        return out

    def b_BFact(self, a, b):
        return [(f"{_words(a)} → {_words(b)}", UNDECIDED)]


def _num_subject(n) -> str:
    if isinstance(n, I.NDerived):
        return _name(n.name)
    if isinstance(n, I.NAge):
        return f"age at {_name(n.anchor)}"
    if isinstance(n, I.NAttr):
        return _name(n.name)
    if isinstance(n, I.NObs):
        return _subject(n.sel)
    if isinstance(n, I.NScale):
        return _num_subject(n.operand)
    if isinstance(n, I.NCourse):
        return "course length"
    if isinstance(n, I.NHalfLife):
        return "half-life"
    if isinstance(n, I.NDose):
        return f"dose as {_name(n.table)}"
    return "the computed value"


def _shape(x) -> tuple:
    """What a condition tests, without its limits: items of the same shape are compared."""
    if isinstance(x, (I.BObsCmp, I.BObsBetween, I.BObsIs)):
        return (type(x).__name__, getattr(x.sel, "code", None))
    if isinstance(x, I.BQuery):
        return ("BQuery", x.kind, x.quantifier)
    if isinstance(x, I.BObsQuery):
        return ("BObsQuery", x.code)
    if isinstance(x, I.BNumCmp):
        return ("BNumCmp", _key_of(x.left))
    if isinstance(x, I.BFact):
        return ("BFact", x.name)
    if isinstance(x, I.BNot):
        return ("BNot",) + _shape(x.operand)
    return (type(x).__name__,)


def _key_of(n) -> str:
    import json

    return json.dumps(canon(n), sort_keys=True)


# ---------------------------------------------------------------------- criteria


def compare_criteria(old_prog: I.Program, new_prog: I.Program, a: I.CriterionIR, b: I.CriterionIR,
                     old_vocab: dict, new_vocab: dict) -> list[Change]:
    changes: list[Change] = []
    kind = b.kind
    if a.kind != b.kind:
        changes.append(Change(f"now an {b.kind} (was an {a.kind})", "undecided", UNDECIDED))
        return changes + _quote_changes(a, b) + _ref_changes(a, b)
    for t, e in _Walker(kind, b.body).bool(a.body, b.body):
        changes.append(Change(t, _criterion_direction(e, kind), e))
    # vocabulary the logic reads whose definition changed
    deps_a = _deps(old_prog, a, old_vocab)
    deps_b = _deps(new_prog, b, new_vocab)
    for name in sorted(set(deps_a) & set(deps_b)):
        if deps_a[name] != deps_b[name]:
            changes.append(Change(f"the definition of {_name(name)} changed", "undecided", UNDECIDED))
    changes += _quote_changes(a, b) + _ref_changes(a, b)
    return changes


def _deps(prog, c, vocab):
    from .fingerprint import dependencies

    return dependencies(prog, c, vocab)


def _norm(q: str) -> str:
    return " ".join(q.split())


def _quote_changes(a, b) -> list[Change]:
    qa = [_norm(q) for q in a.quotes]
    qb = [_norm(q) for q in b.quotes]
    removed = [q for q in qa if q not in qb]
    added = [q for q in qb if q not in qa]
    out = []
    for x, y in zip(removed, added):
        out.append(Change(f"quote changed: “{x}” → “{y}”", "none"))
    for x in removed[len(added):]:
        out.append(Change(f"quote removed: “{x}”", "none"))
    for y in added[len(removed):]:
        out.append(Change(f"quote added: “{y}”", "none"))
    return out


def _ref_changes(a, b) -> list[Change]:
    if tuple(a.refs) == tuple(b.refs):
        return []
    return [Change(f"ref {', '.join(a.refs)} → {', '.join(b.refs)}", "none")]


def diff_programs(old: I.Program, new: I.Program, old_protocol: Optional[str] = None,
                  new_protocol: Optional[str] = None) -> ProgramDiff:
    old_vocab, new_vocab = vocabulary(old), vocabulary(new)
    old_by_id = {c.id: c for c in old.criteria}
    new_by_id = {c.id: c for c in new.criteria}
    matched: dict[str, str] = {}  # new id -> old id
    for cid in new_by_id:
        if cid in old_by_id:
            matched[cid] = cid
    lost = [c for c in old.criteria if c.id not in new_by_id]
    gained = [c for c in new.criteria if c.id not in old_by_id]
    # renames with the same meaning
    fp_old = {c.id: criterion_fingerprint(old, c, old_vocab) for c in lost}
    for c in list(gained):
        fp = criterion_fingerprint(new, c, new_vocab)
        hit = next((o for o in lost if fp_old[o.id] == fp), None)
        if hit is not None:
            matched[c.id] = hit.id
            lost.remove(hit)
            gained.remove(c)
    # renames with changes: the only lost and the only gained criterion of a kind and refs
    for c in list(gained):
        same_new = [g for g in gained if (g.kind, g.refs) == (c.kind, c.refs)]
        same_old = [o for o in lost if (o.kind, o.refs) == (c.kind, c.refs)]
        if len(same_new) == 1 and len(same_old) == 1:
            matched[c.id] = same_old[0].id
            lost.remove(same_old[0])
            gained.remove(c)

    out: list[CriterionDiff] = []
    for c in new.criteria:
        if c.id in matched:
            o = old_by_id[matched[c.id]]
            renamed = o.id if o.id != c.id else None
            same = (criterion_fingerprint(old, o, old_vocab) == criterion_fingerprint(new, c, new_vocab))
            if same:
                out.append(CriterionDiff("unchanged", c.id, c.kind, c.refs, o, c, renamed))
                continue
            changes = compare_criteria(old, new, o, c, old_vocab, new_vocab)
            if not changes:  # a difference the walker did not name: never hidden
                changes = [Change("logic changed", "undecided", UNDECIDED)]
            out.append(CriterionDiff("changed", c.id, c.kind, c.refs, o, c, renamed, changes,
                                     combine(ch.direction for ch in changes)))
        else:
            d = "stricter"  # a new criterion can only make patients fail it
            words = f"new {c.kind}: {'eligible when ' if c.kind == 'inclusion' else 'excluded when '}{_words(c.body)}"
            out.append(CriterionDiff("added", c.id, c.kind, c.refs, None, c, None, [Change(words, d, NARROWER)], d))
    for o in old.criteria:
        if o.id not in matched.values():
            d = "looser"
            words = f"{o.kind} removed: {'was eligible when ' if o.kind == 'inclusion' else 'was excluded when '}{_words(o.body)}"
            out.append(CriterionDiff("removed", o.id, o.kind, o.refs, o, None, None, [Change(words, d, BROADER)], d))

    trial_changes = []
    if old.trial.name != new.trial.name:
        trial_changes.append(Change(f"trial {old.trial.name} → {new.trial.name}", "none"))
    if sorted(old.trial.anchors) != sorted(new.trial.anchors):
        trial_changes.append(Change(f"anchors {', '.join(old.trial.anchors)} → {', '.join(new.trial.anchors)}", "undecided"))
    if sorted(old.aliases) != sorted(new.aliases):
        trial_changes.append(Change("the unit aliases changed", "undecided"))
    ua, ub = {u.ref for u in old.uncomputable}, {u.ref for u in new.uncomputable}
    for r in sorted(ub - ua):
        trial_changes.append(Change(f"{r} is now declared uncomputable", "none"))
    for r in sorted(ua - ub):
        trial_changes.append(Change(f"{r} is no longer declared uncomputable", "none"))

    result = ProgramDiff(new.trial.name, fingerprint(old), fingerprint(new), out, trial_changes)
    if old_protocol is not None and new_protocol is not None:
        _protocol_changes(result, old, new, old_protocol, new_protocol)
    return result


# ---------------------------------------------------------------------- protocol text


def protocol_items(program: I.Program, text: str) -> dict[str, str]:
    """The text of each outline item: from its anchor to the next item's anchor (white space
    runs read as one space). Items whose anchor is missing or ambiguous are left out."""
    starts = []
    for item in program.outline:
        if text.count(item.anchor) == 1:
            starts.append((text.index(item.anchor), item.ref))
    starts.sort()
    out = {}
    for i, (pos, ref) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else len(text)
        # up to the next item's list marks
        out[ref] = " ".join(text[pos:end].split()).rstrip(" -•*·")
    return out


def _covers(item_ref: str, rule_ref: str) -> bool:
    """A rule's ref encodes an item: the same ref, or a sub-item of a heading (I7 -> I7a, E2 -> E2.1)."""
    if rule_ref == item_ref:
        return True
    return rule_ref.startswith(item_ref) and not rule_ref[len(item_ref)].isdigit()


def _protocol_changes(result: ProgramDiff, old, new, old_text: str, new_text: str) -> None:
    result.protocol_changed = _norm(old_text) != _norm(new_text)
    if not result.protocol_changed:
        return
    ia, ib = protocol_items(old, old_text), protocol_items(new, new_text)
    changed_rules = {c.id for c in result.criteria if c.status != "unchanged"}
    changed_rules |= {c.renamed_from for c in result.criteria if c.status != "unchanged" and c.renamed_from}
    for ref in [r for r in ib if r in ia] + [r for r in ib if r not in ia]:
        if ia.get(ref) == ib[ref]:
            continue
        rules = tuple(c.id for c in new.criteria if any(_covers(ref, r) for r in c.refs))
        item = ProtocolItemDiff(ref, ia.get(ref), ib[ref], rules)
        result.protocol_items_changed.append(item)
        if not any(r in changed_rules for r in rules):
            result.rules_not_updated.append(item)


# ---------------------------------------------------------------------- text output


def format_text(d: ProgramDiff) -> str:
    lines = []
    if d.same_meaning:
        lines.append(f"{d.trial}: same meaning ({d.new_fingerprint})")
    else:
        lines.append(f"{d.trial}: {d.old_fingerprint} → {d.new_fingerprint}")
    lines.append(", ".join(f"{d.count(s)} {s}" for s in ("added", "removed", "changed", "unchanged"))
                 + f"; overall {overall_direction(d)}")
    for c in d.trial_changes:
        lines.append(f"  trial: {c.text} ({c.direction})")
    for c in d.criteria:
        if c.status == "unchanged" and not c.renamed_from:
            continue
        head = f"{c.status:<9} {c.kind:<9} {', '.join(c.refs):<6} {c.id}"
        if c.renamed_from:
            head += f" (renamed from {c.renamed_from})"
        if c.status != "unchanged":
            head += f" [{c.direction}]"
        lines.append(head)
        for ch in c.changes:
            lines.append(f"    {ch.text} ({ch.direction})")
    if d.protocol_changed:
        lines.append(f"protocol text changed in {len(d.protocol_items_changed)} item(s): "
                     + (", ".join(p.ref for p in d.protocol_items_changed) or "outside the numbered items"))
        for p in d.rules_not_updated:
            who = ", ".join(p.rules) if p.rules else "no rule"
            lines.append(f"  warning: {p.ref} changed in the protocol text but its rules did not ({who})")
    return "\n".join(lines)


_TOKEN = re.compile(r"\s+|\w+|[^\w\s]")


def marked(old: str, new: str) -> tuple[list[tuple[str, bool]], list[tuple[str, bool]]]:
    """Two texts as segments (text, changed) for a side-by-side view, word by word."""
    import difflib

    ta, tb = _TOKEN.findall(old), _TOKEN.findall(new)
    sm = difflib.SequenceMatcher(a=ta, b=tb, autojunk=False)
    sa, sb = [], []
    for tag, i1, i2, j1, j2 in sm.get_opcodes():
        if i2 > i1:
            sa.append(("".join(ta[i1:i2]), tag != "equal"))
        if j2 > j1:
            sb.append(("".join(tb[j1:j2]), tag != "equal"))
    return sa, sb
