"""The SQL backend on a real DuckDB against the Python evaluator: status, outcome per criterion and
`missing` must be equal on every record (tests/cases, the benchmark cohort, fuzzed unusable items),
and the loader, `elig screen` and `elig load` keep the batch contract (one result per record, in
order, errors included)."""

import copy
import json
import os
import random
import subprocess
import sys
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import pytest

from conftest import CASES, ROOT, build_record

sys.path.insert(0, str(ROOT / "benchmarks"))

import cohort  # noqa: E402

duckdb = pytest.importorskip("duckdb")

from compiler import ir as I  # noqa: E402
from compiler.lower import LoweredModule  # noqa: E402,F401
from compiler.sql import loader, screen  # noqa: E402
from compiler.sql.relational import build as build_rel  # noqa: E402
from compiler.sql.script import SqlCompileError, build  # noqa: E402

ELIG = [sys.executable, "-m", "compiler.cli"]


def sql_results(compiled, sm3321, texts, tmp_path, name="in.jsonl", only=None, database=":memory:",
                relational=True):
    """The SQL results of the records ``texts`` (loaded as `elig load` does), by the relational
    script or (``relational`` false) the lambda form."""
    path = tmp_path / name
    path.write_text("".join(t + "\n" for t in texts), encoding="utf-8")
    con = screen.connect(str(database), threads=2, memory_limit="2GB")
    loader.load_jsonl(con, str(path))
    script = screen.prepare_script(compiled.program, compiled.lowered, only=only, relational=relational)
    screen.run_script(con, compiled.program, sm3321, script)
    out = [json.loads(r) for r in screen.results(con)]
    con.close()
    return out


def assert_sql_equals_python(compiled, module, texts, tmp_path, crits, name="in.jsonl", relational=True):
    """The SQL results of ``texts`` for the criteria ``crits`` (sql_results) equal the evaluator
    module's (outcomes, missing codes, errors); returns the SQL results."""
    sqls = sql_results(compiled, module, texts, tmp_path, name=name, only=set(crits), relational=relational)
    pys = only_criteria([module.evaluate_json(t) for t in texts], crits)
    diffs = status_free_diffs(pys, sqls)
    assert not diffs, (relational, "\n".join(map(str, diffs[:20])))
    return sqls


def assert_every_outcome(sqls, crits):
    """Each criterion of ``crits`` reached pass, fail and unknown in the results ``sqls``."""
    seen = {(c["id"], c["outcome"]) for r in sqls for c in r["criteria"]}
    for cid in crits:
        assert {(cid, "pass"), (cid, "fail"), (cid, "unknown")} <= seen, (cid, sorted(o for i, o in seen if i == cid))


def status_free_diffs(pys, sqls):
    """compare_subset of the results without their status (a subset of the criteria has none of
    its own), error results kept whole; the results are changed in place."""
    for r in pys + sqls:
        if r.get("status") != "error":
            r.pop("status", None)
    return compare_subset(pys, sqls)


# the cheap-to-plan criteria screened in the fast suite (planning all 44 takes DuckDB tens of
# seconds on this machine; the whole trial runs in the `slow` tests below)
FAST = ("age_18_or_over", "confirmed_advanced_solid_tumor", "hemoglobin", "bilirubin_limit", "informed_consent",
        "anticancer_washout", "recent_radiotherapy", "cns_disease", "active_hepatitis_b", "standard_therapy_exhausted")


def only_criteria(results, ids):
    out = []
    for r in results:
        if r.get("status") == "error":
            out.append(r)
            continue
        r = dict(r)
        r["criteria"] = [c for c in r["criteria"] if c["id"] in ids]
        out.append(r)
    return out


@pytest.fixture(scope="session")
def corpus():
    """Every input of the differential tests, in one batch: the cases, cohort records (some
    corrupted), fuzzed unusable items, bad lines and limits at exactly their value."""
    parts = {"cases": _case_texts(), "cohort": list(cohort._lines(800, 3321, 0.02)),
             "fuzz": _fuzz_texts(), "bad": list(BAD_LINES), "exact": _exact_texts()}
    return parts


@pytest.fixture(scope="session")
def screened_all(compiled, sm3321, corpus, tmp_path_factory):
    texts = [t for part in corpus.values() for t in part]
    res = sql_results(compiled, sm3321, texts, tmp_path_factory.mktemp("sqlall"))
    out, i = {}, 0
    for k, part in corpus.items():
        out[k] = res[i:i + len(part)]
        i += len(part)
    return out


