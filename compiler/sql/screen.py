"""Running the screening script on DuckDB: load (or attach) the data, resolve unit spellings with
the evaluator's own resolver (over the distinct spellings only), run the query, stream results."""

from __future__ import annotations

import types
from typing import Iterator, Optional

from . import loader
from .script import OBS_CODES, UNIT_OBS, Script, build, obs_codes, obs_rows, wild_scan


def evaluator_module(python_source: str) -> types.ModuleType:
    """The compiled evaluator module (for its unit resolver and for --explain)."""
    mod = types.ModuleType("elig_evaluator")
    exec(compile(python_source, "<evaluator>", "exec"), mod.__dict__)
    return mod


def connect(database: str = ":memory:", threads: Optional[int] = None, memory_limit: Optional[str] = None):
    import duckdb

    con = duckdb.connect(database)
    con.execute("SET enable_progress_bar = false")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    return con


def resolve_units(con, program, module) -> None:
    """elig_unit_map(kind, code, unit, resolved): each distinct unit spelling of the data read as
    the accepted unit it means (or NULL), by the evaluator's resolver (`_spelled`)."""
    vocab = module._VOCAB
    aliases = vocab["aliases"]
    rows = []
    obs_units = con.execute("SELECT DISTINCT code, unit FROM observations WHERE unit IS NOT NULL AND code IS NOT NULL").fetchall()
    # an observation without a code could be a reading of any code: its unit is read for each
    wild_units = [r[0] for r in con.execute(
        f"SELECT DISTINCT unit FROM observations WHERE unit IS NOT NULL AND {wild_scan('code')}").fetchall()]
    if wild_units:
        seen = set(obs_units)
        obs_units += [(c, u) for c in vocab["observations"] for u in wild_units if (c, u) not in seen]
    for code, unit in obs_units:
        el = vocab["observations"].get(code)
        if el is None or el[0] != "quantity":
            continue
        units = el[1]
        u = unit
        if u not in units or u in aliases:
            u = module._spelled(u, units, aliases, code)
        rows.append(("obs", code, unit, u if u in units else None))
    if program.equivalences:
        dose_units = [r[0] for r in con.execute(
            "SELECT DISTINCT json_extract_string(daily_dose, '$.unit') FROM treatments "
            "WHERE json_type(daily_dose, '$.unit') = 'VARCHAR'").fetchall()]
        for t in program.equivalences:
            units = getattr(module, module.__dict__.get("_EQ_NAMES", {}).get(t.name, "_EQ_" + t.name))[1]
            for unit in dose_units:
                u = module._spelled(unit, units, module._UNIT_ALIASES, ("dose", id(units)))
                rows.append(("dose", t.name, unit, u if u in units else None))
    # attributes measured in a unit: each distinct spelling read as one of the accepted units
    import json as _json

    from .script import attr_unit_keys
    for k, (name, units) in enumerate(attr_unit_keys(program)):
        path = "$." + _json.dumps(name) + ".unit"
        spellings = set()
        for tbl in ("conditions", "procedures"):
            spellings.update(r[0] for r in con.execute(
                f"SELECT DISTINCT json_extract_string(attributes, ?) FROM {tbl} WHERE json_type(attributes, ?) = 'VARCHAR'",
                [path, path]).fetchall())
        for unit in sorted(spellings):
            u = module._spelled(unit, units, module._UNIT_ALIASES, ("sql-attr", k, units))
            rows.append(("attr", str(k), unit, u if u in units else None))
    con.execute("CREATE OR REPLACE TEMP TABLE elig_unit_map (kind VARCHAR, code VARCHAR, unit VARCHAR, resolved VARCHAR)")
    if rows:
        con.executemany("INSERT INTO elig_unit_map VALUES (?, ?, ?, ?)", rows)


# the columns of the schema's tables that run_script and resolve_units read themselves (the
# others are read by the script's SQL)
_RUN_WORDS = {"patients": ("seq",), "observations": ("seq", "code", "unit"), "treatments": ("daily_dose",),
              "conditions": ("attributes",), "procedures": ("attributes",)}


