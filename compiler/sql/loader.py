"""Patient-record format 1 (JSON Lines) into the screening schema of docs/sql.md, with DuckDB's
own readers: the lines are read by DuckDB's CSV scanner as one text column (so that a line that
is not JSON still becomes a row: an error row), each record parsed by one `json_transform` into
typed lists of items, a chunk of records at a time (docs/sql.md, "Loading"). Python never
parses a record.

Every field keeps what the record said (``*_raw``, JSON text), what it means (a typed column, NULL
when absent or unusable) and why it is unusable (``*_why``, NULL when usable or absent), so that
"unusable" stays distinct from "absent". The error rules are those of the Python evaluator
(compiler/runtime.py ``_prepare``): a line that is not JSON, not an object, without format 1,
without a non-empty string id, or with a list/object field of the wrong type is an error row.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

# A field separator no JSON Lines file contains (four control characters): each line is one column.
_SEP = "\x1e\x1f\x1e\x1f"

TABLES = ("patients", "anchors", "facts", "observations", "conditions", "procedures", "treatments")


def _q(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


# The JSON text of a value as json_transform writes it (minified; SQL NULL when the key is absent
# or its value is null) tells its type by its first character: no second parse to ask json_type.
def _is_str(j: str) -> str:
    return f"starts_with({j}, '\"')"


def _is_num(j: str) -> str:
    # a JSON text starts with '"', '-', a digit, 't', 'f', 'n', '[' or '{' ('N' or 'I': NaN and
    # Infinity, which DuckDB's reader accepts): numbers are those from '-' (45) to 'N' (78).
    # (Not an IN list: DuckDB plans one of more than a few constants as a join.)
    return f"(ascii({j}) BETWEEN 45 AND 78)"


def _str(j: str) -> str:
    """The string a JSON text j holds (NULL unless a string); unescaped by DuckDB only when it has an escape."""
    return (f"CASE WHEN {_is_str(j)} THEN CASE WHEN contains({j}, '\\') THEN json_extract_string({j}, '$') "
            f"ELSE {j}[2:-2] END END")


_ISO = "'[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'"


def _date_why(j: str, s: str, ok: str, d: str) -> str:
    """Why a date is unusable (NULL when usable), the evaluator's words: from its JSON text j, its
    string s, whether s has the ISO form (ok) and the date it reads as (d)."""
    return (f"CASE WHEN {j} IS NULL OR {j} = 'null' THEN 'date is missing'"
            f" WHEN {s} IS NULL THEN 'date is not a string'"
            f" WHEN NOT {ok} THEN 'not an ISO date (YYYY-MM-DD)'"
            f" WHEN {d} IS NULL THEN 'not a calendar date' END")


def _date_cols(j: str, s: str, name: str) -> str:
    """`name` (DATE) and `name_why` from the JSON text j and its string s (computed below)."""
    ok = f"({s} GLOB {_ISO} AND {s} >= '0001')"
    d = f"try_cast({s} AS DATE)"
    return f"CASE WHEN {ok} THEN {d} END AS {name},\n    {_date_why(j, s, ok, d)} AS {name}_why"


def _item_date_cols(f: str, name: str) -> str:
    """`name` and `name_why` of the item field f, from the columns _items computes once:
    f_<f> (JSON text), s_<f> (its string), ok_<f> (ISO form), d_<f> (the date)."""
    return f"d_{f} AS {name},\n    {_date_why(f'f_{f}', f's_{f}', f'ok_{f}', f'd_{f}')} AS {name}_why"


def _item_num_cols(f: str, name: str) -> str:
    """`name` (DOUBLE) of the item field f: its value when it is a finite JSON number, from n_<f>
    (the JSON number as DOUBLE, computed once), NULL otherwise."""
    # a JSON integer beyond binary floating point is still a number (Python's int): it reads as
    # +-infinity here, which compares as it should with any finite limit; one of more than 4300
    # digits (Python's int-string limit) is unusable, as the Python evaluator reads it
    return (f"CASE WHEN isfinite(n_{f}) THEN n_{f} WHEN n_{f} IS NOT NULL AND regexp_full_match(f_{f}, '-?[0-9]+') "
            f"AND length(ltrim(f_{f}, '-')) <= 4300 THEN n_{f} END AS {name}")


# DuckDB's JSON reader accepts trailing commas and comments, Python's json module (and so the
# evaluator) does not: a line with either outside its strings is not JSON here either.
# (CASE, which DuckDB evaluates lazily: the costly replace runs only on lines the cheap tests
# flag; `contains` for the comments, as nearly every record has a '/' in a unit)
_STRICT = ("(CASE WHEN NOT json_valid(line) THEN FALSE "
           "WHEN NOT (contains(line, '//') OR contains(line, '/*') OR regexp_matches(line, ',\\s*[\\]}]')) THEN TRUE "
           "ELSE NOT regexp_matches(regexp_replace(line, '\"(?:[^\"\\\\]|\\\\.)*\"', '\"\"', 'g'), ',\\s*[\\]}]|/[*/]') END)")

# a blank line (spaces, tabs, a CR) is not a record; the cheap test first
_BLANK = "(line IS NULL OR (ascii(line) IN (9, 13, 32) AND trim(line, ' ' || chr(9) || chr(13)) = ''))"
# the same, for the count of blank lines: a blank line sorts below '!' (its bytes are below 33),
# which DuckDB checks on each row group's minimum first, reading none of the lines of a file
# that has no line starting with a control character or a space (it read 500 MB for 100,000 records)
_BLANK_COUNT = f"((line IS NULL OR line < '!') AND {_BLANK})"


# the longest line read (DuckDB's default is 2 MB; the evaluator reads a record of any size; a
# longer line is an error row, "not JSON"; much longer would make DuckDB ask 16 times as much
# memory for a compressed file)
MAX_LINE = 64 << 20
# the reader's buffer: DuckDB's default is 16 lines of MAX_LINE (1 GiB a buffer), more than its
# whole memory limit holds once a file outgrows one buffer (1,000,000 records, 5 GB: "could not
# allocate block of size 1.0 GiB"); two lines' worth is enough for any line and keeps memory bounded
BUFFER = 2 * MAX_LINE


def raw_lines_sql(path: str) -> str:
    """Every line of a JSON Lines file as one text column (NULL when empty), in input order (a
    table built from it numbers them by rowid: DuckDB keeps the insertion order of a parallel
    scan). Blank lines are left out afterwards (_BLANK): a filter here would copy every line."""
    return (f"SELECT line FROM read_csv({_q(path)}, columns={{'line': 'VARCHAR'}}, sep='{_SEP}', quote='', "
            f"escape='', header=false, auto_detect=false, strict_mode=false, null_padding=false, "
            f"max_line_size={MAX_LINE}, buffer_size={BUFFER}, ignore_errors=true, store_rejects=true, "
            f"rejects_table='_elig_rejects', rejects_scan='_elig_rejects_scan')")


# A line DuckDB's reader rejects (bytes that are not UTF-8, over MAX_LINE) is left out of its scan and noted,
# with its line number, in _elig_rejects: put back at its place as a line that is not JSON (the
# evaluator's error result), the others shifted after it. Accepted line i (from 0) comes after
# the rejected lines j (from 1, in line order) with line_j - j <= i.
_WITH_REJECTED = """SELECT line FROM (
  SELECT a.rowid + coalesce(b.k, 0) AS pos, a.line FROM _elig_scratch.lines a
    ASOF LEFT JOIN (SELECT line - j AS after, max(j) AS k FROM (
      SELECT line, row_number() OVER (ORDER BY line) AS j FROM (SELECT DISTINCT line FROM _elig_rejects))
      GROUP BY line - j) b ON a.rowid >= b.after
  UNION ALL
  SELECT DISTINCT line - 1 AS pos, 'a line the reader rejected' AS line FROM _elig_rejects)
