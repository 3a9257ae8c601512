"""Error classification from the contract's tables, and what each error says."""

from __future__ import annotations

import pytest

from sodtrack.client.errors import (
    ApiError,
    AuthError,
    ConflictError,
    NeedsAPerson,
    NotFoundError,
    RejectedError,
    RetryableError,
    RetryExhausted,
    classify_error,
)
from sodtrack.contract.errors import (
    CONFLICT_CODES,
    NEEDS_A_PERSON,
    RETRYABLE_STATUSES,
    STATUS_OF,
    ErrorCode,
)
from sodtrack.contract.models import ErrorBody, ErrorDetail


def body(code: str, existing_id: str | None = None) -> ErrorBody:
    return ErrorBody(
        code=code,
        message=f"message of {code}",
        details=[ErrorDetail(field="scheduled_start", issue="no_capacity")],
        existing_id=existing_id,
        request_id="req_1",
    )


NON_RETRYABLE = [(c, s) for c, s in STATUS_OF.items() if s not in RETRYABLE_STATUSES]


@pytest.mark.parametrize(("code", "status"), NON_RETRYABLE, ids=[c for c, _ in NON_RETRYABLE])
def test_every_contract_error_code_maps_to_one_class(code: ErrorCode, status: int) -> None:
    error = classify_error(status, body(code, "bkg_1"), operation="op")
    assert (error.status, error.code, error.request_id) == (status, code, "req_1")
    if status == 401 or code == ErrorCode.INSUFFICIENT_SCOPE:
        assert type(error) is AuthError
        assert error.classification == "reject"
    elif code in CONFLICT_CODES:
        assert type(error) is ConflictError
        assert error.classification == "reconcile"
        assert error.existing_id == "bkg_1"
    elif code in NEEDS_A_PERSON:
        assert type(error) is NeedsAPerson
        assert error.needs_a_person
        assert isinstance(error, RejectedError)
    elif status == 404:
        assert type(error) is NotFoundError
        assert isinstance(error, RejectedError)
    else:
        assert type(error) is RejectedError
        assert not error.needs_a_person
        assert error.classification == "reject"


def test_country_mismatch_is_a_rejection_of_the_row_not_an_auth_failure() -> None:
    error = classify_error(403, body(ErrorCode.COUNTRY_MISMATCH), operation="create_booking")
    assert type(error) is RejectedError


def test_an_error_without_the_envelope_still_classifies() -> None:
    error = classify_error(418, None, operation="get_booking")
    assert type(error) is RejectedError
    assert error.code == "http_418"


def test_message_carries_operation_code_details_and_request_id() -> None:
    error = classify_error(422, body(ErrorCode.SLOT_UNAVAILABLE), operation="create_booking")
    text = str(error)
    for part in (
        "create_booking",
        "422",
        "slot_unavailable",
        "scheduled_start: no_capacity",
        "req_1",
    ):
        assert part in text
    assert repr(error).startswith("NeedsAPerson(")


def test_retry_exhausted_says_what_was_tried() -> None:
    error = RetryExhausted(
        operation="create_booking",
        attempts=4,
        seen=["503", "RemoteProtocolError", "429", "503"],
        waited_s=6.5,
        elapsed_s=7.25,
        reason="max_attempts=4 reached",
    )
    assert isinstance(error, RetryableError)
    assert isinstance(error, ApiError)
    assert error.classification == "retry"
    text = str(error)
    for part in (
        "create_booking",
        "4 attempt",
        "503, RemoteProtocolError, 429, 503",
        "6.50s",
        "max_attempts=4",
    ):
        assert part in text
    ambiguous = RetryExhausted(
        operation="submit_lead",
        attempts=1,
        seen=["500"],
        waited_s=0,
        elapsed_s=0,
        reason="not safe",
        may_have_committed=True,
    )
    assert ambiguous.classification == "reconcile"
    assert "may have been committed" in str(ambiguous)
