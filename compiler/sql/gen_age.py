"""The age nodes of the SQL generators (compiler/sql/generate.py): age at an anchor in completed
calendar years, months, weeks or days (runtime._age_in), as a number list of one exact number
(or NULL with the missing birth date or anchor). A mixin of Generator."""

from __future__ import annotations

from .gen_types import EMPTY, Num, ident, q


class AgeNodes:
    def int_num(self, x: str) -> str:
        """The exact number of the integer x (an age, a count of days; never NULL where it is
        read: each caller's CASE guards it): elig_num(x, x, 1), the macro of a lambda. The
        relational DuckDB script writes the struct itself (RelGenerator.int_num)."""
        return f"elig_num({x}, {x}, 1)"

    def n_NAge(self, n, ctx):
        if n.unit in ("d", "wk"):
            return self._age_days(n, 7 if n.unit == "wk" else 1)
        if n.unit == "mo":
            return self._age_months(n)
        if n.unit != "a":
            self.unsupported(f"age in {n.unit} has no SQL form yet")
        a = ident("a_" + n.anchor)
        years = self.age_years(n.anchor)
        v = f"(CASE WHEN birth IS NOT NULL AND {a} IS NOT NULL THEN [{self.int_num(years)}] END)"
        m = f"(CASE WHEN birth IS NULL THEN ['birth_date'] WHEN {a} IS NULL THEN [{q(n.anchor)}] ELSE {EMPTY} END)"
        return Num(v, m)

    @staticmethod
    def age_years(anchor: str) -> str:
        """Completed calendar years from birth to the anchor (both known)."""
        a = ident("a_" + anchor)
        return (f"(year(DATE '1970-01-01' + {a}) - year(DATE '1970-01-01' + birth) - CASE WHEN "
                f"month(DATE '1970-01-01' + {a}) * 100 + day(DATE '1970-01-01' + {a}) < "
                f"month(DATE '1970-01-01' + birth) * 100 + day(DATE '1970-01-01' + birth) THEN 1 ELSE 0 END)")

    def _age_months(self, n):
        """Completed calendar months (runtime._age_in): the months between the two dates, one
        less when the anchor shifted back that many months (clamped to month end) is before the
        birth date; -1 when born after the anchor."""
        a = ident("a_" + n.anchor)
        A, Bd = f"(DATE '1970-01-01' + {a})", "(DATE '1970-01-01' + birth)"
        n0 = f"((year({A}) - year({Bd})) * 12 + month({A}) - month({Bd}))"
        months = (f"(CASE WHEN {a} < birth THEN -1 WHEN {n0} > 0 AND CAST({A} - INTERVAL ({n0}) MONTH AS DATE) < {Bd} "
                  f"THEN {n0} - 1 ELSE {n0} END)")
        v = f"(CASE WHEN birth IS NOT NULL AND {a} IS NOT NULL THEN [{self.int_num(months)}] END)"
        m = f"(CASE WHEN birth IS NULL THEN ['birth_date'] WHEN {a} IS NULL THEN [{q(n.anchor)}] ELSE {EMPTY} END)"
        return Num(v, m)

    def _age_days(self, n, k):
        """Age in completed days or weeks (runtime._age_in): floor((anchor - birth) / k)."""
        a = ident("a_" + n.anchor)
        days = f"CAST(floor(({a} - birth) / {k}) AS BIGINT)" if k != 1 else f"CAST({a} - birth AS BIGINT)"
        v = f"(CASE WHEN birth IS NOT NULL AND {a} IS NOT NULL THEN [{self.int_num(days)}] END)"
        m = f"(CASE WHEN birth IS NULL THEN ['birth_date'] WHEN {a} IS NULL THEN [{q(n.anchor)}] ELSE {EMPTY} END)"
        return Num(v, m)
