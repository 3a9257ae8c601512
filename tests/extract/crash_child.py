"""A nightly extraction in a child process, SIGKILLed at a named point.

Runs ``run_extraction`` with a client built from ``Settings(base_url=...)`` against the
loopback simulator the test process serves. ``kill_at`` names a warehouse step
(``publish:committed#1`` = the first publish right after its commit; see
``Warehouse.step``) or ``walk:<dataset>#n`` (after the n-th page of that dataset's walk).

Children are forked from a ``forkserver`` that has imported the extraction and Great
Expectations once, so a child costs a fork, not an interpreter start and a GX import.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sodtrack.client import SodtrackClient
from sodtrack.extract import ExtractionOptions, run_extraction
from sodtrack.settings import Settings
from sodtrack.state import StateStore
from sodtrack.warehouse import Warehouse

EXIT_NOT_PUBLISHED = 3


def killer(kill_at: str | None) -> Callable[[str], None]:
    """Counts named events; SIGKILLs this process at the n-th ``name`` of ``name#n``."""
    seen: Counter[str] = Counter()
    name, _, nth = (kill_at or "").partition("#")
    target = int(nth or 1)

    def event(step: str) -> None:
        seen[step] += 1
        if step == name and seen[step] == target:
            os.kill(os.getpid(), signal.SIGKILL)

    return event


def extract(
    root: str,
    base_url: str,
    datasets: tuple[str, ...] = (),
    *,
    full_refresh: bool = False,
    kill_at: str | None = None,
    lock_clock_skew_s: float = 0.0,
) -> None:
    """One run into ``root`` (``warehouse/``, ``state.db``, ``reports/``); exits 0 when
    everything published, 3 otherwise, -9 when killed.

    ``lock_clock_skew_s`` runs the state store's clock ahead: a re-run that comes after the
    lease of a killed run's lock (``StateStore.lock``'s ``ttl_s``) has expired.
    """
    kill = killer(kill_at)
    settings = Settings(
        base_url=base_url,
        country="cl",
        warehouse=str(Path(root, "warehouse")),
        state_url=f"sqlite:///{Path(root, 'state.db')}",
    )

    def clock() -> datetime:
        return datetime.now(UTC) + timedelta(seconds=lock_clock_skew_s)

    store = StateStore(settings.state_url, clock=clock)
    warehouse = Warehouse(settings.warehouse, durable=False, on_step=kill)

    @contextlib.asynccontextmanager
    async def factory(country: str) -> AsyncIterator[SodtrackClient]:
        async with SodtrackClient.from_settings(
            settings.model_copy(update={"country": country})
        ) as client:
            yield client

    options = ExtractionOptions(
        countries=("cl",),
        datasets=datasets,
        full_refresh=full_refresh,
        docs_dir=None,
        reports_dir=Path(root, "reports"),
    )
    report = asyncio.run(
        run_extraction(
            options,
            warehouse=warehouse,
            store=store,
            client_factory=factory,
            progress=lambda dataset, n: kill(f"walk:{dataset}"),
        )
    )
    store.dispose()
    # os._exit: a forked child must not run the parent's atexit handlers.
    os._exit(0 if report.success else EXIT_NOT_PUBLISHED)
