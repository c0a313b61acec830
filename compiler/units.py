"""UCUM units at compile time, with pint 0.25 and ucumvert, folded to exact fractions.

A conversion is an exact affine map ``to = from * scale + offset`` with ``fractions.Fraction``
coefficients (38 Cel is exactly 100.4 [degF]). The generated evaluator receives only these
numbers; pint is never imported at evaluation time.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import re
import threading
from dataclasses import dataclass
from fractions import Fraction
from typing import Optional

# Units a patient record may carry for a quantity, beyond those a vocabulary element names
# itself. Each element accepts the ones of its own dimension (after molar-mass bridging).
CATALOG: tuple[str, ...] = (
    # mass concentration
    "g/L", "g/dL", "g/mL", "mg/L", "mg/dL", "mg/mL", "ug/L", "ug/dL", "ug/mL", "ng/mL",
    # substance concentration
    "mol/L", "mmol/L", "umol/L", "nmol/L",
    # number concentration
    "10*12/L", "10*9/L", "10*6/L", "10*3/L", "10*3/uL", "10*6/uL", "10*3/mm3", "/uL", "/mm3", "/nL",
    "/mL", "/L",
    # catalytic concentration
    "U/L", "U/mL", "mU/mL", "ukat/L",
    # arbitrary (international) units
    "[IU]/mL", "[IU]/L", "k[IU]/L", "[IU]/uL",
    # flow
    "mL/min", "mL/s", "L/h", "L/min",
    # pressure
    "mm[Hg]", "kPa", "Pa",
    # temperature
    "Cel", "[degF]", "K",
    # time
    "ms", "s", "min", "h", "d", "wk", "mo", "a",
    # mass, length
    "kg", "g", "mg", "ug", "ng", "[lb_av]", "m", "cm", "[in_i]",
)

# Spellings real data uses for UCUM units: alias -> UCUM code.
ALIASES: dict[str, object] = {
    "mmHg": "mm[Hg]", "mm Hg": "mm[Hg]", "mmhg": "mm[Hg]",
    "x10^9/L": "10*9/L", "x10E9/L": "10*9/L", "10^9/L": "10*9/L", "×10^9/L": "10*9/L", "10E9/L": "10*9/L",
    "x10^3/uL": "10*3/uL", "10^3/uL": "10*3/uL", "×10^3/uL": "10*3/uL", "K/uL": "10*3/uL",
    "x10^12/L": "10*12/L", "10^12/L": "10*12/L",
    "x10^6/L": "10*6/L", "10^6/L": "10*6/L",
    "cells/uL": "/uL", "cells/µL": "/uL", "/µL": "/uL", "cells/mm3": "/mm3",
    "/mm^3": "/mm3", "cells/mm^3": "/mm3", "/mm³": "/mm3", "cells/mm³": "/mm3", "mm^3": "mm3",
    # IU/L is an enzyme's U/L on many lab reports, and international units of an antigen or a
    # viral load elsewhere: the element's own units decide (the first of these it accepts)
    "IU/mL": ("[IU]/mL", "U/mL"), "IU/L": ("[IU]/L", "U/L"), "kIU/L": "k[IU]/L",
    "µmol/L": "umol/L", "µg/L": "ug/L", "µg/mL": "ug/mL", "µg": "ug", "mcg": "ug",
    "degC": "Cel", "°C": "Cel", "C": "Cel", "degF": "[degF]", "°F": "[degF]", "F": "[degF]",
    "lb": "[lb_av]", "lbs": "[lb_av]",
    "sec": "s", "msec": "ms", "day": "d", "days": "d", "week": "wk", "weeks": "wk",
    "month": "mo", "months": "mo", "year": "a", "years": "a",
    "IU": "[IU]", "U/l": "U/L", "g/l": "g/L", "g/dl": "g/dL", "mg/dl": "mg/dL", "umol/l": "umol/L",
    "ml/min": "mL/min",
}

# Words a rule author may use for time units (normalised to UCUM).
TIME_WORDS: dict[str, str] = {
    "day": "d", "days": "d", "week": "wk", "weeks": "wk", "month": "mo", "months": "mo",
    "year": "a", "years": "a", "hour": "h", "hours": "h",
}

CALENDAR_UNITS = ("mo", "a")
DAYS_PER: dict[str, Fraction] = {
    "d": Fraction(1), "wk": Fraction(7), "h": Fraction(1, 24), "min": Fraction(1, 1440),
    "s": Fraction(1, 86400), "ms": Fraction(1, 86400000),
}


@dataclass(frozen=True)
class Conversion:
    scale: Fraction
    offset: Fraction = Fraction(0)

    def apply(self, x: Fraction) -> Fraction:
        return x * self.scale + self.offset

    def invert(self) -> "Conversion":
        return Conversion(1 / self.scale, -self.offset / self.scale)


class UnitError(Exception):
    pass


_lock = threading.Lock()


class _DiskCache:
    """Unit facts folded by pint, kept between runs in the user's cache directory.

    Keyed by the versions of pint and ucumvert and verified by compiler/cache.py, so a warm
    `elig compile` never loads the unit registry and never compiles from an edited cache. Set
    ELIG_NO_CACHE=1 to bypass it; an unsafe or unwritable directory just means no cache.
    """

    def __init__(self):
        self.data: Optional[dict] = None
        self.dirty = False
        self.path = None

    def _load(self):
        if self.data is not None:
            return
        self.data = {}
        if os.environ.get("ELIG_NO_CACHE") == "1":
            return
        try:
            from importlib.metadata import version

            from . import cache

            tag = f"pint{version('pint')}-ucumvert{version('ucumvert')}-v3"
        except Exception:
            return
        # verified before use (compiler/cache.py): the key names the library versions and the
        # payload's SHA-256 is checked, so an edited or foreign file is ignored and rebuilt
        self.path = f"units-{tag}.json"
        self.key = cache.entry_key("elig-units", tag)
        try:
            payload = cache.read(self.path, self.key)
            data = json.loads(payload) if payload is not None else None
            if isinstance(data, dict):
                self.data = data
        except ValueError:
            pass
        atexit.register(self.save)

    def get(self, key):
        self._load()
        return self.data.get(key, _MISS)

    def put(self, key, value):
        self._load()
        if self.data.get(key, _MISS) != value:
            self.data[key] = value
            self.dirty = True

    def save(self):
        if not self.dirty or self.path is None:
            return
        from . import cache

        if cache.write(self.path, self.key, json.dumps(self.data, sort_keys=True).encode("utf-8")):
            self.dirty = False


_MISS = object()
_CACHE = _DiskCache()


@functools.lru_cache(maxsize=1)
def _registry():
    with _lock:
        try:
            from ucumvert import PintUcumRegistry
        except ImportError as exc:  # pragma: no cover - installation problem
            raise UnitError(f"the unit library is not installed ({exc}); install elig's dependencies") from exc
        import logging
        import warnings

        logging.getLogger("pint").setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return PintUcumRegistry(non_int_type=Fraction)


def _is_arbitrary(code: str) -> bool:
    return "[IU]" in code or "[iU]" in code or "[arb'U]" in code


@functools.lru_cache(maxsize=None)
def _quantity(code: str):
    """A pint quantity of 1 ``code``; raises UnitError for what UCUM does not define."""
    if code == "1":
        ureg = _registry()
        return ureg.Quantity(Fraction(1), ureg.dimensionless)
    if not code or any(ch.isspace() for ch in code) or len(code) > 60:
        raise UnitError(f"unknown unit {code!r}")
    if re.search(r"10[*^][+-]?0*[0-9]{3,}", code):  # pint would build the power exactly, for minutes
        raise UnitError(f"unit {code!r} has a power of ten beyond 10*99")
    ureg = _registry()
    try:
        q = ureg.from_ucum(code)
    except Exception as exc:  # ucumvert raises lark / pint errors of several kinds
        raise UnitError(f"unknown unit {code!r}") from exc
    if not hasattr(q, "units"):  # a number, or an annotation alone ({score}), which is 1
        try:
            value = Fraction(1) if str(q).startswith("{") else Fraction(str(q))
        except (TypeError, ValueError) as exc:
            raise UnitError(f"unknown unit {code!r}") from exc
        q = ureg.Quantity(value, ureg.dimensionless)
    mag = Fraction(q.magnitude) * _ucum_correction(q)
    base = ureg.Quantity(Fraction(1), q.units)
    return base if mag == 1 else base * mag


# Atoms that pint defines otherwise than UCUM does: pint unit name -> (UCUM's value, its unit).
# UCUM (ucum-essence.xml): m[Hg] = 133.3220 kPa exactly; pint derives it from the density of
# mercury (133.322387415 kPa), which would put 160 mm[Hg] at 21.3315819864 kPa, not 21.33152.
UCUM_VALUES: dict[str, tuple[Fraction, str]] = {
    "meter_Hg": (Fraction("133.3220"), "kilopascal"),
}


def _ucum_correction(q) -> Fraction:
    """The factor that turns pint's value of q's units into UCUM's (1 for almost every unit)."""
    factor = Fraction(1)
    for name, exp in q.unit_items():
        for atom, (value, unit) in UCUM_VALUES.items():
            if name == atom or name.endswith(atom) and name[:-len(atom)] in _PREFIXES:
                ureg = _registry()
                pint_value = Fraction(ureg.Quantity(Fraction(1), atom).to(unit).magnitude)
                factor *= (value / pint_value) ** Fraction(exp)
    return factor


