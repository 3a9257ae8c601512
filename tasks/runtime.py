"""What every task needs, built from the settings at the edge of a run.

Library log lines in the run's logs
-----------------------------------
The library logs to ``sodtrack.*`` loggers ("lock lost", "quarantined", "incomplete walk")
and never imports Prefect. :func:`route_library_logs` (called by ``check-configuration``, the
first task of every flow, and by the tasks that may run in another process) attaches one
:class:`RunLogHandler` to the ``sodtrack`` logger of the run's process, at
``SODTRACK_LOG_LEVEL`` (default ``INFO``): every library line logged inside a flow or task
run is sent to that run's logs in the Prefect UI, with the secrets of the settings (client
secret, notify webhook URL, the state database's password) masked. Lines outside a run (the
CLI) are not sent. This is chosen over ``PREFECT_LOGGING_EXTRA_LOGGERS=sodtrack``, which
needs every worker's environment to carry it and does not mask: when that setting is present
anyway, its unmasked handler is replaced by this one, so no line is sent twice.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Final

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import MissingContextError
from prefect.logging.handlers import APILogHandler
from pydantic import SecretStr

from sodtrack.errors import ConfigurationError, InvalidSetting
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
    from sodtrack.bulkload.run import outbox_root
    from sodtrack.objstore import is_remote

    logger = get_run_logger()
    settings, origin = resolve(warehouse)
    route_library_logs(settings)
    folders: list[tuple[str | Path, str]] = []
    if warehouse_outputs:
        label = "warehouse" if warehouse else "SODTRACK_WAREHOUSE"
        root: str | Path = (
            settings.warehouse if is_remote(settings.warehouse) else Path(settings.warehouse)
        )
        folders += [(root, label), (settings.output_location("reports"), label)]
        folders.append((settings.output_location("docs"), label))
    if outbox_for is not None:
        label = "outbox" if outbox else "SODTRACK_OUTBOX"
        folders.append((outbox_root(settings, outbox_for, outbox), label))
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


def flow_timeout_s() -> float:
    """``SODTRACK_FLOW_TIMEOUT_S`` for the flows' decorators (``timeout_seconds``).

    Read when a flow's module is imported: a process worker imports it afresh in each flow
    run's process, after the pull step moved to the checkout, so this is the worker's setting
    at the start of the run. A value that does not validate falls back to the default here;
    the run's ``check-configuration`` task then fails it with the setting named.
    """
    try:
        return resolve_settings()[0].flow_timeout_s
    except ConfigurationError:
        default: float = Settings.model_fields["flow_timeout_s"].default
        return default


COUNTRY_LIMIT_PREFIX = "sodtrack-nightly-"
"""Global concurrency limits ``sodtrack-nightly-<country>`` (limit 1): one nightly
extraction of a country at a time, queued by Prefect."""


async def ensure_country_limit(country: str) -> str:
    """The name of the country's global concurrency limit, created (limit 1) if missing.

    An operator may raise it or set it inactive (``prefect gcl update``/``disable``); it is
    only created, never changed, here. Two runs creating it at once: one gets 409, fine.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    name = COUNTRY_LIMIT_PREFIX + country
    async with get_client() as client:
        try:
            await client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            with contextlib.suppress(ObjectAlreadyExists):
                await client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=name, limit=1)
                )
    return name


def open_warehouse(settings: Settings) -> Warehouse:
    return Warehouse.from_settings(settings)


def open_state(settings: Settings) -> StateStore:
    return StateStore(settings.state_url)


def quiet_libraries() -> None:
    """httpx logs every request at INFO: our client logs what matters, without secrets."""
    for name in ("httpx", "httpcore", "great_expectations"):
        logging.getLogger(name).setLevel(logging.WARNING)


LIBRARY_LOGGER: Final = "sodtrack"
MASK: Final = "**********"


class RunLogHandler(APILogHandler):
    """Prefect's API log handler for the library's loggers: sends a line to the logs of the
    flow run it was logged in (nothing outside a run), with known secrets masked."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "flow_run_id", None) is None:
            from prefect.context import get_run_context

            try:
                get_run_context()
            except MissingContextError:  # the CLI, a test outside a run: not Prefect's line
                return
        super().emit(record)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, MASK)
        return text


def _secrets_of(settings: Settings) -> set[str]:
    values = {settings.client_secret.get_secret_value()}
    if settings.notify_webhook_url is not None:
        values.add(settings.notify_webhook_url.get_secret_value())
    try:
        from sqlalchemy.engine import make_url

        password = make_url(settings.state_url).password
    except Exception:  # not a URL SQLAlchemy reads: nothing to mask in it
        password = None
    if password:
        values.add(str(password))
    return {v for v in values if len(v) >= 4}  # "a" masked everywhere would garble lines


def route_library_logs(settings: Settings) -> RunLogHandler:
    """Send ``sodtrack.*`` log lines to the current run's Prefect logs at
    ``SODTRACK_LOG_LEVEL``, masking the settings' secrets (idempotent: one handler per
    process, whose secrets and level follow the latest settings)."""
    logger = logging.getLogger(LIBRARY_LOGGER)
    logger.setLevel(settings.log_level)
    handler = next((h for h in logger.handlers if isinstance(h, RunLogHandler)), None)
    for other in [h for h in logger.handlers if isinstance(h, APILogHandler)]:
        if other is not handler:  # PREFECT_LOGGING_EXTRA_LOGGERS=sodtrack: unmasked, replaced
            logger.removeHandler(other)
    if handler is None:
        handler = RunLogHandler()
        logger.addHandler(handler)
    handler.secrets |= _secrets_of(settings)
    return handler
