"""The simulator's one error type and the one error shape of the contract.

Handlers raise ``ApiError``; the application renders it with ``error_body``. The status comes
from ``sodtrack.contract.errors.STATUS_OF`` so that a code never travels with the wrong status.
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson

from sodtrack.contract.errors import STATUS_OF, ErrorCode, Issue

Detail = tuple[str, str]
"""(field, issue) of an error's ``details``."""


class ApiError(Exception):
    """A contract error: code, human message, field details, and ``existing_id`` on 409s."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        details: Iterable[Detail] = (),
        *,
        existing_id: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = list(details)
        self.existing_id = existing_id
        self.headers = headers or {}

    @property
    def status(self) -> int:
        return STATUS_OF[self.code]


def validation_error(details: Iterable[Detail], message: str = "Invalid request") -> ApiError:
    return ApiError(ErrorCode.VALIDATION_ERROR, message, details)


def not_found(what: str) -> ApiError:
    return ApiError(ErrorCode.NOT_FOUND, f"{what} not found")


def error_body(error: ApiError, request_id: str) -> bytes:
    """The contract's error envelope; ``details`` and ``existing_id`` always present."""
    return orjson.dumps(
        {
            "error": {
                "code": str(error.code),
                "message": error.message,
                "details": [{"field": f, "issue": str(i)} for f, i in error.details],
                "existing_id": error.existing_id,
                "request_id": request_id,
            }
        }
    )


__all__ = ["ApiError", "Detail", "ErrorCode", "Issue", "error_body", "not_found"]
