"""Error codes, field issues and how a client must treat each (``sodtrack-api.md`` § Conventions).

The table below is the contract's: status, code, and the client's class of reaction. The client
maps responses to its exception hierarchy from here, the simulator answers from here.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    MALFORMED_REQUEST = "malformed_request"
    INVALID_CREDENTIALS = "invalid_credentials"
    INVALID_TOKEN = "invalid_token"  # noqa: S105 (an error code, not a secret)
    TOKEN_EXPIRED = "token_expired"  # noqa: S105
    INSUFFICIENT_SCOPE = "insufficient_scope"
    COUNTRY_MISMATCH = "country_mismatch"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    DUPLICATE_EXTERNAL_REFERENCE = "duplicate_external_reference"
    DUPLICATE_STAGE = "duplicate_stage"
    BOOKING_ALREADY_STAGED = "booking_already_staged"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    VALIDATION_ERROR = "validation_error"
    POSTAL_CODE_NOT_COVERED = "postal_code_not_covered"
    SLOT_UNAVAILABLE = "slot_unavailable"
    VARIANT_MISMATCH = "variant_mismatch"
    SERVICE_INACTIVE = "service_inactive"
    CURRENCY_MISMATCH = "currency_mismatch"
    OVERPAYMENT = "overpayment"
    INVALID_TRANSITION = "invalid_transition"
    RANGE_TOO_WIDE = "range_too_wide"
    RATE_LIMITED = "rate_limited"
    INTERNAL_ERROR = "internal_error"
    UNAVAILABLE = "unavailable"


class Issue(StrEnum):
    """Short codes in an error's ``details[].issue``."""

    REQUIRED = "required"
    INVALID_FORMAT = "invalid_format"
    INVALID_TYPE = "invalid_type"
    OUT_OF_RANGE = "out_of_range"
    UNKNOWN_FIELD = "unknown_field"
    NOT_FOUND = "not_found"
    PROJECT_CLOSED = "project_closed"
    NOT_IN_PROJECT = "not_in_project"
    BOOKING_CANCELLED = "booking_cancelled"
    NO_CAPACITY = "no_capacity"


STATUS_OF: dict[ErrorCode, int] = {
    ErrorCode.MALFORMED_REQUEST: 400,
    ErrorCode.INVALID_CREDENTIALS: 401,
    ErrorCode.INVALID_TOKEN: 401,
    ErrorCode.TOKEN_EXPIRED: 401,
    ErrorCode.INSUFFICIENT_SCOPE: 403,
    ErrorCode.COUNTRY_MISMATCH: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.DUPLICATE_EXTERNAL_REFERENCE: 409,
    ErrorCode.DUPLICATE_STAGE: 409,
    ErrorCode.BOOKING_ALREADY_STAGED: 409,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.VALIDATION_ERROR: 422,
    ErrorCode.POSTAL_CODE_NOT_COVERED: 422,
    ErrorCode.SLOT_UNAVAILABLE: 422,
    ErrorCode.VARIANT_MISMATCH: 422,
    ErrorCode.SERVICE_INACTIVE: 422,
    ErrorCode.CURRENCY_MISMATCH: 422,
    ErrorCode.OVERPAYMENT: 422,
    ErrorCode.INVALID_TRANSITION: 422,
    ErrorCode.RANGE_TOO_WIDE: 422,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.INTERNAL_ERROR: 500,
    ErrorCode.UNAVAILABLE: 503,
}

RETRYABLE_STATUSES: frozenset[int] = frozenset({429, 500, 502, 503, 504})
"""Statuses a client retries with backoff (429 after ``Retry-After``)."""

CONFLICT_CODES: frozenset[ErrorCode] = frozenset(
    {
        ErrorCode.DUPLICATE_EXTERNAL_REFERENCE,
        ErrorCode.DUPLICATE_STAGE,
        ErrorCode.BOOKING_ALREADY_STAGED,
    }
)
"""409s: the thing already exists and ``existing_id`` names it."""

AUTH_RETRY_CODES: frozenset[ErrorCode] = frozenset(
    {ErrorCode.INVALID_TOKEN, ErrorCode.TOKEN_EXPIRED}
)
"""401s after which a client gets a new token once and retries."""

NEEDS_A_PERSON: frozenset[ErrorCode] = frozenset({ErrorCode.SLOT_UNAVAILABLE})
"""Rejections that are not wrong input but a conflict with the world (a slot got taken)."""
