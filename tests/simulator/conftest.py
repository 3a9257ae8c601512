"""Fixtures of the simulator's own tests (in-process, small scale)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from sodtrack.simulator.app import create_app
from sodtrack.simulator.sim import Simulator
from sodtrack.simulator.testing import SimulatorTransport, small_config

from .helpers import token


@pytest.fixture
def app() -> Starlette:
    return create_app(small_config())


@pytest.fixture
def sim(app: Starlette) -> Simulator:
    simulator: Simulator = app.state.sim
    return simulator


@pytest.fixture
async def http(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=SimulatorTransport(app), base_url="http://sim"
    ) as client:
        yield client


@pytest.fixture
async def auth(http: httpx.AsyncClient) -> dict[str, str]:
    return await token(http)
