"""Pure value parsers: one raw cell (a CSV string or a typed XLSX cell) -> one typed value.

Every parser takes the raw value as read (``str``, ``int``, ``float``, ``bool``, ``datetime``,
``date``, ``time``, ``timedelta``; never a blank: callers test :func:`is_blank` first) and
either returns the interpreted value, or raises :class:`InvalidValue` with an operator-facing
message and fix. Parsers that *changed* something an operator should check (restored a
postal code's zeros, added a phone prefix, read a number as an Excel date) also return a
:class:`Note`, which becomes a row-level warning.

Country facts (currency, minor units, time zone, postal-code format, phone prefix) come from
:mod:`sodtrack.contract.countries`; nothing here repeats them.

Rules worth knowing
-------------------
**Amounts** (:func:`parse_amount`). ``.``, ``,``, spaces, NBSP and ``'`` may appear. When both
``.`` and ``,`` appear, the right-most one is the decimal separator. A separator that appears
more than once, or any space/apostrophe, is a thousands separator, and thousands groups must be
of three digits. A *single* ``.`` or ``,`` is a decimal separator unless exactly three digits
follow it (and 1-3 non-zero-led digits precede it), which is the one ambiguous shape
(``45.990``, ``1,234``). It is decided by the currency's minor units: with none (CLP), a
decimal reading can never be a valid amount, and that is how CLP is written, so it is a
thousands separator (``45.990`` CLP = 45990); with minor units (PEN, MXN...) it is *rejected*
as ambiguous (``1.234`` may be 1234, or 1.234 mistyped in a locale that writes ``.`` for
decimals), asking for ``1234``, ``1.234,00`` or ``1,234.00``. An upload that declares its
decimal separator (``decimal_separator=","``) has no ambiguity. Amounts must then fit the
currency's minor units exactly (``45990.5`` CLP is an error, never rounded). Numbers from XLSX
cells are taken at Excel's own 15 significant digits, so float noise from formulas
(``0.30000000000000004``) does not count as extra decimals.

**Dates and times** are local to the country's time zone and day-first (``03/12/2026`` is 3
December). Accepted: ``dd/mm/yyyy``, ``dd-mm-yyyy``, ``dd.mm.yyyy``, ISO ``yyyy-mm-dd`` (and
``yyyy/mm/dd``), each optionally followed by a time ``hh:mm[:ss]`` (also ``10h00``,
``10.00``, ``am/pm``, a trailing ``hrs``); ISO with ``T``; an explicit offset (``Z``,
``-03:00``) is honoured and the instant converted to the country's zone. XLSX date and
datetime cells are used as they are; numbers in a date column are Excel day serials (1 January
2000 to 31 December 2099 only), with a warning. Time cells may be ``time`` values, fractions of
a day, or text. Two-digit years and month-first dates (``12/31/2026``) are rejected. A local
time that does not exist (the hour skipped when clocks go forward) is an error; one that
happens twice (clocks go back) takes the first occurrence, with a warning.

**Postal codes, phones, document ids** are text. A postal code shorter than the country's
fixed width (``Country.postal_code_digits``), typically an XLSX number that lost its leading
zeros (MX ``6700``), gets its zeros back, with a warning; digits-only codes in a format with a
separator (BR ``01310100``) get the separator. Phones become E.164: ``+`` numbers are kept,
``00`` means international, and a local number of the country's usual length gets the
country's prefix (a trunk ``0`` dropped), with a warning saying so.
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from enum import StrEnum
from typing import TypeVar
from zoneinfo import ZoneInfo

from sodtrack.bulkload.issues import InvalidValue, IssueCode, Note
from sodtrack.bulkload.neutralise import needs_neutralising
from sodtrack.bulkload.reading.headers import header_key
from sodtrack.contract.countries import Country
from sodtrack.contract.models import BookingStatus, PaymentMethod

PAYMENT_METHODS: tuple[str, ...] = tuple(m.value for m in PaymentMethod)
"""The sheet's payment methods: the contract's :class:`PaymentMethod` values, in its order."""

# -- blanks and text -------------------------------------------------------------------------


def is_blank(raw: object) -> bool:
    """Whether a cell holds nothing: None, or a string of only whitespace."""
    return raw is None or (isinstance(raw, str) and not raw.strip())


_SPACES = re.compile(r"[\u00a0\u2007\u202f\u2009\ufeff]")


def cell_text(raw: object) -> str:
    """A cell's value as text, as an operator would read it in the sheet.

    Whole numbers lose the ``.0`` a spreadsheet engine gives them; dates print as ISO.
    Non-breaking spaces become plain spaces and the ends are stripped. A ``'`` in front of a
    formula trigger (``'+56912345678``, as our results and rejects files write such text so
    that no spreadsheet runs it) is dropped: a rejects file re-uploads as it is.
    """
    if isinstance(raw, str):
        text = (raw if raw.isascii() else _SPACES.sub(" ", raw)).strip()
        if len(text) > 1 and text[0] == "'" and needs_neutralising(text[1:]):
            return text[1:]
        return text
    if isinstance(raw, bool):
        return "TRUE" if raw else "FALSE"
    if isinstance(raw, float):
        if math.isfinite(raw) and raw.is_integer():
            return str(int(raw))
        return format(raw, ".15g")
    if isinstance(raw, datetime | date | time):
        return raw.isoformat()
    return str(raw).strip()


def _is_number(raw: object) -> bool:
    return isinstance(raw, int | float | Decimal) and not isinstance(raw, bool)


def _quote(text: str, limit: int = 40) -> str:
    return f"'{text}'" if len(text) <= limit else f"'{text[: limit - 1]}…'"


def parse_text(raw: object) -> str:
    """Free text (names, address lines, notes): the cell as text; control characters refused."""
    text = cell_text(raw)
    if not text.isprintable() and _CONTROL.search(text):
        raise InvalidValue(
            IssueCode.INVALID_TEXT,
            f"{_quote(text)} contains invisible control characters.",
            "Retype the value, or paste it as plain text.",
        )
    return text


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

# -- references --------------------------------------------------------------------------------

_REFERENCE = re.compile(r"[A-Za-z0-9._-]{1,64}")
_NOT_REFERENCE = re.compile(r"[^A-Za-z0-9._-]+")


def parse_reference(raw: object) -> str:
    """An ``external_reference`` / ``payment_reference``: 1-64 of ``[A-Za-z0-9._-]``."""
    text = cell_text(raw)
    if _REFERENCE.fullmatch(text):
        return text
    if len(text) > 64:
        raise InvalidValue(
            IssueCode.INVALID_REFERENCE,
            f"The reference {_quote(text)} is {len(text)} characters long; at most 64 are allowed.",
            "Shorten it to 64 characters or fewer.",
        )
    bad = "".join(sorted({ch for ch in text if not _REFERENCE.fullmatch(ch)}))
    shown = ", ".join("space" if ch == " " else f"'{ch}'" for ch in bad)
    suggestion = _NOT_REFERENCE.sub("-", header_ascii(text)).strip("-")[:64]
    raise InvalidValue(
        IssueCode.INVALID_REFERENCE,
        f"The reference {_quote(text)} contains characters that are not allowed ({shown}). "
        "Only letters A-Z, digits, '.', '-' and '_' are allowed.",
        f"Use only those characters, e.g. '{suggestion}'."
        if suggestion
        else "Use only letters, digits, '.', '-' and '_'.",
    )


def header_ascii(text: str) -> str:
    """Text with accents removed (``Peña`` -> ``Pena``), for suggestions only."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


