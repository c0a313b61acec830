"""Patient data: nothing in a record crashes the evaluator or is silently dropped (issue 5).

* Hypothesis: `evaluate` of the compiled SM3321 module never raises for any JSON value at all,
  nor for mutated valid records, and the result always has the result-format-1 shape.
* A batch of 100,000 records with a few percent corrupted (the cohort generator's corruption
  plus lines corrupted here) through `elig evaluate --module` as a subprocess: exactly one
  result per input line, in order, with the line's id where the line is a readable record.
"""

from __future__ import annotations

import copy
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import CASES, ROOT

sys.path.insert(0, str(ROOT))
from benchmarks.cohort import generate  # noqa: E402

STATUSES = {"eligible", "ineligible", "indeterminate", "error"}
OUTCOMES = {"pass", "fail", "unknown", "review"}
BASE = json.loads((CASES / "_base" / "baseline.json").read_text(encoding="utf-8"))

# ---------------------------------------------------------------------- the result shape


def _huge_int_in(x) -> bool:
    if isinstance(x, bool):
        return False
    if isinstance(x, int):
        return abs(x) > 1.7e308
    if isinstance(x, dict):
        return any(_huge_int_in(v) for v in x.values())
    if isinstance(x, list):
        return any(_huge_int_in(v) for v in x)
    return False


def _internal_error(reason: str, record) -> bool:
    """An 'internal error' of the evaluator: never acceptable (a formula over a number beyond float
    range was one, tests/test_differential.py::test_fixed_huge_weight_is_an_internal_error)."""
    return "internal error" in reason


def assert_result_shape(result, record, module):
    """Result format 1 (docs/records.md), for the record it came from."""
    assert isinstance(result, dict), type(result)
    assert result.get("format") == 1
    assert result.get("status") in STATUSES, result.get("status")
    json.dumps(result, allow_nan=False)  # plain JSON: no NaN, no non-JSON objects
    rid = record.get("id") if isinstance(record, dict) else None
    if result["status"] == "error":
        assert isinstance(result.get("error"), str) and result["error"].strip(), result
        assert "internal error" not in result["error"], result["error"]
        assert result["patient_id"] is None or isinstance(result["patient_id"], str)
        if isinstance(rid, str) and rid.strip():
            assert result["patient_id"] == rid
        else:
            assert result["patient_id"] is None  # no id, or an empty one: nothing to echo
        return
    assert isinstance(record, dict) and result["patient_id"] == rid
    assert result.get("trial") == module.TRIAL["id"]
    crit = result.get("criteria")
    assert isinstance(crit, list) and [c.get("id") for c in crit] == [m["id"] for m in module.CRITERIA]
    for c, meta in zip(crit, module.CRITERIA):
        assert {"id", "ref", "kind", "outcome", "reason", "missing"} <= set(c), c
        assert c["ref"] == meta["ref"] and c["kind"] == meta["kind"]
        assert c["outcome"] in OUTCOMES, c
        assert isinstance(c["reason"], str) and c["reason"].strip(), c
        assert not _internal_error(c["reason"], record), c
        assert isinstance(c["missing"], list) and all(isinstance(m, str) for m in c["missing"]), c
        if c["outcome"] != "unknown":
            assert c["missing"] == [], c
    outcomes = [c["outcome"] for c in crit]
    want = "ineligible" if "fail" in outcomes else ("eligible" if all(o == "pass" for o in outcomes) else "indeterminate")
    assert result["status"] == want
    assert isinstance(result.get("warnings"), list) and all(isinstance(w, str) for w in result["warnings"])


# ---------------------------------------------------------------------- strategies

KEYS = ["format", "id", "sex", "birth_date", "anchors", "observations", "conditions", "treatments", "procedures",
        "facts", "code", "value", "unit", "date", "uln", "lln", "lloq", "onset", "end", "status", "attributes",
        "classes", "start", "half_life", "daily_dose", "route", "purpose", "screening", "enrollment", "first_dose",
        "hemoglobin", "solid_tumor", "chemotherapy", "radiotherapy", "informed_consent", "grade", "fractions"]
