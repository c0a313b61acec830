"""`elig screen --engine spark`: the screening script of compiler/sql/script.py in Spark SQL,
run by PySpark (local mode or a cluster's session).

How the Spark SQL is made (docs/sql.md, "Spark SQL"): the DuckDB script is parsed by sqlglot
and printed in its Spark dialect at ``unsupported_level=ErrorLevel.RAISE``, after rewriting the
DuckDB constructs whose Spark form sqlglot does not know or gets wrong (an ordered ``list()``
aggregate, ``len`` of a list, date differences, HUGEINT, ``json_type``, ``isfinite``,
``list_bool_and``...). sqlglot alone is not enough to be sound: it passes an unknown function
through unchanged and drops the ORDER BY of an aggregate without an error. So the printed Spark
SQL of every criterion is checked at COMPILE time: every function it calls must be a Spark
built-in (compiler/sql/spark_functions.py) or one of the functions below, every CAST target a
Spark type; anything else is refused naming the rule, its file:line and the construct.

Exact numbers: the DuckDB macros of compiler/sql/numbers.py are re-implemented as Spark SQL
functions over STRUCT<f DOUBLE, n DECIMAL(38,0), d DECIMAL(38,0)> (Spark has no 128-bit
integer; DECIMAL(38,0) with ANSI mode off gives NULL on overflow, as DuckDB's TRY does, and the
comparison then falls back to the float, exactly where the DuckDB script does).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass

import sqlglot
from sqlglot import ErrorLevel, exp

from . import loader
from .script import SqlCompileError, build
from .spark_functions import SPARK_BUILTINS

NUM = "STRUCT<f: DOUBLE, n: DECIMAL(38,0), d: DECIMAL(38,0)>"
DEC = "DECIMAL(38,0)"

# The screening script's own functions in Spark SQL (the DuckDB macros of numbers.py and the few
# DuckDB list/JSON functions Spark lacks). Order matters: a function is defined before its users.
FUNCTIONS = [
    ("elig_gcd", f"(a {DEC}, b {DEC}) RETURNS {DEC} RETURN "
     # Euclid in at most 190 steps: enough for any pair below 10^38 (the Fibonacci bound is 183)
     f"aggregate(sequence(1, 190), named_struct('a', CAST(abs(a) AS {DEC}), 'b', CAST(abs(b) AS {DEC})), "
     f"(s, i) -> CASE WHEN s.b = 0 THEN s ELSE named_struct('a', s.b, 'b', CAST(s.a % s.b AS {DEC})) END, s -> s.a)"),
    ("elig_num", f"(f DOUBLE, n {DEC}, d {DEC}) RETURNS {NUM} RETURN "
     f"CASE WHEN n IS NULL OR d IS NULL OR d = 0 THEN named_struct('f', f, 'n', CAST(NULL AS {DEC}), 'd', CAST(NULL AS {DEC})) "
     f"ELSE named_struct('f', f, 'n', CAST((CASE WHEN d < 0 THEN -n ELSE n END) / elig_gcd(n, d) AS {DEC}), "
     f"'d', CAST(abs(d) / elig_gcd(n, d) AS {DEC})) END"),
    ("elig_text", "(v DOUBLE, raw STRING) RETURNS STRING RETURN "
     "CASE WHEN raw RLIKE '^-?[0-9]+$' THEN raw ELSE CAST(v AS STRING) END"),
    ("elig_rec", f"(v DOUBLE, raw STRING) RETURNS {NUM} RETURN "
     f"CASE WHEN v IS NULL THEN NULL ELSE elig_num(v, CAST(replace(CAST(CAST(elig_text(v, raw) AS DECIMAL(38,18)) AS STRING), '.', '') AS {DEC}), "
     f"CAST('1000000000000000000' AS {DEC})) END"),
    ("elig_mant", "(t STRING) RETURNS STRING RETURN split_part(lower(t), 'e', 1)"),
    ("elig_scale", "(t STRING) RETURNS INT RETURN "
     "(CASE WHEN contains(elig_mant(t), '.') THEN length(elig_mant(t)) - instr(elig_mant(t), '.') ELSE 0 END) "
     "- coalesce(CAST(nullif(split_part(lower(t), 'e', 2), '') AS INT), 0)"),
    ("elig_dec", f"(v DOUBLE, t STRING) RETURNS {NUM} RETURN "
     f"CASE WHEN v IS NULL THEN NULL ELSE named_struct('f', v, "
     f"'n', CAST(CAST(replace(elig_mant(t), '.', '') AS {DEC}) * CAST(concat('1', repeat('0', greatest(0, -elig_scale(t)))) AS {DEC}) AS {DEC}), "
     f"'d', CAST(concat('1', repeat('0', greatest(0, elig_scale(t)))) AS {DEC})) END"),
    ("elig_add", f"(a {NUM}, b {NUM}) RETURNS {NUM} RETURN elig_num(a.f + b.f, a.n * b.d + b.n * a.d, a.d * b.d)"),
    ("elig_sub", f"(a {NUM}, b {NUM}) RETURNS {NUM} RETURN elig_num(a.f - b.f, a.n * b.d - b.n * a.d, a.d * b.d)"),
    ("elig_mul", f"(a {NUM}, b {NUM}) RETURNS {NUM} RETURN elig_num(a.f * b.f, a.n * b.n, a.d * b.d)"),
    ("elig_div", f"(a {NUM}, b {NUM}) RETURNS {NUM} RETURN elig_num(a.f / b.f, a.n * b.d, a.d * b.n)"),
    ("elig_sign", f"(a {NUM}, b {NUM}) RETURNS INT RETURN "
     "CASE WHEN a.f - b.f > 1e-9 * (abs(b.f) + 1e0) THEN 1 WHEN a.f - b.f < -1e-9 * (abs(b.f) + 1e0) THEN -1 "
     "WHEN a.n IS NOT NULL AND b.n IS NOT NULL AND (a.n * b.d - b.n * a.d) IS NOT NULL "
     "THEN CAST(sign(a.n * b.d - b.n * a.d) AS INT) ELSE CAST(sign(a.f - b.f) AS INT) END"),
    ("elig_sign_rec", f"(v DOUBLE, raw STRING, b {NUM}) RETURNS INT RETURN "
     "CASE WHEN v - b.f > 1e-9 * (abs(b.f) + 1e0) THEN 1 WHEN v - b.f < -1e-9 * (abs(b.f) + 1e0) THEN -1 "
     "ELSE elig_sign(elig_dec(v, elig_text(v, raw)), b) END"),
    ("elig_sign_ref", f"(v DOUBLE, raw STRING, k {NUM}, r DOUBLE, rraw STRING) RETURNS INT RETURN "
     "CASE WHEN v - k.f * r > 1e-9 * (abs(k.f * r) + 1e0) THEN 1 WHEN v - k.f * r < -1e-9 * (abs(k.f * r) + 1e0) THEN -1 "
     "ELSE elig_sign(elig_dec(v, elig_text(v, raw)), elig_mul(k, elig_dec(r, elig_text(r, rraw)))) END"),
    ("elig_zero", f"(a {NUM}) RETURNS BOOLEAN RETURN CASE WHEN a.n IS NOT NULL THEN a.n = 0 ELSE a.f = 0 END"),
    ("elig_floor", f"(a {NUM}) RETURNS {DEC} RETURN CASE WHEN a.n IS NOT NULL THEN CAST(floor(a.n / a.d) AS {DEC}) "
     f"ELSE CAST(floor(a.f) AS {DEC}) END"),
    ("elig_isfinite", "(x DOUBLE) RETURNS BOOLEAN RETURN NOT isnan(x) AND abs(x) <> double('infinity')"),
    # DuckDB's list_bool_and/or: NULLs ignored, NULL for a list without a non-NULL element
    ("elig_bool_and", "(l ARRAY<BOOLEAN>) RETURNS BOOLEAN RETURN "
     "CASE WHEN size(filter(l, x -> x IS NOT NULL)) = 0 THEN NULL ELSE NOT array_contains(filter(l, x -> x IS NOT NULL), FALSE) END"),
    ("elig_bool_or", "(l ARRAY<BOOLEAN>) RETURNS BOOLEAN RETURN "
     "CASE WHEN size(filter(l, x -> x IS NOT NULL)) = 0 THEN NULL ELSE array_contains(filter(l, x -> x IS NOT NULL), TRUE) END"),
    # DuckDB's json_type names for a JSON text (and for the value at a path of it)
    ("elig_vtype", "(v VARIANT) RETURNS STRING RETURN "
     "CASE WHEN v IS NULL THEN NULL WHEN schema_of_variant(v) LIKE 'OBJECT%' THEN 'OBJECT' "
     "WHEN schema_of_variant(v) LIKE 'ARRAY%' THEN 'ARRAY' WHEN schema_of_variant(v) = 'STRING' THEN 'VARCHAR' "
     "WHEN schema_of_variant(v) = 'VOID' THEN 'NULL' WHEN schema_of_variant(v) = 'BOOLEAN' THEN 'BOOLEAN' "
     "WHEN schema_of_variant(v) IN ('BIGINT', 'INT', 'SMALLINT', 'TINYINT') THEN 'BIGINT' ELSE 'DOUBLE' END"),
    ("elig_json_type", "(j STRING) RETURNS STRING RETURN elig_vtype(try_parse_json(j))"),
    ("elig_json_type2", "(j STRING, p STRING) RETURNS STRING RETURN elig_vtype(try_variant_get(try_parse_json(j), p))"),
]
OWN = frozenset(n for n, _ in FUNCTIONS)


def _split_params(text: str) -> list[tuple[str, str]]:
    out, depth, cur = [], 0, ""
    for ch in text:
        if ch in "(<":
            depth += 1
        elif ch in ")>":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur)
    return [tuple(p.strip().split(None, 1)) for p in out]


def _parse_function(body: str):
    head, expr = body.split(" RETURN ", 1)
    params = head[head.index("(") + 1: head.rindex(") RETURNS")]
    return _split_params(params), expr


_INLINE = {n: _parse_function(b) for n, b in FUNCTIONS}
SPARK_TYPES = frozenset("INT BIGINT SMALLINT TINYINT DOUBLE FLOAT STRING BOOLEAN DATE TIMESTAMP DECIMAL ARRAY STRUCT "
                        "MAP VARIANT BINARY".split())
_RENAME = {"isfinite": "elig_isfinite", "list_bool_and": "elig_bool_and", "list_bool_or": "elig_bool_or",
           "list_intersect": "array_intersect", "elig_dedupe": "array_distinct", "try_strptime": "try_to_timestamp"}
_NOT_CALLS = frozenset("in as and or not when then else case over exists is like rlike between on using values from "
                       "select with join where filter".split())


def _function_sql() -> list[str]:
    return [f"CREATE OR REPLACE TEMPORARY FUNCTION {n}{body}" for n, body in FUNCTIONS]


def _json_path(node) -> str | None:
    p = node.args.get("expression")
    if isinstance(p, exp.JSONPath):
        return p.sql("spark").strip("'") if False else "$" + "".join(
            f".{k.this}" if isinstance(k, exp.JSONPathKey) else "" for k in p.expressions if not isinstance(k, exp.JSONPathRoot))
    if isinstance(p, exp.Literal) and p.is_string:
        return p.this
    return None


def _rewrite(node):
    """One DuckDB construct in its Spark form (sqlglot transform callback)."""
    if isinstance(node, exp.DataType) and node.this in (exp.DataType.Type.INT128, exp.DataType.Type.UINT128):
        return exp.DataType.build(DEC, dialect="spark")
    if isinstance(node, exp.Length):
        return exp.Anonymous(this="SIZE", expressions=[node.this])
    if isinstance(node, exp.Sub) and isinstance(node.expression, exp.Cast) and node.expression.to.this == exp.DataType.Type.DATE:
        return exp.Anonymous(this="DATEDIFF", expressions=[node.this, node.expression])
    if isinstance(node, exp.ArrayAgg) and isinstance(node.this, exp.Order):
        order = node.this
        ords = order.expressions
        if len(ords) == 1 and isinstance(ords[0].this, exp.Column) and isinstance(order.this, exp.Column) \
                and ords[0].this.table == order.this.name and not ords[0].args.get("desc"):
            x, key = order.this.sql("spark"), ords[0].this.name
            return sqlglot.parse_one(
                f"ARRAY_SORT(COLLECT_LIST({x}), (l_, r_) -> CASE WHEN l_.{key} < r_.{key} THEN -1 "
                f"WHEN l_.{key} > r_.{key} THEN 1 ELSE 0 END)", read="spark")
        return exp.Anonymous(this="ELIG_NO_SPARK_ORDERED_LIST", expressions=[order.this])
    if isinstance(node, (exp.JSONExtract, exp.JSONExtractScalar)) and isinstance(node.this, (exp.JSONExtract, exp.JSONExtractScalar)):
        outer, inner = _json_path(node), _json_path(node.this)
        if outer is not None and inner is not None:
            new = node.this.copy()
            path = inner + outer[1:]
            new.set("expression", exp.Literal.string(path))
            return new
    if isinstance(node, exp.Add) and isinstance(node.expression, exp.Interval) \
            and str(node.expression.unit.name if node.expression.unit else "").upper() == "MONTH":
        n = node.expression.this
        return exp.Anonymous(this="ADD_MONTHS", expressions=[node.this, n.this if isinstance(n, exp.Paren) else n])
    if isinstance(node, exp.RegexpFullMatch) and isinstance(node.expression, exp.Literal):
        return exp.RegexpLike(this=node.this, expression=exp.Literal.string(f"^(?:{node.expression.this})$"))
    if isinstance(node, exp.JSONType):
        node = exp.Anonymous(this="json_type", expressions=[a for a in (node.this, node.args.get("expression")) if a is not None])
    if isinstance(node, exp.Anonymous):
        name = node.name.lower()
        args = node.expressions
        if name == "json_type":
            if len(args) == 1 and isinstance(args[0], (exp.JSONExtract, exp.JSONExtractScalar)) and _json_path(args[0]):
                return exp.Anonymous(this="elig_json_type2", expressions=[args[0].this, exp.Literal.string(_json_path(args[0]))])
            if len(args) == 1:
                return exp.Anonymous(this="elig_json_type", expressions=args)
            return exp.Anonymous(this="elig_json_type2", expressions=args)
        if name == "regexp_full_match" and len(args) == 2 and isinstance(args[1], exp.Literal):
            return exp.RegexpLike(this=args[0], expression=exp.Literal.string(f"^(?:{args[1].this})$"))
        if name == "try_strptime":
            if len(args) == 2 and isinstance(args[1], exp.Literal) and args[1].this == "%Y-%m-%d":
                return exp.Anonymous(this="try_to_timestamp", expressions=[args[0], exp.Literal.string("yyyy-MM-dd")])
            return node
        if name in _RENAME:
            return exp.Anonymous(this=_RENAME[name], expressions=args)
    return node


def _step(node):
    new = _rewrite(node)
    if new is not node:  # the children of a rewritten node are rewritten too
        return new.transform(_step, copy=False)
    return node


def _rewritten(tree):
    """The tree with every DuckDB construct rewritten, in one pass."""
    return tree.transform(_step, copy=False)


_counter = [0]


def _inline_call(node):
    """An own function call replaced by its body, its arguments bound once by a one-element
    TRANSFORM (Spark refuses SQL functions inside higher-order functions, where they are used)."""
    if not (isinstance(node, exp.Anonymous) and node.name.lower() in _INLINE):
        return node
    params, body = _INLINE[node.name.lower()]
    args = [a.transform(_inline_call) for a in node.expressions]
    if len(args) != len(params):
        raise SqlCompileError([f"{node.name}: {len(args)} arguments for {len(params)} parameters"])
    _counter[0] += 1
    z = f"_z{_counter[0]}"
    names = {p for p, _ in params}

    def bind(n):
        if isinstance(n, exp.Column):
            root = n.table or n.name
            if root in names:
                if n.table:
                    return exp.Dot.build([exp.column(n.table, table=z), exp.to_identifier(n.name)])
                return exp.column(n.name, table=z)
        return n

    btree = sqlglot.parse_one(body, read="spark").transform(bind).transform(_inline_call)
    fields = ", ".join(f"'{p}', CAST(__a{i} AS {t})" for i, (p, t) in enumerate(params))
    wrap = sqlglot.parse_one(f"TRANSFORM(ARRAY(NAMED_STRUCT({fields})), {z} -> __body)[0]", read="spark")

    def fill(n):
        if isinstance(n, exp.Column) and not n.table:
            if n.name == "__body":
                return btree
            if n.name.startswith("__a"):
                return args[int(n.name[3:])]
        return n

    return wrap.transform(fill)


def _types(node):
    if isinstance(node, exp.DataType) and node.this in (exp.DataType.Type.INT128, exp.DataType.Type.UINT128):
        return exp.DataType.build(DEC, dialect="spark")
    return node


def inline(tree):
    # a last pass over the types: a HUGEINT may reach the tree through an inlined argument
    return tree.transform(_inline_call).transform(_types, copy=False)


def to_spark(sql: str) -> str:
    """One DuckDB statement or query in Spark SQL (sqlglot at RAISE, with the rewrites above)."""
    tree = inline(_rewritten(sqlglot.parse_one(sql, read="duckdb")))
    return tree.sql(dialect="spark", unsupported_level=ErrorLevel.RAISE)


_STR = re.compile(r"'(?:[^'\\]|\\.|'')*'")


def unknown_constructs(spark_sql: str) -> list[str]:
    """Calls and CAST targets of this Spark SQL that Spark does not have."""
    text = re.sub(r"/\*.*?\*/", " ", _STR.sub("''", spark_sql), flags=re.S)
    text = re.sub(r"`[^`]*`", "_", text)
    bad = []
    for m in re.finditer(r"\b([A-Za-z_][A-Za-z0-9_]*)\s*\(", text):
        n = m.group(1).lower()
        if n in _NOT_CALLS or n in SPARK_BUILTINS or n in OWN or n.upper() in SPARK_TYPES:
            continue
        bad.append(f"function {m.group(1)}()")
    for m in re.finditer(r"\bAS\s+([A-Z][A-Z0-9_]*)\b(?!\s*\()", text):
        if m.group(1) not in SPARK_TYPES and m.group(1) not in ("WITH", "SELECT"):
            bad.append(f"type {m.group(1)}")
    return sorted(set(bad))


@dataclass
class SparkScript:
    trial: str
    input_view: str
    query: str
    criteria: tuple

    def text(self) -> str:
        return (f"-- Elig screening script for {self.trial} (Spark SQL dialect), generated by `elig screen --engine spark`.\n"
                + self.input_view + ";\n\n"
                + "CREATE OR REPLACE TEMPORARY VIEW elig_results AS\n" + self.query + ";\n")


def build_spark(program, lowered, only=None) -> SparkScript:
    """The Spark SQL script; SqlCompileError naming every rule (file:line) with a construct that
    has no Spark form, at compile time."""
    script = build(program, lowered, only=only)
    where = {lc.ir.id: (lc.file, lc.ir.line) for lc in lowered.criteria}
    problems = []
    try:
        view = to_spark(script.input_view)
    except sqlglot.errors.SqlglotError as exc:
        raise SqlCompileError([f"the input view has no Spark SQL form: {exc}"])
    bad = unknown_constructs(view)
    if bad:
        problems.append(f"the input view (docs/sql.md tables): no Spark SQL form for {', '.join(bad)}")
    tree = inline(_rewritten(sqlglot.parse_one(script.query, read="duckdb")))
    with_ = tree.args.get("with") or tree.args.get("with_")
    for cte in (with_.expressions if with_ else []):
        name = cte.alias
        rid = name.split("__")[0]
        try:
            text = cte.this.sql(dialect="spark", unsupported_level=ErrorLevel.RAISE)
        except sqlglot.errors.SqlglotError as exc:
            bad = [str(exc).splitlines()[0]]
        else:
            bad = unknown_constructs(text)
        if bad:
            f, line = where.get(rid, ("?", 0))
            label = f"{f}:{line}: rule {rid}" if rid in where else f"the result query ({name})"
            problems.append(f"{label}: no Spark SQL form for {', '.join(bad)}")
    try:
        query = tree.sql(dialect="spark", unsupported_level=ErrorLevel.RAISE)
    except sqlglot.errors.SqlglotError as exc:
        problems.append(f"the result query: no Spark SQL form: {exc}")
        query = ""
    if not problems:
        tail = unknown_constructs(query)
        if tail:
            problems.append(f"the result query: no Spark SQL form for {', '.join(tail)}")
    if problems:
        raise SqlCompileError(problems)
    return SparkScript(script.trial, view, query, script.criteria)


# ---------------------------------------------------------------------------------------------
# Running on a SparkSession

def session(master: str = "local[2]", app: str = "elig-screen"):
    from pyspark.sql import SparkSession

    return (SparkSession.builder.master(master).appName(app)
            .config("spark.ui.enabled", "false")
            # the screening query nests deeply: Spark's SQL parser needs a deep thread stack
            .config("spark.driver.extraJavaOptions", "-Xss1g")
            .config("spark.sql.shuffle.partitions", "4")
            .config("spark.sql.ansi.enabled", "false")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.jsonGenerator.ignoreNullFields", "false")
            .getOrCreate())


def configure(spark) -> None:
    """Session settings the script's meaning depends on (NULL on overflow, nulls kept in JSON)."""
    spark.conf.set("spark.sql.ansi.enabled", "false")
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    spark.conf.set("spark.sql.jsonGenerator.ignoreNullFields", "false")


