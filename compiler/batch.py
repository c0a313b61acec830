"""Batches of patient records: streaming input, ordered parallel evaluation (compiler/driver.py),
output formats.

Memory stays bounded by the number of chunks in flight, not by the number of records.
"""

from __future__ import annotations

import collections
import json
import time
import types
from dataclasses import dataclass

from .driver import WorkerDied, run_chunks  # noqa: F401  (WorkerDied: for the commands)
from .records import iter_records

CHUNK = 256
PARALLEL_THRESHOLD = 2000


@dataclass(frozen=True)
class ModuleSource:
    text: str
    name: str

    def load(self) -> types.ModuleType:
        mod = types.ModuleType(f"elig_evaluator_{self.name}")
        mod.__dict__["__name__"] = f"elig_evaluator_{self.name}"
        code = compile(self.text, f"<{self.name}.py>", "exec")
        exec(code, mod.__dict__)
        return mod


# ---------------------------------------------------------------------- evaluating


class ResultWriter:
    """Result format 1 as JSON text, byte for byte what ``json.dumps(result)`` gives (ASCII, so
    every line is valid UTF-8 whatever the input held), in about half its time: the parts that
    are the same for every patient (each criterion's id, ref and kind) are encoded once.
    A result of any other shape (an error result) goes through ``json.dumps``."""

    _KEYS = ["format", "patient_id", "trial", "status", "criteria", "warnings"]
    _KEYS_RULES = ["format", "patient_id", "trial", "rules", "status", "criteria", "warnings"]  # with the fingerprint
    _CKEYS = ["id", "ref", "kind", "outcome", "reason", "missing"]

    def __init__(self, criteria):
        enc = json.encoder.encode_basestring_ascii
        self._enc = enc
        self._heads = [(c["id"], '{"id": %s, "ref": %s, "kind": %s, "outcome": ' % (
            enc(c["id"]), enc(c["ref"]), enc(c["kind"]))) for c in criteria]
        self._words = {w: enc(w) for w in ("pass", "fail", "unknown", "review",
                                           "eligible", "ineligible", "indeterminate")}

    def dumps(self, result) -> str:
        try:
            return self._fast(result)
        except (KeyError, TypeError, ValueError, _Shape):
            return json.dumps(result)

    def _fast(self, r):
        if type(r) is not dict or r["format"] != 1 or type(r["format"]) is not int:
            raise _Shape
        keys = list(r)
        if keys == self._KEYS_RULES:
            rules = ', "rules": %s' % self._enc(r["rules"])
        elif keys == self._KEYS:
            rules = ""
        else:
            raise _Shape
        crit = r["criteria"]
        heads = self._heads
        if type(crit) is not list or len(crit) != len(heads):
            raise _Shape
        enc = self._enc
        words = self._words
        ckeys = self._CKEYS
        parts = []
        for (cid, head), c in zip(heads, crit):
            if type(c) is not dict or c["id"] != cid or list(c) != ckeys:
                raise _Shape
            m = c["missing"]
            if type(m) is not list:
                raise _Shape
            parts.append("%s%s, \"reason\": %s, \"missing\": [%s]}" % (
                head, words[c["outcome"]], enc(c["reason"]), ", ".join([enc(x) for x in m])))
        w = r["warnings"]
        if type(w) is not list:
            raise _Shape
        return '{"format": 1, "patient_id": %s, "trial": %s%s, "status": %s, "criteria": [%s], "warnings": [%s]}' % (
            enc(r["patient_id"]), enc(r["trial"]), rules, words[r["status"]], ", ".join(parts),
            ", ".join([enc(x) for x in w]))


class _Shape(Exception):
    pass


_WRITERS = {}


def _writer(m) -> ResultWriter:
    w = _WRITERS.get(id(m))
    if w is None:
        w = _WRITERS[id(m)] = ResultWriter(m.CRITERIA)
    return w


def _eval_chunk(m, lines, collect=False, fmt="jsonl"):
    """Evaluate a chunk of record texts with module m: the chunk's output text (one line per
    record) and, when collecting, each record's outcomes; the number of records and of input
    characters."""
    dumps = _writer(m).dumps if fmt == "jsonl" else format_text
    texts = []
    outcomes = [] if collect else None
    for line in lines:
        result = m.evaluate_json(line)
        texts.append(dumps(result))
        if collect:
            outcomes.append(_outcomes(result))
    n = len(texts)
    texts.append("")
    return "\n".join(texts), outcomes, n, sum(map(len, lines)) + n


def _outcomes(result):
    if result.get("status") == "error":
        return ("error", ())
    return (result["status"], tuple(c["outcome"] for c in result["criteria"]))


