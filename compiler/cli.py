"""The `elig` command line."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import click

from . import __version__
from .diagnostics import render_all
from .fhir.cli import fhir_options, fhir_to_records


def _die(msg: str, code: int = 1):
    click.echo(f"elig: {msg}", err=True)
    sys.exit(code)


def _compile(rules_dir: str, emit: bool = True):
    from .pipeline import compile_rules

    path = Path(rules_dir)
    if not path.is_dir():
        _die(f"{rules_dir}: not a directory of rule files")
    try:
        res = compile_rules(path, emit=emit)
    except Exception as exc:  # a compiler defect: say so plainly, never a traceback
        _die(f"internal compiler error ({type(exc).__name__}: {exc}); please report it with the rule files")
    return res


def _report(res) -> None:
    if res.diagnostics:
        click.echo(render_all(res.diagnostics, res.sources), err=True)
    n = sum(1 for d in res.diagnostics if d.severity == "error")
    if n:
        click.echo(f"{n} error{'s' if n != 1 else ''}", err=True)


class _EligGroup(click.Group):
    """click's own errors in Elig's style: `elig: <message>` on standard error, with the exit
    codes of README's table (0 done, 1 the rules/input/files have problems, 2 usage, 130
    interrupted)."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(args, prog_name or "elig", complete_var, standalone_mode=False, **extra)
        except click.UsageError as exc:
            msg = exc.format_message().rstrip(".")
            click.echo(f"elig: {msg[:1].lower() + msg[1:]}", err=True)
            if exc.ctx is not None:
                path = exc.ctx.command_path
                click.echo(f"usage: {exc.ctx.get_usage().removeprefix('Usage: ')}  ({path} --help for more)", err=True)
            sys.exit(EXIT_USAGE)
        except click.exceptions.Abort:
            click.echo("elig: interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except click.ClickException as exc:
            click.echo(f"elig: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except OSError as exc:  # a closed pipe (`elig ... | head`) and the like
            import errno

            if exc.errno == errno.EPIPE:
                sys.exit(EXIT_PROBLEMS)
            raise
        sys.exit(rv if isinstance(rv, int) else 0)


EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


@click.group(cls=_EligGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="elig")
def main():
    """Elig: eligibility criteria as code.

    Rule files (*.elig) are checked and compiled into a standard-library Python evaluator and
    a readable HTML page of the criteria.

    \b
    Example:
      elig check sm3321_rules
      elig compile sm3321_rules -o generated
      elig evaluate --module generated/sm3321.py examples/sm3321/patients.jsonl

    \b
    Exit status: 0 done; 1 a problem in the rules, the records or the files given; 2 a usage
    error; 130 interrupted.
    """


@main.command()
@click.argument("rules_dir", type=click.Path(file_okay=False))
def check(rules_dir):
    """Parse and check the rule files of RULES_DIR; print every error with its position.

    \b
    Example:
      elig check sm3321_rules
    Exit status 0 when the rules are correct, 1 when there are errors.
    """
    res = _compile(rules_dir, emit=False)
    _report(res)
    if not res.ok:
        sys.exit(1)
    p = res.program
    click.echo(f"{p.trial.name}: {len(p.criteria)} criteria in {len(res.sources)} files, no errors")


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


@main.command(name="compile")
@click.argument("rules_dir", type=click.Path(file_okay=False))
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Directory for <trial>.py and <trial>.html.")
@click.option("--check", "check_only", is_flag=True,
              help="Write nothing; exit 1 naming the files that differ from what would be written.")
def compile_cmd(rules_dir, out_dir, check_only):
    """Compile RULES_DIR into OUT_DIR/<trial>.py (the evaluator) and OUT_DIR/<trial>.html.

    \b
    Example:
      elig compile sm3321_rules -o generated
      elig compile sm3321_rules -o generated --check   # CI: are the checked-in files current?
    Files are written atomically; a failed compile leaves OUT_DIR as it was.
    """
    res = _compile(rules_dir)
    _report(res)
    if not res.ok:
        sys.exit(1)
    out = Path(out_dir)
    name = res.lowered.module_name
    files = {out / f"{name}.py": res.python, out / f"{name}.html": res.html}
    if check_only:
        stale = []
        for path, text in files.items():
            try:
                current = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                current = None
            if current != text:
                stale.append(path.as_posix())
        if stale:
            for s in stale:
                click.echo(f"stale: {s}", err=True)
            click.echo(f"regenerate with: elig compile {rules_dir} -o {out_dir}", err=True)
            sys.exit(1)
        click.echo(f"{', '.join(p.as_posix() for p in files)} are current")
        return
    from .outputs import write_files_together

    try:
        write_files_together(files, out)
    except OSError as exc:
        _die(f"cannot write {exc.filename or out_dir}: {exc.strerror or exc}")
    click.echo(f"wrote {', '.join(p.as_posix() for p in files)} ({len(res.program.criteria)} criteria)")


@main.command()
@click.argument("rules_dir", type=click.Path(file_okay=False))
@click.option("--coverage", is_flag=True, help="Print which rules encode each numbered item of the protocol.")
def verify(rules_dir, coverage):
    """Prove that the rules of RULES_DIR say what the protocol text says.

    \b
    Example:
      elig verify sm3321_rules
      elig verify sm3321_rules --coverage
    Exit status 1, with positioned messages, unless every quote is verbatim in the protocol,
    every numbered protocol item is encoded by a rule (or declared uncomputable), and every
    limit of a quote has its counterpart, same direction, in the compiled logic (and back).
    """
    from .verify import format_coverage, verify_program

    res = _compile(rules_dir, emit=False)
    _report(res)
    if not res.ok:
        sys.exit(1)
    p = res.program
    proto_path = (Path(rules_dir) / (p.trial.protocol or "")).as_posix()
    sources = dict(res.sources)
    diags, rows = verify_program(p, res.protocol_text, proto_path, sources)
    if coverage and rows:
        click.echo(format_coverage(rows))
    if diags:
        click.echo(render_all(diags, sources), err=True)
        click.echo(f"verify: {len(diags)} problem{'s' if len(diags) != 1 else ''}", err=True)
        sys.exit(1)
    encoded = sum(1 for r in rows if r.status == "encoded")
    click.echo(f"{p.trial.name}: {len(p.criteria)} rules, {encoded} protocol items encoded; quotes verbatim, limits match")


@main.command()
@click.option("--rules", "rules_dir", type=click.Path(file_okay=False), help="Compile these rules and evaluate with them.")
@click.option("--module", "module_path", type=click.Path(dir_okay=False), help="A generated evaluator module (.py).")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "text"]), default="jsonl", show_default=True,
              help="JSON Lines (one result per record) or a readable table per patient.")
