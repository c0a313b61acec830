"""The SQL backend on the example trials and the language-edge trial (examples/*/cases/,
tests/lang_trial/cases/): every rule the SQL generator supports gives the Python evaluator's
outcome and `missing` on every case record (status, cohorts and `rules` too when the whole trial
is supported), and every rule it does not support is refused when the SQL is compiled, naming
the rule, its file:line and why."""

import json
import re
import types
from pathlib import Path

import pytest

from conftest import ROOT
from tools.datacases import load_cases

duckdb = pytest.importorskip("duckdb")

from compiler.pipeline import compile_rules  # noqa: E402
from compiler.sql import loader, screen  # noqa: E402
from compiler.sql.script import SqlCompileError, build  # noqa: E402

SUITES = sorted(p.parent for p in (ROOT / "examples").glob("*/cases")) + [ROOT / "tests" / "lang_trial",
                                                                         ROOT / "tests" / "cases" / "language" / "_rules"]


def _name(rules: Path) -> str:
    return rules.parent.name if rules.name == "_rules" else rules.name


def _cases_dir(rules: Path) -> Path:
    return rules.parent if rules.name == "_rules" else rules / "cases"

# what the SQL generator refuses today, per suite (rule ids); a rule that starts to compile
# must be taken off this list (and is then checked against Python like the others)
REFUSED = {
    "hf_trial": set(),
    "nct00711542": set(),
    "nct03064438": set(),
    "nct04431453": set(),
    "nct05438667": set(),
    "lang_trial": set(),
    "language": set(),
}


# what the relational generator (compiler/sql/relational.py) leaves to the lambda form, per suite
# (rule ids; docs/sql.md): an item or observation query inside an item query.
# Those criteria alone read per-patient lists (elig_input); a rule that becomes relational must be
# taken off this list. SM3321 has none (tests/test_sql.py).
LAMBDA_FORM = {
    "hf_trial": set(),
    "nct00711542": {"stent_within_48_hours"},
    "nct03064438": set(),
    "nct04431453": set(),
    "nct05438667": {"pancreatic_prior_therapy", "colorectal_prior_therapies"},
    "lang_trial": set(),
    "language": {"pci_within_48h", "early_progression"},
}


def _compile(rules: Path):
    res = compile_rules(rules)
    assert res.ok, "\n".join(d.format(res.sources) for d in res.diagnostics)
    mod = types.ModuleType(f"sqllang_{rules.name}")
    exec(compile(res.python, f"<{rules.name}>", "exec"), mod.__dict__)
    return res, mod


def _refused(res) -> dict:
    try:
        build(res.program, res.lowered)
    except SqlCompileError as exc:
        out = {}
        for p in exc.problems:
            m = re.match(r"(.+?):(\d+): rule (\w+): no SQL form: (.+)", p)
            assert m, p
            out[m.group(3)] = (m.group(1), int(m.group(2)), m.group(4))
        return out
    return {}


# lang_trial (the language's edges) in the fast suite; the example trials (seconds of planning
# each on the 2-core machine) in the slow one
PARAMS = [pytest.param(s, id=_name(s), marks=() if _name(s) in ("lang_trial", "language") else pytest.mark.slow)
          for s in SUITES]


@pytest.mark.parametrize("rules", PARAMS)
def test_sql_equals_python_on_the_cases(rules, tmp_path):
    res, mod = _compile(rules)
    refused = _refused(res)
    assert set(refused) == REFUSED[_name(rules)]
    for cid, (file, line, why) in refused.items():  # named with where the rule is and why
        crit = next(c for c in res.lowered.criteria if c.ir.id == cid)
        assert file == crit.file and line == crit.ir.line and why
    supported = [c.ir.id for c in res.lowered.criteria if c.ir.id not in refused]
    cases = load_cases(_cases_dir(rules))
    texts = [json.dumps(rec) for _, _, rec in cases]
    path = tmp_path / "in.jsonl"
    path.write_text("".join(t + "\n" for t in texts), encoding="utf-8")
    con = screen.connect(threads=2, memory_limit="1GB")
    loader.load_jsonl(con, str(path))
    script = screen.prepare_script(res.program, res.lowered, only=set(supported))
    assert {script.steps[i][0] for i in script.lambda_steps} == LAMBDA_FORM[_name(rules)]
    screen.run_script(con, res.program, mod, script)
    sqls = [json.loads(r) for r in screen.results(con)]
    con.close()
    assert len(sqls) == len(cases)
    diffs = []
    for (name, _, rec), sq in zip(cases, sqls):
        py = mod.evaluate(rec)
        assert sq["rules"] == py["rules"], name
        if py["status"] == "error" or sq["status"] == "error":
            assert (py["status"], py.get("error")) == (sq["status"], sq.get("error")), name
            continue
        want = {c["id"]: (c["outcome"], c["missing"]) for c in py["criteria"]}
        got = {c["id"]: (c["outcome"], c["missing"]) for c in sq["criteria"]}
        assert set(got) == set(supported)
        diffs += [(name, cid, want[cid], got[cid]) for cid in supported if want[cid] != got[cid]]
        if not refused:
            if (py["status"], py.get("cohorts")) != (sq["status"], sq.get("cohorts")):
                diffs.append((name, "status", py["status"], py.get("cohorts"), sq["status"], sq.get("cohorts")))
    assert not diffs, "\n".join(map(str, diffs[:20]))


