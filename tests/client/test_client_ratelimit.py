"""TokenBucket / RateLimiter: header sync, conservative rate estimate, steady state (pure)."""

from __future__ import annotations

import asyncio
import math

import pytest
from client_fakes import FakeClock

from sodtrack.client.ratelimit import RateLimiter, RateLimitHeaders, TokenBucket
from sodtrack.contract.limits import (
    HEADER_RATE_LIMIT,
    HEADER_RATE_REMAINING,
    HEADER_RATE_RESET,
    RATE_LIMIT_PER_S,
)


def hdr(limit: int, remaining: int, reset: float) -> RateLimitHeaders:
    return RateLimitHeaders(limit, remaining, reset)


def test_inactive_until_the_server_says_something() -> None:
    bucket = TokenBucket(now=0.0)
    assert not bucket.active
    assert all(bucket.try_acquire(0.0) == 0.0 for _ in range(1000))


def test_observation_sets_size_and_level() -> None:
    bucket = TokenBucket(now=0.0)
    bucket.observe(0.0, hdr(40, 3, 2))
    assert bucket.active
    assert bucket.capacity == 40.0
    assert [bucket.try_acquire(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.try_acquire(0.0) > 0.0


def test_level_accounts_for_requests_still_in_flight() -> None:
    bucket = TokenBucket(now=0.0)
    bucket.observe(0.0, hdr(40, 10, 1), in_flight=4)
    assert bucket.tokens == 6.0


def test_syncs_down_when_someone_else_spends_the_credential() -> None:
    bucket = TokenBucket(now=0.0)
    bucket.observe(0.0, hdr(40, 40, 0))
    assert bucket.tokens == 40.0
    bucket.observe(0.0, hdr(40, 5, 2))
    assert bucket.tokens == 5.0


def test_rate_estimate_is_a_lower_bound_that_only_rises() -> None:
    bucket = TokenBucket(now=0.0)
    assert bucket.rate == RATE_LIMIT_PER_S  # the contract's default before any evidence
    # true rate 10/s: deficit 3 -> reset ceil(0.3)=1 -> bound (20-17-1)/1 = 2
    bucket.observe(0.0, hdr(20, 17, 1))
    assert bucket.rate == pytest.approx(2.0)
    # empty bucket: deficit 20 -> reset 2 -> bound 19/2 = 9.5 (< 10)
    bucket.observe(0.0, hdr(20, 0, 2))
    assert bucket.rate == pytest.approx(9.5)
    bucket.observe(0.0, hdr(20, 19, 1))  # uninformative: no deficit beyond rounding
    assert bucket.rate == pytest.approx(9.5)


def test_configured_rate_wins_over_the_estimate() -> None:
    bucket = TokenBucket(rate=5.0, now=0.0)
    assert bucket.active
    bucket.observe(0.0, hdr(20, 0, 2))
    assert bucket.rate == 5.0
    assert bucket.try_acquire(0.0) == pytest.approx(0.2)


def test_a_429_empties_the_mirror() -> None:
    bucket = TokenBucket(now=0.0)
    bucket.observe(0.0, hdr(20, 10, 1))
    bucket.on_rate_limited(0.0)
    assert bucket.tokens <= 0.0
    assert bucket.try_acquire(0.0) > 0.0


def test_header_parsing() -> None:
    ok = {HEADER_RATE_LIMIT: "40", HEADER_RATE_REMAINING: "39", HEADER_RATE_RESET: "1"}
    assert RateLimitHeaders.parse(ok) == hdr(40, 39, 1.0)
    assert RateLimitHeaders.parse({}) is None
    assert RateLimitHeaders.parse({**ok, HEADER_RATE_LIMIT: "many"}) is None
    assert RateLimitHeaders.parse({**ok, HEADER_RATE_REMAINING: "-1"}) is None


class ServerBucket:
    """The contract's server-side bucket, for the steady-state simulation."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst, self.tokens, self.last = rate, burst, float(burst), 0.0

    def hit(self, now: float) -> tuple[bool, RateLimitHeaders]:
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        allowed = self.tokens >= 1.0
        if allowed:
            self.tokens -= 1.0
        reset = math.ceil((self.burst - self.tokens) / self.rate - 1e-9)
        return allowed, hdr(self.burst, int(self.tokens), max(reset, 0))


@pytest.mark.parametrize(("rate", "burst"), [(10.0, 20), (20.0, 40), (3.0, 5)])
def test_steady_state_provokes_almost_no_429(rate: float, burst: int) -> None:
    """A greedy client (always wants to send) against the server bucket for 60 s."""
    server, bucket = ServerBucket(rate, burst), TokenBucket(now=0.0)
    now, sent, rejected = 0.0, 0, 0
    latency = 0.003
    while now < 60.0:
        wait = bucket.try_acquire(now)
        if wait > 0:
            now += wait
            continue
        allowed, headers = server.hit(now + latency / 2)
        now += latency
        bucket.observe(now, headers)
        if allowed:
            sent += 1
        else:
            rejected += 1
            bucket.on_rate_limited(now)
    assert rejected <= 2
    # ... and the client still uses most of the budget (burst + rate * time)
    assert sent >= 0.9 * (burst + rate * 60.0)


async def test_async_limiter_paces_concurrent_waiters_fifo() -> None:
    clock = FakeClock(0.0)
    limiter = RateLimiter(rate=10.0, capacity=2.0, clock=clock, sleep=clock.sleep)
    order: list[int] = []

    async def worker(i: int) -> float:
        waited = await limiter.acquire()
        order.append(i)
        return waited

    waits = await asyncio.gather(*(worker(i) for i in range(6)))
    assert order == list(range(6))
    assert waits[:2] == [0.0, 0.0]
    assert clock.now == pytest.approx(0.4)  # 4 tokens at 10/s after the burst of 2
    assert "RateLimiter(active=True" in repr(limiter)


async def test_the_client_reports_the_rate_it_paces_by() -> None:
    """For the run report's API floor: the rate learnt from the simulator's X-RateLimit-*
    headers (a lower bound of its 20 req/s), ``None`` before any answer."""
    from client_sim import in_process_client

    from sodtrack.simulator.app import create_app
    from sodtrack.simulator.testing import small_config

    client, _ = in_process_client(create_app(small_config(rate_limit=20.0)))
    async with client:
        assert client.stats.rate_limit_per_s is None
        for _ in range(45):  # past the burst: the bucket drains and the bound tightens
            await client.collect_categories()
        rate = client.stats.rate_limit_per_s
    assert rate is not None
    assert 10.0 < rate <= 20.0
    assert client.stats.as_dict()["rate_limit_per_s"] == pytest.approx(rate, abs=1e-3)