def read_words(program, script: Script) -> dict:
    """Per table of the schema, every name the screening of ``script`` could read from it: the
    words of the SQL that run_script runs over that table (the texts that name it: work tables,
    steps, the view elig_ox over loaded observations, the lambda form's input when a criterion is
    in that form) and of run_script's own queries. `elig screen` of JSON Lines loads only the
    columns so named (loader.load_jsonl's ``words``): a column none of them names is read by no
    criterion of this trial (its ``*_raw`` texts, ``*_why`` reasons...)."""
    import re

    from .script import input_view

    # (elig_ox of the prep is not run: the screening's own load is marked, read by the view)
    texts = [script.macros, script.final, script.positional, script.result_sql,
             obs_rows(program, loaded=True, codes=OBS_CODES)]
    texts += [sql for name, sql, _ in script.prep if name != "elig_ox"] + [sql for _, sql in script.steps]
    if not script.prep or script.lambda_steps:
        texts += [input_view(program, (0, 1), obs_mode="lists"), input_view(program, (0, 1), name="", obs_mode="joined")]
    out = {}
    for t in loader.TABLES:
        reads = [x for x in texts if re.search(rf"\b{t}\b", x)]
        out[t] = frozenset(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", "\n".join(reads))) | frozenset(_RUN_WORDS.get(t, ()))
    return out


def prepare_script(program, lowered, only=None, relational: bool = True) -> Script:
    """The DuckDB script (SqlCompileError naming every rule it cannot express): the relational
    form (compiler/sql/relational.py) unless ``relational`` is false (the lambda form over
    per-patient lists, which the Spark engine transpiles)."""
    if relational:
        from .relational import build as build_rel

        return build_rel(program, lowered, only=only)
    return build(program, lowered, only=only)


# patients per chunk of the input table: the per-patient lists of one chunk are built by one
# GROUP BY, so this bounds the memory of that step whatever the population
CHUNK = 50_000
# rows of a DuckDB row group: a table of more patients is read by several threads at once
ROW_GROUP = 122_880
# patients per result query (the joins of the criterion tables for one range of patients)
RESULT_CHUNK = 50_000
# the patients (seq, patient_id, error) ordered by seq: the row order of the criterion tables
# in the positional form of the result query (Script.positional)
BASE = "elig_base"


def _macros(con, script: Script) -> None:
    for stmt in script.macros.strip().split(";\n"):
        if stmt.strip():
            con.execute(stmt)


def run_script(con, program, module, script: Script, chunk: int = CHUNK, workers: int = 2,
               timings: Optional[dict] = None, result_chunk: int = RESULT_CHUNK, view: bool = False,
               sort_above: int = ROW_GROUP) -> None:
    """Run the script over the tables on the connection: results in the table elig_screened.

    The split form of the script (docs/sql.md, "Running"): the input is materialised once as the
    table elig_input, chunk by chunk of patients (seq ranges); each criterion is one query over it
    writing the narrow table elig_k<i> (seq, outcome, missing), ``workers`` of them at a time on
    cursors of the connection (planning is single-threaded in DuckDB), each in the order of
    elig_base (the patients by seq; _steps); the result query joins them by position (_results).
    The work tables (elig_input, elig_obs, elig_base, elig_k<i>) are created in the connection's
    database and dropped at the end: `elig screen` gives it a private in-memory one.
    The relational form (Script.prep) first builds its work tables (elig_pat, elig_ox...) instead
    of elig_input (built too when a criterion is in the lambda form). The result JSON texts are
    not stored: the temporary view elig_result_json (seq, result) builds them from elig_screened
    when read (results()). ``timings``: the wall and CPU seconds of the phases "input",
    "criteria" and "results" are put there.

    ``view`` (for a caller that reads the results once: `elig screen` writing JSON Lines):
    when the criterion tables are joined by position, elig_screened is a view of that
    positional scan instead of a table (the 92 columns of every patient are then not written
    once more only to be read once: about 4 CPU s and 1 GB of memory per 1,000,000 patients);
    the criterion tables and elig_base stay for it until drop_work(con). Its readers here check
    its order as they read it (write_results_parquet, result_lines). Parquet is written from
    the table: DuckDB's writer marks a column REQUIRED when the table's statistics say it holds
    no NULL, which it cannot know of a positional join (the file's schema would change).
    ``sort_above``: with more patients than that (one row group) and more than one thread, each
    step sorts its rows by seq as it writes them (_steps)."""
    clock = _Clock(timings)
    _macros(con, script)
    resolve_units(con, program, module)
    lo, hi = con.execute("SELECT min(seq), max(seq) FROM patients").fetchone()
    lo, hi = (0, -1) if lo is None else (int(lo), int(hi))
    names = [f"elig_k{i}" for i in range(len(script.steps))]
    prep = [n for n, _, _ in script.prep]
    views = []
    keep = False  # the criterion tables and elig_base kept for the view elig_screened
    try:
        for name, sql, order in script.prep:
            if name == "elig_ox" and loader.loaded_observations(con):
                # observations as `elig load` wrote them (ordered by code, with the per-reading
                # columns): elig_ox is a view over them, its rows computed by each criterion that
                # reads them, from its code's row groups only (docs/sql.md, "Running")
                con.execute(f"CREATE OR REPLACE TABLE {UNIT_OBS} AS "
                            "SELECT code, unit, resolved FROM elig_unit_map WHERE kind = 'obs'")
                # the codes' facts as a table: each criterion's query binds the view again, and
                # a table binds cheaper than the VALUES list of every code
                con.execute(f"CREATE OR REPLACE TABLE {OBS_CODES} AS SELECT * FROM {obs_codes(program)}")
                con.execute(f"CREATE OR REPLACE VIEW {name} AS\n{obs_rows(program, loaded=True, codes=OBS_CODES)}")
                views.append(name)
                continue
            con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM ({sql})" + (f" ORDER BY {order}" if order else ""))
        if not script.prep or script.lambda_steps:
            _input_tables(con, program, lo, hi, chunk)
        positional = sort = bool(script.positional)
        if positional:
            con.execute(f"CREATE OR REPLACE TABLE {BASE} AS SELECT seq, patient_id, error FROM {script.base} ORDER BY seq")
            # a seq given to two patients (or none: docs/sql.md asks for distinct ones) is left to
            # the join by seq, whose rows are then what they always were
            positional, rows = con.execute(f"SELECT count(DISTINCT seq) = count(*), count(*) FROM {BASE}").fetchone()
            # more patients than one row group: the steps run on several threads, whose rows
            # come out interleaved (every step at 1,000,000): each step sorts its own rows
            sort = positional and rows > sort_above and int(con.execute("SELECT current_setting('threads')").fetchone()[0]) > 1
        clock("input")
        aligned = _steps(con, script, names, workers, positional=positional, sort=positional and sort)
        clock("criteria")
        positional = positional and all(aligned)
        if positional:
            # the positional result query reads elig_base and the criterion tables only: the
            # work tables' memory is freed before it (1,000,000 patients spill beyond 2 GB)
            _drop_prep(con, views, prep)
        _results(con, script, lo, hi, result_chunk, workers, positional=positional, view=view and positional)
        keep = view and positional
        clock("results")
    finally:
        # the work tables are the connection database's (cursors do not see TEMP tables)
        _drop_prep(con, views, prep)
        if not keep:
            for n in names + [BASE]:
                con.execute(f"DROP TABLE IF EXISTS {n}")


def _drop_prep(con, views: list, prep: list) -> None:
    """Drops the work tables of the input (and the view elig_ox)."""
    for n in views:
        con.execute(f"DROP VIEW IF EXISTS {n}")
    for n in ["elig_input", "elig_obs", UNIT_OBS, OBS_CODES] + [p for p in prep if p not in views]:
        con.execute(f"DROP TABLE IF EXISTS {n}")


def drop_work(con) -> None:
    """Drops what run_script(..., view=True) left for its view elig_screened: the view, the
    criterion tables and elig_base."""
    names = [r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() AND NOT temporary "
        "AND regexp_full_match(table_name, 'elig_k[0-9]+')").fetchall()]
    con.execute("DROP VIEW IF EXISTS elig_result_json")
    con.execute("DROP VIEW IF EXISTS elig_screened")
    for n in names + [BASE]:
        con.execute(f"DROP TABLE IF EXISTS {n}")


