"""Raw row -> :class:`BookingRow`: every field interpreted, every problem of the row typed.

A row is one booking, optionally in a project stage, optionally carrying a payment against
the project. The checks here need only the row itself (and the country):

- required fields: ``external_reference``, ``service_sku``, ``scheduled_start`` (or
  ``scheduled_date`` + ``scheduled_time``), the customer's first and last name, at least one of
  e-mail and phone, ``address_line1``, ``city``, ``region``, ``postal_code``;
- payment fields are all-or-nothing (reference, amount, method, paid_at; the currency defaults
  to the country's and must equal it), and a payment needs a ``project_reference``;
- ``booking_status`` (optional, en/es/pt values) ``cancelled`` needs a
  ``cancellation_reason``, and a reason needs ``cancelled``;
- stage fields need a ``project_reference``, and a ``stage_name`` needs its ``stage_sequence``
  (a sequence alone is fine when another row of the stage names it: a cross-row check);
- formats, enums and amounts, through :mod:`sodtrack.bulkload.reading.values`.

Checks across rows (duplicates, disagreeing project rows) are in :mod:`.crossrow`.

Memory: a 100,000-row upload holds 100,000 rows, so a row is a slotted dataclass and keeps its
original cells as a tuple beside a header tuple shared by every row; :attr:`BookingRow.original`
builds the ``{header: raw value}`` dict on demand.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time
from decimal import Decimal
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sodtrack.bulkload.columns import SPEC, ColumnType
from sodtrack.bulkload.issues import InvalidValue, IssueCode, IssueSeverity, Note, RowIssue
from sodtrack.bulkload.reading.headers import PAYMENT_COLUMNS
from sodtrack.bulkload.reading.merges import merged_cells_issue
from sodtrack.bulkload.reading.reader import CellProblem
from sodtrack.bulkload.reading.values import (
    parse_amount,
    parse_booking_status,
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
from sodtrack.contract.countries import Country
from sodtrack.contract.models import BookingStatus, PaymentMethod

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class BookingRow:
    """One spreadsheet row: where it came from, what it said, what the loader made of it.

    Interpreted fields are typed and normalised (E.164 phones, postal codes with their zeros,
    ``Decimal`` amounts with the currency's minor units, aware datetimes in the country's time
    zone). On a rejected row (``not is_valid``) a field that was missing or unreadable is ``""``
    (required text) or ``None``; a valid row has every required field.

    ``issues`` is filled by the row checks, then appended to by the cross-row checks, inside
    :func:`sodtrack.bulkload.read_upload`; treat it as read-only afterwards.
    """

    row_number: int
    """1-based row number in the sheet (the header is row 1)."""
    sheet: str | None
    """Sheet name for XLSX, None for CSV."""
    headers: tuple[str, ...] = dataclasses.field(repr=False)
    """Every column's header (shared by all rows of an upload)."""
    original_values: tuple[object, ...] = dataclasses.field(repr=False)
    """The row's cells as read, aligned with ``headers``."""
    external_reference: str
    service_sku: str
    variant_sku: str | None
    scheduled_start: datetime | None
    """Aware, in the country's time zone. None only on a rejected row."""
    customer_first_name: str
    customer_last_name: str
    customer_email: str | None
    customer_phone: str | None
    """E.164."""
    customer_document_id: str | None
    address_line1: str
    address_line2: str | None
    city: str
    region: str
    postal_code: str
    notes: str | None
    booking_status: BookingStatus | None
    """The status the sheet asks for; None: the sheet says nothing about it (see
    :mod:`sodtrack.bulkload.engine.compare`)."""
    cancellation_reason: str | None
    """Given exactly when ``booking_status`` is cancelled (a row error otherwise)."""
    project_reference: str | None
    project_name: str | None
    stage_sequence: int | None
    stage_name: str | None
    payment_reference: str | None
    payment_amount: Decimal | None
    payment_currency: str | None
    """The country's currency when the row has a payment, else None."""
    payment_method: PaymentMethod | None
    paid_at: datetime | None
    issues: list[RowIssue]

    @property
    def original(self) -> dict[str, object]:
        """Original header -> raw cell value, every column of the file included (values past
        the last header, in a ragged CSV row, as ``(column N)``)."""
        values = self.original_values
        result = dict(zip(self.headers, values, strict=False))
        for position in range(len(self.headers), len(values)):
            result[f"(column {position + 1})"] = values[position]
        return result

    @property
    def is_valid(self) -> bool:
        """No error: the row may be loaded (warnings do not block)."""
        return not any(issue.severity == "error" for issue in self.issues)

    @property
    def errors(self) -> list[RowIssue]:
        return [issue for issue in self.issues if issue.severity == "error"]

    @property
    def warnings(self) -> list[RowIssue]:
        return [issue for issue in self.issues if issue.severity == "warning"]

    @property
    def has_payment(self) -> bool:
        return self.payment_reference is not None

    @property
    def has_stage(self) -> bool:
        return self.stage_sequence is not None

    def interpreted(self) -> dict[str, object]:
        """Canonical column -> interpreted value, for the results file."""
        return {name: getattr(self, name) for name in INTERPRETED_FIELDS}


