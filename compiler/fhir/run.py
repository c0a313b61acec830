"""FHIR in, results (or records) out: convert each patient's resources and evaluate them, on every
core for large inputs, in input order, with bounded memory (chunks in flight, never the batch)."""

from __future__ import annotations

import json
from typing import Iterable, Optional

from .. import batch as B
from ..driver import run_chunks
from .adapter import Converter, error_result
from .codes import CodeMap

CHUNK = 64
PARALLEL_THRESHOLD = 256


def _init(source, anchors_fixed, anchors_csv, mode, module=None) -> dict:
    """What a chunk is converted and evaluated with (in each worker, or here)."""
    module = module if module is not None else source.load()
    return dict(module=module, anchors_fixed=anchors_fixed, anchors_csv=anchors_csv, mode=mode,
                conv=Converter(CodeMap.from_module(module)))


def _anchors(w, pid):
    a = dict(w["anchors_fixed"] or {})
    csv = w["anchors_csv"]
    if csv is not None and pid in csv:
        a.update(csv[pid])
    return a or None


def _chunk(w, groups, collect=False, fmt="jsonl"):
    """Text of a chunk of patient groups (one line each) and, when collecting, their outcomes."""
    conv, m, mode = w["conv"], w["module"], w["mode"]
    lines, outcomes = [], ([] if collect else None)
    writer = B._writer(m).dumps if fmt == "jsonl" else None
    for pid, resources, err in groups:
        record = None
        if err is None:
            try:
                resources = [json.loads(x) if isinstance(x, str) else x for x in resources]
                record = conv.convert(resources, _anchors(w, pid), pid)
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
    stats = B.Stats.for_module(module)

    def consume(res):
        text, outcomes, n = res
        if not summary:
            out.write(text)
        stats.records += n
        if outcomes:
            stats.count(outcomes)

    initargs = (source, anchors_fixed, anchors_csv, mode)
    run_chunks(groups, _chunk, consume, init=_init, initargs=initargs, state=_init(*initargs, module),
               args=(collect, fmt), jobs=jobs, size=CHUNK, threshold=PARALLEL_THRESHOLD, noun="patients")
    return stats
