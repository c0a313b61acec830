"""The JSON Schemas of patient-record format 1 and result format 1 (compiler/schemas/,
docs/records.md): every example and test record is checked, and the deliberately bad test
records are classified by the place the schema must name."""

import json
import re
import subprocess
import sys

import pytest

from compiler import schemas
from conftest import CASES, ROOT
from tools.datacases import build_record

# Test records that are bad on purpose, with the JSON path of (one of) their problems ([*]: any
# index, for suites whose base records grow).
DELIBERATELY_BAD = {
    "protocol/E1-allergy-bad-onset-still-fails": "$.conditions[1].onset",
    "protocol/E10-transplant-bad-date-still-fails": "$.procedures[0].date",
    "protocol/I1-birth-date-invalid-unknown": "$.birth_date",
    "protocol/I7b-hemoglobin-unusable-most-recent-unknown": "$.observations[19].value",
    "semantics/age-birth-date-unusable": "$.birth_date",
    "semantics/bad-allergy-unreadable-onset-still-excludes": "$.conditions[1].onset",
    "semantics/bad-anchors-not-an-object": "$.anchors",
    "semantics/bad-condition-unreadable-onset-could-be-in-window": "$.conditions[1].onset",
    "semantics/bad-empty-id-patient-id-null": "$.id",
    "semantics/bad-empty-id": "$.id",
    "semantics/bad-facts-not-an-object": "$.facts",
    "semantics/bad-format-2": "$.format",
    "semantics/bad-half-life-wrong-type-ended-20-days": "$.treatments[1].half_life",
    "semantics/bad-half-life-wrong-type-ended-90-days": "$.treatments[1].half_life",
    "semantics/bad-missing-format": "$",
    "semantics/bad-missing-id": "$",
    "semantics/bad-observations-not-a-list": "$.observations",
    "semantics/bad-record-is-a-string": "$",
    "semantics/bad-record-is-an-array": "$",
    "semantics/bad-uln-wrong-type": "$.observations[18].uln",
    "semantics/bad-value-non-numeric-only-its-criterion": "$.observations[18].value",
    "semantics/missing-undated-qtcf-not-sex": "$.observations[19].date",
    "semantics/missing-undated-weight-could-be-latest": "$.observations[19].date",
    "semantics/overlap-condition-unusable-onset-end-in-window": "$.conditions[1].onset",
    "semantics/overlap-treatment-no-start-end-in-window": "$.treatments[1]",
    "semantics/overlap-treatment-unusable-start-end-before-window": "$.treatments[1].start",
    "semantics/overlap-treatment-unusable-start-end-in-window": "$.treatments[1].start",
    "semantics/overlap-treatment-unusable-start-ongoing": "$.treatments[1].start",
    "semantics/partial-liver-metastasis-unknown-both-limits-pass": "$.conditions[1].status",
    "semantics/partial-liver-metastasis-unknown-limits-disagree": "$.conditions[1].status",
    "semantics/recent-most-recent-value-is-a-string": "$.observations[19].value",
    "semantics/recent-older-unusable-not-selected": "$.observations[19].value",
    "semantics/recent-unusable-date-could-be-most-recent": "$.observations[19].date",
    "semantics/recent-unusable-date-every-placement-passes": "$.observations[19].date",
    "semantics/recent-unusable-date-no-window-criterion": "$.observations[19].date",
    "semantics/treatment-without-end-is-not-ongoing": "$.treatments[1]",
    "semantics/treatment-without-end-started-in-window": "$.treatments[1]",
    "protocol/E1-allergy-code-empty-unknown": "$.conditions[1].code",
    "protocol/E1-allergy-code-list-unknown": "$.conditions[1].code",
    "protocol/E1-allergy-code-missing-unknown": "$.conditions[1]",
    "protocol/E1-allergy-code-null-unknown": "$.conditions[1].code",
    "semantics/codeless-observation-could-be-latest-hemoglobin": "$.observations[19]",
    "semantics/codeless-observation-older-than-latest-changes-nothing": "$.observations[19].code",
    "semantics/codeless-resolved-condition-only-changes-rules-it-could": "$.conditions[1].code",
    "semantics/lloq-negative-unusable": "$.observations[19].lloq",
    "semantics/uln-negative-unusable": "$.observations[18].uln",
    "semantics/uln-zero-unusable": "$.observations[18].uln",
    "semantics/unknown-field-birthdate-warned-with-nearest": "$",
    "semantics/unknown-field-obsevations-warned": "$",
    "language/L2-a-fourth-lesion-of-unusable-status-could-count-unknown": "$.conditions[6].status",
    "language/L3-unusable-symptom-onset-unknown": "$.conditions[3].onset",
    "nct00711542/I1-symptom-onset-unusable-unknown": "$.conditions[0].onset",
    "nct00711542/I1-stent-date-unusable-unknown": "$.procedures[0].date",
    "nct05438667/I2-colorectal-cancer-second-line-with-unusable-start-unknown": "$.treatments[1].start",
    "nct05438667/I2-pancreatic-cancer-progression-date-unusable-unknown": "$.observations[17].date",
    "language/L1-a-second-therapy-with-an-unusable-end-could-count-unknown": "$.treatments[*].end",
    "language/L1-two-sure-therapies-decide-it-whatever-a-third-with-an-unusab": "$.treatments[*].end",
    "language/L4-adjuvant-end-unusable-with-a-progression-on-record-unknown": "$.treatments[*].end",
    "language/L13-a-second-drug-whose-classes-are-unusable-unknown": "$.treatments[*].classes",
    "language/L5-surgery-with-an-unusable-date-unknown": "$.procedures[1].date",
    "language/L8-half-life-unusable-is-not-known-21-days-applies": "$.treatments[*].half_life.value",
}

