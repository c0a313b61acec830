"""The mutation tool (tools/mutate.py) and the recorded mutation scores (tools/mutation_scores.json).

The score test runs every mutant of SM3321 and HF207 through `elig verify` and the data cases,
and fails when a score falls below the recorded one (tools/README.md).
"""

import json
from collections import Counter

import pytest

from conftest import ROOT, RULES
from tools.mutate import mutants, rule_sources

HF = ROOT / "examples" / "hf_trial"
SCORES = ROOT / "tools" / "mutation_scores.json"


@pytest.fixture(scope="module")
def hf_mutants():
    return list(mutants(HF))


@pytest.mark.slow
def test_sm3321_mutants_are_deterministic_and_cover_every_operator():
    sm_mutants = list(mutants(RULES))
    assert [m.description for m in sm_mutants] == [m.description for m in mutants(RULES)]
    ops = Counter(m.operator for m in sm_mutants)
    for op in ("comparator", "inclusive", "number+10%", "number-10%", "last-digit+1", "last-digit-1", "unit",
               "shorter-longer", "before-after", "and-or", "drop-conjunct", "delete-rule", "delete-rule+outline",
               "window-length", "plus-minus"):
        assert ops[op] > 0, op
    assert any(m.description == "inclusion.elig:84:72: >= → <" for m in sm_mutants), [m.description for m in sm_mutants if m.line == 84]


def test_mutants_never_touch_quotes_notes_or_comments(hf_mutants):
    """Each edit replaces a token of the logic: it never starts inside a string or a comment."""
    sources = rule_sources(HF)
    assert len(hf_mutants) > 100
    for m in hf_mutants:
        for f, start, end, new in m.edits:
            line = sources[f][sources[f].rfind("\n", 0, start) + 1:start]
            if m.operator.startswith("delete-rule"):
                continue
            assert line.count('"') % 2 == 0 and "#" not in line, m.description
            assert '"' not in sources[f][start:end], m.description


def test_write_to_copies_the_rules_with_the_mutation(tmp_path, hf_mutants):
    m = next(m for m in hf_mutants if m.description == "exclusion.elig:16:9: < → >=")
    assert (m.operator, m.file, m.line, m.col) == ("comparator", "exclusion.elig", 16, 9)
    m.write_to(HF, tmp_path / "mutant")
    text = (tmp_path / "mutant" / "exclusion.elig").read_text(encoding="utf-8")
    assert ">= (130 g/L if sex is male" in text and (tmp_path / "mutant" / "protocol.txt").exists()
    assert ">= (130 g/L" not in (HF / "exclusion.elig").read_text(encoding="utf-8")


@pytest.mark.slow
@pytest.mark.parametrize("trial,rules,cases", [("SM3321", RULES, ROOT / "tests" / "cases"), ("HF207", HF, HF / "cases")])
def test_mutation_score_does_not_fall(trial, rules, cases):
    from tools.mutation_score import report, score

    recorded = json.loads(SCORES.read_text(encoding="utf-8"))[trial]
    r = score(rules, cases)
    text = report(r)
    assert r["verify_score"] >= recorded["verify_score"], text
    assert r["total_score"] >= recorded["total_score"], text
    assert r["total_score"] >= 95.0, text
    assert not r["baseline_failing_cases"], text
    # mutants of a rule's limit that verify alone does not catch: never more than those recorded (with why)
    new = set(r["rule_limit_missed_by_verify"]) - set(recorded["rule_limit_missed_by_verify"])
    assert not new, text


def test_a_file_parsed_once_is_not_parsed_again_and_a_broken_one_is_not_kept():
    """compile_sources keeps the frozen AST of the files it parsed last: the mutation score
    compiles every mutant with only one file changed. The result is the one a fresh parse gives."""
    from compiler import pipeline

    sources = {f"hf/{f}": t for f, t in rule_sources(HF).items()}
    first = pipeline.compile_sources(dict(sources), "hf")
    assert first.ok and all((p, t) in pipeline._PARSED for p, t in sources.items())
    kept = {p: pipeline._PARSED[(p, t)] for p, t in sources.items()}
    again = pipeline.compile_sources(dict(sources), "hf")
    assert again.python == first.python and again.html == first.html
    assert all(pipeline._PARSED[(p, t)] is kept[p] for p, t in sources.items())  # not parsed again
    # a fresh parse of every file gives the same AST
    from compiler.parser import parse_source

    assert all(parse_source(t, p)[0] == kept[p] for p, t in sources.items())
    # a file with a syntax error is reported every time and never kept
    path = next(p for p in sources if p.endswith("exclusion.elig"))
    broken = dict(sources, **{path: sources[path] + "\nexclude when ((\n"})
    for _ in range(2):
        res = pipeline.compile_sources(dict(broken), "hf")
        assert not res.ok and any(d.span.file == path for d in res.diagnostics)
    assert (path, broken[path]) not in pipeline._PARSED


@pytest.mark.slow  # about 4 CPU s, with the mutation scores it guards; the parse cache is checked fast above
def test_the_warm_runner_gives_every_mutant_the_verdict_of_a_cold_one():
    """What the mutation score caches (parsed files, verify's readings of the text, verdicts by
    evaluator source) and the order it runs the cases in (the cases about the mutated rule
    first, then those that caught a mutant) change no verdict: HF207's mutants judged by one
    warm runner, in order, against each judged by a fresh runner that runs every case."""
    from tools.mutation_score import _Trial

    warm = _Trial(HF, HF / "cases")
    res, _ = warm.compile(warm.sources)
    warm._by_python[warm.python(res)] = None
    ms = list(mutants(HF))
    verdicts = {m.description: warm.judge(m).verdict for m in ms}  # in order, as score() runs them
    assert {"verify", "cases"} <= set(verdicts.values())
    # every mutant the cases decide on, and every twelfth (each file, most operators)
    sample = [m for m in ms if verdicts[m.description] in ("cases", "survived")] + ms[::12]
    for m in sample:
        cold = _Trial(HF, HF / "cases")
        r, display = cold.compile(m.apply(cold.sources))
        if not r.ok:
            want = "not compiling"
        elif cold.verify(r, display):
            want = "verify"
        else:
            want = "cases" if cold.failing_cases(cold.module(r), stop_at_first=False) else "survived"
        assert verdicts[m.description] == want, m.description
