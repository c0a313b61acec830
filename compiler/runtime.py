"""The Elig evaluator runtime as a module of the compiler.

The runtime is written in parts, one concern each, in compiler/runtime_parts/ (their order and
what each holds: compiler/runtime_parts/__init__.py). The Python backend copies the parts, in
order, into every generated evaluator module. This module executes the same parts, in the same
order, in its own namespace, so that the compiler imports runtime names from here
(compiler/readable.py: `_unit_words`; compiler/sql/script.py: the half-life units) and the
meaning of the language has one reference text. Each part's code comes from the import
system's loader, so it is compiled once and then read from Python's bytecode cache.
"""

import importlib.util as _importlib_util

from . import runtime_parts as _parts

for _name in _parts.PARTS:
    _spec = _importlib_util.find_spec(_parts.__name__ + "." + _name)
    exec(_spec.loader.get_code(_spec.name), globals())
del _name, _spec