# every suite of data cases: SM3321's (tests/cases, with suites of their own rules inside) and
# each example trial's (examples/*/cases)
SUITES = [CASES, *sorted((ROOT / "examples").glob("*/cases"))]
CASE_FILES = sorted(p for s in SUITES for p in s.rglob("*.json") if not {"_base", "_rules"} & set(p.parts))
EXAMPLE_RECORDS = sorted([*(ROOT / "examples").glob("*/*.json"), *(ROOT / "examples").glob("*/cases/_base/*.json"),
                          *CASES.rglob("_base/*.json"), *(ROOT / "tests" / "contract").glob("*.record.json")])


def _name(p):
    """protocol/E1-..., language/L1-..., nct00711542/I1-... (an example's cases by its trial)."""
    return f"{p.parent.parent.name if p.parent.name == 'cases' else p.parent.name}/{p.stem}"


def _record(p):
    case = json.loads(p.read_text(encoding="utf-8"))
    base = next(d / "_base" for d in p.parents if (d / "_base").is_dir())
    return build_record(case, base)


def test_the_schemas_are_valid_and_shipped_as_package_data():
    import jsonschema

    for name in (schemas.RECORD, schemas.RESULT):
        doc = schemas.load(name)
        jsonschema.validators.validator_for(doc).check_schema(doc)
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert '"compiler.schemas"' in text and '"compiler.schemas" = ["*.json"]' in text