_PREFIXES = frozenset(("yotta", "zetta", "exa", "peta", "tera", "giga", "mega", "kilo", "hecto", "deca", "deci",
                       "centi", "milli", "micro", "nano", "pico", "femto", "atto", "zepto", "yocto"))


def check_unit(code: str) -> Optional[str]:
    """None when ``code`` is a UCUM unit, else the error message."""
    hit = _CACHE.get("check:" + code)
    if hit is not _MISS:
        return hit
    try:
        _quantity(code)
        err = None
    except UnitError as exc:
        err = str(exc)
    _CACHE.put("check:" + code, err)
    return err


def dimension(code: str) -> str:
    hit = _CACHE.get("dim:" + code)
    if hit is not _MISS:
        if hit is None:
            raise UnitError(f"unknown unit {code!r}")
        return hit
    try:
        dims = _dimension(code)
    except UnitError:
        _CACHE.put("dim:" + code, None)
        raise
    _CACHE.put("dim:" + code, dims)
    return dims


def _dimension(code: str) -> str:
    q = _quantity(code)
    items = sorted((str(k), Fraction(v)) for k, v in dict(q.dimensionality).items() if v)
    dims = " ".join(f"{k}^{v}" if v != 1 else k for k, v in items) or "dimensionless"
    if _is_arbitrary(code):
        dims += " [arbitrary]"
    return dims


