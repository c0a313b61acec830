"""One synthetic SM3321 record (benchmarks/cohort.py), built section by section.

``_record(rng, idx)`` draws, in this order: the patient and anchors, the conditions (first:
they shape the observations), the observations (cohort_obs.py), the treatments, the
procedures and the facts. Each section is a function of its own; what later sections need
(anchors, age, sex, tumour onset, liver metastasis, Gilbert, HIV, fertility, fever) travels in
a ``Patient``. The order of the random draws is the generator's contract: record ``i`` of a
seed must not change.
"""

from __future__ import annotations

import random

if __package__:
    from .cohort_obs import observations
    from .cohort_tables import (
        _AGENTS, _COMORBID, _CONMEDS, _ONCE_FACTS, _ORD_2025, _REGIMENS, _SCREEN_SPAN, _STEROIDS,
        Patient, _bad_date, _date, _iso)
else:  # benchmarks/ on sys.path (the script, ``import cohort``)
    from cohort_obs import observations  # type: ignore[no-redef]
    from cohort_tables import (  # type: ignore[no-redef]
        _AGENTS, _COMORBID, _CONMEDS, _ONCE_FACTS, _ORD_2025, _REGIMENS, _SCREEN_SPAN, _STEROIDS,
        Patient, _bad_date, _date, _iso)


def _record(rng: random.Random, idx: int) -> dict:
    """Record ``idx`` (id SYN-000001 for 0) drawn from ``rng``."""
    rec, pt = _patient(rng, idx)
    conds = _conditions(rng, pt)
    rec["observations"] = observations(rng, pt)
    rec["conditions"] = conds
    rec["treatments"] = _treatments(rng, pt)
    rec["procedures"] = _procedures(rng, pt)
    rec["facts"] = _facts(rng, pt)
    return rec


# ---------------------------------------------------------------------------------------------
# Patient, anchors


def _patient(rng: random.Random, idx: int) -> tuple[dict, Patient]:
    """The record's format, id, sex, birth date and anchors (a few missing, swapped or bad)."""
    r = rng.random
    ri = rng.randint
    ch = rng.choice
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
    return rec, Patient(s_ord, e_ord, f_ord, b_ord, age, sex == "female")


# ---------------------------------------------------------------------------------------------
# Conditions


def _conditions(rng: random.Random, pt: Patient) -> list:
    """The conditions; sets the patient's tumour onset, liver_met, gilbert, hiv and fertile."""
    conds: list = []
    _cancer(rng, pt, conds)
    _hiv_malignancy_toxicity(rng, pt, conds)
    _cardiac_infection_thrombosis(rng, pt, conds)
    _fertility_and_others(rng, pt, conds)
    _condition_defects(rng, pt, conds)
    return conds


def _cancer(rng: random.Random, pt: Patient, conds: list) -> None:
    """The solid tumour (~98 %), liver metastasis, Gilbert, CNS metastasis, leptomeningeal
    disease, spinal cord compression."""
    r = rng.random
    ri = rng.randint
    S, F, b_ord = pt.S, pt.F, pt.b_ord
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
    pt.tumor_onset, pt.liver_met, pt.gilbert = tumor_onset, liver_met, gilbert


def _hiv_malignancy_toxicity(rng: random.Random, pt: Patient, conds: list) -> None:
    """HIV (AIDS, opportunistic infections), other malignancy, unresolved toxicity, congenital
    long QT."""
    r = rng.random
    ri = rng.randint
    S, b_ord = pt.S, pt.b_ord
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
    pt.hiv = hiv


def _cardiac_infection_thrombosis(rng: random.Random, pt: Patient, conds: list) -> None:
    """Cardiac and cerebrovascular events, infections, thrombosis, malnutrition."""
    r = rng.random
    ri = rng.randint
    S, F = pt.S, pt.F
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


def _fertility_and_others(rng: random.Random, pt: Patient, conds: list) -> None:
    """Fertility (pregnancy, lactation), autoimmune, mental, substance abuse, allergy and the
    comorbidities outside the vocabulary; sets the patient's ``fertile``."""
    r = rng.random
    ri = rng.randint
    S, age, female = pt.S, pt.age, pt.female
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
    pt.fertile = fertile


def _condition_defects(rng: random.Random, pt: Patient, conds: list) -> None:
    """A defect in ~1 % of conditions; the list shuffled 30 % of the time."""
    r = rng.random
    ch = rng.choice
    S = pt.S
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


# ---------------------------------------------------------------------------------------------
# Treatments


def _treatments(rng: random.Random, pt: Patient) -> list:
    tr: list = []
    _anticancer(rng, pt, tr)
    _supportive(rng, pt, tr)
    _other_drugs(rng, pt, tr)
    _treatment_defects(rng, pt, tr)
    return tr


def _anticancer(rng: random.Random, pt: Patient, tr: list) -> None:
    """0-5 prior anticancer lines (regimens of _AGENTS), an investigational drug."""
    r = rng.random
    ri = rng.randint
    ch = rng.choice
    F = pt.F
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


def _supportive(rng: random.Random, pt: Patient, tr: list) -> None:
    """Growth factors, transfusions, corticosteroids (daily dose, route, purpose)."""
    r = rng.random
    ri = rng.randint
    ch = rng.choice
    F, e_ord = pt.F, pt.E
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


def _other_drugs(rng: random.Random, pt: Patient, tr: list) -> None:
    """Immunosuppressants, immunomodulators, live vaccines, concomitant medications."""
    r = rng.random
    ri = rng.randint
    ch = rng.choice
    F = pt.F
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


def _treatment_defects(rng: random.Random, pt: Patient, tr: list) -> None:
    r = rng.random
    ch = rng.choice
    F = pt.F
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


# ---------------------------------------------------------------------------------------------
# Procedures, facts


def _procedures(rng: random.Random, pt: Patient) -> list:
    r = rng.random
    ri = rng.randint
    ch = rng.choice
    S, F, tumor_onset = pt.S, pt.F, pt.tumor_onset
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
    return pr


def _facts(rng: random.Random, pt: Patient) -> dict:
    """The nine facts, each absent ~3 % of the time or (0.3 %) not a boolean."""
    r = rng.random
    ch = rng.choice
    fertile, fever = pt.fertile, pt.fever
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
    return facts
