"""The result phase of the DuckDB screening (compiler/sql/screen.py, script.result_text): the
result-format-1 JSON text is built by concatenation when it is read, and must be byte for byte
what DuckDB's to_json of the nested result gives (the one-query form of the script, `elig sql`),
and that text's JSON the Python evaluator's; the Parquet output does not build it."""

import json
import re
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))

import cohort  # noqa: E402

duckdb = pytest.importorskip("duckdb")

from compiler.sql import loader, screen  # noqa: E402
from compiler.sql.cli_screen import summary_text  # noqa: E402
from compiler.sql.script import OUTCOME_CODES, OUTCOME_TYPE, json_text, status_of_list, status_of_words  # noqa: E402
from test_sql import BAD_LINES, FAST, _fuzz_texts, compare_subset, only_criteria  # noqa: E402

# ids, codes and texts with what JSON must escape: quotes, backslashes (one before "u00..."),
# control characters, DEL, non-ASCII letters, U+2028, astral characters
ODD = ["é\x01\u2028\"\\ü😀", "\\u001f", "tab\there\nnl\x7f", "中文-\x1f", "'; DROP TABLE x; --"]


def _odd_texts() -> list:
    base = cohort.generate(6, seed=5)
    out = []
    for i, (rec, odd) in enumerate(zip([r for r in base if isinstance(r, dict)], ODD)):
        rec = dict(rec, id=f"{odd}-{i}")
        # an observation with an odd code and unit, a condition with an odd code
        rec["observations"] = list(rec.get("observations", [])) + [
            {"code": odd, "value": 1, "unit": odd, "date": "2026-01-10"}]
        rec["conditions"] = list(rec.get("conditions", [])) + [{"code": odd, "onset": "2025-01-01"}]
        out.append(json.dumps(rec, ensure_ascii=bool(i % 2)))
    # error rows whose id or error text carries them
    out += [json.dumps({"format": 2, "id": o}) for o in ODD]
    out += ['{"format": 1, "id": "\\u0000x", "observations": 5}', "{\"id\": \"\x01", "\x7f\u00e9 not json"]
    return out


def duckdb_dumps(obj) -> str:
    """Python's compact JSON with DuckDB's upper-case \\u00XX escapes (json_text's rule)."""
    return re.sub(r"\\(\\|u00[0-9a-f]{2})", lambda m: m.group(0) if m.group(1) == "\\" else "\\u" + m.group(1)[1:].upper(),
                  json.dumps(obj, ensure_ascii=False, separators=(",", ":")))


def test_json_text_escapes_every_character_as_duckdb_to_json():
    con = duckdb.connect()
    chars = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    texts = ["".join(chars[i:i + 2000]) for i in range(0, len(chars), 2000)] + ODD + ["", "\\", "\\\\u00ab"]
    got = [r[0] for r in con.execute("SELECT to_json(s) FROM (SELECT unnest(?) AS s)", [texts]).fetchall()]
    assert [json_text(t) for t in texts] == got
    assert json_text("\x1f") == '"\\u001F"' and json.loads(json_text("\\u00ab")) == "\\u00ab"


def _one_query_results(con, script) -> list:
    """The one-query form of the script (what `elig sql` prints) over the same tables: its result
    column is to_json of the nested result-format-1 struct (the former result path)."""
    for stmt in script.input_view.split(";\n\n"):
        con.execute(stmt)
    con.execute("CREATE OR REPLACE TEMP VIEW elig_results AS\n" + script.query)
    return con.execute("SELECT seq, result FROM elig_results ORDER BY seq").fetchall()


def _screen(res, module, texts, tmp_path, only=None, **kw):
    path = tmp_path / "in.jsonl"
    path.write_text("".join(t + "\n" for t in texts), encoding="utf-8")
    con = screen.connect(str(tmp_path / "work.duckdb"), threads=2, memory_limit="1GB")
    loader.load_jsonl(con, str(path))
    script = screen.prepare_script(res.program, res.lowered, only=only)
    screen.run_script(con, res.program, module, script, **kw)
    return con, script


