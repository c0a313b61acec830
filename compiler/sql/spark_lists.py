"""DuckDB's list constructs in faithful Spark SQL (used by compiler/sql/spark.py's rewrites).

DuckDB and Spark differ on NULLs and empty groups where the names look alike; sqlglot prints
the Spark name and keeps DuckDB's meaning nowhere. Measured on DuckDB 2.0 (docs/sql-spark.md,
"The relational form"):

| DuckDB | DuckDB's meaning | Spark's namesake | Spark form written here |
|---|---|---|---|
| ``list(x [ORDER BY k...]) [FILTER (WHERE c)]`` | NULL over no row; NULL elements kept; ordered by k (NULLs last) | ``collect_list`` gives ``[]`` over no row, drops NULLs, has no ORDER BY | ``CASE WHEN count(1) FILTER (WHERE c) = 0 THEN NULL ELSE transform(array_sort(collect_list(named_struct('v', x, 'k0', k...)) FILTER (WHERE c), comparator), s -> s.v) END`` |
| ``list_concat(a, b)`` | a NULL argument is an empty list (also both: ``[]``) | ``concat``: NULL | ``concat(coalesce(a, array()), coalesce(b, array()))`` |
| ``flatten(l)`` | NULL inner lists skipped | ``flatten``: NULL | ``flatten(filter(l, e -> e IS NOT NULL))`` |
| ``list_distinct(l)`` | NULLs dropped | ``array_distinct`` keeps one | ``array_distinct(filter(l, e -> e IS NOT NULL))`` |

``len(NULL)`` is NULL in DuckDB and -1 in Spark unless ``spark.sql.legacy.sizeOfNull`` is false:
spark_run.configure sets it.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp

_DONE = "elig_spark"  # meta flag: a node already in its Spark form (not rewritten again)


def _spark(text: str, fill: dict):
    """TEXT parsed as Spark SQL, the columns named in FILL replaced by those subtrees; every
    list/array node of the template marked as written (so the rewrite does not visit it again)
    and collect_list kept as such (sqlglot reads it as DuckDB's list())."""
    tree = sqlglot.parse_one(text, read="spark")

    def agg(n):
        if isinstance(n, exp.ArrayAgg):
            return exp.Anonymous(this="COLLECT_LIST", expressions=[n.this.transform(agg, copy=False)])
        return n

    def sub(n):
        if isinstance(n, exp.Column) and not n.table and n.name in fill:
            return fill[n.name]
        return n

    tree = tree.transform(agg, copy=False)
    for n in tree.walk():
        if isinstance(n, (exp.Flatten, exp.ArrayDistinct, exp.ArrayConcat)):
            n.meta[_DONE] = True
    return tree.transform(sub, copy=False)  # after: the filled subtrees are rewritten by the caller


def _not_null(x) -> bool:
    """An element that cannot be NULL (a struct or list built in place, a literal)."""
    while isinstance(x, exp.Paren):
        x = x.this
    return isinstance(x, (exp.Struct, exp.Array)) or (isinstance(x, exp.Literal))


def _grouped(node) -> bool:
    sel = node.find_ancestor(exp.Select)
    return sel is not None and sel.args.get("group") is not None


def _compare(keys) -> str:
    """A comparator of (l_, r_) over the fields k0, k1... in order (DuckDB's ORDER BY: ascending
    unless DESC, NULLs last unless NULLS FIRST)."""
    out = "0"
    for j in reversed(range(len(keys))):
        o = keys[j]
        desc = bool(o.args.get("desc"))
        nf = bool(o.args.get("nulls_first"))
        lt, gt = ("1", "-1") if desc else ("-1", "1")
        ln, rn = ("-1", "1") if nf else ("1", "-1")
        k = f"k{j}"
        out = (f"CASE WHEN _elig_l.{k} IS NULL AND _elig_r.{k} IS NULL THEN {out} WHEN _elig_l.{k} IS NULL THEN {ln} "
               f"WHEN _elig_r.{k} IS NULL THEN {rn} WHEN _elig_l.{k} < _elig_r.{k} THEN {lt} "
               f"WHEN _elig_l.{k} > _elig_r.{k} THEN {gt} ELSE {out} END")
    return out


def list_agg(agg, cond):
    """DuckDB's ``list(x [ORDER BY ...])`` with an optional FILTER condition, in Spark."""
    inner, keys = agg.this, []
    if isinstance(inner, exp.Order):
        keys, inner = list(inner.expressions), inner.this
    fill = {"__x": inner.copy()}
    for j, o in enumerate(keys):
        fill[f"__k{j}"] = o.this.copy()
    wrap = bool(keys) or not _not_null(inner)
    elem = ("named_struct('v', __x" + "".join(f", 'k{j}', __k{j}" for j in range(len(keys))) + ")") if wrap else "__x"
    where = ""
    if cond is not None:
        fill["__c"] = cond.copy()
        where = " FILTER (WHERE __c)"
    text = f"collect_list({elem}){where}"
    if keys:
        text = f"array_sort({text}, (_elig_l, _elig_r) -> {_compare(keys)})"
    if wrap:
        text = f"transform({text}, _elig_s -> _elig_s.v)"
    if cond is not None or not _grouped(agg):  # DuckDB: NULL over no row
        text = f"CASE WHEN count(1){where} = 0 THEN NULL ELSE {text} END"
    return _spark(text, fill)


def rewrite(node):
    """The node in its faithful Spark form, or the node itself."""
    if node.meta.get(_DONE):
        return node
    if isinstance(node, exp.Filter) and isinstance(node.this, exp.ArrayAgg):
        return list_agg(node.this, node.expression.this if isinstance(node.expression, exp.Where) else node.expression)
    if isinstance(node, exp.ArrayAgg):
        return list_agg(node, None)
    if isinstance(node, exp.ArrayConcat):
        args = [node.this] + list(node.expressions)
        fill = {f"__a{i}": a.copy() for i, a in enumerate(args)}
        return _spark("concat(" + ", ".join(f"coalesce(__a{i}, array())" for i in range(len(args))) + ")", fill)
    if isinstance(node, exp.Flatten):
        return _spark("flatten(filter(__a, _elig_e -> _elig_e IS NOT NULL))", {"__a": node.this.copy()})
    if isinstance(node, exp.ArrayDistinct):
        return _spark("array_distinct(filter(__a, _elig_e -> _elig_e IS NOT NULL))", {"__a": node.this.copy()})
    if isinstance(node, exp.CTE) and node.args.get("materialized"):
        # Spark SQL has no MATERIALIZED CTE: a deterministic CTE is inlined where it is read,
        # which gives the same rows (the relational script reads each of its row CTEs once)
        node.set("materialized", None)
        return node
    return node


def unique_ctes(tree):
    """Every nested WITH's CTEs renamed apart (``_r0`` -> ``_r0_w1``...): sqlglot's Spark printer
    hoists a subquery's CTEs to the statement's WITH, where the relational script's per-join
    ``_r0, _r1...`` would be defined twice. The references inside the subquery follow."""
    n = 0
    for w in list(tree.find_all(exp.With)):
        scope = w.parent
        # a statement's own WITH (also under CREATE VIEW ... AS) stays as it is
        if scope is None or scope.find_ancestor(exp.Select, exp.Subquery, exp.Union) is None:
            continue
        n += 1
        names = {}
        for cte in w.expressions:
            old = cte.alias_or_name
            names[old] = f"{old}_w{n}"
            cte.set("alias", exp.TableAlias(this=exp.to_identifier(names[old])))
        for t in scope.find_all(exp.Table):
            if not t.args.get("db") and t.name in names and not t.alias:
                # read under its old name as an alias: `old.col` keeps resolving
                t.set("alias", exp.TableAlias(this=exp.to_identifier(t.name)))
                t.set("this", exp.to_identifier(names[t.name]))
            elif not t.args.get("db") and t.name in names:
                t.set("this", exp.to_identifier(names[t.name]))
    return tree
