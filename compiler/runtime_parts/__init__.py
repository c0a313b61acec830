"""The evaluator runtime, in parts by concern (standard library only).

The parts are not modules to import one by one: together, in the order of PARTS, they are one
namespace (a part calls functions of the others by name). The Python backend copies them
verbatim, in this order, into every generated evaluator module, which stays one file that
imports only the standard library (`source()`); `compiler/runtime.py` executes the same parts
in the same order, so that the compiler can import runtime names and the runtime is read as
the reference of the language's meaning.

    values        dates as day numbers, record numbers, exact comparison with limits
    logic         Kleene logic, reasons (each fact named once), units and labels in words
    record        reading a record: its fields, observations, items, treatments, unit spellings
    windows       windows around anchors and item dates, durations, half-lives
    observations  the most recent reading, comparisons with limits, readings as numbers
    numbers       computed numbers (exact near a limit), ages
    items         facts, sex, closed-world queries over conditions, procedures and treatments
    fields        item attributes, statuses, classes, doses, item dates, date arithmetic
    results       evaluating a record: the result (format 1), its status and cohorts
"""

from __future__ import annotations

from importlib import resources

PARTS = ("values", "logic", "record", "windows", "observations", "numbers", "items", "fields", "results")


def part_file(name: str):
    """The file of one part (an importlib.resources Traversable)."""
    return resources.files(__name__).joinpath(name + ".py")


def part_text(name: str) -> str:
    return part_file(name).read_text(encoding="utf-8")


def source() -> str:
    """The whole runtime as one text: the parts in order, two blank lines between them."""
    return "\n\n\n".join(part_text(name).rstrip("\n") for name in PARTS) + "\n"
