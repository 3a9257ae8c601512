"""Critical validation failures block publishing; warnings publish and are reported.

The session's first run published everything (a copy of it is used here). Then each test
serves the same simulator through a transport that corrupts what one family receives, runs
the extraction, and checks: the
family (every dataset of it) is quarantined under ``<root>/_quarantine/<dataset>/<run_id>/``
with ``validation_report.json``, the previous versions stay current (DuckDB still reads them,
unchanged), the bookings watermark does not move, and the run report says why.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from sodtrack.extract import FAMILIES, Family, RunReport

from .conftest import Published
from .helpers import (
    COUNTRY,
    Env,
    HookTransport,
    count,
    is_list,
    json_of,
    json_response,
    published_rows,
)

Edit = Callable[[dict[str, Any]], dict[str, Any]]

# The modules continuing from the shared first run: one worker, one run (--dist loadgroup).
pytestmark = pytest.mark.xdist_group("extract-published")


class Corrupt:
    """A transport hook that rewrites every page of ``GET /api/v1/<resource>``."""

    def __init__(self, resource: str, edit: Edit) -> None:
        self.resource = resource
        self.edit = edit
        self.pages = 0

    async def __call__(
        self, request: httpx.Request, response: httpx.Response, transport: HookTransport
    ) -> httpx.Response:
        if not is_list(request, self.resource) or response.status_code != 200:
            return response
        self.pages += 1
        return json_response(response, self.edit(await json_of(response)))


def corrupted_run(env: Env, resource: str, edit: Edit, *datasets: str) -> RunReport:
    corrupt = Corrupt(resource, edit)
    env.hook = corrupt
    try:
        return env.run(*datasets)
    finally:
        env.hook = None
        assert corrupt.pages > 0, f"nothing of {resource} went through the corruption"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, published: Published) -> Env:
    """A copy of the session's first run: everything published once."""
    return published.copy(tmp_path_factory.mktemp("gate") / "env")


@pytest.fixture
def served(env: Env) -> Env:
    """The shared environment, with the simulator a day on (bookings changed)."""
    env.sim.advance(86400)
    return env


def _current(env: Env) -> dict[str, tuple[str | None, int]]:
    root = env.warehouse.root
    return {
        ds: (env.warehouse.current_version(ds), count(root, ds))
        for datasets in FAMILIES.values()
        for ds in datasets
    }


def _assert_quarantined(
    env: Env,
    report: RunReport,
    family: Family,
    before: dict[str, tuple[str | None, int]],
    reason: str,
) -> dict[str, Any]:
    """The family is quarantined whole, with its report; nothing current changed."""
    assert not report.success
    (fam,) = [f for f in report.families if f.family == family]
    assert fam.status == "quarantined", (fam.status, fam.error)
    assert any(reason in c for c in fam.critical_failures), fam.critical_failures
    assert _current(env) == before
    reports: list[dict[str, Any]] = []
    for run in fam.datasets:
        assert run.status == "quarantined"
        assert run.version is None
        path = Path(env.warehouse.root, "_quarantine", run.dataset, f"{report.run_id}-{COUNTRY}")
        assert run.quarantine_path == str(path)
        data = json.loads((path / "validation_report.json").read_text())
        assert data["family"] == family
        assert any(reason in c for c in data["critical_failures"])
        assert {d["dataset"] for d in data["datasets"]} == set(FAMILIES[family])
        reports.append(data)
    # The run report (JSON) says the same.
    assert report.report_path is not None
    written = json.loads(Path(report.report_path).read_text())
    assert written["success"] is False
    (wfam,) = [f for f in written["families"] if f["family"] == family]
    assert wfam["status"] == "quarantined"
    assert wfam["critical_failures"] == fam.critical_failures
    assert "quarantined" in report.summary_markdown()
    return reports[0]


def test_a_bad_postal_code_quarantines_the_bookings(served: Env) -> None:
    env = served
    before, watermark = _current(env), env.watermark()

    def bad_postal_code(page: dict[str, Any]) -> dict[str, Any]:
        assert page["data"], "the walk must have bookings to corrupt"
        page["data"][0]["address"]["postal_code"] = "ABC-123"
        return page

    report = corrupted_run(env, "bookings", bad_postal_code, "bookings")
    data = _assert_quarantined(env, report, Family.BOOKINGS, before, "address_postal_code")
    assert env.watermark() == watermark, "the watermark moved past quarantined data"
    fam = report.families[0]
    assert fam.watermark_after is None
    # the quarantined rows are kept for inspection, beside the report
    assert fam.datasets[0].quarantine_path is not None
    assert list(Path(fam.datasets[0].quarantine_path).rglob("*.parquet"))
    failed = data["validation"]["bookings"]
    assert failed["success"] is False

    # Once the source is clean again, the next run publishes and catches up from the
    # watermark that was kept.
    again = env.run("bookings")
    assert again.success
    caught_up = env.watermark()
    assert caught_up is not None
    assert watermark is not None
    assert caught_up > watermark