# -- money -------------------------------------------------------------------------------------

_GROUP_SPACES = re.compile(r"['\u00a0\u2007\u202f\u2009 ]+")
_BODY = re.compile(r"\d[\d., ]*")
_FOREIGN_SYMBOLS = ("US$", "U$S", "USD$", "€", "EUR", "USD")
_LOCAL_SYMBOLS: dict[str, str] = {"R$": "BRL", "S/.": "PEN", "S/": "PEN", "$U": "UYU"}


def parse_amount(raw: object, country: Country, *, decimal_separator: str | None = None) -> Decimal:
    """A money amount in ``country``'s currency, as a :class:`Decimal` with exactly its minor
    units (see the module docstring for the separator rule). Sign is kept; callers check > 0.
    """
    if isinstance(raw, bool):
        raise _bad_amount(cell_text(raw))
    if isinstance(raw, int):
        amount = Decimal(raw)
    elif isinstance(raw, float):
        if not math.isfinite(raw):
            raise _bad_amount(cell_text(raw))
        # Excel keeps 15 significant digits; anything past them is binary noise.
        amount = Decimal(format(raw, ".15g"))
    elif isinstance(raw, Decimal):
        amount = raw
    else:
        amount = _parse_amount_text(cell_text(raw), country, decimal_separator)
    return _fit_minor_units(amount, country, cell_text(raw))


def _bad_amount(text: str, why: str = "") -> InvalidValue:
    return InvalidValue(
        IssueCode.INVALID_AMOUNT,
        f"{_quote(text)} is not an amount{why}.",
        "Write the amount with digits only, e.g. 45990 or 1234,50.",
    )


def _strip_currency(text: str, country: Country) -> str:
    s = text
    upper = s.upper()
    for symbol in _FOREIGN_SYMBOLS:
        if upper.startswith(symbol) or upper.endswith(symbol):
            raise _currency_mismatch(text, symbol, country)
    leading = re.match(r"([A-Za-z]{3})(?![A-Za-z])\.?\s*", s)
    trailing = None if leading else re.search(r"\s*(?<![A-Za-z])([A-Za-z]{3})$", s)
    code = leading or trailing
    rest = (s[code.end() :] if leading else s[: code.start()]) if code else ""
    if code is not None and any(ch.isdigit() for ch in rest):
        if code.group(1).upper() != country.currency:
            raise _currency_mismatch(text, code.group(1).upper(), country)
        s = rest.strip()
    for symbol, currency in _LOCAL_SYMBOLS.items():
        for candidate in (symbol, symbol.lower()):
            if s.startswith(candidate) or s.endswith(candidate):
                if currency != country.currency:
                    raise _currency_mismatch(text, symbol, country)
                s = s.removeprefix(candidate).removesuffix(candidate).strip()
    return s.replace("$", "", 1).strip() if s.count("$") == 1 else s


