"""Fixtures of the bulk-load shell tests: a loopback simulator configured through the
environment (as a user's shell would), sample files built against its catalog, and the Prefect
test harness (session-scoped, requested only by the flow tests of this folder)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from prefectharness import open_harness
from starlette.applications import Starlette

from sodtrack.bulkload.synth import synthesize_upload
from sodtrack.client import country_client
from sodtrack.demo import Sample, write_sample
from sodtrack.settings import Settings
from sodtrack.simulator.app import create_app
from sodtrack.simulator.testing import SIM_NOW, serve_in_thread, small_config

SIM_TODAY = date.fromisoformat(SIM_NOW[:10])


@dataclass(frozen=True, slots=True)
class Sim:
    app: Starlette
    url: str
    root: Path

    @property
    def outbox(self) -> Path:
        return self.root / "outbox"

    def writes(self) -> dict[str, int]:
        """Records the simulator committed, by type (tokens are not records)."""
        writes: dict[str, int] = self.app.state.sim.counters_snapshot()["writes"]
        return {k: v for k, v in writes.items() if k != "token"}

    def bookings(self) -> dict[str, Any]:
        """The test client's bookings in the simulator, by external reference."""
        state = self.app.state.sim.client("sim-client")
        return {b.external_reference: b for b in state.bookings.values()}


def _environment(monkeypatch: pytest.MonkeyPatch, url: str, root: Path) -> None:
    for name in ("SODTRACK_CLIENT_SECRET_BLOCK", "SODTRACK_ENV", "SODTRACK_INBOX"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SODTRACK_BASE_URL", url)
    monkeypatch.setenv("SODTRACK_COUNTRY", "cl")
    monkeypatch.setenv("SODTRACK_CLIENT_ID", "sim-client")
    monkeypatch.setenv("SODTRACK_CLIENT_SECRET", "sim-secret")
    monkeypatch.setenv("SODTRACK_WAREHOUSE", str(root / "warehouse"))
    monkeypatch.setenv("SODTRACK_STATE_URL", f"sqlite:///{root / 'state' / 'state.db'}")
    monkeypatch.setenv("SODTRACK_OUTBOX", str(root / "outbox"))


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Sim]:
    """A small simulator (fixed clock, no rate limit) on loopback; ``SODTRACK_*`` point at it
    and at ``tmp_path`` (warehouse, state/ledger, outbox)."""
    app = create_app(small_config())
    with serve_in_thread(app) as url:
        _environment(monkeypatch, url, tmp_path)
        yield Sim(app, url, tmp_path)


def clean_file(path: Path, *, rows: int = 20, projects: int = 3, seed: int = 7) -> Path:
    """A file whose every row should load (built against the simulator's live catalog)."""

    async def build() -> None:
        async with country_client(Settings(), "cl") as client:
            await synthesize_upload(
                client,
                path,
                country="cl",
                rows=rows,
                projects=projects,
                seed=seed,
                today=SIM_TODAY,
            )

    asyncio.run(build())
    return path


def file_with_rejects(path: Path, *, rows: int = 24, projects: int = 3) -> Sample:
    """The demo's sample: three rows wrong on purpose (unknown SKU, uncovered postal code,
    a payment above its project's total)."""

    async def build() -> Sample:
        async with country_client(Settings(), "cl") as client:
            return await write_sample(
                client, path, country="cl", rows=rows, projects=projects, today=SIM_TODAY
            )

    return asyncio.run(build())


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    with open_harness():
        yield