@click.option("--summary", is_flag=True, help="Print per-criterion counts over the batch instead of each result.")
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False), help="Write results here (default: standard output).")
@click.option("-j", "--jobs", type=int, default=0, help="Worker processes (0: one per core when the batch is large).")
@click.option("--validate", is_flag=True,
              help="Screen nothing: check every record against the JSON Schema of patient-record format 1 "
                   "and print each problem with its record and JSON path; exit 1 when a record is invalid.")
@fhir_options
@click.argument("input_path", metavar="INPUT", type=click.Path(allow_dash=True))
def evaluate(rules_dir, module_path, fmt, summary, output, jobs, input_path, validate, source_from="records", anchor_values=(),
             anchors_csv=None):
    """Screen the patient records of INPUT (a JSON object, a JSON array or JSON Lines; - for stdin).

    \b
    Example:
      elig evaluate --module generated/sm3321.py examples/sm3321/patients.jsonl > results.jsonl
      elig evaluate --rules sm3321_rules --format text examples/sm3321/patient.json
      elig evaluate --module generated/sm3321.py --summary examples/sm3321/registry.jsonl
      elig evaluate --validate examples/sm3321/registry.jsonl   # is the feed record format 1?
      elig evaluate --module generated/sm3321.py --from fhir bundle.json --anchor first_dose=2026-02-01
    One result per input record, in input order, streamed; a record that cannot be read gives
    an error result and the batch goes on. Exit status 0 when every record produced a result;
    with --validate, 0 when every record is valid and 1 otherwise. Formats: docs/records.md.
    """
    from . import batch
    from .records import RecordStreamError, open_records

    if validate:
        _validate(input_path)
        return

    source, module = load_evaluator(rules_dir, module_path)
    if not hasattr(module, "evaluate_json"):
        _die(f"{module_path}: not an Elig evaluator module (no evaluate_json)")
    if source_from != "records":  # FHIR input: compiler/fhir/cli.py
        from .fhir.cli import run_fhir
        run_fhir(source, module, source_from, input_path, anchor_values, anchors_csv, fmt=fmt, summary=summary,
                 output=output, jobs=jobs)
        return
    if anchor_values or anchors_csv:
        _die("--anchor and --anchors are for FHIR input (--from fhir or fhir-bulk); records carry their anchors", 2)

    from .outputs import OutputError, ResultOutput, guard_signals

    try:
        stream = open_records(input_path)
    except OSError as exc:
        _die(f"cannot open {input_path}: {exc.strerror or exc}")
    try:
        out = ResultOutput(output, stream if input_path != "-" else None, module_path)
    except OutputError as exc:
        _die(str(exc))
    progress = None
    if sys.stderr.isatty() and input_path != "-":
        progress = _progress(batch, stream)
    with guard_signals(out):
        try:
            stats = batch.run(source, module, stream, out.file, fmt=fmt, summary=summary and not output,
                              collect=summary, jobs=jobs, progress=progress)
        except RecordStreamError as exc:
            out.abandon()
            _die(f"{input_path}: {exc}" + (f"; {output} was not written" if output else ""))
        except OSError as exc:
            out.abandon()
            _die(f"cannot write {output or 'standard output'}: {exc.strerror or exc}")
        except batch.WorkerDied as exc:
            out.abandon()
            _die(f"{input_path}: {exc}" + (f"; {output} was not written" if output else ""))
        finally:
            stream.close()
        out.commit()
    if summary:
        text = batch.format_summary(stats, module)
        click.echo(text)



