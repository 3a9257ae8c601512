"""The client's exceptions: the ``ApiError`` branch of the project's tree
(:mod:`sodtrack.errors`), each with the loader's reaction.

::

    ApiError                           classification
    ├── RetryableError                 retry      transient; a later run may succeed
    │   ├── UnreadableResponse         retry      a 2xx whose body is empty, cut short, not
    │   │                                         JSON or off the model (retried like a 5xx;
    │   │                                         a create behind one is reconciled)
    │   └── RetryExhausted             retry      the retry loop gave up (reconcile if the
    │                                             last try of a create may have committed)
    ├── ConflictError                  reconcile  409: the thing exists, ``existing_id`` names it
    ├── RejectedError                  reject     4xx: permanent for this input
    │   ├── NeedsAPerson               reject     not wrong input but the world changed
    │   │                                         (``slot_unavailable``): route to a person
    │   └── NotFoundError              reject     404 ``not_found``
    ├── AuthError                      reject     credentials refused, token refused twice,
    │   │                                         or the token lacks a scope: fix the config
    │   └── TokenCountryMismatch        reject     the token is for another country than the
    │                                             one asked for (also a ConfigurationError)
    └── ContractViolation              reject     the server answered outside the contract
                                                  in a way no retry cures (cursor loop)

Classification comes from ``sodtrack.contract.errors`` (``RETRYABLE_STATUSES``,
``CONFLICT_CODES``, ``AUTH_RETRY_CODES``, ``NEEDS_A_PERSON``); :func:`classify_error`
is the one mapping from a status and error body to an exception.

``TokenCountryMismatch`` is also a :class:`sodtrack.errors.ConfigurationError`: the
client refuses to go on with a token whose ``country`` claim is not its country (a base URL
that does not vary by country pointed a ``pe`` run at Chile's server), and every caller
(CLI, flow) reports it as the configuration error it is: exit 2, never retried.

Nothing here holds an ``httpx.Request`` or ``httpx.Response`` (their headers carry the bearer
token), and exceptions raised from transport failures are raised ``from None`` with only the
failure's type name kept: an exception, its ``repr`` and its chain never contain a credential.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal

from sodtrack.contract.errors import (
    CONFLICT_CODES,
    NEEDS_A_PERSON,
    RETRYABLE_STATUSES,
    ErrorCode,
)
from sodtrack.contract.models import ErrorBody, ErrorDetail
from sodtrack.errors import ApiError as ApiError  # the branch root, re-exported
from sodtrack.errors import Classification, ConfigurationError


class RetryableError(ApiError):
    """A transient failure (429, 5xx, timeout, dropped connection, unreadable 2xx answer)."""

    default_classification: ClassVar[Classification] = "retry"


UnreadableReason = Literal["empty", "not_json", "off_model"]


class UnreadableResponse(RetryableError):
    """A success status (2xx) whose body cannot be read as the contract's model: empty, cut
    short or not JSON (an HTML page from a proxy), or JSON off the model.

    Transient by classification: the request engine retries it like a 5xx (a read is sent
    again; a create whose answer is unreadable may have been committed, so it is reconciled).
    ``reason`` says which of the three it was; the message names the failing locations and
    error types only, never a value of the body.
    """

    def __init__(
        self, *, operation: str, status: int, reason: UnreadableReason, detail: str = ""
    ) -> None:
        self.status = status
        self.reason: UnreadableReason = reason
        self.detail = detail
        text = f"{operation}: {status} answer unreadable ({reason.replace('_', ' ')})"
        if detail:
            text += f": {detail}"
        super().__init__(text, operation=operation)


TransientCause = Literal["not_connected", "connection_lost", "status", "unreadable"]
"""Why one attempt failed transiently: the connection was never made (nothing was sent), it
was lost after sending, a retryable status (429, 5xx) was answered, or a 2xx answer could not
be read."""


class TokenUnavailable(RetryableError):
    """One attempt at the token endpoint failed transiently (:meth:`Engine.authenticate`, the
    preflight's single probe); ``cause`` says how, so callers never read the message."""

    def __init__(self, *, what: str, cause: TransientCause) -> None:
        super().__init__(f"issue_token: {what}", operation="issue_token")
        self.what = what
        """What was seen: a status (``"503"``), an exception type, or ``"unreadable"``."""
        self.cause: TransientCause = cause


class RetryExhausted(RetryableError):
    """The retry loop gave up: too many attempts or the wait budget ran out.

    The message says what was tried: operation, attempts, the statuses and exception types
    seen, and the seconds waited. ``may_have_committed`` is set when the last failure of a
    write could have been committed and could not be reconciled (no ``external_reference``):
    the loader must check before repeating it.
    """

    def __init__(
        self,
        *,
        operation: str,
        attempts: int,
        seen: Sequence[str],
        waited_s: float,
        elapsed_s: float,
        reason: str,
        may_have_committed: bool = False,
    ) -> None:
        self.attempts = attempts
        self.seen = tuple(seen)
        self.waited_s = waited_s
        self.elapsed_s = elapsed_s
        self.reason = reason
        self.may_have_committed = may_have_committed
        message = (
            f"{operation}: gave up after {attempts} attempt(s) ({reason}); "
            f"seen {', '.join(self.seen) or 'nothing'}; "
            f"waited {waited_s:.2f}s of {elapsed_s:.2f}s"
        )
        if may_have_committed:
            message += "; the last attempt may have been committed"
        super().__init__(message, operation=operation)

    @property
    def classification(self) -> Classification:
        """``reconcile`` when the write may have happened, else ``retry``."""
        return "reconcile" if self.may_have_committed else "retry"


class _EnvelopeError(ApiError):
    """An error the API answered with its error envelope."""

    def __init__(
        self,
        *,
        status: int,
        code: str,
        message: str,
        details: Sequence[ErrorDetail] = (),
        request_id: str | None = None,
        existing_id: str | None = None,
        operation: str | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.api_message = message
        self.details = tuple(details)
        self.request_id = request_id
        self.existing_id = existing_id
        text = f"{operation or 'request'}: {status} {code}: {message}"
        if self.details:
            text += " [" + ", ".join(f"{d.field}: {d.issue}" for d in self.details) + "]"
        if existing_id:
            text += f" (existing_id={existing_id})"
        if request_id:
            text += f" (request_id={request_id})"
        super().__init__(text, operation=operation)


class ConflictError(_EnvelopeError):
    """409: the thing already exists (``existing_id``) and the client could not resolve it."""

    default_classification: ClassVar[Classification] = "reconcile"


class RejectedError(_EnvelopeError):
    """A permanent rejection of this input (400, 403, 404, 405, 413, 422)."""

    needs_a_person: ClassVar[bool] = False


class NeedsAPerson(RejectedError):
    """A rejection caused by the world, not the input (a slot got taken)."""

    needs_a_person: ClassVar[bool] = True


class NotFoundError(RejectedError):
    """404 ``not_found``."""


class AuthError(_EnvelopeError):
    """Credentials refused, a fresh token refused again, or a missing scope."""


class TokenCountryMismatch(AuthError, ConfigurationError):
    """The token endpoint issued a token for another country (or none readable).

    ``found`` is the token's ``country`` claim (None when the token carries no readable
    one), ``expected`` the client's country, ``host`` the server that issued it.
    """

    def __init__(self, *, host: str, found: str | None, expected: str) -> None:
        self.host = host
        self.found = found
        self.expected = expected
        if found is None:
            line = (
                f"the server at {host} issued a token without a readable country claim, "
                f"so it cannot be checked to be for {expected!r}"
            )
        else:
            line = f"the server at {host} issued a token for {found!r}, not {expected!r}"
        line += " (check SODTRACK_BASE_URL and SODTRACK_COUNTRY)"
        AuthError.__init__(
            self,
            status=200,
            code=ErrorCode.COUNTRY_MISMATCH,
            message=line,
            operation="issue_token",
        )
        self.setting = "SODTRACK_BASE_URL"
        self.message = line
        self.args = (line,)


class ContractViolation(ApiError):
    """The server answered something the contract does not allow."""


@dataclass(frozen=True, slots=True)
class _Transient:
    """One transient failure, as the retry loop records it (internal)."""

    label: str
    """``"503"``, ``"unreadable"`` (a 2xx whose body could not be read) or an exception
    type name such as ``"RemoteProtocolError"``; the stats count retries by it."""
    retry_after: float | None = None
    ambiguous: bool = False
    """The request may have been processed (a 5xx, or a connection lost after sending)."""
    fatal: bool = False
    """A transport failure that no retry can cure (an unsupported URL scheme)."""
    detail: str = ""
    """What was wrong (an unreadable body's reason and locations; never a value)."""
    cause: TransientCause = "status"


_AUTH_CODES_403 = frozenset({ErrorCode.INSUFFICIENT_SCOPE})


def classify_error(status: int, body: ErrorBody | None, *, operation: str | None) -> _EnvelopeError:
    """Map a non-retryable error response to its exception.

    401 and ``insufficient_scope`` are :class:`AuthError` (the run's configuration is wrong);
    ``country_mismatch`` is a :class:`RejectedError` (on a write it is the row's address that
    names another country). 409s are :class:`ConflictError`, ``NEEDS_A_PERSON`` codes
    :class:`NeedsAPerson`, 404 :class:`NotFoundError`, any other status a
    :class:`RejectedError`. A body that is not the error envelope gets ``code="http_<status>"``.
    """
    code = body.code if body is not None else f"http_{status}"
    cls: type[_EnvelopeError]
    if status == 401 or code in _AUTH_CODES_403:
        cls = AuthError
    elif status == 409 or code in CONFLICT_CODES:
        cls = ConflictError
    elif code in NEEDS_A_PERSON:
        cls = NeedsAPerson
    elif status == 404 or code == ErrorCode.NOT_FOUND:
        cls = NotFoundError
    else:
        cls = RejectedError
    return cls(
        status=status,
        code=code,
        message=body.message if body is not None else "no error body",
        details=body.details if body is not None else (),
        request_id=body.request_id if body is not None else None,
        existing_id=body.existing_id if body is not None else None,
        operation=operation,
    )


def is_retryable_status(status: int) -> bool:
    return status in RETRYABLE_STATUSES
