"""Countries in scope, with the facts every layer needs about them.

This table is the one place that knows a country's currency, minor units, time zone,
postal-code format and phone prefix (``sodtrack-api.md`` § Environments). The simulator,
the client, the extraction suites and the spreadsheet parsers all read it from here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class Country:
    """One country the Sodtrack Integration API serves."""

    code: str
    """Lower-case ISO 3166 alpha-2 code, as used in base URLs and tokens."""
    name: str
    currency: str
    """ISO 4217 currency code."""
    minor_units: int
    """Digits after the decimal point that amounts in this currency carry (CLP has none)."""
    time_zone: str
    postal_code_pattern: str
    """Anchored regular expression a postal code must match, compared as an exact string."""
    postal_code_example: str
    phone_prefix: str
    """E.164 country calling code, with the ``+``."""
    postal_code_digits: int | None
    """Width of a purely numeric, fixed-width postal code (None where the format has letters or
    a dash): used to restore leading zeros that a spreadsheet stripped."""

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    @property
    def postal_code_regex(self) -> re.Pattern[str]:
        return _compiled(self.postal_code_pattern)

    def is_valid_postal_code(self, value: str) -> bool:
        return self.postal_code_regex.fullmatch(value) is not None

    @property
    def quantum(self) -> Decimal:
        """The smallest amount of the currency: ``Decimal(1)`` for CLP, ``Decimal("0.01")`` else."""
        return Decimal(1).scaleb(-self.minor_units)

    def format_amount(self, amount: Decimal) -> str:
        """Money as the API writes it: a string with exactly the currency's minor units."""
        return f"{amount.quantize(self.quantum):f}"

    def has_exact_minor_units(self, text: str) -> bool:
        """Whether a money string carries exactly this currency's minor units."""
        if self.minor_units == 0:
            return re.fullmatch(r"-?\d+", text) is not None
        return re.fullmatch(rf"-?\d+\.\d{{{self.minor_units}}}", text) is not None


_PATTERNS: dict[str, re.Pattern[str]] = {}


def _compiled(pattern: str) -> re.Pattern[str]:
    compiled = _PATTERNS.get(pattern)
    if compiled is None:
        compiled = _PATTERNS[pattern] = re.compile(pattern)
    return compiled


COUNTRIES: dict[str, Country] = {
    c.code: c
    for c in (
        Country("cl", "Chile", "CLP", 0, "America/Santiago", r"^\d{7}$", "7500000", "+56", 7),
        Country("pe", "Peru", "PEN", 2, "America/Lima", r"^\d{5}$", "15074", "+51", 5),
        Country("co", "Colombia", "COP", 2, "America/Bogota", r"^\d{6}$", "110111", "+57", 6),
        Country("mx", "Mexico", "MXN", 2, "America/Mexico_City", r"^\d{5}$", "06700", "+52", 5),
        Country(
            "ar",
            "Argentina",
            "ARS",
            2,
            "America/Argentina/Buenos_Aires",
            r"^[A-Z]\d{4}[A-Z]{3}$",
            "C1425DKF",
            "+54",
            None,
        ),
        Country(
            "br",
            "Brazil",
            "BRL",
            2,
            "America/Sao_Paulo",
            r"^\d{5}-\d{3}$",
            "01310-100",
            "+55",
            None,
        ),
        Country("uy", "Uruguay", "UYU", 2, "America/Montevideo", r"^\d{5}$", "11000", "+598", 5),
    )
}


def get_country(code: str) -> Country:
    """Look a country up by its code (case-insensitive), with a clear error for unknown ones."""
    try:
        return COUNTRIES[code.strip().lower()]
    except KeyError:
        known = ", ".join(sorted(COUNTRIES))
        raise ValueError(f"unknown country {code!r}: expected one of {known}") from None
