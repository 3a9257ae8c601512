"""The simulator's mutable state, and the primitive changes every writer goes through.

``State`` is what ``/_sim/reset`` throws away and seeds anew. Handlers (API writes) and the
background world (clock-driven progress) change records only through the methods here, so
that the invariants hold in one place:

* every change stamps ``updated_at`` strictly later than any stamp before (``stamp``), and
  moves the record in its client's ``(updated_at, id)`` index;
* a booking holds a contractor bit in ``Capacity`` exactly while it is not cancelled;
* a project's ``total_amount`` is the sum of its non-cancelled bookings' prices.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field
from typing import Any

from sodtrack.contract.countries import Country
from sodtrack.simulator.store import (
    BookingRec,
    Capacity,
    ClientState,
    ProjectRec,
    Shared,
    make_id,
    pack,
)
from sodtrack.simulator.timefmt import ts


@dataclass(slots=True)
class State:
    country: Country
    shared: Shared
    clients: dict[str, ClientState]
    capacity: Capacity
    anchor_us: int
    """The server time the data was seeded at."""
    last_stamp_us: int = 0
    counters: dict[str, int] = field(default_factory=dict)
    """Last number used per id prefix."""
    # The background world (see ``world``): bookings of the seeded client that progress by
    # themselves as time passes.
    auto: set[str] = field(default_factory=set)
    """Bookings the world moves by itself; a booking a client changes leaves this set."""
    timeline: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)
    """(confirm, start, complete, cancel-or-0) epoch seconds of each ``auto`` booking."""
    factory: Any = None
    """The seeding ``BookingFactory``, reused (with ``world_rng``) for new arrivals."""
    heap: list[tuple[int, int, str]] = field(default_factory=list)
    heap_seq: int = 0
    next_arrival_s: int = 0
    arrival_interval_s: float = 0.0
    arrivals: int = 0
    world_rng: random.Random = field(default_factory=random.Random)

    # ------------------------------------------------------------ ids and stamps

    def new_id(self, prefix: str) -> str:
        n = self.counters.get(prefix, 0) + 1
        self.counters[prefix] = n
        return make_id(prefix, n)

    def stamp(self, at_us: int) -> int:
        """A change's ``updated_at``: ``at_us``, or just after the latest stamp if that is
        not earlier (a fixed clock does not move between requests)."""
        value = max(at_us, self.last_stamp_us + 1)
        self.last_stamp_us = value
        return value

    def schedule(self, due_s: int, booking_id: str) -> None:
        self.heap_seq += 1
        heapq.heappush(self.heap, (due_s, self.heap_seq, booking_id))

    # ------------------------------------------------------------ bookings

    def add_booking(self, client: ClientState, rec: BookingRec, *, index: bool = True) -> None:
        """Register a new booking; ``index=False`` while seeding (``reindex`` follows)."""
        client.bookings[rec.id] = rec
        client.booking_refs[rec.external_reference] = rec.id
        if index:
            client.booking_index.add(rec.updated_us, rec.id)
        if rec.active:
            self.capacity.take(rec.zone, rec.start_s, rec.contractor)
        if rec.project_id is not None:
            project = client.projects[rec.project_id]
            project.booking_ids.append(rec.id)
            if rec.active:
                project.total_minor += rec.price

    def change_booking(
        self, client: ClientState, rec: BookingRec, at_us: int, **changes: Any
    ) -> None:
        """Apply wire-field changes to a booking, keeping capacity, project totals and the
        cursor index right. Callers pass only fields that really change."""
        data = rec.to_dict()
        was_active = rec.active
        new_status = changes.get("status", rec.status)
        new_start = changes.pop("_start_s", rec.start_s)
        new_contractor = changes.pop("_contractor", rec.contractor)
        old_contractor = rec.contractor
        if was_active:
            self.capacity.release(rec.zone, rec.start_s, rec.contractor)
        rec.status = new_status
        rec.start_s = new_start
        rec.contractor = new_contractor
        if new_contractor != old_contractor:
            changes["contractor_id"] = self.shared.zones[rec.zone].contractor_id(new_contractor)
        if "stage_id" in changes:
            rec.stage_id = changes["stage_id"]
        if rec.active:
            self.capacity.take(rec.zone, rec.start_s, rec.contractor)
        if rec.project_id is not None and was_active != rec.active:
            project = client.projects[rec.project_id]
            project.total_minor += rec.price if rec.active else -rec.price
            self.touch_project(client, project, at_us)
        old_us = rec.updated_us
        rec.updated_us = self.stamp(at_us)
        data.update(changes)
        data["updated_at"] = ts(rec.updated_us)
        rec.wire = pack(data)
        client.booking_index.move(old_us, rec.updated_us, rec.id)

    def reindex(self) -> None:
        """Rebuild every cursor index from the records (once, after bulk seeding)."""
        for client in self.clients.values():
            client.booking_index.keys = sorted(
                (b.updated_us, b.id) for b in client.bookings.values()
            )
            client.project_index.keys = sorted(
                (p.updated_us, p.id) for p in client.projects.values()
            )

    # ------------------------------------------------------------ projects

    def add_project(self, client: ClientState, project: ProjectRec) -> None:
        client.projects[project.id] = project
        client.project_refs[project.external_reference] = project.id
        client.project_index.add(project.updated_us, project.id)

    def touch_project(self, client: ClientState, project: ProjectRec, at_us: int) -> None:
        """Bump a project's ``updated_at`` (its fields, totals or stages changed)."""
        old_us = project.updated_us
        project.updated_us = self.stamp(at_us)
        client.project_index.move(old_us, project.updated_us, project.id)
