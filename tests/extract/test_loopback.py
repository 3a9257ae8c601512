"""The extraction over a real loopback socket: the simulator under uvicorn, a client built
from ``Settings(base_url=...)`` exactly as the CLI and the flows build it, the clock moved
with ``POST /_sim/clock/advance`` and the expectation read from ``GET /_sim/export/bookings``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sodtrack.extract import RunReport
from sodtrack.simulator.app import create_app
from sodtrack.simulator.testing import serve_in_thread

from .helpers import (
    DATASET_NAMES,
    Env,
    assert_bookings_equal,
    count,
    declared_duckdb_types,
    described_types,
    extract_config,
    parse_export,
    published_bookings,
)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("extract-loopback")]


def _export(base_url: str) -> dict[str, dict[str, Any]]:
    response = httpx.get(f"{base_url}/_sim/export/bookings", params={"client_id": "sim-client"})
    response.raise_for_status()
    assert response.headers["content-type"].startswith("application/x-ndjson")
    return parse_export(response.content)


@pytest.fixture(scope="module")
def loopback(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Env, list[RunReport]]]:
    app = create_app(extract_config(bookings=1500))
    with serve_in_thread(app) as base_url:
        env = Env(tmp_path_factory.mktemp("loopback"), app, base_url=base_url)
        reports = [env.run()]
        advanced = httpx.post(f"{base_url}/_sim/clock/advance", json={"seconds": 2 * 86400})
        advanced.raise_for_status()
        assert advanced.json()["changes"] > 0
        reports.append(env.run("bookings"))
        yield env, reports


def test_a_full_run_over_loopback_publishes_everything(
    loopback: tuple[Env, list[RunReport]],
) -> None:
    env, (first, _) = loopback
    assert first.success, [(f.family, f.status, f.error) for f in first.families]
    assert first.client["requests"] > 0
    assert first.client["token_fetches"] >= 1
    for dataset in DATASET_NAMES:
        assert described_types(env.warehouse.root, dataset) == declared_duckdb_types(dataset)
        run = {d.dataset: d for d in first.datasets()}[dataset]
        assert count(env.warehouse.root, dataset, "true") >= run.written > 0


def test_bookings_equal_the_export_after_each_run(loopback: tuple[Env, list[RunReport]]) -> None:
    env, (_, second) = loopback
    assert second.success
    bookings = {d.dataset: d for d in second.datasets()}["bookings"]
    assert bookings.received > 0
    assert env.base_url is not None
    expected = _export(env.base_url)
    assert_bookings_equal(published_bookings(env.warehouse.root), expected)
    assert env.watermark() == max(r["updated_at"] for r in expected.values())
