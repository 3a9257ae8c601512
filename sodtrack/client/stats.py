"""What a client did, for the run report: requests, retries, waits, pages, reconciliations.

One :class:`ClientStats` per client, mutated in place by the request engine and the walks
(asyncio is single-threaded, so plain counters suffice) and read by the run report through
:meth:`ClientStats.as_dict` (JSON-ready, stable keys).

Requests are counted by operation and outcome: an HTTP status (``"200"``, ``"429"``) or the
transport exception's type name (``"ReadTimeout"``). Retry sleeps and rate-limiter waits are
kept apart: the first measures the server's trouble, the second our own pacing.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sodtrack.client.pagination import CompletenessWarning


@dataclass
class ClientStats:
    requests: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(operation, status or exception type) → count."""
    retries: Counter[str] = field(default_factory=Counter)
    """operation → retries (a retry is a wait followed by another attempt)."""
    retry_causes: Counter[str] = field(default_factory=Counter)
    """cause → retries: an HTTP status (``"503"``), ``"unreadable"`` (a 2xx whose body could
    not be read) or a transport exception's type name (``"ReadTimeout"``)."""
    unreadable: Counter[str] = field(default_factory=Counter)
    """operation → 2xx answers whose body was empty, cut short, not JSON or off the model."""
    rate_limited: int = 0
    """429 responses."""
    retry_wait_s: float = 0.0
    """Seconds slept between attempts (backoff, ``Retry-After``)."""
    limiter_wait_s: float = 0.0
    """Seconds waited for the client-side rate limiter."""
    pages: Counter[str] = field(default_factory=Counter)
    records: Counter[str] = field(default_factory=Counter)
    """operation → records received (before de-duplication)."""
    superseded: int = 0
    duplicates_dropped: int = 0
    reconciliations: Counter[str] = field(default_factory=Counter)
    """``"<operation>:<outcome>"`` → count. Outcomes: ``found`` / ``not_found`` (a lookup
    by reference after an ambiguous failure), ``conflict_fetched`` (a 409's ``existing_id``
    read back), ``conflict_unreadable`` (a 409 on a lead: no GET), ``conflict_unresolved``
    (the ``existing_id`` is not in this project), ``mismatch`` (an existing stage whose
    ``booking_ids`` differ from the request)."""
    token_fetches: int = 0
    token_refreshes_on_401: int = 0
    gave_up: Counter[str] = field(default_factory=Counter)
    """operation → calls that ended in :class:`~sodtrack.client.errors.RetryExhausted`."""
    completeness_warnings: list[CompletenessWarning] = field(default_factory=list)
    rate_limit_per_s: float | None = None
    """The rate the client paces itself by (configured, or learnt from the
    ``X-RateLimit-*`` headers); ``None`` while the API has shown no limit."""
    rate_limit_burst: float | None = None
    """The size of the API's bucket as the client mirrors it (``X-RateLimit-Limit``): that
    many requests pass at once before the rate paces anything."""

    def count_request(self, operation: str, outcome: str) -> None:
        self.requests[(operation, outcome)] += 1
        if outcome == "429":
            self.rate_limited += 1

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())

    @property
    def total_retries(self) -> int:
        return sum(self.retries.values())

    def requests_by_operation(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for (op, outcome), n in sorted(self.requests.items()):
            out.setdefault(op, {})[outcome] = n
        return out

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready snapshot for the run report."""
        return {
            "requests_total": self.total_requests,
            "requests": self.requests_by_operation(),
            "retries_total": self.total_retries,
            "retries": dict(sorted(self.retries.items())),
            "retry_causes": dict(sorted(self.retry_causes.items())),
            "unreadable": dict(sorted(self.unreadable.items())),
            "rate_limited_429": self.rate_limited,
            "retry_wait_s": round(self.retry_wait_s, 3),
            "limiter_wait_s": round(self.limiter_wait_s, 3),
            "pages": dict(sorted(self.pages.items())),
            "records": dict(sorted(self.records.items())),
            "superseded": self.superseded,
            "duplicates_dropped": self.duplicates_dropped,
            "reconciliations": dict(sorted(self.reconciliations.items())),
            "token_fetches": self.token_fetches,
            "token_refreshes_on_401": self.token_refreshes_on_401,
            "rate_limit_per_s": (
                round(self.rate_limit_per_s, 3) if self.rate_limit_per_s is not None else None
            ),
            "rate_limit_burst": self.rate_limit_burst,
            "gave_up": dict(sorted(self.gave_up.items())),
            "completeness_warnings": [
                {
                    "operation": w.operation,
                    "expected": w.expected,
                    "received": w.received,
                    "detail": w.detail,
                }
                for w in self.completeness_warnings
            ],
        }
