"""Exact numbers in SQL (DuckDB dialect).

A number is a STRUCT(f DOUBLE, n HUGEINT, d HUGEINT, e INTEGER): f is its binary floating-point
value (the fast pass, as in the Python evaluator) and n/d x 10^e its exact value, n/d a reduced
fraction with d > 0 (NULL where 128-bit integers overflow: after the exponent is taken out, only
sums of numbers of very different sizes and products of many long digit strings). A comparison
decides in floats where the two sides are clearly apart and exactly where they are within
rounding of each other, as ``_cmp3``/``_n_cmp`` of compiler/runtime.py do; so 1.8 is exactly
1.5 x 1.2 and 100.4 [degF] is exactly 38 Cel.

A record number is exact as its shortest decimal (Python's ``Fraction(repr(x))``): DuckDB's
DOUBLE to VARCHAR cast gives the same shortest round-trip text. Near a constant limit or k x a
reference, the relational script compares it by keys (elig_xkey, elig_ksign: texts that sort as
the numbers do, exact at any exponent, cheap to bind), not by fractions; so do elig_sign_rec and
elig_sign_ref (the lambda form's comparisons; elig_ckey takes the multiplier from the number
struct at run time). Computed numbers (elig_add/elig_mul/elig_div) carry the exponent: a record
number is its digits (trailing zeros dropped) times 10^e, a product adds exponents, a sum aligns
them; elig_sign compares n x d' x 10^e with n' x d x 10^e' by sign, magnitude and digits
(elig_esign) and is NULL (unknown), never the doubles' sign, where those products pass 128 bits.
"""

from __future__ import annotations

from fractions import Fraction

