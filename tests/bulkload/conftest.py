"""Loader engine test fixtures: the simulator app and a SQLite ledger per test (modules that
need another kind override them), and LibreOffice (see ``tests/libreoffice.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from libreoffice import register_marker, soffice
from s3server import S3Server, moto_server
from starlette.applications import Starlette

from bulkload.helpers import ledger_for
from sodtrack.bulkload.engine.ledger import Ledger
from sodtrack.simulator.app import create_app
from sodtrack.simulator.config import SimConfig

__all__ = ["soffice"]


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with ledger_for("sqlite", tmp_path) as led:
        yield led


@pytest.fixture
def app(sim_config: SimConfig) -> Starlette:
    return create_app(sim_config)


def pytest_configure(config: pytest.Config) -> None:
    register_marker(config)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's standalone S3 server on loopback (``tests/s3server.py``), one per session."""
    with moto_server() as server:
        yield server
