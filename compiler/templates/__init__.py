"""Jinja2 templates of the backends. Templates only print what lowering computed."""

from __future__ import annotations

import functools

import jinja2


@functools.lru_cache(maxsize=2)
def _env(autoescape: bool) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("compiler", "templates"),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pyrepr"] = _pyrepr
    return env


def _pyrepr(value) -> str:
    """repr() of a plain literal: the only way rule text reaches generated Python."""
    if value is None or isinstance(value, (bool, int, str)):
        return repr(value)
    if isinstance(value, tuple) and all(isinstance(x, (str, int, bool)) for x in value):
        return repr(value)
    raise TypeError(f"pyrepr only prints plain literals, not {type(value).__name__}")


def render_template(name: str, **context) -> str:
    env = _env(name.endswith(".html.j2"))
    return env.get_template(name).render(**context)