def test_result_text_is_to_json_of_the_nested_result_and_pythons(compiled, sm3321, tmp_path):
    """Cohort records (some corrupted), fuzzed unusable items, bad lines and error rows, odd
    characters in ids, codes, units and error texts; several result ranges on two cursors."""
    texts = list(cohort._lines(300, 3321, 0.05)) + _fuzz_texts()[:150] + list(BAD_LINES) + _odd_texts()
    con, script = _screen(compiled, sm3321, texts, tmp_path, only=set(FAST), result_chunk=97)
    new = con.execute("SELECT seq, result FROM elig_result_json ORDER BY seq").fetchall()
    assert [r for _, r in new] == list(screen.results(con, batch=100))
    old = _one_query_results(con, script)
    con.close()
    assert len(new) == len(old) == len(texts)
    assert [s for s, _ in new] == [s for s, _ in old]
    differ = [(a, b) for (_, a), (_, b) in zip(new, old) if a != b]
    assert not differ, differ[:3]
    # the same text as json.dumps (compact, DuckDB's escapes) of the result the former path gave
    assert all(a == duckdb_dumps(json.loads(b)) for (_, a), (_, b) in zip(new, old))
    assert any(not r.isascii() for _, r in new) and any("\\u0001" in r for _, r in new)
    # and the Python evaluator's outcomes, missing codes, ids and errors
    pys = only_criteria([sm3321.evaluate_json(t) for t in texts], FAST)
    sqls = [json.loads(r) for _, r in new]
    for r in pys + sqls:
        r.pop("status", None) if r.get("status") != "error" else None
    assert not compare_subset(pys, sqls)
    # (the loader says "not JSON" without the Python parser's position: tests/test_sql.py)
    def err(r):
        e = r.get("error")
        return "not JSON" if e and e.startswith("not JSON") else e
    assert [(p.get("patient_id"), err(p)) for p in pys] == [(q.get("patient_id"), err(q)) for q in sqls]
    assert sum(1 for q in sqls if q.get("error")) >= len(BAD_LINES)


@pytest.mark.slow
def test_cohort_status_text_equals_to_json(tmp_path):
    """A trial with cohorts (tests/lang_trial): the per-cohort statuses in the built text (slow:
    the one-query form plans for seconds; tests/test_sql_lang.py compares the cohorts with the
    Python evaluator's in the fast suite)."""
    import types

    from compiler.pipeline import compile_rules
    from tools.datacases import load_cases

    res = compile_rules(ROOT / "tests" / "lang_trial")
    assert res.ok and res.program.cohorts
    mod = types.ModuleType("lang_results")
    exec(compile(res.python, "<lang>", "exec"), mod.__dict__)
    texts = [json.dumps(rec) for _, _, rec in load_cases(ROOT / "tests" / "lang_trial" / "cases")] + _odd_texts()
    con, script = _screen(res, mod, texts, tmp_path)
    new = con.execute("SELECT seq, result FROM elig_result_json ORDER BY seq").fetchall()
    old = _one_query_results(con, script)
    con.close()
    assert new == old and len(new) == len(texts)
    assert sum('"cohorts":[' in r for _, r in new) > 10
    for text, (_, r) in zip(texts, new):
        py = mod.evaluate_json(text)
        assert json.loads(r).get("cohorts") == py.get("cohorts")


def test_parquet_and_summary_do_not_build_the_result_text(compiled, sm3321, tmp_path):
    """elig_screened holds the outcome columns only: writing Parquet and the summary read no
    JSON text; the summary's counts and funnel are the Python results'."""
    texts = list(cohort._lines(40, 1, 0.05)) + list(BAD_LINES)
    con, script = _screen(compiled, sm3321, texts, tmp_path, only=set(FAST[:3]))
    cols = [r[0] for r in con.execute("DESCRIBE elig_screened").fetchall()]
    assert "result" not in cols and cols[:4] == ["seq", "patient_id", "error", "status"]
    path = screen.write_results_parquet(con, script, str(tmp_path / "out"))
    got = con.execute(f"SELECT seq, status FROM read_parquet('{path}')").fetchall()
    want = con.execute("SELECT seq, json_extract_string(result, '$.status') FROM elig_result_json ORDER BY seq").fetchall()
    summary = summary_text(con, script).splitlines()
    con.close()
    assert got == want and len(got) == len(texts)
    # --summary (one query): the counts, "fails only this" and the funnel of the Python results
    pys = [r for r in only_criteria([sm3321.evaluate_json(t) for t in texts], FAST[:3]) if r["status"] != "error"]
    outs = [{c["id"]: c["outcome"] for c in r["criteria"]} for r in pys]
    ids = [cid for cid, _, _ in script.criteria]
    assert set(ids) == set(FAST[:3]) and any(o[c] == "fail" for o in outs for c in ids)
    for cid, ref, _ in script.criteria:
        row = next(line for line in summary if line.split()[:2] == [ref, cid])
        counts = [sum(o[cid] == w for o in outs) for w in ("pass", "fail", "unknown", "review")]
        only = sum(o[cid] == "fail" and sum(o[c] == "fail" for c in ids) == 1 for o in outs)
        assert [int(x.replace(",", "")) for x in row.split()[2:]] == counts + [only]
    funnel = summary[summary.index("funnel (all readable records, then still not failing after each criterion):") + 1:]
    assert funnel[0].split() == ["all", str(len(pys))]
    for i, (cid, ref, _) in enumerate(script.criteria):
        still = sum(all(o[c] != "fail" for c in ids[:i + 1]) for o in outs)
        assert funnel[1 + i].split() == [ref, cid, f"{still:,}"]


