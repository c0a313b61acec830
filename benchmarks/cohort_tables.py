"""Tables and shared pieces of the synthetic SM3321 cohort (benchmarks/cohort.py).

Dates (ISO text, unusable dates), numbers rounded as labs report them, the unit tables of the
lab values, the spoilers that make an observation's field missing or unusable, the catalogues
of agents, regimens, corticosteroids, comorbidities and facts, and ``Patient``, what the
sections of one record (cohort_record.py, cohort_obs.py) share. Standard library only; the
random draws are made by the callers' ``random.Random`` in the order they call these.
"""

from __future__ import annotations

import datetime
import random

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
# The patient whose record is being built


class Patient:
    """What the sections of one record share: the anchor ordinals, age and sex (from the
    patient section), the flags the conditions decide (tumour onset, liver metastasis, Gilbert,
    HIV, fertility) and whether a vital sign showed fever (from the observations)."""

    __slots__ = ("S", "E", "F", "b_ord", "age", "female", "tumor_onset", "liver_met", "gilbert",
                 "hiv", "fertile", "fever")

    def __init__(self, S: int, E: int, F: int, b_ord: int, age: int, female: bool) -> None:
        self.S = S  # screening
        self.E = E  # enrollment
        self.F = F  # first dose
        self.b_ord = b_ord
        self.age = age
        self.female = female
        self.tumor_onset = S
        self.liver_met = self.gilbert = self.hiv = self.fertile = self.fever = False
