"""`elig screen --engine spark` (the hook of compiler/sql/cli_screen.py)."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile

import click


def screen_spark(res, data: str, output, summary: bool, explain) -> None:
    from . import screen as S
    from . import spark as SP
    from .cli_screen import _die, _explain, _kind, _stdin_to_file
    from .script import SqlCompileError

    module = S.evaluator_module(res.python)
    if explain:
        if _kind(data) != "jsonl" or data == "-":
            _die("--explain reads the records themselves: give a JSON Lines file", 2)
        for r in _explain(module, data, explain):
            click.echo(json.dumps(r))
        return
    try:  # compile time: every rule with a construct that has no Spark form is named here
        script = SP.build_spark(res.program, res.lowered)
    except SqlCompileError as exc:
        for p in exc.problems:
            click.echo(f"elig: {p}", err=True)
        _die("the rules cannot be screened in Spark SQL yet")
    kind = _kind(data)
    if kind == "duckdb":
        _die("--engine spark reads JSON Lines or a Parquet directory (elig load DATA -o DIR), not a DuckDB file", 2)
    tmpdir = tempfile.mkdtemp(prefix="elig-screen-spark-")
    try:
        pq = data
        if kind == "jsonl":
            path = _stdin_to_file(tmpdir) if data == "-" else data
            pq = os.path.join(tmpdir, "tables")
            SP.load_json_lines_to_parquet(path, pq)
        spark = SP.session()
        spark.sparkContext.setLogLevel("ERROR")
        try:
            SP.open_parquet(spark, pq)
        except FileNotFoundError as exc:
            _die(str(exc))
        SP.run(spark, res.program, module, script)
        if summary:
            click.echo(SP.summary(spark, script))
        elif output:
            SP.write_results_parquet(spark, script, output)
        else:
            out = sys.stdout
            for text in SP.results(spark):
                out.write(text)
                out.write("\n")
            out.flush()
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
