"""The fast loader (compiler/sql/loader.py, issue 12) builds the same screening tables as the loader
before it (tests/loader_reference.py): same columns and types, same rows, same values, same error
messages, on the benchmark cohort with corrupted lines, the SQL differential's bad lines and
fuzzed records, the stream framing inputs of tests/test_io_adversarial.py and edge cases of each
column (dates, numbers, escapes, items that are not objects, treatments' `end`), whole and in
small chunks."""

import json
import re
import sys
from pathlib import Path

import pytest

from conftest import ROOT

duckdb = pytest.importorskip("duckdb")
sys.path.insert(0, str(ROOT / "benchmarks"))

import cohort  # noqa: E402
import loader_reference as reference  # noqa: E402
import test_io_adversarial as adversarial  # noqa: E402
from compiler.sql import loader  # noqa: E402
from test_sql import BAD_LINES, _fuzz_texts  # noqa: E402

ORDERED = ("patients", "observations", "conditions", "procedures", "treatments")
# the columns the loader adds to the observations (compiler/sql/script.py LOADED_OBS): not in the
# reference loader's tables, checked against their Python meaning (_check_loaded_obs)
ADDED = ("no_code", "day", "value_int", "uln_int", "lln_int", "lloq_int")
NOT_ADDED = f"* EXCLUDE ({', '.join(ADDED)})"


def _exact(raw):
    """The exact integer of a JSON number text (runtime: a JSON integer of up to 38 digits, as
    elig_int reads it), when it fits a BIGINT; else None."""
    if raw is None or not re.fullmatch(r"-?[0-9]{1,38}", raw):
        return None
    v = int(raw)
    return v if -(2 ** 63) <= v < 2 ** 63 else None


