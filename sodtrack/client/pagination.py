"""Pagination strategies: pure state machines, state in, next request out (as in dlt).

A walk asks its paginator for the next query (:meth:`next_params`, ``None`` when done),
sends it, and feeds the page back (:meth:`update`). The paginators never do I/O, so their
stopping rules, completeness accounting and loop detection are unit-tested on plain data.

Page-numbered (:class:`PageNumberPaginator`, catalog, coverage, projects' sub-lists, forms):
``?page=&page_size=`` until a page comes back empty or ``page >= total_pages``. At the end the
records received are compared with the server's ``total_items``: a mismatch (items added or
removed while paging shift the offsets) is a :class:`CompletenessWarning`, kept on the walk
and in the stats and logged; the walk does not raise, its consumer decides (the extraction
fails the dataset or re-reads).

Cursor (:class:`CursorPaginator`, bookings, projects): ``?limit=&cursor=`` with the walk's
filters until ``next_cursor`` is ``null``. A cursor seen twice is a loop
(:class:`~sodtrack.client.errors.ContractViolation`), never an endless walk.

Cursor walks return a record again when it is updated while the walk runs (it moves behind
the cursor). :class:`LatestById` de-duplicates a stream by ``id``, keeping the newest
``updated_at``. A stream cannot take back what it already yielded, so it yields a record when
its id is new *or* its ``updated_at`` is newer than the one yielded before (counted as
``superseded``) and drops it when it is the same or older (``duplicates_dropped``):
**consumers that need one row per id keep the last one they receive.** Its memory grows with
the number of ids; consumers that de-duplicate out of core (the extraction, with a million
bookings) walk with ``dedupe=False``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

from sodtrack.client.errors import ContractViolation
from sodtrack.contract.limits import (
    CURSOR_LIMIT_DEFAULT,
    CURSOR_LIMIT_MAX,
    PAGE_SIZE_DEFAULT,
    PAGE_SIZE_MAX,
    PARAM_CURSOR,
    PARAM_LIMIT,
    PARAM_PAGE,
    PARAM_PAGE_SIZE,
)
from sodtrack.contract.models import PageMeta

Params = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Completeness:
    """Records a page-numbered walk received against the server's ``total_items``."""

    expected: int
    received: int

    @property
    def ok(self) -> bool:
        return self.expected == self.received


@dataclass(frozen=True, slots=True)
class CompletenessWarning:
    """A page-numbered walk whose count disagrees with the server, or whose total moved."""

    operation: str
    expected: int
    received: int
    detail: str

    def __str__(self) -> str:
        return (
            f"{self.operation}: expected {self.expected} records, received {self.received}"
            f" ({self.detail})"
        )


class PageNumberPaginator:
    """``?page=&page_size=``: stop on an empty page or once ``page >= total_pages``."""

    def __init__(
        self,
        page_size: int = PAGE_SIZE_DEFAULT,
        filters: Mapping[str, Any] | None = None,
        *,
        operation: str = "list",
    ) -> None:
        if not 1 <= page_size <= PAGE_SIZE_MAX:
            raise ValueError(f"page_size must be within 1..{PAGE_SIZE_MAX}, not {page_size}")
        self.page_size = page_size
        self.filters: Params = dict(filters or {})
        self.operation = operation
        self.page = 1
        self.done = False
        self.received = 0
        self.pages = 0
        self.totals_seen: list[int] = []
        self.total_pages: int | None = None

    def next_params(self) -> Params | None:
        """The query of the next page, or ``None`` when the walk is over."""
        if self.done:
            return None
        return {**self.filters, PARAM_PAGE: self.page, PARAM_PAGE_SIZE: self.page_size}

    def update(self, received: int, meta: PageMeta) -> None:
        """Feed back the page just fetched (``received`` items and its ``meta``)."""
        if self.done:
            raise RuntimeError("update() after the walk ended")
        self.pages += 1
        self.received += received
        if not self.totals_seen or self.totals_seen[-1] != meta.total_items:
            self.totals_seen.append(meta.total_items)
        self.total_pages = meta.total_pages
        if received == 0 or self.page >= meta.total_pages:
            self.done = True
        else:
            self.page += 1

    @property
    def completeness(self) -> Completeness | None:
        """``expected`` (the last ``total_items``) vs ``received``; ``None`` until done."""
        if not self.done or not self.totals_seen:
            return None
        return Completeness(expected=self.totals_seen[-1], received=self.received)

    def warning(self) -> CompletenessWarning | None:
        """The walk's :class:`CompletenessWarning`, if it has one (only once done)."""
        c = self.completeness
        if c is None:
            return None
        moved = len(self.totals_seen) > 1
        if c.ok and not moved:
            return None
        parts = []
        if not c.ok:
            parts.append(f"{c.received - c.expected:+d} against total_items")
        if moved:
            moves = " → ".join(map(str, self.totals_seen))
            parts.append(f"total_items moved during the walk: {moves}")
        return CompletenessWarning(self.operation, c.expected, c.received, "; ".join(parts))


class CursorPaginator:
    """``?limit=&cursor=`` with the walk's filters; stop on ``next_cursor: null``."""

    def __init__(
        self,
        limit: int = CURSOR_LIMIT_DEFAULT,
        filters: Mapping[str, Any] | None = None,
        *,
        operation: str = "list",
        cursor: str | None = None,
    ) -> None:
        if not 1 <= limit <= CURSOR_LIMIT_MAX:
            raise ValueError(f"limit must be within 1..{CURSOR_LIMIT_MAX}, not {limit}")
        self.limit = limit
        self.filters: Params = dict(filters or {})
        self.operation = operation
        self.cursor = cursor
        self.done = False
        self.pages = 0
        self.received = 0
        self._seen: set[str] = set() if cursor is None else {cursor}

    def next_params(self) -> Params | None:
        """The query of the next page (filters sent with every page), or ``None``."""
        if self.done:
            return None
        params: Params = {**self.filters, PARAM_LIMIT: self.limit}
        if self.cursor is not None:
            params[PARAM_CURSOR] = self.cursor
        return params

    def update(self, received: int, next_cursor: str | None) -> None:
        """Feed back the page just fetched; raises on a cursor loop."""
        if self.done:
            raise RuntimeError("update() after the walk ended")
        self.pages += 1
        self.received += received
        if next_cursor is None:
            self.done = True
            return
        if next_cursor in self._seen:
            self.done = True
            raise ContractViolation(
                f"{self.operation}: cursor loop detected after {self.pages} page(s): "
                "the server returned a cursor it had returned before",
                operation=self.operation,
            )
        self._seen.add(next_cursor)
        self.cursor = next_cursor


class HasIdAndUpdatedAt(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def updated_at(self) -> datetime: ...


R = TypeVar("R", bound=HasIdAndUpdatedAt)


@dataclass
class LatestById:
    """Streaming de-duplication by ``id`` keeping the newest ``updated_at`` (see above)."""

    seen: dict[str, datetime] = field(default_factory=dict)
    superseded: int = 0
    duplicates_dropped: int = 0

    def admit(self, record_id: str, updated_at: datetime) -> bool:
        """Whether to yield this record: its id is new, or it is newer than the one yielded."""
        previous = self.seen.get(record_id)
        if previous is None:
            self.seen[record_id] = updated_at
            return True
        if updated_at > previous:
            self.seen[record_id] = updated_at
            self.superseded += 1
            return True
        self.duplicates_dropped += 1
        return False

    def filter(self, records: list[R]) -> list[R]:
        """The records of one page that :meth:`admit` lets through, in order."""
        return [r for r in records if self.admit(r.id, r.updated_at)]