class _Con:
    """DuckDB-connection-shaped access to a SparkSession for the engine-neutral helpers
    (screen.resolve_units, cli_screen.summary_text): each statement is printed in Spark SQL."""

    def __init__(self, spark):
        self.spark = spark
        self._rows = []

    def execute(self, sql: str):
        m = re.match(r"\s*CREATE OR REPLACE TEMP TABLE (\w+) \((.*)\)\s*$", sql, re.S)
        if m:  # an empty table of these columns
            cols = ", ".join(f"CAST(NULL AS STRING) AS {c.split()[0]}" for c in m.group(2).split(","))
            self.spark.sql(f"SELECT {cols} WHERE FALSE").createOrReplaceTempView(m.group(1))
            self._rows = []
            return self
        self._rows = [tuple(r) for r in self.spark.sql(to_spark(sql)).collect()]
        return self

    def executemany(self, sql: str, rows):
        m = re.match(r"\s*INSERT INTO (\w+) VALUES", sql)
        table = m.group(1)
        old = self.spark.table(table)
        new = self.spark.createDataFrame([tuple(r) for r in rows], old.schema)
        old.unionByName(new).createOrReplaceTempView(table + "_new")
        self.spark.table(table + "_new").cache().createOrReplaceTempView(table)
        return self

    def fetchall(self):
        return self._rows

    def fetchone(self):
        return self._rows[0] if self._rows else None


