"""The pure value parsers: examples for every rule, and properties for the round trips."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from sodtrack.bulkload import IssueCode, neutralise_formula
from sodtrack.bulkload.issues import InvalidValue
from sodtrack.bulkload.neutralise import needs_neutralising
from sodtrack.bulkload.reading.values import (
    NATIONAL_NUMBER_LENGTHS,
    PAYMENT_METHODS,
    cell_text,
    localize,
    parse_amount,
    parse_currency,
    parse_date_cell,
    parse_datetime,
    parse_document_id,
    parse_email,
    parse_payment_method,
    parse_phone,
    parse_postal_code,
    parse_reference,
    parse_stage_sequence,
    parse_text,
    parse_time_cell,
    to_local,
)
from sodtrack.contract.countries import COUNTRIES, Country, get_country
from sodtrack.contract.models import PaymentMethod

CL, PE, MX, BR, AR = (get_country(c) for c in ("cl", "pe", "mx", "br", "ar"))
SANTIAGO = ZoneInfo("America/Santiago")


# -- amounts -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [
        ("45990", "cl", "45990"),
        ("45.990", "cl", "45990"),  # the CLP rule: a lone separator before 3 digits is thousands
        ("45,990", "cl", "45990"),
        ("$45.990", "cl", "45990"),
        ("CLP 1.045.990", "cl", "1045990"),
        ("45990 CLP", "cl", "45990"),
        ("45 990", "cl", "45990"),
        ("45990,00", "cl", "45990"),  # zero decimals fit a currency with none
        ("1.234,56", "pe", "1234.56"),
        ("1,234.56", "pe", "1234.56"),
        ("1 234,56", "pe", "1234.56"),
        ("1'234.56", "pe", "1234.56"),
        ("149.9", "pe", "149.90"),
        ("149,90", "pe", "149.90"),
        ("S/ 149.90", "pe", "149.90"),
        ("1.234.567", "pe", "1234567.00"),  # repeated separator: thousands
        ("R$ 1.234,56", "br", "1234.56"),
        ("0,05", "mx", "0.05"),
        ("-100", "mx", "-100.00"),
        ("(100)", "mx", "-100.00"),
        ("1,234,567.8", "mx", "1234567.80"),
    ],
)
def test_amount_text(raw: str, country: str, expected: str) -> None:
    value = parse_amount(raw, get_country(country))
    assert value == Decimal(expected)
    assert str(value) == expected  # exactly the currency's minor units


@pytest.mark.parametrize(
    ("raw", "country", "code"),
    [
        ("45990.5", "cl", IssueCode.TOO_MANY_DECIMALS),
        ("45990,5", "cl", IssueCode.TOO_MANY_DECIMALS),
        ("45.99", "cl", IssueCode.TOO_MANY_DECIMALS),
        ("149.9051", "pe", IssueCode.TOO_MANY_DECIMALS),
        ("149.905", "pe", IssueCode.AMBIGUOUS_AMOUNT),
        ("1.234", "pe", IssueCode.AMBIGUOUS_AMOUNT),
        ("1,234", "mx", IssueCode.AMBIGUOUS_AMOUNT),
        ("1,23.45", "pe", IssueCode.INVALID_AMOUNT),
        ("1.234.56", "pe", IssueCode.INVALID_AMOUNT),
        ("1,234,5", "cl", IssueCode.INVALID_AMOUNT),
        ("12a", "pe", IssueCode.INVALID_AMOUNT),
        ("abc", "pe", IssueCode.INVALID_AMOUNT),
        ("1.234,5.6", "pe", IssueCode.INVALID_AMOUNT),
        ("USD 100", "pe", IssueCode.CURRENCY_MISMATCH),
        ("US$ 100", "cl", IssueCode.CURRENCY_MISMATCH),
        ("100 EUR", "mx", IssueCode.CURRENCY_MISMATCH),
        ("R$ 100", "cl", IssueCode.CURRENCY_MISMATCH),
        ("PEN 100", "cl", IssueCode.CURRENCY_MISMATCH),
    ],
)
def test_amount_text_rejected(raw: str, country: str, code: IssueCode) -> None:
    with pytest.raises(InvalidValue) as excinfo:
        parse_amount(raw, get_country(country))
    assert excinfo.value.code == code
    assert excinfo.value.message
    assert excinfo.value.suggested_fix


def test_ambiguous_amount_message_offers_both_readings() -> None:
    with pytest.raises(InvalidValue) as excinfo:
        parse_amount("1.234", PE)
    assert "1234" in excinfo.value.message
    assert "1.234" in excinfo.value.message


def test_amount_cells_from_xlsx() -> None:
    assert parse_amount(45990, CL) == Decimal("45990")
    assert parse_amount(45990.0, CL) == Decimal("45990")
    assert parse_amount(1499.9, MX) == Decimal("1499.90")
    assert parse_amount(0.1 + 0.2, MX) == Decimal("0.30")  # float noise is not a decimal
    with pytest.raises(InvalidValue) as excinfo:
        parse_amount(45990.5, CL)
    assert excinfo.value.code == IssueCode.TOO_MANY_DECIMALS
    with pytest.raises(InvalidValue):
        parse_amount(True, CL)
    with pytest.raises(InvalidValue):
        parse_amount(float("nan"), CL)


def test_declared_decimal_separator_removes_the_ambiguity() -> None:
    assert parse_amount("1.234", PE, decimal_separator=",") == Decimal("1234.00")
    assert parse_amount("1,5", PE, decimal_separator=",") == Decimal("1.50")
    assert parse_amount("1.234,56", PE, decimal_separator=",") == Decimal("1234.56")
    assert parse_amount("1,234", PE, decimal_separator=".") == Decimal("1234.00")
    with pytest.raises(InvalidValue) as excinfo:
        parse_amount("1.234", PE, decimal_separator=".")
    assert excinfo.value.code == IssueCode.TOO_MANY_DECIMALS
    with pytest.raises(InvalidValue):
        parse_amount("1,234.56", PE, decimal_separator=",")


CONVENTIONS = st.sampled_from(
    [
        # (thousands separator, decimal separator)
        ("", "."),
        ("", ","),
        (",", "."),
        (".", ","),
        (" ", ","),
        (" ", "."),
        ("\u00a0", ","),
        ("'", "."),
    ]
)


def format_amount(value: Decimal, group: str, point: str, decimals: int) -> str:
    """``value`` written the way a person with that convention would write it."""
    integer, _, fraction = f"{value:.{decimals}f}".partition(".")
    groups: list[str] = []
    while len(integer) > 3:
        groups.insert(0, integer[-3:])
        integer = integer[:-3]
    groups.insert(0, integer)
    text = group.join(groups)
    return f"{text}{point}{fraction}" if decimals else text


amounts = st.decimals(min_value=0, max_value=10**12, places=2, allow_nan=False)


@given(value=amounts, convention=CONVENTIONS, code=st.sampled_from(sorted(COUNTRIES)))
def test_amount_round_trip(value: Decimal, convention: tuple[str, str], code: str) -> None:
    """Any amount, written with any convention and the currency's minor units, parses back."""
    country = COUNTRIES[code]
    value = value.quantize(country.quantum)
    text = format_amount(value, *convention, decimals=country.minor_units)
    assert parse_amount(text, country) == value


