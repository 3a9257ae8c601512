"""The must-show: 2,000 rows with projects, stages and payments under faults, every row
accounted for exactly once and no duplicate in the simulator's own records; the same after a
``kill -9`` mid-run and a re-run.

Faults: ``fault_rate=0.2`` (503 before processing), ``drop_after_commit_rate=0.1`` (committed,
then answered 500 or cut off), rate limit 10 req/s.

The 2,000-row test runs on virtual time (``tests/virtual_time.py``): the client's clock and
rate limiter, its retry sleeps, the simulator's rate limiter and every other wait read one
virtual clock, the event loop's, which jumps instead of waiting. It needs ~500 s of API time
through the 10 req/s limit and waits for none of it; that the client kept to the limit is
checked against the same clock, by the simulator's count of 429s.

The kill test runs the load in a separate process against a real uvicorn simulator on
loopback, kills it with SIGKILL once the ledger shows progress, and re-runs; it uses a faster
rate limit (:data:`KILL_RATE`) to stay short, with the same faults.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from starlette.applications import Starlette
from virtual_time import run_virtual

from bulkload.helpers import (
    SIM_TODAY,
    assert_every_row_once,
    assert_matches_store,
    assert_no_duplicates,
    sim_client,
    store,
)
from sodtrack.bulkload import ParsedUpload, read_upload
from sodtrack.bulkload.engine.ledger import Ledger, steps_table
from sodtrack.bulkload.engine.run import run_upload
from sodtrack.bulkload.outcomes import UploadResult
from sodtrack.bulkload.synth import synthesize_upload
from sodtrack.client import RetryPolicy
from sodtrack.simulator.app import create_app
from sodtrack.simulator.clock import Clock, parse_rfc3339
from sodtrack.simulator.testing import SIM_NOW, serve_in_thread, small_config

ROWS = 2000
PROJECTS = 100
WORKER = Path(__file__).with_name("load_worker.py")
KILL_RATE = 300.0
"""Requests/second of the kill test (its point is the kill, not the pacing)."""
RATE = 10.0
"""The simulator's rate limit in the fault test, and the client's own pace."""


async def _make_file(
    app: Starlette, path: Path, prefix: str, clock: Callable[[], float] | None = None
) -> ParsedUpload:
    async with sim_client(app, clock=clock) as client:
        await synthesize_upload(
            client,
            path,
            country="cl",
            rows=ROWS,
            projects=PROJECTS,
            today=SIM_TODAY,
            prefix=prefix,
            seed=11,
        )
    parsed = read_upload(path, "cl")
    assert len(parsed.rows) == ROWS
    assert all(r.is_valid for r in parsed.rows), [r.errors for r in parsed.rows if r.errors][:3]
    return parsed


def _check(app: Starlette, parsed: ParsedUpload, final: UploadResult) -> None:
    assert_every_row_once(final, ROWS)
    bad = [r for r in final.rows if r.outcome not in ("created", "already_existed")]
    assert not bad, bad[:5]
    refs = [r.external_reference for r in parsed.rows]
    pays = [r.payment_reference for r in parsed.rows if r.payment_reference]
    assert_no_duplicates(app, refs, pays)
    assert_matches_store(app, final, parsed.rows)
    st = store(app)
    ours = {b.external_reference for b in st.bookings.values()} & set(refs)
    assert len(ours) == ROWS
    planned_stages = {
        (r.project_reference, r.stage_sequence) for r in parsed.rows if r.project_reference
    }
    project_ids = {r.project_id for r in final.rows if r.project_id}
    assert len(project_ids) == len(
        {r.project_reference for r in parsed.rows if r.project_reference}
    )
    ours_stages = [s for s in st.stages.values() if s.project_id in project_ids]
    assert len(ours_stages) == len(planned_stages)
    assert sum(1 for p in st.payments.values() if p.external_reference in set(pays)) == len(pays)


async def _complete(
    app: Starlette | None,
    parsed: ParsedUpload,
    ledger: Ledger,
    *,
    base_url: str | None,
    rate: float,
    clock: Callable[[], float] | None = None,
    seed: int | None = None,
) -> tuple[UploadResult, list[UploadResult]]:
    """Run until nothing is left to retry (failed_transient is retried by the next run).
    ``seed`` seeds the retries' jitter (on virtual time, the whole run is then repeatable)."""
    runs: list[UploadResult] = []
    for i in range(4):
        retry = None if seed is None else RetryPolicy(random=random.Random(seed + i).random)
        async with sim_client(
            app, base_url=base_url, rate=rate, concurrency=32, clock=clock, retry=retry
        ) as client:
            result = await run_upload(
                parsed, client, ledger, uploaded_by="acceptance", concurrency=128
            )
        runs.append(result)
        if result.complete:
            break
    return runs[-1], runs


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_2000_rows_under_faults_every_row_once_no_duplicates(tmp_path: Path) -> None:
    run_virtual(lambda: _2000_rows_under_faults(tmp_path))