ORDER BY pos"""


_LISTS = ("observations", "conditions", "procedures", "treatments")
_FIELDS = ("format", "id", "sex", "birth_date", "anchors", "facts") + _LISTS
_ITEM_FIELDS = {
    "observations": ("code", "date", "value", "unit", "uln", "lln", "lloq", "attributes"),
    "conditions": ("code", "onset", "end", "status", "attributes"),
    "procedures": ("code", "date", "attributes"),
    "treatments": ("code", "classes", "start", "end", "half_life", "daily_dose", "route", "purpose", "attributes"),
}


def _obj(fields) -> str:
    return "{" + ", ".join(f'"{f}": "JSON"' for f in fields) + "}"


def _spec() -> str:
    """One json_transform of a whole record but its observations: scalar fields and item fields
    kept as JSON text, the item lists as lists of structs (one parse, the lists unnested once).
    The observations, nine in ten of the items, are read by a pass of their own (_obs_sql) that
    streams into their table; here they are only told a list (of NULLs) or not (NULL)."""
    top = [f'"{f}": "JSON"' for f in _FIELDS if f not in _LISTS]
    top += ['"observations": ["BOOLEAN"]']
    top += [f'"{f}": [{_obj(_ITEM_FIELDS[f])}]' for f in _LISTS if f != "observations"]
    return "{" + ", ".join(top) + "}"


def _json_type_name(expr: str) -> str:
    """Python's name for a JSON value's type, as the evaluator's error messages say it."""
    return _type_name(f"json_type({expr})")


def _type_name(t: str) -> str:
    return (f"CASE {t} WHEN 'NULL' THEN 'null' WHEN 'BOOLEAN' THEN 'a boolean' "
            f"WHEN 'VARCHAR' THEN 'a string' WHEN 'ARRAY' THEN 'an array' WHEN 'OBJECT' THEN 'dict' "
            f"ELSE 'a number' END")


