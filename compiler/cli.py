"""The `elig` command line."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import click

from . import __version__
from .diagnostics import render_all


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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="elig")
def main():
    """Elig: eligibility criteria as code.

    Rule files (*.elig) are checked and compiled into a standard-library Python evaluator and
    a readable HTML page of the criteria.

    \b
    Example:
      elig check sm3321_rules
      elig compile sm3321_rules -o generated
      elig evaluate --module generated/sm3321.py patients.jsonl
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
    try:
        for path, text in files.items():
            _write_atomic(path, text)
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
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False, allow_dash=True))
def evaluate(rules_dir, module_path, fmt, summary, output, jobs, input_path):
    """Screen the patient records of INPUT (a JSON object, a JSON array or JSON Lines; - for stdin).

    \b
    Example:
      elig evaluate --module generated/sm3321.py patients.jsonl > results.jsonl
      elig evaluate --rules sm3321_rules --format text patient.json
      elig evaluate --module generated/sm3321.py --summary registry.jsonl
    One result per input record, in input order, streamed; a record that cannot be read gives
    an error result and the batch goes on. Exit status 0 when every record produced a result.
    """
    from . import batch
    from .records import RecordStreamError

    if bool(rules_dir) == bool(module_path):
        _die("give exactly one of --rules RULES_DIR or --module MODULE.py", 2)
    if rules_dir:
        res = _compile(rules_dir)
        _report(res)
        if not res.ok:
            _die("the rules do not compile")
        source = batch.ModuleSource(text=res.python, name=res.lowered.module_name)
    else:
        try:
            text = Path(module_path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            _die(f"cannot read module {module_path}: {getattr(exc, 'strerror', None) or exc}")
        source = batch.ModuleSource(text=text, name=Path(module_path).stem)
    try:
        module = source.load()
    except Exception as exc:
        _die(f"{module_path or rules_dir}: not an evaluator module ({type(exc).__name__}: {exc})")
    if not hasattr(module, "evaluate_json"):
        _die(f"{module_path}: not an Elig evaluator module (no evaluate_json)")
    try:
        stream = sys.stdin if input_path == "-" else open(input_path, "r", encoding="utf-8", errors="surrogateescape")
    except OSError as exc:
        _die(f"cannot open {input_path}: {exc.strerror or exc}")
    try:
        out = open(output, "w", encoding="utf-8", errors="surrogateescape", newline="\n") if output else sys.stdout
    except OSError as exc:
        _die(f"cannot write {output}: {exc.strerror or exc}")
    progress = None
    if sys.stderr.isatty() and input_path != "-":
        progress = _progress(batch, stream)
    try:
        stats = batch.run(source, module, stream, out, fmt=fmt, summary=summary and not output,
                          collect=summary, jobs=jobs, progress=progress)
    except RecordStreamError as exc:
        _die(str(exc))
    finally:
        if stream is not sys.stdin:
            stream.close()
        if out is not sys.stdout:
            out.close()
    if summary:
        text = batch.format_summary(stats, module)
        click.echo(text)


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


# population screening on SQL engines (compiler/sql/cli_screen.py)
from .sql.cli_screen import load as _load_command, screen as _screen_command, sql as _sql_command  # noqa: E402

main.add_command(_screen_command)
main.add_command(_load_command)
main.add_command(_sql_command)


if __name__ == "__main__":  # pragma: no cover
    main()
