"""`elig diff OLD_RULES NEW_RULES`: what an amendment changes in meaning, and whom it changes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click


def _compile_or_die(rules_dir: str, which: str):
    from .cli import _compile, _die, _report

    res = _compile(rules_dir, emit=True)
    if not res.ok:
        _report(res)
        _die(f"the {which} rules ({rules_dir}) do not compile")
    return res


@click.command(name="diff")
@click.argument("old_rules", type=click.Path(file_okay=False))
@click.argument("new_rules", type=click.Path(file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["text", "json", "html"]), default="text", show_default=True,
              help="Plain text for a terminal, JSON for tools, or an HTML page (old and new side by side).")
@click.option("--records", "records", type=click.Path(dir_okay=False, allow_dash=True),
              help="Patient records (JSON Lines, a JSON array or one object; - for stdin) to screen under both "
                   "versions: the patients whose status changes, and by which criterion.")
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False),
              help="Write the report here (atomically) instead of standard output.")
@click.option("-j", "--jobs", type=int, default=0, help="Worker processes for --records (0: one per core when the batch is large).")
def diff(old_rules, new_rules, fmt, records, output, jobs):
    """Compare two versions of a trial's rules in meaning: criteria added, removed, changed and
    unchanged, each change in plain words with its direction (stricter, looser, neither).

    \b
    Example:
      elig diff sm3321_rules amended_rules
      elig diff sm3321_rules amended_rules --format html -o amendment.html
      elig diff sm3321_rules amended_rules --records patients.jsonl
    Criteria are matched by id, renames by content. When the protocol text changed too, the
    protocol items whose text changed but whose rules did not are listed. Exit status 0 when
    both versions compile.
    """
    from . import diff as D
    from .cli import _die, _write_atomic

    old = _compile_or_die(old_rules, "old")
    new = _compile_or_die(new_rules, "new")
    try:
        result = D.diff_programs(old.program, new.program, old.protocol_text, new.protocol_text)
    except Exception as exc:  # a defect: say so plainly
        _die(f"internal error comparing the rules ({type(exc).__name__}: {exc}); please report it")
    impact = None
    if records:
        impact = _impact(old, new, records, jobs)
    if fmt == "json":
        obj = result.as_json()
        obj["old_rules"] = Path(old_rules).as_posix()
        obj["new_rules"] = Path(new_rules).as_posix()
        if impact is not None:
            obj["impact"] = impact.as_json()
        text = json.dumps(obj, indent=2, ensure_ascii=False) + "\n"
    elif fmt == "html":
        from .diff_html import render_diff_html

        text = render_diff_html(result, Path(old_rules).as_posix(), Path(new_rules).as_posix(), impact)
    else:
        from .impact import format_text as impact_text

        text = D.format_text(result) + "\n"
        if impact is not None:
            text += impact_text(impact) + "\n"
    if output:
        try:
            _write_atomic(Path(output), text)
        except OSError as exc:
            _die(f"cannot write {output}: {exc.strerror or exc}")
    else:
        sys.stdout.write(text)


def _impact(old, new, records: str, jobs: int):
    from .batch import ModuleSource
    from .cli import _die
    from .impact import screen
    from .records import RecordStreamError

    src_old = ModuleSource(text=old.python, name=old.lowered.module_name + "_old")
    src_new = ModuleSource(text=new.python, name=new.lowered.module_name + "_new")
    try:
        stream = sys.stdin if records == "-" else open(records, "r", encoding="utf-8", errors="surrogateescape")
    except OSError as exc:
        _die(f"cannot open {records}: {exc.strerror or exc}")
    from .driver import WorkerDied

    try:
        return screen(src_old, src_new, stream, jobs=jobs)
    except (RecordStreamError, WorkerDied) as exc:
        _die(str(exc))
    finally:
        if stream is not sys.stdin:
            stream.close()