def _currency_mismatch(text: str, found: str, country: Country) -> InvalidValue:
    return InvalidValue(
        IssueCode.CURRENCY_MISMATCH,
        f"The amount {_quote(text)} is in {found}, but payments in {country.name} are in "
        f"{country.currency}.",
        f"Give the amount in {country.currency}, without a currency sign.",
    )


def _parse_amount_text(text: str, country: Country, decimal_separator: str | None) -> Decimal:
    s = _strip_currency(text, country)
    negative = False
    if s.startswith("(") and s.endswith(")"):
        negative, s = True, s[1:-1].strip()
    if s[:1] in "+-":
        negative, s = s[0] == "-", s[1:].strip()
    elif s.endswith("-"):
        negative, s = True, s[:-1].strip()
    s = _GROUP_SPACES.sub(" ", s)
    if not _BODY.fullmatch(s) or not s[-1].isdigit():
        raise _bad_amount(text)
    integer, fraction = _split_number(s, text, country, decimal_separator)
    amount = Decimal(f"{integer}.{fraction}" if fraction else integer)
    return -amount if negative else amount


def _split_number(
    s: str, text: str, country: Country, decimal_separator: str | None
) -> tuple[str, str]:
    """Split a number's body into (integer digits, fraction digits) following the rule."""
    dots, commas = s.count("."), s.count(",")
    group: str | None
    decimal: str | None
    if decimal_separator is not None:
        decimal = decimal_separator
        other = "," if decimal == "." else "."
        if s.count(decimal) > 1 or (" " in s and other in s):
            raise _declared_mismatch(text, decimal)
        group = " " if " " in s else (other if other in s else None)
        if group == other and decimal in s and s.rfind(other) > s.index(decimal):
            raise _declared_mismatch(text, decimal)
        if decimal not in s:
            decimal = None
    elif " " in s:
        group = " "
        if (dots and commas) or dots + commas > 1:
            raise _bad_amount(text, " (it mixes different thousands separators)")
        decimal = "." if dots else "," if commas else None
    elif dots and commas:
        decimal = "." if s.rfind(".") > s.rfind(",") else ","
        group = "," if decimal == "." else "."
        if s.count(decimal) > 1:
            raise _bad_amount(text, f" (it has more than one decimal separator '{decimal}')")
    elif dots or commas:
        sep = "." if dots else ","
        before, _, after = s.partition(sep)
        if dots + commas > 1:
            group, decimal = sep, None
        elif len(after) == 3 and 1 <= len(before) <= 3 and before[0] != "0":
            if country.minor_units > 0:
                raise _ambiguous(text, before, after, sep, country)
            group, decimal = sep, None
        else:
            group, decimal = None, sep
    else:
        group = decimal = None

    integer, _, fraction = s.partition(decimal) if decimal else (s, "", "")
    if group is not None:
        parts = integer.split(group)
        if not (1 <= len(parts[0]) <= 3) or any(len(p) != 3 for p in parts[1:]):
            if decimal_separator is not None:
                raise _declared_mismatch(text, decimal_separator)
            raise _bad_amount(
                text,
                f" (the thousands separator '{group.strip() or 'space'}' must split "
                "the digits into groups of three)",
            )
        integer = "".join(parts)
    if not integer.isdigit() or (fraction and not fraction.isdigit()):
        raise _bad_amount(text)
    return integer, fraction


def _ambiguous(text: str, before: str, after: str, sep: str, country: Country) -> InvalidValue:
    thousands = before + after
    other = "," if sep == "." else "."
    return InvalidValue(
        IssueCode.AMBIGUOUS_AMOUNT,
        f"The amount {_quote(text)} is ambiguous: it could be {thousands} (with '{sep}' as a "
        f"thousands separator) or {before}.{after} (with '{sep}' as a decimal point), and "
        f"{country.currency} amounts can have decimals.",
        f"Write {thousands} without separators, or spell the decimals out: "
        f"{before}{sep}{after}{other}00 or {thousands}{sep}00 — whichever you meant.",
    )


def _declared_mismatch(text: str, decimal: str) -> InvalidValue:
    return InvalidValue(
        IssueCode.INVALID_AMOUNT,
        f"The amount {_quote(text)} does not use '{decimal}' as its decimal separator, "
        "which this upload declares.",
        f"Write it with '{decimal}' before the decimals, e.g. 1234{decimal}50.",
    )


def _fit_minor_units(amount: Decimal, country: Country, text: str) -> Decimal:
    quantum = country.quantum
    try:
        fitted = amount.quantize(quantum)
    except InvalidOperation:
        raise _bad_amount(text, " (it is far too large)") from None
    if fitted != amount:
        rounded = amount.quantize(quantum, rounding=ROUND_HALF_UP)
        allowed = (
            "have no decimals"
            if country.minor_units == 0
            else f"have at most {country.minor_units} decimals"
        )
        raise InvalidValue(
            IssueCode.TOO_MANY_DECIMALS,
            f"{country.currency} amounts {allowed}, but {_quote(text)} has more.",
            f"Round the amount, e.g. to {country.format_amount(rounded)}.",
        )
    return fitted


