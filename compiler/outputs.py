"""Output files that cannot destroy their input or look complete when they are not.

- ``elig evaluate -o FILE`` writes to a temporary file beside FILE and renames it over FILE only
  when every record has its result; a run that is killed, interrupted or fails leaves FILE as it
  was (the temporary file is removed where the process can still do it).
- An output that is the input (or the evaluator module) is refused, compared by device and inode,
  so that another name, a hard link or a symbolic link for it is refused too.
- An output that is not a regular file (a pipe, ``/dev/stdout``, ``/dev/null``) is written in place.
- Files are created with the permissions the umask gives (0666 & ~umask), not mkstemp's 0600.
- SIGTERM and SIGINT end the run with one line on standard error and no traceback; a closed
  standard output (``| head``) ends it quietly.
"""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import sys
import tempfile


class OutputError(Exception):
    pass


def current_umask() -> int:
    """The process's umask (read without changing it where /proc says it; else set and restored)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def _identity(st):
    return (st.st_dev, st.st_ino)


def _file_identity(f):
    try:
        st = os.fstat(f.fileno())
    except (AttributeError, OSError, ValueError):
        return None
    return _identity(st) if stat.S_ISREG(st.st_mode) else None


class ResultOutput:
    """Where results go: standard output, a file written through a temporary file, or a
    non-regular file written in place."""

    def __init__(self, path, input_stream=None, module_path=None):
        self.path = path
        self.tmp = None
        protected = {}
        ident = _file_identity(input_stream) if input_stream is not None else None
        if ident is not None:
            protected[ident] = "the input file"
        if module_path:
            try:
                st = os.stat(module_path)
                protected[_identity(st)] = "the evaluator module"
            except OSError:
                pass
        if path is None:
            ident = _file_identity(sys.stdout)
            if ident is not None and ident in protected:
                raise OutputError(f"standard output is {protected[ident]}; write the results elsewhere")
            self.file = sys.stdout
            return
        target = os.path.realpath(path)
        try:
            st = os.stat(target)
        except FileNotFoundError:
            st = None
        except OSError as exc:
            raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
        if st is not None and _identity(st) in protected:
            raise OutputError(f"-o {path} is {protected[_identity(st)]}; write the results to another file")
        if st is not None and stat.S_ISDIR(st.st_mode):
            raise OutputError(f"cannot write {path}: it is a directory")
        try:
            if st is not None and not stat.S_ISREG(st.st_mode):
                self.file = open(target, "w", encoding="utf-8", errors="surrogateescape", newline="\n")
                return
            directory = os.path.dirname(target) or "."
            fd, self.tmp = tempfile.mkstemp(prefix="." + os.path.basename(target) + ".", suffix=".part", dir=directory)
            os.fchmod(fd, 0o666 & ~current_umask())
            self.file = os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape", newline="\n")
        except OSError as exc:
            raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
        self.target = target

    def commit(self):
        """Every result is written: make the file appear, complete, under its name."""
        f = self.file
        if f is sys.stdout:
            f.flush()
            return
        f.flush()
        if self.tmp is not None:
            os.fsync(f.fileno())
        f.close()
        if self.tmp is not None:
            os.replace(self.tmp, self.target)
            self.tmp = None

    def abandon(self):
        """The run did not finish: leave the output file as it was."""
        if self.file is not sys.stdout:
            with contextlib.suppress(OSError, ValueError):
                self.file.close()
        if self.tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.tmp)
            self.tmp = None


@contextlib.contextmanager
def guard_signals(out: ResultOutput):
    """SIGTERM / SIGINT / a closed standard output end the run cleanly: no traceback, no
    partial output file, exit status 128 + signal (141 for a closed pipe).

    A signal ends the process from its handler, at once: the temporary output file is removed
    and the process exits, without unwinding through the worker pool (terminating a pool whose
    workers were killed mid-task can deadlock on a lock a dead worker held). The workers end
    with the process (compiler.driver._end_with_parent)."""

    def on_signal(signum, frame):
        if out.tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(out.tmp)
        note = f"; {out.path} was not written" if out.path else ""
        with contextlib.suppress(OSError):
            os.write(2, f"elig: stopped by {signal.Signals(signum).name}{note}\n".encode())
        os._exit(128 + signum)

    old_term = signal.signal(signal.SIGTERM, on_signal)
    old_int = signal.signal(signal.SIGINT, on_signal)
    try:
        yield
    except BrokenPipeError:
        out.abandon()
        _quiet_stdout()
        os._exit(141)
    finally:
        signal.signal(signal.SIGTERM, old_term)
        signal.signal(signal.SIGINT, old_int)


def _quiet_stdout():
    """Nothing more reaches a closed or abandoned standard output (no 'Exception ignored')."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def write_files_together(files: dict, out_dir) -> None:
    """Write several files of one compile (the evaluator and its page) so that they are replaced
    together or not at all: each is written and synced to a temporary file beside it first; the
    renames then happen back to back under a lock on the directory (concurrent compiles into one
    directory take turns), and if one rename fails the files already renamed are put back.
    New files get the permissions the umask gives, like any file the user creates."""
    import fcntl

    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    mode = 0o666 & ~current_umask()
    temps = []
    dir_fd = None
    try:
        for path, text in files.items():
            path = os.fspath(path)
            fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                                       dir=os.path.dirname(path) or ".")
            temps.append((tmp, path))
            os.fchmod(fd, mode)
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
        dir_fd = os.open(out_dir, os.O_RDONLY)
        fcntl.flock(dir_fd, fcntl.LOCK_EX)
        backups = []  # (backup, path) of files replaced so far, to put back on failure
        made = []  # every backup link made
        try:
            for tmp, path in temps:
                backup = None
                if os.path.exists(path):
                    backup = tempfile.mktemp(prefix="." + os.path.basename(path) + ".", suffix=".old",
                                             dir=os.path.dirname(path) or ".")
                    os.link(path, backup)
                    made.append(backup)
                os.replace(tmp, path)
                backups.append((backup, path))
        except BaseException:
            for backup, path in reversed(backups):
                with contextlib.suppress(OSError):
                    if backup is None:
                        os.unlink(path)
                    else:
                        os.replace(backup, path)
            raise
        finally:
            for backup in made:
                with contextlib.suppress(OSError):
                    os.unlink(backup)
    finally:
        for tmp, _ in temps:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        if dir_fd is not None:
            os.close(dir_fd)
