#!/usr/bin/env python3
"""Keep the example outputs shown in the repository's Markdown true.

An output shown in a Markdown file is marked with the command that prints it, on the line
before its fenced block:

    <!-- output: elig check examples/hf_trial -->
    ```text
    HF207: 10 criteria in 5 files, no errors
    ```

`tests/test_doc_outputs.py` re-runs every marked command and compares its output (standard
output, then standard error) with the block, so a shown output cannot go stale. After a change
that alters outputs on purpose, rewrite the blocks and review the diff:

    python tools/doc_outputs.py            # list the marked commands and whether they match
    python tools/doc_outputs.py --update   # rewrite every block that differs

A command is a shell-free list of words: `elig ...` runs this checkout's CLI
(`python -m compiler.cli`), `python ...` this Python. It runs from a fresh temporary directory
in which every top-level entry of the repository is linked, so relative paths work as in the
repository root and an output directory a command creates (`-o hf_out`) is thrown away. A
trailing `| head -N` keeps the first N lines; the exit status is not checked (an example may
show a failing command).
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARK = re.compile(r"^<!-- output: (?P<cmd>.+?) -->\n```[a-z]*\n(?P<body>.*?)^```$", re.M | re.S)
SKIP_DIRS = {".git", ".venv", "node_modules", "build", "dist"}


@dataclass
class Shown:
    path: Path
    command: str
    body: str
    start: int  # offsets of the body in the file
    end: int


def markdown_files(root: Path = ROOT) -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith(".") and "egg-info" not in d)
        out.extend(Path(dirpath) / f for f in sorted(filenames) if f.endswith(".md"))
    return out


def shown_outputs(path: Path) -> list[Shown]:
    text = path.read_text(encoding="utf-8")
    return [Shown(path, m["cmd"].strip(), m["body"], m.start("body"), m.end("body")) for m in MARK.finditer(text)]


def run(command: str, root: Path = ROOT, timeout: float = 120) -> str:
    """What the command prints (standard output, then standard error), as the block shows it."""
    head = None
    m = re.fullmatch(r"(.*?)\s*\|\s*head\s+-(?:n\s*)?(\d+)", command)
    if m:
        command, head = m[1], int(m[2])
    words = shlex.split(command)
    if os.path.basename(words[0]) == "elig":
        words = [sys.executable, "-m", "compiler.cli", *words[1:]]
    elif words[0] in ("python", "python3"):
        words = [sys.executable, *words[1:]]
    else:
        raise ValueError(f"{command!r}: a shown command starts with elig or python")
    with tempfile.TemporaryDirectory(prefix="elig-doc-") as tmp:
        for entry in root.iterdir():
            if entry.name not in (".git", ".venv"):
                os.symlink(entry, Path(tmp) / entry.name)
        env = dict(os.environ, PYTHONPATH=str(root), COLUMNS="100", PYTHONHASHSEED="0")
        env.pop("PYTHONSTARTUP", None)
        proc = subprocess.run(words, cwd=tmp, env=env, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    out = proc.stdout + proc.stderr
    out = out.replace(tmp + os.sep, "")
    if head is not None:
        out = "".join(out.splitlines(keepends=True)[:head])
    if out and not out.endswith("\n"):
        out += "\n"
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--update", action="store_true", help="rewrite the blocks that differ")
    args = ap.parse_args(argv)
    stale = 0
    for path in markdown_files():
        shown = shown_outputs(path)
        if not shown:
            continue
        text = path.read_text(encoding="utf-8")
        for s in reversed(shown):
            got = run(s.command)
            ok = got == s.body
            print(f"{'ok   ' if ok else 'STALE'} {path.relative_to(ROOT)}: {s.command}")
            if not ok:
                stale += 1
                text = text[:s.start] + got + text[s.end:]
        if args.update:
            path.write_text(text, encoding="utf-8")
    if stale and not args.update:
        print(f"{stale} stale output(s): python tools/doc_outputs.py --update", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