def is_time(code: str) -> bool:
    try:
        return dimension(code) == "[time]"
    except UnitError:
        return False


def is_dimensionless(code: str) -> bool:
    try:
        return dimension(code) == "dimensionless"
    except UnitError:
        return False


@functools.lru_cache(maxsize=None)
def conversion(src: str, dst: str, molar_mass: Optional[Fraction] = None) -> Optional[Conversion]:
    """The exact map from ``src`` to ``dst``, or None when they do not convert.

    ``molar_mass`` (g/mol) bridges mass and substance concentrations.
    """
    if src == dst:
        return Conversion(Fraction(1))
    key = f"conv:{src}|{dst}|{molar_mass}"
    hit = _CACHE.get(key)
    if hit is not _MISS:
        return None if hit is None else Conversion(Fraction(hit[0]), Fraction(hit[1]))
    conv = _conversion(src, dst, molar_mass)
    _CACHE.put(key, None if conv is None else [str(conv.scale), str(conv.offset)])
    return conv


def _conversion(src: str, dst: str, molar_mass: Optional[Fraction]) -> Optional[Conversion]:
    if _is_arbitrary(src) != _is_arbitrary(dst):
        return None
    try:
        qs = _quantity(src)
        qd = _quantity(dst)
    except UnitError:
        return None
    ureg = _registry()
    candidates = [qs]
    if molar_mass is not None:
        mm = ureg.Quantity(Fraction(molar_mass), ureg.from_ucum("g/mol").units)
        try:
            candidates += [qs / mm, qs * mm]
        except Exception:  # offset units (Cel) have no molar form
            pass
    for q in candidates:
        if q.dimensionality != qd.dimensionality:
            continue
        try:
            per = Fraction(qd.magnitude)  # 1 dst in pint's dst units (a UCUM correction, say)
            one = Fraction(q.to(qd.units).magnitude) / per
            if q is qs:
                zero = Fraction((ureg.Quantity(Fraction(0), qs.units)).to(qd.units).magnitude) / per
            else:
                zero = Fraction(0)
        except Exception:
            continue
        # pint scales by the magnitude of 1 src; _quantity folded the prefix into the magnitude
        scale = Fraction(one) - Fraction(zero)
        offset = Fraction(zero)
        return Conversion(scale, offset)
    return None


def accepted_units(unit: str, extra: tuple[str, ...] = (), molar_mass: Optional[Fraction] = None) -> dict[str, Conversion]:
    """Every unit a patient value of an element may carry, mapped to the element's own unit.

    A dimensionless element accepts only its own unit and the ones it names: a score read as a
    percentage would be a wrong number.
    """
    out: dict[str, Conversion] = {unit: Conversion(Fraction(1))}
    pool = list(extra)
    if not is_dimensionless(unit):
        pool += [u for u in CATALOG if u not in extra]
    for u in pool:
        if u in out:
            continue
        conv = conversion(u, unit, molar_mass)
        if conv is not None:
            out[u] = conv
    return out


def decimal_fraction(text: str) -> Fraction:
    """A decimal literal as written in a rule file, exactly."""
    return Fraction(text)


def time_in_days(value: Fraction, unit: str) -> Optional[Fraction]:
    """An exact duration in days for d/wk/h/min/s/ms; None for calendar units (mo, a)."""
    return value * DAYS_PER[unit] if unit in DAYS_PER else None