INTERPRETED_FIELDS: tuple[str, ...] = SPEC.row_fields
"""The row's interpreted fields, in the canonical order: a separate date and time end up in
``scheduled_start`` (``tests/bulkload/test_columns.py`` checks they are ``BookingRow``'s
fields, of the spec's types)."""


NotedParser = Callable[[object, Country], tuple[str, Note | None]]

PLAIN_TEXT_PARSERS: Mapping[ColumnType, Callable[[object], str]] = {
    "text": parse_text,
    "reference": parse_reference,
    "email": parse_email,
}
NOTED_TEXT_PARSERS: Mapping[ColumnType, NotedParser] = {
    "phone": parse_phone,
    "postal_code": parse_postal_code,
    "document_id": lambda raw, country: parse_document_id(raw),
}
"""The parser of each text-valued column type (``str`` in ``BookingRow``; the noted ones
may add a warning, and know the country): which one a column gets is its ``type`` in the
column spec. The other types (dates, amounts, statuses...) each belong to one or two
columns, parsed by name below."""

_PLAIN_OF: dict[str, Callable[[object], str]] = {
    c.name: PLAIN_TEXT_PARSERS[c.type] for c in SPEC if c.type in PLAIN_TEXT_PARSERS
}
_NOTED_OF: dict[str, NotedParser] = {
    c.name: NOTED_TEXT_PARSERS[c.type] for c in SPEC if c.type in NOTED_TEXT_PARSERS
}


@dataclass(frozen=True, slots=True)
class RowContext:
    """What every row of one upload shares."""

    country: Country
    tz: ZoneInfo
    sheet: str | None
    headers: tuple[str, ...]
    positions: Mapping[str, int]
    """Canonical column -> position in the row."""
    cell_problems: Mapping[tuple[int, int], CellProblem]
    decimal_separator: str | None = None

    def column(self, field: str) -> str | None:
        position = self.positions.get(field)
        return None if position is None else self.headers[position]


