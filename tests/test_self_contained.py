"""The repository explains itself: no committed file refers to a place outside it, and every
relative link of its Markdown resolves to a file inside it."""

import re
import subprocess

from conftest import ROOT

# spelled in pieces so that this file does not match itself
OUTSIDE = [".." + "/shared", "/work" + "/shared", "shared" + "/spec", "/work" + "/main"]


def _committed(*suffixes):
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        out = b""
    if not out:  # not a git checkout (an sdist), or no git: every file
        paths = [p for p in ROOT.rglob("*") if p.is_file() and not {".venv", ".git", ".hypothesis"} & set(p.parts)]
    else:
        paths = [ROOT / p for p in out.decode().split("\0") if p]
    return [p for p in paths if p.suffix in suffixes and p.exists()]


def test_no_file_refers_outside_the_repository():
    bad = []
    for p in _committed(".md", ".py", ".elig", ".j2", ".toml", ".txt", ".json", ".html"):
        text = p.read_text(encoding="utf-8", errors="replace")
        for word in OUTSIDE:
            if word in text:
                line = text[:text.index(word)].count("\n") + 1
                bad.append(f"{p.relative_to(ROOT)}:{line}: {word}")
    assert not bad, "\n".join(bad)


LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_relative_markdown_links_resolve_inside_the_repository():
    bad = []
    for p in _committed(".md"):
        for target in LINK.findall(p.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            path = (p.parent / target.split("#")[0]).resolve()
            if not path.is_relative_to(ROOT) or not path.exists():
                bad.append(f"{p.relative_to(ROOT)}: {target}")
    assert not bad, "\n".join(bad)
