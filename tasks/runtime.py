"""What every task needs, built from the settings at the edge of a run."""

from __future__ import annotations

import logging
from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from pydantic import SecretStr

from sodtrack.errors import InvalidSetting
from sodtrack.preflight import preflight
from sodtrack.settings import Origin, Settings, resolve_settings
from sodtrack.state import StateStore
from sodtrack.warehouse import Warehouse


def resolve(warehouse: str | None = None) -> tuple[Settings, Origin]:
    """Settings from the environment (``SODTRACK_*``, the ``.env`` file of
    :func:`~sodtrack.settings.resolve_settings`), with a flow's override, and their origin.

    When ``SODTRACK_CLIENT_SECRET_BLOCK`` names a Prefect ``Secret`` block, the client secret
    is that block's value (read from the Prefect API the run talks to) and
    ``SODTRACK_CLIENT_SECRET`` is ignored: credentials live in Prefect, not in the worker's
    environment or the deployment file. A value that does not validate, or a block that
    cannot be read, is an :class:`~sodtrack.errors.InvalidSetting`.
    """
    settings, origin = resolve_settings({"warehouse": warehouse})
    if settings.client_secret_block:
        name = settings.client_secret_block
        try:
            secret = secret_from_block(name)
        except ValueError as exc:
            raise InvalidSetting(
                f"SODTRACK_CLIENT_SECRET_BLOCK: {exc}", setting="SODTRACK_CLIENT_SECRET_BLOCK"
            ) from None
        settings = settings.model_copy(update={"client_secret": SecretStr(secret)})
        origin = origin.with_source("client_secret", f"Prefect Secret block {name!r}")
    return settings, origin


def load_settings(warehouse: str | None = None) -> Settings:
    """:func:`resolve` without the origin."""
    return resolve(warehouse)[0]


@task(name="check-configuration", retries=0, cache_policy=NO_CACHE)
async def check_configuration_task(
    countries: list[str] | None = None,
    *,
    warehouse: str | None = None,
    warehouse_outputs: bool = False,
    outbox_for: str | None = None,
    outbox: str | None = None,
) -> Settings:
    """A flow's first task: :func:`sodtrack.preflight.preflight` (settings, base URL,
    credentials and the token's country, state database, output folders), the notice in the
    run log, and the checked settings. A ``ConfigurationError`` fails it at once (no retries:
    no retry fixes a setting); the flow turns it into its ``Failed`` state's message.

    ``warehouse_outputs``: the warehouse and its reports/docs folders must be writable (the
    nightly run); ``outbox_for``: the upload file whose results folder (``outbox``, else
    ``SODTRACK_OUTBOX``, else beside the file) must be writable (the bulk load).
    """
    from sodtrack.bulkload import outbox_root

    logger = get_run_logger()
    settings, origin = resolve(warehouse)
    folders: list[tuple[str | Path, str]] = []
    if warehouse_outputs:
        label = "warehouse" if warehouse else "SODTRACK_WAREHOUSE"
        root = Path(settings.warehouse)
        folders += [(root, label), (settings.data_dir("reports"), label)]
        folders.append((settings.data_dir("docs"), label))
    if outbox_for is not None:
        label = "outbox" if outbox else "SODTRACK_OUTBOX"
        folders.append((outbox_root(settings, Path(outbox_for), outbox), label))
    report = await preflight(settings, origin, countries=countries or [], outputs=folders)
    for line in report.notice():
        logger.info("%s", line)
    return settings


def secret_from_block(name: str) -> str:
    """The value of the Prefect ``Secret`` block ``name`` (sync, from flows of either kind)."""
    from prefect.blocks.system import Secret

    block: Secret[str] = Secret.load(name, _sync=True)  # type: ignore[call-arg,assignment]
    value = block.get()
    if not isinstance(value, str) or not value:
        raise ValueError(f"Secret block {name!r} must hold a non-empty string")
    return value


def open_warehouse(settings: Settings) -> Warehouse:
    return Warehouse.from_settings(settings)


def open_state(settings: Settings) -> StateStore:
    return StateStore(settings.state_url)


def quiet_libraries() -> None:
    """httpx logs every request at INFO: our client logs what matters, without secrets."""
    for name in ("httpx", "httpcore", "great_expectations"):
        logging.getLogger(name).setLevel(logging.WARNING)