def _types_col(f: str, cond: str = "") -> str:
    """The JSON type of each item of list f, read from the line only when an item has no code
    (an item that is not an object reads as an all-NULL struct)."""
    return (f"CASE WHEN {cond}list_bool_or(list_transform({f}, lambda x: x.code IS NULL)) "
            f"THEN json_type(line, '$.{f}[*]') END AS {f}_types")


def _obs_sql(obs_lines: str) -> str:
    """(seq, observations, observations_types) from a relation of the (seq, line) of the records
    whose observations are read (readable, with a list): the lines parsed again for their
    observations only, streamed into the table (never held as a table of structs)."""
    spec = '{"observations": [' + _obj(_ITEM_FIELDS["observations"]) + ']}'
    return (f"SELECT seq, observations, {_types_col('observations')} FROM ("
            f"SELECT seq, line, json_transform(line, {_q(spec)}).observations AS observations FROM {obs_lines})")


def _docs_sql(lines_relation: str) -> str:
    """_docs: one row per line (seq, error, the record's fields, its item lists as structs and,
    only where an item could be a non-object or a treatment's `end` could be null, the types
    and keys read from the line)."""
    # a list field that is absent, null or not a list is a NULL list after json_transform: its
    # JSON type (NULL when absent) is read from the line only then
    list_err = " ".join(
        f"WHEN {f} IS NULL AND ltypes[{i + 1}] IS NOT NULL THEN '{f} must be a list, not ' || {_type_name(f'ltypes[{i + 1}]')}"
        for i, f in enumerate(_LISTS))
    obj_err = " ".join(
        f"WHEN {f} IS NOT NULL AND json_type({f}) <> 'OBJECT' THEN '{f} must be an object, not ' || {_json_type_name(f)} "
        f"WHEN {f} IS NULL AND list_contains(keys, '{f}') THEN '{f} must be an object, not null'"
        for f in ("anchors", "facts"))
    nullable = " OR ".join(f"r.{f} IS NULL" for f in ("format", "anchors", "facts"))
    lnull = " OR ".join(f"r.{f} IS NULL" for f in _LISTS)
    ids = "json_extract_string(id, '$')"
    # (ltrim copies the line: only for one that starts with a space, a tab, a CR or a LF)
    first = "CASE WHEN ascii(line) > 32 THEN left(line, 1) ELSE left(ltrim(line, ' ' || chr(9) || chr(13) || chr(10)), 1) END"
    root = (f"CASE {first} WHEN '{{' THEN 'OBJECT' WHEN '[' THEN 'ARRAY' WHEN chr(34) THEN 'VARCHAR' WHEN 't' THEN 'BOOLEAN' "
            f"WHEN 'f' THEN 'BOOLEAN' WHEN 'n' THEN 'NULL' ELSE 'NUMBER' END")
    scalars = ", ".join(f"r.{f} AS {f}" for f in _FIELDS if f not in _LISTS)
    lists = ", ".join(f"r.{f} AS {f}" for f in _LISTS)
    paths = "[" + ", ".join(f"'$.{f}'" for f in _LISTS) + "]"
    # per list: the JSON type of each item, read only when one has no code (a non-object item
    # reads as an all-NULL struct); per treatment the keys, only when one has no `end`
    itypes = ", ".join(_types_col(f, "error IS NULL AND ") for f in _LISTS if f != "observations")
    return f"""SELECT seq, error, {", ".join(_FIELDS)}, {itypes},
  CASE WHEN error IS NULL AND list_bool_or(list_transform(treatments, lambda x: x."end" IS NULL))
       THEN json_keys(line, '$.treatments[*]') END AS treatments_keys
FROM (SELECT seq, line, {", ".join(_FIELDS)}, CASE
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
FROM (SELECT seq, line, ok, {root} AS root, {scalars}, {lists},
        CASE WHEN ok AND {first} = '{{' AND ({nullable}) THEN json_keys(line) END AS keys,
        CASE WHEN ok AND {first} = '{{' AND ({lnull}) THEN json_type(line, {paths}) END AS ltypes FROM (
  SELECT seq, line, ok, CASE WHEN ok THEN json_transform(line, {_q(_spec())}) END AS r FROM (
    SELECT seq, line, {_STRICT} AS ok FROM {lines_relation}))))"""


