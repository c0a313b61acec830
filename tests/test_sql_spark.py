"""The Spark SQL engine of `elig screen --engine spark`: the DuckDB script of each criterion printed
in Spark SQL by sqlglot, every construct without a Spark form refused at compile time naming the
rule; and, on a real PySpark session in local mode (one per test session), the same status,
outcome per criterion and `missing` as the Python evaluator on the SM3321 data cases, cohort
records, fuzzed unusable items, bad lines, limits at exactly their value, an example trial's
cases and cohort records. The tests that start Spark are `slow` (CI runs them)."""

import json
import os
import subprocess
import sys
import types

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))

pytest.importorskip("sqlglot")

import cohort  # noqa: E402
import test_sql as T  # noqa: E402  (the DuckDB differential corpus and comparison)
import test_sql_latest_fast as LF  # noqa: E402  (k x ULN at extreme exponents)
import test_sql_extreme as X  # noqa: E402  (computed numbers at extreme exponents)

from compiler.sql import spark as SP  # noqa: E402
from compiler.sql.script import SqlCompileError  # noqa: E402

ELIG = [sys.executable, "-m", "compiler.cli"]

# every Spark test on one pytest-xdist worker (addopts: --dist loadgroup): one JVM at a time on
# the 2 cores, and one session for the worker
pytestmark = pytest.mark.xdist_group("spark")



def test_spark_tests_share_one_worker(request):
    """Under pytest-xdist with `--dist loadgroup` (pyproject's addopts), every test of this module
    carries the group `spark` in its id, which is what the scheduler reads to keep them on one
    worker (tests/conftest.py: pytest 9.2 no longer reads the id where xdist 3.8 writes it)."""
    if not getattr(request.config.option, "loadgroup", False):
        pytest.skip("not distributed by xdist's loadgroup scheduler")
    assert request.node.nodeid.endswith("@spark")


# ------------------------------------------------------------------------ compile time (fast)

def test_sqlglot_alone_is_not_sound():
    """Why the compile-time check exists: sqlglot passes an unknown DuckDB function through and
    drops an aggregate's ORDER BY without raising, even at ErrorLevel.RAISE."""
    import sqlglot
    from sqlglot import ErrorLevel

    out = sqlglot.transpile("SELECT list_bool_and(l), list(x ORDER BY x.i) FROM t", read="duckdb", write="spark",
                            unsupported_level=ErrorLevel.RAISE)[0]
    assert "LIST_BOOL_AND" in out and "ORDER" not in out
    ours = SP.to_spark("SELECT list_bool_and(l), list(x ORDER BY x.i) FROM t")
    assert SP.unknown_constructs(ours) == []
    assert "ARRAY_SORT(COLLECT_LIST(STRUCT(x AS v, x.i AS k0)), (_elig_l, _elig_r) -> CASE" in ours


def test_list_constructs_keep_duckdbs_meaning():
    """DuckDB's list(), list_concat, flatten and list_distinct differ from their Spark namesakes
    on NULLs and empty groups (compiler/sql/spark_lists.py): each is written in the form that
    keeps DuckDB's meaning, and nothing else is touched."""
    out = SP.to_spark("SELECT list(x) FILTER (WHERE c), list_concat(a, b), flatten(l), list_distinct(l), "
                      "flatten(list(z.m ORDER BY _i DESC) FILTER (WHERE z.t IS NULL)) FROM t GROUP BY s")
    parts = out[len("SELECT "):out.index(" FROM t GROUP BY s")]
    # NULL over no row (collect_list gives []); NULL elements kept (collect_list drops them)
    assert parts.startswith("CASE WHEN COUNT(1) FILTER(WHERE c) = 0 THEN NULL ELSE "
                            "TRANSFORM(COLLECT_LIST(STRUCT(x AS v)) FILTER(WHERE c), _elig_s -> _elig_s.v) END")
    assert "CONCAT(COALESCE(a, ARRAY()), COALESCE(b, ARRAY()))" in parts  # NULL is []
    assert "FLATTEN(FILTER(l, _elig_e -> NOT _elig_e IS NULL))" in parts  # NULL inner lists skipped
    assert "ARRAY_DISTINCT(FILTER(l, _elig_e -> NOT _elig_e IS NULL))" in parts  # NULLs dropped
    # ORDER BY ... DESC, NULLs last (DuckDB's default)
    assert "WHEN _elig_l.k0 IS NULL THEN 1 WHEN _elig_r.k0 IS NULL THEN -1 WHEN _elig_l.k0 < _elig_r.k0 THEN 1" in parts
    assert SP.unknown_constructs(out) == []
    # a grouped list() without FILTER has a row in every group: no emptiness test
    assert SP.to_spark("SELECT list({'i': i}) FROM t GROUP BY s") == "SELECT COLLECT_LIST(STRUCT(i AS i)) FROM t GROUP BY s"


