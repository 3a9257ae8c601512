"""Checks that need only one row: required fields, all-or-nothing groups, formats."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from bulkload.sheets import booking, csv_of
from sodtrack.bulkload import BookingRow, IssueCode, ParsedUpload, RowIssue, read_upload


def load(tmp_path: Path, rows: list[dict[str, object]], country: str = "cl") -> ParsedUpload:
    return read_upload(csv_of(tmp_path / "b.csv", rows), country)


def only(tmp_path: Path, **overrides: object) -> BookingRow:
    upload = load(tmp_path, [booking(1, **overrides)])
    assert not upload.has_upload_errors, upload.upload_issues
    (row,) = upload.rows
    return row


def codes(issues: list[RowIssue]) -> list[tuple[IssueCode, str | None]]:
    return [(i.code, i.field) for i in issues]


def test_a_complete_row(tmp_path: Path) -> None:
    row = only(tmp_path)
    assert row.is_valid
    assert row.issues == []
    assert row.row_number == 2
    assert row.sheet is None
    assert row.external_reference == "OPS-1"
    assert row.scheduled_start == datetime.fromisoformat("2026-12-03T10:00:00-03:00")
    assert row.customer_document_id == "12.345.678-5"
    assert row.address_line2 is None
    assert row.notes is None
    assert row.project_reference is None
    assert row.payment_amount is None
    assert row.payment_currency is None
    interpreted = row.interpreted()
    assert interpreted["postal_code"] == "7500000"
    assert set(row.original) == set(booking(1))


@pytest.mark.parametrize(
    "field",
    [
        "external_reference",
        "service_sku",
        "scheduled_start",
        "customer_first_name",
        "customer_last_name",
        "address_line1",
        "city",
        "region",
        "postal_code",
    ],
)
def test_required_fields(tmp_path: Path, field: str) -> None:
    # Another row fills the field, so the column exists and only this cell is empty.
    upload = load(tmp_path, [booking(1, **{field: ""}), booking(2)])
    row = upload.rows[0]
    assert not row.is_valid
    assert codes(row.errors) == [(IssueCode.REQUIRED, field)]
    assert row.errors[0].column == field
    assert upload.rows[1].is_valid


def test_missing_required_text_is_empty_on_a_rejected_row(tmp_path: Path) -> None:
    row = only(tmp_path, customer_first_name="", scheduled_start="")
    assert row.customer_first_name == ""
    assert row.scheduled_start is None


def test_email_or_phone(tmp_path: Path) -> None:
    assert only(tmp_path, customer_email="").is_valid
    assert only(tmp_path, customer_phone="").is_valid
    row = only(tmp_path, customer_email="", customer_phone="")
    assert codes(row.errors) == [(IssueCode.REQUIRED, "customer_email")]


def test_one_row_reports_every_problem_at_once(tmp_path: Path) -> None:
    row = only(
        tmp_path,
        external_reference="OPS 1",
        scheduled_start="31/31/2026 10:00",
        customer_email="nope",
        customer_phone="123",
        postal_code="ABC",
    )
    assert codes(row.errors) == [
        (IssueCode.INVALID_REFERENCE, "external_reference"),
        (IssueCode.INVALID_DATE, "scheduled_start"),
        (IssueCode.INVALID_EMAIL, "customer_email"),
        (IssueCode.INVALID_PHONE, "customer_phone"),
        (IssueCode.INVALID_POSTAL_CODE, "postal_code"),
    ]
    for issue in row.errors:
        assert issue.row_number == 2
        assert issue.severity == "error"
        assert issue.message
        assert issue.suggested_fix


PAYMENT = {
    "project_reference": "PRJ-1",
    "project_name": "Cocina",
    "payment_reference": "PAY-1",
    "payment_amount": "45.990",
    "payment_method": "efectivo",
    "paid_at": "01/12/2026 18:00",
}


def test_a_payment(tmp_path: Path) -> None:
    row = only(tmp_path, **PAYMENT)
    assert row.is_valid, row.issues
    assert row.has_payment
    assert row.payment_amount == Decimal("45990")
    assert row.payment_currency == "CLP"
    assert row.payment_method == "cash"
    assert row.paid_at == datetime.fromisoformat("2026-12-01T18:00:00-03:00")


@pytest.mark.parametrize(
    "missing", ["payment_reference", "payment_amount", "payment_method", "paid_at"]
)
def test_payment_fields_are_all_or_nothing(tmp_path: Path, missing: str) -> None:
    upload = load(tmp_path, [booking(1, **{**PAYMENT, missing: ""}), booking(2, **PAYMENT)])
    row = upload.rows[0]
    assert codes(row.errors) == [(IssueCode.INCOMPLETE_PAYMENT, missing)]


def test_payment_needs_a_project(tmp_path: Path) -> None:
    upload = load(
        tmp_path,
        [
            booking(1, **{**PAYMENT, "project_reference": "", "project_name": ""}),
            booking(2, **PAYMENT),
        ],
    )
    assert codes(upload.rows[0].errors) == [(IssueCode.PROJECT_REQUIRED, "project_reference")]


def test_payment_amount_rules(tmp_path: Path) -> None:
    rows = [
        booking(1, **{**PAYMENT, "payment_reference": "P1", "payment_amount": "45990,5"}),
        booking(2, **{**PAYMENT, "payment_reference": "P2", "payment_amount": "0"}),
        booking(3, **{**PAYMENT, "payment_reference": "P3", "payment_currency": "USD"}),
        booking(4, **{**PAYMENT, "payment_reference": "P4", "payment_currency": "clp"}),
        booking(5, **{**PAYMENT, "payment_reference": "P5", "payment_method": "cheque"}),
    ]
    first, second, third, fourth, fifth = load(tmp_path, rows).rows
    assert codes(first.errors) == [(IssueCode.TOO_MANY_DECIMALS, "payment_amount")]
    assert codes(second.errors) == [(IssueCode.AMOUNT_NOT_POSITIVE, "payment_amount")]
    assert codes(third.errors) == [(IssueCode.CURRENCY_MISMATCH, "payment_currency")]
    assert fourth.is_valid
    assert fourth.payment_currency == "CLP"
    assert codes(fifth.errors) == [(IssueCode.INVALID_PAYMENT_METHOD, "payment_method")]


def test_a_currency_without_a_payment_is_ignored(tmp_path: Path) -> None:
    row = only(tmp_path, payment_currency="CLP")
    assert row.is_valid
    assert row.payment_currency is None


def test_stage_fields(tmp_path: Path) -> None:
    stage = {
        "project_reference": "PRJ-1",
        "project_name": "Baño",
        "stage_sequence": "1",
        "stage_name": "Demolición",
    }
    assert only(tmp_path, **stage).stage_sequence == 1
    rows = [
        booking(1, **{**stage, "project_reference": "", "project_name": ""}),
        booking(2, **{**stage, "stage_sequence": ""}),
        booking(3, **{**stage, "stage_sequence": "0"}),
    ]
    first, second, third = load(tmp_path, rows).rows
    assert codes(first.errors) == [(IssueCode.PROJECT_REQUIRED, "project_reference")]
    assert codes(second.errors) == [(IssueCode.REQUIRED, "stage_sequence")]
    assert codes(third.errors) == [(IssueCode.INVALID_STAGE_SEQUENCE, "stage_sequence")]


def test_project_name_needs_a_reference(tmp_path: Path) -> None:
    rows = [
        booking(1, project_reference="", project_name="Baño"),
        booking(2, project_reference="P"),
    ]
    row = load(tmp_path, rows).rows[0]
    assert codes(row.errors) == [(IssueCode.PROJECT_REQUIRED, "project_reference")]


def date_time_rows(**overrides: object) -> dict[str, object]:
    row = booking(1, **overrides)
    del row["scheduled_start"]
    return row


def test_date_and_time_columns(tmp_path: Path) -> None:
    rows = [
        date_time_rows(external_reference="A", scheduled_date="03/12/2026", scheduled_time="10:00"),
        date_time_rows(external_reference="B", scheduled_date="03/12/2026", scheduled_time=""),
        date_time_rows(external_reference="C", scheduled_date="", scheduled_time="25:00"),
        date_time_rows(
            external_reference="D", scheduled_date="03/12/2026 11:00", scheduled_time="10:00"
        ),
        date_time_rows(
            external_reference="E", scheduled_date="03/12/2026 11:00", scheduled_time=""
        ),
    ]
    a, b, c, d, e = load(tmp_path, rows).rows
    assert a.is_valid
    assert a.scheduled_start == datetime.fromisoformat("2026-12-03T10:00-03:00")
    assert codes(b.errors) == [(IssueCode.REQUIRED, "scheduled_time")]
    assert codes(c.errors) == [
        (IssueCode.INVALID_TIME, "scheduled_time"),
        (IssueCode.REQUIRED, "scheduled_date"),
    ]
    assert codes(d.errors) == [(IssueCode.DATE_TIME_CONFLICT, "scheduled_time")]
    assert e.is_valid
    assert e.scheduled_start is not None
    assert e.scheduled_start.hour == 11


def test_date_column_without_a_time_column(tmp_path: Path) -> None:
    rows = [
        date_time_rows(external_reference="A", scheduled_date="03/12/2026 10:00"),
        date_time_rows(external_reference="B", scheduled_date="03/12/2026"),
    ]
    a, b = load(tmp_path, rows).rows
    assert a.is_valid
    assert codes(b.errors) == [(IssueCode.MISSING_TIME, "scheduled_date")]


def test_dst_gap_is_reported_on_the_time(tmp_path: Path) -> None:
    row = only(tmp_path, scheduled_start="06/09/2026 00:30")
    assert codes(row.errors) == [(IssueCode.NONEXISTENT_LOCAL_TIME, "scheduled_start")]


def test_warnings_do_not_block(tmp_path: Path) -> None:
    row = only(tmp_path, customer_phone="9 1234 5678", postal_code="750000")
    assert row.is_valid
    assert codes(row.warnings) == [
        (IssueCode.PHONE_NORMALISED, "customer_phone"),
        (IssueCode.POSTAL_CODE_RESTORED, "postal_code"),
    ]
    assert row.customer_phone == "+56912345678"
    assert row.postal_code == "0750000"
    assert row.original["customer_phone"] == "9 1234 5678"


def test_other_countries(tmp_path: Path) -> None:
    row = read_upload(
        csv_of(
            tmp_path / "br.csv",
            [
                booking(
                    1,
                    customer_phone="(11) 98765-4321",
                    postal_code="01310-100",
                    scheduled_start="03/12/2026 10:00",
                )
            ],
        ),
        "br",
    ).rows[0]
    assert row.is_valid, row.issues
    assert row.customer_phone == "+5511987654321"
    assert str(row.scheduled_start) == "2026-12-03 10:00:00-03:00"
