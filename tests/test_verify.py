"""`elig verify`: quotes verbatim, every protocol item covered, limits of quote and logic agree.

Each mutation of the SM3321 rules below must make verify fail and name the rule it broke.
"""

import shutil

import pytest
from click.testing import CliRunner

from compiler.cli import main
from conftest import ROOT, RULES


def _verify(rules):
    return CliRunner().invoke(main, ["verify", str(rules)])


def test_sm3321_verifies_with_full_coverage():
    res = CliRunner().invoke(main, ["verify", str(RULES), "--coverage"])
    assert res.exit_code == 0, res.output
    assert "39 of 39 items encoded or declared not computable" in res.output
    assert "E2.3   encoded       recent_investigational_drug" in res.output
    assert "I7     heading" in res.output


MUTATIONS = [
    # (file, old, new, fragments the output must contain)
    ("inclusion.elig", "first_dose >= 90 g/L", "first_dose >= 95 g/L",
     ["limit '≥ 90 g/L' in the quote of 'hemoglobin' has no counterpart", "limit '>= 95 g/L' in the logic of 'hemoglobin'"]),
    ("inclusion.elig", "first_dose >= 90 g/L", "first_dose > 90 g/L",
     ["the quote of 'hemoglobin' says '≥ 90 g/L' (at least) but its logic says '> 90 g/L' (more than): direction or inclusivity differs"]),
    ("exclusion.elig", "(450 ms if sex is male", "(460 ms if sex is male", ["'qtcf_prolonged'", "460 ms"]),
    ("exclusion.elig", "any radiotherapy within 4 wk", "any radiotherapy within 5 wk", ["'recent_radiotherapy'", "5 wk"]),
    ("inclusion.elig", "<= (5 x ULN if any active liver_metastasis else 2.5 x ULN)\n}\n\ninclusion alt_limit",
     "<= (5 x ULN if any active liver_metastasis else 3 x ULN)\n}\n\ninclusion alt_limit", ["'ast_limit'", "3 x ULN"]),
    ("exclusion.elig", "daily_dose as prednisone > 10 mg", "daily_dose as prednisone >= 10 mg",
     ["'autoimmune_or_immunosuppression'", "direction or inclusivity differs"]),
    ("exclusion.elig", "shorter of 28 d and 5 x half_life", "shorter of 21 d and 5 x half_life", ["'anticancer_washout'", "21 d"]),
    ("inclusion.elig", 'quote "Hemoglobin ≥ 90 g/L;"', 'quote "Haemoglobin ≥ 90 g/L;"',
     ["the quote of 'hemoglobin' does not appear verbatim in protocol.txt"]),
    ("outline.elig", '    item E4 "4. There was acute toxicity from prior antitumor therapy"\n', "",
     ["numbered item '4.' of the protocol ('There was acute toxicity from prior anti') is not in the outline", "ref E4 of 'unresolved_toxicity' is not an item"]),
    ("exclusion.elig", "    ref E11\n", "    ref E12\n", ["E11 is not encoded by any rule"]),
]


@pytest.mark.parametrize("file,old,new,fragments", MUTATIONS, ids=[f"{m[0]}:{m[2][:30]}" for m in MUTATIONS])
def test_mutation_is_caught_and_named(tmp_path, file, old, new, fragments):
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    path = rules / file
    text = path.read_text(encoding="utf-8")
    assert old in text, f"mutation target {old!r} not in {file}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    res = _verify(rules)
    assert res.exit_code == 1, res.output
    for frag in fragments:
        assert frag in res.output, f"{frag!r} not in:\n{res.output}"
    assert "Traceback" not in res.output