@pytest.fixture(scope="session")
def screened_fast(compiled, sm3321, corpus, tmp_path_factory):
    texts = [t for part in corpus.values() for t in part]
    res = sql_results(compiled, sm3321, texts, tmp_path_factory.mktemp("sqlfast"), only=FAST)
    out, i = {}, 0
    for k, part in corpus.items():
        out[k] = res[i:i + len(part)]
        i += len(part)
    return out


def compare(pys, sqls):
    """Differences (id, criterion, python, sql) of status, outcome and missing."""
    assert len(pys) == len(sqls)
    diffs = []
    for py, sq in zip(pys, sqls):
        if py["status"] == "error" or sq["status"] == "error":
            if py["status"] != sq["status"] or py.get("patient_id") != sq.get("patient_id"):
                diffs.append((py.get("patient_id"), "status", py.get("error") or py["status"], sq.get("error") or sq["status"]))
            continue
        if py["patient_id"] != sq["patient_id"] or py["status"] != sq["status"]:
            diffs.append((py["patient_id"], "status", py["status"], sq["status"]))
        for a, b in zip(py["criteria"], sq["criteria"]):
            assert a["id"] == b["id"]
            if (a["outcome"], a["missing"]) != (b["outcome"], b["missing"]):
                diffs.append((py["patient_id"], a["id"], (a["outcome"], a["missing"], a["reason"][:200]), (b["outcome"], b["missing"])))
    return diffs


def _case_texts():
    texts = []
    for p in sorted(CASES.rglob("*.json")):
        if p.parent.name == "_base":
            continue
        case = json.loads(p.read_text(encoding="utf-8"))
        texts.append(json.dumps(build_record(case)))
    return texts


# the tests of screened_fast on one pytest-xdist worker: the session fixture (one DuckDB run of
# the corpus, about 2 s) is then built once, not once per worker
SCREENED_FAST = pytest.mark.xdist_group("screened_fast")


@SCREENED_FAST
@pytest.mark.parametrize("part", ["cases", "cohort", "fuzz", "bad", "exact"])
def test_fast_criteria_equal_python(part, corpus, screened_fast, sm3321):
    pys = only_criteria([sm3321.evaluate_json(t) for t in corpus[part]], FAST)
    for p in pys:  # the status of a subset is not the patient's status
        p.pop("status", None) if p.get("status") != "error" else None
    sqls = [dict(r) for r in screened_fast[part]]
    for q in sqls:
        q.pop("status", None) if q.get("status") != "error" else None
    diffs = compare_subset(pys, sqls)
    assert not diffs, "\n".join(map(str, diffs[:20]))


@pytest.mark.slow
@pytest.mark.parametrize("part", ["cases", "cohort", "fuzz", "bad", "exact"])
def test_all_criteria_equal_python(part, corpus, screened_all, sm3321):
    pys = [sm3321.evaluate_json(t) for t in corpus[part]]
    diffs = compare(pys, screened_all[part])
    assert not diffs, "\n".join(map(str, diffs[:20]))


def compare_subset(pys, sqls):
    out = []
    for py, sq in zip(pys, sqls):
        py = dict(py)
        sq = dict(sq)
        if "status" not in py and "status" not in sq:
            py["status"] = sq["status"] = "subset"
        out += compare([py], [sq])
    return out


# CI runs 25,000 records (the slow suite must stay within CI's time); ELIG_SQL_COHORT=100000 runs
# the benchmark cohort of the issue (passed on 7 December 2026: all 100,000 equal)
SQL_COHORT = int(os.environ.get("ELIG_SQL_COHORT", "25000"))