def load_evaluator(rules_dir, module_path):
    """(ModuleSource, module) from --rules (compiled now) or --module (a regular file only: a
    named pipe must not hang the run); every problem is a clear error, never a traceback."""
    from . import batch
    from .pipeline import UnreadableFile, read_regular

    if bool(rules_dir) == bool(module_path):
        _die("give exactly one of --rules RULES_DIR or --module MODULE.py", 2)
    if rules_dir:
        res = _compile(rules_dir)
        _report(res)
        if not res.ok:
            _die("the rules do not compile")
        source = batch.ModuleSource(text=res.python, name=res.lowered.module_name)
    else:
        try:  # a regular file only: a named pipe must not hang the run
            text = read_regular(Path(module_path), 256 << 20).decode("utf-8")
        except (UnreadableFile, UnicodeDecodeError) as exc:
            _die(f"cannot read module {module_path}: {exc}")
        source = batch.ModuleSource(text=text, name=Path(module_path).stem)
    try:
        module = source.load()
    except Exception as exc:
        _die(f"{module_path or rules_dir}: not an evaluator module ({type(exc).__name__}: {exc})")
    return source, module


def _validate(input_path):
    """`elig evaluate --validate`: the schema's verdict on every record of INPUT."""
    from .records import RecordStreamError, iter_records, open_records
    from .schemas import validate_stream

    try:
        stream = open_records(input_path)
    except OSError as exc:
        _die(f"cannot open {input_path}: {exc.strerror or exc}")
    n = bad = 0
    try:
        for index, pid, problems in validate_stream(iter_records(stream)):
            n += 1
            if problems:
                bad += 1
                who = f"record {index}" + (f" ({pid})" if pid else "")
                for p in problems:
                    click.echo(f"{input_path}: {who}: {p}")
    except RecordStreamError as exc:
        _die(str(exc))
    finally:
        stream.close()
    click.echo(f"{input_path}: {n - bad} of {n} record{'s' if n != 1 else ''} valid (patient-record format 1)",
               err=bool(bad))
    if bad:
        sys.exit(1)


def _progress(batch, stream):
    """A progress line for a terminal; with a bar when the input is a regular file."""
    import os
    import stat

    try:
        raw = stream.buffer.raw
        st = os.fstat(raw.fileno())
        if stat.S_ISREG(st.st_mode) and st.st_size > 0:
            return batch.Progress(sys.stderr, st.st_size)
    except (AttributeError, OSError, ValueError):
        pass
    return batch.Progress(sys.stderr)


from .cli_diff import diff as _diff_command  # noqa: E402  (elig diff: its own module)

main.add_command(_diff_command)

main.add_command(fhir_to_records)

# population screening on SQL engines (compiler/sql/cli_screen.py)
from .sql.cli_screen import load as _load_command, screen as _screen_command, sql as _sql_command  # noqa: E402

main.add_command(_screen_command)
main.add_command(_load_command)
main.add_command(_sql_command)


if __name__ == "__main__":  # pragma: no cover
    main()