def test_uncomputable_declaration_counts_as_coverage(tmp_path):
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    path = rules / "exclusion.elig"
    text = path.read_text(encoding="utf-8")
    start = text.index("exclusion investigator_approval {")
    text = text[:start] + 'uncomputable E15 "a judgment made at the site, outside the record"\n'
    path.write_text(text, encoding="utf-8")
    res = CliRunner().invoke(main, ["verify", str(rules), "--coverage"])
    assert res.exit_code == 0, res.output
    assert "E15    uncomputable  a judgment made at the site" in res.output


def test_limits_are_read_from_protocol_text():
    from compiler.verify import limits_in_text

    got = [(str(float(l.value)).removesuffix(".0"), l.unit, l.op) for l, _ in limits_in_text(
        "AST/ALT ≤ 2.5 × ULN;If liver metastasis occurs, AST/ALT≤5×ULN; Platelet count ≥100×10\\^9/L; "
        "male \\>450 ms; \\>38 ° C; aged 18 years or older; ECOG PS score 0-2 points; ≤ grade 1; SM3321 IL-2")]
    assert got == [("2.5", "ULN", "<="), ("5", "ULN", "<="), ("100", "10*9/L", ">="), ("450", "ms", ">"),
                   ("38", "Cel", ">"), ("18", "a", ">="), ("0", "", ">="), ("2", "", "<="), ("1", "grade", "<=")]


# ---------------------------------------------------------------------- issue 9: verify is not fooled

HARDER = [
    # (file, old, new, fragments) — each mutation below fooled verify before issue 9
    ("inclusion.elig", "first_dose >= 90 g/L", "first_dose < 90 g/L",
     ["the quote of 'hemoglobin' says '≥ 90 g/L' (at least) but its logic says '< 90 g/L' (less than)"]),
    ("inclusion.elig", "first_dose >= 100 10*9/L", "first_dose <= 100 10*9/L", ["'platelets'", "direction or inclusivity differs"]),
    # a note restating the wrong direction does not vouch for it
    ("inclusion.elig", 'quote "Hemoglobin ≥ 90 g/L;"\n    require latest hemoglobin within lab_window_days before first_dose >= 90 g/L',
     'quote "Hemoglobin ≥ 90 g/L;"\n    note "Hemoglobin below 90 g/L."\n    require latest hemoglobin within lab_window_days before first_dose < 90 g/L',
     ["'hemoglobin'", "direction or inclusivity differs"]),
    # a note sentence that merely repeats the window does not stand in for it
    ("inclusion.elig", "require latest total_bilirubin within lab_window_days before first_dose",
     "require latest total_bilirubin on or before first_dose",
     ["limit '7 days or less' in the quote of 'bilirubin_limit' has no counterpart in its logic"]),
    ("exclusion.elig", "else longer of 5 x half_life and 2 wk", "else shorter of 5 x half_life and 2 wk",
     ["takes the shorter of 5 x half_life and 2 wk, but its quote says 'whichever is longer'"]),
    ("exclusion.elig", "else shorter of 28 d and 5 x half_life", "else longer of 28 d and 5 x half_life",
     ["takes the longer of 28 d and 5 x half_life, but its quote says 'whichever is shorter'"]),
    ("exclusion.elig", "any radiotherapy within 4 wk before first_dose", "any radiotherapy within 4 wk after first_dose",
     ["'recent_radiotherapy'", "before its anchor", "after its anchor"]),
    ("exclusion.elig", "stable_since <= first_dose - 2 wk", "stable_since >= first_dose - 2 wk",
     ["'cns_disease'", "direction or inclusivity differs"]),
    ("exclusion.elig", "where (daily_dose as prednisone > 10 mg", "where (daily_dose as prednisone < 10 mg",
     ["'autoimmune_or_immunosuppression'", "direction or inclusivity differs"]),
    # the quoted window dropped from one of several events that share it
    ("exclusion.elig", "any ventricular_arrhythmia within 6 mo before screening", "any ventricular_arrhythmia on or before screening",
     ["the quote of 'recent_cardiovascular_event' states a window ('the 6 months') but 'ventricular_arrhythmia' reads items of any date"]),
    # a note that contradicts the logic's window side
    ("exclusion.elig", "any malnutrition within 4 wk before first_dose", "any malnutrition within 4 wk after first_dose",
     ["the logic of 'malnutrition_iv' says '4 wk' (after its anchor) but its note says '4 weeks' (at most, before its anchor)"]),
    ("exclusion.elig", "(fractions = 1 and intent", "(fractions != 1 and intent", ["'recent_radiotherapy'", "note"]),
    ("exclusion.elig", "latest hbv_dna on or before first_dose > LLOQ", "latest hbv_dna on or before first_dose >= LLOQ",
     ["'active_hepatitis_b'", "direction or inclusivity differs"]),
    # "had not returned to ≤ grade 1" excludes grade 2 or more: grade < 2 says the opposite
    ("exclusion.elig", "where grade >= 2", "where grade < 2",
     ["limit '< 2' in the logic of 'unresolved_toxicity' appears neither in its quotes nor in a note"]),
    ("exclusion.elig", "latest cd4_count on or before first_dose >= 350 /uL", "latest cd4_count on or before first_dose < 350 /uL",
     ["'hiv_aids'", "direction or inclusivity differs"]),
]


