"""Checks across rows, each on its own, and the per-project plan the engine consumes."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from bulkload.sheets import booking, csv_of
from sodtrack.bulkload import IssueCode, ParsedUpload, read_upload


def load(tmp_path: Path, rows: list[dict[str, object]]) -> ParsedUpload:
    upload = read_upload(csv_of(tmp_path / "b.csv", rows), "cl")
    assert not upload.has_upload_errors, upload.upload_issues
    return upload


def project(ref: str = "PRJ-1", name: str = "Cocina", **extra: object) -> dict[str, object]:
    return {"project_reference": ref, "project_name": name, **extra}


def payment(ref: str, amount: str = "10.000", **extra: object) -> dict[str, object]:
    return {
        "payment_reference": ref,
        "payment_amount": amount,
        "payment_method": "tarjeta",
        "paid_at": "01/12/2026",
        **extra,
    }


def test_duplicate_external_references(tmp_path: Path) -> None:
    rows = [booking(1), booking(2), booking(1), booking(3), booking(1)]
    upload = load(tmp_path, rows)
    first, _, dup1, _, dup2 = upload.rows
    assert first.is_valid
    assert [w.code for w in first.warnings] == [IssueCode.REPEATED_LATER]
    assert "4, 6" in first.warnings[0].message
    for dup in (dup1, dup2):
        (issue,) = dup.errors
        assert issue.code == IssueCode.DUPLICATE_EXTERNAL_REFERENCE
        assert issue.field == "external_reference"
        assert "row 2" in issue.message
        assert "row 2" in issue.suggested_fix
    assert [r.row_number for r in upload.valid_rows] == [2, 3, 5]


def test_a_duplicate_of_a_rejected_row_is_still_a_duplicate(tmp_path: Path) -> None:
    upload = load(tmp_path, [booking(1, city=""), booking(1)])
    first, second = upload.rows
    assert not first.is_valid
    assert IssueCode.DUPLICATE_EXTERNAL_REFERENCE in [i.code for i in second.errors]


def test_duplicate_payment_references(tmp_path: Path) -> None:
    rows = [
        booking(1, **project(), **payment("PAY-1")),
        booking(2, **project(), **payment("PAY-1")),
        booking(3, **project(), **payment("PAY-2")),
    ]
    first, second, third = load(tmp_path, rows).rows
    assert first.is_valid
    assert third.is_valid
    (issue,) = second.errors
    assert issue.code == IssueCode.DUPLICATE_PAYMENT_REFERENCE
    assert issue.field == "payment_reference"
    assert "row 2" in issue.message


def test_project_name_conflict(tmp_path: Path) -> None:
    rows = [
        booking(1, **project(name="Cocina")),
        booking(2, **project(name="  cocina ")),  # same name, other case/spacing
        booking(3, **project(name="")),  # empty inherits
        booking(4, **project(name="Baño")),
    ]
    upload = load(tmp_path, rows)
    assert [r.is_valid for r in upload.rows] == [True, True, True, False]
    (issue,) = upload.rows[3].errors
    assert issue.code == IssueCode.PROJECT_NAME_CONFLICT
    assert "'Cocina'" in issue.message
    assert "row 2" in issue.message


def test_project_customer_conflicts(tmp_path: Path) -> None:
    rows = [
        booking(1, **project()),
        booking(2, **project(), customer_document_id="12345678-5"),  # same id, other format
        booking(3, **project(), customer_email=""),  # empty inherits
        booking(4, **project(), customer_email="otra@example.com"),
        booking(5, **project(), customer_phone="+56987654321"),
        booking(6, **project(), customer_last_name="Soto"),
        booking(7, **project(), customer_document_id="9.876.543-2"),
    ]
    upload = load(tmp_path, rows)
    assert [r.is_valid for r in upload.rows] == [True, True, True, False, False, False, False]
    fields = [[(i.code, i.field) for i in r.errors] for r in upload.rows[3:]]
    conflict = IssueCode.PROJECT_CUSTOMER_CONFLICT
    assert fields == [
        [(conflict, "customer_email")],
        [(conflict, "customer_phone")],
        [(conflict, "customer_last_name")],
        [(conflict, "customer_document_id")],
    ]
    assert "row 2" in upload.rows[3].errors[0].message


def test_project_address_differences_are_warnings(tmp_path: Path) -> None:
    rows = [booking(1, **project()), booking(2, **project(), address_line1="Otra calle 1")]
    second = load(tmp_path, rows).rows[1]
    assert second.is_valid
    assert [(w.code, w.field) for w in second.warnings] == [
        (IssueCode.PROJECT_ADDRESS_DIFFERS, "address_line1")
    ]


def test_stage_name_conflict_and_inheritance(tmp_path: Path) -> None:
    rows = [
        booking(1, **project(), stage_sequence="1", stage_name="Demolición"),
        booking(2, **project(), stage_sequence="1", stage_name=""),
        booking(3, **project(), stage_sequence="1", stage_name="Pintura"),
        booking(4, **project(), stage_sequence="2", stage_name="Pintura"),
        booking(5, **project("PRJ-2"), stage_sequence="1", stage_name="Pintura"),
    ]
    upload = load(tmp_path, rows)
    assert [r.is_valid for r in upload.rows] == [True, True, False, True, True]
    (issue,) = upload.rows[2].errors
    assert issue.code == IssueCode.STAGE_NAME_CONFLICT
    assert "'Demolición'" in issue.message
    assert "row 2" in issue.message


def test_a_stage_nobody_names(tmp_path: Path) -> None:
    rows = [
        booking(1, **project(), stage_sequence="1"),
        booking(2, **project(), stage_sequence="1"),
    ]
    upload = load(tmp_path, rows)
    for row in upload.rows:
        assert [(i.code, i.field) for i in row.errors] == [
            (IssueCode.STAGE_NAME_MISSING, "stage_name")
        ]


def test_payment_pointing_at_a_project_not_in_the_file(tmp_path: Path) -> None:
    rows = [
        booking(1, **project("PRJ-1")),
        booking(2, **project("PRJ-X", name=""), **payment("PAY-1")),
        booking(3, **project("PRJ-X", name="")),
    ]
    upload = load(tmp_path, rows)
    assert upload.rows[0].is_valid
    for row in upload.rows[1:]:
        (issue,) = row.errors
        assert issue.code == IssueCode.PROJECT_NOT_IN_FILE
        assert "PRJ-X" in issue.message
    assert "This payment" in upload.rows[1].errors[0].message


def test_rows_without_a_project_are_not_grouped(tmp_path: Path) -> None:
    upload = load(tmp_path, [booking(1), booking(2)])
    assert upload.projects == {}
    assert all(r.is_valid for r in upload.rows)


def test_project_plans(tmp_path: Path) -> None:
    rows = [
        booking(1, **project(), stage_sequence="2", stage_name="Pintura"),
        booking(
            2, **project(), stage_sequence="1", stage_name="Demolición", **payment("P1", "10.000")
        ),
        booking(3, **project(), **payment("P2", "5.000")),
        booking(4, **project(), stage_sequence="2", city=""),  # rejected
        booking(5, **project("PRJ-2", "Baño")),
        booking(6),
    ]
    upload = load(tmp_path, rows)
    assert list(upload.projects) == ["PRJ-1", "PRJ-2"]
    plan = upload.projects["PRJ-1"]
    assert plan.name == "Cocina"
    assert [r.row_number for r in plan.rows] == [2, 3, 4]
    assert [r.row_number for r in plan.rejected_rows] == [5]
    assert [(s.sequence, s.name, [r.row_number for r in s.rows]) for s in plan.stages] == [
        (1, "Demolición", [3]),
        (2, "Pintura", [2]),
    ]
    assert [r.payment_reference for r in plan.payments] == ["P1", "P2"]
    assert plan.payment_total == Decimal("15000")
    assert "rows=[2, 3, 4]" in repr(plan)
    assert upload.projects["PRJ-2"].stages == ()