def _items(field: str, source: str = "_docs", order: str | None = None, codes: tuple | None = None) -> str:
    """The items of a list field, unnested once into f_<name> columns (s_, ok_, d_<name>: the
    string of a date field, its ISO form, its date; n_<name>: an observation's number), from
    _docs or, for the observations, from _obs_sql. An item that is not an object is left out,
    as the evaluator ignores it; an object whose code is missing, null or not a string is a row
    with `code` NULL (it could be any code of its kind). The observations are sorted in the
    loaded order (LOADED_OBS_ORDER) as soon as they are unnested, while each is its seq, idx,
    code, no_code and JSON texts (before any other typed column is computed: the projections
    above keep that order). ``order``: the observations' sort (default LOADED_OBS_ORDER; a
    screening's own load sorts by SCREEN_OBS_ORDER). ``codes`` (a screening's own load): only the
    observations of these codes and those without a code (no_code) are kept, before the sort."""
    fields = _ITEM_FIELDS[field]
    cols = ", ".join(f"it.{f} AS f_{f}" for f in fields)
    dates = {"observations": ("date",), "conditions": ("onset", "end"), "procedures": ("date",),
             "treatments": ("start", "end")}[field]
    strs = "".join(f", {_str(f'f_{f}')} AS s_{f}" for f in dates)
    ok = "".join(f", (s_{f} GLOB {_ISO} AND s_{f} >= '0001') AS ok_{f}" for f in dates)
    typed = "".join(f", CASE WHEN ok_{f} THEN try_cast(s_{f} AS DATE) END AS d_{f}" for f in dates)
    nums = ("value", "uln", "lln", "lloq") if field == "observations" else ()
    typed += "".join(f", CASE WHEN {_is_num(f'f_{f}')} THEN CAST(f_{f} AS DOUBLE) END AS n_{f}" for f in nums)
    extra = ""
    if field == "treatments":
        extra = (", CASE WHEN f_end IS NOT NULL THEN TRUE WHEN keys IS NULL THEN FALSE "
                 "ELSE list_contains(keys[idx + 1], 'end') END AS end_present")
    keys = ", keys" if field == "treatments" else ""
    # (no filter on the list itself: the optimizer would compute the parse twice)
    rows = (f"SELECT seq, idx, {cols}{keys} FROM ("
            f"SELECT seq, unnest({field}) AS it, generate_subscripts({field}, 1) - 1 AS idx, {field}_types AS types"
            f"{', treatments_keys AS keys' if field == 'treatments' else ''} "
            f"FROM {DOCS if source == '_docs' else source}{' WHERE error IS NULL' if source == '_docs' else ''}) "
            f"WHERE it IS NOT NULL AND (it.code IS NOT NULL OR types[idx + 1] = 'OBJECT')")
    if field == "observations":
        # the observations in the loaded order (LOADED_OBS_ORDER): their code and no_code are
        # computed once, before the sort (its keys), and carried through it
        from .script import LOADED_OBS_ORDER, wild_scan

        rows = f"SELECT *, {wild_scan('code')} AS no_code FROM (SELECT *, {_str('f_code')} AS code FROM ({rows}))"
        if codes is not None:
            known = f" OR list_contains({_list(codes)}, code)" if codes else ""
            rows = f"SELECT * FROM ({rows}) WHERE no_code{known}"
        rows += f" ORDER BY {order or LOADED_OBS_ORDER}"
    return f"SELECT *{typed} FROM (SELECT *{ok} FROM (SELECT *{strs}{extra} FROM ({rows})))"


def _list(texts) -> str:
    return "CAST([" + ", ".join(_q(t) for t in texts) + "] AS VARCHAR[])"


def _keys(field: str) -> str:
    return (f"SELECT d.seq, e.key AS name, e.value AS v FROM {DOCS} d, json_each(d.{field}) e "
            f"WHERE d.error IS NULL AND json_type(d.{field}) = 'OBJECT' AND e.type <> 'NULL'")


def _raw(j: str) -> str:
    return f"CAST({j} AS VARCHAR)"


def _str_by_type(j: str) -> str:
    """As _str, for JSON text that may be a JSON null (json_each values, top-level fields)."""
    return f"CASE WHEN json_type({j}) = 'VARCHAR' THEN json_extract_string({j}, '$') END"


def _date_cols_by_type(j: str, name: str) -> str:
    """_date_cols of a JSON text that may be a JSON null (read as absent)."""
    s = f"({_str_by_type(j)})"
    return _date_cols(f"(CASE WHEN json_type({j}) <> 'NULL' THEN {j} END)", s, name)