@given(
    value=amounts,
    convention=CONVENTIONS,
    code=st.sampled_from(sorted(COUNTRIES)),
    decimals=st.integers(0, 3),
)
def test_amount_never_guesses_wrong(
    value: Decimal, convention: tuple[str, str], code: str, decimals: int
) -> None:
    """Written any way at all, an amount either parses to exactly its value or is refused.

    The one documented exception: in a currency without minor units (CLP), ``1.000`` is one
    thousand, never one with three decimals, so that rendering is left out.
    """
    country = COUNTRIES[code]
    assume(not (country.minor_units == 0 and decimals == 3))
    value = value.quantize(Decimal(1).scaleb(-decimals))
    text = format_amount(value, *convention, decimals=decimals)
    try:
        parsed = parse_amount(text, country)
    except InvalidValue:
        return
    assert parsed == value


@given(value=amounts, convention=CONVENTIONS, decimals=st.integers(0, 2))
def test_amount_round_trip_with_declared_separator(
    value: Decimal, convention: tuple[str, str], decimals: int
) -> None:
    group, point = convention
    value = value.quantize(Decimal(1).scaleb(-decimals))
    text = format_amount(value, group, point, decimals)
    assert parse_amount(text, PE, decimal_separator=point) == value


def test_currency() -> None:
    assert parse_currency("clp", CL) == "CLP"
    with pytest.raises(InvalidValue) as excinfo:
        parse_currency("USD", CL)
    assert excinfo.value.code == IssueCode.CURRENCY_MISMATCH


