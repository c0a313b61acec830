"""Exact numbers in SQL (DuckDB dialect).

A number is a STRUCT(f DOUBLE, n HUGEINT, d HUGEINT): f is its binary floating-point value (the
fast pass, as in the Python evaluator) and n/d its exact value as a reduced fraction with d > 0
(NULL where 128-bit integers overflow: only numbers far beyond any clinical value). A comparison
decides in floats where the two sides are clearly apart and exactly where they are within
rounding of each other, as ``_cmp3``/``_n_cmp`` of compiler/runtime.py do; so 1.8 is exactly
1.5 x 1.2 and 100.4 [degF] is exactly 38 Cel.

A record number is exact as its shortest decimal (Python's ``Fraction(repr(x))``): DuckDB's
DOUBLE to VARCHAR cast gives the same shortest round-trip text, read as DECIMAL(38,18).
"""

from __future__ import annotations

from fractions import Fraction

# DuckDB macros of the screening script (the preamble of every DuckDB artifact).
MACROS = r"""
CREATE OR REPLACE TEMP MACRO elig_num(f, n, d) AS
    list_transform([{'f': CAST(f AS DOUBLE), 'n': TRY(CAST(n AS HUGEINT)), 'd': TRY(CAST(d AS HUGEINT))}], lambda z:
        CASE WHEN z.n IS NULL OR z.d IS NULL OR z.d = 0 THEN {'f': z.f, 'n': CAST(NULL AS HUGEINT), 'd': CAST(NULL AS HUGEINT)}
             ELSE {'f': z.f, 'n': TRY((CASE WHEN z.d < 0 THEN -z.n ELSE z.n END) // gcd(z.n, z.d)),
                   'd': TRY(abs(z.d) // gcd(z.n, z.d))} END)[1];
CREATE OR REPLACE TEMP MACRO elig_rec(v, raw) AS
    list_transform([{'v': v, 'raw': raw}], lambda z: CASE WHEN z.v IS NULL THEN NULL ELSE elig_num(z.v,
        CAST(replace(CAST(TRY_CAST(CASE WHEN regexp_full_match(z.raw, '-?[0-9]+') THEN z.raw ELSE CAST(z.v AS VARCHAR) END
                                   AS DECIMAL(38, 18)) AS VARCHAR), '.', '') AS HUGEINT),
        CAST('1000000000000000000' AS HUGEINT)) END)[1];
CREATE OR REPLACE TEMP MACRO elig_mant(t) AS split_part(t, 'e', 1);
CREATE OR REPLACE TEMP MACRO elig_scale(t) AS
    (CASE WHEN contains(elig_mant(t), '.') THEN length(elig_mant(t)) - strpos(elig_mant(t), '.') ELSE 0 END)
    - coalesce(TRY_CAST(nullif(split_part(t, 'e', 2), '') AS INTEGER), 0);
CREATE OR REPLACE TEMP MACRO elig_dec(v, t) AS
    list_transform([{'v': v, 't': t}], lambda zd: CASE WHEN zd.v IS NULL THEN NULL ELSE
    {'f': CAST(zd.v AS DOUBLE),
     'n': TRY(CAST(replace(elig_mant(zd.t), '.', '') AS HUGEINT) * CAST('1' || repeat('0', greatest(0, -elig_scale(zd.t))) AS HUGEINT)),
     'd': TRY(CAST('1' || repeat('0', greatest(0, elig_scale(zd.t))) AS HUGEINT))} END)[1];
CREATE OR REPLACE TEMP MACRO elig_textn(v, vi) AS
    CASE WHEN vi IS NOT NULL THEN CAST(vi AS VARCHAR) ELSE CAST(v AS VARCHAR) END;
CREATE OR REPLACE TEMP MACRO elig_int(raw) AS
    CASE WHEN regexp_full_match(raw, '-?[0-9]{1,38}') THEN TRY_CAST(raw AS HUGEINT) END;
CREATE OR REPLACE TEMP MACRO elig_text(v, raw) AS
    CASE WHEN regexp_full_match(raw, '-?[0-9]+') THEN raw ELSE CAST(v AS VARCHAR) END;
CREATE OR REPLACE TEMP MACRO elig_add(a, b) AS
    list_transform([{'a': a, 'b': b}], lambda z: elig_num(z.a.f + z.b.f, TRY(z.a.n * z.b.d + z.b.n * z.a.d), TRY(z.a.d * z.b.d)))[1];
CREATE OR REPLACE TEMP MACRO elig_sub(a, b) AS
    list_transform([{'a': a, 'b': b}], lambda z: elig_num(z.a.f - z.b.f, TRY(z.a.n * z.b.d - z.b.n * z.a.d), TRY(z.a.d * z.b.d)))[1];
CREATE OR REPLACE TEMP MACRO elig_mul(a, b) AS
    list_transform([{'a': a, 'b': b}], lambda z: elig_num(z.a.f * z.b.f, TRY(z.a.n * z.b.n), TRY(z.a.d * z.b.d)))[1];
CREATE OR REPLACE TEMP MACRO elig_div(a, b) AS
    list_transform([{'a': a, 'b': b}], lambda z: elig_num(z.a.f / z.b.f, TRY(z.a.n * z.b.d), TRY(z.a.d * z.b.n)))[1];
CREATE OR REPLACE TEMP MACRO elig_sign(a, b) AS
    list_transform([{'a': a, 'b': b}], lambda z:
    CASE WHEN z.a.f - z.b.f > 1e-9 * (abs(z.b.f) + 1.0) THEN 1
         WHEN z.a.f - z.b.f < -1e-9 * (abs(z.b.f) + 1.0) THEN -1
         WHEN z.a.n IS NOT NULL AND z.b.n IS NOT NULL AND TRY(z.a.n * z.b.d - z.b.n * z.a.d) IS NOT NULL
              THEN sign(z.a.n * z.b.d - z.b.n * z.a.d)
         ELSE sign(z.a.f - z.b.f) END)[1];
CREATE OR REPLACE TEMP MACRO elig_sign_rec(v, raw, b) AS
    list_transform([{'v': v, 'raw': raw, 'b': b}], lambda zs:
    CASE WHEN zs.v - zs.b.f > 1e-9 * (abs(zs.b.f) + 1.0) THEN 1
         WHEN zs.v - zs.b.f < -1e-9 * (abs(zs.b.f) + 1.0) THEN -1
         ELSE elig_sign(elig_dec(zs.v, elig_textn(zs.v, zs.raw)), zs.b) END)[1];
CREATE OR REPLACE TEMP MACRO elig_sign_ref(v, raw, k, r, rraw) AS
    list_transform([{'v': v, 'raw': raw, 'k': k, 'r': r, 'rraw': rraw}], lambda zs:
    CASE WHEN zs.v - zs.k.f * zs.r > 1e-9 * (abs(zs.k.f * zs.r) + 1.0) THEN 1
         WHEN zs.v - zs.k.f * zs.r < -1e-9 * (abs(zs.k.f * zs.r) + 1.0) THEN -1
         ELSE elig_sign(elig_dec(zs.v, elig_textn(zs.v, zs.raw)), elig_mul(zs.k, elig_dec(zs.r, elig_textn(zs.r, zs.rraw)))) END)[1];
CREATE OR REPLACE TEMP MACRO elig_zero(a) AS
    list_transform([a], lambda z: CASE WHEN z.n IS NOT NULL THEN z.n = 0 ELSE z.f = 0 END)[1];
CREATE OR REPLACE TEMP MACRO elig_floor(a) AS
    list_transform([a], lambda z: CASE WHEN z.n IS NOT NULL THEN (CASE WHEN z.n >= 0 THEN z.n // z.d ELSE -((-z.n + z.d - 1) // z.d) END)
         ELSE floor(z.f) END)[1];
CREATE OR REPLACE TEMP MACRO elig_dedupe(l) AS
    list_transform([l], lambda z: list_filter(z, lambda x, i: list_position(z, x) = i))[1];
"""


def const(x: Fraction) -> str:
    """A number literal."""
    x = Fraction(x)
    return (f"{{'f': CAST({float(x)!r} AS DOUBLE), 'n': CAST('{x.numerator}' AS HUGEINT), "
            f"'d': CAST('{x.denominator}' AS HUGEINT)}}")


def holds(op: str, sign: str) -> str:
    return {">=": f"({sign} >= 0)", "<=": f"({sign} <= 0)", ">": f"({sign} > 0)", "<": f"({sign} < 0)",
            "=": f"({sign} = 0)", "!=": f"({sign} <> 0)"}[op]