def _screened_view(con) -> bool:
    """Whether elig_screened is the view of run_script(..., view=True)."""
    return con.execute("SELECT count(*) FROM duckdb_views() WHERE view_name = 'elig_screened' AND NOT temporary "
                       "AND database_name = current_database() AND schema_name = current_schema()").fetchone()[0] > 0


class _Clock:
    """Wall and CPU seconds of the phases of run_script (or of `elig screen`), into ``timings``
    (when given); CPU of the whole process, DuckDB's threads included."""

    def __init__(self, timings):
        import time

        self.timings, self.time = timings, time
        self.restart()

    def restart(self) -> None:
        self.w, self.c = self.time.perf_counter(), self.time.process_time()

    def __call__(self, phase: str) -> None:
        if self.timings is None:
            return
        w, c = self.time.perf_counter(), self.time.process_time()
        self.timings[phase] = (w - self.w, c - self.c)
        self.w, self.c = w, c


def _input_tables(con, program, lo: int, hi: int, chunk: int) -> None:
    """elig_input, chunk by chunk of patients (seq in [start, start + chunk))."""
    from .script import input_view

    first = True
    start = lo
    while first or start <= hi:
        rng = (start, start + chunk)
        # the chunk's observation lists as rows, then its input rows (joining those lists)
        # (sorted by code: each of the per-code joins below then reads only its own row groups)
        con.execute(f"CREATE OR REPLACE TABLE elig_obs AS SELECT * FROM ({input_view(program, rng, obs_mode='lists')}) "
                    f"ORDER BY code, w, seq")
        if first:
            con.execute(input_view(program, rng, name="TABLE elig_input", obs_mode="joined"))
            first = False
        else:
            con.execute("INSERT INTO elig_input " + input_view(program, rng, name="", obs_mode="joined"))
        start += chunk


