"""`elig screen` of JSON Lines loads only the columns its trial's screening reads
(screen.read_words, loader.load_jsonl's ``words``) and the observations of its codes (and
without a code: ``codes``), sorted by code only (loader.SCREEN_OBS_ORDER). Checked here against the full load (`elig load`'s tables, which
tests/test_loader.py checks against the reference loader): the same rows, the same values in the
columns kept, and the same screening results, byte for byte, on the example trials' cases, the
benchmark cohort with corrupted lines, fuzzed records, bad lines and the loader's edge records."""

import json
import sys
import types

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))

import cohort  # noqa: E402

duckdb = pytest.importorskip("duckdb")

from compiler.pipeline import compile_rules  # noqa: E402
from compiler.sql import loader, screen  # noqa: E402
from test_loader import _edge_lines  # noqa: E402
from test_sql import BAD_LINES, _fuzz_texts  # noqa: E402
from test_sql_lang import SUITES, _cases_dir, _name  # noqa: E402
from tools.datacases import load_cases  # noqa: E402

# item order within each table (observations: the screening's own order is by code only)
_KEY = {"patients": "seq", "anchors": "seq, name", "facts": "seq, name"}


def _trial(rules):
    res = compile_rules(rules)
    assert res.ok
    mod = types.ModuleType(f"words_{_name(rules)}")
    exec(compile(res.python, f"<{rules}>", "exec"), mod.__dict__)
    return res, mod, screen.prepare_script(res.program, res.lowered)


def _lines(rules) -> list[str]:
    texts = [json.dumps(rec) for _, _, rec in load_cases(_cases_dir(rules))] if rules != ROOT / "sm3321_rules" else []
    return texts + list(cohort._lines(150, 12, 0.05)) + _fuzz_texts()[:150] + list(BAD_LINES) + _edge_lines()


def _load(tmp_path, lines, words=None, chunk=loader.CHUNK, codes=None):
    p = tmp_path / "in.jsonl"
    p.write_text("".join(t + "\n" for t in lines), encoding="utf-8")
    con = screen.connect(threads=2, memory_limit="1GB")
    assert loader.load_jsonl(con, str(p), words=words, chunk=chunk, codes=codes) == len(lines)
    return con


def _codes(program) -> tuple:
    return tuple(o.name for o in program.observations)  # as `elig screen` gives them


def _results(con, res, mod, script) -> list[str]:
    screen.run_script(con, res.program, mod, script)
    out = list(screen.results(con))
    con.close()
    return out


PARAMS = [pytest.param(ROOT / "sm3321_rules", id="sm3321")] + [
    pytest.param(s, id=_name(s), marks=() if _name(s) in ("lang_trial", "language") else pytest.mark.slow)
    for s in SUITES]


@pytest.mark.parametrize("rules", PARAMS)
def test_the_screening_load_gives_the_same_results(rules, tmp_path):
    res, mod, script = _trial(rules)
    lines = _lines(rules)
    full = _results(_load(tmp_path, lines), res, mod, script)
    words, codes = screen.read_words(res.program, script), _codes(res.program)
    assert len(full) == len(lines) and any('"error"' in r for r in full)
    assert _results(_load(tmp_path, lines, words, codes=codes), res, mod, script) == full


@pytest.mark.slow  # two more screenings of SM3321 (the fast suite loads in chunks in the test below)
def test_the_screening_load_in_chunks_gives_the_same_results(tmp_path):
    """In chunks of 97 records (the tables then built by inserts), against the full load whole."""
    res, mod, script = _trial(ROOT / "sm3321_rules")
    lines = _lines(ROOT / "sm3321_rules")
    full = _results(_load(tmp_path, lines), res, mod, script)
    words, codes = screen.read_words(res.program, script), _codes(res.program)
    assert _results(_load(tmp_path, lines, words, chunk=97, codes=codes), res, mod, script) == full


def test_the_screening_load_keeps_the_named_columns_with_their_values(tmp_path, compiled):
    """Each table has the columns of the full load named by the words, in the same order, and
    the same rows in them; the observations are marked and grouped by (no_code, code)."""
    script = screen.prepare_script(compiled.program, compiled.lowered)
    words, codes = screen.read_words(compiled.program, script), _codes(compiled.program)
    lines = _lines(ROOT / "sm3321_rules")
    full = _load(tmp_path, lines)
    dropped = set()
    kept_obs = f"no_code OR code IN ({', '.join(map(repr, codes))})"
    for chunk in (loader.CHUNK, 97):
        got = _load(tmp_path, lines, words, chunk=chunk, codes=codes)
        for t in loader.TABLES:
            cols = [r[0] for r in full.execute(f"DESCRIBE {t}").fetchall()]
            kept = [c for c in cols if c in words[t]]
            assert [r[0] for r in got.execute(f"DESCRIBE {t}").fetchall()] == kept, t
            dropped |= {f"{t}.{c}" for c in cols if c not in words[t]}
            sel = ", ".join(f'"{c}"' for c in kept)
            key = _KEY.get(t, "seq, idx")
            # the observations of other codes are left out (those without a code kept)
            where = f" WHERE {kept_obs}" if t == "observations" else ""
            want = full.execute(f"SELECT {sel} FROM {t}{where} ORDER BY {key}").fetchall()
            assert got.execute(f"SELECT {sel} FROM {t} ORDER BY {key}").fetchall() == want, t
        assert loader.loaded_observations(got)
        # each chunk's readings grouped by (no_code, code): the codes' runs never interleave
        runs = got.execute("SELECT count(*) FROM (SELECT no_code, code, seq, "
                           "lag(no_code) OVER () AS pn, lag(code) OVER () AS pc, lag(seq) OVER () AS ps "
                           "FROM observations) WHERE (no_code, code) IS DISTINCT FROM (pn, pc)").fetchone()[0]
        chunks = -(-len(lines) // chunk)
        ncodes = got.execute("SELECT count(DISTINCT (no_code, code)) FROM observations").fetchone()[0]
        assert runs <= chunks * ncodes
        got.close()
    assert full.execute(f"SELECT count(*) FROM observations WHERE NOT ({kept_obs})").fetchone()[0] > 0
    full.close()
    # what the SM3321 screening does not read is not computed (its reasons, raw texts, dates)
    assert {"observations.date_why", "observations.date_raw", "observations.date", "patients.sex_why",
            "patients.birth_date_raw", "conditions.onset_why", "treatments.start_why"} <= dropped
    assert not dropped & {"observations.value_raw", "observations.unit_raw", "observations.value_int",
                          "observations.day", "observations.no_code", "patients.error", "treatments.end_present"}
