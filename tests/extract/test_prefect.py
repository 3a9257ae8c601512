"""The Prefect shell: the ``nightly`` flow under ``prefect_test_harness`` against a loopback
simulator configured through the environment, and the tasks' logic through ``.fn``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prefect.logging import disable_run_logger
from prefectharness import open_harness

from sodtrack.contract.countries import get_country
from sodtrack.extract import Family
from sodtrack.extract.runner import CountryExtraction
from sodtrack.settings import Settings
from sodtrack.simulator.app import create_app
from sodtrack.simulator.testing import serve_in_thread
from sodtrack.validation.suites import P_CATEGORY_IDS, P_SERVICE_IDS, P_VARIANT_IDS
from tasks.runtime import load_settings

from .helpers import (
    DATASET_NAMES,
    assert_bookings_equal,
    extract_config,
    published_bookings,
    sim_bookings,
    sim_of,
)

pytestmark = [pytest.mark.xdist_group("extract-prefect"), pytest.mark.prefect, pytest.mark.slow]


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    with open_harness():
        yield


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[tuple[object, Path]]:
    app = create_app(extract_config())
    with serve_in_thread(app) as base_url:
        monkeypatch.setenv("SODTRACK_BASE_URL", base_url)
        monkeypatch.setenv("SODTRACK_WAREHOUSE", str(tmp_path / "warehouse"))
        monkeypatch.setenv("SODTRACK_STATE_URL", f"sqlite:///{tmp_path / 'state.db'}")
        monkeypatch.setenv("SODTRACK_COUNTRY", "cl")
        yield app, tmp_path


def test_nightly_flow_publishes_and_leaves_artifacts(
    prefect_harness: None, env: tuple[object, Path]
) -> None:
    from prefect.artifacts import Artifact

    from flows.nightly import nightly

    app, root = env

    async def run() -> Any:
        return await nightly(return_state=True)

    state = asyncio.run(run())
    assert state.is_completed(), state.message
    result = state.result()
    assert result["success"] is True
    name, started, limit = asyncio.run(_run_name_and_limit(state, "sodtrack-nightly-cl"))
    assert name == f"nightly-cl-{started.astimezone(get_country('cl').tz).date().isoformat()}"
    assert (limit.limit, limit.active_slots) == (1, 0), "created, and released after the run"
    run_id = result["run_id"]
    datasets = {d["dataset"]: d for f in result["families"] for d in f["datasets"]}
    assert sorted(datasets) == sorted(DATASET_NAMES)
    assert all(d["status"] == "published" for d in datasets.values())

    report_path = root / "reports" / f"{run_id}.json"
    assert result["report_path"] == str(report_path)
    assert json.loads(report_path.read_text())["success"] is True

    summary: Any = Artifact.get("nightly-summary")
    assert summary is not None
    assert summary.type == "markdown"
    assert run_id in str(summary.data)
    assert "all datasets published" in str(summary.data)
    counts: Any = Artifact.get("nightly-counts")
    assert counts is not None
    assert counts.type == "table"
    rows: Any = json.loads(counts.data) if isinstance(counts.data, str) else counts.data
    assert {r["dataset"] for r in rows} == set(DATASET_NAMES)

    assert_bookings_equal(
        published_bookings(root / "warehouse"),
        sim_bookings(app),  # type: ignore[arg-type]
    )
    assert sim_of(app).counters.requests  # type: ignore[arg-type]


async def _run_name_and_limit(state: Any, limit: str) -> tuple[str, datetime, Any]:
    """The run's name and scheduled start (what its name is made of), and the limit."""
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        run = await client.read_flow_run(state.state_details.flow_run_id)
        assert run.expected_start_time is not None
        found = await client.read_global_concurrency_limit_by_name(limit)
        return run.name, run.expected_start_time, found


def test_nightly_run_names_say_the_countries_and_the_local_day() -> None:
    from flows.nightly import nightly_run_name

    # 02:00 in Santiago on 3 December is 05:00 UTC; 23:30 UTC on the 2nd is still the 2nd there
    assert nightly_run_name(["cl"], datetime(2026, 12, 3, 5, tzinfo=UTC), "pe") == (
        "nightly-cl-2026-12-03"
    )
    assert nightly_run_name(None, datetime(2026, 12, 3, 1, 30, tzinfo=UTC), "cl") == (
        "nightly-cl-2026-12-02"
    )
    assert nightly_run_name(["CL", "pe"], datetime(2026, 12, 3, 12, tzinfo=UTC), "cl") == (
        "nightly-cl-pe-2026-12-03"
    )


def test_settings_and_folders_from_the_environment(env: tuple[object, Path]) -> None:
    _, root = env
    settings = load_settings()
    assert settings.warehouse == str(root / "warehouse")
    assert settings.base_url_for("cl").startswith("http://127.0.0.1:")
    assert load_settings("/elsewhere/wh").warehouse == "/elsewhere/wh"
    assert settings.data_dir("reports") == root / "reports"
    assert Settings(warehouse="/x/lake").data_dir("docs") == Path("/x/lake/docs")


def _family_tasks(
    settings: Settings,
    cx: CountryExtraction,
    family: Family,
    references: dict[str, list[str]],
    docs_dir: str | None,
) -> Any:
    """The stage task, then the check task, as two processes would run them (values in and
    out)."""
    from tasks.extract import check_family_task, stage_family_task

    with disable_run_logger():
        staged = asyncio.run(
            stage_family_task.fn(settings, cx, family, full_refresh=False, lookback_minutes=10)
        )
        return asyncio.run(
            check_family_task.fn(settings, cx, staged, references, docs_dir=docs_dir)
        )


def test_family_task_logic(env: tuple[object, Path]) -> None:
    """The task bodies without the engine: one family (the catalog: the others check their
    references against it), its client's counters, its Data Docs."""
    _, root = env
    settings = load_settings()
    cx = CountryExtraction("cl", "unit-cl", datetime.now(UTC))
    done = _family_tasks(settings, cx, Family.CATALOG, {}, str(root / "docs"))
    fam = done.run
    assert fam.status == "published", (fam.error, fam.critical_failures)
    assert [d.dataset for d in fam.datasets] == ["categories", "services", "variants"]
    # the ids the next family checks against: the catalog just staged, returned as a value
    assert set(done.references) == {P_CATEGORY_IDS, P_SERVICE_IDS, P_VARIANT_IDS}
    assert all(done.references.values())
    assert fam.client["requests_total"] > 0
    assert fam.docs_path is not None
    assert Path(fam.docs_path).exists()


def test_the_flow_tasks_extract_a_warehouse_without_bookings_in_full(
    env: tuple[object, Path],
) -> None:
    """The flow runs the library's rule (``stage_family``): a warehouse without bookings
    gives a full extraction, and the watermark lands in the commits."""
    app, root = env
    settings = load_settings()
    cx = CountryExtraction("cl", "moved-cl", datetime.now(UTC))
    families = []
    references: dict[str, list[str]] = {}
    for family in (Family.CATALOG, Family.COVERAGE, Family.BOOKINGS):
        # each call as a separate process would make it: arguments in, a value out
        done = _family_tasks(settings, cx, family, references, None)
        families.append(done.run)
        references = done.references
    bookings = families[-1]
    assert bookings.status == "published", (bookings.error, bookings.critical_failures)
    assert bookings.full
    assert bookings.watermark_before is None
    assert bookings.watermark_after is not None
    assert_bookings_equal(
        published_bookings(root / "warehouse"),
        sim_bookings(app),  # type: ignore[arg-type]
    )