# ---------------------------------------------------------------------- amended record rules

AMENDED = ("unresolved_toxicity", "recent_cardiovascular_event", "hemoglobin", "bilirubin_limit", "active_hepatitis_b",
           "cns_disease", "major_surgery", "confirmed_advanced_solid_tumor", "lvef_low")


def _amended_records():
    """The SM3321 baseline with one amended-record rule each: items without a code, attributes
    off their scale or outside their values, limits that are not > 0 / >= 0, unknown fields."""
    from conftest import CASES

    base = json.loads(
        (CASES / "_base" / "baseline.json").read_text(encoding="utf-8"))
    out = []

    def add(name, f):
        r = json.loads(json.dumps(base))
        r["id"] = name
        f(r)
        out.append(r)

    for g in (7, 2.5, 2.0, 3, 1, 0, "3", True, None, -1):
        add(f"grade-{g}", lambda r, g=g: r["conditions"].append(
            {"code": "unresolved_toxicity", "onset": "2025-12-01", "status": "active", "attributes": {"grade": g}}))
        add(f"nyha-{g}", lambda r, g=g: r["conditions"].append(
            {"code": "congestive_heart_failure", "onset": "2025-12-01", "status": "active", "attributes": {"nyha_class": g}}))
    for conf in ("clinical", "histological", "rumour", 3):
        add(f"confirmation-{conf}", lambda r, c=conf: r["conditions"][0]["attributes"].__setitem__("confirmation", c))
    for code in (None, "", "   ", 5, [], "\u00a0"):
        for date in ("2026-01-14", "2020-01-01", "bad", None):
            add(f"obs-code-{code!r}-{date}", lambda r, c=code, d=date: r["observations"].append(
                {**({} if c is None else {"code": c}), "value": 8, "unit": "g/L", "date": d, "uln": 30}))
            add(f"cond-code-{code!r}-{date}", lambda r, c=code, d=date: r["conditions"].append(
                {**({} if c is None else {"code": c}), "onset": d, "status": "active"}))
            add(f"proc-code-{code!r}-{date}", lambda r, c=code, d=date: r.setdefault("procedures", []).append(
                {**({} if c is None else {"code": c}), "date": d}))
        add(f"treat-code-{code!r}", lambda r, c=code: r["treatments"].append(
            {**({} if c is None else {"code": c}), "classes": ["chemotherapy"], "start": "2026-01-01", "end": None}))
    for field, v in (("uln", 0), ("uln", -1), ("uln", 0.0), ("lln", -0.5), ("lln", 0), ("lloq", -1), ("lloq", 0)):
        def f(r, field=field, v=v):
            for o in r["observations"]:
                if o.get("code") in ("total_bilirubin", "hbv_dna", "alt", "ast"):
                    o[field] = v
        add(f"{field}-{v}", f)
    add("unknown-field", lambda r: r.__setitem__("observation", []))
    add("warnings-list", lambda r: r.__setitem__("warnings", ["from FHIR"]))
    add("warnings-bad", lambda r: r.__setitem__("warnings", 3))
    return out


def test_sql_equals_python_on_the_amended_record_rules(compiled, sm3321, tmp_path):
    recs = _amended_records()
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in recs), encoding="utf-8")
    con = screen.connect(threads=2, memory_limit="1GB")
    loader.load_jsonl(con, str(path))
    screen.prepare(con, compiled.program, compiled.lowered, sm3321, only=set(AMENDED))
    sqls = [json.loads(r) for r in screen.results(con)]
    con.close()
    diffs = []
    for rec, sq in zip(recs, sqls):
        py = sm3321.evaluate(rec)
        assert sq["status"] != "error" and sq["rules"] == py["rules"], rec["id"]
        want = {c["id"]: (c["outcome"], c["missing"]) for c in py["criteria"]}
        diffs += [(rec["id"], c["id"], want[c["id"]], (c["outcome"], c["missing"])) for c in sq["criteria"]
                  if want[c["id"]] != (c["outcome"], c["missing"])]
    assert len(sqls) == len(recs)
    assert not diffs, "\n".join(map(str, diffs[:20]))