STRINGS = ["", " ", "1", "2026-01-15", "2026-02-30", "2026-13-01", "0000-01-01", "9999-12-31", "2026-1-5",
           "２０２６-０１-１５", "2026-01-15T00:00:00", "male", "female", "positive", "negative", "g/L", "g/dL", "mmol/L",
           "10*9/L", "[degF]", "Cel", "IU/mL", "mg", "d", "h", "mo", "active", "resolved", "hemoglobin", "solid_tumor",
           "cns_metastasis", "chemotherapy", "systemic_corticosteroid", "dexamethasone", "radiotherapy",
           "informed_consent", "investigator_approval", "NaN", "Infinity", "1e400", "9" * 50, "\x00", "\ud800",
           "\u202e", "é", "\U0001F600"]
NUMBERS = st.one_of(
    st.integers(),
    st.integers(min_value=-(10 ** 400), max_value=10 ** 400),
    st.sampled_from([0, -0.0, 1, 2 ** 63, -(2 ** 63) - 1, 10 ** 1000, 1e308, 5e-324, -1e308]),
    st.floats(),  # includes nan and +-inf
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, st.text(max_size=20), st.sampled_from(STRINGS))
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), inner, max_size=6),
    ),
    max_leaves=25,
)

SETTINGS = settings(deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _n(examples: int) -> int:
    return max(1, int(examples * float(os.environ.get("ELIG_FUZZ_SCALE", "1"))))


@pytest.mark.slow
@settings(SETTINGS, max_examples=_n(250))
@given(JSON)
def test_evaluate_never_raises_for_any_json_value(sm3321, value):
    assert_result_shape(sm3321.evaluate(value), value, sm3321)


@pytest.mark.slow
@settings(SETTINGS, max_examples=_n(150))
@given(st.dictionaries(st.sampled_from(KEYS), JSON, max_size=12), st.sampled_from([1, 1, 1, 2, "1", None, True, 1.0]),
       st.one_of(st.text(max_size=10), JSON))
def test_evaluate_never_raises_for_any_record_shaped_object(sm3321, fields, fmt, pid):
    record = dict(fields)
    record["format"] = fmt
    record["id"] = pid
    assert_result_shape(sm3321.evaluate(record), record, sm3321)


def _cohort_records(n=40, seed=5):
    return [r for r in generate(n, seed=seed) if isinstance(r, dict)]


BASES = [BASE] + _cohort_records()
LIST_FIELDS = ("observations", "conditions", "treatments", "procedures")
OBJECT_FIELDS = ("facts", "anchors")


@st.composite
def mutated_records(draw):
    rec = copy.deepcopy(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(1, 8))):
        where = draw(st.sampled_from(LIST_FIELDS + OBJECT_FIELDS + ("top",)))
        how = draw(st.sampled_from(("delete", "replace", "replace_field", "insert", "whole")))
        if where == "top":
            key = draw(st.sampled_from(["sex", "birth_date", "format", "id", "anchors", "facts"] + list(LIST_FIELDS)))
            if how == "delete":
                rec.pop(key, None)
            elif key not in ("format", "id") or draw(st.integers(0, 9)) == 0:
                rec[key] = draw(JSON)
        elif where in LIST_FIELDS:
            items = rec.get(where)
            if not isinstance(items, list):
                continue
            if how == "whole":
                rec[where] = draw(JSON)
            elif how == "insert":
                items.insert(draw(st.integers(0, len(items))), draw(JSON))
            elif items:
                i = draw(st.integers(0, len(items) - 1))
                if how == "delete":
                    del items[i]
                elif how == "replace" or not isinstance(items[i], dict):
                    items[i] = draw(JSON)
                else:  # one field of an item: deleted or replaced with arbitrary JSON
                    keys = sorted(items[i]) + ["value", "unit", "date", "uln", "classes", "attributes", "half_life"]
                    k = draw(st.sampled_from(keys))
                    if draw(st.booleans()):
                        items[i].pop(k, None)
                    else:
                        items[i][k] = draw(JSON)
        else:
            obj = rec.get(where)
            if not isinstance(obj, dict):
                continue
            if how == "whole":
                rec[where] = draw(JSON)
            elif how == "delete" and obj:
                obj.pop(draw(st.sampled_from(sorted(obj))), None)
            else:
                key = draw(st.one_of(st.sampled_from(sorted(obj) or ["screening"]), st.text(max_size=6)))
                obj[key] = draw(JSON)
    return rec


