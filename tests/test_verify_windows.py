"""`elig verify` checks where each window points (compiler/verify_windows.py).

tests/verify_windows/ is a small trial whose rules read their windows the way the text says:
readings up to the anchor unless the text says "after", statuses at the anchor ("currently",
"at screening"), a note's one direction, a note's window, and one window per clause of a list.
It verifies as written; each mutation below (the mechanical mutants of tools/mutate.py and a few
more) must make verify fail with its own message, without any data case.
"""

import shutil
from pathlib import Path

import pytest

from conftest import ROOT

WINDOWS = ROOT / "tests" / "verify_windows"


def _verify(rules: Path):
    from compiler.pipeline import compile_sources
    from compiler.verify import verify_program
    from tools.mutate import rule_sources

    sources = {(rules / f).as_posix(): t for f, t in rule_sources(rules).items()}

    def load(name):
        return (rules / name).read_text(encoding="utf-8")

    res = compile_sources(sources, rules.as_posix(), emit=False, protocol_loader=load)
    assert res.ok, [d.message for d in res.diagnostics]
    diags, rows = verify_program(res.program, res.protocol_text, (rules / "protocol.txt").as_posix(), dict(sources))
    return [d.message for d in diags], rows


def test_the_windows_trial_verifies_with_full_coverage():
    messages, rows = _verify(WINDOWS)
    assert messages == []
    assert len(rows) == 11 and all(r.status == "encoded" for r in rows)


MUTATIONS = [
    # (old, new, fragment of the one message expected)
    # a reading whose quote states no time: eligibility is decided at the anchor
    ("latest hemoglobin on or before first_dose >= 90 g/L", "latest hemoglobin on or after first_dose >= 90 g/L",
     "the quote of 'hemoglobin' states no time after first_dose, but its logic reads 'latest hemoglobin on or after "
     "first_dose' in the window 'on or after first_dose': eligibility is decided at first_dose"),
    ("latest hemoglobin on or before first_dose >= 90 g/L", "latest hemoglobin within 7 d after first_dose >= 90 g/L",
     "the quote of 'hemoglobin' states no time after first_dose"),
    # a condition or treatment read in the days after the anchor: the text says no such time
    ("exclude when any anticoagulant on or after enrollment", "exclude when any anticoagulant within 7 d after enrollment",
     "the quote of 'anticoagulant_therapy' states no time after enrollment"),
    # "Previous", "prior": the window points the other way
    ("any radiotherapy on or before screening", "any radiotherapy on or after screening",
     "the quote of 'previous_radiotherapy' says 'Previous' but its logic reads 'radiotherapy' in the window "
     "'on or after screening': the window points the other way"),
    ("at least 1 systemic_therapy on or before screening", "at least 1 systemic_therapy on or after screening",
     "the quote of 'prior_therapy' says 'prior' but its logic reads 'systemic_therapy'"),
    # "Currently using": the status at the anchor, not any past item
    ("any anticoagulant on or after screening", "any anticoagulant on or before screening",
     "the quote of 'current_anticoagulant' says 'Currently' (at screening) but its logic reads 'anticoagulant' in the "
     "window 'on or before screening', which holds items that ended at any time before it"),
    # "at screening" (a reading) and "at Visit 1" (a condition)
    ("latest weight within 0 d before screening", "latest weight on or before screening",
     "the text of 'weight' says 'at screening' but its logic reads 'latest weight on or before screening'"),
    ("any active rash", "any rash on or before visit1",
     "the text of 'rash' says 'at Visit 1' but its logic reads 'rash' in the window 'on or before visit1'"),
    # a note gives one direction: "on or after its start", "Ongoing at enrollment or started later"
    ("any tumor_response on or after start", "any tumor_response on or before start",
     "the logic of 'prior_therapy' reads 'tumor_response' in the window 'on or before start' but its note says "
     "'after its start': the window points the other way"),
    ("any anticoagulant on or after enrollment", "any anticoagulant on or before enrollment",
     "the logic of 'anticoagulant_therapy' reads 'anticoagulant' in the window 'on or before enrollment' but its note "
     "says 'enrollment or later'"),
    # a window the note explains, lost from the logic
    ("latest ecog within 0 d before screening", "latest ecog on or before screening",
     "the note of 'ecog' reads a window '0 days' (before its anchor) that its logic does not have"),
    # each clause of the list keeps its window ("within 4 weeks ...; or ... within 7 days ...")
    ("any active_infection within 7 d before first_dose", "any active_infection on or before first_dose",
     "every clause of the quote of 'recent_infection' states its window"),
    ("any fever within 7 d before first_dose", "any fever on or before first_dose",
     "but 'fever' reads items of any date"),
    # ... and keeps its own clause's window, not another clause's
    ("any active_infection within 7 d before first_dose", "any active_infection within 4 wk before first_dose",
     "the quote of 'recent_infection' gives 'active_infection' the window of its clause ('7 days'"),
    ("any bacteremia, severe_pneumonia within 4 wk before first_dose", "any bacteremia, severe_pneumonia within 7 d before first_dose",
     "gives 'bacteremia, severe_pneumonia' the window of its clause ('4 weeks'"),
    # limits read from the text: a thousands point in a count, a bare limit that ends a sentence
    ("< 100 10*9/L", "< 100 10*6/L", "100.000/µl' in the quote of 'thrombocytopenia' has no counterpart"),
    ("latest ecog within 0 d before screening <= 2", "latest ecog within 0 d before screening <= 3",
     "limit '≤ 2' in the quote of 'ecog' has no counterpart"),
]