# -- dates and times ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "03/12/2026 10:00",
        "3/12/2026 10:00",
        "03-12-2026 10:00",
        "03.12.2026 10.00",
        "03/12/2026 10:00:00",
        "03/12/2026, 10:00",
        "03/12/2026 10h00",
        "03/12/2026 10:00 hrs",
        "03/12/2026 10:00 AM",
        "03/12/2026 10:00 a.m.",
        "2026-12-03T10:00",
        "2026-12-03 10:00:00",
        "2026/12/03 10:00",
        datetime(2026, 12, 3, 10, 0),
        46359 + 10 / 24,  # an Excel serial with a time fraction
    ],
)
def test_datetime_forms(raw: object) -> None:
    value, _ = parse_datetime(raw, SANTIAGO)
    assert value == datetime(2026, 12, 3, 10, 0, tzinfo=SANTIAGO)
    assert value.tzinfo is SANTIAGO


def test_pm_times() -> None:
    value, _ = parse_datetime("03/12/2026 3:30 pm", SANTIAGO)
    assert value.time() == time(15, 30)
    assert parse_time_cell("12:00 am") == time(0, 0)
    assert parse_time_cell("12:15 PM") == time(12, 15)


def test_explicit_offset_is_honoured() -> None:
    value, notes = parse_datetime("2026-12-03T10:00-03:00", SANTIAGO)
    assert value == datetime(2026, 12, 3, 13, 0, tzinfo=UTC)
    assert value.tzinfo is SANTIAGO
    assert notes == []
    value, notes = parse_datetime("2026-12-03T13:00:00Z", SANTIAGO)
    assert value.hour == 10
    assert value.tzinfo is SANTIAGO
    assert [n.code for n in notes] == [IssueCode.OFFSET_CONVERTED]
    value, notes = parse_datetime("03/12/2026 10:00 -05:00", SANTIAGO)
    assert value == datetime(2026, 12, 3, 15, 0, tzinfo=UTC)
    assert [n.code for n in notes] == [IssueCode.OFFSET_CONVERTED]


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("12/31/2026 10:00", IssueCode.MONTH_FIRST_DATE),
        ("03/12/26 10:00", IssueCode.INVALID_DATE),
        ("31/02/2026 10:00", IssueCode.INVALID_DATE),
        ("tomorrow", IssueCode.INVALID_DATE),
        ("03/12/2026", IssueCode.MISSING_TIME),
        (date(2026, 12, 3), IssueCode.MISSING_TIME),
        (46359, IssueCode.MISSING_TIME),
        (time(10, 0), IssueCode.MISSING_TIME),
        (0.5, IssueCode.MISSING_TIME),
        ("03/12/2026 25:00", IssueCode.INVALID_TIME),
        (12, IssueCode.INVALID_DATE),  # not a plausible Excel serial
        ("2026-12-03T10:00+15:00", IssueCode.INVALID_DATE),
    ],
)
def test_datetime_rejected(raw: object, code: IssueCode) -> None:
    with pytest.raises(InvalidValue) as excinfo:
        parse_datetime(raw, SANTIAGO)
    assert excinfo.value.code == code


def test_month_first_fix_suggests_the_day_first_form() -> None:
    with pytest.raises(InvalidValue) as excinfo:
        parse_datetime("12/31/2026 10:00", SANTIAGO)
    assert "31/12/2026" in excinfo.value.suggested_fix


def test_date_only_means_local_midnight_where_allowed() -> None:
    value, _ = parse_datetime("03/12/2026", SANTIAGO, date_only_ok=True)
    assert value == datetime(2026, 12, 3, tzinfo=SANTIAGO)
    value, _ = parse_datetime(date(2026, 12, 3), SANTIAGO, date_only_ok=True)
    assert value == datetime(2026, 12, 3, tzinfo=SANTIAGO)


