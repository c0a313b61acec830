"""The relational DuckDB script (compiler/sql/relational.py) in Spark SQL: its work tables
(elig_pat, elig_ox...: one row per patient or per item, built once) and each criterion's step,
printed by the same transpiler as the lambda form (compiler/sql/spark.py: sqlglot at RAISE, the
rewrites, the compile-time check of every function and type). A criterion whose relational step
has no faithful Spark form (an unknown construct, a sqlglot refusal) is kept in the lambda form,
which then reads the input view elig_input, and the reason is kept in SparkScript.fallbacks;
docs/sql-spark.md, "The relational form"."""

from __future__ import annotations

import json

import sqlglot

from .. import cache
from . import spark as SP
from .script import SqlCompileError, build as build_lambda


def _slot(trial: str, ids: list[str]) -> str:
    return f"spark-sql-{cache.entry_key('relational', trial, *ids)[:16]}.json"


def _read(name: str, key: str, ids: list[str]):
    """(input view, queries, work tables, lambda ids, fallbacks) of the cached entry, or None
    (spark._cache_read, and the relational form's own fields well formed)."""
    d = SP._cache_read(name, key, ids)
    if d is None:
        return None
    try:
        out = (d["input_view"], d["queries"], [tuple(x) for x in d["prep"]],
               frozenset(d["lambda_ids"]), tuple(tuple(x) for x in d["fallbacks"]))
    except (KeyError, TypeError):
        return None
    if not all(len(p) == 3 and all(isinstance(x, str) for x in p) for p in out[2]):
        return None
    return out


def _transpile(duck: str) -> tuple[str | None, str]:
    """(Spark SQL, "") or (None, why there is no faithful Spark form)."""
    try:
        sql = SP.to_spark(duck)
    except sqlglot.errors.SqlglotError as exc:
        return None, str(exc).splitlines()[0]
    bad = SP.unknown_constructs(sql)
    if bad:
        return None, "no Spark SQL form for " + ", ".join(bad)
    return sql, ""


def build_relational(program, lowered, only=None) -> SP.SparkScript:
    from .relational import build as build_rel

    rs = build_rel(program, lowered, only=only, decimals=False)  # SqlCompileError: no SQL form at all
    chosen = [lc for lc in lowered.criteria if only is None or lc.ir.id in only]
    label = {lc.ir.id: f"{lc.file}:{lc.ir.line}: rule {lc.ir.id}" for lc in chosen}
    ids = [cid for cid, _ in rs.steps]
    criteria = tuple(rs.criteria)
    lambda_view = build_lambda(program, lowered, only=set()).input_view
    name = _slot(program.trial.name, ids)
    key = SP._cache_key(getattr(lowered, "fingerprint", "") or "", lambda_view, rs.steps, rs.prep)
    hit = _read(name, key, ids)
    if hit is not None:
        view, queries, prep, lam, falls = hit
        return SP.SparkScript(program.trial.name, view, tuple(queries), SP.result_query(program, lowered, criteria),
                              criteria, tuple(prep), lam, falls)
    prep, prep_why = [], ""
    for tname, sql, order in rs.prep:
        sp, why = _transpile(sql)
        if sp is None:  # no work tables: every criterion in the lambda form
            prep_why = f"the work table {tname}: {why}"
            break
        prep.append((tname, sp, order))
    if prep_why:
        prep = []
    queries, lam, falls, problems = [], set(), [], []
    for i, (cid, duck) in enumerate(rs.steps):
        sql, why = (None, prep_why) if prep_why else _transpile(duck)
        if sql is not None and i in rs.lambda_steps:
            lam.add(cid)  # no relational form (relational.py): its lambda step reads elig_input
        if sql is None:
            if not prep_why:
                falls.append((cid, why))
            try:
                sql = SP._transpile_criterion(build_lambda(program, lowered, only={cid}).query, cid)
            except sqlglot.errors.SqlglotError as exc:
                problems.append(f"{label[cid]}: no Spark SQL form: {str(exc).splitlines()[0]}")
                continue
            bad = SP.unknown_constructs(sql)
            if bad:
                problems.append(f"{label[cid]}: no Spark SQL form for {', '.join(bad)}")
                continue
            lam.add(cid)
        queries.append((cid, sql))
    view = ""
    if lam:
        view, why = _transpile(lambda_view)
        if view is None:
            problems.append(f"the input view (docs/sql.md tables): {why}")
    if problems:
        raise SqlCompileError(problems)
    if prep_why:
        falls = [("*", prep_why)]
    cache.write(name, key, json.dumps({"input_view": view, "queries": queries, "prep": prep,
                                       "lambda_ids": sorted(lam), "fallbacks": falls}).encode("utf-8"))
    return SP.SparkScript(program.trial.name, view, tuple(queries), SP.result_query(program, lowered, criteria),
                          criteria, tuple(prep), frozenset(lam), tuple(tuple(f) for f in falls))