def test_nested_ctes_are_renamed_apart():
    """sqlglot hoists a subquery's WITH to the statement's: the relational script's per-join
    CTEs (_r0, _r1 in every join) are renamed apart, each join reading its own."""
    out = SP.to_spark("WITH y AS (SELECT 1 AS seq) SELECT * FROM y "
                      "LEFT JOIN (SELECT seq FROM (WITH _r0 AS MATERIALIZED (SELECT * FROM y) SELECT * FROM _r0)) USING (seq) "
                      "LEFT JOIN (SELECT seq FROM (WITH _r0 AS (SELECT seq + 1 AS seq FROM y) SELECT _r0.seq FROM _r0)) USING (seq)")
    assert out == ("WITH y AS (SELECT 1 AS seq), _r0_w1 AS (SELECT * FROM y), _r0_w2 AS (SELECT seq + 1 AS seq FROM y) "
                   "SELECT * FROM y LEFT JOIN (SELECT seq FROM (SELECT * FROM _r0_w1 AS _r0)) USING (seq) "
                   "LEFT JOIN (SELECT seq FROM (SELECT _r0.seq FROM _r0_w2 AS _r0)) USING (seq)")
    # a statement's own WITH (the lambda form's input view, a CREATE VIEW) keeps its names
    view = "CREATE OR REPLACE TEMP VIEW v AS WITH an AS (SELECT 1 AS seq) SELECT an.seq FROM an"
    assert SP.to_spark(view) == "CREATE OR REPLACE TEMPORARY VIEW v AS WITH an AS (SELECT 1 AS seq) SELECT an.seq FROM an"


def test_unknown_construct_refused():
    assert SP.unknown_constructs(SP.to_spark("SELECT list_reverse(x), CAST(y AS HUGEINT), 'f(' FROM t")) == [
        "function LIST_REVERSE()"]
    assert SP.unknown_constructs("SELECT CAST(x AS UBIGINT) FROM t") == ["type UBIGINT"]


def test_star_exclude_is_written_out():
    """DuckDB's `* EXCLUDE` (no Spark form) becomes the table's documented columns; over a table
    whose columns are not known it is refused."""
    out = SP.to_spark("SELECT ob.* EXCLUDE (code), k.code FROM observations ob, k")
    assert out.startswith("SELECT ob.seq, ob.idx, ob.date_raw, `ob`.`date`,") and "ob.code" not in out
    assert SP.unknown_constructs(SP.to_spark("SELECT * EXCLUDE (a) FROM elsewhere")) == [
        "function ELIG_NO_SPARK_STAR_EXCLUDE()"]


def test_no_gcd_in_the_plan(compiled):
    """The exact numbers are fractions without a gcd (the 190-step AGGREGATE made plans Spark
    could not finish); a limit criterion stays small."""
    script = SP.build_spark(compiled.program, compiled.lowered, only={"bilirubin_limit"})
    assert [c for c, _ in script.queries] == ["bilirubin_limit"]
    for cid, sql in script.queries:
        assert "AGGREGATE(" not in sql.upper() and len(sql) < 60_000, (cid, len(sql))
        assert sql.startswith("WITH") and f"`out__{cid}`" in sql and f"`miss__{cid}`" in sql


