"""The trial's declared codes as a lookup for FHIR codings.

Built from a generated module's `TERMINOLOGY` table (or `compiler.lower.terminology` of a checked
program): every row is (kind, vocabulary name, code system, code), kind one of observation,
condition, procedure, class, fact.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..terminology import SYSTEMS, URI_TO_SYSTEM, normalise


@dataclass
class CodeMap:
    # (kind, system) -> {normalised code: [names]} for exact systems
    exact: dict = field(default_factory=dict)
    # (kind, system) -> [(normalised prefix, name)] for hierarchical systems (ICD-10-CM, ATC)
    prefixes: dict = field(default_factory=dict)
    observations: dict = field(default_factory=dict)  # name -> ("quantity"|"qualitative", unit)

    @classmethod
    def from_rows(cls, rows, observations=None) -> "CodeMap":
        m = cls()
        for kind, name, system, code in rows:
            if system not in SYSTEMS:
                continue
            norm = normalise(system, code)
            if SYSTEMS[system].prefix:
                m.prefixes.setdefault((kind, system), []).append((norm, name))
            else:
                names = m.exact.setdefault((kind, system), {}).setdefault(norm, [])
                if name not in names:
                    names.append(name)
        m.observations = dict(observations or {})
        return m

    @classmethod
    def from_module(cls, module) -> "CodeMap":
        rows = getattr(module, "TERMINOLOGY", None)
        if rows is None:
            raise ValueError("this evaluator module declares no codes (no TERMINOLOGY table): "
                             "recompile it with this version of elig")
        obs = {name: (spec[0], spec[2]) for name, spec in module._VOCAB["observations"].items()}
        return cls.from_rows(rows, obs)

    def names(self, kind: str, codings) -> tuple[list[str], list[tuple[str, str]]]:
        """The vocabulary names a list of FHIR codings (dicts with system and code) maps to, and
        the codings in systems the trial knows that matched nothing, as (system title, code)."""
        found: list[str] = []
        unmatched = []
        for c in codings or ():
            if not isinstance(c, dict):
                continue
            system = URI_TO_SYSTEM.get(c.get("system") or "")
            code = c.get("code")
            if system is None or not isinstance(code, str):
                unmatched.append((c.get("system") or "no system", code if isinstance(code, str) else "?"))
                continue
            hit = False
            norm = normalise(system, code)
            for name in self.exact.get((kind, system), {}).get(norm, ()):
                hit = True
                if name not in found:
                    found.append(name)
            for prefix, name in self.prefixes.get((kind, system), ()):
                if norm.startswith(prefix):
                    hit = True
                    if name not in found:
                        found.append(name)
            if not hit:
                unmatched.append((SYSTEMS[system].title, code))
        return found, unmatched