@pytest.mark.slow
def test_cohort_equal_python(compiled, sm3321, tmp_path):
    """SQL_COHORT cohort records (25,000 by default, 100,000 with ELIG_SQL_COHORT=100000), all 44
    criteria, in a database file that may spill to disk as `elig screen` uses, under a 2 GB
    memory limit, in chunks of a third of them (so that the chunked input is tested too): every
    result equal to the Python evaluator's, compared as they stream (neither side is held in
    memory whole)."""
    path = tmp_path / "cohort.jsonl"
    n = cohort.write_jsonl(str(path), SQL_COHORT, seed=7, corrupt_rate=0.01)
    con = screen.connect(str(tmp_path / "work.duckdb"), threads=2, memory_limit="2GB")
    assert loader.load_jsonl(con, str(path)) == n
    script = screen.prepare_script(compiled.program, compiled.lowered)
    screen.run_script(con, compiled.program, sm3321, script, chunk=max(1, SQL_COHORT // 3 + 1))
    diffs, count = [], 0
    with open(path, encoding="utf-8") as f:
        for line, text in zip(f, screen.results(con, batch=5000)):
            count += 1
            diffs += compare([sm3321.evaluate_json(line)], [json.loads(text)])
            if len(diffs) > 20:
                break
    con.close()
    assert not diffs, "\n".join(map(str, diffs[:20]))
    assert count == n


# ---------------------------------------------------------------------- fuzzed unusable items

_ODD = [None, "", "x", "12.5", True, False, [], {}, -1, 0, 1.5, 1e300, "2026-02-30", "2026-1-5", "0000-01-01",
        "2026-01-10", 7, "mg", "g/dL", "10^9/L", "wk", {"value": 3, "unit": "d"}, ["chemotherapy"], [1]]


def _odd(rng: random.Random):
    return copy.deepcopy(rng.choice(_ODD))


def _spoil(rng: random.Random, rec: dict) -> dict:
    rec = copy.deepcopy(rec)
    for _ in range(rng.randint(1, 6)):
        field = rng.choice(["observations", "conditions", "treatments", "procedures", "facts", "anchors", "top"])
        if field == "top":
            rec[rng.choice(["sex", "birth_date"])] = _odd(rng)
            continue
        items = rec.get(field)
        if field in ("facts", "anchors"):
            if isinstance(items, dict) and items:
                k = rng.choice(sorted(items))
                items[k] = _odd(rng)
            continue
        if not isinstance(items, list) or not items:
            continue
        i = rng.randrange(len(items))
        it = items[i]
        if not isinstance(it, dict):
            continue
        if rng.random() < 0.1:
            items[i] = _odd(rng)
            continue
        keys = sorted(it) + ["end", "uln", "unit", "status", "attributes", "half_life", "daily_dose", "classes"]
        k = rng.choice(keys)
        if rng.random() < 0.2:
            it.pop(k, None)
        else:
            it[k] = _odd(rng)
        if isinstance(it.get("attributes"), dict) and it["attributes"] and rng.random() < 0.5:
            a = rng.choice(sorted(it["attributes"]))
            it["attributes"][a] = _odd(rng)
    return rec


def _fuzz_texts():
    rng = random.Random(12)
    base = [r for r in cohort.generate(250, seed=99) if isinstance(r, dict)]
    return [json.dumps(_spoil(rng, r)) for r in base for _ in range(3)]


# ---------------------------------------------------------------------- bad input, exactness

BAD_LINES = [
    "not json at all",
    "[1, 2]",
    '"a string"',
    "42",
    "null",
    '{"format": 1}',
    '{"format": 1, "id": ""}',
    '{"format": 1, "id": "   "}',
    '{"format": 1, "id": 7}',
    '{"format": 2, "id": "A"}',
    '{"format": "1", "id": "A"}',
    '{"id": "A"}',
    '{"format": 1, "id": "A", "observations": {}}',
    '{"format": 1, "id": "A", "facts": []}',
    '{"format": 1, "id": "A", "anchors": null}',
    '{"format": 1.0, "id": "B"}',
    '{"format": 1, "id": "C", "observations": [1, "x", {"code": 5}]}',
]


def test_chunks_and_one_worker_give_the_same_results(compiled, sm3321, corpus, tmp_path):
    """The input built in several chunks of patients, the criteria run one at a time, the results
    built in several ranges of patients: the Python evaluator's outcomes still (the default run is
    one chunk, two criteria at a time, one result range below 50,000 patients)."""
    ids = ("hemoglobin", "anticancer_washout", "cns_disease")
    texts = corpus["cohort"][:240] + list(BAD_LINES)
    path = tmp_path / "in.jsonl"
    path.write_text("".join(t + "\n" for t in texts), encoding="utf-8")
    con = screen.connect(threads=1, memory_limit="1GB")
    loader.load_jsonl(con, str(path))
    script = screen.prepare_script(compiled.program, compiled.lowered, only=set(ids))
    screen.run_script(con, compiled.program, sm3321, script, chunk=70, workers=1, result_chunk=100)
    sqls = [json.loads(r) for r in screen.results(con)]
    # the work tables are dropped; the results (elig_screened) stay for the caller to read
    assert con.execute("SELECT list(table_name) FROM duckdb_tables() WHERE table_name LIKE 'elig_%' "
                       "AND NOT temporary").fetchone()[0] == ["elig_screened"]
    con.close()
    pys = only_criteria([sm3321.evaluate_json(t) for t in texts], ids)
    for r in pys + sqls:
        r.pop("status", None) if r.get("status") != "error" else None
    assert len(sqls) == len(texts)
    diffs = compare_subset(pys, sqls)
    assert not diffs, "\n".join(map(str, diffs[:20]))


@SCREENED_FAST
def test_error_rows_like_python(corpus, screened_fast, sm3321):
    sqls = screened_fast["bad"]
    pys = [sm3321.evaluate_json(t) for t in corpus["bad"]]
    assert [r["status"] == "error" for r in sqls] == [r["status"] == "error" for r in pys]
    for py, sq in zip(pys, sqls):
        assert sq.get("patient_id") == py.get("patient_id")
        if py["status"] == "error" and not py["error"].startswith("not JSON"):
            assert sq["error"] == py["error"]


def _exact_texts():
    base = json.loads((CASES / "_base" / "baseline.json").read_text(encoding="utf-8"))
    recs = []
    for value, uln in ((1.8, 1.2), (1.8000000000000003, 1.2), (1.7999999999999998, 1.2)):
        r = copy.deepcopy(base)
        r["id"] = f"bili-{value}"
        r["observations"] = [o for o in r["observations"] if o["code"] != "total_bilirubin"] + [
            {"code": "total_bilirubin", "value": value, "unit": "umol/L", "uln": uln, "date": "2026-01-12"}]
        recs.append(r)
    r = copy.deepcopy(base)
    r["id"] = "fever-100.4"
    r["observations"] = r["observations"] + [{"code": "body_temperature", "value": 100.4, "unit": "[degF]", "date": "2026-01-12"}]
    recs.append(r)
    return [json.dumps(x) for x in recs]


@SCREENED_FAST
def test_limit_exactly_at_uln_multiple(screened_fast):
    """1.8 with a ULN of 1.2 is exactly 1.5 x ULN (binary floats say 1.7999999999999998)."""
    got = [{c["id"]: c["outcome"] for c in r["criteria"]} for r in screened_fast["exact"]]
    assert [g["bilirubin_limit"] for g in got[:3]] == ["pass", "fail", "pass"]


@pytest.mark.slow
def test_fever_exactly_at_limit_in_fahrenheit(screened_all):
    """100.4 [degF] is exactly 38 Cel: not above it."""
    got = {c["id"]: c["outcome"] for c in screened_all["exact"][3]["criteria"]}
    assert got["recent_serious_infection_or_fever"] == "pass"


def test_unsupported_construct_fails_at_compile_time_naming_the_rule(compiled):
    prog = compiled.program
    crit = prog.criteria[0]
    sel = I.SelLatest("ecog", I.Win("on_or_before", "first_dose", None, False, "on or before first_dose"), "latest ecog")
    cond = I.BSexIs(("male",), False)
    body = I.BObsBetween(sel, I.LIf(cond, I.LConst((("1", Fraction(0)),), "0"), I.LConst((("1", Fraction(1)),), "1"), "0 or 1"),
                         I.LConst((("1", Fraction(2)),), "2"))
    bad = replace(crit, body=body)
    low = compiled.lowered
    lc = replace(low.criteria[0], ir=bad)
    mod = replace(low, criteria=(lc,) + low.criteria[1:])
    with pytest.raises(SqlCompileError) as exc:
        build(prog, mod)
    msg = str(exc.value)
    assert f"{lc.file}:{bad.line}: rule {bad.id}" in msg and "no SQL form" in msg


def test_script_is_deterministic(compiled):
    a = build(compiled.program, compiled.lowered).text()
    b = build(compiled.program, compiled.lowered).text()
    assert a == b
    assert "-- sm3321_rules/inclusion.elig:" in a and '"hemoglobin" AS (' in a
    r1 = build_rel(compiled.program, compiled.lowered).text()
    assert r1 == build_rel(compiled.program, compiled.lowered).text()
    assert "-- sm3321_rules/inclusion.elig:" in r1 and '"hemoglobin" AS ' in r1 and "GROUP BY seq" in r1


def test_every_sm3321_criterion_is_relational(compiled):
    """DuckDB screens SM3321 with the relational script only: no criterion in the lambda form,
    no per-patient lists (elig_input is not built)."""
    script = screen.prepare_script(compiled.program, compiled.lowered)
    assert len(script.steps) == 44 and not script.lambda_steps
    assert [n for n, _, _ in script.prep] == ["elig_pat", "elig_ox", "elig_cx", "elig_px", "elig_tx"]
    assert all("elig_input" not in sql and "t_all" not in sql and '"o_' not in sql for _, sql in script.steps)


# ---------------------------------------------------------------------- the commands


def _run(args, **kw):
    return subprocess.run(ELIG + args, cwd=ROOT, capture_output=True, text=True, timeout=300, **kw)


@pytest.mark.slow
def test_screen_cli_jsonl_parquet_duckdb_and_summary(tmp_path, sm3321):
    data = tmp_path / "reg.jsonl"
    cohort.write_jsonl(str(data), 300, seed=5, corrupt_rate=0.03)
    lines = [l for l in data.read_text(encoding="utf-8").splitlines() if l.strip()]
    r = _run(["screen", "--rules", "sm3321_rules", "--timings", str(data)])
    assert r.returncode == 0, r.stderr
    # --timings: one line of the phases on standard error, the results alone on standard output
    timing = [l for l in r.stderr.splitlines() if l.startswith("elig: timings (wall s / CPU s): ")]
    assert len(timing) == 1 and [p.split()[0] for p in timing[0].split(": ", 2)[2].split(", ")] == [
        "compile", "read", "input", "criteria", "results", "write"]
    out = [json.loads(l) for l in r.stdout.splitlines()]
    pys = [sm3321.evaluate_json(l) for l in lines]
    assert [o.get("patient_id") for o in out] == [p.get("patient_id") for p in pys]
    assert not compare(pys, out)
    # load to Parquet (from a file) and to a DuckDB file (from stdin); screen those below
    pq = tmp_path / "reg_pq"
    db = tmp_path / "reg.duckdb"
    assert _run(["load", str(data), "-o", str(pq)]).returncode == 0
    assert _run(["load", "-", "-o", str(db)], input=data.read_text(encoding="utf-8")).returncode == 0
    # Parquet results
    res_dir = tmp_path / "res"
    r4 = _run(["screen", "--rules", "sm3321_rules", "-o", str(res_dir), str(db)])
    assert r4.returncode == 0, r4.stderr
    rows = duckdb.connect().execute(f"SELECT patient_id, status FROM read_parquet('{res_dir / 'results.parquet'}') ORDER BY seq").fetchall()
    assert [s for _, s in rows] == [p["status"] for p in pys]
    assert [i for i, _ in rows] == [p.get("patient_id") for p in pys]
    # summary with the funnel (Parquet input)
    r5 = _run(["screen", "--rules", "sm3321_rules", "--summary", str(pq)])
    assert r5.returncode == 0, r5.stderr
    assert "300 records" in r5.stdout and "fail only this" in r5.stdout and "funnel" in r5.stdout
    elig = sum(p["status"] == "eligible" for p in pys)
    assert f"eligible (every criterion passes)" in r5.stdout and r5.stdout.rstrip().endswith(f"{elig:,}")
    # explain: the Python evaluator's full reasons
    pid = pys[0]["patient_id"]
    r6 = _run(["screen", "--rules", "sm3321_rules", "--explain", pid, str(data)])
    assert json.loads(r6.stdout) == pys[0]


def test_sql_command_writes_the_script(tmp_path):
    out = tmp_path / "sm3321.duckdb.sql"
    r = _run(["sql", "sm3321_rules", "-o", str(out)])
    assert r.returncode == 0, r.stderr
    text = out.read_text(encoding="utf-8")
    assert text.startswith("-- Elig screening script for SM3321")
    # the relational script (compiler/sql/relational.py): the long item tables, no per-patient lists
    assert "CREATE OR REPLACE TEMP VIEW elig_pat" in text and "CREATE OR REPLACE TEMP VIEW elig_results" in text
    assert "CREATE OR REPLACE TEMP VIEW elig_ox" in text and "elig_input" not in text and "[lambda form]" not in text


def test_screen_out_of_memory_is_a_clear_error(tmp_path):
    """DuckDB out of memory (here a --memory-limit far too small for 300 records) anywhere in
    reading, screening or writing: one `elig:` line naming the limit, exit 1, no traceback, no
    output file."""
    data = tmp_path / "reg.jsonl"
    cohort.write_jsonl(str(data), 300, seed=5, corrupt_rate=0.03)
    out = tmp_path / "out"
    r = _run(["screen", "--rules", "sm3321_rules", "--memory-limit", "16MB", "-o", str(out), str(data)])
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    assert r.stderr.startswith("elig: DuckDB ran out of memory at --memory-limit 16MB"), r.stderr
    assert not (out / "results.parquet").exists()