def table_selects(obs_lines: str, obs_order: str | None = None, obs_codes: tuple | None = None) -> dict[str, str]:
    """Per table of the schema, the SELECT that builds its rows from _docs (the observations
    from obs_lines, see _obs_sql, in the loaded order, LOADED_OBS_ORDER, or obs_order, with the
    first column of LOADED_OBS, no_code, computed before the sort: see ordered_observations;
    only those of obs_codes and those without a code when obs_codes is given)."""
    ids = "json_extract_string(id, '$')"
    sex = "json_extract_string(sex, '$')"
    return {
        "patients": f"""SELECT seq,
    CASE WHEN json_type(id) = 'VARCHAR' AND NOT regexp_full_match({ids}, '\\s*') THEN {ids} END AS patient_id,
    error,
    {_raw("sex")} AS sex_raw,
    CASE WHEN json_type(sex) = 'VARCHAR' AND {sex} IN ('male', 'female') THEN {sex} END AS sex,
    CASE WHEN sex IS NOT NULL AND json_type(sex) <> 'NULL' AND NOT (json_type(sex) = 'VARCHAR' AND {sex} IN ('male', 'female'))
         THEN 'sex ' || left(CAST(sex AS VARCHAR), 40) || ' is not "male" or "female"' END AS sex_why,
    {_raw("birth_date")} AS birth_date_raw,
    {_date_cols_by_type("birth_date", "birth_date")}
FROM {DOCS}""",
        "anchors": f"""SELECT seq, name, {_raw("v")} AS raw, {_date_cols_by_type("v", "date")}
FROM ({_keys("anchors")})""",
        "facts": f"""SELECT seq, name, {_raw("v")} AS raw,
    CASE WHEN json_type(v) = 'BOOLEAN' THEN CAST(v AS BOOLEAN) END AS value,
    CASE WHEN json_type(v) <> 'BOOLEAN' THEN 'fact ' || name || ' is ' || left(CAST(v AS VARCHAR), 40) || ', not true or false' END AS why
FROM ({_keys("facts")})""",
        "observations": f"""SELECT seq, CAST(idx AS INTEGER) AS idx, code,
    {_raw("f_date")} AS date_raw, {_item_date_cols("date", "date")},
    {_raw("f_value")} AS value_raw, {_item_num_cols("value", "value_num")},
    {_str("f_value")} AS value_str,
    {_raw("f_unit")} AS unit_raw, {_str("f_unit")} AS unit,
    {_raw("f_uln")} AS uln_raw, {_item_num_cols("uln", "uln")},
    {_raw("f_lln")} AS lln_raw, {_item_num_cols("lln", "lln")},
    {_raw("f_lloq")} AS lloq_raw, {_item_num_cols("lloq", "lloq")},
    {_raw("f_attributes")} AS attributes, no_code
FROM ({_items("observations", f"({_obs_sql(obs_lines)})", obs_order, obs_codes)})""",
        "conditions": f"""SELECT seq, CAST(idx AS INTEGER) AS idx, {_str("f_code")} AS code,
    {_raw("f_onset")} AS onset_raw, {_item_date_cols("onset", "onset")},
    {_raw("f_end")} AS end_raw, {_item_date_cols("end", "end")},
    {_raw("f_status")} AS status_raw,
    CASE WHEN {_str("f_status")} IN ('active', 'resolved') THEN {_str("f_status")} END AS status,
    {_raw("f_attributes")} AS attributes
FROM ({_items("conditions")})""",
        "procedures": f"""SELECT seq, CAST(idx AS INTEGER) AS idx, {_str("f_code")} AS code,
    {_raw("f_date")} AS date_raw, {_item_date_cols("date", "date")},
    {_raw("f_attributes")} AS attributes
FROM ({_items("procedures")})""",
        "treatments": f"""SELECT seq, CAST(idx AS INTEGER) AS idx, {_str("f_code")} AS code,
    {_raw("f_classes")} AS classes_raw,
    CASE WHEN json_type(f_classes) = 'ARRAY'
          AND len(list_filter(CAST(json_transform(f_classes, '[\"JSON\"]') AS JSON[]), lambda c: c IS NULL OR json_type(c) <> 'VARCHAR')) = 0
         THEN CAST(json_transform(f_classes, '[\"VARCHAR\"]') AS VARCHAR[]) END AS classes,
    {_raw("f_start")} AS start_raw, {_item_date_cols("start", "start")},
    end_present,
    CASE WHEN end_present AND f_end IS NULL THEN 'null' ELSE {_raw("f_end")} END AS end_raw,
    {_item_date_cols("end", "end")},
    {_raw("f_half_life")} AS half_life, {_raw("f_daily_dose")} AS daily_dose,
    {_raw("f_route")} AS route, {_raw("f_purpose")} AS purpose, {_raw("f_attributes")} AS attributes
FROM ({_items("treatments")})""",
    }


# The lines and the parsed records of a chunk (DOCS) live in a scratch database FILE in a private
# temporary directory, not in memory: DuckDB scans a table one row group per thread, and an
# in-memory table's row groups are always 122,880 rows (ROW_GROUP_SIZE is honoured by a file only),
# so that every statement over fewer lines ran on ONE thread (a 100,000-record file, and the
# remainder chunk of any file). Row groups of SCRATCH_ROW_GROUP lines spread a chunk over all the
# threads. The scratch tables are written uncompressed (they are read once or twice, then dropped:
# compressing 100,000 cohort lines cost 3.6 s of CPU for nothing).
SCRATCH_ROW_GROUP = 16_384
DOCS = "_elig_scratch._docs"

