"""The two compiled logics of one criterion walked side by side (for `elig diff`): each
difference in plain words with its effect on the condition it is in (true more often, less
often, both, never differently, or undecided). ``diff.py`` turns effects into directions."""

from __future__ import annotations

import json
from fractions import Fraction
from typing import Optional

from . import ir as I
from .fingerprint import canon
from .lower import bool_words, dur_words, lim_words

# effects of a change on the node it is in: the node is true (or selects items) more often,
# less often, both, never differently, or Elig cannot tell
BROADER, NARROWER, BOTH, NONE, UNDECIDED = "broader", "narrower", "both", "none", "undecided"
_FLIP = {BROADER: NARROWER, NARROWER: BROADER}


def _flip(e: str) -> str:
    return _FLIP.get(e, e)


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
    return json.dumps(canon(n), sort_keys=True)
