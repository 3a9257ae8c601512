"""Settings of one simulator instance.

``SimConfig`` is frozen: a running simulator never changes its settings, and two simulators
built from equal configs hold equal data (everything random is drawn from ``seed``). The
defaults are those of the real API's documented limits (``sodtrack.contract.limits``) and of
a country at realistic scale; tests shrink the scale knobs to stay fast.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sodtrack.contract.countries import get_country
from sodtrack.contract.limits import RATE_LIMIT_BURST, RATE_LIMIT_PER_S, TOKEN_TTL_S


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Everything that shapes a simulator run. All fields have documented defaults."""

    host: str = "127.0.0.1"
    """Interface ``sodtrack-sim serve`` binds (loopback by default)."""
    port: int = 8765
    """TCP port ``sodtrack-sim serve`` listens on."""
    country: str = "cl"
    """The API's country: currency, time zone, postal-code format; tokens carry it."""
    seed: int = 42
    """Seeds every random choice: data, request ids, faults, the background world."""
    client_id: str = "sim-client"
    """The configured client credential; the seeded history belongs to it."""
    client_secret: str = "sim-secret"  # noqa: S105 (a simulator's well-known default)
    extra_clients: tuple[tuple[str, str], ...] = ()
    """More (client_id, client_secret) pairs, each with its own empty data (isolation tests)."""
    rate_limit: float = RATE_LIMIT_PER_S
    """Sustained requests per second per client credential; 0 turns rate limiting off."""
    burst: int = RATE_LIMIT_BURST
    """Token-bucket size (``X-RateLimit-Limit``)."""
    token_ttl: int = TOKEN_TTL_S
    """Lifetime of issued tokens, in whole seconds."""
    latency_ms: float = 0.0
    """Delay added to every API response."""
    jitter_ms: float = 0.0
    """Extra random delay, uniform in [0, jitter_ms], added to every API response."""
    fault_rate: float = 0.0
    """Share of API requests answered ``503 unavailable`` (``Retry-After: 1``) unprocessed."""
    drop_after_commit_rate: float = 0.0
    """Share of successful writes that are committed and then answered 500 or cut off
    (half each)."""
    now: str | None = None
    """None: the wall clock. An RFC 3339 timestamp with offset: a fixed clock starting there
    (advanced only by ``/_sim/clock/advance``)."""
    bookings: int = 200_000
    """Historical bookings seeded for the configured client (last 2 years and a month ahead)."""
    categories: int = 40
    """Catalog categories (a tree of at most 3 levels)."""
    services: int = 600
    variants: int = 2500
    zones: int = 300
    """Coverage zones (a few overlapping, a few inactive)."""
    postal_codes: int = 30_000
    """Distinct postal codes spread over the zones."""
    signing_key: str | None = field(default=None, repr=False)
    """Secret the token signing key derives from; None: a random key per process (see
    ``sodtrack.simulator.auth``). Set it only when tokens must outlive a restart."""
    clients: tuple[str, ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        get_country(self.country)  # fails early on an unknown country
        object.__setattr__(self, "country", get_country(self.country).code)
        ids = (self.client_id, *(cid for cid, _ in self.extra_clients))
        if len(set(ids)) != len(ids):
            raise ValueError("client ids must be distinct")
        object.__setattr__(self, "clients", ids)
        for name in ("fault_rate", "drop_after_commit_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within [0, 1]")
        if self.rate_limit < 0 or self.burst < 1:
            raise ValueError("rate_limit must be >= 0 and burst >= 1")
        if self.token_ttl < 1:
            raise ValueError("token_ttl must be >= 1")

    @property
    def credentials(self) -> dict[str, str]:
        """client_id -> client_secret for every credential the simulator accepts."""
        return {self.client_id: self.client_secret, **dict(self.extra_clients)}
