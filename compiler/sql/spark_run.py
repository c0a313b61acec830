"""Running the Spark SQL of compiler/sql/spark.py on a SparkSession (local mode or a cluster's):
the input view materialised once, then one small query per criterion (a narrow table `seq,
out__<id>, miss__<id>` each, written to Parquet in a private working directory so that every
plan stays small), then the results joined by seq, in input order."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterator, Optional

from . import loader
from .spark import SparkScript, to_spark

_SESSION = None


def session(master: str = "local[2]", app: str = "elig-screen", driver_memory: str = "3g"):
    """The process's one SparkSession: local[2], UI off, few shuffle partitions, ANSI off (a
    DECIMAL overflow is NULL, as DuckDB's TRY), UTC, nulls kept in JSON."""
    global _SESSION
    if _SESSION is not None:
        return _SESSION
    import atexit

    from pyspark.sql import SparkSession

    # the catalog's warehouse (Spark makes it on first use; the bucketed work tables are external
    # tables in the work directory, so it stays empty): a private directory, not ./spark-warehouse
    warehouse = tempfile.mkdtemp(prefix="elig-spark-warehouse-")
    atexit.register(shutil.rmtree, warehouse, True)
    _SESSION = (SparkSession.builder.master(master).appName(app)
                .config("spark.sql.warehouse.dir", warehouse)
                .config("spark.ui.enabled", "false")
                .config("spark.ui.showConsoleProgress", "false")
                .config("spark.driver.memory", driver_memory)
                # the criteria's queries nest deeply: Spark's SQL parser needs a deep thread stack
                .config("spark.driver.extraJavaOptions", "-Xss256m")
                .config("spark.sql.shuffle.partitions", "4")
                .config("spark.sql.ansi.enabled", "false")
                .config("spark.sql.session.timeZone", "UTC")
                .config("spark.sql.jsonGenerator.ignoreNullFields", "false")
                # the criteria make large expressions: whole-stage Java code beyond 64 KB fails to
                # compile and falls back anyway; not generating it saves the attempt
                .config("spark.sql.codegen.wholeStage", "false")
                # adaptive execution re-plans the large criteria plans after every stage, comparing
                # nested plans each time: on SM3321's former 44-way result join it ran for over
                # 10 minutes
                .config("spark.sql.adaptive.enabled", "false")
                # the plans are huge: keep their text short and few of them in the status store
                .config("spark.sql.maxPlanStringLength", "65536")
                .config("spark.sql.ui.retainedExecutions", "2")
                .config("spark.ui.retainedJobs", "10")
                .config("spark.ui.retainedStages", "10")
                .getOrCreate())
    _SESSION.sparkContext.setLogLevel("ERROR")
    return _SESSION


def configure(spark) -> None:
    """Session settings the script's meaning depends on (NULL on overflow, nulls kept in JSON)."""
    spark.conf.set("spark.sql.ansi.enabled", "false")
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    spark.conf.set("spark.sql.jsonGenerator.ignoreNullFields", "false")
    # size(NULL) is NULL, as DuckDB's len(NULL) (Spark's legacy default is -1)
    spark.conf.set("spark.sql.legacy.sizeOfNull", "false")
    # the work table elig_ox is partitioned by code (strings): read back as strings
    spark.conf.set("spark.sql.sources.partitionColumnTypeInference.enabled", "false")


class _Con:
    """DuckDB-connection-shaped access to a SparkSession for the engine-neutral helpers
    (screen.resolve_units, cli_screen.summary_text): each statement is printed in Spark SQL."""

    def __init__(self, spark):
        self.spark = spark
        self._rows = []

    def execute(self, sql: str, params=None):
        m = re.match(r"\s*CREATE OR REPLACE TEMP TABLE (\w+) \((.*)\)\s*$", sql, re.S)
        if m:  # an empty table of these columns
            cols = ", ".join(f"CAST(NULL AS STRING) AS {c.split()[0]}" for c in m.group(2).split(","))
            self.spark.sql(f"SELECT {cols} WHERE FALSE").createOrReplaceTempView(m.group(1))
            self._rows = []
            return self
        if params:  # DuckDB's `?` placeholders: string parameters only (resolve_units)
            parts = sql.split("?")
            if len(parts) != len(params) + 1:
                raise ValueError("placeholders and parameters differ")
            sql = parts[0] + "".join("'" + str(p).replace("'", "''") + "'" + rest for p, rest in zip(params, parts[1:]))
        self._rows = [tuple(r) for r in self.spark.sql(to_spark(sql)).collect()]
        return self

    def executemany(self, sql: str, rows):
        m = re.match(r"\s*INSERT INTO (\w+) VALUES", sql)
        table = m.group(1)
        old = self.spark.table(table)
        new = self.spark.createDataFrame([tuple(r) for r in rows], old.schema)
        old.unionByName(new).localCheckpoint().createOrReplaceTempView(table)
        return self

    def fetchall(self):
        return self._rows

    def fetchone(self):
        return self._rows[0] if self._rows else None


