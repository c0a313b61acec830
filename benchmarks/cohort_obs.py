"""The observations of one synthetic SM3321 record (benchmarks/cohort.py), section by section.

``observations(rng, pt)`` draws, in this order: the lab dates, the lab panel's units, upper
limits and baselines, weight and serum creatinine (Cockcroft-Gault around 50 mL/min), the lab
panel at each date, the vital signs at 1-5 visits, the screening assessments (ECOG, life
expectancy, RECIST lesions, QTcF, LVEF, serology, CD4, pregnancy test, height), more vital-sign
visits up to 30-80 observations, and the defects of a few percent of them. The order of the
random draws is the generator's contract: record ``i`` of a seed must not change.
"""

from __future__ import annotations

import random
from typing import Callable

if __package__:
    from .cohort_tables import (
        _ANC_UNITS, _AST_ULN, _ALT_ULN, _BILI_ULN, _BILI_UNITS, _BP_UNITS, _CD4_UNITS, _CREA_UNITS,
        _HB_UNITS, _INR_ULN, _PLT_UNITS, _QT_UNITS, _WT_UNITS, P_NEAR, Patient, _clamp, _iso, _near,
        _pick_unit, _q, _spoil_obs)
else:  # benchmarks/ on sys.path (the script, ``import cohort``)
    from cohort_tables import (  # type: ignore[no-redef]
        _ANC_UNITS, _AST_ULN, _ALT_ULN, _BILI_ULN, _BILI_UNITS, _BP_UNITS, _CD4_UNITS, _CREA_UNITS,
        _HB_UNITS, _INR_ULN, _PLT_UNITS, _QT_UNITS, _WT_UNITS, P_NEAR, Patient, _clamp, _iso, _near,
        _pick_unit, _q, _spoil_obs)

Add = Callable[[dict], None]


def observations(rng: random.Random, pt: Patient) -> list:
    """The 30-80 observations of patient ``pt``; sets ``pt.fever`` (a temperature above 38 Cel)."""
    obs: list = []
    add = obs.append
    lab_dates = _lab_dates(rng, pt)
    labs = _Labs(rng, pt)
    labs.draw(rng, pt, lab_dates, add)
    vit = _Vitals(rng, pt, labs, add)
    for i, d in enumerate(vit.dates):
        vit.visit(d, i == 0 or rng.random() < 0.5)
    _ecog_life_lesions(rng, pt, add)
    _ecg_lvef(rng, pt, add)
    _serology(rng, pt, add)
    _pregnancy_height(rng, pt, add)
    _more_visits(rng, pt, obs, vit, labs)
    _defects(rng, pt, obs)
    pt.fever = vit.fever
    return obs


def _reading(rng: random.Random, near: bool, limit: float, base: float, unit: tuple, span: int,
             sd: float):
    """A value in ``unit`` (a unit-table row): within ``span`` rounding steps of ``limit`` if
    ``near``, else ``base`` with a relative Gaussian noise of ``sd``."""
    if near:
        return _near(rng, limit * unit[1], unit[2], unit[3], span)
    return _q(base * unit[1] * (1 + rng.gauss(0, sd)), unit[2], unit[3])


# ---------------------------------------------------------------------------------------------
# Lab panel


def _lab_dates(rng: random.Random, pt: Patient) -> list:
    """2-5 lab dates: screening, usually one inside the 7-day window, older ones, rarely after."""
    r = rng.random
    ri = rng.randint
    ch = rng.choice
    S, F, e_ord = pt.S, pt.F, pt.E
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
    return lab_dates


