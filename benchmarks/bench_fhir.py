"""FHIR Bulk Data in, results out: `elig evaluate --from fhir-bulk` end to end beside the
format-1 path on the same patients, in the same run.

The patients are benchmark cohort records (`cohort.py`), turned into FHIR R4 as Synthea writes
it (`tests/fhir_synthea.py`: LOINC/SNOMED/RxNorm/ATC codings with displays, UCUM quantities,
dateTimes with zones), written as a Bulk Data export (one NDJSON file per resource type,
`Patient/<id>` references, files not in patient order) plus an anchors CSV; the format-1 path
screens the same content (the projection of each record that FHIR carries) as JSON Lines.

    python benchmarks/bench_fhir.py                 # 10,000 patients, memory at 1,000 and 10,000
    python benchmarks/bench_fhir.py --patients 100000
    python benchmarks/bench_fhir.py --patients 100000 --work /tmp/fhir-bench --reuse   # keep / reuse exports
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import cohort  # noqa: E402
from bench import _run_measured  # noqa: E402
from fhir_synthea import to_fhir  # noqa: E402


def write_export(n: int, out: Path, module) -> dict:
    """A Bulk Data export of n cohort patients in out/, the same patients' format-1 records in
    out/records.jsonl and their anchors in out/anchors.csv; streamed, one patient at a time."""
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    counts = {}
    recs = open(out / "records.jsonl", "w", encoding="utf-8")
    anchors = open(out / "anchors.csv", "w", encoding="utf-8")
    anchors.write("patient_id,screening,enrollment,first_dose\n")
    try:
        for rec in cohort.generate(n, seed=3321, corrupt_rate=0.0):
            bundle, proj = to_fhir(rec, module.TERMINOLOGY)
            pid = proj["id"]
            a = proj.get("anchors", {})
            anchors.write(f"{pid},{a.get('screening', '')},{a.get('enrollment', '')},{a.get('first_dose', '')}\n")
            recs.write(json.dumps(proj) + "\n")
            for e in bundle["entry"]:
                res = e["resource"]
                for key in ("subject", "patient"):
                    if key in res:
                        res[key] = {"reference": "Patient/" + pid}
                rt = res["resourceType"]
                f = files.get(rt)
                if f is None:
                    f = files[rt] = open(out / f"{rt}.ndjson", "w", encoding="utf-8")
                f.write(json.dumps(res, separators=(",", ":")) + "\n")
                counts[rt] = counts.get(rt, 0) + 1
    finally:
        recs.close()
        anchors.close()
        for f in files.values():
            f.close()
    size = sum(p.stat().st_size for p in out.glob("*.ndjson"))
    return {"patients": n, "resources": sum(counts.values()), "by_type": counts, "ndjson_mib": size / 2 ** 20}


def export_info(n: int, d: Path) -> dict:
    """The figures write_export returns, counted from an export written before."""
    counts = {}
    for p in sorted(d.glob("*.ndjson")):
        with open(p, "rb") as f:
            counts[p.stem] = sum(1 for line in f if line.strip())
    size = sum(p.stat().st_size for p in d.glob("*.ndjson"))
    return {"patients": n, "resources": sum(counts.values()), "by_type": counts, "ndjson_mib": size / 2 ** 20}


def bench(n: int, work: Path, module_path: Path, module, reuse: bool = False) -> dict:
    d = work / f"export-{n}"
    if reuse and (d / "records.jsonl").exists() and (d / "anchors.csv").exists():
        info = export_info(n, d)
    else:
        info = write_export(n, d, module)
    elig = f"{sys.executable} -m compiler.cli"
    fhir_out = work / f"fhir-{n}.jsonl"
    rec_out = work / f"records-{n}.jsonl"
    cpu0 = _cpu_children()
    wall_f, rss_f = _run_measured(f"cd {ROOT} && {elig} evaluate --module {module_path} --from fhir-bulk {d} "
                                  f"--anchors {d / 'anchors.csv'} -o {fhir_out}")
    cpu1 = _cpu_children()
    wall_r, rss_r = _run_measured(f"cd {ROOT} && {elig} evaluate --module {module_path} {d / 'records.jsonl'} "
                                  f"-o {rec_out}")
    cpu2 = _cpu_children()
    # the same outcomes both ways (bulk output is ordered by Patient.id)
    by_id = {}
    with open(rec_out, encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            by_id[r["patient_id"]] = (r["status"], [c["outcome"] for c in r["criteria"]])
    same = 0
    with open(fhir_out, encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            same += by_id.get(r["patient_id"]) == (r["status"], [c["outcome"] for c in r["criteria"]])
    return {**info, "fhir_seconds": wall_f, "fhir_patients_per_s": n / wall_f, "fhir_peak_rss_mib": rss_f,
            "fhir_cpu_ms_per_patient": (cpu1 - cpu0) / n * 1000,
            "records_seconds": wall_r, "records_per_s": n / wall_r, "records_peak_rss_mib": rss_r,
            "records_cpu_ms_per_record": (cpu2 - cpu1) / n * 1000, "same_outcomes": same}


def _cpu_children() -> float:
    """CPU seconds (user + system) of the finished child processes of this one, their own
    children included: on a shared machine, the cost of a run that wall time hides."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--patients", type=int, default=10_000)
    ap.add_argument("--small", type=int, default=1_000, help="a smaller run, for memory growth")
    ap.add_argument("--module", default=str(ROOT / "generated" / "sm3321.py"))
    ap.add_argument("--json", help="also write the figures here")
    ap.add_argument("--work", help="keep the exports (export-N/) and outputs in this directory, not a temporary one")
    ap.add_argument("--reuse", action="store_true", help="with --work: screen an export-N/ written by an earlier run")
    args = ap.parse_args()
    from compiler.batch import ModuleSource

    module_path = Path(args.module).resolve()
    module = ModuleSource(module_path.read_text(encoding="utf-8"), "m").load()
    if args.work:  # exports kept there, and read again by a later run with --reuse
        work = Path(args.work)
        work.mkdir(parents=True, exist_ok=True)
        small = bench(args.small, work, module_path, module, args.reuse)
        big = bench(args.patients, work, module_path, module, args.reuse)
    else:
        with tempfile.TemporaryDirectory(prefix="elig-bench-fhir-") as tmp:
            work = Path(tmp)
            small = bench(args.small, work, module_path, module)
            big = bench(args.patients, work, module_path, module)
    res = {"small": small, "large": big,
           "memory_ratio": big["fhir_peak_rss_mib"] / small["fhir_peak_rss_mib"],
           "fhir_vs_records_time": big["fhir_seconds"] / big["records_seconds"],
           "fhir_vs_records_cpu": big["fhir_cpu_ms_per_patient"] / big["records_cpu_ms_per_record"]}
    print(f"| measure | {args.small:,} patients | {args.patients:,} patients |")
    print("| --- | --- | --- |")
    print(f"| resources (NDJSON MiB) | {small['resources']:,} ({small['ndjson_mib']:.0f}) | "
          f"{big['resources']:,} ({big['ndjson_mib']:.0f}) |")
    for key, label, fmt in (("fhir_seconds", "`--from fhir-bulk`, seconds", "{:.1f}"),
                            ("fhir_patients_per_s", "`--from fhir-bulk`, patients/s", "{:,.0f}"),
                            ("fhir_peak_rss_mib", "`--from fhir-bulk`, peak MiB (largest process)", "{:.0f}"),
                            ("fhir_cpu_ms_per_patient", "`--from fhir-bulk`, CPU ms a patient (all processes)", "{:.2f}"),
                            ("records_seconds", "format-1 records, seconds", "{:.1f}"),
                            ("records_per_s", "format-1 records, records/s", "{:,.0f}"),
                            ("records_peak_rss_mib", "format-1 records, peak MiB", "{:.0f}"),
                            ("records_cpu_ms_per_record", "format-1 records, CPU ms a record (all processes)", "{:.2f}"),
                            ("same_outcomes", "patients with the same outcomes both ways", "{:,}")):
        print(f"| {label} | {fmt.format(small[key])} | {fmt.format(big[key])} |")
    print(f"peak memory {args.patients:,} vs {args.small:,} patients: {res['memory_ratio']:.2f} x; "
          f"FHIR bulk takes {res['fhir_vs_records_time']:.1f} x the time of format-1 records "
          f"({res['fhir_vs_records_cpu']:.1f} x their CPU time)")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