@pytest.mark.slow
@settings(SETTINGS, max_examples=_n(300))
@given(mutated_records())
def test_mutated_valid_records_give_well_formed_results(sm3321, record):
    result = sm3321.evaluate(record)
    assert_result_shape(result, record, sm3321)
    # the same record as JSON text, as the batch reads it
    text = json.dumps(record, allow_nan=True)
    assert_result_shape(sm3321.evaluate_json(text), json.loads(text), sm3321)


@pytest.mark.parametrize("text", [
    "", " ", "null", "[]", "{}", "[{}]", '"x"', "1e400", "NaN", "-Infinity", "{", '{"format": 1, "id": "a",}',
    "[" * 100000 + "]" * 100000, '{"a":' * 50000 + "1" + "}" * 50000, "\ufeff{}", '{"format": 1, "id": "\\ud800"}',
    '{"format": 1, "id": "a", "observations": [{"code": "hemoglobin", "value": 1' + "0" * 5000 + "}]}",
    '{"format": 1, "id": "a", "birth_date": "2026-02-30", "anchors": {"screening": "２０２６-０１-０５"}}',
])
def test_evaluate_json_never_raises(sm3321, text):
    r = sm3321.evaluate_json(text)
    assert r["format"] == 1 and r["status"] in STATUSES
    json.dumps(r)
    if r["status"] == "error":
        assert r["error"]


def test_a_valid_record_with_defects_inside_items_is_still_evaluated(sm3321):
    """Unusable fields make the criteria that read them unknown; they never make the record an error."""
    rec = copy.deepcopy(BASE)
    rec["observations"][0]["value"] = float("nan")
    rec["observations"][1]["value"] = 10 ** 400
    rec["observations"][2]["unit"] = "furlongs"
    rec["observations"][3]["date"] = "2026-02-30"
    rec["conditions"][0]["attributes"] = "not an object"
    rec["treatments"][0]["half_life"] = {"value": "long", "unit": "d"}
    rec["facts"]["informed_consent"] = "yes"
    r = sm3321.evaluate(rec)
    assert_result_shape(r, rec, sm3321)
    assert r["status"] == "ineligible" or r["status"] == "indeterminate"
    by_id = {c["id"]: c for c in r["criteria"]}
    assert by_id["hemoglobin"]["outcome"] == "unknown"
    assert by_id["informed_consent"]["outcome"] == "unknown"


# ---------------------------------------------------------------------- 100,000 records through the CLI

N_RECORDS = 100_000
OWN_CORRUPTION_EVERY = 97  # about 1 % of lines, on top of the generator's 3 %


def _own_corruptions(rng: random.Random, line: str, idx: int) -> str:
    """Corruptions of a valid record's JSON line (the record's index is idx)."""
    kind = rng.randrange(14)
    if kind == 0:
        return line[: rng.randrange(1, len(line) - 1)]  # truncated
    if kind == 1:
        return line.replace('"value":', '"value":NaN,"x":', 1)
    if kind == 2:
        return line.replace('"value":', '"value":Infinity,"x":', 1)
    if kind == 3:
        return line.replace('"value":', '"value":1e400,"x":', 1)
    if kind == 4:
        return line.replace('"value":', '"value":' + "7" * 400 + ',"x":', 1)
    if kind == 5:
        return line.replace('"value":', '"value":-' + "3" * 4000 + ',"x":', 1)
    if kind == 6:
        return line.replace('"date":"', '"date":"2026-02-30","x":"', 1)
    if kind == 7:
        return line.replace('"code":"', '"code":"no_such_code","x":"', 1)
    if kind == 8:
        return line.replace('"unit":"', '"unit":"furlong/fortnight","x":"', 1)
    if kind == 9:
        return line.replace('"first_dose":"', '"first_dose":"2026-13-45","x":"', 1)
    if kind == 10:
        return line.replace('"observations":', '"observations":{"a":1},"x":', 1)
    if kind == 11:
        return "[" * 2000 + "]" * 2000
    if kind == 12:
        return '{"format":1,"id":"OWN-%d","observations":[' % idx + '{"code":"hemoglobin"},' * 3 + "1e999]}"
    return line[:-1] + ',"extra":' + "[" * 50 + "]" * 50 + "}"


