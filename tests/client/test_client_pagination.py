"""Paginators and streaming de-duplication: pure state machines, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sodtrack.client.errors import ContractViolation
from sodtrack.client.pagination import (
    Completeness,
    CursorPaginator,
    LatestById,
    PageNumberPaginator,
)
from sodtrack.contract.limits import (
    CURSOR_LIMIT_MAX,
    PAGE_SIZE_MAX,
    PARAM_CURSOR,
    PARAM_LIMIT,
    PARAM_PAGE,
    PARAM_PAGE_SIZE,
)
from sodtrack.contract.models import PageMeta


def meta(page: int, size: int, total: int) -> PageMeta:
    return PageMeta(page=page, page_size=size, total_items=total, total_pages=-(-total // size))


def walk_pages(p: PageNumberPaginator, sizes: list[int], total: int) -> list[int]:
    pages = []
    for n in sizes:
        params = p.next_params()
        if params is None:
            break
        pages.append(params[PARAM_PAGE])
        p.update(n, meta(params[PARAM_PAGE], p.page_size, total))
    return pages


def test_page_walk_stops_at_total_pages_without_asking_past_the_end() -> None:
    p = PageNumberPaginator(10, {"active": True})
    assert p.next_params() == {"active": True, PARAM_PAGE: 1, PARAM_PAGE_SIZE: 10}
    assert walk_pages(p, [10, 10, 5, 99], 25) == [1, 2, 3]
    assert p.next_params() is None
    assert p.completeness == Completeness(expected=25, received=25)
    assert p.completeness.ok
    assert p.warning() is None


def test_page_walk_stops_on_an_empty_page() -> None:
    p = PageNumberPaginator(10)
    assert walk_pages(p, [10, 0], 30) == [1, 2]
    assert p.done
    c = p.completeness
    assert c is not None
    assert not c.ok
    assert (c.expected, c.received) == (30, 10)
    w = p.warning()
    assert w is not None
    assert "-20" in w.detail


def test_no_items_means_zero_pages_and_one_request() -> None:
    p = PageNumberPaginator(10)
    params = p.next_params()
    assert params is not None
    p.update(0, PageMeta(page=1, page_size=10, total_items=0, total_pages=0))
    assert p.next_params() is None
    assert p.completeness == Completeness(0, 0)
    assert p.warning() is None


def test_total_items_moving_during_the_walk_is_reported() -> None:
    p = PageNumberPaginator(10, operation="list_categories")
    p.update(10, meta(1, 10, 20))
    p.update(10, meta(2, 10, 21))  # an item appeared: offsets shifted
    p.update(1, meta(3, 10, 21))
    w = p.warning()
    assert p.completeness == Completeness(21, 21)
    assert w is not None
    assert "moved" in w.detail
    assert "20 → 21" in w.detail
    assert str(w).startswith("list_categories: expected 21")


def test_completeness_is_none_until_done() -> None:
    p = PageNumberPaginator(10)
    p.update(10, meta(1, 10, 30))
    assert p.completeness is None
    assert p.warning() is None


def test_update_after_the_end_is_a_bug() -> None:
    p = PageNumberPaginator(10)
    p.update(0, meta(1, 10, 0))
    with pytest.raises(RuntimeError):
        p.update(0, meta(1, 10, 0))


def test_page_size_bounds_come_from_the_contract() -> None:
    PageNumberPaginator(PAGE_SIZE_MAX)
    with pytest.raises(ValueError, match="page_size"):
        PageNumberPaginator(PAGE_SIZE_MAX + 1)
    with pytest.raises(ValueError, match="page_size"):
        PageNumberPaginator(0)


def test_cursor_walk_carries_filters_and_stops_on_null() -> None:
    c = CursorPaginator(500, {"status": "scheduled"})
    assert c.next_params() == {"status": "scheduled", PARAM_LIMIT: 500}
    c.update(500, "c1")
    assert c.next_params() == {"status": "scheduled", PARAM_LIMIT: 500, PARAM_CURSOR: "c1"}
    c.update(500, "c2")
    c.update(7, None)
    assert c.next_params() is None
    assert (c.pages, c.received) == (3, 1007)


def test_cursor_loop_is_detected() -> None:
    c = CursorPaginator(10, operation="list_bookings")
    c.update(10, "a")
    c.update(10, "b")
    with pytest.raises(ContractViolation, match="cursor loop"):
        c.update(10, "a")
    assert c.next_params() is None


def test_cursor_limit_bounds_come_from_the_contract() -> None:
    CursorPaginator(CURSOR_LIMIT_MAX)
    with pytest.raises(ValueError, match="limit"):
        CursorPaginator(CURSOR_LIMIT_MAX + 1)


def test_latest_by_id_yields_new_and_newer_drops_same_or_older() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    d = LatestById()
    assert d.admit("a", t0)
    assert d.admit("b", t0)
    assert not d.admit("a", t0)  # same version again
    assert d.admit("a", t0 + timedelta(seconds=1))  # updated while we paged
    assert not d.admit("a", t0)  # older than what we yielded
    assert (d.superseded, d.duplicates_dropped) == (1, 2)
