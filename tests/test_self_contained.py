"""The repository explains itself: no committed file refers to a place outside it, and every
relative link of its Markdown (inline, reference-style, or an HTML `href`/`src`) resolves to a
file inside it, and to a heading of that file when it names one (`language.md#9-windows`)."""

import re
import subprocess
from pathlib import Path

from conftest import ROOT

# spelled in pieces so that this file does not match itself: the folders beside the repository
# (its specification, the other checkouts), the machine's work folder, home folders
OUTSIDE = [".." + "/shared", "shared" + "/spec", "/work" + "/", "/root" + "/", "/home" + "/"]


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
    for p in _committed(".md", ".py", ".elig", ".j2", ".toml", ".txt", ".json", ".html", ".css", ".lark"):
        text = p.read_text(encoding="utf-8", errors="replace")
        for word in OUTSIDE:
            if word in text:
                line = text[:text.index(word)].count("\n") + 1
                bad.append(f"{p.relative_to(ROOT)}:{line}: {word}")
    assert not bad, "\n".join(bad)


# ---------------------------------------------------------------------- Markdown links

FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.M | re.S)
INLINE = re.compile(r"\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?([^\s>]+)>?", re.M)
HTML = re.compile(r"<(?:a|img)\b[^>]*?\b(?:href|src)\s*=\s*\"([^\"]+)\"", re.I)
HEADING = re.compile(r"^#{1,6}[ \t]+(.*?)[ \t]*#*[ \t]*$", re.M)


def _slug(heading: str) -> str:
    """A heading's fragment as GitHub makes it: lower case, punctuation dropped, spaces to '-'."""
    text = re.sub(r"<[^>]+>", "", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _fragments(md: Path) -> set[str]:
    """The fragments a Markdown file has: its headings' slugs (a repeated heading gets -1, -2, ...)
    and explicit `<a id=...>` / `<a name=...>` anchors."""
    text = FENCE.sub("", md.read_text(encoding="utf-8"))
    out, seen = set(), {}
    for heading in HEADING.findall(text):
        slug = _slug(heading)
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out | set(re.findall(r"<a\s+(?:id|name)=\"([^\"]+)\"", text))


def link_problems(md: Path, root: Path) -> list[str]:
    """Every relative link of `md` that leaves `root`, names no file, or names a heading its
    Markdown target does not have. Links with a scheme (https:, mailto:) are not followed."""
    text = md.read_text(encoding="utf-8")
    bad = []
    for target in INLINE.findall(text) + REFERENCE.findall(text) + HTML.findall(text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target, re.I):
            continue
        path, _, fragment = target.partition("#")
        dest = (md.parent / path).resolve() if path else md.resolve()
        if not dest.is_relative_to(root.resolve()) or not dest.exists():
            bad.append(f"{md.relative_to(root)}: {target}: no such file in the repository")
        elif fragment and dest.suffix == ".md" and fragment not in _fragments(dest):
            bad.append(f"{md.relative_to(root)}: {target}: no such heading in {dest.name}")
    return bad


def test_relative_markdown_links_resolve_inside_the_repository():
    mds = _committed(".md")
    assert ROOT / "README.md" in mds and ROOT / "docs" / "language.md" in mds
    bad = [b for p in mds for b in link_problems(p, ROOT)]
    assert not bad, "\n".join(bad)


def test_the_link_check_finds_each_kind_of_broken_link(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "guide.md").write_text("# Guide\n\n## 2. Windows and `ever`\n\n## Notes\n\n## Notes\n",
                                                encoding="utf-8")
    (tmp_path / "outside.md").write_text("# Outside\n", encoding="utf-8")
    readme = tmp_path / "docs" / "README.md"
    readme.write_text(
        "[fine](guide.md#2-windows-and-ever) [repeated](guide.md#notes-1) [web](https://example.org/x.md)\n"
        "[here](#top) [gone](missing.md) [wrong heading](guide.md#3-windows)\n"
        "[up and out](../../elsewhere.md) [beside it](../outside.md)\n"
        "[ref]: guide.md#nowhere\n"
        "<img src=\"page.png\"> <a href=\"guide.md#guide\">guide</a>\n"
        "# Top\n",
        encoding="utf-8")
    bad = link_problems(readme, tmp_path / "docs")
    assert bad == [
        "README.md: missing.md: no such file in the repository",
        "README.md: guide.md#3-windows: no such heading in guide.md",
        "README.md: ../../elsewhere.md: no such file in the repository",
        "README.md: ../outside.md: no such file in the repository",
        "README.md: guide.md#nowhere: no such heading in guide.md",
        "README.md: page.png: no such file in the repository",
    ]