def parse_currency(raw: object, country: Country) -> str:
    """The payment currency: must be the country's (case-insensitive ISO 4217 code)."""
    text = cell_text(raw).upper()
    if text == country.currency:
        return text
    raise InvalidValue(
        IssueCode.CURRENCY_MISMATCH,
        f"The currency {_quote(cell_text(raw))} is not {country.currency}, the currency of "
        f"payments in {country.name}.",
        f"Write {country.currency}, or leave the cell empty (it defaults to {country.currency}).",
    )


# -- dates and times -------------------------------------------------------------------------

_EXCEL_EPOCH = datetime(1899, 12, 30)
_SERIAL_MIN = (datetime(2000, 1, 1) - _EXCEL_EPOCH).days
_SERIAL_MAX = (datetime(2099, 12, 31) - _EXCEL_EPOCH).days

_TIME_RE = (
    r"(?P<H>\d{1,2})(?:[:h.](?P<M>\d{2}))(?::(?P<S>\d{2})(?:[.,](?P<F>\d{1,6}))?)?"
    r"\s*(?P<ampm>[ap]\.?\s?m\.?)?\s*(?:hrs?\.?|hs\.?|h)?"
)
_OFFSET_RE = r"(?P<Z>Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)"
_DATE_TEXT = re.compile(
    r"(?:(?P<d>\d{1,2})(?P<s1>[/.-])(?P<m>\d{1,2})(?P=s1)(?P<y>\d{4})"
    r"|(?P<y2>\d{4})(?P<s2>[/.-])(?P<m2>\d{1,2})(?P=s2)(?P<d2>\d{1,2}))"
    rf"(?:(?:T|\s+|\s*,\s*){_TIME_RE})?\s*{_OFFSET_RE}?",
    re.IGNORECASE,
)
_TIME_TEXT = re.compile(_TIME_RE, re.IGNORECASE)
_TWO_DIGIT_YEAR = re.compile(r"\d{1,2}[/.-]\d{1,2}[/.-]\d{2}(?:\D.*)?")
_SERIAL_TEXT = re.compile(r"\d{5}(?:[.,]\d+)?")


def _tz_label(tz: ZoneInfo) -> str:
    return tz.key.rsplit("/", 1)[-1].replace("_", " ")


def localize(naive: datetime, tz: ZoneInfo) -> tuple[datetime, Note | None]:
    """Attach ``tz`` to a local wall-clock time, refusing times the clocks skip.

    A time that happens twice (clocks going back) takes its first occurrence, with a note.
    """
    return _localize(naive, tz)


# Bookings cluster on a few hundred slot starts, and the checks cost two zone conversions.
@functools.lru_cache(maxsize=8192)
def _localize(naive: datetime, tz: ZoneInfo) -> tuple[datetime, Note | None]:
    aware = naive.replace(tzinfo=tz, fold=0)
    back = aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None)
    if back != naive:
        raise InvalidValue(
            IssueCode.NONEXISTENT_LOCAL_TIME,
            f"{naive:%d/%m/%Y %H:%M} does not exist in {_tz_label(tz)} time: the clocks "
            "jump forward over it that day.",
            "Pick a time outside the skipped hour.",
        )
    later = naive.replace(tzinfo=tz, fold=1)
    if later.utcoffset() != aware.utcoffset():
        return aware, Note(
            IssueCode.AMBIGUOUS_LOCAL_TIME,
            f"{naive:%d/%m/%Y %H:%M} happens twice in {_tz_label(tz)} time (the clocks go "
            f"back that day); the loader used the first one (UTC offset "
            f"{_offset_text(aware.utcoffset())}).",
            "Check the time, or give it with an explicit offset, e.g. "
            f"{naive:%Y-%m-%dT%H:%M}{_offset_text(later.utcoffset())}.",
        )
    return aware, None