class _Builder:
    """Collects one row's fields and issues."""

    __slots__ = ("ctx", "failed", "issues", "row_number", "values")

    def __init__(
        self,
        row_number: int,
        cells: Sequence[object],
        ctx: RowContext,
        merged: Mapping[int, str] | None = None,
    ) -> None:
        self.row_number = row_number
        self.ctx = ctx
        self.issues: list[RowIssue] = []
        self.failed: set[str] = set()
        # One pass over the mapped cells: blank ones dropped, unusable XLSX cells reported.
        values: dict[str, object] = {}
        width = len(cells)
        problems = ctx.cell_problems
        reported: set[str] = set()
        for name, position in ctx.positions.items():
            if merged and position in merged:
                # Under a merged range that cannot be read: one error per range, and the
                # other fields it covers fail with it (not "empty").
                ref = merged[position]
                if ref not in reported:
                    reported.add(ref)
                    self.issues.append(merged_cells_issue(row_number, name, ref, ctx.column(name)))
                self.failed.add(name)
                continue
            if position >= width:
                continue
            if problems:
                problem = problems.get((row_number, position))
                if problem is not None:
                    self._report_cell(name, problem)
                    continue
            value = cells[position]
            if value is None or (isinstance(value, str) and (not value or value.isspace())):
                continue
            values[name] = value
        self.values = values

    def add(
        self,
        field: str | None,
        code: IssueCode,
        message: str,
        fix: str,
        severity: IssueSeverity = "error",
    ) -> None:
        if severity == "error" and field is not None:
            self.failed.add(field)
        column = self.ctx.column(field) if field else None
        self.issues.append(RowIssue(self.row_number, field, code, message, fix, severity, column))

    def note(self, field: str, note: Note | None) -> None:
        if note is not None:
            self.add(field, note.code, note.message, note.suggested_fix, "warning")

    def raw(self, field: str) -> object | None:
        """The field's cell, or None when the column is absent, the cell blank or unusable."""
        return self.values.get(field)

    def _report_cell(self, field: str, problem: CellProblem) -> None:
        formula = f" (={problem.formula})" if problem.formula else ""
        if problem.kind == "formula_not_calculated":
            self.add(
                field,
                IssueCode.FORMULA_NOT_CALCULATED,
                f"Cell {problem.cell} holds a formula{formula} that was never calculated, so "
                "the file has no value for it.",
                "Open the file in Excel or LibreOffice, let it recalculate, and save it again; "
                "or type the value instead of the formula.",
            )
        else:
            self.add(
                field,
                IssueCode.FORMULA_ERROR,
                f"Cell {problem.cell} holds the error {problem.error or '#ERROR'}{formula} "
                "instead of a value.",
                "Fix the formula or type the value in the cell.",
            )

    def parse(self, field: str, parser: Callable[[object], T]) -> T | None:
        """Parse the field's cell if it has one; an unusable value becomes an error."""
        raw = self.raw(field)
        if raw is None:
            return None
        try:
            return parser(raw)
        except InvalidValue as exc:
            self.add(field, exc.code, exc.message, exc.suggested_fix)
            return None

    def text(self, field: str) -> str | None:
        """Parse a text-valued field with the parser of its ``type`` in the column spec
        (:data:`PLAIN_TEXT_PARSERS`, :data:`NOTED_TEXT_PARSERS`)."""
        raw = self.values.get(field)
        if raw is None:
            return None
        plain = _PLAIN_OF.get(field)
        try:
            if plain is not None:
                return plain(raw)
            value, note = _NOTED_OF[field](raw, self.ctx.country)
        except InvalidValue as exc:
            self.add(field, exc.code, exc.message, exc.suggested_fix)
            return None
        self.note(field, note)
        return value

    def parse_noted(
        self, field: str, parser: Callable[[object], tuple[T, Note | None]]
    ) -> T | None:
        result = self.parse(field, parser)
        if result is None:
            return None
        value, note = result
        self.note(field, note)
        return value

    def require(self, field: str, value: Any, what: str) -> None:
        if value is None and field not in self.failed:
            column = self.ctx.column(field)
            where = f"The '{column}' cell" if column else f"The {field} column"
            self.add(
                field,
                IssueCode.REQUIRED,
                f"{where} is empty; every booking needs {what}.",
                f"Fill in {what}.",
            )