@pytest.mark.parametrize("path", EXAMPLE_RECORDS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_example_record_is_valid(path):
    assert schemas.problems(json.loads(path.read_text(encoding="utf-8"))) == []


def test_the_jsonl_examples_are_valid():
    for name in ("patients.jsonl",):
        for line in (ROOT / "examples" / "sm3321" / name).read_text(encoding="utf-8").splitlines():
            assert schemas.problems(json.loads(line)) == []


def test_every_test_record_is_valid_unless_it_is_bad_on_purpose():
    wrong = []
    seen = set()
    for p in CASE_FILES:
        problems = schemas.problems(_record(p))
        where = DELIBERATELY_BAD.get(_name(p))
        if where is None and problems:
            wrong.append(f"{_name(p)}: valid by intent, but {problems}")
        elif where is not None:
            seen.add(_name(p))
            pattern = re.compile(re.escape(where).replace(r"\[\*\]", r"\[\d+\]") + ":")
            if not any(pattern.match(pr) for pr in problems):
                wrong.append(f"{_name(p)}: should be invalid at {where}, got {problems}")
    assert not wrong, "\n".join(wrong)
    assert seen == set(DELIBERATELY_BAD), set(DELIBERATELY_BAD) - seen
    assert len(CASE_FILES) - len(seen) > 400


def test_every_result_is_valid(sm3321):
    """Results of the test records, the error results of the bad ones and the contract's own
    example results all have result format 1."""
    bad = []
    for p in (p for p in CASE_FILES if p.is_relative_to(CASES)):  # the examples' results: test_example_cases
        result = sm3321.evaluate(_record(p))
        problems = schemas.problems(result, schemas.RESULT)
        if problems:
            bad.append(f"{_name(p)}: {problems[:3]}")
    for p in sorted((ROOT / "tests" / "contract").glob("*.result.json")):
        problems = schemas.problems(json.loads(p.read_text(encoding="utf-8")), schemas.RESULT)
        if problems:
            bad.append(f"{p.name}: {problems[:3]}")
    for text in ("not json", "[1, 2]", '{"format": 1}'):
        result = sm3321.evaluate_json(text)
        assert result["status"] == "error"
        assert schemas.problems(result, schemas.RESULT) == []
    assert not bad, "\n".join(bad)


def test_messages_name_the_json_path_and_the_nearest_field():
    rec = json.loads((ROOT / "examples" / "sm3321" / "patient.json").read_text(encoding="utf-8"))
    rec["birthdate"] = rec.pop("birth_date")
    rec["observations"][0]["value"] = "12,5"
    rec["observations"][3]["uln"] = 0
    rec["observations"][1]["date"] = "2026-02-30"
    rec["conditions"][0].pop("code")
    assert schemas.problems(rec) == [
        '$: "birthdate" is not a field of format 1 (did you mean "birth_date"?)',
        '$.conditions[0]: "code" is required',
        '$.observations[0].value: "12,5" is not a number or a named result ("positive", "negative", ...)',
        '$.observations[1].date: "2026-02-30" is not a calendar date',
        '$.observations[3].uln: 0 is not greater than 0',
    ]


def _elig(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "compiler.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, input=stdin, timeout=120)


def test_elig_evaluate_validate_reports_each_record_with_its_path(tmp_path):
    good = json.loads((ROOT / "examples" / "sm3321" / "patient.json").read_text(encoding="utf-8"))
    bad = dict(good, id="SCR-9", obsevations=[])
    feed = tmp_path / "feed.jsonl"
    feed.write_text("\n".join([json.dumps(good), json.dumps(bad), "{not json", json.dumps(good)]) + "\n")
    proc = _elig("evaluate", "--validate", str(feed))
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert lines == [
        f'{feed}: record 2 (SCR-9): $: "obsevations" is not a field of format 1 (did you mean "observations"?)',
        f"{feed}: record 3: $: not JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))",
    ]
    assert proc.stderr == f"{feed}: 2 of 4 records valid (patient-record format 1)\n"
    ok = _elig("evaluate", "--validate", "-", stdin=json.dumps(good))
    assert ok.returncode == 0 and ok.stdout == "-: 1 of 1 record valid (patient-record format 1)\n"


def test_elig_evaluate_validate_on_an_unreadable_stream_is_a_clear_error(tmp_path):
    feed = tmp_path / "feed.json"
    feed.write_text('[{"format": 1, "id": "a"},')
    proc = _elig("evaluate", "--validate", str(feed))
    # an unfinished array on one line is one line that is not a record (docs/io.md): invalid
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "0 of 1 record valid" in proc.stderr and "not JSON" in proc.stdout


def test_the_annotated_record_of_docs_records_md_is_valid():
    import re

    text = (ROOT / "docs" / "records.md").read_text(encoding="utf-8")
    block = re.search(r"```jsonc\n(.*?)```", text, re.S).group(1)
    doc = json.loads(re.sub(r"//[^\n]*", "", block))
    assert schemas.problems(doc) == []
    assert doc["id"] == "SCR-0001"


def test_validate_stream_refuses_nan_and_infinity():
    texts = ['{"format": 1, "id": "a", "observations": [{"code": "x", "value": NaN, "date": "2026-01-01"}]}',
             '{"format": 1, "id": "b", "observations": [{"code": "x", "value": -Infinity, "date": "2026-01-01"}]}',
             '{"format": 1, "id": "c"}']
    got = list(schemas.validate_stream(texts))
    assert got == [(1, None, ["$: not JSON (NaN is not a JSON number)"]),
                   (2, None, ["$: not JSON (-Infinity is not a JSON number)"]),
                   (3, "c", [])]
