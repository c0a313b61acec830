"""Unit conversions against UCUM itself: every unit a patient record may carry (the catalog) is
checked against a small, independent reading of ucum-essence.xml (the file ucumvert vendors),
so that a unit pint defines otherwise than UCUM (mm[Hg]: 133.322387415 Pa in pint, 133.3220 Pa
in UCUM) cannot slip into the evaluator's limits."""

import re
import xml.etree.ElementTree as ET
from fractions import Fraction
from importlib import resources

import pytest

from compiler import units as U

BASE = {"m": "L", "s": "T", "g": "M", "rad": "A", "K": "C", "C": "Q", "cd": "F"}


class Essence:
    """Exact factors and dimensions of UCUM units, from the definitions of ucum-essence.xml."""

    def __init__(self):
        path = resources.files("ucumvert").joinpath("vendor", "ucum-essence.xml")
        root = ET.fromstring(path.read_bytes())
        self.prefixes = {}
        self.units = {}
        for el in root.iter():
            tag = el.tag.rsplit("}", 1)[-1]
            if tag not in ("prefix", "unit"):
                continue
            v = next(c for c in el if c.tag.rsplit("}", 1)[-1] == "value")
            if tag == "prefix":
                self.prefixes[el.get("Code")] = Fraction(v.get("value"))
                continue
            u = el
            special = u.get("isSpecial") == "yes"
            self.units[u.get("Code")] = (v.get("Unit"), v.get("value"), special, u.get("isArbitrary") == "yes")

    def atom(self, code: str):
        if code in BASE:
            return Fraction(1), {BASE[code]: 1}
        unit, value, special, arbitrary = self.units[code]
        if special or arbitrary:
            raise KeyError(code)
        f, dims = self.term(unit)
        return f * Fraction(value), dims

    def term(self, text: str):
        text = re.sub(r"\{[^}]*\}", "", text)
        if text in ("", "1"):
            return Fraction(1), {}
        factor, dims = Fraction(1), {}
        # UCUM: '.' and '/' bind left to right; a leading '/' divides 1
        for op, comp in re.findall(r"([./]?)([^./]+)", text):
            f, d = self.component(comp)
            sign = -1 if op == "/" else 1
            factor *= f ** sign
            for k, v in d.items():
                dims[k] = dims.get(k, 0) + sign * v
        return factor, {k: v for k, v in dims.items() if v}

    def component(self, comp: str):
        m = re.fullmatch(r"10[*^]([+-]?\d+)", comp)
        if m:
            return Fraction(10) ** int(m.group(1)), {}
        if comp.isdigit():
            return Fraction(int(comp)), {}
        m = re.fullmatch(r"(.*?)([+-]?\d+)?", comp)
        name, exp = m.group(1), int(m.group(2) or 1)
        if name in self.units or name in BASE:
            f, d = self.atom(name)
        else:
            for p in sorted(self.prefixes, key=len, reverse=True):
                if name.startswith(p) and (name[len(p):] in self.units or name[len(p):] in BASE):
                    f, d = self.atom(name[len(p):])
                    f *= self.prefixes[p]
                    break
            else:
                raise KeyError(comp)
        return f ** exp, {k: v * exp for k, v in d.items()}


@pytest.fixture(scope="module")
def essence():
    return Essence()


# Each catalog family with the unit it is converted to; special units (Cel, [degF]) and the
# arbitrary [IU] are checked by their own test below.
FAMILIES = {
    "g/L": ["g/L", "g/dL", "g/mL", "mg/L", "mg/dL", "mg/mL", "ug/L", "ug/dL", "ug/mL", "ng/mL"],
    "umol/L": ["mol/L", "mmol/L", "umol/L", "nmol/L"],
    "10*9/L": ["10*12/L", "10*9/L", "10*6/L", "10*3/L", "10*3/uL", "10*6/uL", "10*3/mm3", "/uL", "/mm3",
               "/nL", "/mL", "/L"],
    "U/L": ["U/L", "U/mL", "mU/mL", "ukat/L"],
    "mL/min": ["mL/min", "mL/s", "L/h", "L/min"],
    "mm[Hg]": ["mm[Hg]", "kPa", "Pa"],
    "d": ["ms", "s", "min", "h", "d", "wk", "mo", "a"],
    "kg": ["kg", "g", "mg", "ug", "ng", "[lb_av]"],
    "cm": ["m", "cm", "[in_i]"],
}


def test_every_catalog_unit_is_checked():
    covered = {u for family in FAMILIES.values() for u in family} | {"Cel", "[degF]", "K", "[IU]/mL", "[IU]/L",
                                                                     "k[IU]/L", "[IU]/uL"}
    assert set(U.CATALOG) <= covered, set(U.CATALOG) - covered


@pytest.mark.parametrize("dst,src", [(dst, src) for dst, family in FAMILIES.items() for src in family])
def test_conversion_factor_is_ucums_exactly(essence, dst, src):
    fs, ds = essence.term(src)
    fd, dd = essence.term(dst)
    assert ds == dd, (src, dst)
    conv = U.conversion(src, dst)
    assert conv is not None, (src, dst)
    assert conv.offset == 0
    assert conv.scale == fs / fd, f"1 {src} = {conv.scale} {dst} here, {fs / fd} in UCUM"


def test_blood_pressure_limits_in_kpa_are_ucums():
    # UCUM: m[Hg] = 133.3220 kPa, so 160 mm[Hg] = 21.33152 kPa and 100 mm[Hg] = 13.3322 kPa
    assert U.conversion("mm[Hg]", "kPa").apply(Fraction(160)) == Fraction("21.33152")
    assert U.conversion("kPa", "mm[Hg]").apply(Fraction("13.3322")) == 100
    assert U.conversion("cm[Hg]", "mm[Hg]").scale == 10


def test_special_and_arbitrary_units():
    # Cel and [degF] are UCUM special units (functions): 38 Cel is exactly 100.4 [degF]
    assert U.conversion("[degF]", "Cel").apply(Fraction("100.4")) == 38
    assert U.conversion("K", "Cel").apply(Fraction("273.15")) == 0
    # arbitrary units convert only among themselves, never to U/L or to a count
    assert U.conversion("k[IU]/L", "[IU]/mL").scale == 1
    assert U.conversion("[IU]/uL", "[IU]/mL").scale == 1000
    assert U.conversion("[IU]/L", "U/L") is None