def test_result_text_of_every_outcome_value(compiled, sm3321, tmp_path):
    """The text of each criterion is one constant per outcome word but unknown (its missing codes
    are data): every word, NULL (a criterion table without the patient's row, the join by seq)
    and an unknown whose missing codes are NULL give the compact JSON of the nested result."""
    texts = list(cohort._lines(30, 7, 0.05)) + list(BAD_LINES)
    con, script = _screen(compiled, sm3321, texts, tmp_path, only=set(FAST[:4]))
    ids = [cid for cid, _, _ in script.criteria]
    a, b = ids[0], ids[1]
    con.execute(f"""UPDATE elig_screened SET "out__{a}" = CASE seq % 5 WHEN 0 THEN NULL WHEN 1 THEN 'pass'
                    WHEN 2 THEN 'fail' WHEN 3 THEN 'review' ELSE 'unknown' END,
                    "out__{b}" = 'unknown', "miss__{b}" = CASE WHEN seq % 2 = 0 THEN NULL ELSE ['x"\\', 'é'] END""")
    cols = ", ".join(f'"out__{c}", "miss__{c}"' for c in ids)
    rows = con.execute(f"SELECT r.result, s.patient_id, s.error, s.status, {cols} FROM elig_result_json r "
                       "POSITIONAL JOIN elig_screened s").fetchall()
    con.close()
    assert len(rows) == len(texts)
    words = set()
    for text, pid, error, status, *oc in rows:
        got = json.loads(text)
        if error is not None:
            assert text == duckdb_dumps({"format": 1, "patient_id": pid, "rules": got["rules"], "status": "error",
                                         "error": error})
            continue
        crits = []
        for k, (cid, ref, kind) in enumerate(script.criteria):
            out, miss = oc[2 * k], oc[2 * k + 1]
            words.add(out)
            crits.append({"id": cid, "ref": ref, "kind": kind, "outcome": out, "reason": out,
                          "missing": miss if out == "unknown" else []})
        assert text == duckdb_dumps({"format": 1, "patient_id": pid, "trial": got["trial"], "rules": got["rules"],
                                     "status": status, "criteria": crits, "warnings": []})
    assert {None, "pass", "fail", "review", "unknown"} <= words


def _fake_script(steps):
    from compiler.sql.script import Script

    crit = tuple((cid, "R" + cid, "inclusion") for cid, _ in steps)
    cols = "".join(f', "out__{c}", "miss__{c}"' for c, _ in steps)
    positional = ("SELECT elig_base.seq, patient_id, error, CASE WHEN error IS NOT NULL THEN 'error' ELSE 'eligible' END "
                  f"AS status{cols}\nFROM elig_base" + "".join(f" POSITIONAL JOIN elig_k{i}" for i in range(len(steps))))
    joined = "".join(f" LEFT JOIN (SELECT * FROM elig_k{i} WHERE seq >= {{lo}} AND seq < {{hi}}) USING (seq)"
                     for i in range(len(steps)))
    final = (f"SELECT seq, patient_id, error, CASE WHEN error IS NOT NULL THEN 'error' ELSE 'eligible' END AS status{cols} "
             f"FROM (SELECT seq, patient_id, error FROM pats WHERE seq >= {{lo}} AND seq < {{hi}}){joined}")
    return Script("t", "", "", "", crit, tuple(steps), final, positional=positional, base="pats",
                  result_sql="SELECT seq, patient_id AS result FROM elig_screened")


