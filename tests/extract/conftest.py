"""One full in-process extraction shared by the modules that start from published data.

A full run costs seconds of Great Expectations work; the end-to-end checks read it as it is,
and the incremental and validation-failure scenarios each continue from their own *copy* of
its warehouse and state store, against the same simulator. The simulator moves on as those
scenarios advance its clock, so whatever must be compared with the simulator *at the time
of the first run* is snapshotted here.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette

from sodtrack.extract import RunReport
from sodtrack.simulator.app import create_app

from .helpers import Env, extract_config, published_bookings, sim_bookings


@dataclass(frozen=True)
class Published:
    app: Starlette
    root: Path
    report: RunReport
    sim_before: dict[str, dict[str, Any]]
    """The simulator's bookings when the first run started ..."""
    sim_after: dict[str, dict[str, Any]]
    """... and when it ended."""
    bookings: dict[str, dict[str, Any]]
    """The bookings it published."""
    sizes: dict[str, int]
    """Catalog and coverage sizes of the simulator."""
    watermark: Any
    watermarks_while_publishing: list[Any]
    """The stored bookings watermark at every publish step of the run."""

    def copy(self, target: Path, **env: Any) -> Env:
        """A new environment continuing from a copy of the first run's warehouse and state."""
        shutil.copytree(self.root, target, symlinks=True)
        return Env(target, self.app, **env)


@pytest.fixture(scope="session")
def published(tmp_path_factory: pytest.TempPathFactory) -> Published:
    app = create_app(extract_config(bookings=2000))
    env = Env(tmp_path_factory.mktemp("published"), app)
    watermarks: list[Any] = []
    env.on_step = lambda step: (
        watermarks.append(env.watermark()) if step == "publish:checked" else None
    )
    before = sim_bookings(app)
    report = env.run()
    env.on_step = None
    sim = env.sim
    sizes = {
        "categories": sim.config.categories,
        "services": sim.config.services,
        "variants": len(sim.state.shared.variants),
        "coverage_zones": sim.config.zones,
    }
    return Published(
        app,
        env.root,
        report,
        before,
        sim_bookings(app),
        published_bookings(env.warehouse.root),
        sizes,
        env.watermark(),
        watermarks,
    )