def test_a_foreign_currency_quarantines_the_catalog(served: Env) -> None:
    env = served
    before = _current(env)

    def dollars(page: dict[str, Any]) -> dict[str, Any]:
        page["data"][-1]["currency"] = "USD"
        return page

    report = corrupted_run(env, "catalog/services", dollars, "catalog")
    _assert_quarantined(env, report, Family.CATALOG, before, "currency")
    services = published_rows(env.warehouse.root, "services")
    assert {r["currency"] for r in services} == {"CLP"}


def only_the_first(keep: int) -> Edit:
    """Pages of a list that has ``keep`` items, consistently (its totals agree)."""

    def fewer(page: dict[str, Any]) -> dict[str, Any]:
        meta = page["meta"]
        first = (meta["page"] - 1) * meta["page_size"]
        page["data"] = page["data"][: max(0, keep - first)]
        meta["total_items"] = keep
        meta["total_pages"] = max(1, -(-keep // meta["page_size"]))
        return page

    return fewer


def test_a_row_count_drop_beyond_the_bound_quarantines_the_catalog(served: Env) -> None:
    """The API suddenly serves a fifth of the services."""
    env = served
    before = _current(env)
    keep = before["services"][1] // 5
    report = corrupted_run(env, "catalog/services", only_the_first(keep), "catalog")
    data = _assert_quarantined(env, report, Family.CATALOG, before, "row_count")
    services = {d.dataset: d for d in report.datasets()}["services"]
    assert services.received == services.expected == keep  # complete, yet far too few
    assert data["validation"]["services"]["success"] is False


def test_later_families_are_checked_against_the_published_catalog(served: Env) -> None:
    """A quarantined catalog vouches for nothing: coverage and bookings are validated
    against the catalog analysts can see (the published one), not the rejected staging, so
    one bad catalog neither drags them into quarantine nor lets them publish references to
    services that are not published."""
    env = served
    before = _current(env)
    keep = before["services"][1] // 5
    report = corrupted_run(env, "catalog/services", only_the_first(keep))
    families = {f.family: f for f in report.families}
    assert families["catalog"].status == "quarantined"
    for family in ("coverage", "bookings"):
        fam = families[family]
        assert fam.status == "published", (family, fam.error, fam.critical_failures)
    assert _current(env)["services"] == before["services"]
    published = {r["id"] for r in published_rows(env.warehouse.root, "services")}
    offered = {r["service_id"] for r in published_rows(env.warehouse.root, "coverage_postal_codes")}
    assert offered <= published


def test_an_incomplete_page_numbered_walk_quarantines_the_family(served: Env) -> None:
    """A page loses a record but the server's total says it exists: received != total."""
    env = served
    before = _current(env)

    def drop_one(page: dict[str, Any]) -> dict[str, Any]:
        if page["meta"]["page"] == 1:
            page["data"] = page["data"][1:]
        return page

    report = corrupted_run(env, "coverage/zones", drop_one, "coverage")
    _assert_quarantined(env, report, Family.COVERAGE, before, "incomplete walk")
    zones = {d.dataset: d for d in report.datasets()}["coverage_zones"]
    assert zones.completeness == "incomplete"
    assert zones.expected is not None
    assert zones.received == zones.expected - 1


def test_warnings_publish_and_are_reported(served: Env) -> None:
    env = served
    before = _current(env)
    corrupted: list[str] = []

    def odd_email(page: dict[str, Any]) -> dict[str, Any]:
        booking = page["data"][0]
        booking["customer"]["email"] = "not-an-e-mail"
        corrupted.append(booking["id"])
        return page

    report = corrupted_run(env, "bookings", odd_email, "bookings")
    assert report.success, [(f.status, f.critical_failures) for f in report.families]
    fam = report.families[0]
    assert fam.status == "published"
    assert fam.critical_failures == []
    assert any("customer_email" in w for w in fam.warnings), fam.warnings
    assert report.warnings == fam.warnings
    assert "customer_email" in report.summary_markdown()
    after = _current(env)
    assert after["bookings"][0] != before["bookings"][0]
    validation = env.warehouse.history("bookings", 1)[0]["validation"]
    assert validation is not None
    assert any("customer_email" in w for w in validation["warnings"])
    rows = published_rows(env.warehouse.root, "bookings", f"id = '{corrupted[0]}'")
    assert [r["customer_email"] for r in rows] == ["not-an-e-mail"]
    newest = max(r["updated_at"] for r in published_rows(env.warehouse.root, "bookings"))
    assert env.watermark() == newest