# DuckDB macros of the screening script (the preamble of every DuckDB artifact).
MACROS = r"""
CREATE OR REPLACE TEMP MACRO elig_p10(k) AS
    TRY_CAST('1' || repeat('0', k) AS HUGEINT);
CREATE OR REPLACE TEMP MACRO elig_nume(f, n, d, e) AS
    list_transform([{'f': CAST(f AS DOUBLE), 'n': TRY(CAST(n AS HUGEINT)), 'd': TRY(CAST(d AS HUGEINT)), 'e': TRY(CAST(e AS INTEGER))}], lambda z:
        CASE WHEN z.n IS NULL OR z.d IS NULL OR z.d = 0 OR z.e IS NULL
             THEN {'f': z.f, 'n': CAST(NULL AS HUGEINT), 'd': CAST(NULL AS HUGEINT), 'e': CAST(0 AS INTEGER)}
             ELSE {'f': z.f, 'n': TRY((CASE WHEN z.d < 0 THEN -z.n ELSE z.n END) // gcd(z.n, z.d)),
                   'd': TRY(abs(z.d) // gcd(z.n, z.d)), 'e': z.e} END)[1];
CREATE OR REPLACE TEMP MACRO elig_num(f, n, d) AS
    elig_nume(f, n, d, 0);
CREATE OR REPLACE TEMP MACRO elig_dec(v, t) AS
    list_transform([{'v': v, 'g': regexp_extract(t, '^(-?[0-9]*)\.?([0-9]*)(?:e([-+]?[0-9]+))?$', ['i', 'f', 'x'])}], lambda zd:
    CASE WHEN zd.v IS NULL THEN NULL ELSE list_transform([rtrim(zd.g.i || zd.g.f, '0')], lambda zt:
    {'f': CAST(zd.v AS DOUBLE),
     'n': CASE WHEN ltrim(zt, '-') = '' THEN CAST(0 AS HUGEINT) ELSE TRY_CAST(zt AS HUGEINT) END,
     'd': CAST(1 AS HUGEINT),
     'e': TRY(CAST(coalesce(TRY_CAST(zd.g.x AS INTEGER), 0) - length(zd.g.f) + length(zd.g.i || zd.g.f) - length(zt) AS INTEGER))})[1] END)[1];
CREATE OR REPLACE TEMP MACRO elig_textn(v, vi) AS
    CASE WHEN vi IS NOT NULL THEN CAST(vi AS VARCHAR) ELSE CAST(v AS VARCHAR) END;
CREATE OR REPLACE TEMP MACRO elig_int(raw) AS
    CASE WHEN regexp_full_match(raw, '-?[0-9]{1,38}') THEN TRY_CAST(raw AS HUGEINT) END;
CREATE OR REPLACE TEMP MACRO elig_text(v, raw) AS
    CASE WHEN regexp_full_match(raw, '-?[0-9]+') THEN raw ELSE CAST(v AS VARCHAR) END;
CREATE OR REPLACE TEMP MACRO elig_rec(v, raw) AS
    CASE WHEN v IS NULL THEN NULL ELSE elig_dec(v, elig_text(v, raw)) END;
CREATE OR REPLACE TEMP MACRO elig_addn(f, an, ad, ae, bn, bd, be) AS
    elig_nume(f, CASE WHEN an = 0 THEN bn WHEN bn = 0 THEN an
                      ELSE TRY(an * bd * elig_p10(ae - least(ae, be)) + bn * ad * elig_p10(be - least(ae, be))) END,
              CASE WHEN an = 0 THEN bd WHEN bn = 0 THEN ad ELSE TRY(ad * bd) END,
              CASE WHEN an = 0 THEN be WHEN bn = 0 THEN ae ELSE least(ae, be) END);
CREATE OR REPLACE TEMP MACRO elig_add(a, b) AS
    list_transform([{'a': a, 'b': b}], lambda z: elig_addn(z.a.f + z.b.f, z.a.n, z.a.d, z.a.e, z.b.n, z.b.d, z.b.e))[1];
CREATE OR REPLACE TEMP MACRO elig_sub(a, b) AS
    list_transform([{'a': a, 'b': b}], lambda z: elig_addn(z.a.f - z.b.f, z.a.n, z.a.d, z.a.e, -z.b.n, z.b.d, z.b.e))[1];
CREATE OR REPLACE TEMP MACRO elig_mul(a, b) AS
    list_transform([{'a': a, 'b': b}], lambda z: elig_nume(z.a.f * z.b.f, TRY(z.a.n * z.b.n), TRY(z.a.d * z.b.d), z.a.e + z.b.e))[1];
CREATE OR REPLACE TEMP MACRO elig_mulz(a, b) AS
    list_transform([{'a': a, 'b': b}], lambda z: elig_nume(z.a.f * z.b.f + 0.0, TRY(z.a.n * z.b.n), TRY(z.a.d * z.b.d), z.a.e + z.b.e))[1];
CREATE OR REPLACE TEMP MACRO elig_div(a, b) AS
    list_transform([{'a': a, 'b': b}], lambda z: elig_nume(z.a.f / z.b.f, TRY(z.a.n * z.b.d), TRY(z.a.d * z.b.n), z.a.e - z.b.e))[1];
CREATE OR REPLACE TEMP MACRO elig_esign(p, pe, q, qe) AS
    CASE WHEN p IS NULL OR q IS NULL OR pe IS NULL OR qe IS NULL THEN NULL
         WHEN sign(p) <> sign(q) OR p = 0 THEN sign(sign(p) - sign(q))
         WHEN pe = qe THEN sign(p - q)
         WHEN length(CAST(abs(p) AS VARCHAR)) + pe <> length(CAST(abs(q) AS VARCHAR)) + qe
         THEN sign(p) * sign(length(CAST(abs(p) AS VARCHAR)) + pe - length(CAST(abs(q) AS VARCHAR)) - qe)
         ELSE sign(p) * (CASE WHEN rpad(CAST(abs(p) AS VARCHAR), 40, '0') > rpad(CAST(abs(q) AS VARCHAR), 40, '0') THEN 1
                              WHEN rpad(CAST(abs(p) AS VARCHAR), 40, '0') < rpad(CAST(abs(q) AS VARCHAR), 40, '0') THEN -1 ELSE 0 END) END;
CREATE OR REPLACE TEMP MACRO elig_sign(a, b) AS
    list_transform([{'a': a, 'b': b}], lambda z:
    CASE WHEN NOT isnan(z.a.f - z.b.f) AND z.a.f - z.b.f > 1e-9 * (abs(z.b.f) + 1.0) THEN 1
         WHEN NOT isnan(z.a.f - z.b.f) AND z.a.f - z.b.f < -1e-9 * (abs(z.b.f) + 1.0) THEN -1
         ELSE elig_esign(TRY(z.a.n * z.b.d), z.a.e, TRY(z.b.n * z.a.d), z.b.e) END)[1];
CREATE OR REPLACE TEMP MACRO elig_zero(a) AS
    list_transform([a], lambda z: CASE WHEN z.n IS NOT NULL THEN z.n = 0 ELSE z.f = 0 END)[1];
CREATE OR REPLACE TEMP MACRO elig_fdiv(n, d) AS
    CASE WHEN n >= 0 THEN n // d ELSE -TRY((-n + d - 1) // d) END;
CREATE OR REPLACE TEMP MACRO elig_efloor(n, d, e) AS
    CASE WHEN n IS NULL OR d IS NULL OR d <= 0 OR e IS NULL THEN NULL
         WHEN e >= 0 THEN elig_fdiv(TRY(n * elig_p10(e)), d)
         WHEN TRY(d * elig_p10(-e)) IS NULL THEN (CASE WHEN n >= 0 THEN CAST(0 AS HUGEINT) ELSE CAST(-1 AS HUGEINT) END)
         ELSE elig_fdiv(n, TRY(d * elig_p10(-e))) END;
CREATE OR REPLACE TEMP MACRO elig_floor(a) AS
    list_transform([a], lambda z: coalesce(elig_efloor(z.n, z.d, z.e), floor(z.f)))[1];
CREATE OR REPLACE TEMP MACRO elig_xok(v, vi) AS
    abs(v) < 1e19 AND (vi IS NOT NULL OR (strpos(CAST(v AS VARCHAR), 'e') = 0 AND strpos(CAST(v AS VARCHAR), '.') > 0
                                          AND length(CAST(v AS VARCHAR)) - strpos(CAST(v AS VARCHAR), '.') <= 18));
CREATE OR REPLACE TEMP MACRO elig_xdec(v, vi) AS
    CASE WHEN vi IS NOT NULL THEN CAST(vi AS DECIMAL(38, 18)) ELSE CAST(CAST(v AS VARCHAR) AS DECIMAL(38, 18)) END;
CREATE OR REPLACE TEMP MACRO elig_dsign(a, b) AS
    CASE WHEN a > b THEN 1 WHEN a < b THEN -1 WHEN a = b THEN 0 END;
CREATE OR REPLACE TEMP MACRO elig_dedupe(l) AS
    list_transform([l], lambda z: list_filter(z, lambda x, i: list_position(z, x) = i))[1];
CREATE OR REPLACE TEMP MACRO elig_xkey(xt, xc, xs) AS
    list_transform([regexp_extract(xt, '^(-?)([0-9]*)\.?([0-9]*)(?:e([-+]?[0-9]+))?$', ['s', 'i', 'f', 'x'])], lambda kg:
      list_transform([{'n': kg.s = '-', 'p': CAST(TRY(TRY_CAST(kg.i || kg.f AS HUGEINT) * xc) AS VARCHAR),
                       'e': coalesce(TRY_CAST(kg.x AS INTEGER), 0) - length(kg.f) + xs}], lambda ky:
        CASE WHEN ky.p = '0' THEN '1'
             WHEN ky.n THEN '0' || translate(lpad(CAST(length(ky.p) + ky.e + 50000 AS VARCHAR), 6, '0') || rpad(ky.p, 80, '0'),
                                             '0123456789', '9876543210')
             ELSE '2' || lpad(CAST(length(ky.p) + ky.e + 50000 AS VARCHAR), 6, '0') || rpad(ky.p, 80, '0') END)[1])[1];
CREATE OR REPLACE TEMP MACRO elig_ksign(ka, kb, kf) AS
    list_transform([{'a': ka, 'b': kb, 'f': kf}], lambda zk:
      CASE WHEN zk.a > zk.b THEN 1 WHEN zk.a < zk.b THEN -1 WHEN zk.a = zk.b THEN 0 ELSE sign(zk.f) END)[1];
CREATE OR REPLACE TEMP MACRO elig_ckeye(ct, cc, ce) AS
    CASE WHEN cc = 0 THEN '1'
         ELSE elig_xkey(CASE WHEN cc > 0 THEN ct WHEN starts_with(ct, '-') THEN substr(ct, 2) ELSE '-' || ct END,
                        TRY_CAST(regexp_replace(CAST(abs(cc) AS VARCHAR), '0+$', '') AS HUGEINT),
                        length(CAST(abs(cc) AS VARCHAR)) - length(regexp_replace(CAST(abs(cc) AS VARCHAR), '0+$', '')) + ce) END;
CREATE OR REPLACE TEMP MACRO elig_ckey(ct, cc) AS
    elig_ckeye(ct, cc, 0);
CREATE OR REPLACE TEMP MACRO elig_sign_rec(v, raw, b) AS
    list_transform([{'v': v, 'raw': raw, 'b': b}], lambda zs:
    CASE WHEN zs.v - zs.b.f > 1e-9 * (abs(zs.b.f) + 1.0) THEN 1
         WHEN zs.v - zs.b.f < -1e-9 * (abs(zs.b.f) + 1.0) THEN -1
         ELSE elig_ksign(elig_ckey(elig_textn(zs.v, zs.raw), zs.b.d), elig_ckeye('1', zs.b.n, zs.b.e), zs.v - zs.b.f) END)[1];
CREATE OR REPLACE TEMP MACRO elig_sign_ref(v, raw, k, r, rraw) AS
    list_transform([{'v': v, 'raw': raw, 'k': k, 'r': r, 'rraw': rraw}], lambda zs:
    CASE WHEN zs.v - zs.k.f * zs.r > 1e-9 * (abs(zs.k.f * zs.r) + 1.0) THEN 1
         WHEN zs.v - zs.k.f * zs.r < -1e-9 * (abs(zs.k.f * zs.r) + 1.0) THEN -1
         ELSE elig_ksign(elig_ckey(elig_textn(zs.v, zs.raw), zs.k.d), elig_ckeye(elig_textn(zs.r, zs.rraw), zs.k.n, zs.k.e),
                         zs.v - zs.k.f * zs.r) END)[1];
"""


