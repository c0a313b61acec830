"""The compiler facade: rule files in, checked program, evaluator source and HTML page out."""

from __future__ import annotations

import json
import os
import re
import stat
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from . import ast as A
from .checker import check_program
from .diagnostics import Diagnostic
from .parser import normalise_newlines, parse_source

RULE_SUFFIX = ".elig"


@dataclass
class CompileResult:
    sources: dict[str, str]
    diagnostics: list[Diagnostic]
    program: object = None
    lowered: object = None
    python: Optional[str] = None
    html: Optional[str] = None
    protocol_text: Optional[str] = None

    @property
    def ok(self) -> bool:
        return not any(d.severity == "error" for d in self.diagnostics)


MAX_RULE_FILE = 4 << 20  # bytes; a rule file is text a person writes
MAX_PROTOCOL_FILE = 16 << 20  # bytes; a protocol's eligibility section is far smaller


class UnreadableFile(Exception):
    pass


def read_regular(path: Path, limit: int) -> bytes:
    """The bytes of a regular file of at most limit bytes. A named pipe, a device or a directory
    is refused without blocking (opened non-blocking, checked on the open descriptor), and so is
    a larger file, before anything is read."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise UnreadableFile(exc.strerror or str(exc)) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnreadableFile("not a regular file")
        if st.st_size > limit:
            raise UnreadableFile(f"{st.st_size:,} bytes, more than the limit of {limit:,}")
        chunks = []
        size = 0
        while True:
            b = os.read(fd, 1 << 20)
            if not b:
                break
            size += len(b)
            if size > limit:
                raise UnreadableFile(f"more than the limit of {limit:,} bytes")
            chunks.append(b)
        return b"".join(chunks)
    except OSError as exc:
        raise UnreadableFile(exc.strerror or str(exc)) from None
    finally:
        os.close(fd)


def _inside(root: Path, p: Path) -> bool:
    return root == p or root in p.parents


def read_rules(rules_dir: Path) -> tuple[dict[str, str], list[Diagnostic]]:
    """Every *.elig file below rules_dir (sorted), decoded as UTF-8, keyed by its display path.

    A rule file must be a regular file inside the rules directory: a symbolic link that resolves
    outside it, a named pipe or a device is refused with an error that names the path only (the
    content of a file that is not a rule file is never read, so never echoed)."""
    sources: dict[str, str] = {}
    diags: list[Diagnostic] = []
    root = rules_dir.resolve()
    for p in sorted(rules_dir.rglob("*" + RULE_SUFFIX)):
        display = p.as_posix()
        where = A.Span(display, 1, 1, 1, 1)
        try:
            real = p.resolve(strict=True)
        except (OSError, RuntimeError):
            if p.is_symlink():
                diags.append(Diagnostic(where, "this rule file is a symbolic link to nothing; not read"))
            continue
        if not _inside(root, real):
            diags.append(Diagnostic(where, f"this rule file is a link to a file outside {rules_dir.as_posix()}; "
                                           "rule files must be inside the rules directory (not read)"))
            continue
        if real.is_dir():
            continue
        try:
            data = read_regular(real, MAX_RULE_FILE)
        except UnreadableFile as exc:
            diags.append(Diagnostic(where, f"cannot read this rule file: {exc}"))
            continue
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
            sources[display] = data.decode("utf-8", errors="replace")
            diags.append(Diagnostic(A.Span(display, line, col, line, col + 1), "rule files are UTF-8; this byte is not"))
            continue
        if text.startswith("\ufeff"):
            text = text[1:]
        sources[display] = text.replace("\r\n", "\n").replace("\r", "\n")
    return sources, diags


# the files parsed last, by (path, text): a file parses to the same frozen AST every time, so a
# caller that compiles one trial again and again with one file changed (the mutation score, the
# tests) parses only what changed; a file with syntax errors is not kept
_PARSED: dict[tuple[str, str], A.SourceFile] = {}
_PARSED_MAX = 64
_PARSED_LOCK = threading.Lock()


def _parse(text: str, path: str) -> tuple[Optional[A.SourceFile], list[Diagnostic]]:
    key = (path, text)
    with _PARSED_LOCK:
        sf = _PARSED.get(key)
    if sf is not None:
        return sf, []
    sf, diags = parse_source(text, path)
    if sf is not None and not diags:
        with _PARSED_LOCK:
            while len(_PARSED) >= _PARSED_MAX:
                del _PARSED[next(iter(_PARSED))]
            _PARSED[key] = sf
    return sf, diags


def compile_sources(sources: dict[str, str], rules_root: Optional[str] = None, emit: bool = True,
                    protocol_loader=None) -> CompileResult:
    """parse -> check -> lower -> emit over in-memory rule texts (path -> text)."""
    sources = {path: normalise_newlines(text[1:] if text.startswith("\ufeff") else text)
               for path, text in sources.items()}
    result = CompileResult(dict(sources), [])
    files = []
    for path in sorted(sources):
        sf, diags = _parse(sources[path], path)
        result.diagnostics.extend(diags)
        if sf is not None:
            files.append(sf)
    if result.diagnostics:
        # syntax errors first; still check the files that parsed, for every other error
        if not files:
            return result
    program, diags = check_program(files)
    broken = [sources[d.span.file] for d in result.diagnostics if d.span.file in sources]
    if broken:
        diags = _without_cascade(diags, broken)
    result.diagnostics.extend(diags)
    result.diagnostics.sort(key=Diagnostic.sort_key)
    if program is None or not result.ok:
        return result
    result.program = program
    if protocol_loader is not None and program.trial.protocol:
        result.protocol_text = protocol_loader(program.trial.protocol)
    if not emit:
        return result
    from .backend_html import emit_html
    from .backend_python import emit_python
    from .lower import lower

    result.lowered = lower(program, rules_root)
    result.python = emit_python(result.lowered)
    coverage = None
    if result.protocol_text is not None:
        from .verify import verify_program

        # the page shows verify's coverage table; verify's own verdict is `elig verify`'s
        _, coverage = verify_program(program, result.protocol_text, program.trial.protocol or "", dict(sources))
    result.html = emit_html(result.lowered, result.protocol_text, coverage or None)
    return result


def compile_rules(rules_dir: Path, emit: bool = True) -> CompileResult:
    rules_dir = Path(rules_dir)
    sources, diags = read_rules(rules_dir)
    if not sources and not diags:
        d = Diagnostic(A.Span(rules_dir.as_posix(), 1, 1, 1, 2), f"no {RULE_SUFFIX} rule files in {rules_dir.as_posix()}")
        return CompileResult({}, [d])

    root = rules_dir.resolve()
    protocol_diags: list[Diagnostic] = []

    def load_protocol(name: str) -> Optional[str]:
        where = A.Span(rules_dir.as_posix(), 1, 1, 1, 1)
        for path in sorted(sources):  # the trial header line that names the protocol
            for no, line in enumerate(sources[path].split("\n"), 1):
                col = line.find(json.dumps(name))
                if col >= 0 and "protocol" in line[:col]:
                    where = A.Span(path, no, col + 1, no, col + 1 + len(json.dumps(name)))
                    break
            else:
                continue
            break
        p = (rules_dir / name).resolve()
        if not _inside(root, p):  # only a file inside the rules directory is read and published
            protocol_diags.append(Diagnostic(where, f"the protocol file {name!r} is outside the rules directory; not read"))
            return None
        if not p.exists():
            return None  # `elig verify` says it cannot read it
        try:
            return read_regular(p, MAX_PROTOCOL_FILE).decode("utf-8")
        except UnreadableFile as exc:
            protocol_diags.append(Diagnostic(where, f"cannot read the protocol file {name!r}: {exc}"))
        except UnicodeDecodeError as exc:
            protocol_diags.append(Diagnostic(where, f"the protocol file {name!r} is not UTF-8 (byte {exc.start + 1})"))
        return None

    res = compile_sources(sources, rules_dir.as_posix(), emit=emit, protocol_loader=load_protocol)
    diags = diags + protocol_diags
    res.diagnostics = sorted(diags + res.diagnostics, key=Diagnostic.sort_key)
    if diags:
        res.python = res.html = None
    return res


# what a rule file can declare, found by its words where the file could not be parsed
_DECLARES = re.compile(r"\b(?:observation|condition|procedure|fact|judgment|derived|equivalence|let|"
                       r"treatment_class|anchors)\s+([A-Za-z_][A-Za-z0-9_]*(?:\s*,\s*[A-Za-z_][A-Za-z0-9_]*)*)")
_UNKNOWN = re.compile(r"^unknown (?:name|anchor|observation|condition, procedure, treatment class or observation|"
                      r"equivalence table|treatment class) '([^']+)'")


def _without_cascade(diags: list, broken_texts: list) -> list:
    """One syntax error must not cascade: a file that could not be parsed may declare names that
    other files use (or the trial header). Errors that only say such a name is unknown follow
    from the syntax error already reported, and are left out."""
    maybe: set = set()
    header = False
    for text in broken_texts:
        for m in _DECLARES.finditer(text):
            maybe.update(n.strip() for n in m.group(1).split(","))
        header = header or re.search(r"\btrial\s+[A-Za-z_]", text) is not None
    out = []
    for d in diags:
        m = _UNKNOWN.match(d.message)
        if m and m.group(1) in maybe:
            continue
        if header and d.message.startswith("no trial header"):
            continue
        out.append(d)
    return out
