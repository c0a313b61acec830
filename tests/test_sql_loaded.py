"""Observations as `elig load` writes them (ordered by code, with the per-reading columns, marked:
compiler/sql/loader.py) are read by the screening through the view elig_ox; any other observations
(a user's own view or table over unsorted rows, a Parquet file written by hand, a loaded table
changed since) are copied into the table elig_ox as before. Every form gives the Python
evaluator's results, on records with readings without a code, blank codes, exact integers beyond
a BIGINT and unusable items."""

import json
import sys

import pytest

from conftest import ROOT

duckdb = pytest.importorskip("duckdb")
sys.path.insert(0, str(ROOT / "benchmarks"))

import cohort  # noqa: E402
from compiler.sql import loader, screen  # noqa: E402
from compiler.sql.cli_screen import open_data  # noqa: E402
from test_prep import _edge_records  # noqa: E402
from test_sql import BAD_LINES, _fuzz_texts, compare_subset, only_criteria  # noqa: E402

# criteria reading observations (latest reading within a window vs a limit, counts, QTcF...)
IDS = ("hemoglobin", "neutrophils", "qtcf_prolonged")
ADDED = "no_code, day, value_int, uln_int, lln_int, lloq_int"


@pytest.fixture(scope="module")
def data(compiled, sm3321, tmp_path_factory):
    texts = (list(cohort._lines(200, 11, 0.02)) + _edge_records(compiled.program, seed=4) + _fuzz_texts()[:200]
             + list(BAD_LINES))
    path = tmp_path_factory.mktemp("loaded") / "in.jsonl"
    path.write_text("".join(t.rstrip("\n") + "\n" for t in texts), encoding="utf-8")
    pys = only_criteria([sm3321.evaluate_json(t) for t in texts], IDS)
    for r in pys:
        r.pop("status", None) if r.get("status") != "error" else None
    return path, pys


def _screen(con, compiled, sm3321, pys) -> list:
    script = screen.prepare_script(compiled.program, compiled.lowered, only=set(IDS))
    screen.run_script(con, compiled.program, sm3321, script)
    out = [json.loads(r) for r in screen.results(con)]
    # the work tables and views are dropped (elig_ox a view or a table)
    assert con.execute("SELECT count(*) FROM duckdb_views() WHERE view_name = 'elig_ox'").fetchone()[0] == 0
    assert con.execute("SELECT list(table_name) FROM duckdb_tables() WHERE table_name LIKE 'elig_%' "
                       "AND NOT temporary AND database_name = current_database()").fetchone()[0] == ["elig_screened"]
    sqls = [dict(r) for r in out]
    for r in sqls:
        r.pop("status", None) if r.get("status") != "error" else None
    diffs = compare_subset(pys, sqls)
    assert not diffs, "\n".join(map(str, diffs[:20]))
    return out


def test_loaded_and_unsorted_observations_in_a_database(compiled, sm3321, data):
    path, pys = data
    con = screen.connect(threads=2, memory_limit="1GB")
    loader.load_jsonl(con, str(path))
    assert loader.loaded_observations(con)
    assert con.execute("SELECT count(*) FROM observations WHERE no_code").fetchone()[0] > 0
    base = _screen(con, compiled, sm3321, pys)
    con.execute("ALTER TABLE observations RENAME TO loaded_obs")
    # a user's own view over unsorted rows without the added columns
    con.execute(f"CREATE TABLE user_obs AS SELECT * EXCLUDE ({ADDED}) FROM loaded_obs ORDER BY hash(seq, idx)")
    con.execute("CREATE VIEW observations AS SELECT * FROM user_obs")
    assert not loader.loaded_observations(con)
    assert _screen(con, compiled, sm3321, pys) == base
    # the loaded rows with their columns, copied unsorted (the copy has no mark)
    con.execute("DROP VIEW observations")
    con.execute("CREATE TABLE observations AS SELECT * FROM loaded_obs ORDER BY hash(idx, seq)")
    assert not loader.loaded_observations(con)
    assert _screen(con, compiled, sm3321, pys) == base
    # the loaded table marked again, then changed: a row more, or hidden by a temporary view
    con.execute("DROP TABLE observations")
    con.execute("ALTER TABLE loaded_obs RENAME TO observations")
    con.execute(f"COMMENT ON TABLE observations IS '{loader.obs_mark(con.execute('SELECT count(*) FROM observations').fetchone()[0])}'")
    assert loader.loaded_observations(con)
    con.execute("CREATE TEMP VIEW observations AS SELECT * FROM user_obs")
    assert not loader.loaded_observations(con)
    assert _screen(con, compiled, sm3321, pys) == base
    con.execute("DROP VIEW temp.observations")
    assert loader.loaded_observations(con)
    con.execute("INSERT INTO observations SELECT * FROM observations LIMIT 1")
    assert not loader.loaded_observations(con)
    con.close()


@pytest.mark.slow
def test_loaded_and_hand_written_parquet_and_a_loaded_database_file(compiled, sm3321, data, tmp_path):
    path, pys = data
    con = screen.connect(str(tmp_path / "loaded.duckdb"), threads=2)
    loader.load_jsonl(con, str(path))
    loader.write_parquet(con, str(tmp_path / "pq"), in_order=True)
    base = _screen(con, compiled, sm3321, pys)
    # Parquet written by hand: the same rows unsorted, without the file's mark
    hand = tmp_path / "hand"
    loader.write_parquet(con, str(hand))
    con.execute(f"COPY (SELECT * FROM observations ORDER BY hash(seq, idx)) TO '{hand / 'observations.parquet'}' (FORMAT parquet)")
    con.close()
    for directory, marked in ((tmp_path / "pq", True), (hand, False)):
        c = screen.connect(threads=2)
        loader.attach_parquet(c, str(directory))
        assert loader.loaded_observations(c) == marked
        assert _screen(c, compiled, sm3321, pys) == base
        c.close()
    # the DuckDB file `elig load` writes, attached as `elig screen` does (read only)
    c = screen.connect(str(tmp_path / "work.duckdb"), threads=2)
    open_data(c, str(tmp_path / "loaded.duckdb"), str(tmp_path))
    assert loader.loaded_observations(c)
    assert _screen(c, compiled, sm3321, pys) == base
    c.close()