class _Labs:
    """One patient's lab panel: units, upper limits, nearness to each limit and baselines, then
    weight and serum creatinine; ``draw`` writes the panel at each lab date."""

    def __init__(self, rng: random.Random, pt: Patient) -> None:
        r = rng.random
        ch = rng.choice
        near = P_NEAR
        liver_met, gilbert = pt.liver_met, pt.gilbert
        self.hb_u = _pick_unit(rng, _HB_UNITS)
        self.plt_u = _pick_unit(rng, _PLT_UNITS)
        self.anc_u = _pick_unit(rng, _ANC_UNITS)
        self.cre_u = _pick_unit(rng, _CREA_UNITS)
        self.bili_u = _pick_unit(rng, _BILI_UNITS)
        self.ast_uln = ch(_AST_ULN)
        self.alt_uln = ch(_ALT_ULN)
        self.bili_uln = ch(_BILI_ULN[self.bili_u[0]])
        self.inr_uln = ch(_INR_ULN)
        self.inr_q = (0.01, 2) if r() < 0.75 else (0.1, 1)
        self.inr_unit = r() < 0.8

        self.hb_near = r() < near
        self.hb_base = _clamp(rng.gauss(122, 17), 55, 185)
        self.plt_near = r() < near
        self.plt_base = _clamp(rng.lognormvariate(5.44, 0.35), 15, 700)
        self.anc_near = r() < near
        self.anc_base = _clamp(rng.lognormvariate(1.33, 0.45), 0.2, 15)
        self.ast_near = r() < near
        self.ast_mult = 5 if (liver_met and r() < 0.6) or (not liver_met and r() < 0.2) else 2.5
        self.ast_base = self.ast_uln * rng.lognormvariate(-0.35, 0.45)
        self.alt_near = r() < near
        self.alt_mult = 5 if (liver_met and r() < 0.6) or (not liver_met and r() < 0.2) else 2.5
        self.alt_base = self.alt_uln * rng.lognormvariate(-0.45, 0.5)
        self.bili_near = r() < near
        self.bili_mult = 3 if (gilbert and r() < 0.7) or (not gilbert and r() < 0.15) else 1.5
        self.bili_base = self.bili_uln * rng.lognormvariate(-0.8, 0.45) * (2.2 if gilbert else 1.0)
        self.inr_near = r() < near
        self.inr_base = _clamp(rng.gauss(1.03, 0.09), 0.8, 3.5)
        self._weight_creatinine(rng, pt)

    def _weight_creatinine(self, rng: random.Random, pt: Patient) -> None:
        """Weight, and creatinine so that Cockcroft-Gault is around 50 mL/min for ~30 % (a few
        exactly 50 with mg/dL creatinine: ``exact_cg`` = (creatinine, weight))."""
        r = rng.random
        age, female = pt.age, pt.female
        self.wt_u = _pick_unit(rng, _WT_UNITS)
        self.wt_base = _clamp(rng.gauss(64 if female else 72, 13), 35, 160)
        exact_cg = None
        if r() < 0.03 and age < 139:
            for c in ((0.85, 1.7) if female else (1.0, 1.2, 1.5, 2.0)):
                w = 3600 * c / ((140 - age) * (0.85 if female else 1.0))
                if abs(w * 10 - round(w * 10)) < 1e-9 and 30 <= w <= 160:
                    exact_cg = (c, round(w, 1))
                    break
        if exact_cg:
            self.wt_u = ("kg", 1.0, 0.1, 1, 0)
            self.cre_u = ("mg/dL", 1.0, 0.01, 2, 0)
            self.wt_base = exact_cg[1]
        self.exact_cg = exact_cg
        cg_target = (rng.uniform(38, 62) if r() < 0.3
                     else _clamp(rng.lognormvariate(4.45, 0.35), 15, 250))
        self.cre_base = max(0.2, (140 - age) * self.wt_base * (0.85 if female else 1.0)
                            / (72 * cg_target))

    def draw(self, rng: random.Random, pt: Patient, lab_dates: list, add: Add) -> None:
        last_pre = max((d for d in lab_dates if d <= pt.F), default=None)
        for i, d in enumerate(lab_dates):
            iso_d = _iso(d)
            self._blood_counts(rng, iso_d, add)
            self._liver(rng, iso_d, add)
            self._creatinine_inr(rng, iso_d, i == 0, d == last_pre, add)
            for code in ("ldh", "albumin", "alkaline_phosphatase", "potassium"):
                if rng.random() < 0.05:
                    add({"code": code, "value": round(rng.uniform(3, 300), 1), "unit": "U/L"
                         if code != "albumin" and code != "potassium" else
                         ("g/L" if code == "albumin" else "mmol/L"), "date": iso_d})

    def _blood_counts(self, rng: random.Random, iso_d: str, add: Add) -> None:
        r = rng.random
        if r() < 0.96:
            v = _reading(rng, self.hb_near, 90, self.hb_base, self.hb_u, 6, 0.04)
            add({"code": "hemoglobin", "value": v, "unit": self.hb_u[0], "date": iso_d})
        if r() < 0.96:
            v = _reading(rng, self.plt_near, 100, self.plt_base, self.plt_u, 8, 0.08)
            add({"code": "platelets", "value": v, "unit": self.plt_u[0], "date": iso_d})
        if r() < 0.94:
            v = _reading(rng, self.anc_near, 1.5, self.anc_base, self.anc_u, 8, 0.12)
            add({"code": "neutrophils", "value": v, "unit": self.anc_u[0], "date": iso_d})

    def _liver(self, rng: random.Random, iso_d: str, add: Add) -> None:
        r = rng.random
        if r() < 0.96:
            uln = self.ast_uln
            v = (_near(rng, self.ast_mult * uln, 1, 0, 6) if self.ast_near
                 else max(5, _q(self.ast_base * (1 + rng.gauss(0, 0.1)), 1, 0)))
            add({"code": "ast", "value": v, "unit": "U/L", "uln": uln, "date": iso_d})
        if r() < 0.96:
            uln = self.alt_uln
            v = (_near(rng, self.alt_mult * uln, 1, 0, 6) if self.alt_near
                 else max(4, _q(self.alt_base * (1 + rng.gauss(0, 0.1)), 1, 0)))
            add({"code": "alt", "value": v, "unit": "U/L", "uln": uln, "date": iso_d})
        if r() < 0.95:
            uln = self.bili_uln
            bq, bn = self.bili_u[2], self.bili_u[3]
            v = (_near(rng, self.bili_mult * uln, bq, bn, 4) if self.bili_near
                 else max(bq, _q(self.bili_base * (1 + rng.gauss(0, 0.1)), bq, bn)))
            add({"code": "total_bilirubin", "value": v, "unit": self.bili_u[0], "uln": uln,
                 "date": iso_d})

    def _creatinine_inr(self, rng: random.Random, iso_d: str, first: bool, last: bool,
                        add: Add) -> None:
        r = rng.random
        exact_cg, cre_u = self.exact_cg, self.cre_u
        if r() < 0.95 or (exact_cg and last):
            if exact_cg and last:
                v = exact_cg[0]
            else:
                v = max(cre_u[2], _q(self.cre_base * cre_u[1] * (1 + rng.gauss(0, 0.06)),
                                     cre_u[2], cre_u[3]))
            add({"code": "serum_creatinine", "value": v, "unit": cre_u[0], "date": iso_d})
        if r() < (0.9 if first else 0.75):
            inr_q, inr_uln = self.inr_q, self.inr_uln
            if self.inr_near:
                v = _near(rng, 1.5 * inr_uln, inr_q[0], inr_q[1], 5 if inr_q[0] < 0.1 else 2)
            else:
                v = _q(self.inr_base * (1 + rng.gauss(0, 0.03)), inr_q[0], inr_q[1])
            o = {"code": "inr", "value": v}
            if self.inr_unit:
                o["unit"] = "1"
            o["uln"] = inr_uln
            o["date"] = iso_d
            add(o)


