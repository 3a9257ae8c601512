"""What every task needs, built from the settings at the edge of a run."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from sodtrack.client import SodtrackClient
from sodtrack.settings import Settings
from sodtrack.state import StateStore
from sodtrack.warehouse import Warehouse


def load_settings(warehouse: str | None = None) -> Settings:
    """Settings from the environment (``SODTRACK_*``, ``.env``), with a flow's override."""
    settings = Settings()
    if warehouse:
        settings = settings.model_copy(update={"warehouse": warehouse})
    return settings


@contextlib.asynccontextmanager
async def country_client(settings: Settings, country: str) -> AsyncIterator[SodtrackClient]:
    """A client for one country's API (its own token, limiter and stats)."""
    client = SodtrackClient.from_settings(settings.model_copy(update={"country": country}))
    async with client:
        yield client


def open_warehouse(settings: Settings) -> Warehouse:
    return Warehouse(settings.warehouse)


def open_state(settings: Settings) -> StateStore:
    return StateStore(settings.state_url)


def data_dir(settings: Settings, name: str) -> Path:
    """Folders beside the warehouse for run reports and Data Docs (local runs)."""
    root = Path(settings.warehouse)
    return (root.parent if root.name == "warehouse" else root) / name


def quiet_libraries() -> None:
    """httpx logs every request at INFO: our client logs what matters, without secrets."""
    for name in ("httpx", "httpcore", "great_expectations"):
        logging.getLogger(name).setLevel(logging.WARNING)
