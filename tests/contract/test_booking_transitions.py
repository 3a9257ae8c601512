"""The booking status graph (one table, ``BOOKING_TRANSITIONS``) and the walks read off it."""

from __future__ import annotations

import itertools

import pytest

from sodtrack.contract.models import (
    BOOKING_PROGRESSION,
    BOOKING_TRANSITIONS,
    BookingStatus,
    booking_status_path,
)

S = BookingStatus


def test_the_progression_is_read_off_the_table() -> None:
    assert BOOKING_PROGRESSION == (S.SCHEDULED, S.CONFIRMED, S.IN_PROGRESS, S.COMPLETED)


@pytest.mark.parametrize(
    ("current", "wanted", "path"),
    [
        (S.SCHEDULED, S.CONFIRMED, (S.CONFIRMED,)),
        (S.SCHEDULED, S.COMPLETED, (S.CONFIRMED, S.IN_PROGRESS, S.COMPLETED)),
        (S.CONFIRMED, S.CANCELLED, (S.CANCELLED,)),
        (S.IN_PROGRESS, S.CANCELLED, (S.CANCELLED,)),
        (S.COMPLETED, S.COMPLETED, ()),
        (S.CONFIRMED, S.SCHEDULED, None),
        (S.COMPLETED, S.CANCELLED, None),
        (S.CANCELLED, S.SCHEDULED, None),
    ],
)
def test_paths(current: S, wanted: S, path: tuple[S, ...] | None) -> None:
    assert booking_status_path(current, wanted) == path


def test_every_pair_walks_only_edges_of_the_table() -> None:
    """Exhaustive over the 25 pairs: a path is a chain of allowed single steps ending at the
    wanted status; no path exactly when nothing in the table leads there."""
    for current, wanted in itertools.product(S, S):
        path = booking_status_path(current, wanted)
        forward = (
            wanted in BOOKING_PROGRESSION
            and current in BOOKING_PROGRESSION
            and BOOKING_PROGRESSION.index(wanted) >= BOOKING_PROGRESSION.index(current)
        )
        can_cancel = wanted == S.CANCELLED and current not in (S.COMPLETED,)
        assert (path is not None) == (forward or can_cancel or current == wanted), (current, wanted)
        if path is None:
            continue
        here = current
        for step in path:
            assert step in BOOKING_TRANSITIONS[here], (current, wanted, path)
            here = step
        assert here == wanted
