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
functions over STRUCT<f DOUBLE, n DECIMAL(38,0), d DECIMAL(38,0), e INT>, the value n/d x 10^e
(Spark has no 128-bit integer; DECIMAL(38,0) with ANSI mode off gives NULL on overflow, as
DuckDB's TRY does, and the comparison is then unknown, exactly where the DuckDB script's is). A record number
near a constant or k x a reference (elig_sign_rec, elig_sign_ref) is compared by numbers.py's
keys instead (elig_xkey, elig_ckey, elig_ksign below): exact at any exponent.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import sqlglot
from sqlglot import ErrorLevel, exp, jsonpath

from .. import cache
from .script import SqlCompileError, build
from . import spark_lists
from .spark_functions import SPARK_BUILTINS

NUM = "STRUCT<f: DOUBLE, n: DECIMAL(38,0), d: DECIMAL(38,0), e: INT>"
DEC = "DECIMAL(38,0)"

# The screening script's own functions in Spark SQL: the DuckDB macros of numbers.py (by name)
# and the few DuckDB list/JSON functions Spark lacks. Each is inlined where it is called (Spark
# refuses SQL functions inside higher-order functions). Exact numbers are fractions n/d of
# DECIMAL(38,0) that are NOT reduced (no gcd: a gcd has no Spark built-in, and as a 190-step
# AGGREGATE it made plans that Spark could not finish); a fraction is exact whether reduced or not,
# only its size differs, and an overflow (NULL with ANSI off, as DuckDB's TRY) makes the
# comparison unknown exactly where DuckDB's is. Record numbers keep denominators of 1: a number is
# its decimal text's digits times 10^e (docs/sql-spark.md, "Exact numbers").
FUNCTIONS = [
    ("elig_nume", f"(f DOUBLE, n {DEC}, d {DEC}, e INT) RETURNS {NUM} RETURN "
     f"CASE WHEN n IS NULL OR d IS NULL OR d = 0 OR e IS NULL "
     f"THEN named_struct('f', f, 'n', CAST(NULL AS {DEC}), 'd', CAST(NULL AS {DEC}), 'e', 0) "
     f"ELSE named_struct('f', f, 'n', CAST(CASE WHEN d < 0 THEN -n ELSE n END AS {DEC}), 'd', CAST(abs(d) AS {DEC}), 'e', e) END"),
    ("elig_num", f"(f DOUBLE, n {DEC}, d {DEC}) RETURNS {NUM} RETURN elig_nume(f, n, d, 0)"),
    # 10^k (0 <= k), NULL beyond DECIMAL(38,0)
    ("elig_p10", f"(k INT) RETURNS {DEC} RETURN CASE WHEN k <= 37 THEN CAST(concat('1', repeat('0', k)) AS {DEC}) END"),
    # the decimal text of a double: Java's Double.toString, unless that has more than 15 significant
    # digits and the 15-digit rounding reads back as the same double (then that is the shortest
    # text, Python's repr; Java 17 prints some doubles, such as 2e23, with more digits than needed)
    ("elig_dtext", "(v DOUBLE) RETURNS STRING RETURN "
     "CASE WHEN v <> 0 AND abs(v) < 2.2250738585072014E-308 THEN elig_dsub(v) "
     "WHEN length(CAST(v AS STRING)) > 17 AND CAST(printf('%.15g', v) AS DOUBLE) = v THEN printf('%.15g', v) "
     "ELSE CAST(v AS STRING) END"),
    # a subnormal double (precision below 16 digits; Java 17 prints 5e-324 as 4.9E-324): the
    # shortest of its roundings to 1..17 significant digits that reads back as the same double
    ("elig_dsub", "(v DOUBLE) RETURNS STRING RETURN "
     "filter(transform(sequence(0, 16), _dp -> printf(concat('%.', _dp, 'e'), v)), _ds -> CAST(_ds AS DOUBLE) = v)[0]"),
    ("elig_text", "(v DOUBLE, raw STRING) RETURNS STRING RETURN "
     "CASE WHEN raw RLIKE '^-?[0-9]+$' THEN raw ELSE elig_dtext(v) END"),
    ("elig_textn", f"(v DOUBLE, vi {DEC}) RETURNS STRING RETURN "
     "CASE WHEN vi IS NOT NULL THEN CAST(vi AS STRING) ELSE elig_dtext(v) END"),
    ("elig_int", f"(raw STRING) RETURNS {DEC} RETURN CASE WHEN raw RLIKE '^-?[0-9]{{1,38}}$' THEN CAST(raw AS {DEC}) END"),
    ("elig_mant", "(t STRING) RETURNS STRING RETURN split_part(lower(t), 'e', 1)"),
    ("elig_scale", "(t STRING) RETURNS INT RETURN "
     "(CASE WHEN contains(elig_mant(t), '.') THEN length(elig_mant(t)) - instr(elig_mant(t), '.') ELSE 0 END) "
     "- coalesce(CAST(nullif(replace(split_part(lower(t), 'e', 2), '+', ''), '') AS INT), 0)"),
    # a number text as its digits (trailing zeros dropped) times 10^e: exact at any exponent
    ("elig_digits", "(t STRING) RETURNS STRING RETURN regexp_replace(replace(elig_mant(t), '.', ''), '0+$', '')"),
    ("elig_dec", f"(v DOUBLE, t STRING) RETURNS {NUM} RETURN "
     f"CASE WHEN v IS NULL THEN NULL ELSE named_struct('f', v, "
     f"'n', CASE WHEN replace(elig_digits(t), '-', '') = '' THEN CAST(0 AS {DEC}) ELSE CAST(elig_digits(t) AS {DEC}) END, "
     f"'d', CAST(1 AS {DEC}), "
     f"'e', length(replace(elig_mant(t), '.', '')) - length(elig_digits(t)) - elig_scale(t)) END"),
    ("elig_rec", f"(v DOUBLE, raw STRING) RETURNS {NUM} RETURN elig_dec(v, elig_text(v, raw))"),
    ("elig_addn", f"(f DOUBLE, an {DEC}, ad {DEC}, ae INT, bn {DEC}, bd {DEC}, be INT) RETURNS {NUM} RETURN "
     "elig_nume(f, CASE WHEN an = 0 THEN bn WHEN bn = 0 THEN an "
     "ELSE an * bd * elig_p10(ae - least(ae, be)) + bn * ad * elig_p10(be - least(ae, be)) END, "
     "CASE WHEN an = 0 THEN bd WHEN bn = 0 THEN ad ELSE ad * bd END, "
     "CASE WHEN an = 0 THEN be WHEN bn = 0 THEN ae ELSE least(ae, be) END)"),
    ("elig_add", f"(a {NUM}, b {NUM}) RETURNS {NUM} RETURN elig_addn(a.f + b.f, a.n, a.d, a.e, b.n, b.d, b.e)"),
    ("elig_sub", f"(a {NUM}, b {NUM}) RETURNS {NUM} RETURN elig_addn(a.f - b.f, a.n, a.d, a.e, -b.n, b.d, b.e)"),
    ("elig_mul", f"(a {NUM}, b {NUM}) RETURNS {NUM} RETURN elig_nume(a.f * b.f, a.n * b.n, a.d * b.d, a.e + b.e)"),
    ("elig_div", f"(a {NUM}, b {NUM}) RETURNS {NUM} RETURN elig_nume(a.f / b.f, a.n * b.d, a.d * b.n, a.e - b.e)"),
    # the sign of p x 10^pe - q x 10^qe (numbers.py's elig_esign): NULL where p or q overflowed
    ("elig_esign", f"(p {DEC}, pe INT, q {DEC}, qe INT) RETURNS INT RETURN "
     "CASE WHEN p IS NULL OR q IS NULL OR pe IS NULL OR qe IS NULL THEN NULL "
     "WHEN sign(p) <> sign(q) OR p = 0 THEN CAST(sign(sign(p) - sign(q)) AS INT) "
     "WHEN pe = qe THEN CAST(sign(p - q) AS INT) "
     "WHEN length(CAST(abs(p) AS STRING)) + pe <> length(CAST(abs(q) AS STRING)) + qe "
     "THEN CAST(sign(p) * sign(length(CAST(abs(p) AS STRING)) + pe - length(CAST(abs(q) AS STRING)) - qe) AS INT) "
     "ELSE CAST(sign(p) AS INT) * (CASE WHEN rpad(CAST(abs(p) AS STRING), 40, '0') > rpad(CAST(abs(q) AS STRING), 40, '0') THEN 1 "
     "WHEN rpad(CAST(abs(p) AS STRING), 40, '0') < rpad(CAST(abs(q) AS STRING), 40, '0') THEN -1 ELSE 0 END) END"),
    ("elig_sign", f"(a {NUM}, b {NUM}) RETURNS INT RETURN "
     "CASE WHEN NOT isnan(a.f - b.f) AND a.f - b.f > 1e-9 * (abs(b.f) + 1e0) THEN 1 "
     "WHEN NOT isnan(a.f - b.f) AND a.f - b.f < -1e-9 * (abs(b.f) + 1e0) THEN -1 "
     "ELSE elig_esign(a.n * b.d, a.e, b.n * a.d, b.e) END"),
    # the exact comparison of a record number near a limit, by keys (numbers.py's elig_xkey and
    # elig_ksign): texts that sort as the numbers do, exact at any exponent. elig_xkey: the key of
    # the integer p times 10^e (negative where neg); elig_ckey: of the number text t times the
    # integer c (c's trailing zeros taken into e); NULL where the digits times c pass DECIMAL(38,0)
    # (with ANSI off), and the doubles' sign then decides, as in DuckDB's macros
    ("elig_xkey", "(p STRING, e INT, neg BOOLEAN) RETURNS STRING RETURN "
     "CASE WHEN p = '0' THEN '1' ELSE concat(CASE WHEN neg THEN '0' ELSE '2' END, "
     "translate(concat(lpad(CAST(length(p) + e + 50000 AS STRING), 6, '0'), rpad(p, 80, '0')), '0123456789', "
     "CASE WHEN neg THEN '9876543210' ELSE '0123456789' END)) END"),
    ("elig_ckeye", f"(t STRING, c {DEC}, ce INT) RETURNS STRING RETURN "
     f"CASE WHEN c = 0 THEN '1' ELSE elig_xkey(CAST(CAST(CAST(replace(replace(elig_mant(t), '-', ''), '.', '') AS {DEC}) "
     f"* CAST(regexp_replace(CAST(abs(c) AS STRING), '0+$', '') AS {DEC}) AS {DEC}) AS STRING), "
     "length(CAST(abs(c) AS STRING)) - length(regexp_replace(CAST(abs(c) AS STRING), '0+$', '')) - elig_scale(t) + ce, "
     "(substr(t, 1, 1) = '-') <> (c < 0)) END"),
    ("elig_ckey", f"(t STRING, c {DEC}) RETURNS STRING RETURN elig_ckeye(t, c, 0)"),
    ("elig_ksign", "(a STRING, b STRING, f DOUBLE) RETURNS INT RETURN "
     "CASE WHEN a > b THEN 1 WHEN a < b THEN -1 WHEN a = b THEN 0 ELSE CAST(sign(f) AS INT) END"),
    ("elig_sign_rec", f"(v DOUBLE, vi {DEC}, b {NUM}) RETURNS INT RETURN "
     "CASE WHEN v - b.f > 1e-9 * (abs(b.f) + 1e0) THEN 1 WHEN v - b.f < -1e-9 * (abs(b.f) + 1e0) THEN -1 "
     "ELSE elig_ksign(elig_ckey(elig_textn(v, vi), b.d), elig_ckeye('1', b.n, b.e), v - b.f) END"),
    ("elig_sign_ref", f"(v DOUBLE, vi {DEC}, k {NUM}, r DOUBLE, ri {DEC}) RETURNS INT RETURN "
     "CASE WHEN v - k.f * r > 1e-9 * (abs(k.f * r) + 1e0) THEN 1 WHEN v - k.f * r < -1e-9 * (abs(k.f * r) + 1e0) THEN -1 "
     "ELSE elig_ksign(elig_ckey(elig_textn(v, vi), k.d), elig_ckeye(elig_textn(r, ri), k.n, k.e), v - k.f * r) END"),
    ("elig_zero", f"(a {NUM}) RETURNS BOOLEAN RETURN CASE WHEN a.n IS NOT NULL THEN a.n = 0 ELSE a.f = 0 END"),
    # floor division of DECIMALs: `div` truncates toward zero, hence the negative branch (DuckDB's
    # macro); floor(n/d x 10^e): 0 or -1 where d x 10^-e passes DECIMAL(38,0) (|n/d x 10^e| < 1)
    ("elig_fdiv", f"(n {DEC}, d {DEC}) RETURNS {DEC} RETURN CAST(CASE WHEN n >= 0 THEN n div d ELSE -((-n + d - 1) div d) END AS {DEC})"),
    ("elig_efloor", f"(n {DEC}, d {DEC}, e INT) RETURNS {DEC} RETURN "
     f"CASE WHEN n IS NULL OR d IS NULL OR d <= 0 OR e IS NULL THEN NULL WHEN e >= 0 THEN elig_fdiv(n * elig_p10(e), d) "
     f"WHEN d * elig_p10(-e) IS NULL THEN CAST(CASE WHEN n >= 0 THEN 0 ELSE -1 END AS {DEC}) ELSE elig_fdiv(n, d * elig_p10(-e)) END"),
    ("elig_floor", f"(a {NUM}) RETURNS {DEC} RETURN coalesce(elig_efloor(a.n, a.d, a.e), CAST(floor(a.f) AS {DEC}))"),
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
_NOT_CALLS = frozenset("try_cast in as and or not when then else case over exists is like rlike between on using values from "
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


def _spark_path(arg):
    """A JSON path literal in the form Spark's paths read: DuckDB's quoted key `$."size".unit`
    (the attributes with units, compiler/sql/screen.resolve_units) is `$.size.unit` (a key that
    is not a plain name `$['a b']`); Spark's variant path reads `"size"` with its quotes as the
    key, finds nothing, and the attribute's unit was left unresolved (unknown where DuckDB
    decides). Any other argument as it is."""
    if not (isinstance(arg, exp.Literal) and arg.is_string):
        return arg
    try:
        path = jsonpath.parse(arg.this)
    except sqlglot.errors.ParseError:
        return arg
    if not all(isinstance(k, exp.JSONPathRoot) or isinstance(k, exp.JSONPathKey) and isinstance(k.this, str)
               and not re.search(r"['\]\\]", k.this) for k in path.expressions):
        return arg
    return exp.Literal.string("$" + "".join(
        f".{k.this}" if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k.this) else "['" + k.this + "']"
        for k in path.expressions if isinstance(k, exp.JSONPathKey)))


# The columns of the screening tables (docs/sql.md), for DuckDB's `* EXCLUDE (...)`, which Spark
# SQL does not have: the star is written out as these columns minus the excluded ones.
TABLE_COLUMNS = {
    "observations": ("seq", "idx", "code", "date_raw", "date", "date_why", "value_raw", "value_num", "value_str",
                     "unit_raw", "unit", "uln_raw", "uln", "lln_raw", "lln", "lloq_raw", "lloq", "attributes"),
    "conditions": ("seq", "idx", "code", "onset_raw", "onset", "onset_why", "end_raw", "end", "end_why", "status_raw",
                   "status", "attributes"),
    "procedures": ("seq", "idx", "code", "date_raw", "date", "date_why", "attributes"),
}


def _star_except(node):
    """`[t.]* EXCLUDE (cols)` over one of TABLE_COLUMNS' tables: the remaining columns, named."""
    star = node.this if isinstance(node, exp.Column) else node
    excluded = star.args.get("except_") or star.args.get("except")
    if not isinstance(star, exp.Star) or not excluded:
        return None
    table = node.table if isinstance(node, exp.Column) else ""
    select = node.find_ancestor(exp.Select)
    src = select.args.get("from_") or select.args.get("from") if select else None
    names = []
    if src is not None:
        for t in [src.this] + [j.this for j in select.args.get("joins") or []]:
            if isinstance(t, exp.Table) and (not table or t.alias_or_name == table):
                names.append(t.name)
    if len(names) != 1 or names[0] not in TABLE_COLUMNS:
        return exp.Anonymous(this="ELIG_NO_SPARK_STAR_EXCLUDE", expressions=[])
    drop = {e.name for e in excluded}
    return [exp.column(c, table=table or None, quoted=c in ("end", "date")) for c in TABLE_COLUMNS[names[0]] if c not in drop]


def _rewrite(node):
    """One DuckDB construct in its Spark form (sqlglot transform callback)."""
    if isinstance(node, exp.DataType) and node.this in (exp.DataType.Type.INT128, exp.DataType.Type.UINT128):
        return _type(DEC)
    if isinstance(node, exp.Length):
        return exp.Anonymous(this="SIZE", expressions=[node.this])
    if isinstance(node, exp.Sub) and isinstance(node.expression, exp.Cast) and node.expression.to.this == exp.DataType.Type.DATE:
        return exp.Anonymous(this="DATEDIFF", expressions=[node.this, node.expression])
    new = spark_lists.rewrite(node)  # list(), list_concat, flatten, list_distinct, MATERIALIZED
    if new is not node or node.meta.get(spark_lists._DONE):
        return new
    if isinstance(node, (exp.JSONExtract, exp.JSONExtractScalar)) and isinstance(node.this, (exp.JSONExtract, exp.JSONExtractScalar)):
        outer, inner = _json_path(node), _json_path(node.this)
        if outer is not None and inner is not None:
            new = node.this.copy()
            path = inner + outer[1:]
            new.set("expression", exp.Literal.string(path))
            return new
    if isinstance(node, (exp.Add, exp.Sub)) and isinstance(node.expression, exp.Interval) \
            and str(node.expression.unit.name if node.expression.unit else "").upper() == "MONTH":
        # a date shifted by n calendar months, clamped to the month's end as DuckDB's date +/-
        # INTERVAL n MONTH (minus: an age in completed calendar months, gen_age._age_months)
        n = node.expression.this
        n = n.this if isinstance(n, exp.Paren) else n
        if isinstance(node, exp.Sub):
            n = exp.Neg(this=exp.Paren(this=n))
        return exp.Anonymous(this="ADD_MONTHS", expressions=[node.this, n])
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
            return exp.Anonymous(this="elig_json_type2", expressions=[args[0], _spark_path(args[1])] + args[2:])
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


def _expand_stars(tree):
    for select in list(tree.find_all(exp.Select)):
        out, changed = [], False
        for e in select.expressions:
            cols = _star_except(e)
            if cols is None:
                out.append(e)
            else:
                changed = True
                out.extend(cols if isinstance(cols, list) else [cols])
        if changed:
            select.set("expressions", out)
    return tree


def _rewritten(tree):
    """The tree with every DuckDB construct rewritten, in one pass."""
    return _expand_stars(spark_lists.unique_ctes(tree)).transform(_step, copy=False)


_counter = [0]


_BODIES: dict = {}


def _body_tree(name: str):
    """A copy of the parsed body of one of FUNCTIONS (parsed once)."""
    if name not in _BODIES:
        _BODIES[name] = sqlglot.parse_one(_INLINE[name][1], read="spark")
    return _BODIES[name].copy()


_TYPES: dict = {}


def _type(t: str):
    """A copy of the parsed Spark type t (parsed once)."""
    if t not in _TYPES:
        _TYPES[t] = exp.DataType.build(t, dialect="spark")
    return _TYPES[t].copy()


def _simple(arg) -> bool:
    """An argument cheap enough to repeat where its parameter is used (a column, a field, a literal)."""
    while isinstance(arg, (exp.Cast, exp.Paren, exp.Neg)):
        arg = arg.this
    if isinstance(arg, exp.Dot):
        return all(_simple(a) for a in (arg.this, arg.expression))
    return isinstance(arg, (exp.Column, exp.Literal, exp.Null, exp.Boolean, exp.Identifier))


def _inline_call(node):
    """An own function call replaced by its body (Spark refuses SQL functions inside higher-order
    functions, where they are used): a simple argument is written where its parameter is used,
    any other is bound once by a one-element TRANSFORM."""
    if not (isinstance(node, exp.Anonymous) and node.name.lower() in _INLINE):
        return node
    params, body = _INLINE[node.name.lower()]
    args = [a.transform(_inline_call, copy=False) for a in node.expressions]
    if len(args) != len(params):
        raise SqlCompileError([f"{node.name}: {len(args)} arguments for {len(params)} parameters"])
    _counter[0] += 1
    z = f"_z{_counter[0]}"
    bound = {p for (p, _), a in zip(params, args) if not _simple(a)}
    direct = {p: exp.Cast(this=a, to=_type(t)) for (p, t), a in zip(params, args) if _simple(a)}

    def bind(n):
        if isinstance(n, exp.Column):
            root = n.table or n.name
            if root in bound:
                if n.table:
                    return exp.Dot.build([exp.column(n.table, table=z), exp.to_identifier(n.name)])
                return exp.column(n.name, table=z)
            if root in direct:
                if n.table:
                    return exp.Dot.build([exp.Paren(this=direct[root].copy()), exp.to_identifier(n.name)])
                return exp.Paren(this=direct[root].copy())
        return n

    btree = _body_tree(node.name.lower()).transform(bind, copy=False).transform(_inline_call, copy=False)
    if not bound:  # in parentheses: the body replaces a call, an operand of any operator
        return exp.Paren(this=btree)
    fields = ", ".join(f"'{p}', CAST(__a{i} AS {t})" for i, (p, t) in enumerate(params) if p in bound)
    wrap = sqlglot.parse_one(f"TRANSFORM(ARRAY(NAMED_STRUCT({fields})), {z} -> __body)[0]", read="spark")

    def fill(n):
        if isinstance(n, exp.Column) and not n.table:
            if n.name == "__body":
                return btree
            if n.name.startswith("__a"):
                return args[int(n.name[3:])]
        return n

    return wrap.transform(fill, copy=False)


def _types(node):
    if isinstance(node, exp.DataType) and node.this in (exp.DataType.Type.INT128, exp.DataType.Type.UINT128):
        return _type(DEC)
    return node


# nodes printed as one self-delimited term (a name, a literal, a call, CASE ... END, x[i]): a
# parenthesis around one of them changes nothing but the text Spark's parser has to read
_TERMS = (exp.Column, exp.Dot, exp.Literal, exp.Func, exp.Paren, exp.Bracket, exp.Null, exp.Boolean, exp.Identifier)
_NOT_TERMS = (exp.Binary, exp.Unary, exp.Predicate, exp.Subquery, exp.Query, exp.Lambda)


def _delimits(parent, child) -> bool:
    """Whether the text around CHILD in PARENT ends any expression written there: an argument of
    a call (between `(` or `,` and `,` or `)`), a CASE's condition or value (between keywords),
    a lambda's body (ends at the call's `,` or `)`)."""
    if isinstance(parent, (exp.If, exp.Case)):
        return True
    if isinstance(parent, exp.Lambda):
        return child is parent.this
    if isinstance(parent, exp.Func) and not isinstance(parent, _NOT_TERMS):
        return child.arg_key != "to"
    return False


def _tidy(tree):
    """The same expression in less text: parentheses around a single term dropped, and
    CAST(CAST(x AS t) AS t) written once. Spark's parser spends most of a criterion's planning
    time on its deeply nested text (docs/sql-spark.md, "Speed")."""
    while True:
        changed = False
        for p in list(tree.find_all(exp.Paren)):
            inner, parent = p.this, p.parent
            if parent is None or isinstance(inner, (exp.Subquery, exp.Query)):
                continue
            if (isinstance(inner, _TERMS) and not isinstance(inner, _NOT_TERMS)) or _delimits(parent, p):
                p.replace(inner)
                changed = True
        for c in list(tree.find_all(exp.Cast)):
            inner = c.this
            if c.parent is not None and type(inner) is type(c) and inner.to == c.to:
                c.replace(inner)
                changed = True
        if not changed:
            return tree


def inline(tree):
    _counter[0] = 0  # the names of the bound arguments: the same text for the same query
    # a last pass over the types: a HUGEINT may reach the tree through an inlined argument
    return _tidy(tree.transform(_inline_call).transform(_types, copy=False))


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
        if re.search(r"\bAS\s+$", text[max(0, m.start() - 8):m.start()]):
            continue  # a table alias with its column names (`VALUES ... AS k(code, ...)`), not a call
        bad.append(f"function {m.group(1)}()")
    for m in re.finditer(r"\bAS\s+([A-Z][A-Z0-9_]*)\b(?!\s*\()", text):
        if m.group(1) not in SPARK_TYPES and m.group(1) not in ("WITH", "SELECT"):
            bad.append(f"type {m.group(1)}")
    return sorted(set(bad))


@dataclass
class SparkScript:
    """The Spark SQL of a trial: one query per criterion (each gives the narrow table `seq,
    out__<id>, miss__<id>`) and the result query that joins them by seq (over the tables elig_k0,
    elig_k1... of the criteria, in order).

    The relational form (default; compiler/sql/relational.py): the work tables ``prep`` (name,
    query, sort order) are written once, and the criteria read them; the criteria in
    ``lambda_ids`` are in the lambda form and read the materialised input view elig_input
    (``input_view``, "" when no criterion needs it). ``fallbacks``: (criterion id, why) of the
    criteria whose relational form has no faithful Spark SQL, kept in the lambda form."""
    trial: str
    input_view: str
    queries: tuple  # (criterion id, Spark SQL) in the trial's order
    result_query: str
    criteria: tuple  # (id, ref, kind)
    prep: tuple = ()
    lambda_ids: frozenset = frozenset()
    fallbacks: tuple = ()

    def text(self) -> str:
        parts = [f"-- Elig screening script for {self.trial} (Spark SQL dialect), generated by `elig screen --engine spark`.\n"
                 "-- Run in this order: the work tables (materialised), each criterion into elig_k<i>, the results.\n"]
        for name, sql, _ in self.prep:
            parts.append(f"CREATE OR REPLACE TEMPORARY VIEW {name} AS\n{sql};\n")
        if self.input_view:
            parts.append(self.input_view + ";\n")
        for i, (cid, sql) in enumerate(self.queries):
            form = " (lambda form)" if self.prep and cid in self.lambda_ids else ""
            parts.append(f"-- {cid}{form}\nCREATE OR REPLACE TEMPORARY VIEW elig_k{i} AS\n{sql};\n")
        parts.append("CREATE OR REPLACE TEMPORARY VIEW elig_screened AS\n" + self.result_query + ";\n")
        return "\n".join(parts)


def _criterion_query(program, lowered, cid: str) -> str:
    """The DuckDB query of one criterion, its outer SELECT cut down to seq, outcome and missing,
    in Spark SQL (sqlglot at RAISE)."""
    return _transpile_criterion(build(program, lowered, only={cid}).query, cid)


def _transpile_criterion(duck_query: str, cid: str) -> str:
    tree = inline(_rewritten(sqlglot.parse_one(duck_query, read="duckdb")))
    tree.set("expressions", [exp.column("seq"), exp.column(f"out__{cid}", quoted=True),
                             exp.column(f"miss__{cid}", quoted=True)])
    return tree.sql(dialect="spark", unsupported_level=ErrorLevel.RAISE)


# ------------------------------------------------------------------ the transpiled SQL, cached

CACHE_VERSION = "elig-spark-sql-v1"


def code_version() -> str:
    """The content hash of the transpiler's own source (this file and the list of Spark
    built-ins): an edit to either makes every cached Spark SQL stale."""
    h = hashlib.sha256()
    for f in ("spark.py", "spark_functions.py", "spark_lists.py", "spark_relational.py"):
        h.update(Path(__file__).with_name(f).read_bytes())
    return h.hexdigest()


def _cache_slot(trial: str, ids: list[str]) -> tuple[str, ...]:
    """(entry file name, ) of a trial's script: one file per trial and set of criteria, rewritten
    when the rules change (the key, not the name, says what it was built from)."""
    return (f"spark-sql-{cache.entry_key(trial, *ids)[:16]}.json",)


def _cache_key(fingerprint: str, duck_view: str, duck_queries, tables=()) -> str:
    """What the Spark SQL is derived from: the rules (their fingerprint and the DuckDB text the
    transpiler reads: the input view, the relational form's work tables (name, sql, order) and
    each criterion's query), sqlglot's version and the transpiler's source."""
    parts = [CACHE_VERSION, sqlglot.__version__, code_version(), fingerprint, duck_view]
    for table in tables:
        parts += list(table)
    for cid, q in duck_queries:
        parts += [cid, q]
    return cache.entry_key(*parts)


def _cache_read(name: str, key: str, ids: list[str]):
    """The cached entry (a dict whose "queries" are (id, Spark SQL) pairs for exactly ``ids`` and
    "input_view" a text), or None when there is none or it is not well formed."""
    payload = cache.read(name, key)
    if payload is None:
        return None
    try:
        data = json.loads(payload)
        data["queries"] = [tuple(x) for x in data["queries"]]
        view, queries = data["input_view"], data["queries"]
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(view, str) or [q[0] for q in queries] != ids or \
            not all(len(q) == 2 and isinstance(q[1], str) for q in queries):
        return None
    return data


def _q(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def result_query(program, lowered, criteria) -> str:
    """The results over the criteria tables elig_k<i>: status (cohort-aware as in script.build)
    and the result-format-1 JSON text, per patient of `patients`, with seq."""
    outs = [f"`out__{c}`" for c, _, _ in criteria]
    # the criteria tables stacked (one row per patient and criterion) and gathered per patient
    # into a map from the criterion's index: one aggregate and one join, whatever the number of
    # criteria (a join per criterion made Spark's planner work for longer than the criteria)
    if criteria:
        stacked = "\n  UNION ALL ".join(
            f"SELECT seq, {i} AS i, `out__{c}` AS o, `miss__{c}` AS m FROM elig_k{i}" for i, (c, _, _) in enumerate(criteria))
        joins = (" LEFT JOIN (SELECT seq, map_from_entries(collect_list(struct(i, struct(o, m)))) AS k FROM ("
                 f"{stacked}) GROUP BY seq) ks ON ks.seq = p.seq")
    else:
        joins = ""
    sel = ", ".join(f"ks.k[{i}].o AS `out__{c}`, ks.k[{i}].m AS `miss__{c}`" for i, (c, _, _) in enumerate(criteria))

    def status_of(cols):
        arr = f"CAST(array({', '.join(cols)}) AS ARRAY<STRING>)"
        return (f"CASE WHEN array_contains({arr}, 'fail') THEN 'ineligible' "
                f"WHEN size(filter({arr}, o -> o <> 'pass')) = 0 THEN 'eligible' ELSE 'indeterminate' END")

    status = status_of(outs) if outs else "'eligible'"
    cohort_json = ""
    if program.cohorts and criteria:
        applies = {lc.ir.id: lc.ir.cohorts for lc in lowered.criteria}
        per = [(k.name, status_of([f"`out__{c}`" for c, _, _ in criteria if not applies.get(c) or k.name in applies[c]]))
               for k in program.cohorts]
        sts = f"array({', '.join(s for _, s in per)})"
        status = (f"CASE WHEN array_contains({sts}, 'eligible') THEN 'eligible' "
                  f"WHEN size(filter({sts}, s -> s <> 'ineligible')) = 0 THEN 'ineligible' ELSE 'indeterminate' END")
        cohort_json = ", 'cohorts', array(" + ", ".join(
            f"named_struct('id', {_q(n)}, 'status', {s})" for n, s in per) + ")"
    empty = "CAST(array() AS ARRAY<STRING>)"
    crit_json = ", ".join(
        f"named_struct('id', {_q(c)}, 'ref', {_q(r)}, 'kind', {_q(k)}, 'outcome', `out__{c}`, 'reason', `out__{c}`, "
        f"'missing', CASE WHEN `out__{c}` = 'unknown' THEN `miss__{c}` ELSE {empty} END)" for c, r, k in criteria)
    crit_arr = f"array({crit_json})" if criteria else "CAST(array() AS ARRAY<STRUCT<id: STRING>>)"
    rules = _q(getattr(lowered, "fingerprint", "") or "")
    cols = "".join(f", `out__{c}`, `miss__{c}`" for c, _, _ in criteria)
    return f"""SELECT seq, patient_id, error, status{cols},
  CASE WHEN error IS NOT NULL THEN to_json(named_struct('format', 1, 'patient_id', patient_id, 'rules', {rules}, 'status', 'error', 'error', error))
       ELSE to_json(named_struct('format', 1, 'patient_id', patient_id, 'trial', {_q(program.trial.name)}, 'rules', {rules}, 'status', status,
                                 'criteria', {crit_arr}, 'warnings', {empty}{cohort_json})) END AS result
FROM (SELECT *, CASE WHEN error IS NOT NULL THEN 'error' ELSE {status} END AS status
      FROM (SELECT p.seq, p.patient_id, p.error{', ' + sel if sel else ''} FROM patients p{joins}))"""


def _build_lambda(program, lowered, only=None) -> SparkScript:
    """The Spark SQL script, one query per criterion; SqlCompileError naming every rule (file:line)
    with a construct that has no Spark form, at compile time (before anything runs).

    Transpiling SM3321 takes sqlglot about a minute: the result is kept in the user's cache
    (compiler/cache.py) keyed by the DuckDB text it was derived from, sqlglot's version and the
    transpiler's source, and used only when all three are the same."""
    problems = []
    chosen = [lc for lc in lowered.criteria if only is None or lc.ir.id in only]
    duck_view = build(program, lowered, only=set()).input_view
    duck = []
    for lc in chosen:
        try:
            duck.append((lc.ir.id, build(program, lowered, only={lc.ir.id}).query))
        except SqlCompileError as exc:  # no SQL form at all (the DuckDB generator says why)
            problems.extend(exc.problems)
    if problems:
        raise SqlCompileError(problems)
    ids = [c for c, _ in duck]
    (name,) = _cache_slot(program.trial.name, ids)
    key = _cache_key(getattr(lowered, "fingerprint", "") or "", duck_view, duck)
    criteria = tuple((lc.ir.id, lc.ref, lc.ir.kind) for lc in chosen)
    hit = _cache_read(name, key, ids)
    if hit is not None:
        view, queries = hit["input_view"], hit["queries"]
        return SparkScript(program.trial.name, view, tuple(queries), result_query(program, lowered, criteria), criteria)
    try:
        view = to_spark(duck_view)
    except sqlglot.errors.SqlglotError as exc:
        raise SqlCompileError([f"the input view has no Spark SQL form: {str(exc).splitlines()[0]}"])
    bad = unknown_constructs(view)
    if bad:
        problems.append(f"the input view (docs/sql.md tables): no Spark SQL form for {', '.join(bad)}")
    queries = []
    for lc, (cid, duck_query) in zip(chosen, duck):
        label = f"{lc.file}:{lc.ir.line}: rule {cid}"
        try:
            sql = _transpile_criterion(duck_query, cid)
        except sqlglot.errors.SqlglotError as exc:
            problems.append(f"{label}: no Spark SQL form: {str(exc).splitlines()[0]}")
            continue
        bad = unknown_constructs(sql)
        if bad:
            problems.append(f"{label}: no Spark SQL form for {', '.join(bad)}")
            continue
        queries.append((cid, sql))
    if problems:
        raise SqlCompileError(problems)
    cache.write(name, key, json.dumps({"input_view": view, "queries": queries}).encode("utf-8"))
    return SparkScript(program.trial.name, view, tuple(queries), result_query(program, lowered, criteria), criteria)


def build_spark(program, lowered, only=None, relational: bool = True) -> SparkScript:
    """The Spark SQL script of a trial: the relational form (compiler/sql/relational.py, work
    tables written once; spark_relational.py) unless ``relational`` is false (the lambda form over
    per-patient lists, one input view). SqlCompileError naming every rule (file:line) with a
    construct that has no Spark form in either, at compile time (before anything runs)."""
    if not relational:
        return _build_lambda(program, lowered, only=only)
    from .spark_relational import build_relational

    return build_relational(program, lowered, only=only)


__all__ = ["build_spark", "to_spark", "unknown_constructs", "SparkScript", "result_query", "FUNCTIONS", "TABLE_COLUMNS"]