def test_a_construct_without_sql_form_is_refused_at_compile_time(tmp_path):
    """`latest` inside an item query has no SQL form yet: `elig sql` refuses the rule by name,
    file:line and why, and writes nothing; the other rules of the trial alone still compile."""
    from click.testing import CliRunner

    from compiler.cli import main

    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "protocol.txt").write_text("R1 Two kinds of lung disease. R2 Any lung disease.\n", encoding="utf-8")
    (rules / "trial.elig").write_text(
        "trial T {\n    title \"t\"\n    protocol \"protocol.txt\"\n    anchors screening\n}\n"
        "condition asthma\nobservation ecog { unit 1 }\n\n"
        "inclusion two_kinds {\n    ref R1\n    quote \"Two kinds of lung disease.\"\n"
        "    require any asthma ever where (latest ecog on or before onset <= 1)\n}\n\n"
        "inclusion any_kind {\n    ref R2\n    quote \"Any lung disease.\"\n    require any asthma ever\n}\n",
        encoding="utf-8")
    res = compile_rules(rules)
    assert res.ok, "\n".join(d.format(res.sources) for d in res.diagnostics)
    refused = _refused(res)
    assert set(refused) == {"two_kinds"}
    file, line, why = refused["two_kinds"]
    assert file.endswith("trial.elig") and line == 9 and "latest" in why and "item query" in why
    build(res.program, res.lowered, only={"any_kind"})  # the rest compiles
    out = tmp_path / "t.sql"
    r = CliRunner().invoke(main, ["sql", str(rules), "-o", str(out)])
    assert r.exit_code != 0 and "two_kinds" in r.output and "trial.elig:9" in r.output and not out.exists()


def test_latest_where_fuzzed_equals_python(tmp_path):
    """`latest ... where (filter)` in the relational script (compiler/sql/relational.py) against
    the Python evaluator on random readings: several dates (one the anchor's day, some undated or
    unusable), the filter true, false or unknown (method missing, off its list, attributes not an
    object), readings without a code, unusable values and units."""
    import copy
    import random

    rules = ROOT / "tests" / "cases" / "language" / "_rules"
    res, mod = _compile(rules)
    base = json.loads((ROOT / "tests" / "cases" / "language" / "_base" / "baseline.json").read_text(encoding="utf-8"))
    rnd = random.Random(3321)
    recs = []
    for k in range(400):
        rec = copy.deepcopy(base)
        rec["id"] = f"LW-{k}"
        obs = [o for o in rec["observations"] if o["code"] != "lvef"]
        for _ in range(rnd.randint(0, 4)):
            o = {"code": rnd.choice(["lvef"] * 6 + [None, "", "  "]),
                 "value": rnd.choice([25, 30, 30.0, 31, 55, "low", None]),
                 "unit": rnd.choice(["%"] * 5 + ["mmHg", None]),
                 "date": rnd.choice(["2025-12-20", "2025-12-28", "2026-01-05", "2026-01-06", "2025-13-01", None])}
            o = {key: v for key, v in o.items() if v is not None or rnd.random() < 0.5}
            attrs = rnd.choice([{"method": "echo"}, {"method": "muga"}, {"method": "mri"}, {"method": "xray"}, {}, None, "echo"])
            if attrs is not None:
                o["attributes"] = attrs
            obs.insert(rnd.randint(0, len(obs)), o)
        rec["observations"] = obs
        recs.append(rec)
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in recs), encoding="utf-8")
    con = screen.connect(threads=2, memory_limit="1GB")
    loader.load_jsonl(con, str(path))
    script = screen.prepare_script(res.program, res.lowered, only={"lvef_low"})
    assert not script.lambda_steps and "_p IS TRUE" in script.steps[0][1]  # relational, with its filter
    screen.run_script(con, res.program, mod, script)
    sqls = [json.loads(r) for r in screen.results(con)]
    con.close()
    seen, diffs = set(), []
    for rec, sq in zip(recs, sqls):
        py = next(c for c in mod.evaluate(rec)["criteria"] if c["id"] == "lvef_low")
        got = sq["criteria"][0]
        seen.add(py["outcome"])
        if (py["outcome"], py["missing"]) != (got["outcome"], got["missing"]):
            diffs.append((rec["id"], (py["outcome"], py["missing"], py["reason"][:150]), (got["outcome"], got["missing"])))
    assert len(sqls) == len(recs) and not diffs, "\n".join(map(str, diffs[:10]))
    assert seen == {"pass", "fail", "unknown"}
