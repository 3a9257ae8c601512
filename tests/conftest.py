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


# The units that are mostly waiting (a Prefect server and its worker, a 2,000-row upload
# through a 10 req/s rate limit, runs killed and resumed) start first, so that under
# ``pytest -n 4 --dist loadgroup`` they overlap everything else instead of trailing it.
# Order: longest first; everything else keeps its collection order.
LONG_RUNNING = (
    "tests/e2e/",
    "tests/loader_engine/test_acceptance.py",
    "tests/extract/test_interrupt.py",
    "tests/warehouse/test_interrupt.py",
    "tests/load_shell/",
    "tests/client/test_client_acceptance.py",
)


def _start_rank(item: pytest.Item) -> int:
    for rank, prefix in enumerate(LONG_RUNNING):
        if item.nodeid.startswith(prefix):
            return rank
    return len(LONG_RUNNING)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=_start_rank)  # stable: the rest keep their order