def test_refusal_names_the_rule(compiled, monkeypatch):
    """A construct without a Spark form in one criterion: refused at compile time with the rule's
    file:line, the other rules untouched."""
    target = "hemoglobin"
    orig_build = SP.build

    def spoiled(program, lowered, only=None):
        s = orig_build(program, lowered, only=only)
        s.query = s.query.replace(f'"{target}" AS (SELECT *,', f'"{target}" AS (SELECT *, list_reverse([1]) AS spoiled,', 1)
        return s

    monkeypatch.setattr(SP, "build", spoiled)
    with pytest.raises(SqlCompileError) as info:
        SP.build_spark(compiled.program, compiled.lowered, only={"hemoglobin", "informed_consent"}, relational=False)
    probs = info.value.problems
    assert len(probs) == 1, probs
    crit = next(c for c in compiled.lowered.criteria if c.ir.id == target)
    assert probs[0].startswith(f"{crit.file}:{crit.ir.line}: rule hemoglobin: no Spark SQL form for ")
    assert "LIST_REVERSE" in probs[0]


def test_relational_step_without_spark_form_falls_back(compiled, monkeypatch):
    """The relational form: a criterion whose step has a construct without a Spark form is kept
    in the lambda form (which then reads the input view elig_input), the reason kept; when its
    lambda form has none either, the build is refused naming the rule; the others stay
    relational."""
    from compiler.sql import relational as REL
    from compiler.sql import spark_relational as SR

    import functools

    monkeypatch.setenv("ELIG_NO_CACHE", "1")
    # the same text gives the same Spark SQL: each text transpiled once in this test (the work
    # tables are the same in the three builds)
    monkeypatch.setattr(SP, "to_spark", functools.lru_cache(maxsize=None)(SP.to_spark))
    only = {"hemoglobin", "informed_consent"}
    plain = SP.build_spark(compiled.program, compiled.lowered, only=only)
    assert plain.lambda_ids == frozenset() and plain.fallbacks == () and plain.input_view == ""
    assert [n for n, _, _ in plain.prep] == ["elig_pat", "elig_ox", "elig_cx", "elig_px", "elig_tx"]
    orig = REL.build

    def spoiled(program, lowered, only=None, **kw):
        s = orig(program, lowered, only=only, **kw)
        s.steps = tuple((c, q.replace("SELECT seq, ", "SELECT seq, list_reverse([1]) AS spoiled, ", 1) if c == "hemoglobin" else q)
                        for c, q in s.steps)
        return s

    monkeypatch.setattr(REL, "build", spoiled)
    script = SP.build_spark(compiled.program, compiled.lowered, only=only)
    assert script.lambda_ids == {"hemoglobin"} and script.input_view.startswith("CREATE OR REPLACE TEMPORARY VIEW elig_input")
    assert script.fallbacks == (("hemoglobin", "no Spark SQL form for function LIST_REVERSE()"),)
    q = dict(script.queries)
    assert "elig_input" in q["hemoglobin"] and "elig_ox" not in q["hemoglobin"]
    assert q["informed_consent"] == dict(plain.queries)["informed_consent"]
    # the lambda form spoiled too: refused, naming the rule
    orig_lambda = SR.build_lambda

    def spoiled_lambda(program, lowered, only=None):
        s = orig_lambda(program, lowered, only=only)
        s.query = s.query.replace('"hemoglobin" AS (SELECT *,', '"hemoglobin" AS (SELECT *, list_reverse([1]) AS spoiled,', 1)
        return s

    monkeypatch.setattr(SR, "build_lambda", spoiled_lambda)
    with pytest.raises(SqlCompileError) as info:
        SP.build_spark(compiled.program, compiled.lowered, only=only)
    crit = next(c for c in compiled.lowered.criteria if c.ir.id == "hemoglobin")
    assert info.value.problems == [f"{crit.file}:{crit.ir.line}: rule hemoglobin: no Spark SQL form for function LIST_REVERSE()"]


def test_parentheses_dropped_only_where_they_change_nothing():
    """Spark's parser spends most of a criterion's planning on its nested text: a parenthesis
    around one term, or where the text around it already ends the expression (a call's argument,
    a CASE's parts, a lambda's body), is not printed; one that groups operators is kept."""
    out = SP.to_spark("SELECT ((a)) + (b * c), NOT (x = 1), (a - 1) * 2, CAST(CAST(y AS VARCHAR) AS VARCHAR), "
                      "least((a AND b), 1), CASE WHEN (a OR b) THEN (c + 1) END, list_transform(l, x -> (x + 1)), "
                      "(CAST(z AS INT)).f, (a OR b) AND c FROM t")
    assert out == ("SELECT a + (b * c), NOT (x = 1), (a - 1) * 2, CAST(y AS STRING), LEAST(a AND b, 1), "
                   "CASE WHEN a OR b THEN c + 1 END, TRANSFORM(l, x -> x + 1), CAST(z AS INT).f, (a OR b) AND c FROM t")