def _results(con, script: Script, lo: int, hi: int, result_chunk: int, workers: int, positional: bool = False,
             view: bool = False) -> None:
    """elig_screened (seq, patient_id, error, status, out__<id>, miss__<id>), its rows stored in
    seq order (so that a reader of the table alone reads them in input order, without sorting:
    DuckDB keeps the order of a single table's rows), then the view elig_result_json (seq,
    result): the result-format-1 JSON texts, built only when read (Script.result_sql).

    ``positional`` (every criterion table holds the patients of elig_base in its order, _steps):
    one query joining the tables row by row (Script.positional: a positional scan, no hash
    table, memory bounded by a few vectors whatever the population). Otherwise the criterion
    tables joined by seq per range of patients ({lo} <= seq < {hi} of Script.final), ``workers``
    ranges at a time on cursors, each appending its rows (one query joining the 44 criterion
    tables of 1,000,000 patients by hash joins ran out of memory at DuckDB's 2 GB limit), then
    sorted by seq. ``view`` (with ``positional``): elig_screened is the view of that query
    (run_script)."""
    # (a table and a view of one name do not replace each other: the former results dropped)
    con.execute("DROP VIEW IF EXISTS elig_result_json")
    con.execute(f"DROP {'VIEW' if _screened_view(con) else 'TABLE'} IF EXISTS elig_screened")
    if view:
        con.execute("CREATE VIEW elig_screened AS\n" + script.positional)
    elif positional:
        con.execute("CREATE OR REPLACE TABLE elig_screened AS\n" + script.positional)
        # the rows are in elig_base's order (a positional scan reads its tables in order); checked,
        # not assumed: DuckDB documents the order of one table's rows, not of a join's
        if not _in_order(con, "elig_screened"):
            con.execute("CREATE OR REPLACE TABLE elig_screened AS SELECT * FROM elig_screened ORDER BY seq")
    else:
        def part(start: int) -> str:
            return script.final.replace("{lo}", str(start)).replace("{hi}", str(start + result_chunk))

        starts = list(range(lo, hi + 1, result_chunk)) if hi >= lo else [lo]
        con.execute("CREATE OR REPLACE TABLE elig_screened AS\n" + part(starts[0]) + "\nWITH NO DATA")
        _parallel(con, script, [lambda cur, s=s: cur.execute("INSERT INTO elig_screened\n" + part(s)) for s in starts],
                  workers)
        con.execute("CREATE OR REPLACE TABLE elig_screened AS SELECT * FROM elig_screened ORDER BY seq")
    con.execute("CREATE OR REPLACE TEMP VIEW elig_result_json AS\n" + script.result_sql)


