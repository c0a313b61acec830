"""`elig screen` and `elig load`: population screening on DuckDB (registered from compiler/cli.py)."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import click


def _die(msg: str, code: int = 1):
    click.echo(f"elig: {msg}", err=True)
    sys.exit(code)


def _compile(rules_dir: str):
    """The checked rules, lowered, and the evaluator's source (its unit resolver, --explain); not
    the HTML page nor verify's coverage table that only the page shows (a third of the time of
    `elig compile`: screening never reads them)."""
    from ..backend_python import emit_python
    from ..cli import _compile as compile_rules, _report
    from ..lower import lower

    res = compile_rules(rules_dir, emit=False)
    _report(res)
    if not res.ok:
        _die("the rules do not compile")
    try:
        res.lowered = lower(res.program, Path(rules_dir).as_posix())
        res.python = emit_python(res.lowered)
    except Exception as exc:  # a compiler defect: said plainly (as compiler/cli.py does), never a traceback
        _die(f"internal compiler error ({type(exc).__name__}: {exc}); please report it with the rule files")
    return res


def _kind(data: str) -> str:
    """jsonl | parquet | duckdb for a DATA argument."""
    if data == "-":
        return "jsonl"
    p = Path(data)
    if p.is_dir():
        return "parquet"
    if not p.is_file():
        _die(f"{data}: no such file or directory")
    try:
        with open(p, "rb") as f:
            head = f.read(16)
    except OSError as exc:
        _die(f"cannot read {data}: {exc.strerror or exc}")
    if head[8:12] == b"DUCK":
        return "duckdb"
    return "jsonl"


def _stdin_to_file(tmpdir: str) -> str:
    """Standard input copied to a private file (DuckDB's reader needs a file)."""
    path = os.path.join(tmpdir, "stdin.jsonl")
    with open(path, "wb") as out:
        shutil.copyfileobj(sys.stdin.buffer, out, 1 << 20)
    return path


def open_data(con, data: str, tmpdir: str, words: dict | None = None,
              codes: tuple | None = None) -> tuple[int, str, str]:
    """Load or attach DATA on the connection: (records, kind, JSON Lines path or ''). ``words``,
    ``codes``: JSON Lines loaded with only the columns so named and the observations of these
    codes (loader.load_jsonl, screen.read_words)."""
    from . import loader

    kind = _kind(data)
    if kind == "parquet":
        try:
            return loader.attach_parquet(con, data), kind, ""
        except FileNotFoundError as exc:
            _die(str(exc))
    if kind == "duckdb":
        con.execute(f"ATTACH {loader._q(str(Path(data).resolve()))} AS src (READ_ONLY)")
        for t in loader.TABLES:
            try:
                if t == "observations":  # loaded observations are read in place (loader.attach_observations)
                    loader.attach_observations(con, "src.main.observations", loader._comment(con, t, "src"))
                    continue
                con.execute(f"CREATE OR REPLACE TEMP VIEW {t} AS SELECT * FROM src.main.{t}")
            except Exception as exc:  # noqa: BLE001 - a database without the schema's tables
                _die(f"{data}: not a screening database (table {t}: {str(exc).splitlines()[0]})")
        return con.execute("SELECT count(*) FROM patients").fetchone()[0], kind, ""
    path = _stdin_to_file(tmpdir) if data == "-" else data
    try:
        return loader.load_jsonl(con, path, scratch_dir=tmpdir, words=words, codes=codes), kind, path
    except loader.LoadError as exc:
        _die(str(exc))


def _explain(module, path: str, ids: tuple[str, ...]) -> list[dict]:
    """Full result-format-1 results (Python evaluator) of the records with these ids."""
    from ..records import iter_records

    want = set(ids)
    out = []
    with open(path, "r", encoding="utf-8", errors="surrogateescape") as f:
        for text in iter_records(f):
            if not want:
                break
            try:
                rid = json.loads(text).get("id")
            except (ValueError, AttributeError, RecursionError):
                continue
            if rid in want:
                want.discard(rid)
                out.append(module.evaluate_json(text))
    for missing in sorted(want):
        out.append({"format": 1, "patient_id": missing, "status": "error", "error": "no record with this id"})
    return out


def summary_text(con, script) -> str:
    crit = script.criteria
    n = con.execute("SELECT count(*) FROM elig_screened").fetchone()[0]
    st = dict(con.execute("SELECT status, count(*) FROM elig_screened GROUP BY status").fetchall())
    lines = [f"{n:,} records: " + ", ".join(f"{k} {st.get(k, 0):,}" for k in ("eligible", "ineligible", "indeterminate", "error"))]
    lines.append(f"{'ref':<6} {'criterion':<40} {'pass':>8} {'fail':>8} {'unknown':>8} {'review':>8} {'fail only this':>15}")
    if crit:
        # one pass over the readable records: per criterion its outcome counts and "fails only
        # this"; for the funnel, the position of each record's first failing criterion (the
        # records still not failing after criterion i are those failing first after it)
        k = len(crit)
        nfail = " + ".join(f"CAST(\"out__{c}\" = 'fail' AS INTEGER)" for c, _, _ in crit)
        first = " ".join(f"WHEN NOT coalesce(\"out__{c}\" <> 'fail', FALSE) THEN {i}" for i, (c, _, _) in enumerate(crit))
        sel = ", ".join(
            f"count(*) FILTER (WHERE \"out__{c}\" = '{o}')" for c, _, _ in crit for o in ("pass", "fail", "unknown", "review"))
        only = ", ".join(f"count(*) FILTER (WHERE \"out__{c}\" = 'fail' AND elig_nfail = 1)" for c, _, _ in crit)
        funnel = ", ".join(f"count(*) FILTER (WHERE elig_first > {i})" for i in range(k))
        row = con.execute(f"SELECT {sel}, {only}, {funnel} FROM (SELECT *, ({nfail}) AS elig_nfail, "
                          f"CASE {first} ELSE {k} END AS elig_first FROM elig_screened WHERE error IS NULL)").fetchone()
        for i, (cid, ref, _) in enumerate(crit):
            p, f, u, r = row[4 * i: 4 * i + 4]
            lines.append(f"{ref:<6} {cid:<40} {p:>8,} {f:>8,} {u:>8,} {r:>8,} {row[4 * k + i]:>15,}")
        # the funnel: all readable records, then those still passing after each criterion in order
        lines.append("funnel (all readable records, then still not failing after each criterion):")
        readable = n - st.get("error", 0)
        lines.append(f"  {'all':<46} {readable:>10,}")
        for i, (cid, ref, _) in enumerate(crit):
            lines.append(f"  {ref + ' ' + cid:<46} {row[5 * k + i]:>10,}")
        lines.append(f"  {'eligible (every criterion passes)':<46} {st.get('eligible', 0):>10,}")
    return "\n".join(lines)


@click.command(name="screen")
@click.option("--rules", "rules_dir", required=True, type=click.Path(file_okay=False), help="The trial's rule files.")
@click.option("--engine", type=click.Choice(["duckdb", "spark"]), default="duckdb", show_default=True,
              help="The SQL engine: DuckDB (embedded) or Spark SQL (local[2]).")
@click.option("-o", "--output", "output", type=click.Path(file_okay=False),
              help="Write results as Parquet into this directory (results.parquet) instead of JSON Lines on stdout.")
@click.option("--summary", is_flag=True, help="Print per-criterion counts, 'fails only this' and the funnel instead of each result.")
@click.option("--explain", "explain", multiple=True, metavar="ID",
              help="Full result-format-1 reasons for these patients, by the Python evaluator (JSON Lines input).")
@click.option("--threads", type=int, default=0, help="DuckDB threads (0: DuckDB's default, every core).")
@click.option("--memory-limit", default="2GB", show_default=True,
              help="DuckDB memory limit (beyond it DuckDB spills to the work directory), e.g. 3GB.")
@click.option("--timings", is_flag=True,
              help="Print the wall and CPU seconds of each phase (compile, read, input, criteria, results, write) "
                   "to standard error at the end (DuckDB engine).")
@click.argument("data", metavar="DATA", type=click.Path(allow_dash=True))
def screen(rules_dir, engine, output, summary, explain, threads, memory_limit, timings, data):
    """Screen a population with the trial's rules compiled to SQL.

    DATA is patient-record format 1 as JSON Lines (- for stdin), a Parquet directory written by
    `elig load`, or a DuckDB database file with the screening tables (docs/sql.md).

    \b
    Example:
      elig screen --rules sm3321_rules registry.jsonl > results.jsonl
      elig screen --rules sm3321_rules --summary registry.jsonl
      elig screen --rules sm3321_rules -o results/ registry.duckdb
      elig screen --rules sm3321_rules --explain SCR-0042 registry.jsonl
    One result per record, in input order (reasons are the outcome words; --explain gives the
    full reasons). Exit status 0 when every record produced a result.
    """
    import duckdb

    from . import loader
    from . import screen as S
    from .script import SqlCompileError

    phases: dict = {}
    clock = S._Clock(phases if timings else None)
    res = _compile(rules_dir)
    module = S.evaluator_module(res.python)
    if explain:
        if _kind(data) != "jsonl" or data == "-":
            _die("--explain reads the records themselves: give a JSON Lines file", 2)
        for r in _explain(module, data, explain):
            click.echo(json.dumps(r))
        return
    if engine == "spark":  # local Spark (compiler/sql/cli_spark.py, docs/sql-spark.md)
        from .cli_spark import screen_spark

        return screen_spark(res, module, data, output, summary)
    tmpdir = tempfile.mkdtemp(prefix="elig-screen-")
    try:
        # the work tables in memory, spilled to the private directory beyond --memory-limit: a
        # work file costs the writing of every table built (the criterion tables, the results)
        con = S.connect(":memory:", threads=threads or None, memory_limit=memory_limit or None)
        con.execute(f"SET temp_directory = {loader._q(tmpdir)}")
        tty = sys.stderr.isatty()
        if tty and (output or summary) and sys.stdout.isatty():
            con.execute("SET enable_progress_bar = true")  # DuckDB draws it on standard output
        try:
            script = S.prepare_script(res.program, res.lowered)
        except SqlCompileError as exc:
            for p in exc.problems:
                click.echo(f"elig: {p}", err=True)
            _die("the rules cannot be screened in SQL yet")
        if tty:
            click.echo("elig: reading the records...", err=True)
        clock("compile")
        # JSON Lines: only the columns this trial's screening reads are loaded, and only the
        # observations of its codes (and those without a code)
        n, _, _ = open_data(con, data, tmpdir, words=S.read_words(res.program, script),
                            codes=tuple(o.name for o in res.program.observations))
        clock("read")
        if tty:
            click.echo(f"elig: screening {n:,} records with {len(script.criteria)} criteria...", err=True)
        # the JSON Lines read the results once: elig_screened a view (run_script); Parquet reads a
        # table (its writer marks a column without NULLs REQUIRED from the table's statistics,
        # which a view of the positional join does not give it)
        S.run_script(con, res.program, module, script, timings=phases if timings else None,
                     view=not (summary or output))
        clock.restart()
        if summary:
            click.echo(summary_text(con, script))
            clock("write")
            return
        if output:
            S.write_results_parquet(con, script, output)
            clock("write")
            return
        # the texts as DuckDB's UTF-8 bytes, a batch of lines per writev (no str per text)
        sys.stdout.flush()
        out = getattr(sys.stdout, "buffer", None)
        if out is None:  # a text-only stream (an embedding caller's)
            for text in S.results(con):
                sys.stdout.write(text + "\n")
            out = sys.stdout
        elif tty:
            with click.progressbar(length=n, label="elig: writing results", file=sys.stderr) as bar:
                for k, lines in S.result_lines(con):
                    S.write_lines(out, lines)
                    bar.update(k)
        else:
            for _, lines in S.result_lines(con):
                S.write_lines(out, lines)
        out.flush()
        clock("write")
    except S.OutOfOrder as exc:  # never seen: the check of the view's order (screen.result_lines)
        _die(f"internal error: {exc}; please report it")
    except duckdb.OutOfMemoryException as exc:
        # reading, screening or writing: a clear error, no traceback, nothing written to -o
        _die(f"DuckDB ran out of memory at --memory-limit {memory_limit} "
             f"({str(exc).splitlines()[0]}): give a larger --memory-limit")
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
        if timings and phases:
            click.echo("elig: timings (wall s / CPU s): " + ", ".join(f"{k} {w:.2f} / {c:.2f}" for k, (w, c) in phases.items()),
                       err=True)


@click.command(name="load")
@click.option("-o", "--output", "output", required=True, type=click.Path(),
              help="A directory (Parquet, one file per table) or a file ending in .duckdb.")
@click.argument("data", metavar="DATA", type=click.Path(allow_dash=True, dir_okay=False))
def load(output, data):
    """Load patient-record format 1 JSON Lines into the screening tables (docs/sql.md).

    \b
    Example:
      elig load registry.jsonl -o registry/            # Parquet directory
      elig load registry.jsonl -o registry.duckdb      # DuckDB database
    A record that cannot be read is an error row of `patients`; unusable fields stay unusable.
    """
    from . import loader
    from . import screen as S

    tmpdir = tempfile.mkdtemp(prefix="elig-load-")
    try:
        if output.endswith(".duckdb"):
            part = os.path.join(os.path.dirname(os.path.abspath(output)) or ".", f".{os.path.basename(output)}.part")
            if os.path.exists(part):
                os.unlink(part)
            con = S.connect(part, memory_limit="2GB")
            try:
                n, _, _ = open_data(con, data, tmpdir)
            except BaseException:
                con.close()
                for f in (part, part + ".wal"):
                    if os.path.exists(f):
                        os.unlink(f)
                raise
            con.close()
            os.replace(part, output)
        else:
            # in memory (spilled to the private directory beyond the limit): the tables are only
            # written out as Parquet, never kept, so they need not be stored in a database file
            con = S.connect(":memory:", memory_limit="2GB")
            con.execute(f"SET temp_directory = {loader._q(tmpdir)}")
            n, kind, _ = open_data(con, data, tmpdir)
            loader.write_parquet(con, output, in_order=kind == "jsonl")
            con.close()
        click.echo(f"{n:,} records loaded into {output}", err=True)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


@click.command(name="sql")
@click.argument("rules_dir", type=click.Path(file_okay=False))
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False),
              help="Write the script here (default: standard output).")
def sql(rules_dir, output):
    """Print the DuckDB screening script of a trial (byte-identical from run to run).

    \b
    Example:
      elig sql sm3321_rules -o sm3321.duckdb.sql
    The script reads the tables of docs/sql.md and elig_unit_map; `elig screen` runs it.
    Exit status 1 naming every rule (file:line) that has no SQL form yet.
    """
    from .relational import build
    from .script import SqlCompileError

    res = _compile(rules_dir)
    try:
        text = build(res.program, res.lowered).text()
    except SqlCompileError as exc:
        for p in exc.problems:
            click.echo(f"elig: {p}", err=True)
        _die("the rules cannot be screened in SQL yet")
    if not output:
        click.echo(text, nl=False)
        return
    target = Path(output)
    fd, tmp = tempfile.mkstemp(dir=target.parent if str(target.parent) else ".", prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