@pytest.mark.parametrize("file,old,new,fragments", HARDER, ids=[f"{m[0]}:{m[2][:40]}" for m in HARDER])
def test_harder_mutation_is_caught(tmp_path, file, old, new, fragments):
    test_mutation_is_caught_and_named(tmp_path, file, old, new, fragments)


def _delete_rule(text: str, name: str) -> str:
    start = text.index(f"inclusion {name} {{")
    end = text.index("\n}\n", start) + 3
    return text[:start] + text[end:]


def test_deleting_one_of_several_rules_under_an_item_is_caught(tmp_path):
    """I7b keeps three sibling rules; its platelet limit is then quoted by no rule."""
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    path = rules / "inclusion.elig"
    path.write_text(_delete_rule(path.read_text(encoding="utf-8"), "platelets"), encoding="utf-8")
    res = _verify(rules)
    assert res.exit_code == 1, res.output
    assert "9/L' of I7b is quoted by no rule" in res.output and "limit '≥100" in res.output
    assert "protocol.txt:14:20:" in res.output and "Traceback" not in res.output


def test_deleting_a_rule_and_its_outline_entry_is_caught(tmp_path):
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    path = rules / "inclusion.elig"
    path.write_text(_delete_rule(path.read_text(encoding="utf-8"), "evaluable_lesion"), encoding="utf-8")
    outline = rules / "outline.elig"
    text = outline.read_text(encoding="utf-8")
    outline.write_text(text.replace('    item I4 "4. Subjects in this study must have at least one evaluable lesion"\n', ""), encoding="utf-8")
    res = _verify(rules)
    assert res.exit_code == 1, res.output
    assert "protocol.txt:6:5: error: numbered item '4.' of the protocol ('Subjects in this study must have" in res.output


WORDS = [
    ("at least 18 years of age", [("18", "a", ">=")]),
    ("18 years or more", [("18", "a", ">=")]),
    ("no more than 3 brain metastases", [("3", "", "<=")]),
    ("a value taken up to 14 days before the visit", [("14", "d", "<=")]),
    ("eGFR less than 30 mL/min", [("30", "mL/min", "<")]),
    ("potassium greater than 5.5 mmol/L", [("5.5", "mmol/L", ">")]),
    ("AST exceeding 3 x ULN", [("3", "ULN", ">")]),
    ("haemoglobin below 8.5 g/dl", [("8.5", "g/dL", "<")]),
    ("systolic pressure above 160 mmHg", [("160", "mm[Hg]", ">")]),
    ("LVEF 50% or higher", [("50", "%", ">=")]),
    ("Age 18 to 75 years", [("18", "a", ">="), ("75", "a", "<=")]),
    ("Age 18 - 80 years", [("18", "a", ">="), ("80", "a", "<=")]),
    ("ECOG performance status 0 or 1", [("0", "", ">="), ("1", "", "<=")]),
    ("within one year before screening", [("1", "a", None)]),
    ("within four weeks prior to Visit 1", [("4", "wk", None)]),
    ("ALT > 5 X upper limit of normal (ULN)", [("5", "ULN", ">")]),
    ("bilirubin ≤ 1.5 times the upper limit of normal", [("1.5", "ULN", "<=")]),
    ("≥ 12 years to \\< 18 years of age", [("12", "a", ">="), ("18", "a", "<")]),
    ("Absolute neutrophil count≥1.5×10⁹/L", [("1.5", "10*9/L", ">=")]),
    ("IGA score of ≥3", [("3", "", ">=")]),
]