# ---------------------------------------------------------------------------------------------
# Vital signs


class _Vitals:
    """One patient's visit dates and vital-sign parameters; ``visit`` writes one visit's blood
    pressure, temperature (recording fever), weight if weighed and sometimes heart rate."""

    def __init__(self, rng: random.Random, pt: Patient, labs: _Labs, add: Add) -> None:
        r = rng.random
        ri = rng.randint
        ch = rng.choice
        near = P_NEAR
        S, F, e_ord = pt.S, pt.F, pt.E
        vit_dates = [S]
        for _ in range(ri(1, 5)):
            vit_dates.append(ch((e_ord, F, F, F - 1, S - ri(1, 30), F - ri(1, 7), F + 1)))
        self.dates = sorted(set(vit_dates))
        self.bp_u = _BP_UNITS[1] if r() < 0.06 else _BP_UNITS[0]
        self.t_f = r() < 0.15
        self.sbp_near = r() < near
        self.dbp_near = r() < near
        self.sbp_base = _clamp(rng.gauss(127, 14), 85, 210)
        self.dbp_base = _clamp(rng.gauss(77, 9), 45, 125)
        self.temp_near = r() < near
        self.fever = False
        self.wt_dates: list = []
        self.wt_u, self.wt_base = labs.wt_u, labs.wt_base
        self.rng, self.add = rng, add

    def visit(self, d: int, weigh: bool) -> None:
        rng, add = self.rng, self.add
        r = rng.random
        ri = rng.randint
        iso_d = _iso(d)
        if r() < 0.97:
            bp_u = self.bp_u
            v = _reading(rng, self.sbp_near, 160, self.sbp_base, bp_u, 5, 0.05)
            add({"code": "systolic_bp", "value": v, "unit": bp_u[0], "date": iso_d})
            v = _reading(rng, self.dbp_near, 100, self.dbp_base, bp_u, 4, 0.05)
            add({"code": "diastolic_bp", "value": v, "unit": bp_u[0], "date": iso_d})
        if r() < 0.93:
            if self.temp_near and r() < 0.6:
                c = round(38 + ri(-4, 4) * 0.1, 1)
            else:
                c = _clamp(rng.gauss(36.7, 0.35), 35.5, 41)
            if c > 38.0001:
                self.fever = True
            if self.t_f:
                v = _near(rng, c * 9 / 5 + 32, 0.1, 1, 0)
                add({"code": "body_temperature", "value": v, "unit": "[degF]", "date": iso_d})
            else:
                add({"code": "body_temperature", "value": round(c, 1), "unit": "Cel", "date": iso_d})
        if weigh:
            wt_u = self.wt_u
            self.wt_dates.append(d)
            add({"code": "weight", "value": _q(self.wt_base * wt_u[1] * (1 + rng.gauss(0, 0.012)),
                                                wt_u[2], wt_u[3]), "unit": wt_u[0], "date": iso_d})
        if r() < 0.12:
            add({"code": "heart_rate", "value": ri(55, 115), "unit": "/min", "date": iso_d})