def test_serial_numbers_in_date_columns() -> None:
    day, clock, offset, note = parse_date_cell(46359)
    assert (day, clock, offset) == (date(2026, 12, 3), None, None)
    assert note is not None
    assert note.code == IssueCode.NUMBER_AS_TEXT
    assert "03/12/2026" in note.message
    day, clock, _, note = parse_date_cell("46359")  # the same serial, as CSV text
    assert day == date(2026, 12, 3)
    assert clock is None
    assert note is not None
    day, clock, _, _ = parse_date_cell(46359.75)
    assert clock == time(18, 0)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (time(10, 30), time(10, 30)),
        (0.4375, time(10, 30)),
        (0.41666666666666669, time(10, 0)),  # float noise rounds to the second
        (timedelta(hours=10, minutes=30), time(10, 30)),
        (datetime(1899, 12, 30, 10, 30), time(10, 30)),
        ("10:30", time(10, 30)),
        ("9:05", time(9, 5)),
        ("10h30", time(10, 30)),
        ("10:30:15", time(10, 30, 15)),
    ],
)
def test_time_cells(raw: object, expected: time) -> None:
    assert parse_time_cell(raw) == expected


@pytest.mark.parametrize("raw", ["25:00", "10:61", "10", "abc", 1.5, date(2026, 12, 3), "13:00 pm"])
def test_time_cells_rejected(raw: object) -> None:
    with pytest.raises(InvalidValue) as excinfo:
        parse_time_cell(raw)
    assert excinfo.value.code == IssueCode.INVALID_TIME


def test_local_time_skipped_by_dst_is_an_error() -> None:
    # Santiago moves its clocks from 00:00 to 01:00 on 6 September 2026.
    with pytest.raises(InvalidValue) as excinfo:
        localize(datetime(2026, 9, 6, 0, 30), SANTIAGO)
    assert excinfo.value.code == IssueCode.NONEXISTENT_LOCAL_TIME


def test_local_time_repeated_by_dst_takes_the_first_with_a_warning() -> None:
    # Santiago moves its clocks back from 24:00 to 23:00 on 4 April 2026.
    value, note = localize(datetime(2026, 4, 4, 23, 30), SANTIAGO)
    assert note is not None
    assert note.code == IssueCode.AMBIGUOUS_LOCAL_TIME
    assert value.utcoffset() == timedelta(hours=-3)  # the first 23:30, still summer time
    value, note = localize(datetime(2026, 12, 3, 10, 0), SANTIAGO)
    assert note is None


def test_to_local_with_offset() -> None:
    value, note = to_local(date(2026, 12, 3), time(13, 0), UTC, SANTIAGO)
    assert value == datetime(2026, 12, 3, 10, 0, tzinfo=SANTIAGO)
    assert note is not None


local_datetimes = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31, 23, 59)
).map(lambda d: d.replace(second=0, microsecond=0))

DAY_FIRST_FORMATS = st.sampled_from(
    ["%d/%m/%Y %H:%M", "%d-%m-%Y %H:%M", "%d.%m.%Y %H:%M", "%Y-%m-%dT%H:%M", "%d/%m/%Y %H:%M:%S"]
)


@given(moment=local_datetimes, fmt=DAY_FIRST_FORMATS, code=st.sampled_from(sorted(COUNTRIES)))
def test_day_first_dates_round_trip(moment: datetime, fmt: str, code: str) -> None:
    """A local time written day-first parses back to the same instant in the country's zone."""
    tz = COUNTRIES[code].tz
    aware = moment.replace(tzinfo=tz)
    exists = aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == moment
    unambiguous = moment.replace(tzinfo=tz, fold=1).utcoffset() == aware.utcoffset()
    assume(exists and unambiguous)
    value, notes = parse_datetime(moment.strftime(fmt), tz)
    assert value == aware
    assert value.replace(tzinfo=None) == moment
    assert notes == []


@given(moment=local_datetimes, code=st.sampled_from(sorted(COUNTRIES)))
def test_iso_with_offset_round_trips_to_the_instant(moment: datetime, code: str) -> None:
    tz = COUNTRIES[code].tz
    instant = moment.replace(tzinfo=UTC)
    value, _ = parse_datetime(instant.isoformat(), tz)
    assert value == instant
    assert value.tzinfo is tz


# -- postal codes --------------------------------------------------------------------------------


def test_numeric_postal_code_gets_its_zero_back() -> None:
    value, note = parse_postal_code(6700, MX)
    assert value == "06700"
    assert note is not None
    assert note.code == IssueCode.POSTAL_CODE_RESTORED
    assert "number" in note.message


