"""The module-comparison tools that speed work relies on: both modules are checked on the same
records, and --exact catches a change of any result text (a reason), not only of outcomes."""

import sys

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT))

from benchmarks import bench, bench_compare_modules  # noqa: E402

MODULE = ROOT / "generated" / "sm3321.py"


def test_compare_exact_catches_a_reworded_reason(tmp_path, capsys):
    changed = tmp_path / "changed.py"
    text = MODULE.read_text(encoding="utf-8")
    assert text.count('"%s has an unusable value (%s)"') >= 1
    changed.write_text(text.replace('"%s has an unusable value (%s)"', '"%s has a value that cannot be used (%s)"'),
                       encoding="utf-8")
    args = [str(MODULE), str(changed), "-n", "60", "--repeat", "1"]
    assert bench_compare_modules.main(args) == 0  # outcomes and missing are the same
    out = capsys.readouterr().out
    assert "differ in 0;" in out and "reasons included) in 0" not in out
    assert bench_compare_modules.main(args + ["--exact"]) == 1
    assert bench_compare_modules.main([str(MODULE), str(MODULE), "-n", "20", "--repeat", "1", "--exact"]) == 0


def test_bench_against_times_both_modules_in_one_run():
    r = bench.bench_against(MODULE, MODULE, 40, repeats=1)
    assert r["records"] == 40
    for key in ("new_us", "old_us", "json_loads_us", "new_cold_us", "old_cold_us"):
        assert r[key] > 0, key
    assert r["ratio"] == pytest.approx(r["new_us"] / r["old_us"])


def test_load_profile_times_the_loader_statements_and_builds_the_same_tables(tmp_path):
    """benchmarks/load_profile.py: every statement of the loader timed, the tables it names
    profiled per operator (EXPLAIN ANALYZE runs the statement), and the tables left exactly
    those of a plain load."""
    from benchmarks import cohort, load_profile
    from compiler.sql import loader, screen

    data = tmp_path / "c.jsonl"
    cohort.write_jsonl(str(data), 60, seed=7, corrupt_rate=0.1)
    n, timed, wall, cpu = load_profile.profile(str(data), str(tmp_path / "p.duckdb"), 1, "1GB",
                                               explain=["observations", "_docs"])
    assert n == 60 and wall > 0 and cpu > 0
    names = [name for name, _, _ in timed.log]
    for name in ("scratch lines", "scratch _docs", "chunk filter (bits)", *loader.TABLES):
        assert name in names, name
    assert set(timed.plans) == {"observations", "_docs"}
    text = "\n".join(load_profile.report(n, timed, wall, cpu))
    assert "EXPLAIN ANALYZE of observations" in text and "UNNEST" in text and "CREATE_TABLE_AS" in text
    plain = screen.connect(str(tmp_path / "plain.duckdb"), threads=1)
    assert loader.load_jsonl(plain, str(data)) == 60
    plain.execute(f"ATTACH '{tmp_path / 'p.duckdb'}' AS p (READ_ONLY)")
    for t in loader.TABLES:
        a = plain.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
        diff = plain.execute(f"SELECT count(*) FROM ((FROM {t} EXCEPT ALL FROM p.{t}) UNION ALL "
                             f"(FROM p.{t} EXCEPT ALL FROM {t}))").fetchone()[0]
        assert a > 0 and diff == 0, t
