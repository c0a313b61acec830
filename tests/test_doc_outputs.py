"""Outputs shown in the repository's Markdown are what the commands print today
(tools/doc_outputs.py: each shown output is marked with the command that prints it)."""

import sys

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "tools"))
import doc_outputs  # noqa: E402

SHOWN = [s for p in doc_outputs.markdown_files(ROOT) for s in doc_outputs.shown_outputs(p)]


def test_the_docs_show_outputs():
    files = {s.path.relative_to(ROOT).as_posix() for s in SHOWN}
    assert {"README.md", "examples/hf_trial/README.md"} <= files, files


@pytest.mark.parametrize("shown", SHOWN, ids=[f"{s.path.relative_to(ROOT)}: {s.command}" for s in SHOWN])
def test_shown_output_is_current(shown):
    got = doc_outputs.run(shown.command)
    assert got == shown.body, (f"{shown.path.relative_to(ROOT)} shows an output that `{shown.command}` no longer "
                               f"prints; check the change and run `python tools/doc_outputs.py --update`")
