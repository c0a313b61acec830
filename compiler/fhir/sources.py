"""Where FHIR data comes from: Bundles (a file, a directory of files, JSON Lines of Bundles) and
Bulk Data exports (NDJSON files per resource type), grouped into one list of resources per
patient.

A group is (patient id, resources, error), a resource being a dict or its JSON text: `error` is set when the input that held the patient
could not be read (then resources is empty), so that every patient or unreadable input yields
exactly one result.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Iterator, Optional

from .adapter import patient_key

Group = tuple  # (patient id or None, list of resource dicts, error message or None)

_PATIENT_REF = re.compile(r"(?:^|/)Patient/([^/]+)$")


def _norm_ref(ref: Optional[str]) -> Optional[str]:
    if not isinstance(ref, str):
        return None
    m = _PATIENT_REF.search(ref)
    return "Patient/" + m.group(1) if m else ref


# ---------------------------------------------------------------------- Bundles


def bundle_groups(bundle, where: str) -> Iterator[Group]:
    """The patients of one Bundle, in the order of their Patient entries."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        rt = bundle.get("resourceType") if isinstance(bundle, dict) else None
        yield None, [], f"{where}: not a FHIR Bundle" + (f" (resourceType {rt!r})" if rt else "")
        return
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        yield None, [], f"{where}: Bundle.entry is not a list"
        return
    patients: dict[str, list] = {}
    keys: dict[str, str] = {}
    shared, loose, bad = [], [], 0
    for e in entries:
        res = e.get("resource") if isinstance(e, dict) else None
        if not isinstance(res, dict):
            bad += 1
            continue
        if res.get("resourceType") == "Patient":
            pid = res.get("id") or (e.get("fullUrl") or "").rsplit(":", 1)[-1].rsplit("/", 1)[-1] or None
            if not isinstance(pid, str) or not pid:
                yield None, [], f"{where}: a Patient entry has no id"
                continue
            patients.setdefault(pid, []).insert(0, res)
            keys["Patient/" + pid] = pid
            if isinstance(e.get("fullUrl"), str):
                keys[_norm_ref(e["fullUrl"])] = pid
        elif res.get("resourceType") == "Medication":
            shared.append(res)
        else:
            loose.append(res)
    for res in loose:
        ref = _norm_ref(patient_key(res))
        pid = keys.get(ref) if ref else None
        if pid is None and ref and ref.startswith("Patient/"):
            pid = ref[len("Patient/"):]
            keys[ref] = pid
            patients.setdefault(pid, [])
        if pid is None:
            if len(patients) == 1:
                pid = next(iter(patients))
            else:
                bad += 1
                continue
        patients.setdefault(pid, []).append(res)
    if not patients:
        yield None, [], f"{where}: the Bundle holds no patient"
        return
    for pid, resources in patients.items():
        extra = []
        if bad:
            extra.append({"resourceType": "_Unassigned", "count": bad})
        yield pid, resources + shared + extra, None


def _read_json_values(path: Path) -> Iterator[tuple[object, str]]:
    """Each JSON value of a file: one value, or JSON Lines (one a line); (value or exception, where)."""
    with open(path, "r", encoding="utf-8", errors="strict") as f:
        head = f.read(1 << 16)
        f.seek(0)
        jsonl = path.suffix in (".jsonl", ".ndjson")
        if not jsonl:
            try:
                yield json.load(f), str(path)
                return
            except (ValueError, UnicodeDecodeError) as exc:
                # one value that does not parse, unless it reads as JSON Lines
                if "\n" not in head.strip():
                    yield exc, str(path)
                    return
                f.seek(0)
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield json.loads(line), f"{path}:{n}"
            except ValueError as exc:
                yield exc, f"{path}:{n}"


def iter_bundles(path: str) -> Iterator[Group]:
    """Patient groups of a Bundle file, a JSON Lines file of Bundles, or a directory of them."""
    p = Path(path)
    files = sorted(x for x in p.iterdir() if x.suffix in (".json", ".jsonl", ".ndjson")) if p.is_dir() else [p]
    for f in files:
        try:
            for value, where in _read_json_values(f):
                if isinstance(value, Exception):
                    yield None, [], f"{where}: not JSON ({str(value)[:200]})"
                    continue
                yield from bundle_groups(value, where)
        except (OSError, UnicodeDecodeError) as exc:
            yield None, [], f"{f}: cannot read ({getattr(exc, 'strerror', None) or exc})"


# ---------------------------------------------------------------------- Bulk Data (NDJSON)


def bulk_files(export_dir: str) -> list[str]:
    p = Path(export_dir)
    if not p.is_dir():
        raise ValueError(f"{export_dir}: not a directory of NDJSON files")
    files = sorted(str(x) for x in p.iterdir() if x.name.endswith(".ndjson") and x.is_file())
    if not files:
        raise ValueError(f"{export_dir}: no .ndjson files")
    return files


