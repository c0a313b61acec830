"""Parse rule files with Lark (LALR, strict) into the frozen AST of ``compiler.ast``.

This module loads the grammar, builds (or reads from the cache) the parse tables and runs the
parser; ``parser_tree`` turns the parse tree into AST nodes and ``parser_errors`` turns Lark's
syntax errors into positioned ``Diagnostic``s with a readable list of what was expected.
No Lark exception or tree escapes ``parse_source``.
"""

from __future__ import annotations

import functools
import re
import threading
from importlib import resources
from pathlib import Path

from lark import Lark
from lark.exceptions import UnexpectedInput, VisitError

from . import ast as A
from .diagnostics import Diagnostic
from .parser_errors import syntax_diagnostic
from .parser_tree import ToAst

GRAMMAR_PACKAGE = "compiler.grammar"
_PARSE_LOCK = threading.Lock()
GRAMMAR_FILE = "elig.lark"


def grammar_text() -> str:
    """The grammar, read from the installed package (``grammar/`` is packaged as compiler.grammar)."""
    try:
        return resources.files(GRAMMAR_PACKAGE).joinpath(GRAMMAR_FILE).read_text(encoding="utf-8")
    except ModuleNotFoundError:
        # Running from a source checkout that is not installed: the grammar sits beside the package.
        here = Path(__file__).resolve().parent.parent / "grammar" / GRAMMAR_FILE
        return here.read_text(encoding="utf-8")


class _WordError(Exception):
    """A keyword glued to a name (`in` of `informed_consent`), or a reserved word used as a name."""

    def __init__(self, token, message):
        self.token = token
        self.message = message


class _Words:
    """Post-lexer: keywords are whole words, and no reserved word is read as a name.

    The contextual lexer only tries the terminals a state accepts, so without this a keyword
    could match the start of a longer name, and a keyword could be taken for a name where the
    keyword itself is not expected.
    """

    always_accept = ()

    def __init__(self):
        self.text = ""
        self.keywords: frozenset = frozenset()
        self.keyword_types: frozenset = frozenset()

    def process(self, stream):
        text = self.text
        for tok in stream:
            if tok.type in self.keyword_types:
                end = tok.end_pos
                if end is not None and end < len(text) and (text[end].isalnum() or text[end] == "_"):
                    j = end
                    while j < len(text) and (text[j].isalnum() or text[j] == "_"):
                        j += 1
                    word = text[tok.start_pos:j]
                    raise _WordError(tok, f"unexpected {word!r}")
            elif tok.type == "NAME" and str(tok) in self.keywords:
                raise _WordError(tok, f"unexpected {str(tok)!r}; it is a keyword of the language, not a name")
            elif tok.type == "NUMBER" and len(tok) > MAX_NUMBER_LENGTH:
                raise _WordError(tok, f"number too long: at most {MAX_NUMBER_LENGTH} characters")
            elif tok.type == "UNIT" and _HUGE_POWER.search(str(tok)):
                raise _WordError(tok, f"power of ten too large in unit {str(tok)[:40]!r}: at most 10*{MAX_POWER}")
            yield tok


MAX_NUMBER_LENGTH = 40
NAME_KEYWORDS = frozenset({"date"})
MAX_POWER = 30
_HUGE_POWER = re.compile(r"10[*^][+-]?0*(?:[1-9][0-9]{2,}|3[1-9]|[4-9][0-9])")
_WORDS = _Words()


@functools.lru_cache(maxsize=1)
def _lark() -> Lark:
    parser = _cached_lark()
    if parser is None:
        parser = Lark(
            grammar_text(),
            parser="lalr",
            strict=True,
            propagate_positions=True,
            maybe_placeholders=False,
            postlex=_WORDS,
        )
        _store_lark(parser)
    kw = {}
    for t in parser.terminals:
        pat = t.pattern
        if type(pat).__name__ == "PatternStr" and pat.value.isidentifier():
            kw[t.name] = pat.value
    # `date` names an attribute type and also an item's date (`where date <= first_dose - 4 wk`):
    # it is a keyword only where a type is expected
    _WORDS.keywords = frozenset(kw.values()) - NAME_KEYWORDS
    _WORDS.keyword_types = frozenset(kw)
    return parser


def _lark_key() -> str:
    import lark
    import sys

    from . import cache

    return cache.entry_key("elig-lalr-v1", grammar_text(), lark.__version__, sys.version)


def _cached_lark():
    """Parse tables from the user's cache (JSON, verified by compiler.cache), or None. Lark's own
    cache=True is not used: it unpickles a file from the shared temporary directory."""
    from . import cache

    if not cache.enabled():
        return None
    try:
        key = _lark_key()
        payload = cache.read(f"lalr-{key[:16]}.json", key)
        if payload is None:
            return None
        d = cache.loads_tagged(payload)
        return Lark._load_from_dict(d["data"], d["memo"], postlex=_WORDS, propagate_positions=True)
    except Exception:  # a damaged entry: build the tables again
        return None


def _store_lark(parser) -> None:
    from lark.grammar import Rule
    from lark.lexer import TerminalDef

    from . import cache

    if not cache.enabled():
        return
    try:
        data, memo = parser.memo_serialize([TerminalDef, Rule])
        data["options"] = {k: v for k, v in data["options"].items() if k != "postlex"}
        key = _lark_key()  # named by its key: checkouts with other grammars keep their own tables
        cache.write(f"lalr-{key[:16]}.json", key, cache.dumps_tagged({"data": data, "memo": memo}))
    except (TypeError, ValueError, OSError):
        pass


def normalise_newlines(text: str) -> str:
    """CRLF and lone CR become LF: lines are counted at LF only, everywhere."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def parse_source(text: str, path: str) -> tuple[A.SourceFile | None, list[Diagnostic]]:
    """Parse one rule file (newlines already normalised). Returns the AST (or None) and its
    syntax diagnostics."""
    if "\x00" in text:
        pos = text.index("\x00")
        line = text.count("\n", 0, pos) + 1
        col = pos - (text.rfind("\n", 0, pos) + 1) + 1
        return None, [Diagnostic(A.Span(path, line, col, line, col + 1), "NUL character in rule file")]
    parser = _lark()
    with _PARSE_LOCK:
        _WORDS.text = text
        try:
            tree = parser.parse(text)
        except _WordError as err:
            tok = err.token
            word = err.message.split("'")[1] if err.message.startswith("unexpected '") else str(tok)
            word_end = tok.column + len(word)
            return None, [Diagnostic(A.Span(path, tok.line, tok.column, tok.line, word_end), err.message)]
        except UnexpectedInput as err:
            return None, [syntax_diagnostic(path, text, err)]
        except RecursionError:
            return None, [Diagnostic(A.Span(path, 1, 1, 1, 2), "rule file is nested too deeply to parse")]
        finally:
            _WORDS.text = ""
    try:
        decls = ToAst(path).transform(tree)
    except VisitError as err:
        if isinstance(err.orig_exc, RecursionError):  # lark wraps what its transformer raises
            return None, [Diagnostic(A.Span(path, 1, 1, 1, 2), "rule file is nested too deeply to parse")]
        # a bug in the transformer, reported with a position rather than a traceback
        return None, [Diagnostic(A.Span(path, 1, 1, 1, 2), f"internal error while reading the parse tree: {err.orig_exc}")]
    except RecursionError:
        return None, [Diagnostic(A.Span(path, 1, 1, 1, 2), "rule file is nested too deeply to parse")]
    return A.SourceFile(path, text, tuple(decls)), []
