"""FHIR in, results (or records) out: convert each patient's resources and evaluate them, on every
core for large inputs, in input order, with bounded memory (chunks in flight, never the batch)."""

from __future__ import annotations

import collections
import json
import multiprocessing
import sys
from typing import Iterable, Optional

from .. import batch as B
from .adapter import Converter, error_result
from .codes import CodeMap

CHUNK = 64
PARALLEL_THRESHOLD = 256

_W: dict = {}


def _init(source, anchors_fixed, anchors_csv, mode, module=None):
    module = module if module is not None else source.load()
    _W.update(module=module, anchors_fixed=anchors_fixed, anchors_csv=anchors_csv, mode=mode,
              conv=Converter(CodeMap.from_module(module)))


def _anchors(pid):
    a = dict(_W["anchors_fixed"] or {})
    csv = _W["anchors_csv"]
    if csv is not None and pid in csv:
        a.update(csv[pid])
    return a or None


def _chunk(groups, collect=False, fmt="jsonl"):
    """Text of a chunk of patient groups (one line each) and, when collecting, their outcomes."""
    conv, m, mode = _W["conv"], _W["module"], _W["mode"]
    lines, outcomes = [], ([] if collect else None)
    writer = B._writer(m).dumps if fmt == "jsonl" else None
    for pid, resources, err in groups:
        record = None
        if err is None:
            try:
                resources = [json.loads(x) if isinstance(x, str) else x for x in resources]
                record = conv.convert(resources, _anchors(pid), pid)
            except Exception as exc:  # PatientError, or a defect: one error result, the batch goes on
                msg = str(exc) if type(exc).__name__ == "PatientError" else f"internal error converting: {type(exc).__name__}"
                err = f"fhir: {msg}"
        if mode == "records":
            lines.append(json.dumps(record if record is not None else {"id": pid, "error": err}, ensure_ascii=False))
            continue
        result = m.evaluate(record) if record is not None else error_result(pid, err)
        lines.append(writer(result) if writer is not None else B.format_text(result))
        if collect:
            outcomes.append(B._outcomes(result))
    lines.append("")
    return "\n".join(lines), outcomes, len(groups)


def run(groups: Iterable, out, *, source, module, anchors_fixed: Optional[dict] = None,
        anchors_csv: Optional[dict] = None, mode: str = "results", fmt: str = "jsonl", summary: bool = False,
        collect: bool = False, jobs: int = 0) -> B.Stats:
    """Write one line per patient group to out (a result, or in mode "records" a format-1 record);
    with summary, write nothing and only count (collect)."""
    _init(source, anchors_fixed, anchors_csv, mode, module)
    n_crit = len(module.CRITERIA)
    stats = B.Stats(0, collections.Counter(), [collections.Counter() for _ in range(n_crit)], [0] * n_crit)

    def consume(res):
        text, outcomes, n = res
        if not summary:
            out.write(text)
        stats.records += n
        for status, oc in outcomes or ():
            stats.statuses[status] += 1
            fails = [i for i, o in enumerate(oc) if o == "fail"]
            for i, o in enumerate(oc):
                stats.per_criterion[i][o] += 1
            if len(fails) == 1:
                stats.only_fail[fails[0]] += 1

    chunks = B._chunks(groups, CHUNK)
    first = []
    for c in chunks:
        first.append(c)
        if len(first) * CHUNK >= PARALLEL_THRESHOLD:
            break
    workers = jobs if jobs > 0 else (multiprocessing.cpu_count() or 1)
    big = len(first) * CHUNK >= PARALLEL_THRESHOLD
    efmt = fmt
    if workers <= 1 or jobs == 1 or (jobs == 0 and not big):
        for c in first:
            consume(_chunk(c, collect, efmt))
        for c in chunks:
            consume(_chunk(c, collect, efmt))
        return stats
    ctx = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    with ctx.Pool(workers, initializer=_init, initargs=(source, anchors_fixed, anchors_csv, mode)) as pool:
        pending = collections.deque()
        for c in _concat(first, chunks):
            pending.append(pool.apply_async(_chunk, (c, collect, efmt)))
            if len(pending) >= workers * 4:
                consume(pending.popleft().get())
        while pending:
            consume(pending.popleft().get())
    return stats


def _concat(first, rest):
    yield from first
    yield from rest