def test_postal_codes() -> None:
    assert parse_postal_code("06700", MX) == ("06700", None)
    assert parse_postal_code("7500000", CL) == ("7500000", None)
    assert parse_postal_code(7500000, CL) == ("7500000", None)
    value, note = parse_postal_code("6700", MX)  # a CSV saved after Excel dropped the zero
    assert value == "06700"
    assert note is not None
    value, note = parse_postal_code("01310100", BR)
    assert value == "01310-100"
    assert note is not None
    assert note.code == IssueCode.POSTAL_CODE_REFORMATTED
    value, note = parse_postal_code(1310100, BR)
    assert value == "01310-100"
    assert note is not None
    assert parse_postal_code("01310-100", BR) == ("01310-100", None)
    value, note = parse_postal_code("c1425dkf", AR)
    assert value == "C1425DKF"
    assert note is not None


@pytest.mark.parametrize(
    ("raw", "country"),
    [(123456, MX), ("ABCDE", MX), (6700.5, MX), ("1425", AR), ("12345678", CL), ("", PE)],
)
def test_postal_codes_rejected(raw: object, country: Country) -> None:
    with pytest.raises(InvalidValue) as excinfo:
        parse_postal_code(raw, country)
    assert excinfo.value.code == IssueCode.INVALID_POSTAL_CODE


@given(
    country=st.sampled_from([c for c in COUNTRIES.values() if c.postal_code_digits]),
    data=st.data(),
    as_text=st.booleans(),
)
def test_postal_code_restoration_round_trips(
    country: Country, data: st.DataObject, as_text: bool
) -> None:
    """A fixed-width code that a spreadsheet turned into a number (or a CSV saved after that)
    comes back exactly as it was."""
    width = country.postal_code_digits
    assert width is not None
    code = data.draw(st.text(alphabet="0123456789", min_size=width, max_size=width))
    assume(int(code) > 0)
    stripped: object = str(int(code)) if as_text else int(code)
    value, note = parse_postal_code(stripped, country)
    assert value == code
    assert (note is not None) == code.startswith("0")


# -- phones, e-mails, documents, references ------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "country", "expected", "noted"),
    [
        ("+56 9 1234 5678", "cl", "+56912345678", False),
        ("+56912345678", "cl", "+56912345678", False),
        ("9 1234 5678", "cl", "+56912345678", True),
        ("09 1234 5678", "cl", "+56912345678", True),
        ("56912345678", "cl", "+56912345678", True),
        ("0056912345678", "cl", "+56912345678", True),
        (56912345678, "cl", "+56912345678", True),
        ("(55) 1234-5678", "mx", "+525512345678", True),
        ("011 1234-5678", "ar", "+541112345678", True),
        ("(11) 98765-4321", "br", "+5511987654321", True),
        ("+1 415 555 0100", "cl", "+14155550100", False),  # a foreign number is kept
        ("099 123 456", "uy", "+59899123456", True),
    ],
)
def test_phones(raw: object, country: str, expected: str, noted: bool) -> None:
    value, note = parse_phone(raw, get_country(country))
    assert value == expected
    assert (note is not None) == noted
    if note is not None:
        assert note.code == IssueCode.PHONE_NORMALISED


@pytest.mark.parametrize("raw", ["abc", "123", "+56 9 1234", "9 1234 5678 ext 2", "+0123456789"])
def test_phones_rejected(raw: str) -> None:
    with pytest.raises(InvalidValue) as excinfo:
        parse_phone(raw, CL)
    assert excinfo.value.code == IssueCode.INVALID_PHONE


def test_phone_of_the_wrong_length_for_the_country_is_a_warning() -> None:
    value, note = parse_phone("+5691234567", CL)
    assert value == "+5691234567"
    assert note is not None


def test_national_lengths_cover_every_country() -> None:
    assert set(NATIONAL_NUMBER_LENGTHS) == set(COUNTRIES)


@pytest.mark.parametrize("raw", ["ana@example.com", "ana.rojas+x@mail.example.cl", "mailto:a@b.co"])
def test_emails(raw: str) -> None:
    assert parse_email(raw) == raw.removeprefix("mailto:")


@pytest.mark.parametrize(
    "raw", ["ana", "ana@", "@example.com", "ana@example", "a b@example.com", "a@x.com; b@y.com"]
)
def test_emails_rejected(raw: str) -> None:
    with pytest.raises(InvalidValue) as excinfo:
        parse_email(raw)
    assert excinfo.value.code == IssueCode.INVALID_EMAIL