def _check_loaded_obs(con, chunk: int, table: str = "observations") -> None:
    """The added columns of each reading against their meaning; the rows in the loaded order
    (per chunk of records: readings with a code first, by code, seq, idx; those without a code
    last); the table marked with its row count."""
    import datetime

    rows = con.execute(f"SELECT seq, idx, code, date, value_raw, uln_raw, lln_raw, lloq_raw, {', '.join(ADDED)} "
                       f"FROM {table}").fetchall()
    for seq, idx, code, date, *raws_and_added in rows:
        raws, added = raws_and_added[:4], raws_and_added[4:]
        want = [code is None or code.strip() == "",
                None if date is None else (date - datetime.date(1970, 1, 1)).days] + [_exact(r) for r in raws]
        assert list(added) == want, (seq, idx, code, raws)
    keys = [(seq // chunk, nc, code is None, code or "", seq, idx) for seq, idx, code, _, _, _, _, _, nc, *_ in rows]
    assert keys == sorted(keys)
    if table == "observations":
        assert loader.loaded_observations(con)


def _obs(**kw) -> dict:
    return dict({"code": "hemoglobin", "value": 9.5, "unit": "g/dL", "date": "2026-01-05"}, **kw)


def _rec(pid: str, **kw) -> str:
    r = {"format": 1, "id": pid, "sex": "female", "birth_date": "1960-05-10",
         "anchors": {"screening": "2026-01-10"}, "facts": {"informed_consent": True}}
    r.update(kw)
    return json.dumps(r)


_DATES = ["2026-01-05", "2024-02-29", "2023-02-29", "2026-13-05", "2026-1-5", "0000-01-01", "0001-01-01",
          "9999-12-31", " 2026-01-05", "2026-01-05 ", "2026/01/05", "20260105", "+2026-01-05", "-2026-01-05",
          "２０２６-01-05", "2026-01-05T00:00", "", "x", "2026-02-30", "1900-02-29", "2000-02-29", "2026-04-31"]
_NUMBERS = ["1", "-0", "0.0", "1E5", "1e-7", "1.5e300", "1e400", "-1e400", "NaN", "Infinity", "-Infinity",
            "9" * 30, "-" + "9" * 400, "9" * 4300, "9" * 4301, "123456789012345678", "0.1", "true", "null",
            '"9.5"', '"12,5"', "[1]", "{}",
            # the BIGINT edges of the loaded exact integers (script.loaded_bigint), and beyond
            "9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
            "12345678901234567890", "18446744073709551616", "-12345678901234567890"]


def _edge_lines() -> list[str]:
    out = []
    for i, d in enumerate(_DATES):
        out.append(_rec(f"D{i}", birth_date=d, anchors={"screening": d, "x": None},
                        observations=[_obs(date=d)], conditions=[{"code": "c", "onset": d, "end": d}],
                        procedures=[{"code": "p", "date": d}], treatments=[{"code": "t", "start": d, "end": d}]))
    for i, n in enumerate(_NUMBERS):
        out.append('{"format": 1, "id": "N%d", "observations": [{"code": "x", "value": %s, "uln": %s, "lln": %s, '
                   '"lloq": %s, "date": "2026-01-05"}], "facts": {"f": %s}, "anchors": {"a": %s}}' % ((i,) + (n,) * 6))
    out += [
        _rec("items", observations=[1, "x", None, [], {}, {"code": None}, {"code": 5}, {"code": ""}, _obs(),
                                    {"code": "hemoglobin", "attributes": {"fasting": True}}]),
        _rec("items2", conditions=[None, 3, {"status": "active"}, {"code": "c", "status": "resolved"},
                                   {"code": "c", "status": 1, "attributes": []}],
             procedures=["p", {}, {"code": "p", "date": None}]),
        _rec("treat", treatments=[{"code": "a", "end": None}, {"code": "b"}, {"code": "c", "end": "2026-01-01"},
                                  {"end": None}, {}, 7, None, {"code": "d", "classes": ["x", "y"], "half_life": 3},
                                  {"code": "e", "classes": ["x", 1]}, {"code": "f", "classes": "x"},
                                  {"code": "g", "classes": [], "daily_dose": {"value": 10, "unit": "mg"},
                                   "route": "oral", "purpose": "pain", "attributes": {"a": 1}}]),
        _rec("treat-all-ended", treatments=[{"code": "a", "end": "2026-01-01"}]),
        _rec("esc\\u00e9\"q", sex="male", observations=[_obs(code="hemo\\u0067lobin", unit="g\\/dL",
                                                            date="\\u0032026-01-05")]),
        _rec("unicodé ✓", sex="Male", observations=[_obs(code="hémoglobine", unit="µmol/L")]),
        _rec("sex", sex=None), _rec("sex2", sex=1), _rec("sex3", sex="x" * 100),
        _rec("nulls", observations=None), _rec("obs-obj", observations={}), _rec("obs-str", observations="x"),
        _rec("cond-num", conditions=1), _rec("proc-bool", procedures=True), _rec("treat-null", treatments=None),
        _rec("anch-list", anchors=[]), _rec("facts-null", facts=None), _rec("facts-str", facts="x"),
        _rec("empty-lists", observations=[], conditions=[], procedures=[], treatments=[]),
        _rec("bad-facts", facts={"a": 1, "b": "yes", "c": None, "d": False, "e": "x" * 60}),
        _rec("bad-anchors", anchors={"a": 1, "b": "2026-02-30", "c": None, "d": ["2026-01-01"]}),
        '{"format": 1, "id": "dup", "id": "dup2", "observations": [], "observations": 5}',
        '{"format": 1, "id": "comma", "observations": [{"code": "x",}]}',
        '{"format": 1, "id": "comma-in-string", "observations": [{"code": "x,]"}]}',
        '{"format": 1, "id": "comment" /* c */}',
        '{"format": 1, "id": "slashes-in-string", "observations": [{"code": "a//b", "unit": "/*"}]}',
        '{"format": 1, "id": "comma-space", "facts": {"a": true, }}',
        '{"format": 1.0, "id": "fmt-float"}', '{"format": 1e0, "id": "fmt-exp"}', '{"format": true, "id": "fmt-bool"}',
        '{"format": null, "id": "fmt-null"}', '{"format": "1", "id": "fmt-str"}', '{"format": 1, "id": null}',
        '{"format": 1, "id": [1]}', '{"format": 1, "id": {}}', '{"format": 1, "id": "\\t "}',
        "   {\"format\": 1, \"id\": \"leading-space\"}", "[]", "{}", "1", "-", "tru", "nul", '"', "\x00",
    ]
    return out


CORPUS = {
    "edges": _edge_lines(),
    "bad": list(BAD_LINES),
}


def _tables(load, path: Path, **kw) -> dict:
    con = duckdb.connect()
    con.execute("SET threads = 2")
    try:
        n = load(con, str(path), **kw)
    except (duckdb.Error, loader.LoadError):  # a file DuckDB cannot read as text: both refuse it
        return {"error": True}
    out = {"n": n}
    for t in loader.TABLES:
        order = "" if t in ORDERED else " ORDER BY ALL"
        cols = "*"
        if t == "observations":
            order = " ORDER BY seq, idx"
            if load is loader.load_jsonl:
                _check_loaded_obs(con, kw.get("chunk", loader.CHUNK))
                cols = NOT_ADDED
        out[t] = (con.execute(f"DESCRIBE SELECT {cols} FROM {t}").fetchall(),
                  con.execute(f"SELECT {cols} FROM {t}{order}").fetchall())
    con.close()
    return out


def _same(path: Path, want: dict | None = None, **kw):
    """The new loader's tables (with kw) against the reference loader's (or `want`, computed once)."""
    want = want or _tables(reference.load_jsonl, path)
    got = _tables(loader.load_jsonl, path, **kw)
    assert got.keys() == want.keys(), (got.get("error"), want.get("error"))
    for k in want:
        if want[k] == got[k]:
            continue
        if k == "n" or k == "error":
            assert got[k] == want[k], k
        (sw, rw), (sg, rg) = want[k], got[k]
        assert sg == sw, f"{k}: columns differ"
        diffs = [(a, b) for a, b in zip(rw, rg) if a != b][:3]
        assert rg == rw, f"{k}: {len(rg)} rows vs {len(rw)}; first differences (old, new): {diffs}"
    return want


def _write(tmp_path: Path, lines: list[str], name="in.jsonl") -> Path:
    p = tmp_path / name
    p.write_text("".join(t + "\n" for t in lines), encoding="utf-8")
    return p


@pytest.mark.parametrize("part", sorted(CORPUS))
def test_same_tables_as_the_reference_loader(tmp_path, part):
    want = _same(_write(tmp_path, CORPUS[part]))
    assert want["n"] == len(CORPUS[part])


def test_same_tables_on_fuzzed_records_whole_and_in_chunks(tmp_path):
    p = _write(tmp_path, _fuzz_texts())
    want = _same(p)
    _same(p, want, chunk=97)


@pytest.mark.slow  # 2,000 cohort records loaded three ways: about 5 s
def test_same_tables_on_the_cohort_whole_and_in_chunks(tmp_path):
    """2,000 cohort records (2 % corrupted lines): whole, and in chunks of 700 records (the
    tables are then built by inserts, chunk after chunk); then with blank lines among them."""
    lines = list(cohort._lines(2000, 3321, 0.02))
    p = _write(tmp_path, lines)
    want = _same(p)
    assert want["n"] == 2000
    assert sum(1 for r in want["patients"][1] if r[2] is not None) >= 10  # error rows are there
    _same(p, want, chunk=700)
    blanks = lines[:100] + ["", "  \t", "\r"] + lines[100:200] + ["   "]
    want = _same(_write(tmp_path, blanks, "blanks.jsonl"), chunk=37)
    assert want["n"] == 200 and [r[0] for r in want["patients"][1]] == list(range(200))


# inputs the reference loader refused whole and the loader now reads as the evaluator does
READ_NOW = {"huge string value", "invalid utf-8"}


# the framing inputs in the fast suite, one of each way the loader frames a file (lines, an array
# on one line or pretty, a BOM, CR, blank and NUL lines, an unfinished first line, pretty objects,
# deep nesting, bytes DuckDB refuses, nothing at all); the others (a DuckDB load each, about 0.3 s)
# in the slow one
FAST_FRAMING = {"jsonl", "no final newline", "crlf", "lone cr line endings", "bom array", "blank lines",
                "nul bytes", "invalid utf-8", "array pretty", "array with a non-object element",
                "unfinished first line '[' then records", "two pretty objects", "deep nesting", "empty input"}


@pytest.mark.parametrize("name,data,want", [
    pytest.param(*s, id=s[0], marks=() if s[0] in FAST_FRAMING else pytest.mark.slow) for s in adversarial.STREAMS])
def test_same_tables_on_the_framing_inputs(tmp_path, name, data, want):
    p = tmp_path / "in.jsonl"
    p.write_bytes(data)
    if name not in READ_NOW:
        _same(p)
        return
    assert "error" in _tables(reference.load_jsonl, p)
    got = _tables(loader.load_jsonl, p)
    assert [r[1] if r[2] is None else None for r in got["patients"][1]] == want  # the evaluator's


def test_item_tables_in_record_and_item_order(tmp_path):
    con = duckdb.connect()
    loader.load_jsonl(con, str(_write(tmp_path, list(cohort._lines(500, 7, 0.05)) + _edge_lines())), chunk=111)
    for t in ORDERED:
        if t == "observations":  # in the loaded order, per chunk
            _check_loaded_obs(con, 111)
            continue
        key = "seq" if t == "patients" else "seq, idx"
        assert con.execute(f"SELECT count(*) FROM (SELECT {key}, row_number() OVER () AS r, "
                           f"row_number() OVER (ORDER BY {key}) AS s FROM {t}) WHERE r <> s").fetchone()[0] == 0, t
    assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE '\\_%' ESCAPE '\\'").fetchone()[0] == 0


def test_elig_load_parquet_directory_equals_the_reference_tables_in_order(tmp_path):
    """`elig load FILE -o DIR/` (tables built in memory, written without a sort): each Parquet
    file has the reference loader's rows, patients and items in (seq, idx) order; no partial
    file is left."""
    import subprocess

    p = _write(tmp_path, list(cohort._lines(300, 5, 0.05)) + _edge_lines() + list(BAD_LINES))
    out = tmp_path / "pq"
    r = subprocess.run([sys.executable, "-m", "compiler.cli", "load", str(p), "-o", str(out)], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert sorted(f.name for f in out.iterdir()) == sorted(f"{t}.parquet" for t in loader.TABLES)
    ref = duckdb.connect()
    reference.load_jsonl(ref, str(p))
    con = duckdb.connect()
    for t in loader.TABLES:
        f = str(out / f"{t}.parquet")
        if t == "observations":  # in the loaded order, with the added columns, marked
            con.execute(f"CREATE VIEW obs AS SELECT * FROM read_parquet('{f}')")
            _check_loaded_obs(con, loader.CHUNK, "obs")
            got = con.execute(f"SELECT {NOT_ADDED} FROM obs ORDER BY seq, idx").fetchall()
            assert got == ref.execute("SELECT * FROM observations ORDER BY seq, idx").fetchall()
            kv = con.execute(f"SELECT value FROM parquet_kv_metadata('{f}') WHERE key = 'elig_observations'").fetchall()
            assert kv == [(loader.obs_mark(len(got)).encode(),)]
        elif t in ORDERED:
            key = "seq" if t == "patients" else "seq, idx"
            got = con.execute(f"SELECT * FROM read_parquet('{f}')").fetchall()
            assert got == ref.execute(f"SELECT * FROM {t} ORDER BY {key}").fetchall(), t
        else:
            got = con.execute(f"SELECT * FROM read_parquet('{f}') ORDER BY ALL").fetchall()
            assert got == ref.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall(), t
            assert [r[0] for r in con.execute(f"SELECT seq FROM read_parquet('{f}')").fetchall()] == sorted(
                r[0] for r in got), t


def test_lines_that_are_not_utf8_are_error_rows_in_place(tmp_path):
    """A line the reader rejects (not UTF-8) is a `not JSON` error row at its place, among blank
    lines and good records (the reference loader refused the whole file)."""
    p = tmp_path / "in.jsonl"
    p.write_bytes(b'{"format": 1, "id": "A"}\n\n{"id": "\xff\xfe"}\n\xc3\n\xc3\n  \n{"format": 1, "id": "B"}\n'
                  b'{"format": 1, "id": "C\xff"}\n{"format": 1, "id": "D", "observations": [{"code": "x"}]}\n')
    con = duckdb.connect()
    assert loader.load_jsonl(con, str(p), chunk=2) == 7
    assert con.execute("SELECT seq, patient_id, error FROM patients ORDER BY seq").fetchall() == [
        (0, "A", None), (1, None, "not JSON"), (2, None, "not JSON"), (3, None, "not JSON"), (4, "B", None),
        (5, None, "not JSON"), (6, "D", None)]
    assert con.execute("SELECT seq, idx, code FROM observations").fetchall() == [(6, 0, "x")]
    assert [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall()] == sorted(
        loader.TABLES)


@pytest.mark.parametrize("out", ["db.duckdb", "dir"])
def test_a_file_the_reader_refuses_is_a_clear_error_and_leaves_no_output(tmp_path, out):
    import subprocess

    p = tmp_path / "in.jsonl.gz"  # DuckDB reads a .gz file as gzip: this one is not
    p.write_bytes(b'{"format": 1, "id": "A"}\n')
    r = subprocess.run([sys.executable, "-m", "compiler.cli", "load", str(p), "-o", str(tmp_path / out)], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 1
    assert r.stderr.startswith("elig: ") and "cannot read the lines" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert sorted(f.name for f in tmp_path.iterdir()) == ["in.jsonl.gz"]


def test_the_scratch_tables_have_small_row_groups(tmp_path):
    """The loader's scratch database (a file) groups its rows by SCRATCH_ROW_GROUP, so that a chunk
    of records is parsed by all the threads (DuckDB scans a table one row group per thread; an
    in-memory database ignores ROW_GROUP_SIZE: with 122,880 rows a group, a 100,000-record file
    was parsed by one thread)."""
    con = duckdb.connect()
    loader.attach_scratch(con, str(tmp_path))
    n = 3 * loader.SCRATCH_ROW_GROUP + 5
    loader._scratch(con, f"CREATE TABLE _elig_scratch.t AS SELECT range AS i, repeat('x', 300) AS s FROM range({n})")
    assert con.execute("SELECT count(DISTINCT row_group_id) FROM pragma_storage_info('_elig_scratch.t')").fetchone()[0] == 4
    # written uncompressed (read once or twice, then dropped), the connection's setting kept
    assert {r[0] for r in con.execute("SELECT DISTINCT compression FROM pragma_storage_info('_elig_scratch.t') "
                                      "WHERE segment_type = 'VARCHAR'").fetchall()} == {"Uncompressed"}
    assert con.execute("SELECT current_setting('force_compression')").fetchone()[0] == "auto"
    assert loader.CHUNK % loader.SCRATCH_ROW_GROUP == 0 and loader.CHUNK // loader.SCRATCH_ROW_GROUP >= 4


def test_the_scratch_directory_is_removed(tmp_path):
    """load_jsonl makes its scratch database in a directory of its own under scratch_dir and
    removes it, after a load and after a file it cannot read."""
    good = _write(tmp_path, list(cohort._lines(50, 3, 0.1)))
    bad = tmp_path / "in.jsonl.gz"
    bad.write_bytes(b'{"format": 1, "id": "A"}\n')
    work = tmp_path / "work"
    work.mkdir()
    con = duckdb.connect()
    assert loader.load_jsonl(con, str(good), scratch_dir=str(work)) == 50
    assert list(work.iterdir()) == []
    with pytest.raises(loader.LoadError):
        loader.load_jsonl(con, str(bad), scratch_dir=str(work))
    assert list(work.iterdir()) == []
    assert "_elig_scratch" not in [r[0] for r in con.execute("SELECT database_name FROM duckdb_databases()").fetchall()]
