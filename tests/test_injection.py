"""Adversarial rule text is refused with a diagnostic or rendered inert (issue 5).

Ids, quotes, notes, titles, labels, codes, strings, units and file names hold Python and HTML
and template syntax: triple quotes, quotes, backslashes, carriage returns and other line
separators, `{{ }}`, `{% %}`, `</script>`, `<img onerror>`, `__import__('os')`, `# comments`.
The generated module is executed in a fresh namespace and must not run any of it (a payload
that would create a file or set a global marker must not have done so); its syntax tree must
hold the rule text only inside string constants and call nothing but the runtime; the HTML page
must hold no injected element or attribute and show the payload as text.
"""

from __future__ import annotations

import ast
import builtins
import io
import os
import re
import tokenize
import types
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from compiler.cli import main
from compiler.pipeline import compile_sources

MARK = "ZQXMARK"  # in every payload: it may only ever appear inside string constants
PWNED = "ELIG_PWNED_MARKER"


def payloads(marker_file: Path, with_cr: bool = True) -> list[str]:
    """Text that would do something if it ever escaped a string literal or the HTML text."""
    f = marker_file.as_posix()
    out = [
        MARK + ' """ \'\'\' \' " \\ \\n \\" {{ 7*7 }} {% if true %}JINJA{% endif %} {# c #} </script><script>alert(1)</script>'
        ' <img src=x onerror=alert(1)> <a href="javascript:alert(1)">x</a> <!-- c --> ]]> '
        f"__import__('os').system('touch {f}') # comment " + MARK,
        MARK + f"\x0c\x0b\x85\u2028\u2029open({f!r}, 'w').write('pwned')\u2028# {MARK}",
        MARK + "\\\\\\' + __import__('os').getcwd() + '\\\\" + MARK,
        MARK + " ${7*7} %(x)s %s {0} {{ config }} <style>body{display:none}</style> <iframe srcdoc='x'></iframe> "
        "<svg onload=alert(1)> &lt;b&gt; &amp; " + MARK,
        MARK + f"');__import__('builtins').__dict__.__setitem__('{PWNED}', 1);('" + MARK,
    ]
    if with_cr:
        out.append(MARK + f"\r__import__('builtins').__dict__.__setitem__('{PWNED}', 2)\r#" + MARK)
    return out


def elig_string(text: str) -> str:
    """A rule-language string literal holding text (\\" and \\\\ are its only escapes)."""
    assert "\n" not in text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# Criterion ids that are Python keywords' neighbours, builtins or names of the module itself.
EVIL_IDS = ["__import__", "exec", "evaluate", "TRIAL", "_run", "r", "None", "it1", "_K1", "CRITERIA", "os"]


def evil_rules(ps: list[str]) -> dict[str, str]:
    """A small trial whose every piece of free text is a payload (ps cycled)."""
    it = iter(ps * 50)
    s = lambda: elig_string(next(it))  # noqa: E731
    header = f"""
trial EvilTrial {{
    title {s()}
    protocol {s()}
    anchors screening, first_dose
}}
observation score {{ label {s()}  unit 1  code loinc "89247-1" }}
observation arb {{ label {s()}  unit [arb'U]  limits ULN }}
condition evil_condition {{
    label {s()}
    code icd10 "C78.7"
    attribute kind: text
    attribute grade: number
}}
treatment_class evil_class {{ label {s()}  code atc "H02AB" }}
fact consent {{ label {s()} }}
judgment judge {{ label {s()} }}
equivalence steroid {{ label {s()}  steroid 5 mg  other 10 mg }}
derived twice_score {{ label {s()}  unit 1  formula (latest score on or before first_dose in 1) * 2 }}
uncomputable X9 {s()}
let lab_days = 7 d
"""
    crits = []
    for i, cid in enumerate(EVIL_IDS):
        kind = "inclusion" if i % 2 == 0 else "exclusion"
        ref = f"I{i + 1}" if kind == "inclusion" else f"E{i + 1}"
        if kind == "inclusion":
            body = ("require consent and latest score within lab_days before first_dose >= 1 and twice_score >= 2\n"
                    "        and no evil_condition where (kind in {alpha, beta} or grade > 3)")
        else:
            body = ("exclude when not judge or latest arb on or before first_dose > 2 x ULN\n"
                    "        or any evil_class within 14 d before first_dose where daily_dose as steroid > 10 mg")
        crits.append(f"{kind} {cid} {{\n    ref {ref}\n    quote {s()}\n    quote {s()}\n    note {s()}\n    {body}\n}}\n")
    outline = "outline {\n" + "".join(
        f"    item {('I' if i % 2 == 0 else 'E')}{i + 1} {s()}\n" for i in range(len(EVIL_IDS))) + "}\n"
    return {"rules/header.elig": header, "rules/criteria.elig": "\n".join(crits), "rules/outline.elig": outline}