def open_parquet(spark, directory: str) -> int:
    """Temporary views over the tables of a Parquet directory written by `elig load`."""
    d = Path(directory)
    for t in loader.TABLES:
        f = d / f"{t}.parquet"
        if not f.is_file():
            raise FileNotFoundError(f"{f}: missing (a screening Parquet directory has {', '.join(loader.TABLES)})")
        spark.read.parquet(str(f.resolve())).createOrReplaceTempView(t)
    return spark.table("patients").count()


def _materialise(spark, df, path: str, view: str, partition: Optional[str] = None):
    w = df.write.mode("overwrite")
    if partition:
        w = w.partitionBy(partition)
    w.parquet(path)
    spark.read.parquet(path).createOrReplaceTempView(view)


def _parse_ahead(spark, texts) -> Callable[[], None]:
    """Parse TEXTS in a background thread and drop the plans: the first parse of a criterion's
    deeply nested text is most of its planning time (Spark's ANTLR parser builds its prediction
    tables, kept for the JVM's life), and it needs no table, so it overlaps the input view's
    materialisation. Returns a function that waits for it. Only a warm-up: a failure is ignored
    (the criterion's own spark.sql reports it)."""
    import threading

    try:
        parser = spark._jsparkSession.sessionState().sqlParser()
    except Exception:  # noqa: BLE001 - not a classic session (Spark Connect): no warm-up
        return lambda: None
    stop = threading.Event()

    def work():
        for text in texts:
            if stop.is_set():
                return
            try:
                parser.parsePlan(text)
            except Exception:  # noqa: BLE001
                pass

    t = threading.Thread(target=work, name="elig-spark-parse-ahead", daemon=True)
    t.start()

    def join():
        stop.set()
        t.join()

    return join


def run(spark, program, module, script: SparkScript, workdir: str,
        progress: Optional[Callable[[int, str], None]] = None, parallel: int = 2) -> None:
    """Run the script over the tables of the session: results in the view elig_screened (read
    from Parquet files in WORKDIR, a private directory the caller removes). PARALLEL criteria are
    planned and run at a time (each query's planning is single-threaded on the driver; the
    largest criteria start first)."""
    from concurrent.futures import ThreadPoolExecutor

    from .screen import resolve_units

    configure(spark)
    order = sorted(range(len(script.queries)), key=lambda i: -len(script.queries[i][1]))
    wait_parsed = _parse_ahead(spark, [script.queries[i][1] for i in order])
    try:
        if progress:
            progress(-2, "units")
        resolve_units(_Con(spark), program, module)
        if progress:
            progress(-1, "input")
        # the relational form's work tables, written once; the table of items a criterion
        # selects by its first sort column (elig_ox: code) partitioned by that column, so that a
        # criterion reads the files of its own code only (DuckDB sorts it for its row groups)
        for name, sql, sort in script.prep:
            _materialise(spark, spark.sql(sql), os.path.join(workdir, name), name,
                         partition=sort.split(",")[0].strip() if sort else None)
        if script.input_view:  # the lambda form's criteria read elig_input
            spark.sql(script.input_view)  # CREATE OR REPLACE TEMPORARY VIEW elig_input AS ...
            _materialise(spark, spark.table("elig_input"), os.path.join(workdir, "elig_input"), "elig_input")
    finally:
        wait_parsed()

    def one(i):
        cid, sql = script.queries[i]
        if progress:
            progress(i, cid)
        _materialise(spark, spark.sql(sql), os.path.join(workdir, f"k{i}"), f"elig_k{i}")

    if parallel <= 1:
        for i in order:
            one(i)
    else:
        with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="elig-spark") as pool:
            futures = [pool.submit(one, i) for i in order]
            try:
                for f in futures:
                    f.result()
            except BaseException:
                for f in futures:
                    f.cancel()
                raise
    _materialise(spark, spark.sql(script.result_query), os.path.join(workdir, "screened"), "elig_screened")


def results(spark) -> Iterator[str]:
    """Result-format-1 JSON texts in input order."""
    for row in spark.sql("SELECT result FROM elig_screened ORDER BY seq").toLocalIterator():
        yield row[0]


def summary(spark, script) -> str:
    from .cli_screen import summary_text

    return summary_text(_Con(spark), script)


def write_results_parquet(spark, script, directory: str) -> str:
    """DIRECTORY/results.parquet as DuckDB writes it (seq, patient_id, status, error, out__/miss__
    per criterion, in input order), written into a private directory and moved into place."""
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
    """The loader's Parquet tables of a JSON Lines file (the loader runs on DuckDB: `elig load`),
    so that the error-row contract of the loader holds for Spark too."""
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