async def _2000_rows_under_faults(tmp_path: Path) -> None:
    clock = asyncio.get_running_loop().time  # virtual: see the module docstring
    config = small_config(fault_rate=0.2, drop_after_commit_rate=0.1, rate_limit=RATE)
    app = create_app(config, clock=Clock(parse_rfc3339(SIM_NOW), monotonic=clock))
    parsed = await _make_file(app, tmp_path / "faults.xlsx", "FLT", clock)
    ledger = Ledger(f"sqlite:///{tmp_path}/ledger.db")
    before = app.state.sim.counters_snapshot()
    started, wall = clock(), time.monotonic()
    final, runs = await _complete(
        app, parsed, ledger, base_url=None, rate=RATE, clock=clock, seed=11
    )
    elapsed, wall = clock() - started, time.monotonic() - wall
    _check(app, parsed, final)
    sim = app.state.sim.counters_snapshot()
    assert sim["faults"] > 0
    assert sum(sim["drops"].values()) > 0
    requests = sum(r.requests for r in runs)
    answered = _answered(sim) - _answered(before)  # 429s included
    limited = sim["rate_limited"] - before["rate_limited"]
    # the client kept to the limit, by the simulator's measure on the same clock
    assert limited <= 0.02 * answered, (limited, answered)
    # and the load took the time the limit imposes: no request was answered for free
    assert elapsed >= (answered - limited - config.burst) / RATE, (elapsed, answered)
    print(
        f"\n2,000 rows under faults: {len(runs)} run(s), {elapsed:.0f}s virtual "
        f"({wall:.0f}s wall), requests {requests} (simulator: {answered}, "
        f"429 {limited}), faults {sim['faults']}, drops {sim['drops']}, "
        f"first run {runs[0].counts}"
    )


def _answered(counters: dict[str, Any]) -> int:
    """Every API request the simulator answered, by its own counters."""
    return sum(n for by in counters["requests"].values() for n in by.values())


def _progress(ledger_path: Path) -> int:
    engine = sa.create_engine(f"sqlite:///{ledger_path}")
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.count())
                    .select_from(steps_table)
                    .where(steps_table.c.state == "done")
                ).scalar_one()
            )
    except sa.exc.OperationalError:
        return 0
    finally:
        engine.dispose()


def _run_and_kill(base_url: str, path: Path, ledger_path: Path, err: Path) -> None:
    """Start the load in a process; SIGKILL it once a third of the rows' steps are done."""
    ledger_url = f"sqlite:///{ledger_path}"
    with err.open("wb") as err_fh:
        proc = subprocess.Popen(
            [sys.executable, str(WORKER), base_url, str(path), ledger_url, str(KILL_RATE), "32"],
            stdout=subprocess.DEVNULL,
            stderr=err_fh,
        )
        deadline = time.monotonic() + 300
        while _progress(ledger_path) < ROWS // 3:
            assert proc.poll() is None, err.read_text()
            assert time.monotonic() < deadline, "no progress"
            time.sleep(0.2)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.slow
@pytest.mark.timeout(900)
async def test_kill_9_mid_run_then_rerun_completes_exactly_once(tmp_path: Path) -> None:
    config = small_config(
        fault_rate=0.2, drop_after_commit_rate=0.1, rate_limit=KILL_RATE, burst=100
    )
    app = create_app(config)
    path = tmp_path / "kill.xlsx"
    parsed = await _make_file(app, path, "KIL")
    ledger_path = tmp_path / "ledger.db"
    ledger_url = f"sqlite:///{ledger_path}"
    with serve_in_thread(app) as base_url:
        await asyncio.to_thread(_run_and_kill, base_url, path, ledger_path, tmp_path / "err.txt")
        ledger = Ledger(ledger_url)
        in_flight = [
            s
            for s in ledger.steps(next(iter(ledger.list_uploads())).upload_id).values()
            if s.state == "in_flight"
        ]
        final, runs = await _complete(None, parsed, ledger, base_url=base_url, rate=KILL_RATE)
        _check(app, parsed, final)
        assert runs[0].run_no == 2  # the killed run was run 1
        created_after_kill = sum(r.counts["created"] for r in runs)
        assert 0 < created_after_kill < ROWS
        print(
            f"\nkilled with {runs[0].counts['already_existed']} rows complete and "
            f"{len(in_flight)} step(s) in flight (reconciled by the re-run); "
            f"re-run(s): {[r.counts for r in runs]}"
        )
