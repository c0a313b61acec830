"""Protocol amendments (docs/amendments.md): `elig diff` on SM3321 amended in realistic ways,
each with its exact expected diff; `elig verify` on each amended version against its own
text; directions for inclusions and exclusions; the impact on patients agrees with screening
each version separately."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from compiler.cli import main
from compiler.diff import diff_programs, format_text
from compiler.pipeline import compile_rules, compile_sources, read_rules
from compiler.verify import verify_program

HERE = Path(__file__).resolve().parent
AMEND = HERE / "amendments"
BASE = AMEND / "base"
FIXTURES = ["stricter_lab_limit", "longer_washout", "new_exclusion", "widened_exclusion", "reworded_quote",
            "split_reformatted", "protocol_text_only"]
SAME_MEANING = {"split_reformatted", "protocol_text_only"}


@pytest.fixture(scope="module")
def base():
    res = compile_rules(BASE, emit=False)
    assert res.ok
    return res


def _without_fingerprints(d: dict) -> dict:
    d = dict(d)
    d.pop("old_fingerprint")
    d.pop("new_fingerprint")
    return d


@pytest.mark.parametrize("name", FIXTURES)
def test_amended_version_verifies_against_its_own_text(name):
    res = compile_rules(AMEND / name, emit=False)
    assert res.ok, [d.message for d in res.diagnostics]
    diags, rows = verify_program(res.program, res.protocol_text, "protocol.txt", dict(res.sources))
    assert diags == [], [d.message for d in diags]
    assert rows


@pytest.mark.parametrize("name", FIXTURES)
def test_amendment_has_its_exact_expected_diff(base, name):
    new = compile_rules(AMEND / name, emit=False)
    got = diff_programs(base.program, new.program, base.protocol_text, new.protocol_text).as_json()
    want = json.loads((AMEND / name / "expected-diff.json").read_text(encoding="utf-8"))
    assert _without_fingerprints(got) == _without_fingerprints(want)
    # the fingerprints: the same exactly when the meaning is the same
    assert (got["old_fingerprint"] == got["new_fingerprint"]) == (name in SAME_MEANING)
    assert got["same_meaning"] == (name in SAME_MEANING)


def test_text_says_each_change_with_its_direction(base):
    def text(name):
        new = compile_rules(AMEND / name, emit=False)
        return format_text(diff_programs(base.program, new.program, base.protocol_text, new.protocol_text))

    assert "hemoglobin ≥ 90 g/L → ≥ 100 g/L (stricter)" in text("stricter_lab_limit")
    assert "window when its class is nitrosourea or mitomycin: 6 wk → 8 wk before first dose (stricter)" \
        in text("longer_washout")
    assert "now also excludes alcohol abuse (stricter)" in text("widened_exclusion")
    t = text("reworded_quote")
    assert "quote changed" in t and "[none]" in t
    t = text("protocol_text_only")
    assert "same meaning" in t
    assert "warning: I8 changed in the protocol text but its rules did not (pregnancy_test_and_contraception)" in t
    assert "warning" not in text("stricter_lab_limit")  # its rule changed with its text


def test_cli_json_and_text(tmp_path):
    r = CliRunner().invoke(main, ["diff", str(BASE), str(AMEND / "stricter_lab_limit"), "--format", "json"])
    assert r.exit_code == 0, r.output
    got = json.loads(r.output)
    want = json.loads((AMEND / "stricter_lab_limit" / "expected-diff.json").read_text(encoding="utf-8"))
    assert got.pop("old_rules") == BASE.as_posix() and got.pop("new_rules").endswith("stricter_lab_limit")
    assert got == want or _without_fingerprints(got) == _without_fingerprints(want)
    r = CliRunner().invoke(main, ["diff", str(BASE), str(AMEND / "longer_washout")])
    assert r.exit_code == 0 and "anticancer_washout [stricter]" in r.output
    out = tmp_path / "d.json"
    r = CliRunner().invoke(main, ["diff", str(BASE), str(AMEND / "new_exclusion"), "--format", "json", "-o", str(out)])
    assert r.exit_code == 0 and json.loads(out.read_text())["summary"]["added"] == 1


def test_help_has_examples():
    r = CliRunner().invoke(main, ["diff", "--help"])
    assert r.exit_code == 0 and "Example" in r.output and "elig diff" in r.output


def test_cli_errors_are_clear(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.elig").write_text("inclusion bad_rule {\n  ref I1\n  require age at >= 18 a\n}\n")
    r = CliRunner().invoke(main, ["diff", str(BASE), str(bad)])
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert "x.elig:3:" in r.output and "the new rules" in r.output
    r = CliRunner().invoke(main, ["diff", str(BASE), str(tmp_path / "missing")])
    assert r.exit_code != 0 and "not a directory" in r.output
    r = CliRunner().invoke(main, ["diff", str(BASE), str(BASE), "--records", str(tmp_path / "none.jsonl")])
    assert r.exit_code == 1 and "cannot open" in r.output


def test_html_page_side_by_side_with_changed_parts_marked(base):
    from test_html import Page

    r = CliRunner().invoke(main, ["diff", str(BASE), str(AMEND / "stricter_lab_limit"), "--format", "html"])
    assert r.exit_code == 0
    page = Page(r.output)
    assert page.errors == []
    html = r.output
    assert "<del>90</del>" in html and "<ins>100</ins>" in html
    assert 'id="crit-hemoglobin"' in html and "hemoglobin ≥ 90 g/L → ≥ 100 g/L" in html
    new = compile_rules(AMEND / "stricter_lab_limit", emit=False)
    from compiler.fingerprint import fingerprint

    assert fingerprint(base.program) in html and fingerprint(new.program) in html
    r = CliRunner().invoke(main, ["diff", str(BASE), str(AMEND / "protocol_text_only"), "--format", "html"])
    assert "Protocol text changed, rules did not" in r.output and "abstinence is not a reliable method" in r.output
    assert Page(r.output).errors == []
    # rule text is escaped
    assert "<script" not in r.output


# ---------------------------------------------------------------------- directions


def _sources(d: Path) -> dict[str, str]:
    sources, _ = read_rules(d)
    return {Path(p).relative_to(d).as_posix(): t for p, t in sources.items()}


SRC = _sources(BASE)


def _diff(edits):
    new = dict(SRC)
    for f, old, repl in edits:
        assert new[f].count(old) == 1, old
        new[f] = new[f].replace(old, repl)
    a, b = compile_sources(SRC, emit=False), compile_sources(new, emit=False)
    assert b.ok, [d.message for d in b.diagnostics]
    return diff_programs(a.program, b.program)


def _changed(d):
    return {c.id: c for c in d.criteria if c.status != "unchanged"}


@pytest.mark.parametrize("edits,cid,direction,words", [
    # inclusion: a higher upper limit admits more patients
    ([("inclusion.elig", "require latest ast within lab_window_days before first_dose\n        <= (5 x ULN if any active liver_metastasis else 2.5 x ULN)",
       "require latest ast within lab_window_days before first_dose\n        <= (5 x ULN if any active liver_metastasis else 3 x ULN)")],
     "ast_limit", "looser", "ast ≤ 2.5 × ULN → ≤ 3 × ULN"),
    # exclusion: a higher threshold of what excludes excludes fewer
    ([("exclusion.elig", "> (450 ms if sex is male else 470 ms)", "> (480 ms if sex is male else 470 ms)")],
     "qtcf_prolonged", "looser", "qtcf > 450 ms → > 480 ms"),
    # inclusion with 'no': a longer window rules out more patients
    ([("inclusion.elig", "require no hematopoietic_growth_factor, blood_transfusion within 2 wk before enrollment",
       "require no hematopoietic_growth_factor, blood_transfusion within 4 wk before enrollment")],
     "no_recent_growth_factor_or_transfusion", "stricter", "window 2 wk → 4 wk before enrollment"),
    # exclusion with 'unless': a shorter window excludes fewer
    ([("exclusion.elig", "exclude when any radiotherapy within 4 wk before first_dose",
       "exclude when any radiotherapy within 2 wk before first_dose")],
     "recent_radiotherapy", "looser", "radiotherapy: window 4 wk → 2 wk before first dose"),
    # inclusion: >= 18 to > 18 is stricter
    ([("inclusion.elig", "require age at screening >= 18 a", "require age at screening > 18 a")],
     "age_18_or_over", "stricter", "age at screening ≥ 18 a → > 18 a"),
    # an inclusion's lab window made longer: readings that did not count may pass or fail
    ([("inclusion.elig", "let lab_window_days = 7 d", "let lab_window_days = 14 d")],
     "hemoglobin", "neither", "hemoglobin: window 7 d → 14 d before first dose"),
    # exclusion: an 'unless' exception narrowed excludes more
    ([("exclusion.elig", "unless (fractions = 1 and intent is palliative)",
       "unless (fractions = 1 and intent is palliative and any active cns_metastasis)")],
     "recent_radiotherapy", "stricter", "now also requires"),
    # a branch of a conditional limit; a 'between'; a query's filter; months against days
    ([("inclusion.elig", "(3 x ULN if any active gilbert_syndrome", "(2 x ULN if any active gilbert_syndrome")],
     "bilirubin_limit", "stricter", "total bilirubin ≤ 3 × ULN → ≤ 2 × ULN"),
    ([("inclusion.elig", "between 0 and 2", "between 0 and 1")], "ecog_0_to_2", "stricter", "upper limit: ecog ≤ 2 → ≤ 1"),
    ([("exclusion.elig", "where grade >= 2", "where grade >= 3")], "unresolved_toxicity", "looser", "grade ≥ 2 → ≥ 3"),
    ([("exclusion.elig", "45 d if class in {anti_pd1_pdl1}", "2 mo if class in {anti_pd1_pdl1}")],
     "anticancer_washout", "stricter", "window when its class is anti pd1 pdl1: 45 d → 2 mo before first dose"),
    ([("exclusion.elig", "else shorter of 28 d and 5 x half_life", "else longer of 28 d and 5 x half_life")],
     "anticancer_washout", "stricter", "window otherwise: shorter of 28 d"),
    ([("exclusion.elig", "exclude when any substance_abuse\n", "exclude when any active substance_abuse\n")],
     "substance_abuse", "looser", "now only active ones count"),
    # a condition that becomes one operand of an 'or' / 'and', and an operand dropped
    ([("exclusion.elig", "exclude when any substance_abuse\n", "exclude when any substance_abuse or any active cns_metastasis\n")],
     "substance_abuse", "stricter", "now also excludes when: there is an active cns metastasis"),
    ([("exclusion.elig", "exclude when any major_surgery within 28 d before first_dose or planned_major_surgery",
       "exclude when any major_surgery within 28 d before first_dose")],
     "major_surgery", "looser", "no longer excludes when: the record says planned major surgery"),
    ([("inclusion.elig", "require informed_consent\n", "require informed_consent and fertile\n")],
     "informed_consent", "stricter", "now also requires: the record says fertile"),
])
def test_directions(edits, cid, direction, words):
    d = _diff(edits)
    ch = _changed(d)
    assert set(ch) >= {cid}, set(ch)
    c = ch[cid]
    assert c.direction == direction, [(x.text, x.direction) for x in c.changes]
    assert any(words in x.text for x in c.changes), [x.text for x in c.changes]


def test_renames_are_matched_by_content_then_by_ref():
    d = _diff([("inclusion.elig", "inclusion hemoglobin {", "inclusion hb_at_least_90 {")])
    c = next(c for c in d.criteria if c.id == "hb_at_least_90")
    assert c.status == "unchanged" and c.renamed_from == "hemoglobin"
    assert d.count("added") == d.count("removed") == 0
    d = _diff([("inclusion.elig", "inclusion hemoglobin {", "inclusion hb_at_least_100 {"),
               ("inclusion.elig", "first_dose >= 90 g/L", "first_dose >= 100 g/L")])
    c = next(c for c in d.criteria if c.id == "hb_at_least_100")
    assert c.status == "changed" and c.renamed_from == "hemoglobin" and c.direction == "stricter"


def test_removed_criterion_is_looser():
    text = SRC["exclusion.elig"]
    start = text.index("exclusion substance_abuse {")
    end = text.index("}\n", start) + 2
    d = _diff([("exclusion.elig", text[start:end], "")])
    c = next(c for c in d.criteria if c.id == "substance_abuse")
    assert c.status == "removed" and c.direction == "looser"
    assert d.as_json()["direction"] == "looser"


# ---------------------------------------------------------------------- impact on patients


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    import sys

    sys.path.insert(0, str(HERE.parent))
    from benchmarks.cohort import write_jsonl

    p = tmp_path_factory.mktemp("cohort") / "cohort.jsonl"
    write_jsonl(p, 300, seed=14, corrupt_rate=0.02)
    return p


def _statuses(rules: Path, records: Path) -> list[dict]:
    r = CliRunner().invoke(main, ["evaluate", "--rules", str(rules), str(records)])
    assert r.exit_code == 0, r.output[-2000:]
    return [json.loads(line) for line in r.output.splitlines()]


@pytest.mark.slow
@pytest.mark.parametrize("name,jobs", [("stricter_lab_limit", 1), ("longer_washout", 2)])
def test_impact_agrees_with_screening_each_version_separately(cohort, name, jobs):
    old = _statuses(BASE, cohort)
    new = _statuses(AMEND / name, cohort)
    assert len(old) == len(new) == 300
    r = CliRunner().invoke(main, ["diff", str(BASE), str(AMEND / name), "--records", str(cohort),
                                  "--format", "json", "-j", str(jobs)])
    assert r.exit_code == 0, r.output[-2000:]
    impact = json.loads(r.output)["impact"]
    assert impact["records"] == 300
    want_moves = [(i + 1, a["patient_id"], a["status"], b["status"]) for i, (a, b) in enumerate(zip(old, new))
                  if a["status"] != b["status"]]
    got_moves = [(p["record"], p["patient_id"], p["old_status"], p["new_status"]) for p in impact["patients"]]
    assert got_moves == want_moves
    if name == "stricter_lab_limit":
        assert want_moves, "the cohort has patients between 90 and 100 g/L"
    for side, results in (("old_statuses", old), ("new_statuses", new)):
        counts: dict = {}
        for x in results:
            counts[x["status"]] = counts.get(x["status"], 0) + 1
        assert impact[side] == dict(sorted(counts.items()))
    # every criterion whose outcome changed, counted per transition
    want_oc: dict = {}
    for a, b in zip(old, new):
        if a["status"] == "error" or b["status"] == "error":
            continue
        oa = {c["id"]: c["outcome"] for c in a["criteria"]}
        for c in b["criteria"]:
            if oa.get(c["id"]) != c["outcome"]:
                key = f"{oa.get(c['id'])}->{c['outcome']}"
                want_oc.setdefault(c["id"], {}).setdefault(key, 0)
                want_oc[c["id"]][key] += 1
    got_oc = {p["id"]: p["outcome_changes"] for p in impact["per_criterion"]}
    assert got_oc == want_oc
    # by which criterion: a patient who became ineligible names the criteria that fail now
    by_id = {p["record"]: p for p in impact["patients"]}
    for i, (a, b) in enumerate(zip(old, new)):
        if a["status"] != "ineligible" and b["status"] == "ineligible":
            fails = [c["id"] for c in b["criteria"] if c["outcome"] == "fail"
                     and {x["id"]: x["outcome"] for x in a["criteria"]}.get(c["id"]) != "fail"]
            assert by_id[i + 1]["because"] == fails
    if name == "stricter_lab_limit":
        assert set(got_oc) == {"hemoglobin"}


def test_html_page_escapes_rule_text_and_renders_in_chromium(tmp_path):
    import shutil

    from test_html import CHROMIUM, Page, _chromium, _console_problems

    new = tmp_path / "rules"
    shutil.copytree(BASE, new)
    f = new / "exclusion.elig"
    f.write_text(f.read_text(encoding="utf-8").replace(
        'quote "People with a history of drug abuse or use."',
        'quote "People with a history of drug abuse or use.</td><script>alert(1)</script>"'), encoding="utf-8")
    r = CliRunner().invoke(main, ["diff", str(BASE), str(new), "--format", "html", "-o", str(tmp_path / "d.html")])
    assert r.exit_code == 0, r.output
    html = (tmp_path / "d.html").read_text(encoding="utf-8")
    assert "<script" not in html and "&lt;script&gt;" in html
    assert Page(html).errors == []
    if not Path(CHROMIUM).exists():
        pytest.skip(f"headless Chromium not installed at {CHROMIUM}")
    res = _chromium(["--window-size=1280,900", "--dump-dom", (tmp_path / "d.html").as_uri()], tmp_path / "profile")
    assert res.returncode == 0, res.stderr[-2000:]
    assert 'id="crit-substance_abuse"' in res.stdout and _console_problems(res.stderr) == []
