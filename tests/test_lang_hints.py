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


WINDOW_HEAD = """trial T { title "t" protocol "p.txt" anchors first_dose, screening }
treatment_class chemo
condition anemia { attribute grade: number }
"""


@pytest.mark.parametrize("let,query", [
    ("let wash = shorter of 28 d and 5 x half_life", "any chemo"),
    ("let wash = 5 x half_life", "any chemo"),
    ("let wash = (7 d if grade >= 3 else 14 d)", "any anemia"),
    ("let wash = longer of 2 wk and (7 d if grade >= 3 else 14 d)", "any anemia"),
])
def test_an_unused_duration_is_shown_as_a_window(let, query):
    """A named duration nothing uses, reading an item's field: the hint shows it as a query's
    window (with the trial's first anchor), not as a filter; and that use compiles."""
    res = compile_sources({"t.elig": WINDOW_HEAD + f'inclusion c {{ ref X1 quote "q" {let} require {query} ever }}\n'},
                          emit=False)
    assert not res.ok
    msgs = [(d.message, d.hint) for d in res.diagnostics]
    assert any("the named expression 'wash' is used nowhere" in m and h == (
        "use 'wash' as the window of a query over the item (any X within wash before first_dose), or remove it")
               for m, h in msgs), msgs
    used = compile_sources({"t.elig": WINDOW_HEAD + f'inclusion c {{ ref X1 quote "q" {let} '
                                                    f'require {query} within wash before first_dose }}\n'}, emit=False)
    assert used.ok, [d.message for d in used.diagnostics]


def test_an_unused_condition_keeps_the_filter_example():
    res = compile_sources({"t.elig": WINDOW_HEAD + 'inclusion c { ref X1 quote "q" let severe = grade >= 3 '
                                                   'require any anemia ever }\n'}, emit=False)
    assert [d.hint for d in res.diagnostics] == [
        "use 'severe' inside a query over the item (any X where (severe)), or remove it"]