def _write_batch(path: Path, seed: int) -> list:
    """Write the batch; return per line the expected patient_id (or None) and whether it must not be an error."""
    rng = random.Random(seed)
    expect = []
    enc = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        # the first record is a clean one (a first line that is a JSON array is read as an array)
        for i, rec in enumerate(generate(N_RECORDS, seed=seed, corrupt_rate=0.03)):
            if i == 0 and isinstance(rec, str):
                rec = next(r for r in generate(50, seed=seed + 1) if isinstance(r, dict))
            if isinstance(rec, dict):
                line = enc(rec)
                if i and i % OWN_CORRUPTION_EVERY == 0:
                    line = _own_corruptions(rng, line, i)
                    expect.append(_expected(line))
                else:
                    expect.append((rec["id"], True))
            else:
                line = rec
                expect.append(_expected(line))
            assert "\n" not in line and line.strip()
            f.write(line + "\n")
    return expect


def _int_any_size(text: str):
    return int(text) if len(text.lstrip("-")) <= 4300 else float("inf")  # beyond Python's int-string limit: still JSON


def _expected(line: str):
    """(patient_id the result must carry, whether it must be a non-error result)."""
    try:
        obj = json.loads(line, parse_int=_int_any_size)
    except (ValueError, RecursionError):
        return None, False
    if isinstance(obj, dict) and isinstance(obj.get("id"), str) and obj["id"].strip():
        return obj["id"], False
    return None, False


@pytest.fixture(scope="module")
def module_file(compiled, tmp_path_factory) -> Path:
    """The SM3321 evaluator as the compiler builds it now (generated/ may lag behind)."""
    path = tmp_path_factory.mktemp("module") / "sm3321.py"
    path.write_text(compiled.python, encoding="utf-8")
    return path


@pytest.mark.slow
def test_100k_records_through_elig_evaluate_one_result_per_line_in_order(tmp_path, sm3321, module_file):
    path = tmp_path / "batch.jsonl"
    expect = _write_batch(path, seed=3321)
    assert len(expect) == N_RECORDS
    out_path = tmp_path / "results.jsonl"
    module = module_file
    with open(out_path, "wb") as out:
        proc = subprocess.run([sys.executable, "-m", "compiler.cli", "evaluate", "--module", str(module), str(path)],
                              cwd=ROOT, stdout=out, stderr=subprocess.PIPE, timeout=900)
    assert proc.returncode == 0, proc.stderr.decode("utf-8", "replace")[-3000:]
    assert b"Traceback" not in proc.stderr
    n = 0
    errors = 0
    with open(out_path, "rb") as f:
        for n, (raw, (pid, must_be_ok)) in enumerate(zip(f, expect), start=1):
            result = json.loads(raw.decode("utf-8"))  # strict UTF-8, one JSON value per line
            assert result["format"] == 1 and result["status"] in STATUSES, (n, result)
            if result["status"] == "error":
                errors += 1
                assert not must_be_ok, (n, result)
                assert isinstance(result["error"], str) and result["error"], (n, result)
                assert "internal error" not in result["error"], (n, result)
            assert result["patient_id"] == pid, (n, pid, result.get("patient_id"), result.get("error"))
            if result["status"] != "error":
                assert len(result["criteria"]) == len(sm3321.CRITERIA)
                assert not any("internal error" in c["reason"] for c in result["criteria"]), (n, result)
        assert f.read() == b"", "more results than input lines"
    assert n == N_RECORDS, f"{n} results for {N_RECORDS} lines"
    assert 0.02 * N_RECORDS < errors < 0.08 * N_RECORDS, errors


