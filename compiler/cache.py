"""The per-user cache of derived data (LALR parse tables, folded unit facts).

Nothing here is ever unpickled or executed: entries are JSON. An entry is only used when

- it lives in the user's own cache directory (``$ELIG_CACHE_DIR``, else ``$XDG_CACHE_HOME/elig``,
  else ``~/.cache/elig``), created 0700; a directory or file that is a symbolic link, is owned by
  another user, or that others may write, is refused and nothing is cached;
- its header names the key it was built for (the content hash of what it was derived from and
  the versions of the libraries that derived it), and
- the SHA-256 of its payload matches the hash in its header.

Anything else (a corrupt, truncated, foreign, stale or edited entry) is ignored and rebuilt.
``ELIG_NO_CACHE=1`` turns the cache off.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import tempfile
from typing import Optional

MAGIC = b"elig-cache 1"
MAX_ENTRY = 64 << 20  # an entry larger than this is not ours


def enabled() -> bool:
    return os.environ.get("ELIG_NO_CACHE") != "1"


def _base() -> str:
    explicit = os.environ.get("ELIG_CACHE_DIR")
    if explicit:
        return explicit
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(root, "elig")


def _safe(st, want_dir: bool) -> bool:
    if want_dir and not stat.S_ISDIR(st.st_mode):
        return False
    if not want_dir and not stat.S_ISREG(st.st_mode):
        return False
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        return False
    return not st.st_mode & 0o022


def cache_dir() -> Optional[str]:
    """The user's cache directory, created 0700 if needed; None when it is not safe to use."""
    if not enabled():
        return None
    path = _base()
    try:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with contextlib.suppress(FileExistsError):
            os.mkdir(path, 0o700)
        st = os.lstat(path)  # a symbolic link is refused: it may point anywhere
    except OSError:
        return None
    return path if _safe(st, want_dir=True) else None


def entry_key(*parts: str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    return h.hexdigest()


def read(name: str, key: str) -> Optional[bytes]:
    """The payload of entry name when it is safe, built for key and intact; else None."""
    d = cache_dir()
    if d is None:
        return None
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(os.path.join(d, name), flags)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not _safe(st, want_dir=False) or st.st_size > MAX_ENTRY:
            return None
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(MAX_ENTRY + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    head, sep, payload = data.partition(b"\n")
    if not sep:
        return None
    fields = head.split(b" ")
    if len(fields) != 4 or b" ".join(fields[:2]) != MAGIC:
        return None
    if fields[2] != key.encode("ascii") or fields[3] != hashlib.sha256(payload).hexdigest().encode("ascii"):
        return None
    return payload


def write(name: str, key: str, payload: bytes) -> bool:
    """Store an entry (atomically, 0600); False when there is no safe cache directory."""
    d = cache_dir()
    if d is None:
        return False
    head = b"%s %s %s\n" % (MAGIC, key.encode("ascii"), hashlib.sha256(payload).hexdigest().encode("ascii"))
    try:
        fd, tmp = tempfile.mkstemp(prefix="." + name + ".", suffix=".tmp", dir=d)
    except OSError:
        return False
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(head + payload)
        os.replace(tmp, os.path.join(d, name))
        return True
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        return False


# ---------------------------------------------------------------------- JSON with tuples

def dumps_tagged(obj) -> bytes:
    """JSON that keeps tuples and non-string dictionary keys (as Lark's serialised tables need)."""
    return json.dumps(_tag(obj), separators=(",", ":")).encode("utf-8")


def loads_tagged(data: bytes):
    return json.loads(data.decode("utf-8"), object_hook=_untag)


def _tag(x):
    t = type(x)
    if t is dict:
        return {"d": [[_tag(k), _tag(v)] for k, v in x.items()]}
    if t is tuple:
        return {"t": [_tag(v) for v in x]}
    if t is list:
        return [_tag(v) for v in x]
    if x is None or t in (str, int, float, bool):
        return x
    raise TypeError(f"cannot cache a {t.__name__}")


def _untag(o):
    if len(o) != 1:
        raise ValueError("not a tagged value")
    if "d" in o:
        return {k: v for k, v in o["d"]}
    if "t" in o:
        return tuple(o["t"])
    raise ValueError("not a tagged value")