@pytest.mark.parametrize("old,new,fragment", MUTATIONS, ids=[m[1][:50] for m in MUTATIONS])
def test_a_window_pointing_away_from_the_text_is_caught(tmp_path, old, new, fragment):
    rules = tmp_path / "rules"
    shutil.copytree(WINDOWS, rules)
    path = rules / "rules.elig"
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"mutation target {old!r} not in rules.elig once"
    path.write_text(text.replace(old, new), encoding="utf-8")
    messages, _ = _verify(rules)
    assert any(fragment in m for m in messages), "\n".join(messages)


CORRECT = [
    # (old, new): rules that say what the text says, in another way, still verify
    # a treatment with no stated direction: the window from the anchor on holds those ongoing at it
    ("exclude when any anticoagulant on or after enrollment",
     "exclude when any anticoagulant on or after screening"),
    # "Currently using": ongoing on the anchor's day, as a note explains
    ("    exclude when any anticoagulant on or after screening",
     '    note "Using it on the screening day (0 days before screening)."\n    exclude when any anticoagulant within 0 d before screening'),
    # the clauses of the list in another order, each with its own window
    ("any bacteremia, severe_pneumonia within 4 wk before first_dose\n        or any active_infection within 7 d before first_dose",
     "any active_infection within 7 d before first_dose\n        or any bacteremia, severe_pneumonia within 4 wk before first_dose"),
    # a condition read as active up to Visit 1
    ("any active rash", "any active rash on or before visit1"),
]


@pytest.mark.parametrize("old,new", CORRECT, ids=[m[1][:50] for m in CORRECT])
def test_a_faithful_window_passes(tmp_path, old, new):
    rules = tmp_path / "rules"
    shutil.copytree(WINDOWS, rules)
    path = rules / "rules.elig"
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"target {old!r} not in rules.elig once"
    path.write_text(text.replace(old, new), encoding="utf-8")
    messages, _ = _verify(rules)
    assert messages == []


@pytest.mark.parametrize("text,want", [
    ("ECOG ≤ 2.", [("2", "", "<=")]),
    ("spontaneous INR \\> 1,5.", [("3/2", "", ">")]),
    ("thrombocytopenia \\< 100.000/µl; splenomegaly", [("100000", "/uL", "<")]),
    # a point before three digits is a decimal point elsewhere
    ("creatinine ≤ 1.500 mg/dL", [("3/2", "mg/dL", "<=")]),
])
def test_limits_read_from_text(text, want):
    from compiler.verify_text import limits_in_text

    assert [(str(l.value), l.unit, l.op) for l, _ in limits_in_text(text)] == want


def test_the_examples_verify_with_every_window_check():
    """No false alarm: every example trial, SM3321 and the grown trial verify as they are."""
    for rules in [ROOT / "sm3321_rules", ROOT / "tests" / "verify_grown"] + sorted(
            p for p in (ROOT / "examples").iterdir() if (p / "trial.elig").exists()):
        messages, _ = _verify(rules)
        assert messages == [], (rules.name, messages)


SM3321_E6_4 = [
    # E6.4 states "within 4 weeks prior to" for one list of clauses and "within 7 days prior to" for the next
    ("or any active_infection within 7 d before first_dose", "or any active_infection on or before first_dose",
     "every clause of the quote of 'recent_serious_infection_or_fever' states its window"),
    ("or any active_infection within 7 d before first_dose", "or any active_infection within 4 wk before first_dose",
     "gives 'active_infection' the window of its clause ('7 days'"),
    # the fever clause is found by its limit (\\>38 ° C), not by its name
    ("(any body_temperature within 7 d before first_dose", "(any body_temperature within 4 wk before first_dose",
     "gives 'body_temperature' the window of its clause ('7 days'"),
    ("within 4 wk before first_dose\n        or any active_infection", "within 7 d before first_dose\n        or any active_infection",
     "gives 'infection_hospitalization, bacteremia, severe_pneumonia, active_tuberculosis' the window of its clause ('4 weeks'"),
]


@pytest.mark.parametrize("old,new,fragment", SM3321_E6_4, ids=[m[1][:50] for m in SM3321_E6_4])
def test_sm3321_e6_4_clauses_keep_their_windows(tmp_path, old, new, fragment):
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "sm3321_rules", rules)
    path = rules / "exclusion.elig"
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"mutation target {old!r} not in exclusion.elig once"
    path.write_text(text.replace(old, new), encoding="utf-8")
    messages, _ = _verify(rules)
    assert any(fragment in m for m in messages), "\n".join(messages)


# SM3321 and HF207 run every mutant in tests/test_mutation_score.py (no limit mutant missed by verify is recorded)
TRIALS = sorted(p for p in (ROOT / "examples").iterdir() if p.name.startswith("nct") and (p / "trial.elig").exists())


@pytest.mark.slow
@pytest.mark.parametrize("rules", TRIALS, ids=[p.name for p in TRIALS])
def test_every_window_mutant_of_every_trial_is_caught_by_verify_alone(rules):
    """Each `before ↔ after` and each forgotten window length (tools/mutate.py) of a criterion or
    a `let`, in every trial: verify alone catches it, or it is listed as equivalent."""
    from tools.mutate import is_rule_limit, mutants_of_sources
    from tools.mutation_score import _Trial, equivalents

    trial = _Trial(rules, None)
    res, _ = trial.compile(trial.sources)
    eq = equivalents(res.program.trial.name)
    missed = []
    for m in (m for m in mutants_of_sources(trial.sources)
              if m.operator in ("before-after", "window-length") and is_rule_limit(m, trial.sources)):
        o = trial.judge(m)
        if o.verdict == "survived" and m.description not in eq:
            missed.append(m.description)
    assert missed == []