EVIL_FILE_NAMES = [
    "rules/evil \"quote' " + MARK + ".elig",
    "rules/new\nline\r\u2028" + MARK + " </script><img src=x onerror=alert(1)> {{ 7*7 }}.elig",
]

RECORD = {
    "format": 1, "id": "P-" + MARK + "</script>\"'\\", "sex": "female", "birth_date": "1970-01-01",
    "anchors": {"screening": "2026-01-05", "first_dose": "2026-01-15"},
    "observations": [
        {"code": "score", "value": 3, "unit": "1", "date": "2026-01-10"},
        {"code": "arb", "value": 1, "unit": "[arb'U]", "uln": 2, "date": "2026-01-10"},
    ],
    "conditions": [{"code": "evil_condition", "onset": "2025-01-01", "status": "active",
                    "attributes": {"kind": "'''); __import__('os')", "grade": 1}}],
    "treatments": [{"code": "steroid", "classes": ["evil_class"], "start": "2026-01-10", "end": None,
                    "daily_dose": {"value": 5, "unit": "mg"}}],
    "facts": {"consent": True, "judge": True, "__import__": True},
}


def _compile_evil(tmp_path: Path, with_cr=False, file_names=True):
    marker = tmp_path / "pwned"
    ps = payloads(marker, with_cr)
    sources = evil_rules(ps)
    if file_names:
        header = sources.pop("rules/header.elig")
        sources[EVIL_FILE_NAMES[0]] = header
        crit = sources.pop("rules/criteria.elig")
        sources[EVIL_FILE_NAMES[1]] = crit
    res = compile_sources(sources)
    assert res.ok, "\n".join(d.format(res.sources) for d in res.diagnostics)
    return res, ps, marker


def test_payloads_as_codes_are_rejected_at_their_position(tmp_path):
    """Standard codes are not free text: a payload in one is a positioned error, nothing compiles."""
    ps = payloads(tmp_path / "pwned", with_cr=False)  # a CR ends a line: a syntax error, tested elsewhere
    systems = ["loinc", "snomed", "icd10", "atc", "rxnorm", "cpt", "cvx", "meddra", "ucum"]
    lines = [f"condition c{i} {{ code {systems[i % len(systems)]} {elig_string(p)} }}" for i, p in enumerate(ps)]
    sources = evil_rules(ps)
    sources["rules/codes.elig"] = "\n".join(lines) + "\n"
    res = compile_sources(sources)
    assert not res.ok and res.python is None
    errs = [d for d in res.diagnostics if d.span.file == "rules/codes.elig"]
    assert [d.span.line for d in errs] == list(range(1, len(ps) + 1))
    assert all(" code" in d.message or "identifier" in d.message for d in errs), [d.message for d in errs]
    assert not (tmp_path / "pwned").exists()


def _exec_module(text: str, name: str = "evil_under_test") -> types.ModuleType:
    mod = types.ModuleType(name)
    exec(compile(text, f"<{name}.py>", "exec"), mod.__dict__)
    return mod


def _assert_nothing_ran(marker: Path, mod: types.ModuleType | None = None):
    assert not marker.exists(), "a payload created a file"
    assert not hasattr(builtins, PWNED), "a payload set a builtin"
    if mod is not None:
        assert PWNED not in mod.__dict__


@pytest.fixture()
def clean_builtins():
    yield
    if hasattr(builtins, PWNED):
        delattr(builtins, PWNED)


# ---------------------------------------------------------------------- the generated module


def test_a_carriage_return_in_a_string_is_refused_or_inert(tmp_path, clean_builtins, compiled):
    """A CR is a line break (a string cannot hold one): refused with a positioned diagnostic, or inert."""
    marker = tmp_path / "pwned"
    ps = payloads(marker, with_cr=True)
    sources = evil_rules(ps)
    res = compile_sources(sources)
    if not res.ok:
        assert res.python is None and res.html is None
        for d in res.diagnostics:
            assert d.span.file in sources and d.span.line >= 1 and d.span.column >= 1 and d.message
        assert any("string" in d.message for d in res.diagnostics), [d.message for d in res.diagnostics]
        return
    mod = _exec_module(res.python, "evil_cr")
    mod.evaluate(RECORD)
    _assert_nothing_ran(marker, mod)
    _assert_html_inert(res.html, compiled.html, ps)


