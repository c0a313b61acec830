"""`elig verify`: quotes verbatim, every protocol item covered, limits of quote and logic agree.

Each mutation of the SM3321 rules below must make verify fail and name the rule it broke.
"""

import shutil

import pytest
from click.testing import CliRunner

from compiler.cli import main
from conftest import RULES


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