def _in_order(con, table: str) -> bool:
    """Whether the table holds the patients of elig_base in its order (seq ascending): row i of
    the one is row i of the other (a positional join pads the shorter with NULLs)."""
    return con.execute(f"SELECT count(*) FROM {table} t POSITIONAL JOIN {BASE} b "
                       "WHERE t.seq IS DISTINCT FROM b.seq").fetchone()[0] == 0


def _steps(con, script: Script, names: list, workers: int, positional: bool = False, sort: bool = False) -> list:
    """One table per criterion (elig_k<i>), ``workers`` queries at a time on cursors. With
    ``positional`` (elig_base built): a table whose rows are not in elig_base's order (a step
    ending in an aggregate or a join that reorders) is rewritten sorted by seq, so that the
    result query joins the tables by position; with ``sort`` too each step sorts its rows by
    seq as it writes them (one write of the table instead of two where every step would be
    rewritten). Returned: per table, whether it then holds the patients of elig_base in its
    order (every one does unless a step gave a patient no row or two; False for all without
    ``positional``)."""
    aligned = [False] * len(names)

    def task(cur, i: int) -> None:
        cur.execute(f"CREATE OR REPLACE TABLE {names[i]} AS\n" + script.steps[i][1] + ("\nORDER BY seq" if sort else ""))
        if positional:
            if not _in_order(cur, names[i]):
                cur.execute(f"CREATE OR REPLACE TABLE {names[i]} AS SELECT * FROM {names[i]} ORDER BY seq")
            aligned[i] = _in_order(cur, names[i])

    _parallel(con, script, [lambda cur, i=i: task(cur, i) for i in range(len(names))], workers)
    return aligned