# ---------------------------------------------------------------------------------------------
# Screening assessments


def _ecog_life_lesions(rng: random.Random, pt: Patient, add: Add) -> None:
    r = rng.random
    ri = rng.randint
    ch = rng.choice
    S, F, e_ord = pt.S, pt.F, pt.E
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


def _ecg_lvef(rng: random.Random, pt: Patient, add: Add) -> None:
    """QTcF at one or two ECG dates (sometimes in triplicate), LVEF."""
    r = rng.random
    ri = rng.randint
    ch = rng.choice
    S, F, e_ord = pt.S, pt.F, pt.E
    near = P_NEAR
    qt_u = _pick_unit(rng, _QT_UNITS)
    qt_near = r() < near
    qt_limit = 450 if (not pt.female) == (r() < 0.7) else 470
    qt_base = _clamp(rng.gauss(422, 18), 360, 520)
    ecg_dates = [S - ri(0, 7)] + ([ch((F - 1, F, e_ord))] if r() < 0.25 else [])
    if r() < 0.97:
        for d in ecg_dates:
            for _ in range(3 if r() < 0.3 else 1):
                v = _reading(rng, qt_near, qt_limit, qt_base, qt_u, 5, 0.015)
                add({"code": "qtcf", "value": v, "unit": qt_u[0], "date": _iso(d)})
    if r() < 0.9:
        v = _near(rng, 50, 1, 0, 4) if r() < near else int(_clamp(rng.gauss(61, 6), 20, 80))
        add({"code": "lvef", "value": v, "unit": "%",
             "date": _iso(S - ri(0, 28) if r() < 0.8 else F - ri(29, 90))})


def _serology(rng: random.Random, pt: Patient, add: Add) -> None:
    """Hepatitis B and C serology (one date), CD4 count for HIV."""
    r = rng.random
    ri = rng.randint
    ch = rng.choice
    S, F = pt.S, pt.F
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
    if pt.hiv and r() < 0.9:
        cu = _pick_unit(rng, _CD4_UNITS)
        v = (_near(rng, 350 * cu[1], cu[2], cu[3], 15 if cu[2] >= 1 else 3) if r() < 0.35
             else _q(_clamp(rng.lognormvariate(6.25, 0.5), 20, 1500) * cu[1], cu[2], cu[3]))
        add({"code": "cd4_count", "value": v, "unit": cu[0], "date": _iso(S - ri(0, 40))})


def _pregnancy_height(rng: random.Random, pt: Patient, add: Add) -> None:
    r = rng.random
    ri = rng.randint
    S, F, female = pt.S, pt.F, pt.female
    if female and pt.fertile and r() < 0.9:
        add({"code": "serum_pregnancy_test", "value": "negative" if r() < 0.995 else "positive",
             "date": _iso(F - ri(0, 5))})
        if r() < 0.4:
            add({"code": "serum_pregnancy_test", "value": "negative", "date": _iso(S - ri(0, 3))})
    if r() < 0.15:
        add({"code": "height", "value": round(rng.gauss(158 if female else 170, 8)), "unit": "cm",
             "date": _iso(S)})


# ---------------------------------------------------------------------------------------------
# More visits, defects


def _more_visits(rng: random.Random, pt: Patient, obs: list, vit: _Vitals, labs: _Labs) -> None:
    """More vital-sign visits up to a drawn target of 30-80 observations; the exact
    Cockcroft-Gault weight on the latest weighing on or before first_dose; at most 80."""
    r = rng.random
    ri = rng.randint
    F = pt.F
    target = int(rng.triangular(30, 81, 36))
    while len(obs) < target:
        d = F - ri(0, 35)
        if d not in vit.dates:
            vit.dates.append(d)
            vit.visit(d, r() < 0.3)
    if labs.exact_cg:  # the most recent weight on or before first_dose is the exact one
        last_wt = max((d for d in vit.wt_dates if d <= F), default=None)
        if last_wt is not None:
            key = _iso(last_wt)
            for o in reversed(obs):
                if o["code"] == "weight" and o["date"] == key:
                    o["value"] = labs.exact_cg[1]
                    break
    while len(obs) > 80:
        del obs[rng.randrange(len(obs))]


def _defects(rng: random.Random, pt: Patient, obs: list) -> None:
    """A few percent of observations spoilt; the list sorted by date 70 % of the time."""
    r = rng.random
    for o in obs:
        if r() < 0.022:
            _spoil_obs(rng, o, pt.F - 3)
    if r() < 0.7:
        obs.sort(key=_obs_key)


def _obs_key(o: dict):
    d = o.get("date")
    return d if isinstance(d, str) else ""