# ---------------------------------------------------------------------- defects found (fixed since)


def _run_cli(tmp_path: Path, lines: list[str], module: Path) -> tuple[subprocess.CompletedProcess, list]:
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"".join((l if isinstance(l, bytes) else l.encode("utf-8")) + b"\n" for l in lines))
    proc = subprocess.run([sys.executable, "-m", "compiler.cli", "evaluate", "--module", str(module), str(path)],
                          cwd=ROOT, capture_output=True, timeout=120)
    results = [json.loads(l.decode("utf-8")) for l in proc.stdout.split(b"\n") if l.strip()]
    return proc, results


def _good(pid: str) -> str:
    rec = copy.deepcopy(BASE)
    rec["id"] = pid
    return json.dumps(rec)


def test_fixed_lone_surrogate_in_an_id_crashes_the_batch(tmp_path, module_file):
    """Found by these tests, fixed while they were written (kept as a regression test): batch crash: a
    record whose id holds a lone surrogate (JSON escape \\ud800) makes `elig evaluate` die with
    UnicodeEncodeError ('surrogates not allowed') when batch.run writes the result
    (json.dumps(ensure_ascii=False) then a UTF-8 stream); exit status 1 with a traceback and every later
    record lost"""
    proc, results = _run_cli(tmp_path, [_good("A"), '{"format": 1, "id": "\\ud800x"}', _good("C")], module_file)
    assert b"Traceback" not in proc.stderr and proc.returncode == 0, proc.stderr[-500:]
    assert [r["patient_id"] for r in results][::2] == ["A", "C"] and len(results) == 3


def test_fixed_invalid_utf8_input_gives_invalid_utf8_output(tmp_path, module_file):
    """Found by these tests, fixed while they were written (kept as a regression test): batch output not
    UTF-8: input bytes that are not UTF-8 (read with errors='surrogateescape') come back in the result
    (patient_id) as raw invalid bytes in a C.UTF-8 locale (or crash the batch with UnicodeEncodeError in
    a strict UTF-8 locale); a result line must be valid UTF-8 JSON"""
    path_lines = [_good("A").encode(), b'{"format": 1, "id": "\xff\xfe"}', _good("C").encode()]
    proc, results = _run_cli(tmp_path, path_lines, module_file)
    assert proc.returncode == 0
    assert len(results) == 3  # json.loads(bytes.decode('utf-8')) above raises on invalid output


def test_fixed_first_line_array_drops_the_rest_of_a_jsonl_batch(tmp_path, module_file):
    """Found by these tests, fixed while they were written (kept as a regression test): records silently
    dropped: a JSON Lines file whose first line is a JSON array (a corrupted record such as `[1,2]`) is
    read as one JSON array: its elements become records and every later line is dropped without an error
    (exit 0). Input `[1,2]\\n{record B}\\n{record C}` gives 2 results, not 3"""
    proc, results = _run_cli(tmp_path, ["[1,2]", _good("B"), _good("C")], module_file)
    assert proc.returncode == 0
    assert [r["patient_id"] for r in results] == [None, "B", "C"], [(r["patient_id"], r["status"]) for r in results]


def test_fixed_5000_digit_number_makes_a_valid_record_unreadable(sm3321):
    """Found by these tests, fixed while they were written (kept as a regression test): a valid JSON record
    is refused as 'not JSON': an observation value with more than 4300 digits exceeds Python's
    int-string limit in json.loads, so the whole record becomes an error result with patient_id null
    ("not JSON: Exceeds the limit (4300 digits) ...") instead of being evaluated with that value
    unusable (docs/records.md: a value that is not a number makes that field unusable)"""
    rec = copy.deepcopy(BASE)
    text = json.dumps(rec).replace('"value": 125', '"value": 1' + "0" * 5000, 1)
    r = sm3321.evaluate_json(text)
    assert r["status"] != "error", r.get("error")
    assert r["patient_id"] == BASE["id"]
