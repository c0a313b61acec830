"""Hints an author gets for the constructs of ranges, sets and conditional limits (the
diagnostics suite checks messages and positions; these check the hints that say what to write)."""

import pytest

from compiler.pipeline import compile_sources

HEAD = """trial T { title "t" protocol "p.txt" anchors screening }
observation ecog { unit 1 }
observation bilirubin { unit mg/dL }
condition gilbert_syndrome
"""

CASES = [
    ("require latest ecog within 7 d before screening in [0, 1]", "in braces: in {0, 1}"),
    ("require latest ecog within 7 d before screening in (0, 1)", "in braces: in {0, 1}"),
    ("require latest bilirubin within 7 d before screening <= (2.0 mg/dL if any gilbert_syndrome else < 3.0 mg/dL)",
     "write the whole comparison in each branch"),
    ("require latest bilirubin within 7 d before screening (<= 2.0 mg/dL if any gilbert_syndrome else < 3.0 mg/dL)",
     "write the whole comparison in each branch"),
    ("require latest ecog within 7 d before screening in {0, low}", "numbers test a value (ecog in {0, 1})"),
    ("require 10 <= latest ecog within 7 d before screening > 0", "write them with `and`"),
    ("require sex in {1, 2}", "its values are: male, female"),
    # a named expression that reads an item's fields: used nowhere, or used outside a query
    ("let low = value < 1 mg/dL require any bilirubin ever where value < 2 mg/dL",
     "use 'low' inside a query over the item (any X where (low)), or remove it"),
    ("let low = value < 1 mg/dL require low", "'low' is used outside a query"),
    ("let early = onset < screening require no gilbert_syndrome ever", "use 'early' inside a query over the item"),
]


@pytest.mark.parametrize("body,hint", CASES)
def test_hint(body, hint):
    res = compile_sources({"t.elig": HEAD + 'inclusion c { ref X1 quote "q" ' + body + " }\n"}, emit=False)
    assert not res.ok
    hints = [d.hint or "" for d in res.diagnostics]
    assert any(hint in h for h in hints), [d.format(res.sources) for d in res.diagnostics]