def _parallel(con, script: Script, tasks: list, workers: int) -> None:
    """Run the tasks (each a function of a cursor) ``workers`` at a time on cursors of the
    connection (planning is single-threaded in DuckDB); the first error is raised."""
    if workers <= 1 or len(tasks) <= 1:
        for task in tasks:
            task(con)
        return
    import queue
    import threading

    todo: "queue.Queue" = queue.Queue()
    for task in tasks:
        todo.put(task)
    errors: list[BaseException] = []

    def work() -> None:
        cur = con.cursor()
        try:
            _macros(cur, script)
            while not errors:
                try:
                    task = todo.get_nowait()
                except queue.Empty:
                    return
                task(cur)
        except BaseException as exc:  # noqa: BLE001 - re-raised below in the caller
            errors.append(exc)
        finally:
            cur.close()

    threads = [threading.Thread(target=work, daemon=True) for _ in range(min(workers, len(tasks)))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def prepare(con, program, lowered, module, only=None) -> Script:
    script = prepare_script(program, lowered, only=only)
    run_script(con, program, module, script)
    return script


def results(con, batch: int = 20000) -> Iterator[str]:
    """Result-format-1 JSON texts in input order (elig_screened's rows are stored in seq order)."""
    cur = con.execute("SELECT result FROM elig_result_json")
    while True:
        rows = cur.fetchmany(batch)
        if not rows:
            return
        for (r,) in rows:
            yield r


class OutOfOrder(Exception):
    """The results read through the view elig_screened were not in elig_base's order."""


ORDER_ERROR = "the results are out of input order at seq "


def result_lines(con, batch: int = 1024) -> Iterator[tuple[int, list]]:
    """The JSON texts of results() as UTF-8 lines, ``batch`` records at a time: (records, their
    lines, each ending in a newline), for writing to a binary stream (write_lines): DuckDB's
    bytes as they are, no str object per text and no joined copy of a batch. From the view of
    run_script(..., view=True), each row's seq is checked against elig_base's as it is read:
    OutOfOrder (never seen; the lines already written cannot be taken back)."""
    import duckdb

    sql = "SELECT encode(result || chr(10)) FROM elig_result_json"
    if _screened_view(con):
        # the view's rows are read in elig_base's order (a positional scan of its tables)
        sql = ("SELECT CASE WHEN r.seq IS NOT DISTINCT FROM b.seq THEN encode(r.result || chr(10)) "
               f"ELSE error('{ORDER_ERROR}' || coalesce(CAST(r.seq AS VARCHAR), 'NULL')) END "
               f"FROM elig_result_json r POSITIONAL JOIN (SELECT seq FROM {BASE}) b")
    cur = None
    while True:
        try:
            if cur is None:
                cur = con.execute(sql)
            rows = cur.fetchmany(batch)
        except duckdb.InvalidInputException as exc:
            if ORDER_ERROR in str(exc):
                raise OutOfOrder(str(exc).splitlines()[0].split(": ", 1)[-1]) from None
            raise
        if not rows:
            return
        yield len(rows), [r for (r,) in rows]


def write_lines(out, lines: list) -> None:
    """The byte strings ``lines`` written one after another to the binary stream ``out``: by one
    writev (no joined copy of them: a batch of 1,024 lines is about 5 MB, whose copy into fresh
    memory cost as much as building the texts) to its file descriptor when it has one (its
    buffer flushed first), else by one write of the joined bytes (an embedding caller's stream)."""
    import io
    import os

    try:
        fd = out.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation, ValueError):
        fd = None
    if fd is None:
        out.write(b"".join(lines))
        return
    out.flush()
    for k in range(0, len(lines), _IOV_MAX):
        part = lines[k:k + _IOV_MAX]
        done = os.writev(fd, part)
        if done < sum(len(x) for x in part):
            # a partial write (a signal, a full non-blocking pipe): the rest from where it stopped
            rest = memoryview(b"".join(part))[done:]
            while rest:
                rest = rest[os.write(fd, rest):]


def _iov_max() -> int:
    import os

    try:
        return max(16, min(os.sysconf("SC_IOV_MAX"), 1024))
    except (AttributeError, ValueError, OSError):
        return 16


# buffers per writev (the system's limit, IOV_MAX: 1,024 on Linux)
_IOV_MAX = _iov_max()


def write_results_parquet(con, script: Script, directory: str) -> str:
    """DIRECTORY/results.parquet: seq, patient_id, status, error and per criterion its outcome
    (out__<id>) and missing codes (miss__<id>), in input order (elig_screened's rows are stored in
    seq order: no sort); written atomically."""
    import os
    import tempfile
    from pathlib import Path

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    cols = ", ".join(f'"out__{c}", "miss__{c}"' for c, _, _ in script.criteria)
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".results.", suffix=".parquet.part")
    os.close(fd)
    select = f"SELECT seq, patient_id, status, error{', ' + cols if cols else ''} FROM elig_screened"
    qtmp = loader._q(tmp)
    try:
        con.execute(f"COPY ({select}) TO {qtmp} (FORMAT parquet)")
        if _screened_view(con):
            # the view is a positional scan of the tables, read in their order; checked, not
            # assumed (the file's seq column against elig_base's, a few ms), as for the table
            if con.execute(f"SELECT count(*) FROM read_parquet({qtmp}) t POSITIONAL JOIN {BASE} b "
                           "WHERE t.seq IS DISTINCT FROM b.seq").fetchone()[0]:
                con.execute(f"COPY ({select} ORDER BY seq) TO {qtmp} (FORMAT parquet)")
        os.replace(tmp, d / "results.parquet")
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return str(d / "results.parquet")
