"""Command-line parts for FHIR input: the `--from/--anchor/--anchors` options of `elig evaluate`
and the `elig fhir-to-records` command (registered from compiler/cli.py). Heavy imports
(fhir.resources, DuckDB) happen only when FHIR input is read."""

from __future__ import annotations

import datetime as dt
import os
import re
import sys

import click

FROM_CHOICES = ("records", "fhir", "fhir-bulk")


def fhir_options(f):
    """The options `elig evaluate` and `elig fhir-to-records` share for FHIR input."""
    f = click.option("--anchors", "anchors_csv", type=click.Path(dir_okay=False),
                     help="FHIR input: a CSV of anchors per patient (header patient_id,<anchor>,...; "
                          "patient_id is the FHIR Patient.id; an empty cell: not known yet).")(f)
    f = click.option("--anchor", "anchor_values", multiple=True, metavar="NAME=DATE",
                     help="FHIR input: an anchor date for every patient, e.g. first_dose=2026-02-01 (repeatable).")(f)
    f = click.option("--from", "source_from", type=click.Choice(FROM_CHOICES), default="records", show_default=True,
                     help="Input kind: patient records (format 1), FHIR R4 Bundles (a file, a directory, or JSON "
                          "Lines of Bundles) or a FHIR Bulk Data export directory (NDJSON per resource type).")(f)
    return f


def _die(msg: str, code: int = 1):
    click.echo(f"elig: error: {msg}", err=True)
    sys.exit(code)


def _parse_anchor_values(values, known) -> dict:
    out = {}
    for v in values:
        m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)=(\d{4}-\d{2}-\d{2})", v.strip())
        if not m:
            _die(f"--anchor {v!r}: write NAME=YYYY-MM-DD, e.g. first_dose=2026-02-01", 2)
        name, date = m.groups()
        try:
            dt.date.fromisoformat(date)
        except ValueError:
            _die(f"--anchor {v!r}: {date} is not a calendar date", 2)
        if name not in known:
            _die(f"--anchor {v!r}: unknown anchor {name!r} (this trial's anchors: {', '.join(sorted(known))})", 2)
        if name in out:
            _die(f"--anchor {name} is given twice", 2)
        out[name] = date
    return out


def _groups(source_from: str, input_path: str):
    from .sources import iter_bulk, iter_bundles

    if input_path == "-":
        _die("FHIR input is read from a file or a directory, not standard input", 2)
    if not os.path.exists(input_path):
        _die(f"cannot open {input_path}: no such file or directory")
    if source_from == "fhir-bulk":
        if not os.path.isdir(input_path):
            _die(f"{input_path}: --from fhir-bulk reads an export directory (NDJSON files per resource type)")
        return iter_bulk(input_path)
    return iter_bundles(input_path)


def run_fhir(source, module, source_from, input_path, anchor_values, anchors_csv, *, mode="results",
             fmt="jsonl", summary=False, output=None, jobs=0):
    from ..driver import WorkerDied
    from ..outputs import OutputError, ResultOutput, guard_signals
    from . import run as R
    from .sources import read_anchors_csv

    if not hasattr(module, "TERMINOLOGY"):
        _die("this evaluator module declares no codes (no TERMINOLOGY table): recompile it with this version of elig")
    known = set(module.TRIAL["anchors"])
    fixed = _parse_anchor_values(anchor_values, known)
    per_patient = None
    if anchors_csv:
        try:
            per_patient = read_anchors_csv(anchors_csv, known)
        except (OSError, UnicodeDecodeError) as exc:
            _die(f"cannot read {anchors_csv}: {getattr(exc, 'strerror', None) or exc}")
        except ValueError as exc:
            _die(str(exc))
    groups = _groups(source_from, input_path)
    target = None if summary else output
    try:
        out = ResultOutput(target)
    except OutputError as exc:
        _die(str(exc))
    not_written = f"; {target} was not written" if target else ""
    with guard_signals(out):
        try:
            stats = R.run(groups, out.file, source=source, module=module, anchors_fixed=fixed,
                          anchors_csv=per_patient, mode=mode, fmt=fmt, summary=summary, collect=summary, jobs=jobs)
        except ValueError as exc:  # an export that is not NDJSON
            out.abandon()
            _die(str(exc) + not_written)
        except OSError as exc:
            out.abandon()
            _die(f"cannot write {target or 'standard output'}: {exc.strerror or exc}")
        except WorkerDied as exc:
            out.abandon()
            _die(f"{input_path}: {exc}" + not_written)
        except BaseException:
            out.abandon()
            raise
        out.commit()
    if summary:
        from .. import batch

        click.echo(batch.format_summary(stats, module))
    return stats


def _load(rules_dir, module_path):
    """(ModuleSource, module) from --rules or --module, exactly as `elig evaluate` loads them."""
    from ..cli import load_evaluator

    return load_evaluator(rules_dir, module_path)


@click.command(name="fhir-to-records")
@click.option("--rules", "rules_dir", type=click.Path(file_okay=False), help="The trial's rules (for its codes).")
@click.option("--module", "module_path", type=click.Path(dir_okay=False), help="A generated evaluator module (.py).")
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False),
              help="Write the records here, atomically (default: standard output).")
@click.option("-j", "--jobs", type=int, default=0, help="Worker processes (0: one per core when the input is large).")
@fhir_options
@click.argument("input_path", metavar="INPUT", type=click.Path())
def fhir_to_records(rules_dir, module_path, output, jobs, source_from, anchor_values, anchors_csv, input_path):
    """Convert FHIR R4 data to patient records (format 1), one JSON line per patient.

    \b
    Example:
      elig fhir-to-records --module generated/sm3321.py --from fhir bundles/ --anchor first_dose=2026-02-01
      elig fhir-to-records --module generated/sm3321.py --from fhir-bulk export/ --anchors anchors.csv -o records.jsonl
    Mapping follows the codes the trial's vocabulary declares (docs/fhir.md); what cannot be
    mapped is listed in each record's "warnings". A patient whose data does not validate is
    written as {"id": ..., "error": ...}, which `elig evaluate` reports as an error result.
    """
    if source_from == "records":
        source_from = "fhir"
    source, module = _load(rules_dir, module_path)
    run_fhir(source, module, source_from, input_path, anchor_values, anchors_csv, mode="records", output=output,
             jobs=jobs)