def test_criterion_tables_out_of_order_are_sorted_and_a_missing_row_falls_back_to_the_join(tmp_path):
    """_steps rewrites a criterion table whose rows are not in elig_base's order sorted by seq;
    a table without some patient's row (or with two) cannot be joined by position: the result
    query is then the join by seq, per range of patients; elig_screened is stored in seq order
    either way (its readers do not sort)."""
    con = screen.connect(str(tmp_path / "w.duckdb"), threads=2)
    con.execute("CREATE TABLE pats AS SELECT (i * 7919) % 1000 AS seq, 'p' || i AS patient_id, "
                "CASE WHEN i % 97 = 0 THEN 'bad' END AS error FROM range(1000) t(i)")
    con.execute(f"CREATE TABLE {screen.BASE} AS SELECT seq, patient_id, error FROM pats ORDER BY seq")
    step = "SELECT seq, CASE WHEN seq % 3 = 0 THEN 'fail' ELSE 'pass' END AS out__{c}, [] AS miss__{c} FROM pats{w} ORDER BY {o}"
    shuffled = _fake_script([("a", step.format(c="a", w="", o="seq DESC")), ("b", step.format(c="b", w="", o="hash(seq)"))])
    names = ["elig_k0", "elig_k1"]
    assert screen._steps(con, shuffled, names, 2, positional=True) == [True, True]
    screen._results(con, shuffled, 0, 999, 300, 2, positional=True)
    rows = con.execute("SELECT seq, patient_id, out__a, out__b FROM elig_screened").fetchall()
    assert [r[0] for r in rows] == list(range(1000))
    want = dict(con.execute("SELECT seq, patient_id FROM pats").fetchall())
    assert all(p == want[s] for s, p, _, _ in rows)
    assert all(x == y == ("fail" if s % 3 == 0 else "pass") for s, _, x, y in rows)
    # a step that gives no row to some patients (and two to one): not joinable by position
    holes = _fake_script([("a", step.format(c="a", w=" WHERE seq % 10 <> 3", o="seq")),
                          ("b", "SELECT * FROM (" + step.format(c="b", w="", o="seq") + ") UNION ALL SELECT 5, 'fail', []")])
    assert screen._steps(con, holes, names, 1, positional=True) == [False, False]
    screen._results(con, holes, 0, 999, 300, 2, positional=False)
    rows = con.execute("SELECT seq, out__a, out__b FROM elig_screened").fetchall()
    assert [r[0] for r in rows] == sorted(r[0] for r in rows) and len(rows) == 1001
    assert all((a is None) == (s % 10 == 3) for s, a, _ in rows)
    assert sorted(b for s, _, b in rows if s == 5) == ["fail", "pass"]
    con.close()


def test_the_join_by_seq_gives_the_rows_of_the_join_by_position(compiled, sm3321, tmp_path):
    """The result query's two forms (screen._results): by position (every criterion table in
    elig_base's order, the default) and by seq per range of patients (the fallback, forced here
    by a script without the positional form): the same elig_screened rows in the same order."""
    import dataclasses

    texts = list(cohort._lines(80, 11, 0.05)) + list(BAD_LINES)
    con, script = _screen(compiled, sm3321, texts, tmp_path, only=set(FAST[:8]))
    by_position = con.execute("SELECT * FROM elig_screened").fetchall()
    lines = list(screen.results(con))
    screen.run_script(con, compiled.program, sm3321, dataclasses.replace(script, positional=""), result_chunk=17)
    assert con.execute("SELECT * FROM elig_screened").fetchall() == by_position
    assert list(screen.results(con)) == lines and len(lines) == len(texts)
    assert [s for s, *_ in by_position] == sorted(s for s, *_ in by_position)
    con.close()