def test_payloads_compile_and_the_module_is_inert(tmp_path, clean_builtins):
    res, ps, marker = _compile_evil(tmp_path)
    cwd = os.getcwd()
    mod = _exec_module(res.python)
    _assert_nothing_ran(marker, mod)
    result = mod.evaluate(RECORD)
    assert os.getcwd() == cwd
    _assert_nothing_ran(marker, mod)
    assert result["status"] in ("eligible", "ineligible", "indeterminate"), result
    assert result["patient_id"] == RECORD["id"]
    # inclusion criteria (the even ones) first, then exclusion, each in the order written
    assert [c["id"] for c in result["criteria"]] == EVIL_IDS[0::2] + EVIL_IDS[1::2]
    for c in result["criteria"]:
        assert c["outcome"] in ("pass", "fail", "unknown", "review")
        assert "internal error" not in c["reason"], c
    # the module's own names are not shadowed by criterion ids
    assert callable(mod.evaluate) and mod.evaluate.__code__.co_name == "evaluate"
    assert isinstance(mod.TRIAL, dict) and isinstance(mod.CRITERIA, tuple)
    # rule text arrives as data, exactly
    assert mod.TRIAL["title"] in ps and mod.TRIAL["protocol"] in ps
    for meta in mod.CRITERIA:
        assert all(q in ps for q in meta["quote"]) and all(n in ps for n in meta["notes"])
    assert set(mod.TRIAL["rule_files"]) == set(res.sources)
    json_line = mod.evaluate_json('{"format": 1, "id": "x", "facts": {"consent": true}}')
    assert json_line["patient_id"] == "x"
    _assert_nothing_ran(marker, mod)


def test_module_as_a_script_is_inert(tmp_path, clean_builtins):
    import subprocess
    import sys

    res, ps, marker = _compile_evil(tmp_path)
    mod_path = tmp_path / "evil.py"
    mod_path.write_text(res.python, encoding="utf-8")
    rec = tmp_path / "r.jsonl"
    import json

    rec.write_text(json.dumps(RECORD) + "\n", encoding="utf-8")
    out = subprocess.run([sys.executable, str(mod_path), str(rec)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["patient_id"] == RECORD["id"]
    assert not marker.exists()


def _names(tree) -> tuple[set, set, set]:
    names, attrs, imports = set(), set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.Attribute):
            attrs.add(node.attr)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.Import):
            imports |= {(a.name, a.asname) for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imports |= {(node.module, a.name, a.asname) for a in node.names}
    return names, attrs, imports


_GENERATED_NAME = re.compile(r"^(c_[A-Za-z0-9_]+|_d_[A-Za-z0-9_]+|_EQ_[A-Za-z0-9_]+|_K[0-9]+|it[0-9]+)$")


def test_generated_module_holds_rule_text_only_in_string_constants(tmp_path, compiled):
    res, ps, marker = _compile_evil(tmp_path)
    tree = ast.parse(res.python)
    # 1. the marker appears only inside string constants (never a name, attribute, argument ...)
    for node in ast.walk(tree):
        for field, value in ast.iter_fields(node):
            if isinstance(value, str) and MARK in value:
                assert isinstance(node, ast.Constant) and field == "value", (type(node).__name__, field, value[:80])
    # every payload is one constant, exactly (nothing was cut, joined or re-parsed)
    constants = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    for p in ps:
        assert p in constants, p
    # 2. token by token: the marker is only in STRING tokens and whole-line comments
    for tok in tokenize.generate_tokens(io.StringIO(res.python).readline):
        if MARK in tok.string:
            assert tok.type in (tokenize.STRING, tokenize.COMMENT), tokenize.tok_name[tok.type]
            if tok.type == tokenize.COMMENT:
                assert tok.line.lstrip().startswith("#"), tok.line
    # 3. no name, attribute or import beyond those of the SM3321 module and the generated patterns
    base_names, base_attrs, base_imports = _names(ast.parse(compiled.python))
    names, attrs, imports = _names(tree)
    extra = {n for n in names - base_names if not _GENERATED_NAME.match(n)}
    assert not extra, extra
    assert attrs <= base_attrs, attrs - base_attrs
    assert imports <= base_imports, imports - base_imports
    # 4. every call goes to a runtime function, a generated criterion/derived function, or a builtin the runtime uses
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            assert isinstance(f, (ast.Name, ast.Attribute)), ast.dump(f)[:100]
            if isinstance(f, ast.Name):
                assert f.id in base_names or _GENERATED_NAME.match(f.id), f.id
    # 5. names such as __import__, exec, eval, open appear only where the SM3321 module has them too
    for danger in ("__import__", "exec", "eval", "open", "compile", "getattr", "setattr", "globals", "system"):
        assert (danger in names) <= (danger in base_names), danger


def test_python_keywords_and_builtins_as_rule_names(tmp_path, clean_builtins):
    """Vocabulary and criterion names that are Python builtins or keywords stay names in strings."""
    text = """
trial T { title "t" protocol "p.txt" anchors screening }
observation __class__ { unit 1 }
condition print { attribute __dict__: boolean }
fact globals
judgment eval
inclusion exec { ref I1 quote "q" require globals and latest __class__ on or before screening >= 1 }
exclusion lambda_ { ref E1 quote "q" exclude when any print where __dict__ or not eval }
"""
    res = compile_sources({"r.elig": text})
    assert res.ok, [d.message for d in res.diagnostics]
    mod = _exec_module(res.python, "keywords_under_test")
    r = mod.evaluate({"format": 1, "id": "k", "anchors": {"screening": "2026-01-01"},
                      "observations": [{"code": "__class__", "value": 2, "date": "2026-01-01"}],
                      "conditions": [{"code": "print", "onset": "2025-01-01", "status": "active",
                                      "attributes": {"__dict__": False}}],
                      "facts": {"globals": True, "eval": True}})
    assert [c["outcome"] for c in r["criteria"]] == ["pass", "pass"], r
    assert callable(builtins.print) and callable(builtins.exec) and callable(builtins.eval)


# ---------------------------------------------------------------------- the HTML page


class _Html(HTMLParser):
    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str, str | None]] = []
        self.data: list[str] = []
        self.comments: list[str] = []
        self.decls: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.extend((tag, k, v) for k, v in attrs)

    handle_startendtag = handle_starttag

    def handle_data(self, data):
        self.data.append(data)

    def handle_comment(self, data):
        self.comments.append(data)

    def handle_decl(self, decl):
        self.decls.append(decl)

    def handle_pi(self, data):
        self.decls.append(data)

    @property
    def text(self):
        return "".join(self.data)