@pytest.mark.parametrize("text,want", WORDS, ids=[w[0] for w in WORDS])
def test_word_limits_are_read_with_direction(text, want):
    from compiler.verify import limits_in_text

    got = [(str(float(l.value)).removesuffix(".0"), l.unit, l.op) for l, _ in limits_in_text(text)]
    assert got == want


def test_window_side_and_exception_sense():
    from compiler.verify_text import inverted_at, limits_in_text

    (l, _), = limits_in_text("within 48 hours after symptom onset")
    assert (l.unit, l.side) == ("h", "after")
    (l, _), = limits_in_text("within the last 3 months")
    assert l.side == "before"
    text = "HIV-infected subjects may be eligible if the CD4+ T cell count is ≥350 cells /µL"
    assert inverted_at(text, text.index("≥"))
    assert not inverted_at("Hemoglobin ≥ 90 g/L", 11)


LAYOUTS = [
    ("1. First\n2. Second\n", ["1.", "2."]),
    ("1) First\n2) Second\n", ["1)", "2)"]),
    ("1\\. First\n2\\. Second\n", ["1.", "2."]),
    ("(a) First\n(b) Second\n", ["(a)", "(b)"]),
    ("a) First\nb) Second\n", ["a)", "b)"]),
    ("a. First\nb. Second\n", ["a.", "b."]),
    ("I. First\nII. Second\nIII. Third\n", ["I.", "II.", "III."]),
    ("i) First\nii) Second\niv) Fourth\n", ["i)", "ii)", "iv)"]),
    ("* First\n* Second\n  * a nested clause\n", ["*", "*"]),
    ("- First\n- Second\n", ["-", "-"]),
    ("• First\n• Second\n", ["•", "•"]),
    ("* Aged 18\n\n  * a) Cohort 1: adults\n  * b) Cohort 2: children\n* Hospitalized\n", ["*", "a)", "b)", "*"]),
    ("- • 1. First\n- 7. Organs:\n- a) Liver\n- • AST ≤ 2.5 × ULN; b) Blood\n", ["1.", "7.", "a)", "b)"]),
    ("9. Organs:\n\n1)Neutrophils ≥1.5×10⁹/L；2)Platelets ≥50×10⁹/L\n", ["9.", "1)", "2)"]),
]


@pytest.mark.parametrize("text,marks", LAYOUTS, ids=[repr(x[0][:24]) for x in LAYOUTS])
def test_numbered_items_in_every_layout(text, marks):
    from compiler.verify_text import item_markers

    assert [m.mark for m in item_markers(text)] == marks


def test_a_bulleted_item_missing_from_the_outline_is_caught(tmp_path):
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "examples" / "hf_trial", rules)
    proto = rules / "protocol.txt"
    text = proto.read_text(encoding="utf-8")
    proto.write_text(text.replace("1. Serum potassium", "* Serum potassium"), encoding="utf-8")
    res = _verify(rules)
    # a list with numbered items reads bullets as clauses; the quote still covers the limit
    assert "Traceback" not in res.output
