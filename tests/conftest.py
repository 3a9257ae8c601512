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


# The longest units start first, one per worker, so that they overlap everything else
# instead of trailing it. How xdist hands out work (``--dist loadgroup
# --no-loadscope-reorder``, as ``make test`` runs it): units (a test, or an ``xdist_group``)
# in collection order, one to each worker, then one more to a worker whenever it has two or
# fewer tests pending. So the four longest come first, in the order that gives each its own
# worker: the 2,000-row upload under faults (~400 s of API time through a 10 req/s limit, on
# virtual time: ~20 s of work), the Prefect deployment module (one group, one server), the
# kill -9 upload, the killed extraction runs.
# Everything else keeps its collection order. Measure with ``PYTEST_ADDOPTS=--durations=25``.
LONG_RUNNING = (
    "tests/bulkload/engine/test_acceptance.py::test_2000_rows",
    "tests/e2e/",
    "tests/bulkload/engine/test_acceptance.py::test_kill_9",
    "tests/extract/test_interrupt.py",
)


def _start_rank(item: pytest.Item) -> int:
    for rank, prefix in enumerate(LONG_RUNNING):
        if item.nodeid.startswith(prefix):
            return rank
    return len(LONG_RUNNING)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=_start_rank)  # stable: the rest keep their order
