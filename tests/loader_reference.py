"""The loader as it was before issue 12 (compiler/sql/loader.py of 7 December 2026), kept for
tests/test_loader.py only: the fast loader must build the same tables, row for row, as this one
(each field parsed by its own JSON extraction, the lines numbered by one single-threaded scan).
Do not use it elsewhere, do not change it (it is the reference, not code under test)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# A field separator no JSON Lines file contains (four control characters): each line is one column.
_SEP = "\x1e\x1f\x1e\x1f"

TABLES = ("patients", "anchors", "facts", "observations", "conditions", "procedures", "treatments")


def _q(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _json_type_name(expr: str) -> str:
    """Python's name for a JSON value's type, as the evaluator's error messages say it."""
    return (f"CASE json_type({expr}) WHEN 'NULL' THEN 'null' WHEN 'BOOLEAN' THEN 'a boolean' "
            f"WHEN 'VARCHAR' THEN 'a string' WHEN 'ARRAY' THEN 'an array' WHEN 'OBJECT' THEN 'dict' "
            f"ELSE 'a number' END")


def _date_cols(j: str, name: str) -> str:
    """`name` (DATE) and `name_why` from the JSON value j (NULL when absent)."""
    s = f"json_extract_string({j}, '$')"
    ok = f"(json_type({j}) = 'VARCHAR' AND regexp_full_match({s}, '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}') AND {s} >= '0001')"
    return (f"CASE WHEN {ok} THEN CAST(try_strptime({s}, '%Y-%m-%d') AS DATE) END AS {name},\n"
            f"    CASE WHEN {j} IS NULL OR json_type({j}) = 'NULL' THEN 'date is missing'"
            f" WHEN json_type({j}) <> 'VARCHAR' THEN 'date is not a string'"
            f" WHEN NOT {ok} THEN 'not an ISO date (YYYY-MM-DD)'"
            f" WHEN try_strptime({s}, '%Y-%m-%d') IS NULL THEN 'not a calendar date' END AS {name}_why")


# DuckDB's JSON reader accepts trailing commas and comments, Python's json module (and so the
# evaluator) does not: a line with either outside its strings is not JSON here either.
# (CASE, which DuckDB evaluates lazily: the costly replace runs only on lines the cheap test flags)
_STRICT = ("(CASE WHEN NOT json_valid(line) THEN FALSE WHEN NOT regexp_matches(line, ',\\s*[\\]}}]|/[*/]') THEN TRUE "
           "ELSE NOT regexp_matches(regexp_replace(line, '\"(?:[^\"\\\\]|\\\\.)*\"', '\"\"', 'g'), ',\\s*[\\]}}]|/[*/]') END)")


def lines_sql(path: str) -> str:
    """The non-blank lines of a JSON Lines file, numbered in input order (seq from 0)."""
    return (f"SELECT CAST(row_number() OVER () - 1 AS BIGINT) AS seq, line FROM ("
            f"SELECT line FROM read_csv({_q(path)}, columns={{'line': 'VARCHAR'}}, sep='{_SEP}', quote='', "
            f"escape='', header=false, auto_detect=false, strict_mode=false, null_padding=false, "
            f"parallel=false) WHERE line IS NOT NULL AND trim(line, ' ' || chr(9) || chr(13)) <> '')")


_FIELDS = ("format", "id", "sex", "birth_date", "anchors", "facts", "observations", "conditions", "procedures",
           "treatments")
_ITEM_FIELDS = {
    "observations": ("code", "date", "value", "unit", "uln", "lln", "lloq", "attributes"),
    "conditions": ("code", "onset", "end", "status", "attributes"),
    "procedures": ("code", "date", "attributes"),
    "treatments": ("code", "classes", "start", "end", "half_life", "daily_dose", "route", "purpose", "attributes"),
}


def _spec(fields) -> str:
    """A json_transform structure with every field kept as JSON text (one parse, no type error)."""
    return "{" + ", ".join(f'"{f}": "JSON"' for f in fields) + "}"


