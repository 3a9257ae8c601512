"""Shared fixtures: a small, fast simulator (in-process and over a real socket).

``sim_config`` is small-scale (seeds in well under a second) with a fixed clock and no rate
limit; tests that need other settings build their own ``SimConfig`` (``dataclasses.replace``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.applications import Starlette

from sodtrack.simulator.app import create_app
from sodtrack.simulator.config import SimConfig
from sodtrack.simulator.testing import serve_in_thread, small_config


@pytest.fixture
def sim_config() -> SimConfig:
    return small_config()


@pytest.fixture
def sim_app(sim_config: SimConfig) -> Starlette:
    return create_app(sim_config)


@pytest.fixture
def sim_server(sim_app: Starlette) -> Iterator[str]:
    """Base URL of ``sim_app`` under real uvicorn on loopback."""
    with serve_in_thread(sim_app) as base_url:
        yield base_url
