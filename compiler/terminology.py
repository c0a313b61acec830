"""Code systems a vocabulary may cite (`code SYSTEM "CODE"`), their code formats and FHIR URIs.

The checker validates every declared code against its system's format (and check digit where the
system has one: LOINC's mod-10, SNOMED CT's Verhoeff); the FHIR adapter (`compiler/fhir/`) maps
FHIR codings to vocabulary names through the same table. ICD-10-CM and ATC are hierarchies: a
declared code is a prefix (`C78` covers `C78.7` and `C78.01`; `L01` covers `L01XC18`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class System:
    name: str  # as written in a rule file
    title: str  # as shown on the criteria page
    uris: tuple[str, ...]  # FHIR Coding.system values, the canonical one first
    pattern: str  # regular expression a code must match
    example: str
    prefix: bool  # a declared code covers every code it is a prefix of


SYSTEMS: dict[str, System] = {s.name: s for s in (
    System("loinc", "LOINC", ("http://loinc.org",), r"[1-9][0-9]{0,6}-[0-9]", "718-7", False),
    System("snomed", "SNOMED CT", ("http://snomed.info/sct",), r"[1-9][0-9]{5,17}", "254637007", False),
    System("icd10", "ICD-10-CM", ("http://hl7.org/fhir/sid/icd-10-cm", "http://hl7.org/fhir/sid/icd-10"),
           r"[A-Z][0-9]([0-9A-Z](\.[0-9A-Z]{1,4})?)?", "C78.7", True),
    System("atc", "ATC", ("http://www.whocc.no/atc",),
           r"[ABCDGHJLMNPRSV]([0-9]{2}([A-Z]([A-Z]([0-9]{2})?)?)?)?", "L01XC18", True),
    System("rxnorm", "RxNorm", ("http://www.nlm.nih.gov/research/umls/rxnorm",), r"[1-9][0-9]{0,8}", "3264", False),
    System("cpt", "CPT", ("http://www.ama-assn.org/go/cpt",), r"[0-9]{4}[0-9FTU]", "77427", False),
    System("cvx", "CVX", ("http://hl7.org/fhir/sid/cvx",), r"[0-9]{1,3}", "03", False),
    System("meddra", "MedDRA", ("http://terminology.hl7.org/CodeSystem/mdr",), r"[1-9][0-9]{7}", "10019211", False),
    System("ucum", "UCUM", ("http://unitsofmeasure.org",), r"\S+", "g/L", False),
)}

URI_TO_SYSTEM: dict[str, str] = {u: s.name for s in SYSTEMS.values() for u in s.uris}

# Verhoeff tables (SNOMED CT identifiers end in a Verhoeff check digit)
_D = [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 2, 3, 4, 0, 6, 7, 8, 9, 5], [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
      [3, 4, 0, 1, 2, 8, 9, 5, 6, 7], [4, 0, 1, 2, 3, 9, 5, 6, 7, 8], [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
      [6, 5, 9, 8, 7, 1, 0, 4, 3, 2], [7, 6, 5, 9, 8, 2, 1, 0, 4, 3], [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
      [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]]
_P = [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 5, 7, 6, 2, 8, 3, 0, 9, 4], [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
      [8, 9, 1, 6, 0, 4, 3, 5, 2, 7], [9, 4, 5, 3, 1, 2, 6, 8, 7, 0], [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
      [2, 7, 9, 3, 8, 0, 6, 4, 1, 5], [7, 0, 4, 6, 9, 1, 3, 2, 5, 8]]


def _verhoeff_ok(digits: str) -> bool:
    c = 0
    for i, ch in enumerate(reversed(digits)):
        c = _D[c][_P[i % 8][int(ch)]]
    return c == 0


def _loinc_ok(code: str) -> bool:
    """LOINC's check digit: mod 10 over the digits before the hyphen (LOINC Users' Guide)."""
    body, check = code.split("-")
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            d = d // 10 + d % 10
        total += d
    return (10 - total % 10) % 10 == int(check)


def code_error(system: str, code: str) -> Optional[str]:
    """Why `code` is not a valid code of `system` (a known system name), or None."""
    s = SYSTEMS[system]
    if not re.fullmatch(s.pattern, code):
        article = "an" if s.title[0] in "AEIOU" else "a"
        return f"'{code}' is not {article} {s.title} code (for example \"{s.example}\")"
    if system == "loinc" and not _loinc_ok(code):
        return f"'{code}' is not a LOINC code: its check digit is wrong"
    if system == "snomed" and not _verhoeff_ok(code):
        return f"'{code}' is not a SNOMED CT identifier: its check digit is wrong"
    return None


def normalise(system: str, code: str) -> str:
    """The form codes are compared in (ICD-10 without its dot, upper case)."""
    if system == "icd10":
        return code.replace(".", "").strip().upper()
    if system == "atc":
        return code.strip().upper()
    if system == "cvx":
        return code.strip().lstrip("0") or "0"
    return code.strip()


def matches(system: str, declared: str, found: str) -> bool:
    d, f = normalise(system, declared), normalise(system, found)
    if SYSTEMS[system].prefix:
        return f.startswith(d)
    return f == d
