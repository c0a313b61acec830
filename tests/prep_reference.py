"""The queries of the work tables elig_ox and elig_tx as they were before they were made cheaper
(compiler/sql/script.py at 87e1f6f: a CASE over every observation code per reading, elig_int on
every integer text, the half-life and dose parsed per treatment), kept for tests/test_prep.py
only: the new queries must give the same rows, value for value."""

from __future__ import annotations

from compiler import ir as I
from compiler.runtime import _HALF_LIFE_UNITS as HALF_LIFE_UNITS, _TIME_ALIASES as TIME_ALIASES
from compiler.sql import numbers as N
from compiler.sql.generate import q
from compiler.sql.script import T_END, _days, obs_attributes, wild


def rows_o(program: I.Program) -> str:
    obs = program.observations
    obs_cols = []
    for o in obs:
        if o.kind == "qualitative":
            bad = f"NOT coalesce(o.value_str IN ({', '.join(q(v) for v in o.values)}), FALSE)"
            unit = "CAST(NULL AS VARCHAR)"
        else:
            units = ", ".join(q(u) for u, _ in o.units)
            unit = (f"(CASE WHEN o.unit_raw IS NULL OR o.unit_raw = 'null' THEN {q('1') if o.unit == '1' else 'NULL'} "
                    f"WHEN o.unit IS NOT NULL THEN m.resolved END)")
            bad = f"(o.value_num IS NULL OR coalesce({unit} NOT IN ({units}), TRUE))"
        obs_cols.append((o.name, bad, unit))
    bad_case = "CASE o.code " + " ".join(f"WHEN {q(n)} THEN {b}" for n, b, _ in obs_cols) + " END"
    unit_case = "CASE o.code " + " ".join(f"WHEN {q(n)} THEN {u}" for n, _, u in obs_cols) + " END"
    qual = ", ".join(q(o.name) for o in obs if o.kind == "qualitative") or "NULL"
    obs_struct = (f"{{'i': o.idx, 'd': {_days('o.date')}, 'bad': {bad_case}, 'v': o.value_num, 'vi': elig_int(o.value_raw), 'w': o.w, "
                  f"'u': {unit_case}, 's': CASE WHEN o.code IN ({qual}) THEN o.value_str END, "
                  f"'uln': CASE WHEN o.uln > 0 THEN o.uln END, 'ulni': elig_int(o.uln_raw), 'lln': CASE WHEN o.lln >= 0 THEN o.lln END, "
                  f"'llni': elig_int(o.lln_raw), 'lloq': CASE WHEN o.lloq >= 0 THEN o.lloq END, 'lloqi': elig_int(o.lloq_raw)"
                  + (", 'c': o.code, 'a': o.attributes" if obs_attributes(program) else "") + "}")
    codes_o = ", ".join(q(o.name) for o in obs) or "NULL"
    return (f"SELECT o.code, o.seq, o.idx AS i, {_days('o.date')} AS d, o.w, {obs_struct} AS x\n"
            f"  FROM (SELECT * EXCLUDE (code), code, FALSE AS w FROM observations WHERE code IN ({codes_o})\n"
            f"        UNION ALL\n"
            f"        SELECT ob.* EXCLUDE (code), k.code, TRUE AS w FROM observations ob, (SELECT unnest([{codes_o}]) AS code) k\n"
            f"        WHERE {wild('ob.code')}) o\n"
            f"  LEFT JOIN elig_unit_map m ON m.kind = 'obs' AND m.code = o.code AND m.unit = o.unit")


def rows_t(program: I.Program) -> str:
    tables = program.equivalences
    per = " ".join(f"WHEN {q(u)} THEN {N.const(f)}" for u, f in HALF_LIFE_UNITS.items())
    alias = " ".join(f"WHEN {q(a)} THEN {q(u)}" for a, u in TIME_ALIASES.items())
    hlu = "json_extract_string(t.half_life, '$.unit')"
    hlv = "json_extract(t.half_life, '$.value')"
    per_expr = (f"(CASE WHEN json_type(t.half_life, '$.unit') = 'VARCHAR' THEN coalesce((CASE {hlu} {per} END), "
                f"(CASE (CASE lower(trim({hlu})) {alias} END) {per} END)) END)")
    hl_ok = (f"json_type(t.half_life) = 'OBJECT' AND json_type({hlv}) IN ('BIGINT', 'UBIGINT', 'DOUBLE', 'HUGEINT') "
             f"AND isfinite(CAST({hlv} AS DOUBLE)) AND CAST({hlv} AS DOUBLE) >= 0 AND {per_expr} IS NOT NULL")
    hl = f"(CASE WHEN {hl_ok} THEN elig_mul(elig_rec(CAST({hlv} AS DOUBLE), CAST({hlv} AS VARCHAR)), {per_expr}) END)"
    dv = "json_extract(t.daily_dose, '$.value')"
    dose_v = (f"(CASE WHEN json_type(t.daily_dose) = 'OBJECT' AND json_type({dv}) IN ('BIGINT', 'UBIGINT', 'DOUBLE', 'HUGEINT') "
              f"AND isfinite(CAST({dv} AS DOUBLE)) THEN elig_rec(CAST({dv} AS DOUBLE), CAST({dv} AS VARCHAR)) END)")
    du = "".join(f", {q('du_' + tb.name)}: d{i}.resolved" for i, tb in enumerate(tables))
    du_join = "".join(
        f" LEFT JOIN elig_unit_map d{i} ON d{i}.kind = 'dose' AND d{i}.code = {q(tb.name)} "
        f"AND d{i}.unit = json_extract_string(t.daily_dose, '$.unit') AND json_type(t.daily_dose, '$.unit') = 'VARCHAR'"
        for i, tb in enumerate(tables))
    treat_est = (f"(CASE WHEN NOT t.end_present THEN 2 WHEN t.end_raw = 'null' THEN 0 WHEN t.\"end\" IS NULL THEN 2 "
                 f"WHEN t.start IS NOT NULL AND t.\"end\" < t.start THEN 2 ELSE 1 END)")
    treat_struct = (f"{{'i': t.idx, 'c': CASE WHEN {wild('t.code')} THEN 'treatments[' || t.idx || ']' ELSE t.code END, 'cls': t.classes, "
                    f"'s': {_days('t.start')}, 'e': {_days(T_END)}, 'est': {treat_est}, 'hl': {hl}, "
                    f"'dv': {dose_v}{du}, 'route': t.route, 'purpose': t.purpose, 'a': t.attributes}}")
    return f"SELECT t.seq, t.idx AS i, t.classes AS cls, {treat_struct} AS x\n  FROM treatments t{du_join}"


REFERENCE = {"elig_ox": rows_o, "elig_tx": rows_t}
