"""Every mechanical mutation of a trial's rule files, found from the parse tree (never by text search).

    from tools.mutate import mutants
    for m in mutants(Path("sm3321_rules")):
        print(m.description)          # inclusion.elig:58:56: >= → >
        m.write_to(Path("sm3321_rules"), Path("/tmp/mutant"))

The rule files are parsed with the language's own grammar (``grammar/elig.lark``) keeping every
token, so a mutation is placed on a token or a node of the tree: quotes, notes and comments are
strings and comments to the parser and are never touched. Only the logic is mutated (criteria,
`let`s, derived formulas, equivalence tables); the vocabulary's units, codes and the outline are
not, except where a rule is deleted together with its outline entry. Every mutant yielded still
parses; whether it still passes the checker is for the caller to find out (a mutant that does
not compile is not a caught mutant).

Operators (``Mutant.operator``):

| operator | what it does |
| --- | --- |
| `comparator` | reverses a comparison (`>=`↔`<=`, `>`↔`<`, `=`↔`!=`) and negates it (`>=`→`<`, `<=`→`>`, ...) |
| `inclusive` | swaps inclusive and exclusive: `>=`↔`>`, `<=`↔`<` |
| `number+10%`, `number-10%` | a number times 1.1 or 0.9 (exact decimals) |
| `last-digit+1`, `last-digit-1` | a number changed by one unit of its last digit (`1.5` → `1.6`) |
| `unit` | a unit of a quantity swapped for another of its dimension (`g/L` → `g/dL`, `d` → `wk`) |
| `shorter-longer` | `shorter of` ↔ `longer of` |
| `before-after` | `before` ↔ `after` (windows and any other place the grammar allows it) |
| `plus-minus` | `+` ↔ `-` (date shifts such as `first_dose - 2 wk`, and arithmetic) |
| `and-or` | one `and` ↔ `or` |
| `drop-conjunct` | one operand of an `and` (and its `and`) removed |
| `window-length` | `within D before A` → `on or before A` (the window's length forgotten) |
| `delete-rule` | a criterion removed |
| `delete-rule+outline` | a criterion removed together with the outline entry of its ref (when no other rule cites that ref) |
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Iterator, Optional

from lark import Lark, Token, Tree

from compiler.parser import NAME_KEYWORDS, _PARSE_LOCK, _Words, grammar_text, parse_source
from compiler.pipeline import RULE_SUFFIX, read_rules

# the top-level declarations whose tokens are logic
_LOGIC_DECLS = {"criterion", "let_stmt", "derived_decl", "equivalence_decl"}

_FLIP = {">=": "<=", "<=": ">=", ">": "<", "<": ">", "=": "!=", "!=": "=", "≥": "≤", "≤": "≥", "≠": "="}
_NEGATE = {">=": "<", "<": ">=", "<=": ">", ">": "<=", "≥": "<", "≤": ">"}
_INCLUSIVE = {">=": ">", ">": ">=", "<=": "<", "<": "<=", "≥": ">", "≤": "<"}
_KEYWORD_SWAPS = {
    "shorter": ("longer", "shorter-longer"), "longer": ("shorter", "shorter-longer"),
    "before": ("after", "before-after"), "after": ("before", "before-after"),
}

# a unit's preferred partner of the same dimension, then candidates tried in order
_UNIT_PARTNERS = {
    "d": "wk", "wk": "d", "mo": "a", "a": "mo", "h": "d", "min": "h", "s": "min", "ms": "s",
    "g/L": "g/dL", "g/dL": "g/L", "mg/dL": "mg/L", "mg/L": "mg/dL", "mmol/L": "umol/L", "umol/L": "mmol/L",
    "10*9/L": "10*6/L", "10*6/L": "10*9/L", "/uL": "/mL", "mL/min": "L/min", "mm[Hg]": "kPa", "Cel": "[degF]",
    "kg": "g", "mg": "g", "g": "mg", "cm": "mm", "mm": "cm", "pg/mL": "ng/mL", "ng/mL": "pg/mL", "ng/L": "pg/L",
    "kg/m2": "g/m2", "U/L": "mU/L", "%": "[ppth]",
}
_UNIT_CANDIDATES = (
    "d", "wk", "mo", "a", "h", "min", "s", "ms", "g/L", "g/dL", "mg/dL", "mg/L", "ug/mL", "mmol/L", "umol/L",
    "10*9/L", "10*6/L", "/uL", "/mL", "mL/min", "L/min", "mm[Hg]", "kPa", "Cel", "[degF]", "kg", "g", "mg",
    "cm", "mm", "m", "kg/m2", "g/m2", "U/L", "mU/L", "pg/mL", "ng/mL", "[ppth]",
)
_PREFIX_SWAPS = (("m", ""), ("u", "m"), ("n", "u"), ("p", "n"), ("k", ""), ("", "m"))


@dataclass(frozen=True)
class Mutant:
    operator: str  # see the table in the module docstring
    file: str  # the mutated rule file, relative to the rules directory
    line: int  # 1-based position of the mutated token
    col: int
    description: str  # e.g. "inclusion.elig:12:31: >= → >"
    # (file, start offset, end offset, replacement) applied to the rule texts, last first
    edits: tuple[tuple[str, int, int, str], ...] = field(default=(), repr=False)

    def apply(self, sources: dict[str, str]) -> dict[str, str]:
        """The rule texts (keyed by path relative to the rules directory) with the mutation applied."""
        out = dict(sources)
        for f, start, end, new in sorted(self.edits, key=lambda e: (e[0], -e[1])):
            out[f] = out[f][:start] + new + out[f][end:]
        return out

    def write_to(self, rules_dir: Path, out_dir: Path) -> None:
        """A copy of rules_dir (every file, the protocol text included) in out_dir, mutated."""
        rules_dir, out_dir = Path(rules_dir), Path(out_dir)
        shutil.copytree(rules_dir, out_dir, dirs_exist_ok=True)
        texts = {f: (out_dir / f).read_text(encoding="utf-8") for f in {e[0] for e in self.edits}}
        for f, text in self.apply(texts).items():
            (out_dir / f).write_text(text, encoding="utf-8")


def rule_sources(rules_dir: Path) -> dict[str, str]:
    """The rule files of rules_dir as the compiler reads them, keyed by path relative to rules_dir."""
    rules_dir = Path(rules_dir)
    sources, diags = read_rules(rules_dir)
    if diags:
        raise ValueError("; ".join(str(d.span) + ": " + d.message for d in diags))
    return {Path(p).relative_to(rules_dir).as_posix(): t for p, t in sources.items()}


def mutants(rules_dir: Path) -> Iterator[Mutant]:
    """Every mechanical mutation of the rule files in rules_dir, in a deterministic order
    (file by file in sorted order, by position in the file, then by operator)."""
    yield from mutants_of_sources(rule_sources(rules_dir))


def mutants_of_sources(sources: dict[str, str]) -> Iterator[Mutant]:
    trees = {f: _parse(sources[f]) for f in sorted(sources)}
    trees = {f: t for f, t in trees.items() if t is not None}
    # which criteria cite which ref, and where each outline entry is
    citers: dict[str, list[str]] = {}
    outline: dict[str, tuple[str, int, int]] = {}
    for f, tree in trees.items():
        for decl in tree.children:
            if not isinstance(decl, Tree):
                continue
            if decl.data == "criterion":
                name = _criterion_name(decl)
                for ref in _criterion_refs(decl):
                    citers.setdefault(ref, []).append(name)
            elif decl.data == "outline_decl":
                for entry in decl.children:
                    if isinstance(entry, Tree) and entry.data in ("outline_item", "outline_heading"):
                        ref = next(str(t) for t in entry.children if isinstance(t, Token) and t.type == "REF")
                        start, end = _whole_lines(sources[f], entry.meta.start_pos, entry.meta.end_pos)
                        outline[ref] = (f, start, end)
    seen: set = set()
    for f, tree in trees.items():
        text = sources[f]
        found: list[tuple[int, int, Mutant]] = []
        for decl in tree.children:
            if isinstance(decl, Tree) and decl.data in _LOGIC_DECLS:
                for order, m in _mutants_in(f, text, decl, citers, outline):
                    found.append((m.edits[0][1], order, m, decl.meta.start_pos, decl.meta.end_pos))
        found.sort(key=lambda x: (x[0], x[1]))
        for _, _, m, ds, de in found:
            key = m.edits
            if key in seen:
                continue
            seen.add(key)
            if _still_parses(m, text, ds, de):
                yield m


LIMIT_OPERATORS = frozenset({"comparator", "inclusive", "number+10%", "number-10%", "last-digit+1", "last-digit-1",
                             "unit", "shorter-longer", "before-after", "plus-minus", "window-length"})


def _declaration(m: Mutant, sources: dict[str, str]) -> Optional[Tree]:
    f, start = m.edits[0][0], m.edits[0][1]
    tree = _parse(sources[f])
    for decl in (tree.children if tree is not None else ()):
        if isinstance(decl, Tree) and decl.meta.start_pos <= start < decl.meta.end_pos:
            return decl
    return None


def declaration_of(m: Mutant, sources: dict[str, str]) -> str:
    """The kind of top-level declaration a mutant changes ("criterion", "let_stmt",
    "derived_decl", "equivalence_decl", ...), from the parse tree of its file."""
    decl = _declaration(m, sources)
    return decl.data if decl is not None else ""


def criterion_of(m: Mutant, sources: dict[str, str]) -> tuple[str, tuple[str, ...]]:
    """The name and the refs of the criterion a mutant changes (("", ()) outside a criterion)."""
    decl = _declaration(m, sources)
    if decl is None or decl.data != "criterion":
        return "", ()
    return _criterion_name(decl), tuple(_criterion_refs(decl))


def is_rule_limit(m: Mutant, sources: dict[str, str]) -> bool:
    """A mutant of a limit a rule states (comparator, number, unit, window, shorter/longer) in a
    criterion or a `let` — not in a derived formula or an equivalence table of the vocabulary."""
    return m.operator in LIMIT_OPERATORS and declaration_of(m, sources) in ("criterion", "let_stmt")


# ------------------------------------------------------------------------- the mutations


def _mutants_in(f, text, decl: Tree, citers, outline):
    """(operator order, Mutant) for every mutation inside one top-level declaration."""
    out = []

    def mk(op, order, tok_pos, edits, what):
        line, col = _line_col(text, tok_pos)
        out.append((order, Mutant(op, f, line, col, f"{f}:{line}:{col}: {what}", tuple(edits))))

    def tok_sub(op, order, tok: Token, new: str):
        mk(op, order, tok.start_pos, [(f, tok.start_pos, tok.end_pos, new)], f"{tok} → {new}")

    for node in decl.iter_subtrees_topdown():
        kids = node.children
        if node.data in ("and_",):
            items, seps = _flatten(node, "and_")
            if node is not None and _is_top_of_chain(node, decl, "and_"):
                for i in range(len(items)):
                    if i == 0:
                        start, end = _start(items[0]), _start(items[1])
                    else:
                        start, end = seps[i - 1].start_pos, _end(items[i])
                    snippet = " ".join(text[_start(items[i]):_end(items[i])].split())
                    mk("drop-conjunct", 8, _start(items[i]), [(f, start, end, "")],
                       f"dropped conjunct {_short(snippet)!r}")
        if node.data in ("within_before",):
            anchor = kids[-1]
            mk("window-length", 9, node.meta.start_pos, [(f, node.meta.start_pos, node.meta.end_pos, f"on or before {anchor}")],
               f"{_short(' '.join(text[node.meta.start_pos:node.meta.end_pos].split()))!r} → 'on or before {anchor}'")
        for i, tok in enumerate(kids):
            if not isinstance(tok, Token):
                continue
            s = str(tok)
            if tok.type == "CMP":
                if s in _FLIP:
                    tok_sub("comparator", 0, tok, _FLIP[s])
                if s in _NEGATE:
                    tok_sub("comparator", 0, tok, _NEGATE[s])
                if s in _INCLUSIVE:
                    tok_sub("inclusive", 1, tok, _INCLUSIVE[s])
            elif tok.type == "NUMBER" and node.data != "unit_one":
                for op, order, new in _number_variants(s):
                    tok_sub(op, order, tok, new)
            elif tok.type == "UNIT" and node.data == "unit":
                new = _unit_partner(s)
                if new is not None:
                    tok_sub("unit", 6, tok, new)
            elif tok.type == "ADD_OP" and node.data == "arith":
                tok_sub("plus-minus", 7, tok, "-" if s == "+" else "+")
            elif s in _KEYWORD_SWAPS and tok.type != "NAME" and tok.type != "STRING":
                new, op = _KEYWORD_SWAPS[s]
                tok_sub(op, 7, tok, new)
            elif s == "and" and node.data == "and_":
                tok_sub("and-or", 7, tok, "or")
            elif s == "or" and node.data == "or_":
                tok_sub("and-or", 7, tok, "and")
    if decl.data == "criterion":
        name = _criterion_name(decl)
        start, end = _whole_lines(text, decl.meta.start_pos, decl.meta.end_pos)
        mk("delete-rule", 10, decl.meta.start_pos, [(f, start, end, "")], f"deleted rule '{name}'")
        refs = _criterion_refs(decl)
        if refs and all(citers.get(r) == [name] and r in outline for r in refs):
            edits = [(f, start, end, "")] + [(*outline[r], "") for r in refs]
            mk("delete-rule+outline", 11, decl.meta.start_pos, edits,
               f"deleted rule '{name}' and the outline entry of {', '.join(refs)}")
    return out


def _number_variants(s: str):
    d = Decimal(s)
    exp = d.as_tuple().exponent
    step = Decimal(1).scaleb(exp)
    got = []
    for op, order, new in (("number+10%", 2, d * Decimal("1.1")), ("number-10%", 3, d * Decimal("0.9")),
                           ("last-digit+1", 4, d + step), ("last-digit-1", 5, d - step)):
        if new < 0 or new == d:
            continue
        text = _fmt(new, exp if op.startswith("last") else None)
        if text not in [g[2] for g in got]:
            got.append((op, order, text))
    return got


def _fmt(d: Decimal, exp: Optional[int]) -> str:
    if exp is not None:
        return str(d.quantize(Decimal(1).scaleb(exp)))
    t = format(d.normalize(), "f")
    return t


@lru_cache(maxsize=None)
def _unit_partner(code: str) -> Optional[str]:
    from compiler import units as U

    if U.check_unit(code) is not None:
        return None
    try:
        dim = U.dimension(code)
    except Exception:  # a unit the registry cannot place: no swap
        return None
    tries = [_UNIT_PARTNERS.get(code)] + list(_UNIT_CANDIDATES)
    for a, b in _PREFIX_SWAPS:
        if code.startswith(a):
            tries.append(b + code[len(a):])
    for cand in tries:
        if not cand or cand == code or U.check_unit(cand) is not None:
            continue
        try:
            if U.dimension(cand) != dim:
                continue
            conv = U.conversion(code, cand)
        except Exception:
            continue
        if conv is not None and conv.apply(1) != 1:
            return cand
    return None


# ------------------------------------------------------------------------- parse tree helpers


@lru_cache(maxsize=1)
def _full_lark() -> tuple[Lark, _Words]:
    words = _Words()
    parser = Lark(grammar_text(), parser="lalr", strict=True, propagate_positions=True, maybe_placeholders=False,
                  keep_all_tokens=True, postlex=words)
    kw = {}
    for t in parser.terminals:
        pat = t.pattern
        if type(pat).__name__ == "PatternStr" and pat.value.isidentifier():
            kw[t.name] = pat.value
    # as the compiler's parser: `date` is a keyword only where a type is expected (an item's date)
    words.keywords = frozenset(kw.values()) - NAME_KEYWORDS
    words.keyword_types = frozenset(kw)
    return parser, words


@lru_cache(maxsize=64)
def _parse(text: str) -> Optional[Tree]:
    """The full parse tree of a rule file (kept for the last files: the callers only read it)."""
    parser, words = _full_lark()
    with _PARSE_LOCK:
        words.text = text
        try:
            return parser.parse(text)
        except Exception:  # a file that does not parse has no mutants; the compiler reports it
            return None
        finally:
            words.text = ""


def _still_parses(m: Mutant, text: str, ds: int, de: int) -> bool:
    """Whether the declaration the mutation changes still parses (deleting whole declarations
    or outline entries always leaves a file that parses)."""
    if m.operator.startswith("delete-rule"):
        return True
    (f, start, end, new), = m.edits
    snippet = text[ds:start] + new + text[end:de]
    return parse_source(snippet, f)[0] is not None


def _criterion_name(decl: Tree) -> str:
    return next(str(t) for t in decl.children if isinstance(t, Token) and t.type == "NAME")


def _criterion_refs(decl: Tree) -> list[str]:
    out = []
    for c in decl.children:
        if isinstance(c, Tree) and c.data == "ref":
            out += [str(t) for t in c.children if isinstance(t, Token) and t.type == "REF"]
    return out


def _flatten(node: Tree, kind: str):
    """The operands and separator tokens of a left-nested chain `a and b and c`."""
    items, seps = [], []

    def go(n):
        if isinstance(n, Tree) and n.data == kind:
            left, sep, right = n.children
            go(left)
            seps.append(sep)
            items.append(right)
        else:
            items.append(n)

    go(node)
    return items, seps


def _is_top_of_chain(node: Tree, decl: Tree, kind: str) -> bool:
    for n in decl.iter_subtrees():
        if n.data == kind and n.children and n.children[0] is node:
            return False
    return True


def _start(x) -> int:
    return x.start_pos if isinstance(x, Token) else x.meta.start_pos


def _end(x) -> int:
    return x.end_pos if isinstance(x, Token) else x.meta.end_pos


def _whole_lines(text: str, start: int, end: int) -> tuple[int, int]:
    s = text.rfind("\n", 0, start) + 1
    if text[s:start].strip():
        s = start
    e = text.find("\n", end)
    e = len(text) if e < 0 else e + 1
    if text[end:e].strip():
        e = end
    return s, e


def _line_col(text: str, pos: int) -> tuple[int, int]:
    return text.count("\n", 0, pos) + 1, pos - (text.rfind("\n", 0, pos) + 1) + 1


def _short(s: str, n: int = 60) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


__all__ = ["Mutant", "mutants", "mutants_of_sources", "rule_sources", "declaration_of", "criterion_of", "is_rule_limit",
           "LIMIT_OPERATORS", "RULE_SUFFIX"]
