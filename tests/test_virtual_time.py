"""The suite's virtual-time event loop (``tests/virtual_time.py``): waits take no wall time,
concurrent sleepers overlap as in real time, threads are waited for."""

from __future__ import annotations

import asyncio
import random
import time

import httpx
import pytest
from virtual_time import VirtualTimeLoop, run_virtual


def test_concurrent_sleeps_overlap_and_take_no_wall_time() -> None:
    async def main() -> tuple[float, list[float]]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        woke: list[float] = []

        async def sleeper(seconds: float) -> None:
            await asyncio.sleep(seconds)
            woke.append(loop.time() - start)

        await asyncio.gather(*(sleeper(s) for s in (30.0, 10.0, 20.0, 10.0)))
        await asyncio.sleep(5.0)
        return loop.time() - start, woke

    wall = time.monotonic()
    elapsed, woke = run_virtual(main)
    assert time.monotonic() - wall < 5.0
    assert woke == [10.0, 10.0, 20.0, 30.0]
    assert elapsed == 35.0


def test_random_timers_fire_in_order_at_their_virtual_time() -> None:
    """A seeded corpus of timers: each fires at its own time, in time order, none early."""
    rng = random.Random(11)
    delays = [round(rng.uniform(0, 3600), 3) for _ in range(500)]

    async def main() -> list[tuple[float, float]]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        fired: list[tuple[float, float]] = []
        done = asyncio.Event()

        def fire(d: float) -> None:
            fired.append((d, loop.time() - start))

        for d in delays:
            loop.call_later(d, fire, d)
        loop.call_later(3601, done.set)
        await done.wait()
        return fired

    fired = run_virtual(main)
    assert [d for d, _ in fired] == sorted(delays)
    assert all(abs(at - d) < 1e-6 for d, at in fired)


def test_timeouts_are_virtual_too() -> None:
    """Timeouts read the loop's clock: a stalled wait, a stalled transport time out at once."""

    async def stall(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(3600)
        return httpx.Response(200)  # pragma: no cover

    async def main() -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.sleep(3600), timeout=60)
        async with httpx.AsyncClient(transport=httpx.MockTransport(stall)) as http:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(http.get("http://x.test"), timeout=30)
        return loop.time() - start

    wall = time.monotonic()
    assert run_virtual(main) == 90.0
    assert time.monotonic() - wall < 5.0


def test_the_clock_does_not_jump_while_a_thread_works() -> None:
    async def main() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, VirtualTimeLoop)
        start = loop.time()
        timer = asyncio.ensure_future(asyncio.sleep(100))
        await asyncio.to_thread(time.sleep, 0.2)  # real work, in real time
        during = loop.time() - start
        await timer
        return during, loop.time() - start

    during, after = run_virtual(main)
    assert during < 100.0, "the clock jumped over a timer while a thread was still running"
    assert after == 100.0
