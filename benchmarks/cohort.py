#!/usr/bin/env python3
"""Deterministic synthetic cohort of SM3321 patient records (patient record format 1).

Usable as a module::

    from benchmarks.cohort import generate, write_jsonl
    for rec in generate(1000, seed=3321, corrupt_rate=0.01):
        ...   # dict (a normal record) or str (the raw JSON line of a corrupted record)

and as a script::

    python benchmarks/cohort.py 100000 -o cohort.jsonl --seed 3321 --corrupt-rate 0.01

Standard library only. Records are produced lazily, one at a time; record ``i`` is generated
from its own ``random.Random`` seeded with an integer derived from ``(seed, i)``, so the output
depends only on ``n``, ``seed`` and ``corrupt_rate`` (not on PYTHONHASHSEED, and record ``i``
is the same whatever ``n`` is). The decision to corrupt record ``i`` is always the first draw of
its generator, so changing ``corrupt_rate`` changes only the records that become corrupted.

What the cohort looks like
--------------------------
* Anchors: ``screening`` uniformly in 2025-01-01 .. 2027-12-10, ``enrollment`` 5-10 days later
  (mode 7), ``first_dose`` 1-6 days after that (mode 3). About 1 % of records lack one anchor,
  0.5 % have enrollment/first_dose swapped.
* Patients: 50 % female; age triangular 25-86 (mode 62); ~2 % are within days of their 18th
  birthday at screening (some born on 29 February 2008, screened around 1 March 2026).
* Observations: 30-80 per record. A lab panel (hemoglobin, platelets, neutrophils, ast, alt,
  total_bilirubin, serum_creatinine, inr) is drawn at 2-5 dates: a screening draw that is
  usually 8-17 days before first_dose (outside the 7-day lab window), usually one draw inside
  the window (enrollment, the day before, Day 1, or exactly 7 days before), sometimes old draws
  1-4 months earlier, rarely a post-dose draw. Vital signs (blood pressure, temperature,
  weight) at 1-5 visits; ECOG, life expectancy, RECIST lesions, ECG QTcF (sometimes in
  triplicate), LVEF, hepatitis B/C serology, CD4 for HIV, pregnancy test for fertile women.
  For every limit of SM3321's criteria a patient is "near the limit" with probability ~0.2 (the
  value is then the limit in the displayed unit plus a few rounding steps, so values exactly
  at the limit are common: 9.0 g/dL, 100.4 [degF], INR 1.8 with ULN 1.2, QTcF 0.45 s ...);
  otherwise it comes from a plausible population distribution. Units vary per site
  (g/L | g/dL, 10*9/L | 10*3/uL | /uL, umol/L | mg/dL, kg | [lb_av], Cel | [degF],
  mm[Hg] | kPa, ms | s, wk | mo | d, /uL | 10*6/L | 10*9/L), rounded as labs report them.
  Serum creatinine is drawn so that Cockcroft-Gault clearance is around 50 mL/min for ~30 %
  of patients (a few exactly 50 with mg/dL creatinine), log-normal around 85 otherwise.
* Conditions: an active solid_tumor for ~98 % (attributes almost always), liver metastasis
  ~25 %, Gilbert ~4 %, CNS metastasis ~8 % (with treated/stable_since/...), HIV ~3 %, other
  malignancy ~6 %, unresolved toxicity ~20 %, cardiac, infectious, thrombotic, autoimmune and
  psychiatric conditions at low rates, and common comorbidities outside the vocabulary
  (hypertension, type_2_diabetes, copd ...), which a checker reports as warnings.
* Treatments: 0-5 prior anticancer lines (chemotherapy, fluoropyrimidines, nitrosoureas,
  mitomycin, anti-PD-1/PD-L1, targeted and small-molecule drugs, herbal, investigational), the
  last one often ending within 2-8 weeks of first_dose, with half_life given for about half of
  the agents; growth factors, transfusions, corticosteroids (daily_dose/route/purpose around
  10 mg prednisone equivalent), immunosuppressants, immunomodulators, live vaccines at low
  rates; concomitant medications with no class.
* Procedures: radiotherapy ~30 % (fractions, intent), major surgery ~45 %, rare CABG and
  transplants, and biopsies/port placements (codes outside the vocabulary).
* Facts: the nine SM3321 facts, mostly true/false, each absent ~3 % of the time (and
  ``contraception_agreement`` often, ``fever_explained`` usually, left out when irrelevant).
* Defects always present at a low rate (~2-3 % of items): missing uln/lloq, a value written as
  a string ("9.8", "12,5", "<20", "pending"), a unit not convertible to the concept's unit
  (hemoglobin in mmol/L, neutrophils in %, INR in s ...), a missing unit, a misspelt or unknown
  code, an impossible or non-ISO date ("2026-02-30", "2026-13-05", "05/01/2026", "", null), a
  null value, an attribute of the wrong type, an absent or non-boolean fact.
* With ``corrupt_rate`` > 0, each record is independently replaced, with that probability, by
  a corrupted JSON line (a str): truncated JSON, a non-object JSON value, text that is not
  JSON, trailing garbage, ``"format": 2`` / missing / ``"1"``, missing / empty / numeric id,
  observations/conditions/treatments/procedures that are not lists, anchors/facts that are not
  objects, NaN / Infinity / -Infinity / 1e400 / -1e400 written into a value, huge integers
  (400 digits, and 5000 digits which exceed Python's default int-string limit).
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import os
import random
import sys
from typing import IO, Iterator

__all__ = ["generate", "write_jsonl", "main"]

# ---------------------------------------------------------------------------------------------
# Dates

_date = datetime.date
_ORD_2025 = _date(2025, 1, 1).toordinal()
_SCREEN_SPAN = _date(2027, 12, 10).toordinal() - _ORD_2025 + 1
_ISO: dict[int, str] = {}


def _iso(o: int) -> str:
    s = _ISO.get(o)
    if s is None:
        s = _ISO[o] = _date.fromordinal(o).isoformat()
    return s


def _is_leap(y: int) -> bool:
    return y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)


def _bad_date(rng: random.Random, o: int):
    """An unusable date near ordinal ``o``: impossible, not ISO, empty or null."""
    d = _date.fromordinal(o)
    y, m, dd = d.year, d.month, d.day
    k = rng.randrange(11)
    if k == 0:
        return f"{y}-02-30"
    if k == 1:
        return f"{y}-02-29" if not _is_leap(y) else f"{y}-02-31"
    if k == 2:
        return f"{y}-{rng.choice((4, 6, 9, 11)):02d}-31"
    if k == 3:
        return f"{y}-13-{dd:02d}"
    if k == 4:
        return f"{y}-{m:02d}-00"
    if k == 5:
        return f"{dd:02d}/{m:02d}/{y}"
    if k == 6:
        return f"{y}/{m:02d}/{dd:02d}"
    if k == 7:
        return f"{y}-{m}-{dd}" if (m < 10 or dd < 10) else f"{y}-{m:02d}-{dd:02d}x"
    if k == 8:
        return ""
    if k == 9:
        return None
    return "unknown"


# ---------------------------------------------------------------------------------------------
# Numbers


def _q(x: float, quantum: float, nd: int):
    """Round ``x`` to a multiple of ``quantum`` as a lab would report it (int if nd == 0)."""
    k = round(x / quantum)
    if nd <= 0:
        return int(k * quantum)
    return round(k * quantum, nd)


def _near(rng: random.Random, limit: float, quantum: float, nd: int, span: int):
    """A reported value within ``span`` rounding steps of ``limit`` (often exactly at it)."""
    k = round(limit / quantum) + rng.randint(-span, span)
    if nd <= 0:
        return int(k * quantum)
    return round(k * quantum, nd)


def _clamp(x: float, lo: float, hi: float) -> float:
    return lo if x < lo else hi if x > hi else x


P_NEAR = 0.2  # probability that a patient is near a given limit

# unit tables: (unit, factor from the canonical unit, quantum, decimals, weight)
_HB_UNITS = (("g/L", 1.0, 1, 0, 55), ("g/dL", 0.1, 0.1, 1, 45))
_PLT_UNITS = (("10*9/L", 1.0, 1, 0, 50), ("10*3/uL", 1.0, 1, 0, 38), ("/uL", 1000.0, 1000, 0, 12))
_ANC_UNITS = (("10*9/L", 1.0, 0.01, 2, 45), ("10*9/L", 1.0, 0.1, 1, 15),
              ("10*3/uL", 1.0, 0.01, 2, 28), ("/uL", 1000.0, 10, 0, 12))
_CREA_UNITS = (("umol/L", 10000.0 / 113.12, 1, 0, 60), ("mg/dL", 1.0, 0.01, 2, 30),
               ("mg/dL", 1.0, 0.1, 1, 10))  # canonical here: mg/dL
_BILI_UNITS = (("umol/L", 1.0, 1, 0, 50), ("umol/L", 1.0, 0.1, 1, 15),
               ("mg/dL", 584.66 / 10000.0, 0.1, 1, 20), ("mg/dL", 584.66 / 10000.0, 0.01, 2, 15))
_BILI_ULN = {"umol/L": (17, 20, 21, 20.5, 22, 24), "mg/dL": (1.0, 1.2, 1.1, 1.3)}
_WT_UNITS = (("kg", 1.0, 0.1, 1, 70), ("kg", 1.0, 1, 0, 15), ("[lb_av]", 1 / 0.45359237, 0.1, 1, 15))
_QT_UNITS = (("ms", 1.0, 1, 0, 88), ("s", 0.001, 0.001, 3, 12))
_BP_UNITS = (("mm[Hg]", 1.0, 1, 0, 94), ("kPa", 0.133322387415, 0.1, 1, 6))
_CD4_UNITS = (("/uL", 1.0, 1, 0, 60), ("10*6/L", 1.0, 1, 0, 25), ("10*9/L", 0.001, 0.01, 2, 15))
_AST_ULN = (35, 40, 40, 45, 50, 33)
_ALT_ULN = (40, 45, 50, 55, 35, 41)
_INR_ULN = (1.1, 1.2, 1.2, 1.3, 1.15, 1.25)


def _pick_unit(rng: random.Random, table):
    x = rng.random() * sum(t[4] for t in table)
    for t in table:
        x -= t[4]
        if x < 0:
            return t
    return table[-1]


# ---------------------------------------------------------------------------------------------
# Defects inside items

_BAD_UNIT = {
    "hemoglobin": ("mmol/L", "%", "g"), "platelets": ("%", "fL"), "neutrophils": ("%",),
    "ast": ("mg/dL", "%"), "alt": ("mg/dL", "%"), "total_bilirubin": ("U/L", "%"),
    "serum_creatinine": ("mL/min", "U/L"), "weight": ("cm", "m"), "inr": ("s", "%"),
    "life_expectancy": ("mL", "kg"), "qtcf": ("/min", "mm[Hg]"), "lvef": ("mL", "ms"),
    "systolic_bp": ("%", "cm"), "diastolic_bp": ("%", "cm"), "body_temperature": ("mm[Hg]", "%"),
    "cd4_count": ("%",), "hbv_dna": ("{copies}/mL", "g/L"), "ecog": ("%",),
    "recist_evaluable_lesions": ("mm",),
}
_TYPO = {
    "hemoglobin": ("haemoglobin", "Hemoglobin", "hgb"), "platelets": ("plt", "platelet_count"),
    "neutrophils": ("anc", "neutrophil_count"), "ast": ("AST", "sgot"), "alt": ("ALT", "sgpt"),
    "total_bilirubin": ("tbili", "bilirubin"), "serum_creatinine": ("creatinine", "scr"),
    "weight": ("body_weight",), "inr": ("INR", "pt_inr"), "ecog": ("ecog_ps",),
    "life_expectancy": ("life_expectancy_wk",), "recist_evaluable_lesions": ("target_lesions",),
    "qtcf": ("qtc", "qtcb"), "lvef": ("ef", "ejection_fraction"), "systolic_bp": ("sbp",),
    "diastolic_bp": ("dbp",), "body_temperature": ("temp", "temperature"),
    "cd4_count": ("cd4",), "hbv_dna": ("hbv_viral_load",), "hbsag": ("hbs_ag", "HBsAg"),
    "hcv_antibody": ("anti_hcv",), "hcv_rna": ("hcv_viral_load",),
    "serum_pregnancy_test": ("beta_hcg", "urine_pregnancy_test"),
}


def _spoil_obs(rng: random.Random, o: dict, date_ord: int) -> None:
    """Make one field of observation ``o`` missing or unusable (in place)."""
    code = o["code"]
    v = o["value"]
    choices = []
    if "uln" in o:
        choices += ["uln"] * 4
    if "lloq" in o:
        choices += ["lloq"] * 2
    if isinstance(v, str):
        choices += ["qual"] * 3
    else:
        choices += ["str"] * 3 + ["null"]
    if code in _BAD_UNIT:
        choices += ["unit"] * 3
    if "unit" in o and o["unit"] != "1":
        choices += ["nounit"]
    choices += ["date"] * 3 + ["code"] * 2
    k = rng.choice(choices)
    if k == "uln":
        del o["uln"]
    elif k == "lloq":
        del o["lloq"]
    elif k == "qual":
        o["value"] = rng.choice(("Positive", "NEGATIVE", "reactive", "indeterminate", "pending", ""))
    elif k == "str":
        j = rng.randrange(5)
        if j == 0 and isinstance(v, float):
            o["value"] = repr(v).replace(".", ",")
        elif j == 1:
            o["value"] = rng.choice(("pending", "n/a", "not done", "hemolysed"))
        elif j == 2:
            o["value"] = rng.choice(("<", ">", "~")) + str(v)
        else:
            o["value"] = str(v)
    elif k == "null":
        o["value"] = None
    elif k == "unit":
        o["unit"] = rng.choice(_BAD_UNIT[code])
    elif k == "nounit":
        del o["unit"]
    elif k == "date":
        o["date"] = _bad_date(rng, date_ord)
    else:
        t = _TYPO.get(code)
        o["code"] = rng.choice(t) if t else code.upper()


# ---------------------------------------------------------------------------------------------
# Treatments, conditions, procedures: catalogues

H = "h"
D = "d"
# agent -> (classes, half-life value, half-life unit)
_AGENTS = {
    "carboplatin": (("chemotherapy",), 3.0, D), "cisplatin": (("chemotherapy",), 5.4, D),
    "paclitaxel": (("chemotherapy",), 20, H), "docetaxel": (("chemotherapy",), 11, H),
    "gemcitabine": (("chemotherapy",), 0.7, H), "pemetrexed": (("chemotherapy",), 3.5, H),
    "oxaliplatin": (("chemotherapy",), 10, D), "irinotecan": (("chemotherapy",), 12, H),
    "etoposide": (("chemotherapy",), 7, H), "doxorubicin": (("chemotherapy",), 30, H),
    "fluorouracil": (("chemotherapy", "fluoropyrimidine"), 0.25, H),
    "capecitabine": (("chemotherapy", "fluoropyrimidine"), 0.75, H),
    "tegafur_gimeracil_oteracil": (("chemotherapy", "fluoropyrimidine"), 13, H),
    "mitomycin": (("chemotherapy", "mitomycin"), 50, "min"),
    "lomustine": (("chemotherapy", "nitrosourea"), 72, H),
    "carmustine": (("chemotherapy", "nitrosourea"), 22, "min"),
    "pembrolizumab": (("immunotherapy", "anti_pd1_pdl1"), 22, D),
    "nivolumab": (("immunotherapy", "anti_pd1_pdl1"), 25, D),
    "atezolizumab": (("immunotherapy", "anti_pd1_pdl1"), 27, D),
    "durvalumab": (("immunotherapy", "anti_pd1_pdl1"), 18, D),
    "sintilimab": (("immunotherapy", "anti_pd1_pdl1"), 19.6, D),
    "camrelizumab": (("immunotherapy", "anti_pd1_pdl1"), 5.5, D),
    "ipilimumab": (("immunotherapy",), 15, D),
    "bevacizumab": (("targeted_therapy",), 20, D), "trastuzumab": (("targeted_therapy",), 28, D),
    "cetuximab": (("targeted_therapy",), 114, H),
    "osimertinib": (("targeted_therapy", "small_molecule_targeted"), 48, H),
    "erlotinib": (("targeted_therapy", "small_molecule_targeted"), 36, H),
    "gefitinib": (("targeted_therapy", "small_molecule_targeted"), 48, H),
    "sorafenib": (("targeted_therapy", "small_molecule_targeted"), 25, H),
    "regorafenib": (("targeted_therapy", "small_molecule_targeted"), 28, H),
    "lenvatinib": (("targeted_therapy", "small_molecule_targeted"), 28, H),
    "anlotinib": (("targeted_therapy", "small_molecule_targeted"), 116, H),
    "olaparib": (("targeted_therapy", "small_molecule_targeted"), 15, H),
    "kanglaite": (("herbal_anticancer",), None, None),
    "cinobufacini": (("herbal_anticancer",), None, None),
    "arsenic_trioxide": (("anticancer_other",), 92, H),
}
_REGIMENS = (
    ("carboplatin", "paclitaxel"), ("cisplatin", "pemetrexed"), ("pembrolizumab",),
    ("carboplatin", "pemetrexed", "pembrolizumab"), ("oxaliplatin", "capecitabine"),
    ("fluorouracil", "oxaliplatin"), ("irinotecan", "fluorouracil", "bevacizumab"),
    ("osimertinib",), ("gemcitabine", "cisplatin"), ("docetaxel",), ("nivolumab", "ipilimumab"),
    ("lomustine",), ("mitomycin", "fluorouracil"), ("sorafenib",), ("lenvatinib",),
    ("regorafenib",), ("trastuzumab", "docetaxel"), ("atezolizumab", "bevacizumab"),
    ("kanglaite",), ("cinobufacini",), ("tegafur_gimeracil_oteracil",), ("sintilimab",),
    ("camrelizumab",), ("anlotinib",), ("etoposide", "cisplatin"), ("doxorubicin",),
    ("erlotinib",), ("gefitinib",), ("olaparib",), ("durvalumab",), ("carmustine",),
    ("cetuximab", "irinotecan"), ("capecitabine",), ("arsenic_trioxide",),
)
# corticosteroid -> plausible daily doses in mg (around 10 mg prednisone equivalent)
_STEROIDS = {
    "dexamethasone": (0.75, 1.5, 1.5, 2, 3, 4, 8, 12), "prednisone": (5, 7.5, 10, 10, 15, 20, 40),
    "prednisolone": (5, 10, 10, 12.5, 20), "methylprednisolone": (4, 8, 8, 16, 40),
    "hydrocortisone": (15, 20, 30, 40, 50, 100), "betamethasone": (0.6, 1.2, 1.5, 4),
    "budesonide": (0.4, 0.8, 9),
}
_CONMEDS = ("amlodipine", "metformin", "omeprazole", "ondansetron", "morphine", "enoxaparin",
            "levothyroxine", "atorvastatin", "paracetamol", "loperamide", "pantoprazole",
            "metoclopramide", "oxycodone", "lisinopril", "megestrol")
_COMORBID = (("hypertension", 0.22), ("type_2_diabetes", 0.10), ("copd", 0.06),
             ("hyperlipidemia", 0.08), ("atrial_fibrillation", 0.03), ("osteoarthritis", 0.04),
             ("anemia_of_chronic_disease", 0.03), ("cancer_pain", 0.05))
_ONCE_FACTS = ("informed_consent", "standard_therapy_exhausted", "fertile",
               "contraception_agreement", "planned_major_surgery", "planned_live_vaccine",
               "fever_explained", "other_conditions_acceptable", "investigator_approval")


# ---------------------------------------------------------------------------------------------
# One record


def _record(rng: random.Random, idx: int) -> dict:
    r = rng.random
    ri = rng.randint
    ch = rng.choice

    # --- patient, anchors -------------------------------------------------------------------
    sex = "female" if r() < 0.5 else "male"
    u = r()
    if u < 0.004:  # born 29 February 2008, screened around 1 March 2026
        s_ord = _date(2026, 3, 1).toordinal() + ri(-3, 2)
        b_ord = _date(2008, 2, 29).toordinal()
    else:
        s_ord = _ORD_2025 + rng.randrange(_SCREEN_SPAN)
        sd = _date.fromordinal(s_ord)
        if u < 0.02:  # within days of the 18th birthday
            y = sd.year - 18
            day = sd.day if not (sd.month == 2 and sd.day == 29) else 28
            b_ord = _date(y, sd.month, day).toordinal() + ri(-12, 12)
        else:
            age_y = rng.triangular(25.0, 86.0, 62.0)
            b_ord = s_ord - int(age_y * 365.2425)
    bd = _date.fromordinal(b_ord)
    sd = _date.fromordinal(s_ord)
    age = sd.year - bd.year - ((sd.month, sd.day) < (bd.month, bd.day))
    e_ord = s_ord + int(rng.triangular(5, 11, 7))
    f_ord = e_ord + int(rng.triangular(1, 7, 3))
    F = f_ord
    S = s_ord
    anchors = {"screening": _iso(s_ord), "enrollment": _iso(e_ord), "first_dose": _iso(f_ord)}
    u = r()
    if u < 0.01:
        del anchors[ch(("screening", "enrollment", "first_dose", "first_dose"))]
    elif u < 0.015:
        anchors["enrollment"], anchors["first_dose"] = anchors["first_dose"], anchors["enrollment"]
    elif u < 0.018:
        anchors[ch(("screening", "enrollment", "first_dose"))] = _bad_date(rng, f_ord)

    rec: dict = {"format": 1, "id": "SYN-%06d" % (idx + 1)}
    u = r()
    if u >= 0.005:
        rec["sex"] = sex
    u = r()
    if u < 0.003:
        pass
    elif u < 0.005:
        rec["birth_date"] = _bad_date(rng, b_ord)
    else:
        rec["birth_date"] = _iso(b_ord)
    rec["anchors"] = anchors
    female = sex == "female"

    # --- conditions first (they shape the observations) ---------------------------------------
    conds: list = []
    tumor_onset = S - ri(40, 2200)
    extent = "metastatic"
    if r() < 0.98:
        u = r()
        extent = "metastatic" if u < 0.7 else "locally_advanced" if u < 0.92 else "localized"
        attrs = {}
        u = r()
        if u < 0.85:
            attrs["confirmation"] = "histological"
        elif u < 0.98:
            attrs["confirmation"] = "cytological"
        attrs["extent"] = extent
        if r() < 0.97:
            attrs["resectable"] = r() < (0.05 if extent != "localized" else 0.6)
        c = {"code": "solid_tumor", "onset": _iso(tumor_onset),
             "status": "active" if r() < 0.985 else "resolved"}
        if r() < 0.98:
            c["attributes"] = attrs
        conds.append(c)
    liver_met = extent == "metastatic" and r() < 0.33
    if liver_met:
        conds.append({"code": "liver_metastasis", "onset": _iso(ri(tumor_onset, S)),
                      "status": "active" if r() < 0.97 else "resolved"})
    gilbert = r() < 0.04
    if gilbert:
        conds.append({"code": "gilbert_syndrome", "onset": _iso(b_ord + ri(5000, 9000)),
                      "status": "active"})
    if r() < 0.08:
        on = S - ri(20, 900)
        att = {"treated": r() < 0.8}
        if att["treated"] and r() < 0.93:
            att["stable_since"] = _iso(F - ri(3, 200))
        att["new_or_enlarging"] = r() < 0.1
        if r() < 0.85:
            att["steroid_increase_14d"] = r() < 0.08
        conds.append({"code": "cns_metastasis", "onset": _iso(on),
                      "status": "active" if r() < 0.9 else "resolved", "attributes": att})
    for code, p in (("leptomeningeal_disease", 0.01), ("spinal_cord_compression", 0.01)):
        if r() < p:
            conds.append({"code": code, "onset": _iso(S - ri(10, 400)),
                          "status": "active" if r() < 0.6 else "resolved"})
    hiv = r() < 0.03
    if hiv:
        conds.append({"code": "hiv_infection", "onset": _iso(S - ri(400, 9000)), "status": "active"})
        if r() < 0.12:
            conds.append({"code": "aids_opportunistic_infection", "onset": _iso(S - ri(300, 5000)),
                          "end": _iso(S - ri(30, 290)), "status": "resolved"})
        if r() < 0.08:
            conds.append({"code": "aids", "onset": _iso(S - ri(300, 5000)), "status": "active"})
    if r() < 0.06:
        on = S - ri(100, 4000)
        c = {"code": "other_malignancy", "onset": _iso(on), "status": "resolved",
             "end": _iso(on + ri(30, 300))}
        if r() < 0.92:
            c["attributes"] = {"exempt": r() < 0.45}
        conds.append(c)
    if r() < 0.2:
        c = {"code": "unresolved_toxicity", "onset": _iso(S - ri(5, 200)),
             "status": "active" if r() < 0.8 else "resolved"}
        u = r()
        if u < 0.95:
            c["attributes"] = {"grade": 1 if u < 0.6 else 2 if u < 0.88 else 3}
        conds.append(c)
    if r() < 0.003:
        conds.append({"code": "congenital_long_qt", "onset": _iso(b_ord), "status": "active"})
    for code, p, attr in (("ventricular_arrhythmia", 0.01, "grade"), ("unstable_angina", 0.006, None),
                          ("congestive_heart_failure", 0.02, "nyha_class"),
                          ("myocardial_infarction", 0.02, None),
                          ("cerebrovascular_accident", 0.015, None),
                          ("transient_ischemic_attack", 0.01, None)):
        if r() < p:
            on = S - (ri(10, 200) if r() < 0.4 else ri(150, 3000))
            c = {"code": code, "onset": _iso(on)}
            if r() < 0.7:
                c["status"] = "resolved"
                if r() < 0.7:
                    c["end"] = _iso(on + ri(1, 30))
            else:
                c["status"] = "active"
            if attr == "grade" and r() < 0.95:
                c["attributes"] = {"grade": ri(1, 4)}
            elif attr == "nyha_class" and r() < 0.95:
                c["attributes"] = {"nyha_class": ri(1, 4)}
            conds.append(c)
    for code, p in (("infection_hospitalization", 0.02), ("bacteremia", 0.005),
                    ("severe_pneumonia", 0.01), ("active_tuberculosis", 0.002)):
        if r() < p:
            on = F - ri(5, 120)
            conds.append({"code": code, "onset": _iso(on), "end": _iso(on + ri(3, 20)),
                          "status": "resolved" if r() < 0.8 else "active"})
    if r() < 0.04:
        c = {"code": "active_infection", "onset": _iso(F - ri(1, 30)), "status": "active"}
        if r() < 0.93:
            c["attributes"] = {"controlled": r() < 0.7}
        conds.append(c)
    if r() < 0.04:
        on = S - ri(10, 700)
        c = {"code": "deep_vein_thrombosis", "onset": _iso(on),
             "status": "active" if r() < 0.5 else "resolved"}
        if r() < 0.9:
            c["attributes"] = {"symptomatic": r() < 0.5}
        conds.append(c)
    if r() < 0.02:
        conds.append({"code": "pulmonary_embolism", "onset": _iso(S - ri(10, 700)),
                      "status": "active" if r() < 0.4 else "resolved"})
    if r() < 0.03:
        c = {"code": "malnutrition", "onset": _iso(F - ri(5, 120)), "status": "active"}
        if r() < 0.9:
            c["attributes"] = {"requires_iv_nutrition": r() < 0.3}
        conds.append(c)
    fertile = (female and age < 50 and r() < 0.7) or (not female and r() < (0.4 if age < 65 else 0.1))
    if female and fertile:
        if r() < 0.004:
            conds.append({"code": "pregnancy", "onset": _iso(S - ri(10, 60)), "status": "active"})
        if r() < 0.006:
            conds.append({"code": "lactation", "onset": _iso(S - ri(10, 200)),
                          "status": "active" if r() < 0.6 else "resolved"})
    if r() < 0.05:
        c = {"code": "autoimmune_disease", "onset": _iso(S - ri(100, 8000)),
             "status": "active" if r() < 0.85 else "resolved"}
        if r() < 0.95:
            c["attributes"] = {"type": "thyroid" if r() < 0.55 else "other", "stable": r() < 0.8}
        conds.append(c)
    if r() < 0.06:
        c = {"code": "mental_disorder", "onset": _iso(S - ri(100, 8000)),
             "status": "active" if r() < 0.8 else "resolved"}
        if r() < 0.9:
            c["attributes"] = {"medicated": r() < 0.5}
        conds.append(c)
    if r() < 0.02:
        conds.append({"code": "substance_abuse", "onset": _iso(S - ri(300, 8000)),
                      "status": "active" if r() < 0.4 else "resolved"})
    if r() < 0.005:
        conds.append({"code": "sm3321_allergy", "onset": _iso(S - ri(10, 400)), "status": "active"})
    for code, p in _COMORBID:
        if r() < p:
            conds.append({"code": code, "onset": _iso(S - ri(60, 7000)), "status": "active"})
    for c in conds:
        if r() < 0.012:  # defect in a condition
            k = rng.randrange(4)
            if k == 0 or "attributes" not in c:
                c["onset"] = _bad_date(rng, S - 100)
            elif k == 1:
                c["status"] = ch(("Active", "ongoing", "unknown", ""))
            elif k == 2:
                a = c["attributes"]
                key = next(iter(a))
                a[key] = ch(("yes", "no", "unknown", None, 1))
            else:
                c["code"] = c["code"].replace("_", " ")
    if r() < 0.3:
        rng.shuffle(conds)

    # --- observations -------------------------------------------------------------------------
    obs: list = []
    add = obs.append
    near = P_NEAR

    # lab dates
    lab_dates = []
    if r() < 0.85:
        lab_dates.append(S - ri(0, 7))
    u = r()
    if u < 0.88:
        lab_dates.append(ch((e_ord, e_ord, F - 1, F - 1, F, F - 2, F - 7, F - 8, F - ri(3, 6))))
    for _ in range(ri(0, 3) if r() < 0.5 else ri(1, 3)):
        u = r()
        if u < 0.55:
            lab_dates.append(F - ri(20, 120))
        elif u < 0.9:
            lab_dates.append(F - ri(0, 7))
        else:
            lab_dates.append(F + ch((1, 7, 8)))
    while len(lab_dates) < 2:
        lab_dates.append(F - ri(0, 60))
    lab_dates = sorted(set(lab_dates))[-5:]
    if len(lab_dates) < 2:
        lab_dates.append(lab_dates[0] - ri(7, 40))
        lab_dates.sort()

    hb_u = _pick_unit(rng, _HB_UNITS)
    plt_u = _pick_unit(rng, _PLT_UNITS)
    anc_u = _pick_unit(rng, _ANC_UNITS)
    cre_u = _pick_unit(rng, _CREA_UNITS)
    bili_u = _pick_unit(rng, _BILI_UNITS)
    ast_uln = ch(_AST_ULN)
    alt_uln = ch(_ALT_ULN)
    bili_uln = ch(_BILI_ULN[bili_u[0]])
    inr_uln = ch(_INR_ULN)
    inr_q = (0.01, 2) if r() < 0.75 else (0.1, 1)
    inr_unit = r() < 0.8

    hb_near = r() < near
    hb_base = _clamp(rng.gauss(122, 17), 55, 185)
    plt_near = r() < near
    plt_base = _clamp(rng.lognormvariate(5.44, 0.35), 15, 700)
    anc_near = r() < near
    anc_base = _clamp(rng.lognormvariate(1.33, 0.45), 0.2, 15)
    ast_near = r() < near
    ast_mult = 5 if (liver_met and r() < 0.6) or (not liver_met and r() < 0.2) else 2.5
    ast_base = ast_uln * rng.lognormvariate(-0.35, 0.45)
    alt_near = r() < near
    alt_mult = 5 if (liver_met and r() < 0.6) or (not liver_met and r() < 0.2) else 2.5
    alt_base = alt_uln * rng.lognormvariate(-0.45, 0.5)
    bili_near = r() < near
    bili_mult = 3 if (gilbert and r() < 0.7) or (not gilbert and r() < 0.15) else 1.5
    bili_base = bili_uln * rng.lognormvariate(-0.8, 0.45) * (2.2 if gilbert else 1.0)
    inr_near = r() < near
    inr_base = _clamp(rng.gauss(1.03, 0.09), 0.8, 3.5)

    # weight and creatinine (Cockcroft-Gault around 50 mL/min)
    wt_u = _pick_unit(rng, _WT_UNITS)
    wt_base = _clamp(rng.gauss(64 if female else 72, 13), 35, 160)
    exact_cg = None
    if r() < 0.03 and age < 139:
        for c in ((0.85, 1.7) if female else (1.0, 1.2, 1.5, 2.0)):
            w = 3600 * c / ((140 - age) * (0.85 if female else 1.0))
            if abs(w * 10 - round(w * 10)) < 1e-9 and 30 <= w <= 160:
                exact_cg = (c, round(w, 1))
                break
    if exact_cg:
        wt_u = ("kg", 1.0, 0.1, 1, 0)
        cre_u = ("mg/dL", 1.0, 0.01, 2, 0)
        wt_base = exact_cg[1]
    cg_target = rng.uniform(38, 62) if r() < 0.3 else _clamp(rng.lognormvariate(4.45, 0.35), 15, 250)
    cre_base = max(0.2, (140 - age) * wt_base * (0.85 if female else 1.0) / (72 * cg_target))

    last_pre = max((d for d in lab_dates if d <= F), default=None)
    for i, d in enumerate(lab_dates):
        iso_d = _iso(d)
        last = d == last_pre
        if r() < 0.96:
            v = (_near(rng, 90 * hb_u[1], hb_u[2], hb_u[3], 6) if hb_near
                 else _q(hb_base * hb_u[1] * (1 + rng.gauss(0, 0.04)), hb_u[2], hb_u[3]))
            add({"code": "hemoglobin", "value": v, "unit": hb_u[0], "date": iso_d})
        if r() < 0.96:
            v = (_near(rng, 100 * plt_u[1], plt_u[2], plt_u[3], 8) if plt_near
                 else _q(plt_base * plt_u[1] * (1 + rng.gauss(0, 0.08)), plt_u[2], plt_u[3]))
            add({"code": "platelets", "value": v, "unit": plt_u[0], "date": iso_d})
        if r() < 0.94:
            v = (_near(rng, 1.5 * anc_u[1], anc_u[2], anc_u[3], 8) if anc_near
                 else _q(anc_base * anc_u[1] * (1 + rng.gauss(0, 0.12)), anc_u[2], anc_u[3]))
            add({"code": "neutrophils", "value": v, "unit": anc_u[0], "date": iso_d})
        if r() < 0.96:
            v = (_near(rng, ast_mult * ast_uln, 1, 0, 6) if ast_near
                 else max(5, _q(ast_base * (1 + rng.gauss(0, 0.1)), 1, 0)))
            add({"code": "ast", "value": v, "unit": "U/L", "uln": ast_uln, "date": iso_d})
        if r() < 0.96:
            v = (_near(rng, alt_mult * alt_uln, 1, 0, 6) if alt_near
                 else max(4, _q(alt_base * (1 + rng.gauss(0, 0.1)), 1, 0)))
            add({"code": "alt", "value": v, "unit": "U/L", "uln": alt_uln, "date": iso_d})
        if r() < 0.95:
            bq, bn = bili_u[2], bili_u[3]
            v = (_near(rng, bili_mult * bili_uln, bq, bn, 4) if bili_near
                 else max(bq, _q(bili_base * (1 + rng.gauss(0, 0.1)), bq, bn)))
            add({"code": "total_bilirubin", "value": v, "unit": bili_u[0], "uln": bili_uln,
                 "date": iso_d})
        if r() < 0.95 or (exact_cg and last):
            if exact_cg and last:
                v = exact_cg[0]
            else:
                v = max(cre_u[2], _q(cre_base * cre_u[1] * (1 + rng.gauss(0, 0.06)), cre_u[2], cre_u[3]))
            add({"code": "serum_creatinine", "value": v, "unit": cre_u[0], "date": iso_d})
        if r() < (0.9 if i == 0 else 0.75):
            v = (_near(rng, 1.5 * inr_uln, inr_q[0], inr_q[1], 5 if inr_q[0] < 0.1 else 2) if inr_near
                 else _q(inr_base * (1 + rng.gauss(0, 0.03)), inr_q[0], inr_q[1]))
            o = {"code": "inr", "value": v}
            if inr_unit:
                o["unit"] = "1"
            o["uln"] = inr_uln
            o["date"] = iso_d
            add(o)
        for code in ("ldh", "albumin", "alkaline_phosphatase", "potassium"):
            if r() < 0.05:
                add({"code": code, "value": round(rng.uniform(3, 300), 1), "unit": "U/L"
                     if code != "albumin" and code != "potassium" else
                     ("g/L" if code == "albumin" else "mmol/L"), "date": iso_d})

    # vital signs
    vit_dates = [S]
    for _ in range(ri(1, 5)):
        vit_dates.append(ch((e_ord, F, F, F - 1, S - ri(1, 30), F - ri(1, 7), F + 1)))
    vit_dates = sorted(set(vit_dates))
    bp_u = _BP_UNITS[1] if r() < 0.06 else _BP_UNITS[0]
    t_f = r() < 0.15
    sbp_near = r() < near
    dbp_near = r() < near
    sbp_base = _clamp(rng.gauss(127, 14), 85, 210)
    dbp_base = _clamp(rng.gauss(77, 9), 45, 125)
    temp_near = r() < near
    fever = False
    wt_dates: list = []

    def vitals(d: int, weigh: bool) -> None:
        nonlocal fever
        iso_d = _iso(d)
        if r() < 0.97:
            v = (_near(rng, 160 * bp_u[1], bp_u[2], bp_u[3], 5) if sbp_near
                 else _q(sbp_base * bp_u[1] * (1 + rng.gauss(0, 0.05)), bp_u[2], bp_u[3]))
            add({"code": "systolic_bp", "value": v, "unit": bp_u[0], "date": iso_d})
            v = (_near(rng, 100 * bp_u[1], bp_u[2], bp_u[3], 4) if dbp_near
                 else _q(dbp_base * bp_u[1] * (1 + rng.gauss(0, 0.05)), bp_u[2], bp_u[3]))
            add({"code": "diastolic_bp", "value": v, "unit": bp_u[0], "date": iso_d})
        if r() < 0.93:
            if temp_near and r() < 0.6:
                c = round(38 + ri(-4, 4) * 0.1, 1)
            else:
                c = _clamp(rng.gauss(36.7, 0.35), 35.5, 41)
            if c > 38.0001:
                fever = True
            if t_f:
                v = _near(rng, c * 9 / 5 + 32, 0.1, 1, 0)
                add({"code": "body_temperature", "value": v, "unit": "[degF]", "date": iso_d})
            else:
                add({"code": "body_temperature", "value": round(c, 1), "unit": "Cel", "date": iso_d})
        if weigh:
            wt_dates.append(d)
            add({"code": "weight", "value": _q(wt_base * wt_u[1] * (1 + rng.gauss(0, 0.012)),
                                                wt_u[2], wt_u[3]), "unit": wt_u[0], "date": iso_d})
        if r() < 0.12:
            add({"code": "heart_rate", "value": ri(55, 115), "unit": "/min", "date": iso_d})

    for i, d in enumerate(vit_dates):
        vitals(d, i == 0 or r() < 0.5)

    # screening assessments
    if r() < 0.97:
        u = r()
        add({"code": "ecog", "value": 0 if u < 0.35 else 1 if u < 0.85 else 2 if u < 0.97 else 3,
             "date": _iso(S - ri(0, 3))})
        if r() < 0.3:
            o = {"code": "ecog", "value": 0 if u < 0.3 else 1 if u < 0.8 else 2 if u < 0.95 else 3,
                 "date": _iso(ch((e_ord, F)))}
            if r() < 0.3:
                o["unit"] = "1"
            add(o)
    if r() < 0.95:
        u = r()
        if u < 0.4:
            unit, v = "wk", (ri(9, 15) if r() < 0.5 else ch((12, 16, 24, 26, 52)))
        elif u < 0.8:
            unit, v = "mo", ch((2, 2.5, 2.75, 3, 3, 4, 6, 6, 12, 24))
        else:
            unit, v = "d", ch((60, 83, 84, 84, 85, 90, 180, 365))
        add({"code": "life_expectancy", "value": v, "unit": unit, "date": _iso(S - ri(0, 3))})
    if r() < 0.93:
        u = r()
        o = {"code": "recist_evaluable_lesions",
             "value": 0 if u < 0.05 else ri(1, 2) if u < 0.6 else ri(3, 8),
             "date": _iso(S - ri(0, 21))}
        if r() < 0.5:
            o["unit"] = "1"
        add(o)
    qt_u = _pick_unit(rng, _QT_UNITS)
    qt_near = r() < near
    qt_limit = 450 if (not female) == (r() < 0.7) else 470
    qt_base = _clamp(rng.gauss(422, 18), 360, 520)
    ecg_dates = [S - ri(0, 7)] + ([ch((F - 1, F, e_ord))] if r() < 0.25 else [])
    if r() < 0.97:
        for d in ecg_dates:
            for _ in range(3 if r() < 0.3 else 1):
                v = (_near(rng, qt_limit * qt_u[1], qt_u[2], qt_u[3], 5) if qt_near
                     else _q(qt_base * qt_u[1] * (1 + rng.gauss(0, 0.015)), qt_u[2], qt_u[3]))
                add({"code": "qtcf", "value": v, "unit": qt_u[0], "date": _iso(d)})
    if r() < 0.9:
        v = _near(rng, 50, 1, 0, 4) if r() < near else int(_clamp(rng.gauss(61, 6), 20, 80))
        add({"code": "lvef", "value": v, "unit": "%",
             "date": _iso(S - ri(0, 28) if r() < 0.8 else F - ri(29, 90))})
    sero_d = S - ri(0, 14) if r() < 0.85 else F - ri(15, 200)
    hbsag_pos = r() < 0.07
    if r() < 0.92:
        add({"code": "hbsag", "value": "positive" if hbsag_pos else "negative", "date": _iso(sero_d)})
    if (hbsag_pos and r() < 0.9) or r() < 0.05:
        lloq = ch((10, 20, 20, 15, 12))
        u = r()
        v = ri(1, lloq - 1) if u < 0.4 else lloq if u < 0.55 else lloq + 1 if u < 0.6 else (
            int(rng.lognormvariate(7, 2.2)) + lloq)
        add({"code": "hbv_dna", "value": v, "unit": "[IU]/mL", "lloq": lloq, "date": _iso(sero_d)})
    hcv_pos = r() < 0.03
    if r() < 0.92:
        add({"code": "hcv_antibody", "value": "positive" if hcv_pos else "negative",
             "date": _iso(sero_d)})
    if (hcv_pos and r() < 0.85) or r() < 0.02:
        add({"code": "hcv_rna", "value": "positive" if r() < 0.4 else "negative",
             "date": _iso(sero_d + ri(0, 5))})
    if hiv and r() < 0.9:
        cu = _pick_unit(rng, _CD4_UNITS)
        v = (_near(rng, 350 * cu[1], cu[2], cu[3], 15 if cu[2] >= 1 else 3) if r() < 0.35
             else _q(_clamp(rng.lognormvariate(6.25, 0.5), 20, 1500) * cu[1], cu[2], cu[3]))
        add({"code": "cd4_count", "value": v, "unit": cu[0], "date": _iso(S - ri(0, 40))})
    if female and fertile and r() < 0.9:
        add({"code": "serum_pregnancy_test", "value": "negative" if r() < 0.995 else "positive",
             "date": _iso(F - ri(0, 5))})
        if r() < 0.4:
            add({"code": "serum_pregnancy_test", "value": "negative", "date": _iso(S - ri(0, 3))})
    if r() < 0.15:
        add({"code": "height", "value": round(rng.gauss(158 if female else 170, 8)), "unit": "cm",
             "date": _iso(S)})

    # 30..80 observations: more vital-sign visits up to a drawn target
    target = int(rng.triangular(30, 81, 36))
    while len(obs) < target:
        d = F - ri(0, 35)
        if d not in vit_dates:
            vit_dates.append(d)
            vitals(d, r() < 0.3)
    if exact_cg:  # the most recent weight on or before first_dose is the exact one
        last_wt = max((d for d in wt_dates if d <= F), default=None)
        if last_wt is not None:
            key = _iso(last_wt)
            for o in reversed(obs):
                if o["code"] == "weight" and o["date"] == key:
                    o["value"] = exact_cg[1]
                    break
    while len(obs) > 80:
        del obs[rng.randrange(len(obs))]

    # defects: a few percent of observations
    for o in obs:
        if r() < 0.022:
            _spoil_obs(rng, o, F - 3)
    if r() < 0.7:
        obs.sort(key=_obs_key)
    rec["observations"] = obs
    rec["conditions"] = conds

    # --- treatments ---------------------------------------------------------------------------
    tr: list = []
    u = r()
    nlines = 0 if u < 0.08 else 1 if u < 0.43 else 2 if u < 0.73 else 3 if u < 0.9 else ri(4, 5)
    end = F - (ri(5, 60) if r() < 0.3 else ri(60, 500))
    lines = []
    for _ in range(nlines):
        dur = ri(21, 270)
        lines.append((end - dur, end))
        end = end - dur - ri(14, 150)
    for start, end in reversed(lines):
        for agent in ch(_REGIMENS):
            classes, hl, hl_u = _AGENTS[agent]
            t = {"code": agent, "classes": list(classes), "start": _iso(start), "end": _iso(end)}
            if hl is not None and r() < 0.5:
                t["half_life"] = {"value": hl, "unit": hl_u}
            tr.append(t)
    if tr and r() < 0.03:
        tr[-1]["end"] = None  # still ongoing
    if r() < 0.03:
        start = F - ri(10, 200)
        cl = ["investigational_drug"] + (["small_molecule_targeted"] if r() < 0.5 else [])
        t = {"code": "SM-%03d" % ri(100, 999), "classes": cl, "start": _iso(start),
             "end": _iso(min(F - 1, start + ri(14, 150)))}
        if r() < 0.5:
            t["half_life"] = {"value": ri(6, 96), "unit": "h"}
        tr.append(t)
    if r() < 0.1:
        d = e_ord - ri(1, 40)
        tr.append({"code": ch(("filgrastim", "pegfilgrastim", "epoetin_alfa")),
                   "classes": ["hematopoietic_growth_factor"], "start": _iso(d - ri(0, 4)),
                   "end": _iso(d)})
    if r() < 0.05:
        d = e_ord - ri(1, 60)
        tr.append({"code": "red_blood_cell_transfusion", "classes": ["blood_transfusion"],
                   "start": _iso(d), "end": _iso(d)})
    if r() < 0.15:
        agent = ch(tuple(_STEROIDS))
        start = F - ri(1, 60)
        u = r()
        if u < 0.25:
            purpose, end_ = "prophylaxis", start + ri(0, 9)
        elif u < 0.45:
            purpose, end_ = "replacement", None
        else:
            purpose, end_ = "treatment", (None if r() < 0.5 else start + ri(3, 50))
        classes = ["systemic_corticosteroid"]
        t = {"code": agent, "classes": classes, "start": _iso(start),
             "end": None if end_ is None else _iso(end_)}
        if r() < 0.95:
            t["daily_dose"] = {"value": ch(_STEROIDS[agent]), "unit": "mg"}
        if r() < 0.92:
            t["route"] = ("inhaled" if agent == "budesonide" else
                          ch(("oral", "oral", "oral", "intravenous", "topical", "intranasal",
                              "intraarticular")))
        if r() < 0.9:
            t["purpose"] = purpose
        tr.append(t)
    if r() < 0.01:
        start = F - ri(30, 2000)
        t = {"code": ch(("tacrolimus", "mycophenolate", "ciclosporin")),
             "classes": ["immunosuppressant"], "start": _iso(start), "end": None}
        if r() < 0.5:
            t["purpose"] = ch(("treatment", "replacement"))
        tr.append(t)
    if r() < 0.01:
        start = F - ri(10, 200)
        tr.append({"code": ch(("thalidomide", "thymalfasin")), "classes": ["immunomodulator"],
                   "start": _iso(start), "end": _iso(start + ri(5, 190))})
    if r() < 0.006:
        d = F - ri(1, 90)
        tr.append({"code": ch(("yellow_fever_vaccine", "mmr_vaccine", "varicella_vaccine_live")),
                   "classes": ["live_vaccine"], "start": _iso(d), "end": _iso(d)})
    for _ in range(ri(0, 3) if r() < 0.45 else 0):
        start = F - ri(10, 1500)
        tr.append({"code": ch(_CONMEDS), "classes": [] if r() < 0.9 else ["supportive_care"],
                   "start": _iso(start), "end": None if r() < 0.7 else _iso(start + ri(5, 300))})
    for t in tr:
        if r() < 0.012:  # defect in a treatment
            k = rng.randrange(4)
            if k == 0:
                t["end" if t["end"] is not None else "start"] = _bad_date(rng, F - 30)
            elif k == 1:
                t["start"] = _bad_date(rng, F - 60)
            elif k == 2 and "half_life" in t:
                t["half_life"]["unit"] = ch(("kg", "%", "mo"))
            else:
                t["classes"] = ch(("chemotherapy", None, ["Chemotherapy"]))
    rec["treatments"] = tr

    # --- procedures ---------------------------------------------------------------------------
    pr: list = []
    if r() < 0.3:
        fr = ch((1, 1, 1, 5, 10, 10, 25, 30))
        att = {}
        if r() < 0.96:
            att["fractions"] = fr
        if r() < 0.96:
            att["intent"] = ("palliative" if r() < 0.8 else "curative") if fr <= 10 else (
                "curative" if r() < 0.8 else "palliative")
        pr.append({"code": "radiotherapy",
                   "date": _iso(F - (ri(3, 45) if r() < 0.4 else ri(45, 900))), "attributes": att})
    if r() < 0.45:
        pr.append({"code": "major_surgery",
                   "date": _iso(F - (ri(10, 45) if r() < 0.12 else ri(46, 3000)))})
    if r() < 0.005:
        pr.append({"code": "coronary_artery_bypass_graft", "date": _iso(S - ri(30, 3000))})
    if r() < 0.003:
        pr.append({"code": ch(("allogeneic_organ_transplant", "allogeneic_stem_cell_transplant")),
                   "date": _iso(S - ri(300, 5000))})
    if r() < 0.2:
        pr.append({"code": ch(("tumor_biopsy", "tumor_biopsy", "port_placement", "thoracentesis")),
                   "date": _iso(tumor_onset + ri(0, 30))})
    for p in pr:
        if r() < 0.012:
            p["date"] = _bad_date(rng, F - 40)
    rec["procedures"] = pr

    # --- facts --------------------------------------------------------------------------------
    facts = {}
    for name in _ONCE_FACTS:
        if name == "informed_consent":
            v = r() < 0.985
        elif name == "standard_therapy_exhausted":
            v = r() < 0.9
        elif name == "fertile":
            v = fertile
        elif name == "contraception_agreement":
            if not fertile and r() < 0.5:
                continue
            v = r() < 0.95
        elif name == "planned_major_surgery":
            v = r() < 0.03
        elif name == "planned_live_vaccine":
            v = r() < 0.01
        elif name == "fever_explained":
            if not fever and r() < 0.85:
                continue
            v = r() < 0.6
        elif name == "other_conditions_acceptable":
            v = r() < 0.95
        else:
            v = r() < 0.96
        u = r()
        if u < 0.03:
            continue  # absent
        if u < 0.033:
            v = ch(("yes", "no", None, 1, 0, "true"))
        facts[name] = v
    rec["facts"] = facts
    return rec


def _obs_key(o: dict):
    d = o.get("date")
    return d if isinstance(d, str) else ""


# ---------------------------------------------------------------------------------------------
# Corrupted whole records

_CORRUPT_KINDS = (
    "truncated", "truncated", "array", "scalar", "not_json", "trailing_garbage",
    "format2", "format_missing", "format_string", "no_id", "empty_id", "id_number",
    "obs_not_list", "list_field_wrong", "object_field_wrong",
    "nan", "infinity", "neg_infinity", "big_float", "huge_int", "huge_int_5000",
)
_SENTINEL = "@@SENTINEL@@"
_SENTINEL_JSON = json.dumps(_SENTINEL)


def _corrupt(rng: random.Random, idx: int) -> str:
    kind = rng.choice(_CORRUPT_KINDS)
    rec = _record(rng, idx)
    if kind == "truncated":
        text = _dumps(rec)
        return text[: rng.randrange(1, len(text) - 1)]
    if kind == "array":
        return rng.choice(("[1,2]", "[]", '[{"format":1,"id":"SYN-%06d"}]' % (idx + 1), "[null]"))
    if kind == "scalar":
        return rng.choice(('"text"', "42", "null", "true", '"SYN-%06d"' % (idx + 1), "-0.5"))
    if kind == "not_json":
        return rng.choice(("not json at all", "{format: 1, id: 'SYN-%06d'}" % (idx + 1),
                           "SYN-%06d,male,1960-05-10" % (idx + 1), "{'format': 1}", "<record/>",
                           "{\"format\":1,\"id\":\"SYN-%06d\",}" % (idx + 1)))
    if kind == "trailing_garbage":
        return _dumps(rec) + rng.choice((" x", "}", ",", " {}", "]"))
    if kind == "format2":
        rec["format"] = 2
    elif kind == "format_missing":
        del rec["format"]
    elif kind == "format_string":
        rec["format"] = rng.choice(("1", "1.0", None, 1.5, "format 1"))
    elif kind == "no_id":
        del rec["id"]
    elif kind == "empty_id":
        rec["id"] = ""
    elif kind == "id_number":
        rec["id"] = rng.choice((idx + 1, None, ["SYN-%06d" % (idx + 1)], True))
    elif kind == "obs_not_list":
        rec["observations"] = rng.choice(({"code": "hemoglobin", "value": 120, "unit": "g/L",
                                           "date": "2026-01-01"}, "hemoglobin 120 g/L", 0, None))
    elif kind == "list_field_wrong":
        rec[rng.choice(("conditions", "treatments", "procedures"))] = rng.choice(({}, "none", 1, True))
    elif kind == "object_field_wrong":
        rec[rng.choice(("anchors", "facts"))] = rng.choice(([], "2026-01-05", 0, [True]))
    else:  # a non-finite, overflowing or huge number written into the text
        target = _numeric_slot(rng, rec)
        if target is None:
            rec["observations"] = [{"code": "hemoglobin", "value": 0, "unit": "g/L",
                                    "date": rec["anchors"].get("screening", "2026-01-05")}]
            target = (rec["observations"][0], "value")
        holder, key = target
        holder[key] = _SENTINEL
        token = {
            "nan": "NaN", "infinity": "Infinity", "neg_infinity": "-Infinity",
            "big_float": rng.choice(("1e400", "-1e400", "1.5E+999")),
            "huge_int": "9" * 400,
            "huge_int_5000": "1" + "0" * 4999,
        }[kind]
        return _dumps(rec).replace(_SENTINEL_JSON, token, 1)
    return _dumps(rec)


def _numeric_slot(rng: random.Random, rec: dict):
    slots = []
    for o in rec["observations"]:
        if isinstance(o.get("value"), (int, float)) and not isinstance(o.get("value"), bool):
            slots.append((o, "value"))
            if "uln" in o:
                slots.append((o, "uln"))
    if not slots:
        return None
    return rng.choice(slots)


# ---------------------------------------------------------------------------------------------
# Public API

_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_dumps = _ENCODER.encode


def _rng_for(seed: int, i: int) -> random.Random:
    return random.Random(((seed % (1 << 64)) << 40) | (i & ((1 << 40) - 1)))


def generate(n: int, seed: int = 3321, corrupt_rate: float = 0.0) -> Iterator[dict | str]:
    """Yield ``n`` synthetic SM3321 patient records, lazily and deterministically.

    Normal records are dicts (patient record format 1, with a realistic low rate of missing or
    unusable items). With probability ``corrupt_rate`` each record is instead a str: the raw
    JSON line of a corrupted record (not JSON, not an object, wrong format, no id, ...).
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    if not 0.0 <= corrupt_rate <= 1.0:
        raise ValueError("corrupt_rate must be between 0 and 1")
    for i in range(n):
        rng = _rng_for(seed, i)
        if rng.random() < corrupt_rate:
            yield _corrupt(rng, i)
        else:
            yield _record(rng, i)


