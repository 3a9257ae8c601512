"""Checks across the rows of one file, and the per-project view the load engine needs.

Each check reports on the rows that *disagree with an earlier row*, naming that first row;
the first row itself stays loadable (it gets a warning listing the rows that repeat it), so
fixing the later rows and uploading them again completes the load. Rows already rejected for
other reasons still take part: a duplicate of a rejected row is still a duplicate.

- duplicate ``external_reference``s and duplicate ``payment_reference``s in the file;
- rows of one project (same ``project_reference``) that disagree on the project's name or its
  customer (first/last name, e-mail, phone, document id); an empty cell is not a
  disagreement, it inherits. Differing addresses are a warning only;
- stage rows of one ``(project, stage_sequence)`` that disagree on ``stage_name``, or that
  never name the stage;
- projects (hence their stages and payments) that no row of the file names: a payment or stage
  can only point at a project this upload creates.

Checks that need the catalog or the API (SKU resolution, coverage, slots, payments exceeding
the project's total) belong to the load engine; :func:`plan_projects` groups what it needs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal

from sodtrack.bulkload.issues import IssueCode, IssueSeverity, RowIssue
from sodtrack.bulkload.reading.rows import BookingRow

_MAX_LISTED = 10


def _rows_text(numbers: list[int]) -> str:
    shown = ", ".join(str(n) for n in numbers[:_MAX_LISTED])
    more = len(numbers) - _MAX_LISTED
    return f"{shown} and {more} more" if more > 0 else shown


def _add(
    row: BookingRow,
    field: str | None,
    code: IssueCode,
    message: str,
    fix: str,
    severity: IssueSeverity = "error",
    column: str | None = None,
) -> None:
    row.issues.append(RowIssue(row.row_number, field, code, message, fix, severity, column))


def check_across_rows(rows: list[BookingRow], columns: dict[str, str] | None = None) -> None:
    """Run every cross-row check, appending issues to the rows concerned.

    ``columns`` maps canonical field -> the file's header for it (used to label issues).
    """
    columns = columns or {}
    _duplicates(
        rows,
        "external_reference",
        lambda r: r.external_reference or None,
        IssueCode.DUPLICATE_EXTERNAL_REFERENCE,
        "booking",
        columns,
    )
    _duplicates(
        rows,
        "payment_reference",
        lambda r: r.payment_reference,
        IssueCode.DUPLICATE_PAYMENT_REFERENCE,
        "payment",
        columns,
    )
    by_project: dict[str, list[BookingRow]] = {}
    for row in rows:
        if row.project_reference is not None:
            by_project.setdefault(row.project_reference, []).append(row)
    for reference, project_rows in by_project.items():
        _check_project(reference, project_rows, columns)


def _duplicates(
    rows: Iterable[BookingRow],
    field: str,
    key: Callable[[BookingRow], str | None],
    code: IssueCode,
    what: str,
    columns: dict[str, str],
) -> None:
    first_seen: dict[str, BookingRow] = {}
    repeats: dict[int, list[int]] = {}
    for row in rows:
        value = key(row)
        if value is None:
            continue
        first = first_seen.setdefault(value, row)
        if first is row:
            continue
        repeats.setdefault(first.row_number, []).append(row.row_number)
        _add(
            row,
            field,
            code,
            f"The {what} reference '{value}' already appears in row {first.row_number}; each "
            f"{what} must have its own reference, so this row is not loaded.",
            f"Give this {what} a reference of its own, or delete the row if it repeats row "
            f"{first.row_number}.",
            column=columns.get(field),
        )
    for row in first_seen.values():
        later = repeats.get(row.row_number)
        if later:
            _add(
                row,
                field,
                IssueCode.REPEATED_LATER,
                f"The {what} reference '{key(row)}' is repeated in row(s) {_rows_text(later)}, "
                "which were rejected; this row is the one that counts.",
                "Check the repeated rows: give them their own references if they are "
                "different bookings.",
                "warning",
                columns.get(field),
            )


def _same_text(a: str, b: str) -> bool:
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


def _same_document(a: str, b: str) -> bool:
    return re.sub(r"[\s.\-/]", "", a).casefold() == re.sub(r"[\s.\-/]", "", b).casefold()


def _same_exact(a: str, b: str) -> bool:
    return a == b


_CUSTOMER_FIELDS: tuple[tuple[str, str, Callable[[str, str], bool]], ...] = (
    ("customer_first_name", "first name", _same_text),
    ("customer_last_name", "last name", _same_text),
    ("customer_email", "e-mail", _same_text),
    ("customer_phone", "phone", _same_exact),
    ("customer_document_id", "document id", _same_document),
)
_ADDRESS_FIELDS = ("address_line1", "city", "region", "postal_code")


def _first_with(rows: list[BookingRow], field: str) -> BookingRow | None:
    for row in rows:
        if getattr(row, field):
            return row
    return None


def _check_project(reference: str, rows: list[BookingRow], columns: dict[str, str]) -> None:
    named = _first_with(rows, "project_name")
    if named is None:
        for row in rows:
            what = "payment" if row.has_payment else "booking"
            _add(
                row,
                "project_reference",
                IssueCode.PROJECT_NOT_IN_FILE,
                f"This {what} points at project '{reference}', but no row of the file gives "
                "that project's name, so the upload would not create it.",
                f"Fill in the project name on at least one row of project '{reference}', or "
                "check the project reference for a typo.",
                column=columns.get("project_reference"),
            )
    else:
        name = named.project_name or ""
        for row in rows:
            if row.project_name and not _same_text(row.project_name, name):
                _add(
                    row,
                    "project_name",
                    IssueCode.PROJECT_NAME_CONFLICT,
                    f"Project '{reference}' is called '{row.project_name}' here but "
                    f"'{name}' in row {named.row_number}.",
                    f"Use the same project name on every row of the project (or leave it "
                    f"empty here): '{name}'.",
                    column=columns.get("project_name"),
                )

    for field, label, same in _CUSTOMER_FIELDS:
        first = _first_with(rows, field)
        if first is None:
            continue
        expected: str = getattr(first, field)
        for row in rows:
            value: str | None = getattr(row, field)
            if value and not same(value, expected):
                _add(
                    row,
                    field,
                    IssueCode.PROJECT_CUSTOMER_CONFLICT,
                    f"Project '{reference}' belongs to one customer, but this row's {label} "
                    f"'{value}' differs from '{expected}' in row {first.row_number}.",
                    "Use the same customer on every row of the project, or give this booking "
                    "a different project reference.",
                    column=columns.get(field),
                )

    base = rows[0]
    for row in rows[1:]:
        differing = [
            field
            for field in _ADDRESS_FIELDS
            if getattr(row, field)
            and getattr(base, field)
            and not _same_text(getattr(row, field), getattr(base, field))
        ]
        if differing:
            _add(
                row,
                differing[0],
                IssueCode.PROJECT_ADDRESS_DIFFERS,
                f"This row's address ({', '.join(differing)}) differs from row "
                f"{base.row_number}, the first of project '{reference}'; the project keeps the "
                "first row's address.",
                "Check that the booking belongs to this project.",
                "warning",
                columns.get(differing[0]),
            )

    by_stage: dict[int, list[BookingRow]] = {}
    for row in rows:
        if row.stage_sequence is not None:
            by_stage.setdefault(row.stage_sequence, []).append(row)
    for sequence, stage_rows in by_stage.items():
        named_stage = _first_with(stage_rows, "stage_name")
        if named_stage is None:
            for row in stage_rows:
                _add(
                    row,
                    "stage_name",
                    IssueCode.STAGE_NAME_MISSING,
                    f"Stage {sequence} of project '{reference}' has no name on any row.",
                    f"Fill in the stage name on at least one row of stage {sequence}.",
                    column=columns.get("stage_name"),
                )
            continue
        stage_name = named_stage.stage_name or ""
        for row in stage_rows:
            if row.stage_name and not _same_text(row.stage_name, stage_name):
                _add(
                    row,
                    "stage_name",
                    IssueCode.STAGE_NAME_CONFLICT,
                    f"Stage {sequence} of project '{reference}' is called '{row.stage_name}' "
                    f"here but '{stage_name}' in row {named_stage.row_number}.",
                    f"Use one name per stage: '{stage_name}' (or leave it empty here), or "
                    "change the stage sequence if this is another stage.",
                    column=columns.get("stage_name"),
                )


# -- the engine's view -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StagePlan:
    """One stage of a project as the file describes it."""

    sequence: int
    name: str | None
    rows: tuple[BookingRow, ...]
    """Valid rows (bookings) in the stage."""

    def __repr__(self) -> str:
        return (
            f"StagePlan(sequence={self.sequence}, name={self.name!r}, "
            f"rows={[r.row_number for r in self.rows]})"
        )


@dataclass(frozen=True, slots=True)
class ProjectPlan:
    """One project as the file describes it: what the engine creates, in which order.

    ``rows``/``payments``/``stages`` hold only valid rows (those that will be written);
    ``rejected_rows`` are the project's rows that will not be. The customer and address of
    the project are those of ``rows[0]`` (the file's first valid row of the project). The
    engine still has to check what needs the catalog, e.g. that the payments
    (:attr:`payment_total`) do not exceed the project's total computed from prices.
    """

    reference: str
    name: str | None
    rows: tuple[BookingRow, ...]
    rejected_rows: tuple[BookingRow, ...]
    stages: tuple[StagePlan, ...]
    """Sorted by sequence."""
    payments: tuple[BookingRow, ...]
    """Valid rows carrying a payment, in file order."""

    def __repr__(self) -> str:
        return (
            f"ProjectPlan(reference={self.reference!r}, name={self.name!r}, "
            f"rows={[r.row_number for r in self.rows]}, "
            f"rejected_rows={[r.row_number for r in self.rejected_rows]}, "
            f"stages={list(self.stages)}, payments={[r.row_number for r in self.payments]})"
        )

    @property
    def payment_total(self) -> Decimal:
        return sum((r.payment_amount or Decimal(0) for r in self.payments), Decimal(0))


def plan_projects(rows: Iterable[BookingRow]) -> dict[str, ProjectPlan]:
    """Group rows by project reference (in order of first appearance)."""
    grouped: dict[str, list[BookingRow]] = {}
    for row in rows:
        if row.project_reference is not None:
            grouped.setdefault(row.project_reference, []).append(row)
    plans: dict[str, ProjectPlan] = {}
    for reference, project_rows in grouped.items():
        valid = tuple(r for r in project_rows if r.is_valid)
        named = _first_with(project_rows, "project_name")
        stage_rows: dict[int, list[BookingRow]] = {}
        stage_names: dict[int, str | None] = {}
        for row in project_rows:
            if row.stage_sequence is None:
                continue
            stage_names.setdefault(row.stage_sequence, None)
            if stage_names[row.stage_sequence] is None and row.stage_name:
                stage_names[row.stage_sequence] = row.stage_name
            if row.is_valid:
                stage_rows.setdefault(row.stage_sequence, []).append(row)
        stages = tuple(
            StagePlan(seq, stage_names[seq], tuple(stage_rows.get(seq, ())))
            for seq in sorted(stage_names)
        )
        plans[reference] = ProjectPlan(
            reference=reference,
            name=named.project_name if named else None,
            rows=valid,
            rejected_rows=tuple(r for r in project_rows if not r.is_valid),
            stages=stages,
            payments=tuple(r for r in valid if r.has_payment),
        )
    return plans
