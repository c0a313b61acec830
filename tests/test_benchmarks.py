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
