"""`course` in a query whose window is measured from a computed date (docs/language.md section
10, "Counting, dates of items, windows from dates"): an ongoing course counts to the date the
window is measured from, as it counts to the anchor of a window measured from an anchor. It was
refused ("`course` counts days up to the window's anchor; give the query a window") though the
query had a window. The module, the IR interpreter and both DuckDB forms agree on outcome and
`missing` (tests/test_review_values.everywhere)."""

from __future__ import annotations

import pytest

from compiler.pipeline import compile_sources
from test_gen_rec import HEAD, VOCAB, _rec
from test_review_values import Many

pytest.importorskip("duckdb")

STEROID = "treatment_class steroid\n"


def tr(start, end, code="pred"):
    return {"classes": ["steroid"], "code": code, "start": start, "end": end}


# screening 2026-01-05, first_dose 2026-01-15 (_rec)
RECS = [_rec(treatments=[tr("2025-12-20", None)]), _rec(treatments=[tr("2026-01-01", None)]),
        _rec(treatments=[tr("2025-12-20", "2025-12-22")]), _rec(treatments=[tr("bad", None)]),
        _rec(treatments=[tr("2025-12-20", None)], anchors={"first_dose": "2026-01-15"})]
PASS, FAIL = ("pass", []), ("fail", [])


def test_course_to_a_shifted_anchor_a_named_date_and_an_items_date(tmp_path):
    m = Many(tmp_path, vocab=STEROID)
    # ongoing from 2025-12-20 counted to 2026-01-04: 16 days; from 2026-01-01: 4 days
    m.expect("any steroid within 30 d before (screening - 1 d) where course > 7 d", RECS,
             [PASS, FAIL, FAIL, ("unknown", ["pred"]), ("unknown", ["screening", "pred"])])
    # on or before a later date: counted to 2026-01-07 (19 and 7 days)
    m.expect("any steroid on or before (screening + 2 d) where course > 7 d", RECS[:3], [PASS, FAIL, FAIL])
    m.expect("any steroid on or before (screening + 3 d) where course <= 7 d", RECS[1:2], [FAIL])
    # early = first_dose - 2 wk = 2026-01-01
    m.expect("any steroid within 30 d before early where course > 7 d", RECS[:3], [PASS, FAIL, FAIL])
    anemia = [{"code": "anemia", "onset": "2025-12-30", "status": "active"}]
    # counted to the anemia's onset: 11 and 6 days
    m.expect("any anemia where (any steroid within 30 d before onset where course > 7 d)",
             [_rec(conditions=anemia, treatments=[tr("2025-12-20", None)]),
              _rec(conditions=anemia, treatments=[tr("2025-12-25", None)])], [PASS, FAIL])
    m.check()


def test_course_needs_a_window_from_one_date():
    """`ever` and `between X and Y` (two dates) still have no date to count an ongoing course to."""
    for body in ("any steroid ever where course > 7 d", "any steroid between screening and first_dose where course > 7 d",
                 "any steroid where course > 7 d"):
        c = f'inclusion c0 {{\n    ref R0\n    quote "q"\n    require {body}\n}}\n'
        res = compile_sources({"t.elig": HEAD + VOCAB + STEROID + c})
        [d] = res.diagnostics
        assert d.message.startswith("`course` counts an ongoing course up to the date its query's window is measured from")
        assert (d.span.line, d.span.column) == (len((HEAD + VOCAB + STEROID).splitlines()) + 4, 4 + len("require ") + body.index("course") + 1)
