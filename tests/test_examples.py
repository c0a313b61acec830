"""Every example trial compiles, and `elig verify --coverage` is green on it."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from compiler.cli import main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(p.parent for p in (ROOT / "examples").glob("*/trial.elig"))


@pytest.mark.parametrize("rules", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_compiles_and_verifies(rules, tmp_path):
    res = CliRunner().invoke(main, ["compile", str(rules), "-o", str(tmp_path)])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(main, ["verify", str(rules), "--coverage"])
    assert res.exit_code == 0, res.output
    assert "not covered" not in res.output
    assert "quotes verbatim, limits match" in res.output
