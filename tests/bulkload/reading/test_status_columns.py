"""The optional ``booking_status`` and ``cancellation_reason`` columns: headers in three
languages, values in three languages, and a row error for an unknown status, a cancellation
without its reason, or a reason without a cancellation."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from bulkload.sheets import booking, csv_of
from sodtrack.bulkload import BookingRow, IssueCode, read_upload
from sodtrack.bulkload.issues import InvalidValue
from sodtrack.bulkload.reading.headers import ALIAS_INDEX, header_key
from sodtrack.bulkload.reading.values import _STATUS_ALIASES, parse_booking_status
from sodtrack.contract.models import BookingStatus


@pytest.mark.parametrize(
    ("header", "canonical"),
    [
        ("Status", "booking_status"),
        ("Estado de la reserva", "booking_status"),
        ("Situação", "booking_status"),
        ("Estado", "region"),  # as it always was: Brazil's and Mexico's state
        ("Motivo de cancelación", "cancellation_reason"),
        ("Motivo do cancelamento", "cancellation_reason"),
    ],
)
def test_headers(header: str, canonical: str) -> None:
    assert ALIAS_INDEX[header_key(header)] == canonical


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("programada", "scheduled"),
        ("Agendada", "scheduled"),
        ("CONFIRMADA", "confirmed"),
        ("en curso", "in_progress"),
        ("Em andamento", "in_progress"),
        ("in_progress", "in_progress"),
        ("completada", "completed"),
        ("concluída", "completed"),
        ("Cancelada", "cancelled"),
        ("canceled", "cancelled"),
    ],
)
def test_values(text: str, status: str) -> None:
    assert parse_booking_status(text) == status


def test_generated_spellings_of_every_alias() -> None:
    """Seeded corpus: every alias of every status, in random case, with random spacing and
    accents dropped or kept, reads as its status; random other words never do."""
    rng = random.Random(10)
    for status, aliases in _STATUS_ALIASES.items():
        for alias in aliases:
            for _ in range(5):
                text = "".join(c.upper() if rng.random() < 0.5 else c for c in alias)
                text = text.replace(" ", rng.choice([" ", "  ", "_", "-"]))
                assert parse_booking_status(f" {text} ") == status, text
    known = {header_key(a) for aliases in _STATUS_ALIASES.values() for a in aliases}
    for _ in range(200):
        word = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(1, 9)))
        if header_key(word) in known:
            continue
        with pytest.raises(InvalidValue) as excinfo:
            parse_booking_status(word)
        assert excinfo.value.code == IssueCode.INVALID_BOOKING_STATUS


def _rows(tmp_path: Path, **overrides: object) -> list[BookingRow]:
    upload = read_upload(csv_of(tmp_path / "b.csv", [booking(1, **overrides)]), "cl")
    assert not upload.has_upload_errors, upload.upload_issues
    return list(upload.rows)


def test_a_status_and_a_reason_are_read(tmp_path: Path) -> None:
    (row,) = _rows(
        tmp_path, **{"Estado de la reserva": "Cancelada", "Motivo de cancelación": "se mudó"}
    )
    assert row.is_valid, row.errors
    assert row.booking_status == BookingStatus.CANCELLED
    assert row.cancellation_reason == "se mudó"
    assert row.interpreted()["booking_status"] == "cancelled"


def test_no_status_column_is_none(tmp_path: Path) -> None:
    (row,) = _rows(tmp_path)
    assert row.booking_status is None


@pytest.mark.parametrize(
    ("overrides", "code", "field"),
    [
        ({"booking_status": "quizás"}, IssueCode.INVALID_BOOKING_STATUS, "booking_status"),
        (
            {"booking_status": "cancelada"},
            IssueCode.CANCELLATION_REASON_REQUIRED,
            "cancellation_reason",
        ),
        (
            {"booking_status": "confirmada", "cancellation_reason": "x"},
            IssueCode.REASON_WITHOUT_CANCELLATION,
            "cancellation_reason",
        ),
        (
            {"cancellation_reason": "x"},
            IssueCode.REASON_WITHOUT_CANCELLATION,
            "cancellation_reason",
        ),
    ],
)
def test_row_errors(
    tmp_path: Path, overrides: dict[str, object], code: IssueCode, field: str
) -> None:
    (row,) = _rows(tmp_path, **overrides)
    errors = [(i.code, i.field) for i in row.errors]
    assert errors == [(code, field)]
    message = row.errors[0].message
    assert message
    assert "\n" not in message