def build_row(
    row_number: int,
    cells: Sequence[object],
    ctx: RowContext,
    merged: Mapping[int, str] | None = None,
) -> BookingRow:
    """Interpret one raw row and check everything that needs only this row.

    ``merged`` maps the positions covered by a merged range that cannot be read to the range
    (see :mod:`sodtrack.bulkload.reading.merges`): each such range is one error on the row.
    """
    b = _Builder(row_number, cells, ctx, merged)

    external_reference = b.text("external_reference")
    b.require("external_reference", external_reference, "its external reference")
    service_sku = b.text("service_sku")
    b.require("service_sku", service_sku, "the service SKU")
    variant_sku = b.text("variant_sku")
    scheduled_start = _scheduled_start(b)

    first_name = b.text("customer_first_name")
    b.require("customer_first_name", first_name, "the customer's first name")
    last_name = b.text("customer_last_name")
    b.require("customer_last_name", last_name, "the customer's last name")
    email = b.text("customer_email")
    phone = b.text("customer_phone")
    if email is None and phone is None and not b.failed & {"customer_email", "customer_phone"}:
        field = "customer_email" if "customer_email" in ctx.positions else "customer_phone"
        b.add(
            field,
            IssueCode.REQUIRED,
            "The row has neither an e-mail nor a phone for the customer; one is needed to "
            "arrange the visit.",
            "Fill in the customer's e-mail or phone (or both).",
        )
    document_id = b.text("customer_document_id")

    line1 = b.text("address_line1")
    b.require("address_line1", line1, "the street address")
    line2 = b.text("address_line2")
    city = b.text("city")
    b.require("city", city, "the city (or comuna)")
    region = b.text("region")
    b.require("region", region, "the region (or state)")
    postal_code = b.text("postal_code")
    b.require("postal_code", postal_code, "the postal code")
    notes = b.text("notes")
    booking_status, cancellation_reason = _status(b)

    project_reference = b.text("project_reference")
    project_name = b.text("project_name")
    stage_sequence = b.parse("stage_sequence", parse_stage_sequence)
    stage_name = b.text("stage_name")
    payment = _payment(b)

    has_project = project_reference is not None or "project_reference" in b.failed
    has_stage = b.raw("stage_sequence") is not None or b.raw("stage_name") is not None
    if not has_project:
        needs = [
            what
            for what, present in (
                ("a project name", project_name is not None),
                ("a stage", has_stage),
                ("a payment", payment.present),
            )
            if present
        ]
        if needs:
            b.add(
                "project_reference",
                IssueCode.PROJECT_REQUIRED,
                f"The row has {' and '.join(needs)} but no project reference; stages and "
                "payments belong to a project.",
                "Fill in the project reference, or clear the project, stage and payment cells.",
            )
    if (
        b.raw("stage_name") is not None
        and b.raw("stage_sequence") is None
        and "stage_sequence" not in b.failed
    ):
        b.add(
            "stage_sequence",
            IssueCode.REQUIRED,
            "The row names a stage but not its number in the project.",
            "Fill in the stage sequence (1, 2, 3...).",
        )

    return BookingRow(
        row_number=row_number,
        sheet=ctx.sheet,
        headers=ctx.headers,
        original_values=tuple(cells),
        external_reference=external_reference or "",
        service_sku=service_sku or "",
        variant_sku=variant_sku,
        scheduled_start=scheduled_start,
        customer_first_name=first_name or "",
        customer_last_name=last_name or "",
        customer_email=email,
        customer_phone=phone,
        customer_document_id=document_id,
        address_line1=line1 or "",
        address_line2=line2,
        city=city or "",
        region=region or "",
        postal_code=postal_code or "",
        notes=notes,
        booking_status=booking_status,
        cancellation_reason=cancellation_reason,
        project_reference=project_reference,
        project_name=project_name,
        stage_sequence=stage_sequence,
        stage_name=stage_name,
        payment_reference=payment.reference,
        payment_amount=payment.amount,
        payment_currency=payment.currency,
        payment_method=payment.method,
        paid_at=payment.paid_at,
        issues=b.issues,
    )


def _scheduled_start(b: _Builder) -> datetime | None:
    tz = b.ctx.tz
    if "scheduled_start" in b.ctx.positions:
        result = b.parse("scheduled_start", lambda raw: parse_datetime(raw, tz))
        if result is None:
            b.require("scheduled_start", None, "the date and time of the visit")
            return None
        value, notes = result
        for note in notes:
            b.note("scheduled_start", note)
        return value

    day_parts = b.parse("scheduled_date", parse_date_cell)
    has_time_column = "scheduled_time" in b.ctx.positions
    # Parse the time even when the date failed, so the row reports both problems at once.
    clock: time | None = b.parse("scheduled_time", parse_time_cell) if has_time_column else None
    if day_parts is None:
        b.require("scheduled_date", None, "the date of the visit")
        return None
    day_value, clock_in_date, offset, serial_note = day_parts
    b.note("scheduled_date", serial_note)
    if "scheduled_time" in b.failed:
        return None
    if clock is not None and clock_in_date is not None and clock != clock_in_date:
        b.add(
            "scheduled_time",
            IssueCode.DATE_TIME_CONFLICT,
            f"The date cell also holds a time ({clock_in_date:%H:%M}) that differs from the "
            f"time cell ({clock:%H:%M}).",
            "Keep only the date in the date cell, or make the two times agree.",
        )
        return None
    clock = clock or clock_in_date
    if clock is None:
        if has_time_column:
            b.require("scheduled_time", None, "the time of the visit")
        else:
            b.add(
                "scheduled_date",
                IssueCode.MISSING_TIME,
                f"The date {day_value:%d/%m/%Y} has no time of day, and the file has no time "
                "column.",
                f"Write the date with its time (e.g. {day_value:%d/%m/%Y} 10:00), or add a "
                "'scheduled_time' column.",
            )
        return None
    try:
        value, tz_note = to_local(day_value, clock, offset, tz)
    except InvalidValue as exc:
        b.add("scheduled_time", exc.code, exc.message, exc.suggested_fix)
        return None
    b.note("scheduled_time" if has_time_column else "scheduled_date", tz_note)
    return value