def _no_sqlglot(*_a, **_k):
    raise AssertionError("transpiled again: the cache was not used")


@pytest.mark.parametrize("relational", [False, True])
def test_transpiled_sql_is_cached(compiled, tmp_path, monkeypatch, relational):
    """The Spark SQL of a trial (either form) is kept in the user's cache (compiler/cache.py) and
    used again only for the same DuckDB text, sqlglot version and transpiler source; an edited,
    stale or disabled entry is transpiled again."""
    monkeypatch.setenv("ELIG_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("ELIG_NO_CACHE", raising=False)
    only = {"standard_therapy_exhausted", "informed_consent"}
    build = SP.build_spark

    def build_spark(program, lowered, only=None):
        return build(program, lowered, only=only, relational=relational)

    monkeypatch.setattr(SP, "build_spark", build_spark)
    first = SP.build_spark(compiled.program, compiled.lowered, only=only)
    entries = [f for f in os.listdir(tmp_path / "cache") if f.startswith("spark-sql-")]
    assert len(entries) == 1 and oct(os.stat(tmp_path / "cache").st_mode & 0o777) == "0o700"
    real = SP._transpile_criterion
    monkeypatch.setattr(SP, "_transpile_criterion", _no_sqlglot)
    monkeypatch.setattr(SP, "to_spark", _no_sqlglot)
    assert SP.build_spark(compiled.program, compiled.lowered, only=only) == first  # from the cache
    # another transpiler (its source changed): not this entry
    monkeypatch.setattr(SP, "code_version", lambda: "another")
    with pytest.raises(AssertionError, match="the cache was not used"):
        SP.build_spark(compiled.program, compiled.lowered, only=only)
    monkeypatch.undo()
    monkeypatch.setattr(SP, "build_spark", build_spark)
    monkeypatch.setenv("ELIG_CACHE_DIR", str(tmp_path / "cache"))
    # the cache off: transpiled again
    monkeypatch.setenv("ELIG_NO_CACHE", "1")
    monkeypatch.setattr(SP, "to_spark", _no_sqlglot)
    monkeypatch.setattr(SP, "_transpile_criterion", _no_sqlglot)
    with pytest.raises(AssertionError, match="the cache was not used"):
        SP.build_spark(compiled.program, compiled.lowered, only=only)
    monkeypatch.undo()
    monkeypatch.setattr(SP, "build_spark", build_spark)
    monkeypatch.setenv("ELIG_CACHE_DIR", str(tmp_path / "cache"))
    # an edited entry (its payload no longer matches the hash in its header): ignored, rebuilt
    path = tmp_path / "cache" / entries[0]
    data = path.read_bytes()
    path.write_bytes(data.replace(b"informed_consent", b"informed_consenT", 1))
    calls = []
    real_to_spark = SP.to_spark
    monkeypatch.setattr(SP, "_transpile_criterion", lambda q, c: calls.append(c) or real(q, c))
    monkeypatch.setattr(SP, "to_spark", lambda q: calls.append(q) or real_to_spark(q))
    assert SP.build_spark(compiled.program, compiled.lowered, only=only) == first
    # transpiled again: the lambda form its input view and each criterion's query; the
    # relational form its 5 work tables and each criterion's step
    assert len(calls) == len(only) + (5 if relational else 1) and path.read_bytes() == data
    if not relational:
        assert sorted(c for c in calls if c in only) == sorted(only)


@pytest.mark.slow
def test_sm3321_compiles_to_spark_sql(spark_sm3321):
    text = spark_sm3321.text()
    # every criterion its own query, named after its rule, with the rule's file:line in a comment
    assert "/* sm3321_rules/inclusion.elig:" in text
    assert len(spark_sm3321.queries) == 44
    for i, (cid, sql) in enumerate(spark_sm3321.queries):
        assert f"CREATE OR REPLACE TEMPORARY VIEW elig_k{i} AS\n" in text and f"`{cid}`" in sql
        assert SP.unknown_constructs(sql) == [], cid  # nothing of DuckDB's own dialect is left
    assert SP.unknown_constructs(spark_sm3321.input_view) == []
    assert SP.unknown_constructs(spark_sm3321.result_query) == []
    # the relational form throughout: the work tables, no criterion in the lambda form
    assert [n for n, _, _ in spark_sm3321.prep] == ["elig_pat", "elig_ox", "elig_cx", "elig_px", "elig_tx"]
    assert spark_sm3321.lambda_ids == frozenset() and spark_sm3321.fallbacks == () and spark_sm3321.input_view == ""
    for name, sql, _ in spark_sm3321.prep:
        assert SP.unknown_constructs(sql) == [], name
        assert f"CREATE OR REPLACE TEMPORARY VIEW {name} AS\n" in text


# ------------------------------------------------------------------------ on Spark (slow)

@pytest.fixture(scope="session")
def spark_sm3321(compiled):
    return SP.build_spark(compiled.program, compiled.lowered)


@pytest.fixture(scope="session")
def spark():
    pytest.importorskip("pyspark")
    from compiler.sql import spark_run as R

    return R.session()


def spark_results(spark, program, module, script, texts, tmp_path):
    from compiler.sql import spark_run as R

    path = tmp_path / "in.jsonl"
    path.write_text("".join(t + "\n" for t in texts), encoding="utf-8")
    R.load_json_lines_to_parquet(str(path), str(tmp_path / "tables"))
    R.open_parquet(spark, str(tmp_path / "tables"))
    (tmp_path / "work").mkdir()
    R.run(spark, program, module, script, str(tmp_path / "work"))
    return [json.loads(r) for r in R.results(spark)]


@pytest.mark.slow
def test_exact_numbers_on_spark(spark):
    """The exact-number functions on Spark itself: 1.8 is exactly 1.5 x 1.2; a double that Java
    prints with too many digits (2e23) is read as Python's repr reads it; floor division of
    negative fractions; an overflow is NULL (the comparison is decided by the floats only where they
    are apart); a decimal exponent beside the fraction keeps 1e-300 exact."""
    def one(sql):
        return spark.sql(SP.to_spark(sql)).collect()[0][0]

    k = "{'f': CAST(1.5 AS DOUBLE), 'n': CAST('3' AS HUGEINT), 'd': CAST('2' AS HUGEINT), 'e': 0}"
    assert one(f"SELECT elig_sign_ref(CAST(1.8 AS DOUBLE), NULL, {k}, CAST(1.2 AS DOUBLE), NULL)") == 0
    assert one(f"SELECT elig_sign_ref(CAST(1.8000000001 AS DOUBLE), NULL, {k}, CAST(1.2 AS DOUBLE), NULL)") == 1
    assert one(f"SELECT elig_sign_ref(CAST(1.7999999999999998 AS DOUBLE), NULL, {k}, CAST(1.2 AS DOUBLE), NULL)") == -1
    assert one("SELECT elig_textn(CAST(2e23 AS DOUBLE), NULL)") == "2.00000000000000e+23"
    big = "{'f': CAST(2e23 AS DOUBLE), 'n': CAST('200000000000000000000000' AS HUGEINT), 'd': CAST('1' AS HUGEINT), 'e': 0}"
    assert one(f"SELECT elig_sign_rec(CAST(2e23 AS DOUBLE), NULL, {big})") == 0
    assert one("SELECT elig_floor({'f': CAST(-2.5 AS DOUBLE), 'n': CAST('-5' AS HUGEINT), 'd': CAST('2' AS HUGEINT), 'e': 0})") == -3
    assert one("SELECT elig_floor({'f': CAST(2.5 AS DOUBLE), 'n': CAST('5' AS HUGEINT), 'd': CAST('2' AS HUGEINT), 'e': 0})") == 2
    huge = "{'f': CAST(1e30 AS DOUBLE), 'n': CAST('1000000000000000000000000000000' AS HUGEINT), 'd': CAST('3' AS HUGEINT), 'e': 0}"
    assert one(f"SELECT elig_mul({huge}, {huge}).n") is None  # overflow: NULL, as DuckDB's TRY
    assert one(f"SELECT elig_sign(elig_mul({huge}, {huge}), {huge})") == 1  # decided by the float
    # a decimal exponent beside the fraction: 1e-300 x 3 / 1e-300 is exactly 3; an exact
    # comparison beyond DECIMAL(38,0) is unknown (NULL), never the doubles' sign
    tiny = "elig_dec(CAST(1e-300 AS DOUBLE), '1e-300')"
    three = "{'f': CAST(3 AS DOUBLE), 'n': CAST('3' AS HUGEINT), 'd': CAST('1' AS HUGEINT), 'e': 0}"
    assert one(f"SELECT elig_sign(elig_div(elig_mul({tiny}, {three}), {tiny}), {three})") == 0
    assert one(f"SELECT elig_sign(elig_div({tiny}, elig_mul({tiny}, {tiny})), elig_dec(CAST(1e300 AS DOUBLE), '1e300'))") == 0
    assert one(f"SELECT elig_sign(elig_add({tiny}, {three}), {three})") is None
    assert one(f"SELECT elig_floor(elig_mul({tiny}, {three}))") == 0
    assert one("SELECT elig_int('-12345678901234567890123')") == -12345678901234567890123
    assert one("SELECT elig_int('1.5')") is None


@pytest.mark.slow
def test_json_type_quoted_keys_on_spark(spark):
    """json_type(text, path) with DuckDB's quoted keys (`$."diameter".unit`, the path of an
    attribute's unit in screen.resolve_units) gives on Spark what it gives on DuckDB: the key is
    read without its quotes (Spark's variant path took `"diameter"` with the quotes as the key and
    found nothing, so attributes with units were unknown on Spark)."""
    import duckdb

    docs = ['{"diameter": {"value": 1, "unit": "cm"}}', '{"a b": {"unit": "mm"}}', '{"diameter": {"unit": true}}', '{"diameter": {"unit": null}}',
            '{"diameter": "2"}', '{"diameter": -2}', '{}']
    paths = ['$."diameter".unit', '$."a b".unit', '$.diameter.unit', '$."diameter"']
    con = duckdb.connect()
    for d in docs:
        for path in paths:
            sql = f"SELECT json_type('{d}', '{path}'), json_extract_string('{d}', '{path}')"
            want = con.execute(sql).fetchone()
            got = tuple(spark.sql(SP.to_spark(sql)).collect()[0])
            assert got == want, (d, path, got, want)
    assert con.execute(f"SELECT json_type('{docs[0]}', '{paths[0]}')").fetchone() == ("VARCHAR",)


@pytest.mark.slow
def test_sign_functions_exact_on_spark(spark):
    """Spark's elig_sign_rec and elig_sign_ref near extreme limits (test_sql_latest_fast.sign_rows:
    constants of 10^-30 and 10^30, k x references from subnormals to 1.5e307, k negative or zero)
    give the evaluator's sign, by the keys; a subnormal is read as its shortest text (Java 17
    prints 5e-324 as 4.9E-324)."""
    rows = LF.sign_rows()
    spark.createDataFrame(rows, "i INT, v DOUBLE, kf DOUBLE, kn STRING, kd STRING, r DOUBLE, ref BOOLEAN, want INT") \
        .createOrReplaceTempView("elig_sc")
    got = dict(spark.sql(SP.to_spark(LF.SIGN_SQL)).collect())
    bad = [(r, got[r[0]]) for r in rows if got[r[0]] != r[-1]]
    assert not bad, bad[:5]
    assert {r[-1] for r in rows} == {-1, 0, 1}
    texts = spark.sql(SP.to_spark("SELECT elig_textn(CAST(5e-324 AS DOUBLE), NULL), elig_textn(CAST(-2.5e-320 AS DOUBLE), NULL)"))
    assert [float(t) for t in texts.collect()[0]] == [5e-324, -2.5e-320] and texts.collect()[0][0] == "5e-324"


@pytest.fixture(scope="session")
def corpus():
    # one Spark run for all of them: planning the 44 criteria costs far more than the records
    return {"cases": T._case_texts(), "cohort": [t.rstrip("\n") for t in cohort._lines(2000, 3321, 0.02)],
            "fuzz": T._fuzz_texts(), "bad": list(T.BAD_LINES), "exact": T._exact_texts(),
            "extreme": LF._extreme_records(), "crcl": X._crcl_records()}


@pytest.fixture(scope="session")
def spark_screened(spark, compiled, sm3321, spark_sm3321, corpus, tmp_path_factory):
    texts = [t for part in corpus.values() for t in part]
    res = spark_results(spark, compiled.program, sm3321, spark_sm3321, texts, tmp_path_factory.mktemp("spark"))
    out, i = {}, 0
    for k, part in corpus.items():
        out[k] = res[i:i + len(part)]
        i += len(part)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("part", ["cases", "cohort", "fuzz", "bad", "exact", "extreme", "crcl"])
def test_spark_equals_python(part, corpus, spark_screened, sm3321):
    """All 44 SM3321 criteria: status, outcome and missing equal the Python evaluator's (on the
    data cases, 2,000 cohort records, fuzzed unusable items, bad lines, limits at exactly their
    value, AST at and next to 5 x and 2.5 x ULNs from subnormals to 1.5e307: the keys), one result
    per record in input order, error results included."""
    pys = [sm3321.evaluate_json(t) for t in corpus[part]]
    assert len(spark_screened[part]) == len(pys)
    diffs = T.compare(pys, spark_screened[part])
    assert not diffs, "\n".join(map(str, diffs[:20]))
    for py, sp in zip(pys, spark_screened[part]):
        assert sp["rules"] == py["rules"] and sp["format"] == 1


@pytest.fixture(scope="session")
def example_cli(spark, tmp_path_factory):
    """`elig screen` run in this process by click's runner, so that the CLI uses the test
    process's one Spark session (another JVM beside it would thrash the 2 cores), on the DuckDB
    and the Spark engines: an example trial with cohorts (nct04431453: eight cohorts by age and
    weight), its data cases and a bad line as JSON Lines on standard output; the smallest example
    trial (hf_trial, 10 criteria: every Spark run plans all the criteria again) with `-o DIR` and
    `--summary`."""
    from click.testing import CliRunner

    from compiler.cli import main
    from compiler.pipeline import compile_rules
    from tools.datacases import load_cases

    out = {}
    for trial, forms in (("nct04431453", ("jsonl",)), ("hf_trial", ("dir", "summary"))):
        rules = ROOT / "examples" / trial
        res = compile_rules(rules)
        assert res.ok
        mod = types.ModuleType(f"spark_{trial}")
        exec(compile(res.python, f"<{trial}>", "exec"), mod.__dict__)
        cases = load_cases(rules / "cases")
        tmp = tmp_path_factory.mktemp(trial)
        data = tmp / "in.jsonl"
        texts = [json.dumps(rec) for _, _, rec in cases]
        data.write_text("".join(t + "\n" for t in texts[:5]) + "not json\n" + "".join(t + "\n" for t in texts[5:]),
                        encoding="utf-8")
        out[trial] = {"cases": cases, "module": mod}
        for form in forms:
            for engine in ("duckdb", "spark"):
                extra = {"jsonl": [], "dir": ["-o", str(tmp / f"out-{engine}")], "summary": ["--summary"]}[form]
                out[engine, form] = CliRunner().invoke(
                    main, ["screen", "--rules", str(rules), "--engine", engine, *extra, str(data)])
                out[engine, "dir-path"] = tmp / f"out-{engine}"
                out[form, "cases"] = cases
    return out


def _cli_ok(r):
    assert r.exit_code == 0 and "Traceback" not in r.stderr, (r.exit_code, r.stderr[-2000:], r.exception)


@pytest.mark.slow
def test_example_trial_with_cohorts_equals_python(example_cli):
    """Outcome, missing, status and cohorts of every case equal the Python evaluator's, one result
    per line in input order, the bad line an error result."""
    mod, cases = example_cli["nct04431453"]["module"], example_cli["nct04431453"]["cases"]
    r = example_cli["spark", "jsonl"]
    _cli_ok(r)
    got = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(got) == len(cases) + 1 and got[5]["status"] == "error"
    del got[5]
    diffs = []
    for (name, _, rec), sq in zip(cases, got):
        py = mod.evaluate(rec)
        if py["status"] == "error" or sq["status"] == "error":
            assert (py["status"], py.get("error")) == (sq["status"], sq.get("error")), name
            continue
        want = [(c["id"], c["outcome"], c["missing"]) for c in py["criteria"]]
        have = [(c["id"], c["outcome"], c["missing"]) for c in sq["criteria"]]
        if (want, py["status"], py.get("cohorts")) != (have, sq["status"], sq.get("cohorts")):
            diffs.append((name, py["status"], py.get("cohorts"), sq["status"], sq.get("cohorts"),
                          [(w, g) for w, g in zip(want, have) if w != g]))
    assert not diffs, "\n".join(map(str, diffs[:10]))


@pytest.mark.slow
def test_lang_trial_equals_python(spark, tmp_path):
    """tests/lang_trial on Spark, all its criteria: outcome and missing of every case equal the
    Python evaluator's (ages in calendar months, `anchor - INTERVAL n MONTH` as ADD_MONTHS(anchor,
    -n), clamped to month end as DuckDB; ages in weeks; conditional limits and windows, review
    where a judgment decides a limit, a window or a factor, and the
    attributes with units of items: L7 large_lesion's diameter in cm, L8 high_dose's dose in a
    set of mg, whose units are resolved through elig_unit_map; its JSON path `$."diameter".unit`
    was read by Spark's variant path with the quotes as part of the key, no unit was resolved and
    Spark said unknown in 7 cases where the module decides)."""
    from compiler.pipeline import compile_rules
    from tools.datacases import load_cases

    rules = ROOT / "tests" / "lang_trial"
    res = compile_rules(rules)
    assert res.ok
    mod = types.ModuleType("spark_lang_trial")
    exec(compile(res.python, "<lang_trial>", "exec"), mod.__dict__)
    only = {c.id for c in res.program.criteria}
    assert {"infant_age", "child_age", "weeks_old", "large_lesion", "high_dose"} <= only
    script = SP.build_spark(res.program, res.lowered, only=only)
    cases = load_cases(rules / "cases")
    got = spark_results(spark, res.program, mod, script, [json.dumps(rec) for _, _, rec in cases], tmp_path)
    assert len(got) == len(cases)
    diffs = []
    for (name, _, rec), sq in zip(cases, got):
        want = [(c["id"], c["outcome"], c["missing"]) for c in mod.evaluate(rec)["criteria"] if c["id"] in only]
        have = [(c["id"], c["outcome"], c["missing"]) for c in sq["criteria"]]
        if want != have:
            diffs.append((name, [(w, g) for w, g in zip(want, have) if w != g]))
    assert not diffs, "\n".join(map(str, diffs[:10]))
    assert {"review", "unknown", "pass", "fail"} <= {c["outcome"] for sq in got for c in sq["criteria"]}


@pytest.mark.slow
@pytest.mark.parametrize("form", ["jsonl", "dir", "summary"])
def test_screen_engine_spark_cli_equals_duckdb(example_cli, form):
    """`elig screen --engine spark` gives what the DuckDB engine gives: the same JSON Lines
    (nct04431453, with cohorts), the same results.parquet (alone in -o DIR), the same --summary
    (counts, "fails only this", the funnel)."""
    import duckdb

    sp, duck = example_cli["spark", form], example_cli["duckdb", form]
    _cli_ok(duck)
    _cli_ok(sp)
    if form == "jsonl":
        assert [json.loads(t) for t in sp.stdout.splitlines()] == [json.loads(t) for t in duck.stdout.splitlines()]
    else:
        assert sp.stdout == duck.stdout
    if form == "summary":
        assert "records: eligible" in sp.stdout and "funnel" in sp.stdout
    if form == "dir":
        tables = []
        for engine in ("spark", "duckdb"):
            d = example_cli[engine, "dir-path"]
            assert os.listdir(d) == ["results.parquet"]
            tables.append(duckdb.sql(f"SELECT * FROM '{d / 'results.parquet'}' ORDER BY seq").fetchall())
        assert tables[0] == tables[1] and len(tables[0]) == len(example_cli["dir", "cases"]) + 1
        assert [r[0] for r in tables[0]] == list(range(len(tables[0])))


def test_screen_engine_spark_refuses_a_missing_table(tmp_path):
    """A Parquet directory without the screening tables: a clear error before Spark starts work."""
    (tmp_path / "d").mkdir()
    r = subprocess.run(ELIG + ["screen", "--rules", str(ROOT / "examples" / "hf_trial"), "--engine", "spark",
                               str(tmp_path / "d")], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert r.returncode == 1 and "patients.parquet: missing" in r.stderr and "Traceback" not in r.stderr
