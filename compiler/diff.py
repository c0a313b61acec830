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
from typing import Optional

from . import ir as I
from .diff_logic import BOTH, BROADER, NARROWER, NONE, UNDECIDED, _name, _Walker, _words
from .fingerprint import criterion_fingerprint, fingerprint, vocabulary

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
