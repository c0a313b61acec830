#!/usr/bin/env python3
"""Coverage-guided fuzzing of the Elig compiler with atheris (libFuzzer), for long runs.

The check is the one of tests/test_fuzz_rules.py: compiling any rule text either succeeds (the
evaluator module parses as Python, the page is HTML) or returns positioned diagnostics (a file
of the input, line >= 1, column >= 1, a message). Any exception is a crash; libFuzzer's
-timeout flags a hang. See tools/README.md.

An input is bytes: the first byte chooses how the rest is used (decoded as UTF-8, invalid bytes
replaced):
  0: it replaces one SM3321 rule file (the second byte chooses which), the others stay;
  1: it is the only rule file;
  2: it is added to the SM3321 rule files as one more file.

    python tools/fuzz_rules_atheris.py --make-corpus fuzz-corpus
    python tools/fuzz_rules_atheris.py fuzz-corpus -max_total_time=300 -timeout=20 -rss_limit_mb=4096
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import atheris

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

with atheris.instrument_imports(include=["compiler", "lark"]):
    import compiler.backend_html  # noqa: F401 - imported by the pipeline on demand; instrument them too
    import compiler.backend_python  # noqa: F401
    import compiler.lower  # noqa: F401 (pyflakes: used for its instrumentation)
    from compiler.pipeline import compile_sources, read_rules

SM3321, _ = read_rules(ROOT / "sm3321_rules")
PATHS = sorted(SM3321)


def sources_of(data: bytes) -> dict[str, str]:
    mode = data[0] % 3 if data else 1
    if mode == 0:
        which = PATHS[(data[1] if len(data) > 1 else 0) % len(PATHS)]
        sources = dict(SM3321)
        sources[which] = data[2:].decode("utf-8", "replace")
        return sources
    if mode == 1:
        return {"fuzz/input.elig": data[1:].decode("utf-8", "replace")}
    sources = dict(SM3321)
    sources["sm3321_rules/zz_fuzz.elig"] = data[1:].decode("utf-8", "replace")
    return sources


def check(sources: dict[str, str]) -> None:
    res = compile_sources(sources)
    if res.ok:
        if not isinstance(res.python, str) or not isinstance(res.html, str):
            raise AssertionError("a successful compile without module or page")
        ast.parse(res.python)
        if not res.html.startswith("<!doctype html>"):
            raise AssertionError("the page is not HTML")
        return
    if not res.diagnostics:
        raise AssertionError("a failed compile without diagnostics")
    if res.python is not None or res.html is not None:
        raise AssertionError("output emitted despite errors")
    for d in res.diagnostics:
        sp = d.span
        if not (isinstance(d.message, str) and d.message.strip()):
            raise AssertionError(f"diagnostic without message: {d!r}")
        if sp.file not in sources:
            raise AssertionError(f"diagnostic for a file not in the input: {d!r}")
        if not (isinstance(sp.line, int) and sp.line >= 1 and isinstance(sp.column, int) and sp.column >= 1):
            raise AssertionError(f"diagnostic not positioned: {d!r}")
        d.format(res.sources)


def TestOneInput(data: bytes) -> None:
    check(sources_of(data))


def make_corpus(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for i, p in enumerate(PATHS):
        (out / f"replace-{i}").write_bytes(bytes([0, i]) + SM3321[p].encode("utf-8"))
        (out / f"alone-{i}").write_bytes(bytes([1]) + SM3321[p].encode("utf-8"))
    small = 'inclusion extra_one {\n    ref I9\n    quote "x"\n    require informed_consent and age at screening >= 18 a\n}\n'
    (out / "extra").write_bytes(bytes([2]) + small.encode("utf-8"))
    print(f"wrote {2 * len(PATHS) + 1} seeds to {out}")


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--make-corpus":
        make_corpus(Path(sys.argv[2]))
        return
    check(dict(SM3321))  # warm up (units registry) before the clock starts
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