def _items(field: str) -> str:
    """The items of a list field, parsed once (json_transform) into f_<name> columns. An item
    that is not an object is left out, as the evaluator ignores it; an object whose code is
    missing, null or not a string is a row with `code` NULL (it could be any code of its kind)."""
    fields = _ITEM_FIELDS[field]
    cols = ", ".join(f"it.{f} AS f_{f}" for f in fields)
    if field != "treatments":
        spec = "[" + _spec(fields) + "]"
        return (f"SELECT seq, idx, {cols} FROM (SELECT seq, unnest(json_transform({field}, {_q(spec)})) AS it, "
                f"unnest(range(CAST(json_array_length({field}) AS BIGINT))) AS idx, {field} AS _l FROM _docs "
                f"WHERE error IS NULL AND json_type({field}) = 'ARRAY') "
                # an object without a code (or with a code that is null) is kept: it could be any
                # code of its kind (docs/records.md); an item that is not an object is left out
                f"WHERE it.code IS NOT NULL OR json_type(_l, '$[' || idx || ']') = 'OBJECT'")
    return (f"SELECT seq, idx, {cols}, end_present FROM (SELECT seq, idx, json_transform(it, {_q(_spec(fields))}) AS it, "
            f"json_exists(it, '$.end') AS end_present FROM ("
            f"SELECT seq, unnest(CAST(json_transform({field}, '[\"JSON\"]') AS JSON[])) AS it, "
            f"unnest(range(CAST(json_array_length({field}) AS BIGINT))) AS idx FROM _docs "
            f"WHERE error IS NULL AND json_type({field}) = 'ARRAY') WHERE json_type(it) = 'OBJECT')")


def _num_cols(j: str, name: str) -> str:
    """`name` (DOUBLE): the value when it is a finite JSON number (NULL otherwise)."""
    num = f"(json_type({j}) IN ('BIGINT', 'UBIGINT', 'DOUBLE', 'HUGEINT'))"
    # a JSON integer beyond binary floating point is still a number (Python's int): it reads as
    # +-infinity here, which compares as it should with any finite limit; one of more than 4300
    # digits (Python's int-string limit) is unusable, as the Python evaluator reads it
    return (f"CASE WHEN {num} AND (isfinite(CAST({j} AS DOUBLE)) OR (regexp_full_match(CAST({j} AS VARCHAR), '-?[0-9]+') "
            f"AND length(ltrim(CAST({j} AS VARCHAR), '-')) <= 4300)) "
            f"THEN CAST({j} AS DOUBLE) END AS {name}")


def _keys(field: str) -> str:
    return (f"SELECT d.seq, e.key AS name, e.value AS v FROM _docs d, json_each(d.{field}) e "
            f"WHERE d.error IS NULL AND json_type(d.{field}) = 'OBJECT' AND e.type <> 'NULL'")


def _raw(j: str) -> str:
    return f"CAST({j} AS VARCHAR)"


def _str(j: str) -> str:
    return f"CASE WHEN json_type({j}) = 'VARCHAR' THEN json_extract_string({j}, '$') END"


