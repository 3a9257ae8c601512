"""One full extraction against the simulator in-process (the session's ``published`` run):
every family publishes, DuckDB reads every dataset back with the declared types, and the
counts the run records add up."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sodtrack.extract import RunReport

from .conftest import Published
from .helpers import (
    COUNTRY,
    DATASET_NAMES,
    Env,
    assert_bookings_equal,
    count,
    declared_duckdb_types,
    described_types,
    published_bookings,
)

# The modules continuing from the shared first run: one worker, one run (--dist loadgroup).
pytestmark = pytest.mark.xdist_group("extract-published")


@pytest.fixture(scope="module")
def full_run(published: Published) -> tuple[Env, RunReport]:
    """The first run's environment, read only."""
    return Env(published.root, published.app), published.report


def _by_dataset(report: RunReport) -> dict[str, Any]:
    return {d.dataset: d for d in report.datasets()}


def test_every_family_publishes(full_run: tuple[Env, RunReport]) -> None:
    env, report = full_run
    problems = [(f.family, f.status, f.error, f.critical_failures) for f in report.families]
    assert report.success, problems
    assert [f.family for f in report.families] == ["catalog", "coverage", "bookings"]
    assert sorted(_by_dataset(report)) == sorted(DATASET_NAMES)
    for d in report.datasets():
        assert d.status == "published"
        assert d.version == env.warehouse.current_version(d.dataset)
    assert report.warnings == []


@pytest.mark.parametrize("dataset", DATASET_NAMES)
def test_duckdb_reads_the_declared_types(full_run: tuple[Env, RunReport], dataset: str) -> None:
    env, _ = full_run
    assert described_types(env.warehouse.root, dataset) == declared_duckdb_types(dataset)


@pytest.mark.parametrize("dataset", DATASET_NAMES)
def test_rows_read_back_match_the_report_and_manifest(
    full_run: tuple[Env, RunReport], dataset: str
) -> None:
    env, report = full_run
    run = _by_dataset(report)[dataset]
    rows = count(env.warehouse.root, dataset, f"country = '{COUNTRY}'")
    version = env.warehouse.describe(dataset)
    assert version is not None
    assert rows == run.rows_total == run.written == version.total_rows > 0
    # The counts of the run are in the commit, for whoever audits a version later.
    stats = env.warehouse.history(dataset, 1)[0]["stats"]
    for key in ("received", "deduplicated", "written"):
        assert stats[key] == getattr(run, key), key


def test_counts_per_dataset(full_run: tuple[Env, RunReport], published: Published) -> None:
    _, report = full_run
    runs = _by_dataset(report)
    for dataset, size in published.sizes.items():
        run = runs[dataset]
        # Page-numbered walks: what the server announced, received and written agree.
        assert (run.expected, run.received, run.deduplicated, run.written) == (size, size, 0, size)
        assert run.completeness == "complete"
        assert run.pages >= 1
    postal = runs["coverage_postal_codes"]
    assert postal.received == postal.written > 0
    assert postal.completeness == "complete"  # as complete as the zones it is derived from
    bookings, changes = runs["bookings"], runs["booking_changes"]
    n = len(published.sim_after)
    assert bookings.received == changes.received == n
    assert bookings.written == bookings.rows_total == n
    assert bookings.deduplicated == bookings.received - n == 0
    assert changes.written == n
    assert bookings.expected is None  # a cursor walk announces no total
    assert bookings.completeness == "unchecked"


def test_the_run_report_is_written(full_run: tuple[Env, RunReport]) -> None:
    _, report = full_run
    assert report.report_path is not None
    data = json.loads(Path(report.report_path).read_text())
    assert data["success"] is True
    assert data["run_id"] == report.run_id
    written = {d["dataset"]: d for f in data["families"] for d in f["datasets"]}
    for d in report.datasets():
        for key in ("expected", "received", "deduplicated", "written", "status", "version"):
            assert written[d.dataset][key] == getattr(d, key)
    assert data["client"]["requests"] > 0


def test_bookings_equal_the_simulator_and_the_watermark_is_their_newest(
    full_run: tuple[Env, RunReport], published: Published
) -> None:
    env, report = full_run
    expected = published.sim_after
    assert_bookings_equal(published_bookings(env.warehouse.root), expected)
    newest = max(r["updated_at"] for r in expected.values())
    assert env.watermark() == newest
    family = report.families[-1]
    assert family.watermark_before is None
    assert family.watermark_after == newest.isoformat()