def _bulk_key(res) -> Optional[str]:
    """The Patient.id a bulk resource belongs to (its own id for a Patient)."""
    if not isinstance(res, dict):
        return None
    if res.get("resourceType") == "Patient":
        pid = res.get("id")
        return pid if isinstance(pid, str) and pid else None
    ref = _norm_ref(patient_key(res))
    if ref and ref.startswith("Patient/"):
        return ref[len("Patient/"):]
    return None


def iter_bulk(export_dir: str, partition_bytes: int = 16 << 20) -> Iterator[Group]:
    """Patient groups of a Bulk Data export.

    The resources are grouped by spilling: a first pass writes every line to one of K partition
    files by a hash of its patient (K from the export's size, so that a partition holds about
    `partition_bytes`), in a private temporary directory (mode 0700, removed afterwards); then
    each partition is read alone and its patients are given out, ordered by Patient.id within
    the partition. Memory is bounded by one partition, whatever the number of patients. A
    patient's resources keep their order in the files (Patient first), and Medication resources
    (referenced, about no patient) are given to every patient."""
    import hashlib

    files = bulk_files(export_dir)
    total = sum(os.path.getsize(f) for f in files)
    k = max(1, min(4096, total // partition_bytes + 1))
    tmp = tempfile.mkdtemp(prefix="elig-fhir-bulk-")  # mode 0700: nobody else can read the spill
    meds: list = []
    orphans, bad = 0, []
    try:
        parts = [open(os.path.join(tmp, f"p{i}"), "w", encoding="utf-8") for i in range(k)]
        try:
            for path in files:
                with open(path, "r", encoding="utf-8", errors="surrogateescape") as f:
                    for n, line in enumerate(f, 1):
                        if not line.strip():
                            continue
                        try:
                            res = json.loads(line)
                        except ValueError as exc:
                            bad.append(f"{path}:{n}: not JSON ({str(exc)[:120]})")
                            continue
                        if isinstance(res, dict) and res.get("resourceType") == "Medication":
                            meds.append(res)
                            continue
                        pid = _bulk_key(res)
                        if pid is None:
                            orphans += 1
                            continue
                        h = int.from_bytes(hashlib.blake2b(pid.encode("utf-8", "surrogateescape"),
                                                           digest_size=4).digest(), "big") % k
                        # the Patient first: a sort key 0 for it, 1 for the rest (stable otherwise)
                        parts[h].write(("0" if res.get("resourceType") == "Patient" else "1") + pid.replace("\t", " ")
                                       + "\t" + line.rstrip("\n") + "\n")
        finally:
            for p in parts:
                p.close()
        for msg in bad:
            yield None, [], msg
        for i in range(k):
            groups: dict[str, list] = {}
            with open(os.path.join(tmp, f"p{i}"), "r", encoding="utf-8", errors="surrogateescape") as f:
                for line in f:
                    key, text = line.rstrip("\n").split("\t", 1)
                    g = groups.setdefault(key[1:], [])
                    if key[0] == "0":
                        g.insert(0, text)
                    else:
                        g.append(text)
            os.unlink(os.path.join(tmp, f"p{i}"))
            for pid in sorted(groups):
                yield pid, groups[pid] + meds, None  # texts: parsed where they are converted
            groups = None
        if orphans:
            yield None, [], f"{export_dir}: {orphans} resources reference no patient; not read"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------- anchors


def read_anchors_csv(path: str, known: Optional[set] = None) -> dict[str, dict]:
    """patient_id -> {anchor: ISO date}; an empty cell is an anchor not yet known (left out)."""
    import csv
    import datetime as dt

    out: dict[str, dict] = {}
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise ValueError(f"{path}: empty (expected a header patient_id,<anchor>,...)") from None
        if not header or header[0] != "patient_id":
            raise ValueError(f"{path}:1: the first column must be patient_id, not {header[0] if header else ''!r}")
        for name in header[1:]:
            if known is not None and name not in known:
                raise ValueError(f"{path}:1: unknown anchor {name!r} (this trial's anchors: {', '.join(sorted(known))})")
        if len(set(header)) != len(header):
            raise ValueError(f"{path}:1: a column is named twice")
        for n, row in enumerate(reader, 2):
            if not any(c.strip() for c in row):
                continue
            if len(row) != len(header):
                raise ValueError(f"{path}:{n}: {len(row)} cells, the header has {len(header)}")
            pid = row[0].strip()
            if not pid:
                raise ValueError(f"{path}:{n}: patient_id is empty")
            if pid in out:
                raise ValueError(f"{path}:{n}: patient {pid!r} is listed twice")
            anchors = {}
            for name, cell in zip(header[1:], row[1:]):
                cell = cell.strip()
                if not cell:
                    continue
                try:
                    dt.date.fromisoformat(cell)
                    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", cell):
                        raise ValueError
                except ValueError:
                    raise ValueError(f"{path}:{n}: {name} {cell!r} is not an ISO date (YYYY-MM-DD)") from None
                anchors[name] = cell
            out[pid] = anchors
    return out
