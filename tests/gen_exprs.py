"""The and/or/not/if combinator of the trial generators (tests/test_gen_rec.py,
tests/test_gen_values.py, tests/test_gen_item_queries.py): one draw among the generator's leaves
and the combinators it allows, then the combinator's operands, each drawn in turn."""

from __future__ import annotations

COMBINATORS = ("and", "or", "not", "implies", "ifelse", "and_not")

# each combination in parentheses as a whole (test_gen_rec, test_gen_values) ...
WHOLE = {"and": "({a} and {b})", "or": "({a} or {b})", "not": "not ({a})", "implies": "(if {a} then {b})",
         "ifelse": "({a} if {b} else {c})", "and_not": "({a} and not {b})"}
# ... or each operand in parentheses (test_gen_item_queries; its condition is the third draw)
OPERANDS = {"and": "({a}) and ({b})", "or": "({a}) or ({b})", "not": "not ({a})", "implies": "if ({a}) then ({b})",
            "ifelse": "({a}) if ({c}) else ({b})"}


def bool_expr(r, choices, leaf, sub, style) -> str:
    """Draw one of `choices` (r.choice: a choice repeated is drawn more often); a leaf is written
    by leaf(choice), a combinator of COMBINATORS from sub-expressions sub() drawn in order: two
    for each (`not` reads the first), a third, the condition of `ifelse`, after them."""
    op = r.choice(choices)
    if op not in COMBINATORS:
        return leaf(op)
    a, b = sub(), sub()
    c = sub() if op == "ifelse" else None
    return style[op].format(a=a, b=b, c=c)