def _offset_text(offset: timedelta | None) -> str:
    minutes = int((offset or timedelta()).total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{mins:02d}"


def _serial_to_datetime(serial: float, text: str) -> datetime:
    if not (_SERIAL_MIN <= serial < _SERIAL_MAX + 1):
        raise InvalidValue(
            IssueCode.INVALID_DATE,
            f"{_quote(text)} is not a date (as an Excel day number it would be outside 2000-2099).",
            "Write the date as dd/mm/yyyy, e.g. 03/12/2026.",
        )
    days = math.floor(serial)
    seconds = round((serial - days) * 86400)
    return _EXCEL_EPOCH + timedelta(days=days, seconds=seconds)


def _serial_note(text: str, value: datetime) -> Note:
    shown = f"{value:%d/%m/%Y}" if value.time() == time() else f"{value:%d/%m/%Y %H:%M}"
    return Note(
        IssueCode.NUMBER_AS_TEXT,
        f"The number {text} in a date column was read as an Excel day number: {shown}.",
        "Check the date; format the cell as a date in Excel to avoid the guess.",
    )


def _time_from_match(m: re.Match[str], text: str) -> time:
    hour, minute = int(m["H"]), int(m["M"])
    second = int(m["S"] or 0)
    micro = int((m["F"] or "0").ljust(6, "0"))
    if m["ampm"]:
        if not 1 <= hour <= 12:
            raise _bad_time(text)
        pm = m["ampm"].lower().startswith("p")
        hour = hour % 12 + (12 if pm else 0)
    if hour > 23 or minute > 59 or second > 59:
        raise _bad_time(text)
    return time(hour, minute, second, micro)


def _bad_time(text: str) -> InvalidValue:
    return InvalidValue(
        IssueCode.INVALID_TIME,
        f"{_quote(text)} is not a time of day.",
        "Write the time as hh:mm in 24-hour format, e.g. 10:00 or 15:30.",
    )


def _bad_date(text: str, why: str = "") -> InvalidValue:
    return InvalidValue(
        IssueCode.INVALID_DATE,
        f"{_quote(text)} is not a date{why}.",
        "Write the date day first, as dd/mm/yyyy (e.g. 03/12/2026) or yyyy-mm-dd.",
    )


def _parse_datetime_text(text: str) -> tuple[date, time | None, timezone | None]:
    m = _DATE_TEXT.fullmatch(text)
    if m is None:
        if _TWO_DIGIT_YEAR.fullmatch(text):
            raise InvalidValue(
                IssueCode.INVALID_DATE,
                f"{_quote(text)} has a two-digit year, which could belong to any century.",
                "Write the year with four digits, e.g. 03/12/2026.",
            )
        raise _bad_date(text)
    if m["y"]:
        day, month, year = int(m["d"]), int(m["m"]), int(m["y"])
        if month > 12 and day <= 12:
            raise InvalidValue(
                IssueCode.MONTH_FIRST_DATE,
                f"{_quote(text)} looks month-first (month {day}, day {month}); dates here "
                "are read day first.",
                f"Write it day first: {month:02d}/{day:02d}/{year}, or as "
                f"{year}-{day:02d}-{month:02d}.",
            )
    else:
        day, month, year = int(m["d2"]), int(m["m2"]), int(m["y2"])
    try:
        day_value = date(year, month, day)
    except ValueError:
        raise _bad_date(text, " that exists in the calendar") from None
    clock = _time_from_match(m, text) if m["H"] else None
    offset: timezone | None = None
    if m["Z"]:
        if clock is None:
            raise _bad_date(text, " (an offset needs a time)")
        offset = _parse_offset(m["Z"], text)
    return day_value, clock, offset


def _parse_offset(token: str, text: str) -> timezone:
    if token.upper() in {"Z", "UTC", "GMT"}:
        return UTC
    sign = -1 if token[0] == "-" else 1
    digits = token[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    if hours > 14 or minutes > 59:
        raise _bad_date(text, " (its UTC offset is out of range)")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def parse_date_cell(raw: object) -> tuple[date, time | None, timezone | None, Note | None]:
    """A date cell: the calendar date, the time if the cell also holds one (else None), the
    explicit UTC offset if the text gave one, and a note when a number was read as a serial.
    """
    if isinstance(raw, datetime):
        clock = raw.time() if raw.time() != time() else None
        return raw.date(), clock, None, None
    if isinstance(raw, date):
        return raw, None, None, None
    if isinstance(raw, time | timedelta):
        raise InvalidValue(
            IssueCode.INVALID_DATE,
            f"The cell holds only a time ({cell_text(raw)}), not a date.",
            "Put the date in this cell, e.g. 03/12/2026.",
        )
    if _is_number(raw) and not isinstance(raw, bool):
        value = _serial_to_datetime(float(raw), cell_text(raw))  # type: ignore[arg-type]
        clock = value.time() if value.time() != time() else None
        return value.date(), clock, None, _serial_note(cell_text(raw), value)
    text = cell_text(raw)
    if _SERIAL_TEXT.fullmatch(text):
        value = _serial_to_datetime(float(text.replace(",", ".")), text)
        clock = value.time() if value.time() != time() else None
        return value.date(), clock, None, _serial_note(text, value)
    day_value, clock, offset = _parse_datetime_text(text)
    return day_value, clock, offset, None


def parse_time_cell(raw: object) -> time:
    """A time-of-day cell: a ``time``, a fraction of a day, a duration under 24 h, or text."""
    if isinstance(raw, datetime):
        return raw.time()
    if isinstance(raw, time):
        return raw.replace(tzinfo=None)
    if isinstance(raw, timedelta):
        if timedelta() <= raw < timedelta(days=1):
            return (datetime.min + raw).time()
        raise _bad_time(cell_text(raw))
    if _is_number(raw):
        fraction = float(raw)  # type: ignore[arg-type]
        if 0 <= fraction < 1:
            seconds = round(fraction * 86400)
            if seconds < 86400:
                return (datetime.min + timedelta(seconds=seconds)).time()
        raise _bad_time(cell_text(raw))
    if isinstance(raw, date):
        raise InvalidValue(
            IssueCode.INVALID_TIME,
            f"The cell holds a date ({cell_text(raw)}), not a time.",
            "Put the time of day in this cell, e.g. 10:00.",
        )
    text = cell_text(raw)
    m = _TIME_TEXT.fullmatch(text)
    if m is None:
        raise _bad_time(text)
    return _time_from_match(m, text)


def to_local(
    day_value: date, clock: time, offset: timezone | None, tz: ZoneInfo
) -> tuple[datetime, Note | None]:
    """Combine a date and time into an aware datetime in ``tz``.

    Without ``offset`` the time is local wall-clock time (see :func:`localize`). With one, the
    instant is honoured and expressed in ``tz``; a note says so when the offset is not the
    zone's own at that instant.
    """
    naive = datetime.combine(day_value, clock)
    if offset is None:
        return localize(naive, tz)
    instant = naive.replace(tzinfo=offset)
    local = instant.astimezone(tz)
    if local.utcoffset() == instant.utcoffset():
        return local, None
    return local, Note(
        IssueCode.OFFSET_CONVERTED,
        f"{naive:%d/%m/%Y %H:%M} was given with offset {_offset_text(instant.utcoffset())}, "
        f"which is not {_tz_label(tz)} time; it was converted to {local:%d/%m/%Y %H:%M} "
        "local time.",
        "Check the time; leave the offset out to give local time directly.",
    )


def parse_datetime(
    raw: object, tz: ZoneInfo, *, date_only_ok: bool = False
) -> tuple[datetime, list[Note]]:
    """A date *and* time in one cell, as an aware datetime in ``tz``.

    With ``date_only_ok`` (e.g. ``paid_at``) a bare date means local midnight; otherwise a
    bare date is an error, since a booking needs its start time.
    """
    notes: list[Note] = []
    if isinstance(raw, time | timedelta) or (
        isinstance(raw, int | float) and not isinstance(raw, bool) and 0 <= raw < 1
    ):
        raise InvalidValue(
            IssueCode.MISSING_TIME,
            f"The cell holds only a time ({cell_text(raw)}), not a date and time.",
            "Write the date and the time, e.g. 03/12/2026 10:00.",
        )
    day_value, clock, offset, note = parse_date_cell(raw)
    if note is not None:
        notes.append(note)
    if clock is None:
        if not date_only_ok:
            raise InvalidValue(
                IssueCode.MISSING_TIME,
                f"{_quote(cell_text(raw))} has a date but no time of day (or midnight).",
                f"Add the time, e.g. {day_value:%d/%m/%Y} 10:00.",
            )
        clock = time()
    value, tz_note = to_local(day_value, clock, offset, tz)
    if tz_note is not None:
        notes.append(tz_note)
    return value, notes


# -- postal codes ----------------------------------------------------------------------------


def _digit_template(country: Country) -> str | None:
    """``#####-###`` for a format like BR's: the example's digits as ``#``, if it is only
    digits and punctuation, with at least one punctuation mark."""
    example = country.postal_code_example
    if re.fullmatch(r"[\d\W]+", example) and not example.isdigit():
        return re.sub(r"\d", "#", example)
    return None


def parse_postal_code(raw: object, country: Country) -> tuple[str, Note | None]:
    """A postal code, as text, checked against the country's format (zeros restored)."""
    from_number = _is_number(raw)
    if isinstance(raw, float) and not raw.is_integer():
        raise _bad_postal(cell_text(raw), country)
    text = cell_text(raw)
    if country.is_valid_postal_code(text):
        return text, None
    width = country.postal_code_digits
    if width is not None and text.isdigit() and len(text) < width:
        restored = text.zfill(width)
        if country.is_valid_postal_code(restored):
            return restored, _restored_note(country.code, width, from_number)
    template = _digit_template(country)
    if template is not None:
        digits = re.sub(r"[\s\W_]", "", text)
        slots = template.count("#")
        if digits.isdigit() and len(digits) <= slots:
            filled = iter(digits.zfill(slots))
            candidate = "".join(next(filled) if ch == "#" else ch for ch in template)
            if country.is_valid_postal_code(candidate):
                return candidate, Note(
                    IssueCode.POSTAL_CODE_REFORMATTED,
                    f"The postal code {text} was rewritten in the {country.name} format as "
                    f"{candidate}.",
                    f"Check the postal code; write it as {country.postal_code_example}.",
                )
    squeezed = re.sub(r"\s+", "", text).upper()
    if squeezed != text and country.is_valid_postal_code(squeezed):
        return squeezed, Note(
            IssueCode.POSTAL_CODE_REFORMATTED,
            f"The postal code {_quote(text)} was rewritten as {squeezed}.",
            f"Check the postal code; write it as {country.postal_code_example}.",
        )
    raise _bad_postal(text, country)


@functools.lru_cache(maxsize=64)
def _restored_note(country_code: str, width: int, from_number: bool) -> Note:
    how = (
        "was stored as a number and lost its leading zero(s)"
        if from_number
        else f"had fewer than {width} digits"
    )
    return Note(
        IssueCode.POSTAL_CODE_RESTORED,
        f"The postal code {how}; the loader added the zero(s) back to make {width} digits.",
        "Check the postal code (see the interpreted value). In Excel, format the column as "
        "Text so leading zeros are kept.",
    )


def _bad_postal(text: str, country: Country) -> InvalidValue:
    return InvalidValue(
        IssueCode.INVALID_POSTAL_CODE,
        f"{_quote(text)} is not a valid {country.name} postal code.",
        f"Write it in the {country.name} format, e.g. {country.postal_code_example}.",
    )


# -- phones, e-mails, documents -------------------------------------------------------------

NATIONAL_NUMBER_LENGTHS: dict[str, tuple[int, ...]] = {
    "cl": (9,),
    "pe": (8, 9),
    "co": (10,),
    "mx": (10,),
    "ar": (10, 11),
    "br": (10, 11),
    "uy": (8,),
}
"""Digits of a national (significant) number, without the country code or a trunk ``0``:
used only to tell a local number from one that already carries the country code."""

_PHONE_PUNCTUATION = re.compile(r"[\s().\-/]")
_E164 = re.compile(r"\+[1-9]\d{7,14}")


def parse_phone(raw: object, country: Country) -> tuple[str, Note | None]:
    """A phone number in E.164 (``+56912345678``), with a note when digits were added."""
    text = cell_text(raw)
    lengths = NATIONAL_NUMBER_LENGTHS.get(country.code, ())
    prefix = country.phone_prefix
    cc = prefix.removeprefix("+")
    compact = _PHONE_PUNCTUATION.sub("", text)
    expected = " or ".join(str(n) for n in lengths)
    if compact.startswith("+"):
        if not _E164.fullmatch(compact):
            raise _bad_phone(text, country, expected)
        if compact.startswith(prefix) and len(compact) - len(prefix) not in lengths:
            return compact, Note(
                IssueCode.PHONE_NORMALISED,
                f"The phone {text} does not have the usual number of digits for "
                f"{country.name} ({expected} after {prefix}).",
                "Check the phone number.",
            )
        return compact, None
    if not compact.isdigit():
        raise _bad_phone(text, country, expected)
    if compact.startswith("00"):
        candidate = "+" + compact[2:]
        if _E164.fullmatch(candidate):
            return candidate, _phone_note(
                "The phone started with 00, read as the international prefix and written as +."
            )
        raise _bad_phone(text, country, expected)
    if compact.startswith(cc) and len(compact) - len(cc) in lengths:
        candidate = "+" + compact
        return candidate, _phone_note(
            f"The phone started with {country.name}'s code {cc} without a '+'; the loader "
            "added the '+'."
        )
    national = compact[1:] if compact.startswith("0") else compact
    if len(national) in lengths:
        candidate = prefix + national
        what = "dropped the leading 0 and " if national != compact else ""
        return candidate, _phone_note(
            f"The phone had no country code; the loader {what}added {country.name}'s "
            f"prefix {prefix}."
        )
    raise _bad_phone(text, country, expected)


# Warnings that occur on most rows of a sheet (local phones, numeric postal codes) have a
# constant text, shared by every row (at 100,000 rows, per-row texts cost tens of MiB): the
# results file shows the original value beside the interpreted one anyway.
@functools.lru_cache(maxsize=64)
def _phone_note(message: str) -> Note:
    return Note(
        IssueCode.PHONE_NORMALISED,
        message,
        "Check the number (see the interpreted value); write phones in full with their "
        "country code, e.g. +56912345678.",
    )


def _bad_phone(text: str, country: Country, expected: str) -> InvalidValue:
    return InvalidValue(
        IssueCode.INVALID_PHONE,
        f"{_quote(text)} is not a phone number the loader can use: a {country.name} number "
        f"has {expected} digits, or start it with + and the country code.",
        f"Write it with the country code, e.g. {country.phone_prefix} followed by the "
        "number, digits only.",
    )


_EMAIL = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)


def parse_email(raw: object) -> str:
    """An e-mail address (one per cell), checked for a plausible shape."""
    text = cell_text(raw)
    text = text.removeprefix("mailto:")
    if _EMAIL.fullmatch(text) and len(text) <= 254:
        return text
    if re.search(r"[;,\s]", text) and "@" in text:
        raise InvalidValue(
            IssueCode.INVALID_EMAIL,
            f"{_quote(text)} holds more than one e-mail address, or spaces.",
            "Keep one e-mail address per cell.",
        )
    raise InvalidValue(
        IssueCode.INVALID_EMAIL,
        f"{_quote(text)} is not a valid e-mail address.",
        "Write it as name@example.com, or leave it empty if a phone is given.",
    )


def parse_document_id(raw: object) -> tuple[str, Note | None]:
    """A document id (RUT, DNI, CPF, CURP...), kept as text exactly as written."""
    text = parse_text(raw)
    if _is_number(raw):
        return text, Note(
            IssueCode.NUMBER_AS_TEXT,
            f"The document id {text} was stored as a number; leading zeros, dots or a "
            "check digit may have been lost.",
            "Check it; format the column as Text in Excel.",
        )
    return text, None


# -- small enums and counts --------------------------------------------------------------------

_Word = TypeVar("_Word", bound=StrEnum)


def _word_index(aliases: Mapping[_Word, tuple[str, ...]]) -> dict[str, _Word]:
    """Each alias, keyed as headers are (:func:`header_key`), -> the contract's value."""
    return {header_key(alias): word for word, names in aliases.items() for alias in names}


def _parse_word(
    raw: object, index: Mapping[str, _Word], code: IssueCode, what: str, fix: str
) -> _Word:
    """The contract value a cell names in any of its languages, or :class:`InvalidValue`
    (``what``: "a payment method"...)."""
    text = cell_text(raw)
    word = index.get(header_key(text))
    if word is None:
        raise InvalidValue(code, f"{_quote(text)} is not {what} the loader knows.", fix)
    return word


_METHOD_ALIASES: dict[PaymentMethod, tuple[str, ...]] = {
    PaymentMethod.CARD: (
        "card",
        "credit card",
        "debit card",
        "tarjeta",
        "tarjeta credito",
        "tarjeta debito",
        "tarjeta de crédito",
        "tarjeta de débito",
        "credito",
        "crédito",
        "debito",
        "débito",
        "tc",
        "td",
        "cartao",
        "cartão",
        "cartão de crédito",
        "cartão de débito",
        "cartao credito",
        "cartao debito",
        "redcompra",
        "webpay",
    ),
    PaymentMethod.TRANSFER: (
        "transfer",
        "bank transfer",
        "wire",
        "transferencia",
        "transferencia bancaria",
        "transferência",
        "transferência bancária",
        "deposito",
        "depósito",
        "pix",
        "ted",
        "spei",
        "yape",
        "plin",
    ),
    PaymentMethod.CASH: ("cash", "efectivo", "contado", "dinheiro", "especie", "en efectivo"),
    PaymentMethod.FINANCING: (
        "financing",
        "financed",
        "finance",
        "financiamiento",
        "financiación",
        "financiado",
        "financiamento",
        "financiado",
        "credito directo",
        "crediario",
        "crediário",
        "cuotas",
        "parcelado",
    ),
}
_METHOD_INDEX = _word_index(_METHOD_ALIASES)


def parse_payment_method(raw: object) -> PaymentMethod:
    """``card`` | ``transfer`` | ``cash`` | ``financing``, from English, Spanish or Portuguese:
    one of the contract's :class:`PaymentMethod`."""
    return _parse_word(
        raw,
        _METHOD_INDEX,
        IssueCode.INVALID_PAYMENT_METHOD,
        "a payment method",
        "Use card (tarjeta/cartão), transfer (transferencia/transferência), cash "
        "(efectivo/dinheiro) or financing (financiamiento/financiamento).",
    )


_STATUS_ALIASES: dict[BookingStatus, tuple[str, ...]] = {
    BookingStatus.SCHEDULED: (
        "scheduled",
        "programada",
        "programado",
        "agendada",
        "agendado",
        "reservada",
        "pendiente",
        "pendente",
    ),
    BookingStatus.CONFIRMED: ("confirmed", "confirmada", "confirmado"),
    BookingStatus.IN_PROGRESS: (
        "in progress",
        "in_progress",
        "started",
        "en curso",
        "en proceso",
        "en progreso",
        "iniciada",
        "em andamento",
        "em curso",
        "em progresso",
        "iniciado",
    ),
    BookingStatus.COMPLETED: (
        "completed",
        "done",
        "completada",
        "completado",
        "terminada",
        "terminado",
        "finalizada",
        "finalizado",
        "realizada",
        "concluída",
        "concluida",
        "concluído",
        "concluido",
    ),
    BookingStatus.CANCELLED: (
        "cancelled",
        "canceled",
        "cancelada",
        "cancelado",
        "anulada",
        "anulado",
    ),
}
_STATUS_INDEX = _word_index(_STATUS_ALIASES)


def parse_booking_status(raw: object) -> BookingStatus:
    """A booking's status, from English, Spanish or Portuguese (``confirmada``, ``em
    andamento``, ``concluída``...): one of the contract's :class:`BookingStatus`."""
    return _parse_word(
        raw,
        _STATUS_INDEX,
        IssueCode.INVALID_BOOKING_STATUS,
        "a booking status",
        "Use scheduled (programada/agendada), confirmed (confirmada), in_progress "
        "(en curso/em andamento), completed (completada/concluída) or cancelled "
        "(cancelada), or leave the cell empty.",
    )


def parse_stage_sequence(raw: object) -> int:
    """A stage's position in its project: a whole number, 1 or more."""
    text = cell_text(raw)
    value: int | None = None
    if isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    elif isinstance(raw, float) and raw.is_integer():
        value = int(raw)
    elif re.fullmatch(r"\d+(?:[.,]0+)?", text):
        value = int(re.split(r"[.,]", text)[0])
    if value is None or value < 1:
        raise InvalidValue(
            IssueCode.INVALID_STAGE_SEQUENCE,
            f"{_quote(text)} is not a stage number; stages are numbered 1, 2, 3...",
            "Write the stage's position in the project as a whole number from 1.",
        )
    return value