def _status(b: _Builder) -> tuple[BookingStatus | None, str | None]:
    """The optional status and cancellation reason: a cancellation needs its reason, and a
    reason belongs to a cancellation only."""
    status = b.parse("booking_status", parse_booking_status)
    reason = b.text("cancellation_reason")
    if (
        status == BookingStatus.CANCELLED
        and reason is None
        and "cancellation_reason" not in b.failed
    ):
        b.add(
            "cancellation_reason",
            IssueCode.CANCELLATION_REASON_REQUIRED,
            "The row cancels the booking but gives no reason; Sodtrack keeps the reason of "
            "every cancellation.",
            "Fill in cancellation_reason (e.g. 'the customer moved'), or change the status.",
        )
    elif (
        reason is not None
        and status != BookingStatus.CANCELLED
        and "booking_status" not in b.failed
    ):
        b.add(
            "cancellation_reason",
            IssueCode.REASON_WITHOUT_CANCELLATION,
            f"The row gives a cancellation reason but its status is "
            f"{status or 'not given'}, not cancelled; it is unclear whether to cancel.",
            "Set booking_status to cancelled to cancel the booking, or clear the reason.",
        )
    return status, reason


@dataclass(frozen=True, slots=True)
class _Payment:
    present: bool
    reference: str | None = None
    amount: Decimal | None = None
    currency: str | None = None
    method: PaymentMethod | None = None
    paid_at: datetime | None = None


def _payment(b: _Builder) -> _Payment:
    country = b.ctx.country
    given = [field for field in PAYMENT_COLUMNS if b.raw(field) is not None or field in b.failed]
    if not given:
        return _Payment(present=False)
    reference = b.text("payment_reference")
    amount = b.parse(
        "payment_amount",
        lambda raw: parse_amount(raw, country, decimal_separator=b.ctx.decimal_separator),
    )
    if amount is not None and amount <= 0:
        b.add(
            "payment_amount",
            IssueCode.AMOUNT_NOT_POSITIVE,
            f"The payment amount {country.format_amount(amount)} is not more than zero.",
            "Give the amount actually paid (refunds cannot be loaded).",
        )
        amount = None
    currency = b.parse("payment_currency", lambda raw: parse_currency(raw, country))
    if currency is None and "payment_currency" not in b.failed:
        currency = country.currency
    method = b.parse("payment_method", parse_payment_method)
    paid = b.parse("paid_at", lambda raw: parse_datetime(raw, b.ctx.tz, date_only_ok=True))
    paid_at = None
    if paid is not None:
        paid_at, notes = paid
        for note in notes:
            b.note("paid_at", note)
    missing = [field for field in PAYMENT_COLUMNS if field not in given]
    for field in missing:
        b.add(
            field,
            IssueCode.INCOMPLETE_PAYMENT,
            f"The row has payment details ({', '.join(given)}) but no {field}; a payment "
            "needs its reference, amount, method and date.",
            f"Fill in {field}, or clear the other payment cells if there is no payment.",
        )
    return _Payment(
        present=True,
        reference=reference,
        amount=amount,
        currency=currency,
        method=method,
        paid_at=paid_at,
    )
