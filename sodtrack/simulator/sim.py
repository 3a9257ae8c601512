"""The ``Simulator``: one instance per app (``app.state.sim``), holding config, clock, state
and the cross-cutting machinery (auth, rate limiting, faults, counters).

Its methods are the in-process equivalents of the ``/_sim/`` controls, for tests:
``advance``, ``reset``, ``counters_snapshot``, ``export_bookings``; ``client(id)`` reaches a
client's records for assertions (``sim.client("sim-client").count_bookings("OPS-1")``).
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from sodtrack.contract.countries import get_country
from sodtrack.simulator import world
from sodtrack.simulator.auth import Auth
from sodtrack.simulator.clock import Clock
from sodtrack.simulator.config import SimConfig
from sodtrack.simulator.faults import Faults
from sodtrack.simulator.ratelimit import RateLimiter
from sodtrack.simulator.seed import seed_state
from sodtrack.simulator.slots import SlotCalendar
from sodtrack.simulator.state import State
from sodtrack.simulator.store import ClientState, MoneyText, pack
from sodtrack.simulator.timefmt import ts


class Counters:
    """What happened, for tests and demos: requests by route template and status, writes
    committed by resource type, faults injected, responses dropped after commit."""

    def __init__(self) -> None:
        self.requests: defaultdict[str, defaultdict[int, int]] = defaultdict(
            lambda: defaultdict(int)
        )
        self.writes: defaultdict[str, int] = defaultdict(int)
        self.faults = 0
        self.drops: defaultdict[str, int] = defaultdict(int)
        self.rate_limited = 0

    def request(self, route: str, status: int) -> None:
        self.requests[route][status] += 1

    def commit(self, resource: str) -> None:
        self.writes[resource] += 1

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": {
                route: {str(status): n for status, n in sorted(by.items())}
                for route, by in sorted(self.requests.items())
            },
            "writes": dict(sorted(self.writes.items())),
            "faults": self.faults,
            "drops": {"500": self.drops["500"], "cut": self.drops["cut"]},
            "rate_limited": self.rate_limited,
        }


class Simulator:
    def __init__(self, config: SimConfig, clock: Clock | None = None) -> None:
        self.config = config
        self.clock = clock or Clock.from_config(config.now)
        self.country = get_country(config.country)
        self.calendar = SlotCalendar(self.country.tz)
        self.auth = Auth(config, self.clock)
        self.limiter = RateLimiter(config.rate_limit, config.burst, self.clock.monotonic)
        self.faults = Faults(config.seed, config.fault_rate, config.drop_after_commit_rate)
        self.counters = Counters()
        self.anchor_us = self.clock.now_us()
        self.state: State = seed_state(config, self.anchor_us)
        self._ids = random.Random(config.seed * 31 + 7)
        self.money = MoneyText(self.country)

    # ------------------------------------------------------------ helpers for handlers

    def new_request_id(self) -> str:
        return f"req_{self._ids.getrandbits(64):016x}"

    @staticmethod
    def format_us(us: int) -> str:
        return ts(us)

    @staticmethod
    def pack(obj: Any) -> bytes:
        return pack(obj)

    def catch_up(self) -> int:
        """Let the background world reach the server's now."""
        return world.catch_up(self.state, self.config.client_id, self.clock.now_us())

    # ------------------------------------------------------------ controls (/_sim/)

    def advance(self, seconds: float) -> dict[str, Any]:
        """Move the clock forward; bookings progress, some cancel, new ones arrive."""
        self.clock.advance(seconds)
        changes = self.catch_up()
        return {"now": ts(self.clock.now_us()), "changes": changes}

    def reset(self) -> None:
        """Back to the seeded state (and clock, buckets, faults, counters)."""
        self.clock.reset()
        self.state = seed_state(self.config, self.anchor_us)
        self.limiter.reset()
        self.faults.reset()
        self.counters = Counters()
        self._ids = random.Random(self.config.seed * 31 + 7)

    def counters_snapshot(self) -> dict[str, Any]:
        return self.counters.snapshot()

    def client(self, client_id: str | None = None) -> ClientState:
        return self.state.clients[client_id or self.config.client_id]

    def export_bookings(self, client_id: str | None = None) -> Iterator[bytes]:
        """Every booking of a client in wire format, one JSON document per line, by id."""
        for wire in self.client(client_id).iter_booking_wires():
            yield wire + b"\n"
