"""Concurrent runs take turns: two nightly runs of one country, two loads of one file.

The flows hold ``sodtrack.state.hold_lock`` (``nightly:<country>`` in ``flows/nightly.py``,
``load:<sha256>`` around a bulk load) on the state store that every worker shares; each
``StateStore`` below is a separate engine, as a separate worker process or machine would have.
The end-to-end test (tests/e2e) shows the same through a real Prefect server and worker.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from bulkload.helpers import SIM_TODAY, assert_no_duplicates, sim_client
from starlette.applications import Starlette

from sodtrack.bulkload import read_upload
from sodtrack.bulkload.engine.ledger import Ledger
from sodtrack.bulkload.engine.run import run_upload
from sodtrack.bulkload.outcomes import UploadResult
from sodtrack.bulkload.synth import synthesize_upload
from sodtrack.simulator.app import create_app
from sodtrack.simulator.config import SimConfig
from sodtrack.state import StateStore, hold_lock

Interval = tuple[str, float, float]


def _overlap(a: Interval, b: Interval) -> bool:
    return a[1] < b[2] and b[1] < a[2]


LOCK_TIMEOUT_S = 30.0
"""How long a run waits for its lock here: what a broken wait (one blocking the event loop,
or Peru waiting for Chile's lock) ends in, as a ``LockTimeout``."""


async def test_two_runs_of_a_country_take_turns_and_other_countries_go_on(
    state_url: str,
) -> None:
    """Ordered by events, not by timing: Chile's first run keeps its lock until Peru's run has
    finished and the event loop has gone on turning while Chile's second run waits.

    Peru's run finishing at all shows it never waited for Chile's lock; Chile's first run being
    released at all (by this event loop) shows that a run waiting for a lock does not stall
    the loop; the log's order shows Chile's runs did not overlap. Each broken case ends in a
    ``LockTimeout``, never in a wrong guess about how long something took."""
    stores = [StateStore(state_url) for _ in range(3)]
    log: list[str] = []
    cl1_holds, cl2_waits, release_cl1 = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def chile_first() -> None:
        async with hold_lock(stores[0], "nightly:cl", timeout_s=LOCK_TIMEOUT_S):
            log.append("cl-1 in")
            cl1_holds.set()
            await release_cl1.wait()
            log.append("cl-1 out")

    async def chile_second() -> None:
        await cl1_holds.wait()
        cl2_waits.set()
        async with hold_lock(stores[1], "nightly:cl", timeout_s=LOCK_TIMEOUT_S):
            log.append("cl-2 in")
            log.append("cl-2 out")

    async def peru() -> None:
        await cl1_holds.wait()
        async with hold_lock(stores[2], "nightly:pe", timeout_s=LOCK_TIMEOUT_S):
            log.append("pe in")
            log.append("pe out")

    async def conductor(pe: asyncio.Task[None]) -> None:
        await cl2_waits.wait()
        await pe  # Peru is done while Chile's first run still holds its lock
        # The second run's thread tries the lock at once, then every poll; give it a few
        # polls' time (less would only weaken the check below, never fail it).
        await asyncio.sleep(0.6)
        assert "cl-2 in" not in log, "Chile's second run got in while the first held the lock"
        release_cl1.set()

    try:
        pe = asyncio.create_task(peru())
        first = asyncio.create_task(chile_first())
        second = asyncio.create_task(chile_second())
        await conductor(pe)
        await asyncio.gather(first, second)
    finally:
        for s in stores:
            s.dispose()
    assert log.index("pe out") < log.index("cl-1 out"), log
    assert log.index("cl-1 out") < log.index("cl-2 in"), log


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
