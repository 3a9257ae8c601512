"""Typed issues: what the loader tells an operator about a file and each of its rows.

Two kinds of issue, one vocabulary of codes:

- :class:`UploadIssue` is about the file as a whole (it cannot be read, a required column is
  missing, a column is unknown...). An upload-level *error* means no row can be loaded.
- :class:`RowIssue` is about one spreadsheet row (and usually one field of it). A row with any
  *error* is rejected before anything is written; *warnings* never block, they say what the
  loader did (restored a postal code, added a phone prefix...) so an operator can check it.

Every issue carries a plain-language ``message`` and a concrete ``suggested_fix``: they go to the
results file as they are, so they are written for the person who filled the sheet, not for a
developer. ``code`` is a stable machine-readable key (:class:`IssueCode`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from sodtrack.errors import InputFileError

IssueSeverity = Literal["error", "warning"]
"""How bad a row or upload issue is: an ``error`` keeps the row out, a ``warning`` is told.
(Not the validation gate's severity of an expectation, ``critical``/``warning``.)"""


class IssueCode(StrEnum):
    """Stable codes for every issue the loader reports."""

    # -- the file ---------------------------------------------------------------------------
    FILE_UNREADABLE = "file_unreadable"
    FILE_TRUNCATED = "file_truncated"
    UNSUPPORTED_FILE_TYPE = "unsupported_file_type"
    FILE_ENCRYPTED = "file_encrypted"
    EMPTY_FILE = "empty_file"
    SHEET_NOT_FOUND = "sheet_not_found"
    ENCODING_FALLBACK = "encoding_fallback"
    POSSIBLE_MOJIBAKE = "possible_mojibake"
    NO_ROWS = "no_rows"
    LIMIT_EXCEEDED = "limit_exceeded"
    # -- the header ---------------------------------------------------------------------------
    HEADER_NOT_FOUND = "header_not_found"
    MERGED_HEADER = "merged_header"
    DUPLICATE_COLUMN = "duplicate_column"
    MISSING_COLUMN = "missing_column"
    CONFLICTING_COLUMNS = "conflicting_columns"
    UNKNOWN_COLUMN = "unknown_column"
    UNNAMED_COLUMN = "unnamed_column"
    MAPPING_UNUSED = "mapping_unused"
    # -- one cell -----------------------------------------------------------------------------
    REQUIRED = "required"
    INVALID_REFERENCE = "invalid_reference"
    INVALID_TEXT = "invalid_text"
    INVALID_DATE = "invalid_date"
    INVALID_TIME = "invalid_time"
    MONTH_FIRST_DATE = "month_first_date"
    MISSING_TIME = "missing_time"
    DATE_TIME_CONFLICT = "date_time_conflict"
    NONEXISTENT_LOCAL_TIME = "nonexistent_local_time"
    AMBIGUOUS_LOCAL_TIME = "ambiguous_local_time"
    OFFSET_CONVERTED = "offset_converted"
    INVALID_AMOUNT = "invalid_amount"
    AMBIGUOUS_AMOUNT = "ambiguous_amount"
    TOO_MANY_DECIMALS = "too_many_decimals"
    AMOUNT_NOT_POSITIVE = "amount_not_positive"
    CURRENCY_MISMATCH = "currency_mismatch"
    INVALID_POSTAL_CODE = "invalid_postal_code"
    POSTAL_CODE_RESTORED = "postal_code_restored"
    POSTAL_CODE_REFORMATTED = "postal_code_reformatted"
    INVALID_PHONE = "invalid_phone"
    PHONE_NORMALISED = "phone_normalised"
    INVALID_EMAIL = "invalid_email"
    INVALID_PAYMENT_METHOD = "invalid_payment_method"
    INVALID_BOOKING_STATUS = "invalid_booking_status"
    CANCELLATION_REASON_REQUIRED = "cancellation_reason_required"
    REASON_WITHOUT_CANCELLATION = "reason_without_cancellation"
    INVALID_STAGE_SEQUENCE = "invalid_stage_sequence"
    NUMBER_AS_TEXT = "number_as_text"
    FORMULA_NOT_CALCULATED = "formula_not_calculated"
    FORMULA_ERROR = "formula_error"
    EXTRA_VALUES = "extra_values"
    MISSING_VALUES = "missing_values"
    MERGED_ROWS = "merged_rows"
    MERGED_CELLS = "merged_cells"
    MERGED_VALUE_FILLED = "merged_value_filled"
    HIDDEN_ROW = "hidden_row"
    # -- one row ------------------------------------------------------------------------------
    INCOMPLETE_PAYMENT = "incomplete_payment"
    PROJECT_REQUIRED = "project_required"
    NO_FINAL_LINE_BREAK = "no_final_line_break"
    # -- across rows --------------------------------------------------------------------------
    DUPLICATE_EXTERNAL_REFERENCE = "duplicate_external_reference"
    DUPLICATE_PAYMENT_REFERENCE = "duplicate_payment_reference"
    REPEATED_LATER = "repeated_later"
    PROJECT_NAME_CONFLICT = "project_name_conflict"
    PROJECT_CUSTOMER_CONFLICT = "project_customer_conflict"
    PROJECT_ADDRESS_DIFFERS = "project_address_differs"
    PROJECT_NOT_IN_FILE = "project_not_in_file"
    STAGE_NAME_CONFLICT = "stage_name_conflict"
    STAGE_NAME_MISSING = "stage_name_missing"


@dataclass(frozen=True, slots=True)
class RowIssue:
    """Something wrong (``error``) or worth checking (``warning``) in one spreadsheet row."""

    row_number: int
    """1-based row number as the spreadsheet shows it (the header is row 1)."""
    field: str | None
    """Canonical column name the issue is about, or None when it is about the whole row."""
    code: IssueCode
    message: str
    suggested_fix: str
    severity: IssueSeverity = "error"
    column: str | None = None
    """The column's header as written in the file, when the field came from one."""


@dataclass(frozen=True, slots=True)
class UploadIssue:
    """Something about the whole file. An ``error`` here means no row is loaded."""

    code: IssueCode
    message: str
    suggested_fix: str
    severity: IssueSeverity = "error"
    column: str | None = None
    """The header (as written in the file) the issue is about, if any."""


class InvalidValue(InputFileError, ValueError):
    """Raised by the pure value parsers: the cell cannot be used, and why, in operator terms."""

    def __init__(self, code: IssueCode, message: str, suggested_fix: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.suggested_fix = suggested_fix


@dataclass(frozen=True, slots=True)
class Note:
    """What a value parser did to a value that an operator should know about (a warning)."""

    code: IssueCode
    message: str
    suggested_fix: str
