"""What every task needs, built from the settings at the edge of a run."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from pydantic import SecretStr

from sodtrack.client import SodtrackClient
from sodtrack.settings import Settings
from sodtrack.state import NamedLock, StateStore
from sodtrack.warehouse import Warehouse


def load_settings(warehouse: str | None = None) -> Settings:
    """Settings from the environment (``SODTRACK_*``, ``.env``), with a flow's override.

    When ``SODTRACK_CLIENT_SECRET_BLOCK`` names a Prefect ``Secret`` block, the client secret
    is that block's value (read from the Prefect API the run talks to) and
    ``SODTRACK_CLIENT_SECRET`` is ignored: credentials live in Prefect, not in the worker's
    environment or the deployment file.
    """
    settings = Settings()
    update: dict[str, object] = {}
    if warehouse:
        update["warehouse"] = warehouse
    if settings.client_secret_block:
        update["client_secret"] = SecretStr(secret_from_block(settings.client_secret_block))
    return settings.model_copy(update=update) if update else settings


def secret_from_block(name: str) -> str:
    """The value of the Prefect ``Secret`` block ``name`` (sync, from flows of either kind)."""
    from prefect.blocks.system import Secret

    block: Secret[str] = Secret.load(name, _sync=True)  # type: ignore[call-arg,assignment]
    value = block.get()
    if not isinstance(value, str) or not value:
        raise ValueError(f"Secret block {name!r} must hold a non-empty string")
    return value


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


@contextlib.asynccontextmanager
async def state_lock(
    store: StateStore, name: str, *, timeout_s: float = 6 * 3600.0
) -> AsyncIterator[NamedLock]:
    """``store.lock(name)`` for async flows: waiting for the lock happens in a thread, so a
    run blocked on one country's lock never stalls the other countries of its event loop.

    The names in use: ``nightly:<country>`` (one extraction of a country at a time, across
    processes and machines sharing ``SODTRACK_STATE_URL``) and ``load:<sha256>`` (one load of
    a file at a time)."""
    manager = store.lock(name, timeout_s=timeout_s)
    held = await asyncio.to_thread(manager.__enter__)
    try:
        yield held
    except BaseException as exc:
        if not await asyncio.to_thread(manager.__exit__, type(exc), exc, exc.__traceback__):
            raise
    else:
        await asyncio.to_thread(manager.__exit__, None, None, None)


def data_dir(settings: Settings, name: str) -> Path:
    """Folders beside the warehouse for run reports and Data Docs (local runs)."""
    root = Path(settings.warehouse)
    return (root.parent if root.name == "warehouse" else root) / name


def quiet_libraries() -> None:
    """httpx logs every request at INFO: our client logs what matters, without secrets."""
    for name in ("httpx", "httpcore", "great_expectations"):
        logging.getLogger(name).setLevel(logging.WARNING)
