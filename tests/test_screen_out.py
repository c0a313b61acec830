"""What `elig screen` does around the criteria (compiler/sql/screen.py): the results as a view of
the positional join for the JSON Lines (checked in order as they are read), the steps that sort
their own rows when the patients span several row groups, and the lines written by writev."""

import io
import os
import sys
import threading

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))

import cohort  # noqa: E402

duckdb = pytest.importorskip("duckdb")

from compiler.sql import loader, screen  # noqa: E402
from test_sql import BAD_LINES, FAST  # noqa: E402


def _loaded(tmp_path, texts, threads=2):
    path = tmp_path / "in.jsonl"
    path.write_text("".join(t + "\n" for t in texts), encoding="utf-8")
    con = screen.connect(threads=threads, memory_limit="1GB")
    loader.load_jsonl(con, str(path))
    return con


def _lines(con) -> bytes:
    return b"".join(b"".join(lines) for _, lines in screen.result_lines(con, batch=7))


def _work_tables(con) -> list:
    return sorted(r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE NOT temporary AND database_name = current_database() "
        "UNION ALL SELECT view_name FROM duckdb_views() WHERE NOT temporary AND NOT internal "
        "AND database_name = current_database()").fetchall())


def test_the_view_of_the_results_gives_the_tables_lines(compiled, sm3321, tmp_path):
    """run_script(..., view=True): elig_screened is a view of the positional join; its JSON
    lines are the table's byte for byte; drop_work leaves nothing behind."""
    texts = list(cohort._lines(150, 21, 0.05)) + list(BAD_LINES)
    con = _loaded(tmp_path, texts)
    inputs = _work_tables(con)
    script = screen.prepare_script(compiled.program, compiled.lowered, only=set(FAST))
    screen.run_script(con, compiled.program, sm3321, script)
    assert not screen._screened_view(con)
    table = _lines(con)
    rows = con.execute("SELECT * FROM elig_screened").fetchall()
    screen.run_script(con, compiled.program, sm3321, script, view=True)
    assert screen._screened_view(con)
    assert _lines(con) == table and table.count(b"\n") == len(texts)
    assert con.execute("SELECT * FROM elig_screened").fetchall() == rows
    assert list(screen.results(con)) == [x.decode() for x in table.splitlines()]
    assert "elig_base" in _work_tables(con)
    screen.drop_work(con)
    assert _work_tables(con) == inputs
    # and the table again where the view was (a table and a view do not replace each other)
    screen.run_script(con, compiled.program, sm3321, script)
    assert not screen._screened_view(con) and _lines(con) == table
    con.close()


def test_rows_of_the_view_out_of_order_are_an_error_not_a_wrong_file(compiled, sm3321, tmp_path):
    """The view's rows are checked against elig_base's as they are read: a view read in another
    order stops the lines with OutOfOrder (never seen from the positional scan itself)."""
    con = _loaded(tmp_path, list(cohort._lines(40, 3, 0.0)))
    script = screen.prepare_script(compiled.program, compiled.lowered, only=set(FAST[:4]))
    screen.run_script(con, compiled.program, sm3321, script, view=True)
    assert _lines(con).count(b"\n") == 40
    con.execute("CREATE OR REPLACE VIEW elig_screened AS SELECT * FROM (" + script.positional + ") ORDER BY seq DESC")
    with pytest.raises(screen.OutOfOrder, match="out of input order at seq 39"):
        _lines(con)
    con.close()


@pytest.mark.slow  # three screens of all 44 steps: about 10 s
def test_steps_that_sort_their_rows_give_the_same_results(compiled, sm3321, tmp_path):
    """With more patients than ``sort_above`` each step writes its rows sorted by seq (as at
    1,000,000 patients, where every step's rows come out of order): the same results; on one
    thread no step sorts (its rows keep their order)."""
    texts = list(cohort._lines(120, 8, 0.05)) + list(BAD_LINES)
    con = _loaded(tmp_path, texts)
    script = screen.prepare_script(compiled.program, compiled.lowered)  # all 44 steps
    sorted_steps = []
    real = screen._steps

    def steps(*a, **kw):
        sorted_steps.append(kw.get("sort"))
        return real(*a, **kw)

    screen._steps = steps
    try:
        screen.run_script(con, compiled.program, sm3321, script)
        want = con.execute("SELECT * FROM elig_screened").fetchall()
        screen.run_script(con, compiled.program, sm3321, script, sort_above=10)
        assert con.execute("SELECT * FROM elig_screened").fetchall() == want
        con.execute("SET threads = 1")
        screen.run_script(con, compiled.program, sm3321, script, sort_above=10)
        assert con.execute("SELECT * FROM elig_screened").fetchall() == want
    finally:
        screen._steps = real
    assert sorted_steps == [False, True, False]
    con.close()


def test_lines_are_written_whole_to_a_pipe_a_file_and_a_stream(tmp_path):
    """write_lines: by writev to a file descriptor (a pipe read slowly, whose buffer fills, and a
    file after bytes still in the stream's buffer), by one write to a stream without one."""
    lines = [(b"%d " % i) * (i % 50) + b"\n" for i in range(3000)]
    want = b"".join(lines)
    r, w = os.pipe()
    got = []

    def read():
        with os.fdopen(r, "rb") as f:
            while True:
                b = f.read(4096)
                if not b:
                    return
                got.append(b)

    t = threading.Thread(target=read)
    t.start()
    with os.fdopen(w, "wb") as out:
        for k in range(0, len(lines), 1000):
            screen.write_lines(out, lines[k:k + 1000])
    t.join()
    assert b"".join(got) == want
    with open(tmp_path / "out", "wb") as out:
        out.write(b"head\n")  # buffered, not yet written: flushed before the writev
        screen.write_lines(out, lines[:1000])
        screen.write_lines(out, lines[1000:])
    assert (tmp_path / "out").read_bytes() == b"head\n" + want
    stream = io.BytesIO()
    screen.write_lines(stream, lines[:10])
    screen.write_lines(stream, lines[10:])
    assert stream.getvalue() == want