def _assert_html_inert(html: str, baseline: str, ps: list[str]):
    page, base = _Html(html), _Html(baseline)
    assert set(page.tags) <= set(base.tags), set(page.tags) - set(base.tags)
    for bad in ("script", "img", "iframe", "svg", "object", "embed", "link", "base", "form", "input", "a href"):
        assert bad not in page.tags
    assert page.tags.count("style") == 1 and html.count("</style>") == 1
    assert page.comments == [] and page.decls == base.decls
    base_attr_names = {k for _, k, _ in base.attrs}
    for tag, k, v in page.attrs:
        assert not k.startswith("on"), (tag, k, v)
        assert k in base_attr_names, (tag, k)
        if k in ("href", "src", "action", "formaction", "srcdoc"):
            assert v is not None and v.startswith("#"), (tag, k, v)
        assert MARK not in (v or "") or k == "title", (tag, k, v)  # rule text may be a link's tooltip only
    text = page.text
    for p in ps:
        # the reader sees the text as written (the page may reflow line separators)
        plain = re.sub(r"\s+", " ", p).strip()
        assert plain in re.sub(r"\s+", " ", text), plain[:80]
    for raw in ("<script", "<img", "<iframe", "<svg", "<a href=\"javascript", "<!-- c -->", "<style>body"):
        assert raw not in html, raw
    assert "{{ 7*7 }}" in text and "JINJA" not in text.replace("{% if true %}JINJA{% endif %}", "")


def test_html_page_has_no_injected_element_or_attribute(tmp_path, compiled):
    res, ps, marker = _compile_evil(tmp_path)
    _assert_html_inert(res.html, compiled.html, ps)


def test_html_page_with_protocol_text_payloads(tmp_path, compiled):
    marker = tmp_path / "pwned"
    ps = payloads(marker, with_cr=False)
    sources = evil_rules(ps)
    protocol = "\n".join(ps) + "\n"
    res = compile_sources(sources, protocol_loader=lambda name: protocol)
    assert res.ok, [d.message for d in res.diagnostics]
    _assert_html_inert(res.html, compiled.html, ps)


# ---------------------------------------------------------------------- through the command line


