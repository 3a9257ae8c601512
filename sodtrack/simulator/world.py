"""The background world: what happens to the seeded client's bookings as time passes.

Seeded bookings (and the new ones that keep arriving from the client's other channels) move
along ``scheduled → confirmed → in_progress → completed`` by themselves: confirmed some hours
before their start, in progress at their start, completed some hours after their end; a few
get cancelled before they start. New bookings arrive at the seeded history's average rate.

Nothing runs in the background: ``catch_up`` replays every event due up to the server's now,
in time order, each stamped at its own time (or just after the latest stamp), whenever a
request comes in or the clock is advanced. With the wall clock this is the same, only slower.

Bookings created through the API are not moved by the world (their client drives them with
``PATCH``), and a seeded booking that its client changes leaves the world's hands.
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING

from sodtrack.contract.models import BookingStatus
from sodtrack.simulator.timefmt import ts

if TYPE_CHECKING:
    from sodtrack.simulator.seed import BookingFactory
    from sodtrack.simulator.state import State

US = 1_000_000
_REASON = "Customer request"


def catch_up(state: State, client_id: str, now_us: int) -> int:
    """Apply every world event due at or before ``now_us``; returns how many were applied."""
    now_s = now_us // US
    applied = 0
    client = state.clients[client_id]
    heap = state.heap
    while True:
        due = heap[0][0] if heap else None
        arrival = state.next_arrival_s if state.arrival_interval_s > 0 else None
        if arrival is not None and arrival <= now_s and (due is None or arrival <= due):
            _arrive(state, client_id, arrival)
            applied += 1
            continue
        if due is None or due > now_s:
            return applied
        _, _, booking_id = heapq.heappop(heap)
        rec = client.bookings.get(booking_id)
        timeline = state.timeline.get(booking_id)
        if rec is None or timeline is None or booking_id not in state.auto:
            continue
        confirm_s, start_s, complete_s, cancel_s = timeline
        status = rec.status
        if (
            cancel_s
            and cancel_s <= due
            and status
            in (
                BookingStatus.SCHEDULED,
                BookingStatus.CONFIRMED,
            )
        ):
            state.change_booking(
                client,
                rec,
                cancel_s * US,
                status=BookingStatus.CANCELLED,
                cancelled_reason=_REASON,
            )
        elif status == BookingStatus.SCHEDULED and confirm_s <= due:
            state.change_booking(client, rec, confirm_s * US, status=BookingStatus.CONFIRMED)
        elif status == BookingStatus.CONFIRMED and start_s <= due:
            state.change_booking(client, rec, start_s * US, status=BookingStatus.IN_PROGRESS)
        elif status == BookingStatus.IN_PROGRESS and complete_s <= due:
            state.change_booking(client, rec, complete_s * US, status=BookingStatus.COMPLETED)
        applied += 1
        nxt = _next(rec.status, timeline)
        if nxt is None:
            state.auto.discard(booking_id)
            state.timeline.pop(booking_id, None)
        else:
            state.schedule(max(nxt, due), booking_id)


def _next(status: str, timeline: tuple[int, int, int, int]) -> int | None:
    confirm_s, start_s, complete_s, cancel_s = timeline
    if status == BookingStatus.SCHEDULED:
        return min(confirm_s, cancel_s) if cancel_s else confirm_s
    if status == BookingStatus.CONFIRMED:
        return min(start_s, cancel_s) if cancel_s and cancel_s < start_s else start_s
    if status == BookingStatus.IN_PROGRESS:
        return complete_s
    return None


def _arrive(state: State, client_id: str, arrival_s: int) -> None:
    factory: BookingFactory = state.factory
    state.arrivals += 1
    client = state.clients[client_id]
    created_us = state.stamp(arrival_s * US)
    made = factory.booking(
        client,
        ext=f"WEB-{ts(created_us)[:7]}-{state.arrivals:06d}",
        created_s=arrival_s,
        now_s=arrival_s,
        created_us=created_us,
    )
    rng = state.world_rng
    state.next_arrival_s = arrival_s + max(1, int(rng.expovariate(1 / state.arrival_interval_s)))
    if made is None:
        return
    rec, confirm_s, start_s, complete_s, cancel_s = made
    state.add_booking(client, rec)
    timeline = (confirm_s, start_s, complete_s, cancel_s)
    nxt = _next(rec.status, timeline)
    if nxt is not None:
        state.auto.add(rec.id)
        state.timeline[rec.id] = timeline
        state.schedule(nxt, rec.id)


def release(state: State, booking_id: str) -> None:
    """A client changed this booking: the world stops moving it."""
    state.auto.discard(booking_id)
    state.timeline.pop(booking_id, None)