# records per chunk: the parsed records of one chunk are held at once (memory stays bounded
# whatever the size of the input: about 1.2 KB a cohort record in DOCS, the observations are
# streamed; DOCS is a table of the scratch file, which DuckDB's buffer manager may evict).
CHUNK = 15 * SCRATCH_ROW_GROUP


def attach_scratch(con, directory: str) -> None:
    """Attach the scratch database `_elig_scratch`, a new file in `directory`, rows grouped by
    SCRATCH_ROW_GROUP."""
    con.execute(f"ATTACH {_q(os.path.join(directory, 'scratch.duckdb'))} AS _elig_scratch "
                f"(ROW_GROUP_SIZE {SCRATCH_ROW_GROUP})")


def _with_setting(con, name: str, value: str, sql: str) -> None:
    """Run a statement with the DuckDB setting ``name`` at ``value`` (an SQL literal), then put
    the setting back as it was."""
    was = con.execute(f"SELECT current_setting({_q(name)})").fetchone()[0]
    con.execute(f"SET {name} = {value}")
    try:
        con.execute(sql)
    finally:
        con.execute(f"SET {name} = " + (("true" if was else "false") if isinstance(was, bool) else _q(str(was))))


def _scratch(con, sql: str) -> None:
    """Run a statement that writes a scratch table, with compression off (then as it was)."""
    _with_setting(con, "force_compression", "'uncompressed'", sql)


# The order of the observations in a screening's own load (load_jsonl with ``words``): by code
# only. A criterion still reads only its code's row groups (the zonemaps of the loaded order),
# and the screening's meaning does not depend on the order of a code's readings (a table that is
# not marked is copied into elig_ox ORDER BY code alone, script PREP); the sort by code alone
# costs about 1.5 to 2 s of CPU less than LOADED_OBS_ORDER at 100,000 cohort records.
SCREEN_OBS_ORDER = "no_code, code"


def _kept(con, select: str, words) -> str:
    """The SELECT with only the columns whose name is one of ``words`` (DuckDB then computes
    nothing that only the others need: its optimizer drops their expressions)."""
    cols = [r[0] for r in con.execute(f"DESCRIBE {select}").fetchall()]
    kept = [c for c in cols if c in words]
    return "SELECT " + ", ".join(f'"{c}"' for c in kept) + f" FROM ({select})"


def _unordered(con, sql: str) -> None:
    """Run a statement that writes the observations of a screening's own load without
    preserving the insertion order (then as it was): each thread appends its own share of the
    sorted rows, so that every row group still holds readings of a few codes next to one another
    in the sort (the zonemaps by code stay tight), while the write costs about 1.2 s of CPU less
    at 100,000 cohort records (no ordered merge of the threads' batches)."""
    _with_setting(con, "preserve_insertion_order", "false", sql)


def _load_chunk(con, start: int, size: int, create: bool, words: dict | None = None,
                codes: tuple | None = None) -> None:
    """Parse the records start .. start+size-1 and add their rows to the tables (create them).
    ``words``, ``codes`` (load_jsonl): only the columns so named, the observations by
    SCREEN_OBS_ORDER, only those of the codes (and without a code)."""
    rel = f"(SELECT rowid AS seq, line FROM _elig_scratch.lines WHERE rowid >= {start} AND rowid < {start + size})"
    _scratch(con, f"CREATE TABLE {DOCS} AS {_docs_sql(rel)}")
    # the records whose observations are read, as a bit string over the chunk: a filter that
    # keeps the lines' order (a join with _docs would not, on several threads)
    bits = con.execute("SELECT string_agg(CASE WHEN error IS NULL AND observations IS NOT NULL THEN '1' "
                       f"ELSE '0' END, '' ORDER BY seq) FROM {DOCS}").fetchone()[0] or ""
    obs_lines = rel if "0" not in bits else (
        f"(SELECT seq, line FROM {rel} WHERE get_bit({_q(bits)}::BIT, CAST(seq - {start} AS INTEGER)) = 1)")
    selects = table_selects(obs_lines, SCREEN_OBS_ORDER if words is not None else None, codes)
    selects["observations"] = ordered_observations(selects["observations"])
    for t in TABLES:
        if words is not None:
            selects[t] = _kept(con, selects[t], words[t])
        sql = f"CREATE OR REPLACE TABLE {t} AS {selects[t]}" if create else f"INSERT INTO {t} {selects[t]}"
        if words is not None and t == "observations":
            _unordered(con, sql)
        else:
            con.execute(sql)
    con.execute(f"DROP TABLE {DOCS}")


class LoadError(ValueError):
    """A file DuckDB's reader cannot read at all (named .gz but not gzip, unreadable)."""


