"""`elig screen --engine spark`: the trial's criteria in Spark SQL on a local SparkSession
(compiler/sql/spark.py compiles, spark_run.py runs). Called from cli_screen.screen."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile

import click


def _die(msg: str, code: int = 1):
    click.echo(f"elig: {msg}", err=True)
    sys.exit(code)


def _to_parquet(data: str, tmpdir: str) -> str:
    """DATA as a Parquet directory of the screening tables: a Parquet directory as it is; JSON
    Lines (or standard input) and DuckDB files through the DuckDB loader (its error rows)."""
    from . import loader
    from . import screen as S
    from .cli_screen import _kind, open_data

    if _kind(data) == "parquet":
        for t in loader.TABLES:  # before Spark starts
            f = os.path.join(data, f"{t}.parquet")
            if not os.path.isfile(f):
                _die(f"{f}: missing (a screening Parquet directory has {', '.join(loader.TABLES)})")
        return data
    out = os.path.join(tmpdir, "tables")
    con = S.connect(os.path.join(tmpdir, "load.duckdb"))
    open_data(con, data, tmpdir)
    loader.write_parquet(con, out)
    con.close()
    return out


def screen_spark(res, module, data: str, output, summary: bool) -> None:
    from . import spark_run as R
    from .script import SqlCompileError
    from .spark import build_spark

    from .cli_screen import _kind

    if _kind(data) == "parquet":
        _to_parquet(data, "")  # a directory without the screening tables: said before anything runs
    try:
        script = build_spark(res.program, res.lowered)
    except SqlCompileError as exc:
        for p in exc.problems:
            click.echo(f"elig: {p}", err=True)
        _die("the rules cannot be screened in Spark SQL yet")
    for cid, why in script.fallbacks:  # screened all the same, in the slower lambda form
        who = "every rule" if cid == "*" else f"rule {cid}"
        click.echo(f"elig: {who}: in the lambda form on Spark (the relational form has no faithful Spark SQL: {why})",
                   err=True)
    tty = sys.stderr.isatty()
    tmpdir = tempfile.mkdtemp(prefix="elig-spark-")
    try:
        tables = _to_parquet(data, tmpdir)
        if tty:
            click.echo("elig: starting Spark (local[2])...", err=True)
        try:
            spark = R.session()
        except Exception as exc:  # noqa: BLE001 - no Java, no pyspark: say so, no traceback
            _die(f"cannot start Spark: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
        try:
            n = R.open_parquet(spark, tables)
        except FileNotFoundError as exc:
            _die(str(exc))

        def progress(i, cid):
            if tty and i >= 0:
                click.echo(f"elig: criterion {i + 1}/{len(script.criteria)}: {cid}", err=True)

        if tty:
            click.echo(f"elig: screening {n:,} records with {len(script.criteria)} criteria on Spark...", err=True)
        work = os.path.join(tmpdir, "work")
        os.makedirs(work)
        try:
            R.run(spark, res.program, module, script, work, progress=progress)
            if summary:
                click.echo(R.summary(spark, script))
                return
            if output:
                R.write_results_parquet(spark, script, output)
                return
            out = sys.stdout
            for text in R.results(spark):
                out.write(text)
                out.write("\n")
            out.flush()
        except Exception as exc:  # noqa: BLE001 - a Spark failure is reported, not a traceback
            if type(exc).__name__ in ("Py4JJavaError", "AnalysisException", "SparkRuntimeException", "PythonException",
                                      "Py4JNetworkError", "IllegalArgumentException", "ParseException"):
                _die(f"Spark failed: {str(exc).strip().splitlines()[0][:500]}")
            raise
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
