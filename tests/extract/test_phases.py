"""The two phases of a family (``stage_family``: walk and stage; ``check_family``: validate,
then publish or quarantine), against the in-process simulator and a real warehouse.

A retried staging holds each record once; a staging that raises leaves no staging behind
and publishes nothing; a check that fails before its commit publishes nothing of the
family, and the country's next family is checked against the published references."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from sodtrack.extract.families import FAMILIES, Family
from sodtrack.extract.runner import (
    DEFAULT_LOOKBACK,
    CountryExtraction,
    StagedFamily,
    stage_family,
)
from sodtrack.warehouse import layout

from .helpers import COUNTRY, Env, HookTransport, extract_config, is_list


def _stage(env: Env, family: Family, cx: CountryExtraction) -> StagedFamily:
    async def go() -> StagedFamily:
        async with env.factory()(COUNTRY) as client:
            return await stage_family(
                family,
                client,
                env.warehouse,
                cx,
                full_refresh=False,
                lookback=DEFAULT_LOOKBACK,
                progress=lambda dataset, n: None,
            )

    return asyncio.run(go())


def _staged_rows(env: Env, dataset: str, run_id: str) -> int:
    return int(env.warehouse.staged_table(dataset, run_id).num_rows)


@pytest.mark.parametrize("family", list(Family))
def test_a_retried_staging_holds_each_record_once(tmp_path: Path, family: Family) -> None:
    from sodtrack.simulator.app import create_app

    env = Env(tmp_path, create_app(extract_config()))
    cx = CountryExtraction(COUNTRY, "retry-cl", datetime.now(UTC))
    first = _stage(env, family, cx)
    once = {d: _staged_rows(env, d, cx.run_id) for d in FAMILIES[family]}
    assert all(once.values()), once
    again = _stage(env, family, cx)  # the task's retry: same run id, same staging folders
    assert {d: _staged_rows(env, d, cx.run_id) for d in FAMILIES[family]} == once
    assert [d.written for d in again.run.datasets] == [d.written for d in first.run.datasets]


class BreakAfter:
    """Answers the ``n``-th page of ``resource`` with a 400 (the client does not retry it)."""

    def __init__(self, resource: str, n: int) -> None:
        self.resource = resource
        self.n = n
        self.pages = 0

    async def __call__(
        self, request: httpx.Request, response: httpx.Response, transport: HookTransport
    ) -> httpx.Response:
        if not is_list(request, self.resource):
            return response
        self.pages += 1
        if self.pages < self.n:
            return response
        await response.aread()
        body = b'{"error": {"code": "bad_request", "message": "broken on purpose"}}'
        return httpx.Response(400, headers={"content-type": "application/json"}, content=body)


@pytest.mark.parametrize(
    ("family", "resource", "page"),
    [
        (Family.CATALOG, "catalog/services", 1),  # after the categories were staged
        (Family.COVERAGE, "coverage/zones", 1),
        (Family.BOOKINGS, "bookings", 3),  # after two pages were staged
    ],
)
def test_a_staging_that_raises_leaves_no_staging(
    tmp_path: Path, family: Family, resource: str, page: int
) -> None:
    from sodtrack.simulator.app import create_app

    env = Env(tmp_path, create_app(extract_config()), max_limit=20)
    env.hook = breaker = BreakAfter(resource, page)
    cx = CountryExtraction(COUNTRY, "broken-cl", datetime.now(UTC))
    with pytest.raises(Exception):  # noqa: B017, PT011 (whatever the walk raised)
        _stage(env, family, cx)
    assert breaker.pages == page
    for dataset in FAMILIES[family]:
        staging = env.warehouse.fs.join(env.warehouse.dataset_path(dataset), layout.STAGING)
        assert env.warehouse.fs.list_dir(staging) == [], dataset
        assert env.warehouse.current_version(dataset) is None


def test_a_check_failing_before_its_commit_publishes_nothing_of_the_family(
    tmp_path: Path,
) -> None:
    """On a second night, coverage's first publish breaks (after its gate, before its
    commit): no dataset of coverage changes, its stagings are gone, and bookings (checked
    after it) is checked against the coverage that is published, and published."""
    from sodtrack.simulator.app import create_app

    env = Env(tmp_path, create_app(extract_config()))
    assert env.run().success
    before = {d: env.warehouse.current_version(d) for d in FAMILIES[Family.COVERAGE]}
    env.sim.advance(86_400)
    commits: list[str] = []
    broken: list[str] = []

    def on_step(name: str) -> None:
        if name == "publish:committed":
            commits.append(name)
        # the catalog's three datasets are committed: the next publish is coverage's first
        if name == "publish:checked" and len(commits) == 3 and not broken:
            broken.append(name)
            raise OSError("disk gone, on purpose")

    env.on_step = on_step
    report = env.run()
    status = {f.family: f.status for f in report.families}
    assert status == {"catalog": "published", "coverage": "failed", "bookings": "published"}
    for dataset in FAMILIES[Family.COVERAGE]:
        assert env.warehouse.current_version(dataset) == before[dataset]
        staging = env.warehouse.fs.join(env.warehouse.dataset_path(dataset), layout.STAGING)
        assert env.warehouse.fs.list_dir(staging) == []
    assert len(commits) == len(FAMILIES[Family.CATALOG]) + len(FAMILIES[Family.BOOKINGS])
