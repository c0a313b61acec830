"""The language's second round (issue 9): counting (`at least N` / `at most N`), windows after
or between dates (an item's onset, end, start or date; `on or after`; `between A and B`),
`recorded X`, and attributes of observations (`latest X W where (method in {...})`).

The data cases are in tests/cases/language/ (rules in its `_rules/`) and in each example's
`cases/`; tests/test_cases.py runs them through the generated module. Here the independent IR
interpreter must give the same outcomes the cases demand, and agree with the generated module
on hypothesis-built records near every limit and window edge of those rules.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.pipeline import compile_rules, compile_sources
from conftest import CASES, ROOT, build_record
from ir_interpreter import Interpreter
from test_cases import FILES, RULES, compiled_suite, suite_of
from tools.datacases import ORDER
from test_differential import DIFF, Hints, _n, assert_agree, records_for

LANG_RULES = CASES / "language" / "_rules"
SUITE_FILES = [p for p in FILES if suite_of(p)[0] != RULES]


def _suite_name(rules: Path) -> str:
    return rules.parent.name if rules.name == "_rules" else rules.name


@pytest.mark.parametrize("path", SUITE_FILES, ids=[f"{_suite_name(suite_of(p)[0])}/{p.stem}" for p in SUITE_FILES])
def test_strict_interpreter_gives_the_outcomes_the_cases_demand(path):
    rules, base = suite_of(path)
    res, _ = compiled_suite(rules)
    case = json.loads(path.read_text(encoding="utf-8"))
    result = Interpreter(res.program).evaluate(build_record(case, base))
    ref_of = {c.id: c.refs[0] for c in res.program.criteria}
    by_ref = {}
    for c in result["criteria"]:
        by_ref.setdefault(ref_of[c["id"]], []).append(c["outcome"])
    for ref, want in case["expect"].get("outcomes", {}).items():
        assert max(by_ref[ref], key=ORDER.__getitem__) == want, f"{case['name']}: {ref}"
    if "status" in case["expect"]:
        assert result["status"] == case["expect"]["status"], case["name"]


@pytest.fixture(scope="module", params=["language", "nct05438667", "nct00711542"])
def lang_pair(request):
    rules = LANG_RULES if request.param == "language" else ROOT / "examples" / request.param
    res, mod = compiled_suite(rules)
    return mod, Interpreter(res.program), Hints(res.program)


@pytest.mark.slow
@settings(DIFF, max_examples=_n(120))
@given(st.data())
def test_language_module_and_interpreter_agree(lang_pair, data):
    """The language suite's rules and the two new examples: the generated module and the
    independent interpreter agree on hypothesis-built records near every limit and window."""
    module, interp, hints = lang_pair
    assert_agree(module, interp, data.draw(records_for(hints.p, hints)))


def _check(src: str) -> list[str]:
    head = 'trial T { title "t" protocol "p.txt" anchors screening, first_dose }\n'
    voc = ("condition acs\nprocedure pci\ntreatment_class chemo\nobservation lvef { unit %  attribute method: echo | muga }\n"
           "observation hb { unit g/L }\nfact consent\n")
    res = compile_sources({"t.elig": head + voc + src})
    return [d.message for d in res.diagnostics]


def test_counting_needs_a_whole_number_and_items():
    assert any("whole number" in m for m in _check('inclusion a { ref I1 quote "q" require at least 2.5 chemo }'))
    assert any("not to observation readings" in m
               for m in _check('inclusion a { ref I1 quote "q" require at least 2 hb ever where value > 1 g/L }'))


def test_item_dates_are_known_only_inside_a_query_over_the_item():
    msgs = _check('inclusion a { ref I1 quote "q" require onset <= screening }')
    assert any("'onset' is a field of a condition (its onset date)" in m for m in msgs), msgs
    msgs = _check('inclusion a { ref I1 quote "q" require any pci where onset <= screening }')
    assert any("a procedure has no 'onset'; its dates are: date" in m for m in msgs), msgs
    msgs = _check('inclusion a { ref I1 quote "q" require any pci within 2 d after onset }')
    assert any("'onset' is a date of an item" in m for m in msgs), msgs


def test_recorded_takes_a_value_not_a_condition():
    msgs = _check('inclusion a { ref I1 quote "q" require recorded (any pci) }')
    assert any("`recorded` asks whether a value" in m for m in msgs), msgs
    assert _check('inclusion a { ref I1 quote "q" require recorded consent and recorded latest hb ever }') == []


def test_observation_attributes_are_checked():
    msgs = _check('inclusion a { ref I1 quote "q" require latest lvef ever where (method is mri) >= 50 % }')
    assert any("'mri' is not a value of method" in m for m in msgs), msgs
    assert _check('inclusion a { ref I1 quote "q" require latest lvef ever where (method in {echo, muga}) >= 50 % }') == []


def test_existing_rule_files_compile_unchanged():
    """The language grew without changing SM3321's module (checked by test_compiler's staleness
    test too): its compiled logic has no construct of this round."""
    res = compile_rules(RULES)
    assert res.ok
    assert "_window_at(" not in res.python.split("# ---- end of runtime")[-1]


EXAMPLES = sorted(p.parent for p in (ROOT / "examples").glob("*/trial.elig"))


# (each example compiles and verifies: tests/test_examples.py)


@pytest.mark.parametrize("example", [p for p in EXAMPLES if (p / "cases").is_dir()], ids=lambda p: p.name)
def test_each_example_has_an_eligible_record_and_a_failing_case_per_criterion(example):
    """The data cases of a new example cover every protocol item it encodes: an eligible record,
    and for every item a record that fails it (or reviews it, for a judgment)."""
    res, _ = compiled_suite(example)
    refs = {r for c in res.program.criteria for r in c.refs}
    failing = set()
    eligible = False
    for p in (example / "cases").glob("*.json"):
        case = json.loads(p.read_text(encoding="utf-8"))
        eligible |= case["expect"].get("status") == "eligible"
        failing |= {r for r, o in case["expect"].get("outcomes", {}).items() if o in ("fail", "review")}
    assert eligible
    assert refs - failing == set()


def test_a_syntax_error_does_not_cascade_into_unknown_names_in_other_files():
    src = {
        "a_trial.elig": 'trial T { title "t" protocol "p.txt" anchors screening }\n',
        "b_vocab.elig": "observation hb { unit g/L }\ncondition acs\nfact consent {\n",  # unterminated
        "c_rules.elig": 'inclusion a { ref I1 quote "q" require latest hb ever >= 90 g/L and any acs and consent\n'
                        '    and latest hbb ever > 1 g/L }\n',
    }
    diags = compile_sources(src, emit=False).diagnostics
    assert [(d.span.file, d.message.split(";")[0]) for d in diags] == [
        ("b_vocab.elig", "unexpected end of file"),  # the syntax error, reported
        ("c_rules.elig", "unknown observation 'hbb'"),  # a real misspelling, still reported
    ]
    # with the trial header in the broken file, no "no trial header" either
    src2 = {"a.elig": 'trial T { title "t" protocol "p.txt" anchors screening\n',
            "b.elig": 'inclusion a { ref I1 quote "q" require age at screening >= 18 a }\n'}
    diags = compile_sources(src2, emit=False).diagnostics
    assert [d.span.file for d in diags] == ["a.elig"], [d.message for d in diags]


def test_a_caret_power_gets_the_ucum_spelling_as_hint():
    res = compile_sources({"t.elig": 'trial T { title "t" protocol "p.txt" anchors screening }\n'
                                     "observation anc { unit /mm^3 }\n"}, emit=False)
    [d] = res.diagnostics
    assert d.message == "unknown unit '/mm^3'" and d.hint == "in UCUM this is written /mm3"


_STATUS_RULES = """
exclusion kw { ref E1 quote "q" exclude when any active acs ever }
exclusion is_active { ref E2 quote "q" exclude when any acs ever where status is active }
exclusion in_active { ref E3 quote "q" exclude when any acs ever where status in {active} }
exclusion not_resolved { ref E4 quote "q" exclude when any acs ever where (status is not resolved and status not in {resolved}) }
"""


def test_status_is_active_names_the_value_not_the_keyword(tmp_path):
    """`active` is the query's keyword (`any active X`) and a value of a condition's status:
    `where status is active`, `status in {active}` (refused as a misplaced keyword before) mean
    what `any active` means, in the module and in both SQL forms, for every kind of status."""
    from compiler.sql import screen
    from test_sql import assert_sql_equals_python

    head = 'trial T { title "t" protocol "p.txt" anchors screening, first_dose }\ncondition acs\n'
    res = compile_sources({"t.elig": head + _STATUS_RULES})
    assert res.ok, [d.message for d in res.diagnostics]
    module = screen.evaluator_module(res.python)
    conds = [[], [{"code": "acs", "onset": "2020-01-01", "status": "active"}],
             [{"code": "acs", "onset": "2020-01-01", "end": "2021-01-01", "status": "resolved"}],
             [{"code": "acs", "onset": "2020-01-01", "status": "bogus"}], [{"code": "acs", "onset": "2020-01-01"}],
             [{"onset": "2020-01-01", "status": "active"}],
             [{"code": "acs", "onset": "2020-01-01", "status": "resolved"}, {"code": "acs", "status": "active"}]]
    texts = [json.dumps({"format": 1, "id": f"p{i}", "anchors": {"screening": "2026-01-10"}, "conditions": c})
             for i, c in enumerate(conds)]
    got = [[(c["outcome"], c["missing"]) for c in module.evaluate_json(t)["criteria"]] for t in texts]
    assert [g[0][0] for g in got] == ["pass", "fail", "pass", "unknown", "unknown", "unknown", "fail"]
    assert all(len(set(map(str, g))) == 1 for g in got), got  # the four spellings agree
    crits = ["kw", "is_active", "in_active", "not_resolved"]
    for relational in (True, False):
        assert_sql_equals_python(res, module, texts, tmp_path, crits, relational=relational)
