"""HTML backend (placeholder until the page template lands)."""

from __future__ import annotations


def emit_html(mod, protocol_text):
    return ""