def load_jsonl(con, path: str, chunk: int = CHUNK, scratch_dir: str | None = None,
               words: dict | None = None, codes: tuple | None = None) -> int:
    """Load a JSON Lines file into the schema's tables on a DuckDB connection; returns the number
    of records (non-blank lines). The lines are read once (in parallel, order kept) into a
    scratch database file (in a private directory made under scratch_dir, default the system's
    temporary directory, removed at the end), then parsed and spread over the tables a chunk of
    records at a time, rows in input order. A file DuckDB cannot read at all raises LoadError.

    ``words`` (a screening's own load, `elig screen` of JSON Lines: screen.read_words): each
    table gets only the columns whose name is one of its words (the names the screening's SQL
    over it uses; a column it would read and that is missing fails its binding, it cannot be
    misread),
    and the observations are sorted by SCREEN_OBS_ORDER (still marked: the screening reads them
    through the view elig_ox). ``codes`` (with words): only the observations of these codes (the
    trial's: the screening joins every reading to its code's facts, obs_codes) and those without a
    code are kept. The rows kept, and the values of the columns kept, are those of the full load."""
    import duckdb

    con.execute("DETACH DATABASE IF EXISTS _elig_scratch")
    sdir = tempfile.mkdtemp(prefix="elig-load-", dir=scratch_dir)
    try:
        attach_scratch(con, sdir)
        try:
            _scratch(con, f"CREATE TABLE _elig_scratch.lines AS {raw_lines_sql(path)}")
        except duckdb.Error as exc:
            # DuckDB's own words: where, and the reason (not the line itself, which may be long)
            words = [w for w in str(exc).splitlines() if w.strip() and not w.startswith(("Original Line", "Possible"))]
            raise LoadError(f"{path}: cannot read the lines: " + " ".join(words[:2])[:300]) from None
        if con.execute("SELECT count(*) FROM _elig_rejects").fetchone()[0]:
            _scratch(con, f"CREATE TABLE _elig_scratch.kept AS {_WITH_REJECTED}")
            con.execute("DROP TABLE _elig_scratch.lines")
            con.execute("ALTER TABLE _elig_scratch.kept RENAME TO lines")
        if con.execute(f"SELECT count(*) FROM _elig_scratch.lines WHERE {_BLANK_COUNT}").fetchone()[0]:
            # blank lines are not records: number the others (a copy, only for such a file)
            _scratch(con, f"CREATE TABLE _elig_scratch.kept AS SELECT line FROM _elig_scratch.lines WHERE NOT {_BLANK}")
            con.execute("DROP TABLE _elig_scratch.lines")
            con.execute("ALTER TABLE _elig_scratch.kept RENAME TO lines")
        n = con.execute("SELECT count(*) FROM _elig_scratch.lines").fetchone()[0]
        for start in range(0, max(n, 1), chunk):
            _load_chunk(con, start, chunk, create=start == 0, words=words, codes=codes)
        mark_observations(con)
    finally:
        con.execute("DROP TABLE IF EXISTS _elig_rejects")
        con.execute("DROP TABLE IF EXISTS _elig_rejects_scan")
        con.execute("DETACH DATABASE IF EXISTS _elig_scratch")
        shutil.rmtree(sdir, ignore_errors=True)
    return n


# The observations as `elig load` leaves them (docs/sql.md, "Loading"): ordered by LOADED_OBS_ORDER
# and with the columns of LOADED_OBS (compiler/sql/script.py), marked by a comment on the table (a
# key of the Parquet file's metadata) naming this format and the number of rows. The screening
# reads such observations through a view (screen.run_script) instead of copying them into its
# work table elig_ox; any other observations (a user's own table or view, a Parquet file written
# otherwise, a loaded table changed since: its row count differs or its comment is gone) are
# copied as before: the mark only makes the screening faster, never changes its results.
OBS_FORMAT = "elig observations 1"
OBS_KEY = "elig_observations"


def obs_mark(rows: int) -> str:
    return f"{OBS_FORMAT} rows={int(rows)}"


def ordered_observations(select: str) -> str:
    """The observation rows of a chunk of records (the SELECT of table_selects, which has the
    first, no_code) with the other columns of LOADED_OBS, in the loaded order (LOADED_OBS_ORDER within the chunk: the
    chunks follow one another by seq, so that each code's rows of a chunk lie together). The
    order is that of the items' sort in table_selects: DuckDB sorts them while each is still
    its seq, idx, code, no_code and eight JSON texts, not the 28 columns of the table (half the memory: at
    100,000 cohort records, 5.4 M readings, the sort of the whole rows spilled 333 MB under a
    1 GB limit, that of the JSON texts 163 MB; none under 2 GB, where the former spilled)."""
    from .script import LOADED_OBS

    extra = ", ".join(f"CAST({e} AS {t}) AS {n}" for n, t, e in LOADED_OBS if n != "no_code")
    return f"SELECT *, {extra} FROM ({select})"