def _lines(n: int, seed: int, corrupt_rate: float) -> Iterator[str]:
    for item in generate(n, seed, corrupt_rate):
        yield (item if isinstance(item, str) else _dumps(item)) + "\n"


def write_jsonl(path_or_file, n: int, seed: int = 3321, corrupt_rate: float = 0.0) -> int:
    """Write ``n`` records as JSON Lines to a path or an open (text or binary) file.

    Streams in chunks; returns the number of records written.
    """
    if isinstance(path_or_file, (str, os.PathLike)):
        with open(path_or_file, "w", encoding="utf-8", newline="\n") as f:
            return write_jsonl(f, n, seed, corrupt_rate)
    f: IO = path_or_file
    binary = isinstance(f, (io.RawIOBase, io.BufferedIOBase)) or "b" in getattr(f, "mode", "")
    write = f.write
    chunk: list[str] = []
    count = 0
    for line in _lines(n, seed, corrupt_rate):
        chunk.append(line)
        count += 1
        if len(chunk) >= 256:
            s = "".join(chunk)
            write(s.encode("utf-8") if binary else s)
            chunk.clear()
    if chunk:
        s = "".join(chunk)
        write(s.encode("utf-8") if binary else s)
    f.flush()
    return count


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="cohort.py",
        description="Write N synthetic SM3321 patient records (format 1) as JSON Lines.")
    ap.add_argument("n", type=int, metavar="N", help="number of records")
    ap.add_argument("-o", "--output", metavar="FILE", default="-",
                    help="output file (default: standard output)")
    ap.add_argument("--seed", type=int, default=3321, help="random seed (default: 3321)")
    ap.add_argument("--corrupt-rate", type=float, default=0.0, metavar="R",
                    help="fraction of records replaced by corrupted JSON lines (default: 0)")
    args = ap.parse_args(argv)
    if args.n < 0:
        ap.error("N must be >= 0")
    if not 0.0 <= args.corrupt_rate <= 1.0:
        ap.error("--corrupt-rate must be between 0 and 1")
    if args.output == "-":
        out = sys.stdout.buffer
        try:
            write_jsonl(out, args.n, args.seed, args.corrupt_rate)
        except BrokenPipeError:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return 1
    else:
        write_jsonl(args.output, args.n, args.seed, args.corrupt_rate)
    return 0


if __name__ == "__main__":
    sys.exit(main())