def test_document_ids_stay_text() -> None:
    assert parse_document_id("12.345.678-5") == ("12.345.678-5", None)
    value, note = parse_document_id(1234567)
    assert value == "1234567"
    assert note is not None


def test_references() -> None:
    assert parse_reference("OPS-2026_11.000123") == "OPS-2026_11.000123"
    assert parse_reference(123) == "123"
    assert parse_reference("x" * 64) == "x" * 64
    with pytest.raises(InvalidValue) as excinfo:
        parse_reference("x" * 65)
    assert excinfo.value.code == IssueCode.INVALID_REFERENCE
    with pytest.raises(InvalidValue) as excinfo:
        parse_reference("OPS 2026/ñ")
    assert "space" in excinfo.value.message
    assert "OPS-2026-n" in excinfo.value.suggested_fix


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("card", "card"),
        ("Tarjeta de crédito", "card"),
        ("CARTÃO", "card"),
        ("cartão de débito", "card"),
        ("transferencia", "transfer"),
        ("Transferência bancária", "transfer"),
        ("PIX", "transfer"),
        ("efectivo", "cash"),
        ("Dinheiro", "cash"),
        ("financiamiento", "financing"),
        ("financiamento", "financing"),
    ],
)
def test_payment_methods(raw: str, expected: str) -> None:
    assert parse_payment_method(raw) == expected


@pytest.mark.parametrize("method", list(PaymentMethod))
def test_every_contract_payment_method_is_the_sheets(method: PaymentMethod) -> None:
    """The sheet's vocabulary is the contract's: each method reads from its own name, as the
    contract's enum, and the template's list is the contract's values in order."""
    parsed = parse_payment_method(method.value.upper())
    assert parsed is method
    assert PAYMENT_METHODS.index(method.value) == list(PaymentMethod).index(method)


def test_payment_method_rejected() -> None:
    with pytest.raises(InvalidValue) as excinfo:
        parse_payment_method("cheque")
    assert excinfo.value.code == IssueCode.INVALID_PAYMENT_METHOD
    assert excinfo.value.message == "'cheque' is not a payment method the loader knows."
    assert excinfo.value.suggested_fix.startswith("Use card (tarjeta/cartão), transfer")


@pytest.mark.parametrize(("raw", "expected"), [(1, 1), ("2", 2), (3.0, 3), ("4,0", 4)])
def test_stage_sequence(raw: object, expected: int) -> None:
    assert parse_stage_sequence(raw) == expected


@pytest.mark.parametrize("raw", [0, "0", -1, 1.5, "uno", True])
def test_stage_sequence_rejected(raw: object) -> None:
    with pytest.raises(InvalidValue) as excinfo:
        parse_stage_sequence(raw)
    assert excinfo.value.code == IssueCode.INVALID_STAGE_SEQUENCE


def test_text_cells() -> None:
    assert cell_text("  Ana\u00a0María ") == "Ana María"
    assert cell_text(45990.0) == "45990"
    assert cell_text(date(2026, 12, 3)) == "2026-12-03"
    assert parse_text("Llamar\nantes") == "Llamar\nantes"
    with pytest.raises(InvalidValue):
        parse_text("bad\x07bell")


# -- formula neutralising ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["=1+2", "+56912345678", "-45", "@SUM(A1)", "\tx", "\rx", "＝HYPERLINK()"]
)
def test_neutralise_formula(text: str) -> None:
    assert needs_neutralising(text)
    assert neutralise_formula(text) == "'" + text


@pytest.mark.parametrize("text", ["", "Ana", "45990", "a=b", " =1"])
def test_safe_text_is_left_alone(text: str) -> None:
    assert neutralise_formula(text) == text


@given(text=st.text())
def test_neutralised_text_never_starts_a_formula(text: str) -> None:
    safe = neutralise_formula(text)
    assert not needs_neutralising(safe)
    assert safe in (text, "'" + text)


def test_a_neutralised_cell_reads_back_as_what_was_neutralised() -> None:
    from sodtrack.bulkload.neutralise import neutralise_formula

    for text in ("+56912345678", "-5", "=1+1", "@x"):
        assert cell_text(neutralise_formula(text)) == text
    assert cell_text("'plain") == "'plain"  # an apostrophe before ordinary text is data