@dataclass
class Stats:
    records: int = 0
    statuses: collections.Counter = None
    per_criterion: list = None
    only_fail: list = None

    @classmethod
    def for_module(cls, module) -> "Stats":
        n = len(module.CRITERIA)
        return cls(0, collections.Counter(), [collections.Counter() for _ in range(n)], [0] * n)

    def count(self, outcomes):
        """Count each (status, criteria outcomes) of a chunk: per status, per criterion, and the
        criterion that alone fails."""
        for status, oc in outcomes:
            self.statuses[status] += 1
            fails = [i for i, o in enumerate(oc) if o == "fail"]
            for i, o in enumerate(oc):
                self.per_criterion[i][o] += 1
            if len(fails) == 1:
                self.only_fail[fails[0]] += 1


class Progress:
    """A progress line on a terminal: a bar with the share of the input done when its size is
    known (a file), else a count; records per second; refreshed at most twice a second."""

    def __init__(self, sink, total_bytes=None, width=30):
        self.sink = sink
        self.total = total_bytes if total_bytes else None
        self.done = 0  # characters of the records whose results are out (about their bytes)
        self.width = width
        self.start = time.monotonic()
        self.last = 0.0

    def line(self, records: int, now: float, final: bool = False) -> str:
        rate = records / max(now - self.start, 1e-9)
        tail = f"{records:,} records, {rate:,.0f}/s"
        if self.total is None:
            return tail
        done = 1.0 if final else min(self.done / self.total, 0.99)
        fill = int(done * self.width)
        eta = ""
        if 0 < done < 1:
            left = int((now - self.start) * (1 - done) / done)
            eta = f", {left // 60}:{left % 60:02d} left"
        return f"[{'#' * fill}{'.' * (self.width - fill)}] {done:4.0%} {tail}{eta}"

    def update(self, records: int, final: bool = False):
        now = time.monotonic()
        if not final and now - self.last < 0.5:
            return
        self.last = now
        self.sink.write("\r" + self.line(records, now, final) + ("\n" if final else ""))
        self.sink.flush()


def run(source: ModuleSource, module, stream, out, fmt="jsonl", summary=False, collect=False, jobs=0,
        progress: Progress | None = None) -> Stats:
    """Evaluate every record of stream, writing results to out in input order."""
    stats = Stats.for_module(module)
    records = iter_records(stream)

    def consume(results):
        text, outcomes, n, size = results
        if not summary:
            out.write(text)
        stats.records += n
        if outcomes is not None:
            stats.count(outcomes)
        if progress is not None:
            progress.done += size
            progress.update(stats.records)

    # small batches run here; large ones on every core, in order, with bounded memory
    run_chunks(records, _eval_chunk, consume, init=ModuleSource.load, initargs=(source,), state=module,
               args=(collect, fmt), jobs=jobs, size=CHUNK, threshold=PARALLEL_THRESHOLD)
    if progress is not None:
        progress.update(stats.records, final=True)
    return stats


# ---------------------------------------------------------------------- formats


def format_text(result) -> str:
    pid = result.get("patient_id")
    if result.get("status") == "error":
        text = f"{pid or '(no id)'}: error: {result.get('error')}\n"
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    lines = [f"{pid}: {result['status']}"]
    if result.get("cohorts"):
        lines.append("  cohorts: " + ", ".join(f"{k['id']} {k['status']}" for k in result["cohorts"]))
    for c in result["criteria"]:
        miss = f" [missing: {', '.join(c['missing'])}]" if c["missing"] else ""
        lines.append(f"  {c['ref']:<6} {c['id']:<40} {c['outcome']:<8} {c['reason']}{miss}")
    for w in result.get("warnings", ()):
        lines.append(f"  warning: {w}")
    text = "\n".join(lines) + "\n"
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def format_summary(stats: Stats, module) -> str:
    lines = [f"{stats.records:,} records: " + ", ".join(
        f"{k} {stats.statuses.get(k, 0):,}" for k in ("eligible", "ineligible", "indeterminate", "error"))]
    head = f"{'ref':<6} {'criterion':<40} {'pass':>8} {'fail':>8} {'unknown':>8} {'review':>8} {'fail only this':>15}"
    lines.append(head)
    for i, c in enumerate(module.CRITERIA):
        cnt = stats.per_criterion[i]
        lines.append(f"{c['ref']:<6} {c['id']:<40} {cnt.get('pass', 0):>8,} {cnt.get('fail', 0):>8,} "
                     f"{cnt.get('unknown', 0):>8,} {cnt.get('review', 0):>8,} {stats.only_fail[i]:>15,}")
    return "\n".join(lines)
