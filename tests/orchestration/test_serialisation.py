"""Concurrent runs take turns: two nightly runs of one country, two loads of one file.

The flows hold ``sodtrack.state.hold_lock`` (``nightly:<country>`` in ``flows/nightly.py``,
``load:<sha256>`` around a bulk load) on the state store that every worker shares; each
``StateStore`` below is a separate engine, as a separate worker process or machine would have.
The end-to-end test (tests/e2e) shows the same through a real Prefect server and worker.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path

import pytest
from loader_engine.helpers import SIM_TODAY, assert_no_duplicates, sim_client
from starlette.applications import Starlette

from sodtrack.loader import read_upload
from sodtrack.loader.engine import run_upload
from sodtrack.loader.ledger import Ledger
from sodtrack.loader.outcomes import UploadResult
from sodtrack.loader.synth import synthesize_upload
from sodtrack.simulator.app import create_app
from sodtrack.simulator.config import SimConfig
from sodtrack.state import StateStore, hold_lock

Interval = tuple[str, float, float]


def _overlap(a: Interval, b: Interval) -> bool:
    return a[1] < b[2] and b[1] < a[2]


async def test_two_runs_of_a_country_take_turns_and_other_countries_go_on(
    state_url: str,
) -> None:
    stores = [StateStore(state_url) for _ in range(3)]
    intervals: list[Interval] = []
    ticks: list[float] = []
    done = asyncio.Event()

    async def run(store: StateStore, lock: str, tag: str) -> None:
        async with hold_lock(store, lock):
            start = time.monotonic()
            await asyncio.sleep(0.6)
            intervals.append((tag, start, time.monotonic()))

    async def ticker() -> None:  # the event loop must keep turning while a run waits
        while not done.is_set():
            ticks.append(time.monotonic())
            await asyncio.sleep(0.05)

    tick = asyncio.create_task(ticker())
    started = time.monotonic()
    try:
        await asyncio.gather(
            run(stores[0], "nightly:cl", "cl-1"),
            run(stores[1], "nightly:cl", "cl-2"),
            run(stores[2], "nightly:pe", "pe"),
        )
    finally:
        done.set()
        await tick
        for s in stores:
            s.dispose()
    by = {tag: (tag, a, b) for tag, a, b in intervals}
    assert not _overlap(by["cl-1"], by["cl-2"]), "two runs of one country interleaved"
    assert by["pe"][1] - started < 0.5, "another country waited for Chile's lock"
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert max(gaps) < 0.4, f"the event loop stalled {max(gaps):.2f}s while waiting for a lock"


async def test_a_failing_run_releases_its_lock(state_url: str) -> None:
    store = StateStore(state_url)
    try:
        with pytest.raises(RuntimeError, match="boom"):
            async with hold_lock(store, "nightly:cl"):
                raise RuntimeError("boom")
        async with hold_lock(store, "nightly:cl", timeout_s=2):
            pass
    finally:
        store.dispose()


@pytest.fixture
def sim(sim_config: SimConfig) -> Starlette:
    return create_app(sim_config)


async def test_two_loads_of_one_file_take_turns_and_create_once(
    sim: Starlette, state_url: str, tmp_path: Path
) -> None:
    """Without the lock the second load of a file finds the ledger's lease taken and fails;
    with it, it waits, then resumes the same upload and creates nothing twice."""
    path = tmp_path / "bookings.csv"
    async with sim_client(sim) as client:
        await synthesize_upload(client, path, country="cl", rows=24, projects=4, today=SIM_TODAY)
    parsed = read_upload(path, "cl")
    refs = [r.external_reference for r in parsed.rows if r.external_reference]
    payments = [r.payment_reference for r in parsed.rows if r.payment_reference]
    intervals: list[Interval] = []

    async def load(tag: str) -> UploadResult:
        store, ledger = StateStore(state_url), Ledger(state_url)
        try:
            async with hold_lock(store, f"load:{parsed.file_sha256}"):
                start = time.monotonic()
                async with sim_client(sim) as client:
                    result = await run_upload(parsed, client, ledger, uploaded_by=tag)
                intervals.append((tag, start, time.monotonic()))
                return result
        finally:
            ledger.close()
            store.dispose()

    first, second = await asyncio.gather(load("a"), load("b"))
    assert not _overlap(intervals[0], intervals[1])
    assert first.upload_id == second.upload_id
    outcomes = sorted([first.counts, second.counts], key=lambda c: c.get("created", 0))
    assert outcomes[1].get("created", 0) == len(parsed.rows), outcomes
    assert outcomes[0].get("created", 0) == 0, "the second load created rows again"
    assert outcomes[0].get("already_existed", 0) == len(parsed.rows), outcomes
    assert_no_duplicates(sim, refs, payments)
