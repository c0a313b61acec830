"""Elig: criteria-as-code for clinical trials.

The compiler is ``parse -> check -> lower -> emit``, each a function over the output of the
one before, behind ``compile_rules`` (a rules directory) and ``compile_sources`` (texts).
"""

from __future__ import annotations

__version__ = "0.1.0"