def mark_observations(con) -> None:
    """Mark the table observations, just loaded, as in the loaded format (obs_mark)."""
    n = con.execute("SELECT count(*) FROM observations").fetchone()[0]
    con.execute(f"COMMENT ON TABLE observations IS {_q(obs_mark(n))}")


def _comment(con, name: str, database: str | None = None) -> str | None:
    """The comment of the one table or view `name` that the connection's unqualified name means
    (of ``database``'s main schema when given); None when there is none, or when a temporary
    object of that name exists (it would hide the table from this connection only)."""
    where = ("database_name = ? AND schema_name = 'main'" if database else
             "(temporary OR (database_name = current_database() AND schema_name = current_schema()))")
    args = [name, database] if database else [name]
    rows = con.execute(f"SELECT temporary, comment FROM duckdb_tables() WHERE table_name = ? AND {where} "
                       f"UNION ALL SELECT temporary, comment FROM duckdb_views() WHERE view_name = ? AND {where}",
                       args + args).fetchall()
    if len(rows) != 1 or rows[0][0]:
        return None
    return rows[0][1]


def _mark_holds(con, mark: str | None, relation: str = "observations") -> bool:
    """Whether ``mark`` is the loaded mark (obs_mark) with the row count the relation has now."""
    return bool(mark) and mark.startswith(OBS_FORMAT + " ") and \
        mark == obs_mark(con.execute(f"SELECT count(*) FROM {relation}").fetchone()[0])


def loaded_observations(con) -> bool:
    """Whether the relation `observations` of the connection is marked as loaded (obs_mark, with
    the row count it has now), and so visible to the connection's cursors too (not temporary)."""
    return _mark_holds(con, _comment(con, "observations"))


def attach_observations(con, relation: str, mark: str | None) -> None:
    """The view `observations` over a relation (an attached table, a Parquet file): marked (a view
    of the database, which cursors see) when the relation carries the loaded mark with its row
    count, else a temporary view as before."""
    if _mark_holds(con, mark, relation):
        con.execute("DROP VIEW IF EXISTS temp.observations")
        con.execute(f"CREATE OR REPLACE VIEW observations AS SELECT * FROM {relation}")
        con.execute(f"COMMENT ON VIEW observations IS {_q(mark)}")
    else:
        con.execute(f"CREATE OR REPLACE TEMP VIEW observations AS SELECT * FROM {relation}")


def attach_parquet(con, directory: str) -> int:
    """Views over a Parquet directory written by ``write_parquet`` (one file per table)."""
    d = Path(directory)
    for t in TABLES:
        f = d / f"{t}.parquet"
        if not f.is_file():
            raise FileNotFoundError(f"{f}: missing (a screening Parquet directory has {', '.join(TABLES)})")
        rel = f"read_parquet({_q(str(f))})"
        if t == "observations":
            kv = con.execute(f"SELECT value FROM parquet_kv_metadata({_q(str(f))}) WHERE key = ?",
                             [OBS_KEY.encode()]).fetchall()
            attach_observations(con, rel, kv[0][0].decode("utf-8", "replace") if len(kv) == 1 else None)
        else:
            con.execute(f"CREATE OR REPLACE VIEW {t} AS SELECT * FROM {rel}")
    return con.execute("SELECT count(*) FROM patients").fetchone()[0]


def write_parquet(con, directory: str, in_order: bool = False) -> None:
    """Each table of the schema as DIRECTORY/<table>.parquet, written atomically per file, rows
    by seq (and idx). in_order: the tables were just built by load_jsonl on this connection, so
    that patients and the item tables are in that order already (written without a sort)."""
    from .script import LOADED_OBS_ORDER

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    # loaded observations (marked, in their order) keep their mark as a key of the file's metadata
    obs_mark_now = _comment(con, "observations")
    obs_loaded = _mark_holds(con, obs_mark_now)
    for t in TABLES:
        fd, tmp = tempfile.mkstemp(dir=d, prefix=f".{t}.", suffix=".parquet.part")
        os.close(fd)
        try:
            kv = ""
            if in_order and t not in ("anchors", "facts"):
                order = ""
            else:
                order = " ORDER BY seq" + (", idx" if t not in ("patients", "anchors", "facts") else "")
            if t == "observations" and obs_loaded:
                order = "" if in_order else f" ORDER BY {LOADED_OBS_ORDER}"
                kv = f", KV_METADATA {{{OBS_KEY}: {_q(obs_mark_now)}}}"
            con.execute(f"COPY (SELECT * FROM {t}{order}) TO {_q(tmp)} (FORMAT parquet{kv})")
            os.replace(tmp, d / f"{t}.parquet")
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
