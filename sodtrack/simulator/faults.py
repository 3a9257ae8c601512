"""Injected faults, drawn from their own seeded stream (same seed, same request order, same
faults).

* ``unavailable()``: the request is answered ``503 unavailable`` with ``Retry-After: 1``
  before any processing (nothing committed).
* ``drop()``: after a successful write was committed, its answer is lost: ``"500"`` (an
  ``internal_error`` response) or ``"cut"`` (the connection is cut mid-response), half each.
"""

from __future__ import annotations

import random
from typing import Literal

Drop = Literal["500", "cut"]


class Faults:
    def __init__(self, seed: int, fault_rate: float, drop_rate: float) -> None:
        self._seed = seed
        self.fault_rate = fault_rate
        self.drop_rate = drop_rate
        self._rng = random.Random(seed * 1_000_003 + 17)

    def reset(self) -> None:
        self._rng = random.Random(self._seed * 1_000_003 + 17)

    def unavailable(self) -> bool:
        return self.fault_rate > 0 and self._rng.random() < self.fault_rate

    def drop(self) -> Drop | None:
        if self.drop_rate <= 0 or self._rng.random() >= self.drop_rate:
            return None
        return "500" if self._rng.random() < 0.5 else "cut"

    def jitter(self, jitter_ms: float) -> float:
        """Extra latency in [0, jitter_ms] milliseconds."""
        return self._rng.uniform(0, jitter_ms) if jitter_ms > 0 else 0.0