def const(x: Fraction) -> str:
    """A number literal: n/d x 10^e, e = 0 unless n or d pass 38 digits (their powers of ten
    then go to the exponent)."""
    x = Fraction(x)
    n, d, e = x.numerator, x.denominator, 0
    if abs(n) >= 10 ** 38 or d >= 10 ** 38:
        m, s = _tens(abs(n))
        n, e = (m if n > 0 else -m), s
        d, t = _tens(d)
        e -= t
    try:
        f = repr(float(x))
    except OverflowError:  # (beyond doubles: the exact path decides)
        f = "'inf'" if x > 0 else "'-inf'"
    return (f"{{'f': CAST({f} AS DOUBLE), 'n': CAST('{n}' AS HUGEINT), "
            f"'d': CAST('{d}' AS HUGEINT), 'e': {e}}}")


# 10 ** 18: a fraction is a DECIMAL(38, 18) exactly when its denominator divides it
_DEC_SCALE = 10 ** 18


def dec_lit(x: Fraction) -> str | None:
    """x as an exact DECIMAL(38, 18) literal, or None when it has none (a denominator with a
    prime factor other than 2 and 5, more than 18 decimals, 20 digits or more before the point)."""
    x = Fraction(x)
    if _DEC_SCALE % x.denominator or abs(x) >= 10 ** 20:
        return None
    n = x.numerator * (_DEC_SCALE // x.denominator)
    sign, n = ("-" if n < 0 else ""), abs(n)
    return f"CAST('{sign}{n // _DEC_SCALE}.{n % _DEC_SCALE:018d}' AS DECIMAL(38, 18))"


# the exact comparison of record numbers (elig_xkey): a number's key is a text that sorts as the
# number does: '0' negative, '1' zero, '2' positive; then (for a nonzero number m x 10^e, m an
# integer of P digits) its magnitude P + e + 50000 in six digits and P's digits padded to 80
# with zeros; a negative number's magnitude and digits in nines' complement (a larger magnitude
# sorts first). Exact at any exponent; NULL where a record's digits times the constant pass
# 128 bits (an integer reading of more than about 20 digits): the doubles' sign then decides.
KEY_DIGITS = 80


def _tens(n: int) -> tuple[int, int]:
    """n = m x 10^s with m not divisible by 10 (0: (0, 0))."""
    s = 0
    while n and n % 10 == 0:
        n //= 10
        s += 1
    return n, s


def key_lit(n: int, s: int = 0) -> str | None:
    """The key of the integer n times 10^s as a text literal (elig_xkey's), or None where n has
    more than KEY_DIGITS significant digits."""
    if n == 0:
        return "'1'"
    m, t = _tens(abs(n))
    p = str(m)
    if len(p) > KEY_DIGITS:
        return None
    body = f"{len(p) + t + s + 50000:06d}" + p.ljust(KEY_DIGITS, "0")
    if n < 0:
        return "'0" + body.translate(str.maketrans("0123456789", "9876543210")) + "'"
    return "'2" + body + "'"


def _mult(c: int) -> tuple[str, str]:
    """A nonnegative integer multiplier as elig_xkey's (c, s) arguments: its digits and its power of ten."""
    m, s = _tens(c)
    return f"CAST('{m}' AS HUGEINT)", str(s)


def rec_key(v: str, vi: str, c: int = 1) -> str:
    """The key of record number (v, vi) times the nonnegative integer c (NULL where v is)."""
    cm, cs = _mult(c)
    return f"elig_xkey(elig_textn({v}, {vi}), {cm}, {cs})"


def near_sign(v: str, vi: str, x: Fraction, decimals: bool = True) -> str:
    """The exact sign of record number (v, vi) minus the constant x, for a reading within
    rounding of x (elig_sign_rec's exact fallback): the keys of v x den(x) and num(x) compared
    (elig_ksign: a few string functions and two small lambdas, where elig_sign_rec's nested
    macros of lambdas took milliseconds to bind). ``decimals`` false: elig_sign_rec (the Spark
    script, whose own elig_sign_rec compares by the same keys)."""
    x = Fraction(x)
    lit = key_lit(x.numerator) if decimals else None
    if lit is None:
        return f"elig_sign_rec({v}, {vi}, {const(x)})"
    return dec_first(v, vi, dec_lit(x), f"elig_ksign({rec_key(v, vi, x.denominator)}, {lit}, {v} - CAST({float(x)!r} AS DOUBLE))")


def dec_first(v: str, vi: str, dl: str | None, keys: str) -> str:
    """The exact sign of record number (v, vi) minus the DECIMAL(38, 18) ``dl`` (an expression,
    NULL or None where the limit has no such decimal) where the record number is one too
    (elig_xok), else ``keys`` (the comparison by elig_xkey's keys, the same sign): plain
    expressions for nearly every reading within rounding of a limit. The keys' macros are
    lambdas, which DuckDB runs at a cost per vector of rows, whatever the rows reaching them:
    behind this CASE no row reaches them but the rare readings of more than 18 decimals or
    beyond 1e19, and none without a value (a reading exactly at a limit in one vector of rows in
    two cost a millisecond per vector: a third of bilirubin_limit's step)."""
    if dl is None:
        return keys
    test = f"elig_xok({v}, {vi})" + ("" if dl.startswith("CAST('") else f" AND {dl} IS NOT NULL")
    return f"(CASE WHEN {v} IS NULL THEN NULL WHEN {test} THEN elig_dsign(elig_xdec({v}, {vi}), {dl}) ELSE {keys} END)"


def near_sign_table(v: str, vi: str, u: str, table) -> str | None:
    """near_sign against a limit looked up by the unit u ((unit, value) pairs), written once
    with the limit's denominator, its power of ten, its numerator's key and its double looked up
    by unit; None where a numerator has no key."""
    rows = []
    for unit, x in table:
        x = Fraction(x)
        lit = key_lit(x.numerator)
        if lit is None:
            return None
        rows.append((unit, _tens(x.denominator), lit, float(x), x))
    qu = lambda s: "'" + s.replace("'", "''") + "'"
    units = "[" + ", ".join(qu(r[0]) for r in rows) + "]"

    def look(f):  # (a list of constants at the unit's position binds cheaper than a CASE of them)
        vals = [f(r) for r in rows]
        if len(set(vals)) == 1:
            return vals[0]
        return f"[{', '.join(vals)}][list_position({units}, {u})]"
    cm = look(lambda r: f"CAST('{r[1][0]}' AS HUGEINT)")
    cs = look(lambda r: str(r[1][1]))
    kl = look(lambda r: r[2])
    fd = look(lambda r: f"CAST({r[3]!r} AS DOUBLE)")
    decs = [dec_lit(x) for _, x in table]
    dl = None if not any(decs) else look(lambda r: dec_lit(r[4]) or "CAST(NULL AS DECIMAL(38, 18))")
    return dec_first(v, vi, dl, f"elig_ksign(elig_xkey(elig_textn({v}, {vi}), {cm}, {cs}), {kl}, {v} - {fd})")


def near_sign_ref(v: str, vi: str, k: Fraction, r: str, ri: str, decimals: bool = True) -> str:
    """The same for v against k times the record number (r, ri) (elig_sign_ref): the keys of
    v x den(k) and r x num(k) compared (k >= 0; elig_sign_ref otherwise and for Spark)."""
    k = Fraction(k)
    if not decimals or k < 0:
        return f"elig_sign_ref({v}, {vi}, {const(k)}, {r}, {ri})"
    kr = f"{v} - CAST({float(k)!r} AS DOUBLE) * {r}"
    keys = f"elig_ksign({rec_key(v, vi, k.denominator)}, {rec_key(r, ri, k.numerator)}, {kr})"
    if k.numerator >= 10 ** 9 or k.denominator >= 10 ** 9:
        return keys
    # v x den(k) against r x num(k) in DECIMAL(38, 18) where both are decimals of it and the
    # products stay below 1e19 (DECIMAL(38, 18) holds 20 digits before the point; beyond, DuckDB
    # raises an overflow error)
    a, b = k.denominator, k.numerator
    return (f"(CASE WHEN {v} IS NULL OR {r} IS NULL THEN NULL WHEN elig_xok({v}, {vi}) AND elig_xok({r}, {ri}) AND abs({v}) * {a}.0 < 1e19 AND abs({r}) * {b}.0 < 1e19 "
            f"THEN elig_dsign(elig_xdec({v}, {vi}) * {a}, elig_xdec({r}, {ri}) * {b}) ELSE {keys} END)")


def holds(op: str, sign: str) -> str:
    return {">=": f"({sign} >= 0)", "<=": f"({sign} <= 0)", ">": f"({sign} > 0)", "<": f"({sign} < 0)",
            "=": f"({sign} = 0)", "!=": f"({sign} <> 0)"}[op]
