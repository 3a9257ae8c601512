"""Async client of the Sodtrack Integration API (a library: it never imports Prefect).

Modules, one concern each:

* ``client``: :class:`SodtrackClient`, one method per contract operation.
* ``core``: the request engine and its single retry loop (plans and steps).
* ``writes``: creates that are safe to repeat (409 and reconcile-by-reference plans).
* ``walks`` / ``pagination``: page iterators and the pure paginators behind them.
* ``bulk``: bulk reads, a page's JSON bytes straight to an Arrow batch (as the model checks).
* ``auth``: credentials and the single-flight token manager.
* ``retry``: the pure backoff policy. ``ratelimit``: the shared token bucket.
* ``errors``: the exception tree. ``stats``: counters for the run report.
"""

from sodtrack.client.auth import Credentials
from sodtrack.client.bulk import ArrowPageDecoder, DecodedPage
from sodtrack.client.client import SodtrackClient, country_client
from sodtrack.client.errors import (
    ApiError,
    AuthError,
    ConflictError,
    ContractViolation,
    NeedsAPerson,
    NotFoundError,
    RejectedError,
    RetryableError,
    RetryExhausted,
    TokenCountryMismatch,
    TokenUnavailable,
    UnreadableResponse,
)
from sodtrack.client.pagination import (
    Completeness,
    CompletenessWarning,
    CursorPaginator,
    LatestById,
    PageNumberPaginator,
)
from sodtrack.client.ratelimit import RateLimiter, TokenBucket
from sodtrack.client.results import PageResult, WriteResult
from sodtrack.client.retry import RetryPolicy
from sodtrack.client.stats import ClientStats
from sodtrack.client.walks import ArrowCursorWalk, BatchPage, CursorWalk, PageNumberWalk

__all__ = [
    "ApiError",
    "ArrowCursorWalk",
    "ArrowPageDecoder",
    "AuthError",
    "BatchPage",
    "ClientStats",
    "Completeness",
    "CompletenessWarning",
    "ConflictError",
    "ContractViolation",
    "Credentials",
    "CursorPaginator",
    "CursorWalk",
    "DecodedPage",
    "LatestById",
    "NeedsAPerson",
    "NotFoundError",
    "PageNumberPaginator",
    "PageNumberWalk",
    "PageResult",
    "RateLimiter",
    "RejectedError",
    "RetryExhausted",
    "RetryPolicy",
    "RetryableError",
    "SodtrackClient",
    "TokenBucket",
    "TokenCountryMismatch",
    "TokenUnavailable",
    "UnreadableResponse",
    "WriteResult",
    "country_client",
]
