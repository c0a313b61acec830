"""JSON Schemas of patient-record format 1 and result format 1 (docs/records.md), and a
validator of record streams for `elig evaluate --validate`.

The schemas check the *shape* of the formats. What a trial's vocabulary understands (codes,
attribute values, units a concept accepts) is checked when a record is screened: a record can be
valid here and still get warnings or `unknown` outcomes from a trial's evaluator.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

RECORD = "patient-record-1.schema.json"
RESULT = "result-1.schema.json"


@lru_cache(maxsize=None)
def load(name: str) -> dict:
    """The schema document of that file name (RECORD or RESULT)."""
    return json.loads(resources.files(__name__).joinpath(name).read_text(encoding="utf-8"))


@lru_cache(maxsize=None)
def validator(name: str):
    """A jsonschema validator of that schema that also checks `format: date`."""
    import jsonschema

    doc = load(name)
    cls = jsonschema.validators.validator_for(doc)
    cls.check_schema(doc)
    # the same schema with its local `$ref`s written out: resolving them on every item is most
    # of jsonschema's time (twice as fast; the JSON paths of errors are the same)
    return cls(_inline(doc, doc.get("$defs", {})), format_checker=cls.FORMAT_CHECKER)


def _inline(node, defs):
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/") and set(node) <= {"$ref", "description"}:
            return _inline(defs[ref[len("#/$defs/"):]], defs)
        return {k: _inline(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline(x, defs) for x in node]
    return node


def json_path(path) -> str:
    """`$.observations[3].value` for a jsonschema error path."""
    out = "$"
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if str(p).isidentifier() else f"[{json.dumps(p)}]")
    return out


def problems(doc, name: str = RECORD) -> list[str]:
    """Every way `doc` departs from the schema, as `$.path: message`, sorted by path."""
    v = validator(name)
    if v.is_valid(doc):
        return []
    errors = sorted(v.iter_errors(doc), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    out, seen = [], set()
    for e in errors:
        where = json_path(e.absolute_path)
        if where in seen and where != "$":
            continue  # one message per place: a date that is neither YYYY-MM-DD nor a real day
        seen.add(where)
        out.append(f"{where}: {_message(e)}")
    return out


def _message(e) -> str:
    if e.validator == "additionalProperties" and not e.absolute_path:
        return _unknown_top_level(e)
    if e.validator == "format" and e.validator_value == "date":
        return f"{json.dumps(e.instance)} is not a calendar date"
    if e.validator == "anyOf" and e.schema.get("anyOf") == [{"type": "number"}, {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"}]:
        return f"{_short(e.instance)} is not a number or a named result (\"positive\", \"negative\", ...)"
    if e.validator == "anyOf" and any(s.get("format") == "date" for s in e.schema.get("anyOf", [])):
        return f"{_short(e.instance)} is not a date (YYYY-MM-DD) or null"
    if e.validator == "pattern" and e.validator_value.startswith("^[0-9]{4}"):
        return f"{_short(e.instance)} is not a date written YYYY-MM-DD"
    if e.validator == "type":
        want = e.validator_value if isinstance(e.validator_value, list) else [e.validator_value]
        return f"{_short(e.instance)} is not {' or '.join(_A.get(t, t) for t in want)}"
    if e.validator == "required":
        return e.message.replace("'", '"').replace(" is a required property", " is required")
    if e.validator in ("minLength", "pattern") and e.validator_value in (1, "\\S"):
        return f"{_short(e.instance)} is empty"
    if e.validator in ("const", "enum"):
        vals = [e.validator_value] if e.validator == "const" else e.validator_value
        return f"{_short(e.instance)} is not " + " or ".join(json.dumps(v) for v in vals)
    if e.validator in ("minimum", "exclusiveMinimum"):
        return f"{_short(e.instance)} is not " + ("greater than " if e.validator == "exclusiveMinimum" else "at least ") + str(e.validator_value)
    if e.validator == "additionalProperties":
        extra = [k for k in e.instance if k not in e.schema.get("properties", {})]
        return "; ".join(f"{json.dumps(k)} is not a field of this item" for k in extra) or e.message
    return e.message


_A = {"object": "an object", "array": "an array", "string": "a string", "number": "a number",
      "boolean": "true or false", "null": "null", "integer": "an integer"}


def _unknown_top_level(e) -> str:
    import difflib

    known = list(load(RECORD)["properties"])
    extra = [k for k in e.instance if k not in known]
    parts = []
    for k in extra:
        near = difflib.get_close_matches(k, known, n=1, cutoff=0.6)
        parts.append(f"{json.dumps(k)} is not a field of format 1" + (f" (did you mean {json.dumps(near[0])}?)" if near else ""))
    return "; ".join(parts) or e.message


def _short(v) -> str:
    s = json.dumps(v, ensure_ascii=False)
    return s if len(s) <= 40 else s[:37] + "..."


def validate_stream(texts):
    """(index, patient id or None, [problems]) for each record text of a stream, in order;
    a text that is not JSON is one problem at `$`."""
    for i, text in enumerate(texts, 1):
        try:
            doc = json.loads(text, parse_constant=_not_json_constant)
        except (ValueError, RecursionError) as exc:
            yield i, None, [f"$: not JSON ({exc})" if not isinstance(exc, RecursionError) else "$: nested too deeply"]
            continue
        pid = doc.get("id") if isinstance(doc, dict) and isinstance(doc.get("id"), str) else None
        yield i, pid, problems(doc)


def _not_json_constant(name):
    raise ValueError(f"{name} is not a JSON number")