def open_parquet(spark, directory: str) -> int:
    """Temporary views over the tables of a Parquet directory written by `elig load`."""
    from pathlib import Path

    d = Path(directory)
    for t in loader.TABLES:
        f = d / f"{t}.parquet"
        if not f.is_file():
            raise FileNotFoundError(f"{f}: missing (a screening Parquet directory has {', '.join(loader.TABLES)})")
        spark.read.parquet(str(f.resolve())).createOrReplaceTempView(t)
    return spark.table("patients").count()


def run(spark, program, module, script: SparkScript):
    """Run the script over the tables of the session: results in the cached view elig_screened."""
    from .screen import resolve_units

    configure(spark)
    resolve_units(_Con(spark), program, module)
    spark.sql(script.view_sql() if hasattr(script, "view_sql") else script.input_view)
    df = spark.sql(script.query)
    df.cache().createOrReplaceTempView("elig_screened")
    return df


def results(spark):
    """Result-format-1 JSON texts in input order."""
    for row in spark.sql("SELECT result FROM elig_screened ORDER BY seq").toLocalIterator():
        yield row[0]


def summary(spark, script) -> str:
    from .cli_screen import summary_text

    return summary_text(_Con(spark), script)


def write_results_parquet(spark, script, directory: str) -> str:
    """DIRECTORY/results.parquet as DuckDB writes it (seq, patient_id, status, error, out__/miss__
    per criterion, in input order), written into a private directory and moved into place."""
    from pathlib import Path

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    cols = ", ".join(f"`out__{c}`, `miss__{c}`" for c, _, _ in script.criteria)
    tmp = tempfile.mkdtemp(dir=d, prefix=".results.spark.")
    try:
        df = spark.sql(f"SELECT seq, patient_id, status, error{', ' + cols if cols else ''} FROM elig_screened ORDER BY seq")
        df.coalesce(1).write.mode("overwrite").parquet(os.path.join(tmp, "out"))
        parts = sorted(p for p in os.listdir(os.path.join(tmp, "out")) if p.endswith(".parquet"))
        if len(parts) != 1:
            raise RuntimeError(f"Spark wrote {len(parts)} result files, expected one")
        os.replace(os.path.join(tmp, "out", parts[0]), d / "results.parquet")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return str(d / "results.parquet")


def load_json_lines_to_parquet(jsonl: str, directory: str) -> int:
    """The loader's Parquet tables of a JSON Lines file (the loader runs on DuckDB: `elig load`)."""
    from . import screen as S

    tmp = tempfile.mkdtemp(prefix="elig-spark-load-")
    try:
        con = S.connect(os.path.join(tmp, "work.duckdb"))
        n = loader.load_jsonl(con, jsonl)
        loader.write_parquet(con, directory)
        con.close()
        return n
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


__all__ = ["build_spark", "to_spark", "unknown_constructs", "session", "open_parquet", "run", "results",
           "summary", "write_results_parquet", "SparkScript", "json"]