def test_a_seq_given_twice_is_left_to_the_join_by_seq(compiled, sm3321, tmp_path):
    """docs/sql.md asks for distinct seq; patients given one seq twice get what the join by seq
    gives them (the positional form would pair rows differently), as before it existed."""
    import dataclasses

    texts = list(cohort._lines(12, 5, 0.0))
    path = tmp_path / "in.jsonl"
    path.write_text("".join(t + "\n" for t in texts), encoding="utf-8")
    got = []
    for form in ("positional", "join"):
        con = screen.connect(threads=2)
        loader.load_jsonl(con, str(path))
        con.execute("CREATE TABLE p2 AS SELECT * REPLACE (CASE WHEN seq = 3 THEN 4 ELSE seq END AS seq) FROM patients")
        con.execute("CREATE OR REPLACE TEMP VIEW patients AS SELECT * FROM p2")
        script = screen.prepare_script(compiled.program, compiled.lowered, only=set(FAST[:3]))
        if form == "join":
            script = dataclasses.replace(script, positional="")
        screen.run_script(con, compiled.program, sm3321, script)
        got.append(sorted(con.execute("SELECT * FROM elig_screened").fetchall(), key=repr))
        con.close()
    assert got[0] == got[1] and sum(r[0] == 4 for r in got[0]) >= 2


def test_status_of_words_is_the_list_forms_status():
    """The results' status by comparisons (status_of_words) is the list form's (status_of_list,
    Spark's and the one-query form's) for every combination of three outcomes, NULL included,
    as words and as the ENUM of the decoded criterion tables."""
    import itertools

    import duckdb

    con = duckdb.connect()
    vals = list(OUTCOME_CODES) + [None]
    rows = list(itertools.product(vals, repeat=3))
    con.execute("CREATE TABLE w (a VARCHAR, b VARCHAR, c VARCHAR)")
    con.executemany("INSERT INTO w VALUES (?, ?, ?)", rows)
    con.execute(f"CREATE TABLE e AS SELECT CAST(a AS {OUTCOME_TYPE}) AS a, CAST(b AS {OUTCOME_TYPE}) AS b, "
                f"CAST(c AS {OUTCOME_TYPE}) AS c FROM w")
    for t in ("w", "e"):
        got = con.execute(f"SELECT a, b, c, {status_of_words(['a', 'b', 'c'])}, {status_of_list('[a, b, c]')} "
                          f"FROM {t}").fetchall()
        assert len(got) == len(rows) == 125
        assert all(r[3] == r[4] for r in got), [r for r in got if r[3] != r[4]][:3]
        assert {r[3] for r in got} == {"ineligible", "eligible", "indeterminate"}
    con.close()


def test_parquet_outcomes_are_utf8_words_of_the_enum(compiled, sm3321, tmp_path):
    """elig_screened's outcome columns are the ENUM of the words (OUTCOME_TYPE); the Parquet
    file has them as the UTF8 column the VARCHAR words give (same schema, same values read
    back): the file written from a copy of the table with VARCHAR outcomes is the same."""
    texts = list(cohort._lines(60, 5, 0.05)) + list(BAD_LINES)
    con, script = _screen(compiled, sm3321, texts, tmp_path, only=set(FAST[:4]))
    types = dict((r[0], r[1]) for r in con.execute("DESCRIBE elig_screened").fetchall())
    outs = [f"out__{c}" for c, _, _ in script.criteria]
    assert all(types[o].startswith("ENUM(") for o in outs) and types["status"] == "VARCHAR"
    path = screen.write_results_parquet(con, script, str(tmp_path / "enum"))
    casts = ", ".join(f'CAST("{o}" AS VARCHAR) AS "{o}"' for o in outs)
    con.execute(f"CREATE OR REPLACE TABLE elig_screened AS SELECT * REPLACE ({casts}) FROM elig_screened")
    assert all(r[1] == "VARCHAR" for r in con.execute("DESCRIBE elig_screened").fetchall() if r[0] in outs)
    ref = screen.write_results_parquet(con, script, str(tmp_path / "words"))
    schema = "SELECT * EXCLUDE (file_name) FROM parquet_schema('{}')"
    assert con.execute(schema.format(path)).fetchall() == con.execute(schema.format(ref)).fetchall()
    a = con.execute(f"SELECT * FROM read_parquet('{path}')").fetchall()
    b = con.execute(f"SELECT * FROM read_parquet('{ref}')").fetchall()
    con.close()
    assert a == b and len(a) == len(texts)
    assert {w for r in a for w in r[4::2]} >= {"pass", "fail"}
