"""Syntax errors of a rule file as positioned ``Diagnostic``s: what was found, a readable list of
what was expected, and a hint for a few mistakes whose fix is known."""

from __future__ import annotations

import re

from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from . import ast as A
from .diagnostics import Diagnostic

# How a terminal is named in "expected ..." messages.
_TERMINAL_WORDS = {
    "NAME": "a name",
    "REF": "a protocol reference",
    "NUMBER": "a number",
    "UNIT": "a unit",
    "STRING": "a string",
    "CMP": "a comparison",
    "ADD_OP": "'+' or '-'",
    "STAR": "'*'",
    "SLASH": "'/'",
    "TIMES": "'x'",
    "TIMES_SIGN": "'×'",
    "LBRACE": "'{'",
    "RBRACE": "'}'",
    "LPAR": "'('",
    "RPAR": "')'",
    "COMMA": "','",
    "COLON": "':'",
    "EQUAL": "'='",
    "VBAR": "'|'",
    "MINUS": "'-'",
    "$END": "end of file",
}


def _describe_expected(expected) -> str:
    words = []
    for name in sorted(set(expected)):
        if name in _TERMINAL_WORDS:
            w = _TERMINAL_WORDS[name]
        elif name.startswith("__") or name.startswith("_"):
            continue
        else:
            w = "'" + name.lower() + "'"
        if w not in words:
            words.append(w)
    if not words:
        return ""
    if len(words) > 8:
        words = words[:8] + ["..."]
    return ", ".join(words)


def _token_text(tok) -> str:
    if tok is None:
        return "end of file"
    if getattr(tok, "type", None) == "$END":
        return "end of file"
    text = str(tok)
    if len(text) > 30:
        text = text[:27] + "..."
    return repr(text)


def syntax_diagnostic(path: str, text: str, err: UnexpectedInput) -> Diagnostic:
    line = getattr(err, "line", None)
    col = getattr(err, "column", None)
    if not isinstance(line, int) or line < 1:
        lines = text.split("\n") or [""]
        line, col = len(lines), len(lines[-1]) + 1
    if not isinstance(col, int) or col < 1:
        col = 1
    span = A.Span(path, line, col, line, col + 1)
    if isinstance(err, UnexpectedCharacters):
        ch = text[err.pos_in_stream] if 0 <= err.pos_in_stream < len(text) else "?"
        expected = _describe_expected(err.allowed or ())
        msg = f"unexpected character {ch!r}"
        if ch == '"':
            msg = "unterminated string (a string ends with '\"' on the same line)"
        hint = f"expected {expected}" if expected and ch != '"' else None
        if ch == "[" and _word_before(text, err.pos_in_stream) == "in":
            hint = _SET_HINT
        return Diagnostic(span, msg, hint=hint)
    if isinstance(err, UnexpectedToken):
        tok = err.token
        if getattr(tok, "type", None) != "$END" and getattr(tok, "end_column", None):
            span = A.Span(path, tok.line, tok.column, tok.end_line or tok.line, tok.end_column)
        expected = _describe_expected(err.accepts or err.expected or ())
        msg = f"unexpected {_token_text(tok)}"
        if expected:
            msg += f"; expected {expected}"
        return Diagnostic(span, msg, hint=_token_hint(text, tok))
    if isinstance(err, UnexpectedEOF):
        expected = _describe_expected(err.expected or ())
        msg = "unexpected end of file"
        if expected:
            msg += f"; expected {expected}"
        return Diagnostic(span, msg)
    return Diagnostic(span, "syntax error")


_SET_HINT = "a set of numbers is written in braces: in {0, 1}; a range as a chained comparison: 10 <= X <= 40"
_COND_LIMIT_HINT = ("a conditional limit has one comparator; when the branches compare differently, write the "
                    "whole comparison in each branch: (X < 3 mg/dL if CONDITION else X <= 2 mg/dL)")


def _word_before(text: str, pos) -> str:
    """The word or symbol just before position pos (skipping whitespace)."""
    if not isinstance(pos, int):
        return ""
    head = text[:pos].rstrip()
    m = re.search(r"([A-Za-z_][A-Za-z0-9_]*|\S)$", head)
    return m.group(1) if m else ""


def _token_hint(text: str, tok):
    """A hint for a few unexpected tokens whose fix is known."""
    typ = getattr(tok, "type", None)
    before = _word_before(text, getattr(tok, "start_pos", None))
    if typ == "CMP" and before in ("else", "if", "then", "("):
        return _COND_LIMIT_HINT
    if typ == "LPAR" and before == "in":
        return _SET_HINT
    start = getattr(tok, "start_pos", None)
    if typ == "LPAR" and isinstance(start, int) and text[start + 1:].lstrip()[:1] in ("<", ">", "=", "≤", "≥", "!", "≠"):
        return _COND_LIMIT_HINT  # (<= 2 mg/dL if C else < 3 mg/dL) after a value
    return None
