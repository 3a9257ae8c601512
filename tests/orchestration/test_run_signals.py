"""What a run tells Prefect, read back through the API of a real (harness) server:

* the library's ``sodtrack.*`` log lines are in the flow run's logs, at ``SODTRACK_LOG_LEVEL``,
  with the settings' secrets masked;
* each dataset published is a ``sodtrack.dataset.published`` event (resource
  ``sodtrack.dataset.<country>.<name>``; payload version, rows, watermark, location) and an
  asset materialisation with its API endpoints upstream; each quarantine a
  ``sodtrack.dataset.quarantined`` event; a country published in full
  ``sodtrack.nightly.completed``.

The nightly flow runs in-process under ``prefect_test_harness`` against loopback simulators:
a full one, then one whose catalog shrank to a fifth (the row-count bound quarantines
``services``).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from extract.helpers import extract_config
from prefectharness import open_harness

from sodtrack.simulator.app import create_app
from sodtrack.simulator.testing import serve_in_thread

pytestmark = [pytest.mark.xdist_group("orchestration-signals"), pytest.mark.prefect]

PLANTED = "planted-secret-7Hq2"


@pytest.fixture(scope="module")
def harness() -> Iterator[None]:
    with open_harness():
        yield


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[str, str]]:
    full = create_app(extract_config())
    shrunk = create_app(extract_config(services=6, variants=12))
    with serve_in_thread(full) as url, serve_in_thread(shrunk) as shrunk_url:
        yield url, shrunk_url


@pytest.fixture(autouse=True)
def _library_logger_restored() -> Iterator[None]:
    logger = logging.getLogger("sodtrack")
    handlers, level = list(logger.handlers), logger.level
    yield
    logger.handlers[:] = handlers
    logger.setLevel(level)


def _env(mp: pytest.MonkeyPatch, root: Path, base_url: str) -> None:
    mp.setenv("SODTRACK_BASE_URL", base_url)
    mp.setenv("SODTRACK_WAREHOUSE", str(root / "warehouse"))
    mp.setenv("SODTRACK_STATE_URL", f"sqlite:///{root / 'state.db'}")
    mp.setenv("SODTRACK_COUNTRY", "cl")
    mp.setenv("SODTRACK_ENV_FILE", "none")


def _logs(run_id: uuid.UUID) -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    async def read() -> list[Any]:
        async with get_client() as client:
            return await client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id]))
            )

    return asyncio.run(read())


def _events(prefix: str, since: str) -> list[dict[str, Any]]:
    from prefect.client.orchestration import get_client

    async def read() -> list[dict[str, Any]]:
        async with get_client() as client:
            response = await client._client.post(
                "/events/filter",
                json={
                    "filter": {
                        "event": {"prefix": [prefix]},
                        "occurred": {"since": since},
                        "order": "ASC",
                    },
                    "limit": 50,
                },
            )
            response.raise_for_status()
            events: list[dict[str, Any]] = response.json()["events"]
            return events

    return asyncio.run(read())


def _until(what: str, probe: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.5)


def _now_iso() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat()


def test_library_lines_reach_the_run_logs_masked(
    harness: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, servers: tuple[str, str]
) -> None:
    """A real library line (the warehouse's "published") and a planted one carrying the
    secret, both in the run's logs; the secret value nowhere in them."""
    from prefect import flow

    from tasks.runtime import load_settings, route_library_logs

    _env(monkeypatch, tmp_path, servers[0])
    monkeypatch.setenv("SODTRACK_CLIENT_SECRET", PLANTED)
    monkeypatch.setenv("SODTRACK_LOG_LEVEL", "info")

    @flow(name="library-logs-probe")
    def probe() -> uuid.UUID:
        from prefect.runtime import flow_run

        settings = load_settings()
        route_library_logs(settings)
        lib = logging.getLogger("sodtrack.client")
        lib.warning("token refused for secret %s (planted)", PLANTED)
        lib.info("an info line")
        lib.debug("a debug line, below SODTRACK_LOG_LEVEL")
        return uuid.UUID(flow_run.id)

    run_id = probe()
    logs = _until(
        "the probe's library lines",
        lambda: [r for r in _logs(run_id) if r.name.startswith("sodtrack")],
    )
    messages = [r.message for r in logs]
    assert any("token refused for secret **********" in m for m in messages), messages
    assert any("an info line" in m for m in messages), messages
    assert not any("debug line" in m for m in messages), messages
    assert not any(PLANTED in r.message for r in _logs(run_id))


def _run_nightly(datasets: list[str]) -> Any:
    from flows.nightly import nightly

    async def run() -> Any:
        return await nightly(datasets=datasets, return_state=True)

    return asyncio.run(run())


def test_published_and_quarantined_datasets_are_events_and_assets(
    harness: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, servers: tuple[str, str]
) -> None:
    since = _now_iso()
    _env(monkeypatch, tmp_path, servers[0])
    monkeypatch.setenv("SODTRACK_CLIENT_SECRET", "sim-secret")
    state = _run_nightly(["catalog"])
    assert state.is_completed(), state.message

    published = _until(
        "three published events",
        lambda: (lambda e: e if len(e) >= 3 else None)(
            _events("sodtrack.dataset.published", since)
        ),
    )
    by_resource = {e["resource"]["prefect.resource.id"]: e for e in published}
    assert set(by_resource) == {
        "sodtrack.dataset.cl.categories",
        "sodtrack.dataset.cl.services",
        "sodtrack.dataset.cl.variants",
    }
    services = by_resource["sodtrack.dataset.cl.services"]["payload"]
    from sodtrack.warehouse import Warehouse

    wh = Warehouse(str(tmp_path / "warehouse"))
    assert services["version"] == wh.current_version("services")
    assert services["rows"] == wh.read_current("services").count_rows() > 0
    assert services["location"] == wh.table_uri("services")
    assert "watermark" in services
    # emitted inside the run: Prefect relates the event to its flow run
    roles = {r.get("prefect.resource.role") for r in published[0]["related"]}
    assert "flow-run" in roles, published[0]["related"]

    assets = _until(
        "the services asset materialisation",
        lambda: [
            e
            for e in _events("prefect.asset.materialization.succeeded", since)
            if e["resource"]["prefect.resource.id"] == "sodtrack://cl/services"
        ],
    )
    upstream = {
        r["prefect.resource.id"]
        for r in assets[0]["related"]
        if r["prefect.resource.role"] == "asset"
    }
    assert upstream == {servers[0].rstrip("/") + "/api/v1/catalog/services"}
    assert assets[0]["payload"]["version"] == services["version"]

    completed = _until(
        "sodtrack.nightly.completed", lambda: _events("sodtrack.nightly.completed", since)
    )
    assert [e["resource"]["prefect.resource.id"] for e in completed] == ["sodtrack.nightly.cl"]

    # The catalog shrinks to a fifth: services quarantined, announced, not published again.
    since = _now_iso()
    monkeypatch.setenv("SODTRACK_BASE_URL", servers[1])
    state = _run_nightly(["services"])
    assert state.is_failed(), state.message
    quarantined = _until(
        "the quarantined event", lambda: _events("sodtrack.dataset.quarantined", since)
    )
    # the gate quarantines the family as a whole: each of its datasets is announced
    resources = {e["resource"]["prefect.resource.id"]: e["payload"] for e in quarantined}
    assert "sodtrack.dataset.cl.services" in resources, resources
    assert set(resources) <= {
        f"sodtrack.dataset.cl.{d}" for d in ("categories", "services", "variants")
    }
    services_q = resources["sodtrack.dataset.cl.services"]
    assert Path(services_q["quarantine_path"]).exists()
    assert any("row_count" in f for f in services_q["critical_failures"]), services_q
    assert not [
        e
        for e in _events("sodtrack.dataset.published", since)
        if e["resource"]["prefect.resource.id"] == "sodtrack.dataset.cl.services"
    ]
    assert not _events("sodtrack.nightly.completed", since)


def test_an_upload_with_rejected_rows_is_an_event(
    harness: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo's sample (three rows wrong on purpose) through the ``bulk-load`` flow: a dry
    run announces nothing, the real load ``sodtrack.upload.rows-rejected`` with its counts."""
    from datetime import date

    from flows.bulk_load import bulk_load
    from sodtrack.client import country_client
    from sodtrack.demo import write_sample
    from sodtrack.settings import Settings
    from sodtrack.simulator.testing import SIM_NOW, small_config

    app = create_app(small_config())
    with serve_in_thread(app) as url:
        _env(monkeypatch, tmp_path, url)
        monkeypatch.setenv("SODTRACK_CLIENT_SECRET", "sim-secret")
        monkeypatch.setenv("SODTRACK_OUTBOX", str(tmp_path / "outbox"))

        async def build() -> Any:
            async with country_client(Settings(), "cl") as client:
                return await write_sample(
                    client,
                    tmp_path / "sample.xlsx",
                    country="cl",
                    rows=24,
                    projects=3,
                    today=date.fromisoformat(SIM_NOW[:10]),
                )

        sample = asyncio.run(build())
        since = _now_iso()
        dry: Any = asyncio.run(bulk_load(path=str(sample.path), dry_run=True, return_state=True))  # type: ignore[call-overload,arg-type]
        assert dry.result(raise_on_failure=False)["rejected"] == 3
        state: Any = asyncio.run(bulk_load(path=str(sample.path), return_state=True))  # type: ignore[call-overload,arg-type]
        data = state.result(raise_on_failure=False)
        assert data["needs_a_person"] == 3

    events = _until(
        "the rows-rejected event", lambda: _events("sodtrack.upload.rows-rejected", since)
    )
    assert len(events) == 1, "a dry run announced rejected rows"
    event = events[0]
    assert event["resource"]["prefect.resource.id"] == f"sodtrack.upload.{data['upload_id']}"
    assert event["payload"]["rejected"] == 3
    assert event["payload"]["needs_a_person"] == 3
    assert event["payload"]["counts"]["created"] == 24 - 3
    assert event["payload"]["file_name"] == "sample.xlsx"


def test_one_masked_handler_even_with_prefects_extra_loggers() -> None:
    """``PREFECT_LOGGING_EXTRA_LOGGERS=sodtrack`` puts Prefect's unmasked API handler on the
    logger: routing replaces it, so each line is sent once, masked; routing twice adds
    nothing."""
    from prefect.logging.handlers import APILogHandler

    from sodtrack.settings import Settings
    from tasks.runtime import RunLogHandler, route_library_logs

    logger = logging.getLogger("sodtrack")
    logger.addHandler(APILogHandler())
    settings = Settings(client_secret=PLANTED, log_level="warning")  # type: ignore[arg-type]
    route_library_logs(settings)
    route_library_logs(settings)
    api_handlers = [h for h in logger.handlers if isinstance(h, APILogHandler)]
    assert len(api_handlers) == 1
    assert isinstance(api_handlers[0], RunLogHandler)
    assert PLANTED in api_handlers[0].secrets
    assert logger.level == logging.WARNING


def test_outside_a_run_nothing_is_sent(caplog: pytest.LogCaptureFixture) -> None:
    """The CLI logs through the same loggers: outside a run the handler stays silent (no
    "attempted to send logs without a flow run id" warning)."""
    import warnings

    from tasks.runtime import RunLogHandler

    handler = RunLogHandler()
    record = logging.LogRecord("sodtrack.client", logging.INFO, __file__, 1, "hello", None, None)
    with caplog.at_level(logging.DEBUG), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        handler.emit(record)
    said = [str(w.message) for w in caught] + [r.getMessage() for r in caplog.records]
    assert not [m for m in said if "flow run id" in m], said


def test_a_failed_announcement_does_not_fail_the_extraction(
    harness: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The data is published already: an announcement that fails is a warning on the run."""
    from prefect import flow

    import tasks.signals
    from sodtrack.extract.report import DatasetRun, FamilyRun
    from sodtrack.settings import Settings

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the Prefect API is away")

    monkeypatch.setattr(tasks.signals, "add_asset_metadata", broken)
    fam = FamilyRun(
        "catalog",
        "cl",
        datasets=[DatasetRun("services", "cl", status="published", version="v1", written=3)],
        status="published",
    )

    @flow(name="announce-probe")
    def probe() -> list[dict[str, Any]]:
        return tasks.signals.announce_family(
            Settings(warehouse=str(tmp_path / "wh")), fam, "nightly-probe"
        )

    state: Any = probe(return_state=True)
    assert state.is_completed(), state.message
    assert state.result() == []