def load_sql(lines_relation: str) -> list[str]:
    """The statements that build the schema's tables from a relation of (seq, line)."""
    # a field present as JSON null reads as SQL NULL after json_transform: its presence is told
    # by the record's keys (parsed only for records where one of these fields is NULL)
    list_err = " ".join(
        f"WHEN {f} IS NOT NULL AND json_type({f}) <> 'ARRAY' THEN '{f} must be a list, not ' || {_json_type_name(f)} "
        f"WHEN {f} IS NULL AND list_contains(keys, '{f}') THEN '{f} must be a list, not null'"
        for f in ("observations", "conditions", "procedures", "treatments"))
    obj_err = " ".join(
        f"WHEN {f} IS NOT NULL AND json_type({f}) <> 'OBJECT' THEN '{f} must be an object, not ' || {_json_type_name(f)} "
        f"WHEN {f} IS NULL AND list_contains(keys, '{f}') THEN '{f} must be an object, not null'"
        for f in ("anchors", "facts"))
    nullable = " OR ".join(f"r.{f} IS NULL" for f in ("format", "anchors", "facts", "observations", "conditions",
                                                       "procedures", "treatments"))
    cols = ", ".join(f"r.{f} AS {f}" for f in _FIELDS)
    ids = "json_extract_string(id, '$')"
    sex = "json_extract_string(sex, '$')"
    first = "left(ltrim(line, ' ' || chr(9) || chr(13) || chr(10)), 1)"
    root = (f"CASE {first} WHEN '{{' THEN 'OBJECT' WHEN '[' THEN 'ARRAY' WHEN chr(34) THEN 'VARCHAR' WHEN 't' THEN 'BOOLEAN' "
            f"WHEN 'f' THEN 'BOOLEAN' WHEN 'n' THEN 'NULL' ELSE 'NUMBER' END")
    stmts = [
        f"""CREATE OR REPLACE TEMP TABLE _docs AS
SELECT seq, {", ".join(_FIELDS)}, CASE
    WHEN NOT ok THEN 'not JSON'
    WHEN root <> 'OBJECT' THEN 'a record must be a JSON object, not ' || CASE root WHEN 'NULL' THEN 'null'
         WHEN 'BOOLEAN' THEN 'a boolean' WHEN 'VARCHAR' THEN 'a string' WHEN 'ARRAY' THEN 'an array' ELSE 'a number' END
    WHEN format IS NULL AND list_contains(keys, 'format') THEN 'format null is not supported (this evaluator reads format 1)'
    WHEN format IS NULL THEN 'format is missing (this evaluator reads format 1)'
    WHEN json_type(format) NOT IN ('BIGINT', 'UBIGINT', 'DOUBLE', 'HUGEINT') OR CAST(format AS DOUBLE) <> 1
      THEN 'format ' || left(CAST(format AS VARCHAR), 40) || ' is not supported (this evaluator reads format 1)'
    WHEN id IS NULL OR json_type(id) = 'NULL' OR (json_type(id) = 'VARCHAR' AND regexp_full_match({ids}, '\\s*'))
      THEN 'id is missing or empty'
    WHEN json_type(id) <> 'VARCHAR' THEN 'id must be a string, not ' || {_json_type_name("id")}
    {obj_err} {list_err}
  END AS error
FROM (SELECT seq, ok, {root} AS root, {cols},
        CASE WHEN ok AND {first} = '{{' AND ({nullable}) THEN json_keys(line) END AS keys FROM (
  SELECT seq, line, ok, CASE WHEN ok THEN json_transform(line, {_q(_spec(_FIELDS))}) END AS r FROM (
    SELECT seq, line, {_STRICT} AS ok FROM {lines_relation})))""",
        f"""CREATE OR REPLACE TABLE patients AS
SELECT seq,
    CASE WHEN json_type(id) = 'VARCHAR' AND NOT regexp_full_match({ids}, '\\s*') THEN {ids} END AS patient_id,
    error,
    {_raw("sex")} AS sex_raw,
    CASE WHEN json_type(sex) = 'VARCHAR' AND {sex} IN ('male', 'female') THEN {sex} END AS sex,
    CASE WHEN sex IS NOT NULL AND json_type(sex) <> 'NULL' AND NOT (json_type(sex) = 'VARCHAR' AND {sex} IN ('male', 'female'))
         THEN 'sex ' || left(CAST(sex AS VARCHAR), 40) || ' is not "male" or "female"' END AS sex_why,
    {_raw("birth_date")} AS birth_date_raw,
    {_date_cols("CASE WHEN json_type(birth_date) <> 'NULL' THEN birth_date END", "birth_date")}
FROM _docs""",
        f"""CREATE OR REPLACE TABLE anchors AS
SELECT seq, name, {_raw("v")} AS raw, {_date_cols("v", "date")}
FROM ({_keys("anchors")})""",
        f"""CREATE OR REPLACE TABLE facts AS
SELECT seq, name, {_raw("v")} AS raw,
    CASE WHEN json_type(v) = 'BOOLEAN' THEN CAST(v AS BOOLEAN) END AS value,
    CASE WHEN json_type(v) <> 'BOOLEAN' THEN 'fact ' || name || ' is ' || left(CAST(v AS VARCHAR), 40) || ', not true or false' END AS why
FROM ({_keys("facts")})""",
        f"""CREATE OR REPLACE TABLE observations AS
SELECT seq, CAST(idx AS INTEGER) AS idx, {_str("f_code")} AS code,
    {_raw("f_date")} AS date_raw, {_date_cols("f_date", "date")},
    {_raw("f_value")} AS value_raw, {_num_cols("f_value", "value_num")},
    {_str("f_value")} AS value_str,
    {_raw("f_unit")} AS unit_raw, {_str("f_unit")} AS unit,
    {_raw("f_uln")} AS uln_raw, {_num_cols("f_uln", "uln")},
    {_raw("f_lln")} AS lln_raw, {_num_cols("f_lln", "lln")},
    {_raw("f_lloq")} AS lloq_raw, {_num_cols("f_lloq", "lloq")},
    {_raw("f_attributes")} AS attributes
FROM ({_items("observations")})""",
        f"""CREATE OR REPLACE TABLE conditions AS
SELECT seq, CAST(idx AS INTEGER) AS idx, {_str("f_code")} AS code,
    {_raw("f_onset")} AS onset_raw, {_date_cols("f_onset", "onset")},
    {_raw("f_end")} AS end_raw, {_date_cols("f_end", "end")},
    {_raw("f_status")} AS status_raw,
    CASE WHEN {_str("f_status")} IN ('active', 'resolved') THEN {_str("f_status")} END AS status,
    {_raw("f_attributes")} AS attributes
FROM ({_items("conditions")})""",
        f"""CREATE OR REPLACE TABLE procedures AS
SELECT seq, CAST(idx AS INTEGER) AS idx, {_str("f_code")} AS code,
    {_raw("f_date")} AS date_raw, {_date_cols("f_date", "date")},
    {_raw("f_attributes")} AS attributes
FROM ({_items("procedures")})""",
        f"""CREATE OR REPLACE TABLE treatments AS
SELECT seq, CAST(idx AS INTEGER) AS idx, {_str("f_code")} AS code,
    {_raw("f_classes")} AS classes_raw,
    CASE WHEN json_type(f_classes) = 'ARRAY'
          AND len(list_filter(CAST(json_transform(f_classes, '[\"JSON\"]') AS JSON[]), lambda c: c IS NULL OR json_type(c) <> 'VARCHAR')) = 0
         THEN CAST(json_transform(f_classes, '[\"VARCHAR\"]') AS VARCHAR[]) END AS classes,
    {_raw("f_start")} AS start_raw, {_date_cols("f_start", "start")},
    end_present,
    CASE WHEN end_present AND f_end IS NULL THEN 'null' ELSE {_raw("f_end")} END AS end_raw,
    {_date_cols("CASE WHEN json_type(f_end) <> 'NULL' THEN f_end END", "end")},
    {_raw("f_half_life")} AS half_life, {_raw("f_daily_dose")} AS daily_dose,
    {_raw("f_route")} AS route, {_raw("f_purpose")} AS purpose, {_raw("f_attributes")} AS attributes
FROM ({_items("treatments")})""",
        "DROP TABLE _docs",
    ]
    return stmts


def load_jsonl(con, path: str) -> int:
    """Load a JSON Lines file into the schema's tables on a DuckDB connection; returns the number
    of records (non-blank lines)."""
    con.execute(f"CREATE OR REPLACE TEMP VIEW _lines AS {lines_sql(path)}")
    for s in load_sql("_lines"):
        con.execute(s)
    con.execute("DROP VIEW _lines")
    return con.execute("SELECT count(*) FROM patients").fetchone()[0]