def _write_rules(root: Path, sources: dict[str, str]):
    for name, text in sources.items():
        p = root / Path(name).name
        p.write_text(text, encoding="utf-8")


def test_cli_compile_with_evil_file_names_and_payloads(tmp_path, compiled, clean_builtins):
    marker = tmp_path / "pwned"
    ps = payloads(marker, with_cr=False)  # a CR in a file is a line break (read_rules): see the next test
    sources = evil_rules(ps)
    rules = tmp_path / "rules"
    rules.mkdir()
    names = {
        "rules/header.elig": "header \"quote' " + MARK + " <script>{{ 7*7 }}.elig",
        "rules/criteria.elig": "crit\nnew line\t" + MARK + " <img src=x onerror=alert(1)>.elig",
        "rules/outline.elig": "outline.elig",
    }
    _write_rules(rules, {names[k]: v for k, v in sources.items()})
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["compile", str(rules), "-o", str(out)])
    assert res.exit_code == 0, res.output + res.stderr
    py = out / "eviltrial.py"
    html = out / "eviltrial.html"
    mod = _exec_module(py.read_text(encoding="utf-8"), "eviltrial_cli")
    _assert_nothing_ran(marker, mod)
    assert mod.evaluate(RECORD)["status"] != "error"
    _assert_nothing_ran(marker, mod)
    assert sorted(mod.TRIAL["rule_files"]) == sorted("rules/" + n for n in names.values())
    _assert_html_inert(html.read_text(encoding="utf-8"), compiled.html, ps)
    # evaluate through the CLI with this module
    rec = tmp_path / "rec.jsonl"
    import json

    rec.write_text(json.dumps(RECORD) + "\n", encoding="utf-8")
    ev = CliRunner().invoke(main, ["evaluate", "--module", str(py), str(rec)])
    assert ev.exit_code == 0, ev.output
    assert json.loads(ev.output)["patient_id"] == RECORD["id"]
    _assert_nothing_ran(marker)


def test_cli_check_refuses_a_carriage_return_inside_a_string_with_a_diagnostic(tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "t.elig").write_text('trial T { title "a\rb __import__(\'os\')" protocol "p" anchors s }\n', encoding="utf-8")
    res = CliRunner().invoke(main, ["check", str(rules)])
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert re.search(r"t\.elig:1:[0-9]+: error: unterminated string", res.stderr), res.stderr


@pytest.mark.parametrize("text, fragment", [
    ('trial T { title "unterminated }', "unterminated string"),
    ('trial T { title "a\nb" }', "unterminated string"),
    ("trial T { title 'single' }", "unexpected character"),
    ('trial T { title """triple""" }', ""),
    ("inclusion a-b { }", ""),
    ("inclusion a.b { }", ""),
    ("inclusion äb { }", "unexpected character"),
    ("observation o { unit g/L'); __import__('os') }", ""),
    ("observation o { unit <script> }", "unexpected"),
    ("inclusion x { ref I1 quote \"q\" require {{ 7*7 }} }", ""),
    ("inclusion x { ref I1 quote \"q\" require __import__ }", ""),
])
def test_syntax_that_cannot_carry_a_payload_is_refused_with_a_positioned_diagnostic(text, fragment):
    res = compile_sources({"r.elig": text})
    assert not res.ok
    assert res.python is None and res.html is None
    for d in res.diagnostics:
        assert d.span.file == "r.elig" and d.span.line >= 1 and d.span.column >= 1 and d.message
    if fragment:
        assert any(fragment in d.message for d in res.diagnostics), [d.message for d in res.diagnostics]


@pytest.mark.parametrize("how", ["relative", "absolute"])
def test_fixed_protocol_path_outside_the_rules_directory_is_read_into_the_page(tmp_path, how):
    from compiler.pipeline import compile_rules

    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-" + MARK + "\n", encoding="utf-8")
    rules = tmp_path / "rules"
    rules.mkdir()
    target = "../secret.txt" if how == "relative" else secret.as_posix()
    (rules / "t.elig").write_text(
        f'trial T {{ title "t" protocol "{target}" anchors screening }}\n'
        'fact consent\ninclusion c { ref I1 quote "q" require consent }\n', encoding="utf-8")
    res = compile_rules(rules)
    if not res.ok:
        assert all(d.span.line >= 1 and d.span.column >= 1 for d in res.diagnostics)
        return
    assert "TOP-SECRET" not in (res.html or ""), "a file outside the rules directory was published"
    assert res.protocol_text is None or "TOP-SECRET" not in res.protocol_text
