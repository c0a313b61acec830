"""The fingerprint of a rule set's meaning: a hash of the checked program, not of its text.

What the fingerprint covers (see docs/amendments.md):

* every criterion, identified by its ``id``: its kind, its refs (the first is the result's
  ``ref``), its quotes (white space runs count as one space, as ``elig verify`` reads them; their
  order is not meaning) and its compiled logic: every limit folded to every accepted unit,
  every operator, window, anchor, duration, quantifier, code and value;
* the vocabulary the logic reads: observations (codes, units accepted and their exact
  conversions, molar mass, values, reference limits), conditions, procedures and their
  attributes, treatment classes, facts and judgments, equivalence tables, derived values, the
  unit aliases; the trial's id and anchors.

What it does not cover, because it does not change any outcome: comments, layout, the names
and order of files, the order of declarations and of criteria (results list criteria
inclusion-first in source order, but a criterion is identified by its id), ``let`` names (a
``let`` is inlined by the checker), the names the checker gives to query variables, labels,
notes, the trial title, the outline and the reason sentences' wording (texts such as
``"90 g/L"`` vs ``"9 g/dL"`` for the same limit). Operands of ``and``/``or`` are an unordered
set (Kleene logic is commutative); the branches of an ``if ... else`` chain keep their order.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from fractions import Fraction

from . import ir as I
from .units import Conversion

PREFIX = "e1:"  # the canonical form's version: a change to canonicalisation changes the prefix

# display texts and positions: never meaning
_SKIP = frozenset({"text", "span", "file", "line", "body_source", "notes", "reads", "quote_spans",
                   "ref_span", "body_span", "label", "item_dependent"})
# queries bind a variable; its name is the checker's counter, so it is replaced by its depth
_BINDERS = (I.BQuery, I.BObsQuery)


@functools.lru_cache(maxsize=None)
def _fields(cls) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls) if f.name not in _SKIP)


def _key(x) -> str:
    return json.dumps(x, sort_keys=True, ensure_ascii=True, separators=(",", ":"))


def canon(x, env=None):
    """A JSON-able canonical form of an IR node (or vocabulary element)."""
    if env is None:
        env = {}
    if x is None or isinstance(x, (bool, str)):
        return x
    if isinstance(x, int):
        return x
    if isinstance(x, Fraction):
        return f"{x.numerator}/{x.denominator}"
    if isinstance(x, Conversion):
        return [canon(x.scale), canon(x.offset)]
    if isinstance(x, tuple):
        if x and all(isinstance(y, str) for y in x):
            return sorted(x)  # names: a set
        if x and all(isinstance(y, tuple) for y in x):
            # (name, value) pairs: a table, each pair in its own order
            return sorted(([canon(z, env) for z in y] for y in x), key=_key)
        return [canon(y, env) for y in x]
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        if isinstance(x, _BINDERS):
            env = {**env, x.var: f"v{len(env)}"}
        out = {"@": type(x).__name__}
        for name in _fields(type(x)):
            v = getattr(x, name)
            if name == "var" and isinstance(v, str):
                out[name] = env.get(v, v)
            else:
                out[name] = canon(v, env)
        if isinstance(x, (I.BAnd, I.BOr)):
            out["items"] = sorted(out["items"], key=_key)
        return out
    raise TypeError(f"no canonical form for {type(x).__name__}")


def _digest(obj) -> str:
    return PREFIX + hashlib.sha256(_key(obj).encode("utf-8")).hexdigest()[:32]


def _norm_quote(q: str) -> str:
    return " ".join(q.split())


def criterion_canon(c: I.CriterionIR) -> dict:
    """A criterion's own meaning (without its id and without the vocabulary it reads)."""
    return {"kind": c.kind, "refs": list(c.refs), "quotes": sorted(_norm_quote(q) for q in c.quotes),
            "body": canon(c.body)}


def vocabulary(program: I.Program) -> dict:
    """Every vocabulary element by name: its canonical form."""
    out = {}
    for group in (program.observations, program.items, program.classes, program.facts,
                  program.equivalences, program.derived):
        for el in group:
            out[el.name] = canon(el)
    return out


def names_in(obj) -> set:
    """Every string in a canonical form (the vocabulary names a criterion may read among them)."""
    found = set()
    stack = [obj]
    while stack:
        x = stack.pop()
        if isinstance(x, str):
            found.add(x)
        elif isinstance(x, dict):
            stack.extend(x.values())
        elif isinstance(x, list):
            stack.extend(x)
    return found


def dependencies(program: I.Program, c: I.CriterionIR, vocab: dict | None = None) -> dict:
    """The vocabulary elements a criterion's logic reads, through derived values, by name."""
    vocab = vocabulary(program) if vocab is None else vocab
    deps = {}
    todo = [criterion_canon(c)["body"]]
    while todo:
        for name in sorted(names_in(todo.pop())):
            if name in vocab and name not in deps:
                deps[name] = vocab[name]
                todo.append(vocab[name])
    return deps


def criterion_fingerprint(program: I.Program, c: I.CriterionIR, vocab: dict | None = None,
                          with_id: bool = False) -> str:
    """The meaning of one criterion with the vocabulary it reads (without its id unless asked)."""
    obj = {"criterion": criterion_canon(c), "reads": dependencies(program, c, vocab)}
    if with_id:
        obj["id"] = c.id
    return _digest(obj)


def program_canon(program: I.Program) -> dict:
    return {
        "trial": {"id": program.trial.name, "anchors": sorted(program.trial.anchors)},
        "vocabulary": vocabulary(program),
        "aliases": sorted([list(a) for a in program.aliases], key=_key),
        "criteria": {c.id: criterion_canon(c) for c in program.criteria},
        "uncomputable": sorted({u.ref for u in program.uncomputable}),
    }


def fingerprint(program: I.Program) -> str:
    """The fingerprint of a checked program: ``e1:`` and 32 hexadecimal digits of SHA-256."""
    return _digest(program_canon(program))
