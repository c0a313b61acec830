"""Positioned diagnostics: ``file:line:col: error: message``, the source line and a caret."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Optional

from .ast import Span


@dataclass(frozen=True)
class Diagnostic:
    span: Span
    message: str
    severity: str = "error"  # "error" | "warning"
    hint: Optional[str] = None

    def sort_key(self):
        return (self.span.file, self.span.line, self.span.column, self.message)

    def format(self, sources: Mapping[str, str]) -> str:
        head = f"{self.span.file}:{self.span.line}:{self.span.column}: {self.severity}: {self.message}"
        out = [head]
        text = sources.get(self.span.file)
        if text is not None:
            lines = text.split("\n")
            if 1 <= self.span.line <= len(lines):
                line = lines[self.span.line - 1].expandtabs(1)
                out.append("    " + line)
                start = max(self.span.column, 1)
                if self.span.end_line == self.span.line and self.span.end_column > start:
                    width = self.span.end_column - start
                else:
                    width = max(1, len(line) - start + 1) if self.span.end_line != self.span.line else 1
                width = max(1, min(width, max(1, len(line) - start + 1)))
                out.append("    " + " " * (start - 1) + "^" * width)
        if self.hint:
            out.append(f"    hint: {self.hint}")
        return "\n".join(out)


def render_all(diagnostics: Iterable[Diagnostic], sources: Mapping[str, str]) -> str:
    return "\n".join(d.format(sources) for d in sorted(diagnostics, key=Diagnostic.sort_key))
