"""The amendment page for an ethics committee: old and new side by side, changed parts marked."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Optional

from .diff import ProgramDiff, marked, overall_direction
from .lower import criterion_words
from .templates import render_template


@dataclass(frozen=True)
class Side:
    """One version of a criterion: its quotes and its rule as written, as marked segments."""

    file: str
    line: int
    quotes: tuple  # each: list of (text, changed)
    body: list  # (text, changed)
    words: str


def _rel(path: str, root: str) -> str:
    return path[len(root):].lstrip("/") if path.startswith(root) else path


def _sides(old, new, old_root: str, new_root: str):
    def quotes(c):
        return [" ".join(q.split()) for q in c.quotes]

    qa, qb = (quotes(old) if old else []), (quotes(new) if new else [])
    ba = old.body_source if old else ""
    bb = new.body_source if new else ""
    mq_a, mq_b = [], []
    # quotes aligned as lists first (a quote added in the middle shifts nothing), then word by word
    sm = difflib.SequenceMatcher(a=qa, b=qb, autojunk=False)
    for tag, i1, i2, j1, j2 in sm.get_opcodes():
        xs, ys = qa[i1:i2], qb[j1:j2]
        for k in range(max(len(xs), len(ys))):
            x = xs[k] if k < len(xs) else ""
            y = ys[k] if k < len(ys) else ""
            sx, sy = marked(x, y)
            if x:
                mq_a.append(sx)
            if y:
                mq_b.append(sy)
    mb_a, mb_b = marked(ba, bb)
    a = Side(_rel(old.file, old_root), old.line, tuple(mq_a), mb_a, criterion_words(old).text) if old else None
    b = Side(_rel(new.file, new_root), new.line, tuple(mq_b), mb_b, criterion_words(new).text) if new else None
    return a, b


def render_diff_html(d: ProgramDiff, old_name: str, new_name: str,
                     impact: Optional[object] = None) -> str:
    rows = []
    for c in d.criteria:
        a, b = _sides(c.old, c.new, old_name, new_name)
        rows.append({"c": c, "old": a, "new": b})
    return render_template(
        "diff.html.j2", d=d, rows=rows, old_name=old_name, new_name=new_name,
        direction=overall_direction(d), impact=impact.as_json() if impact is not None else None,
        counts={s: d.count(s) for s in ("added", "removed", "changed", "unchanged")},
    )
