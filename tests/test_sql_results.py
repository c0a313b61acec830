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
from compiler.sql.script import json_text  # noqa: E402
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
