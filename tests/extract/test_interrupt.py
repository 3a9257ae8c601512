"""A run killed (SIGKILL) at any point leaves the last good data current, and a re-run
converges to the simulator's bookings.

The simulator is served on loopback by this process; each run is a child process (forked from
a ``forkserver`` that has the extraction and Great Expectations imported) with a client built
from ``Settings(base_url=...)``. One warehouse goes through a chain of killed runs — mid walk,
mid merge, staged but not validated, validated but not committed, in the middle of a family's
commits, after both bookings commits, and at random moments from outside — with the
simulator's clock advanced before each. After every kill: every dataset's latest Delta version
is complete (read through Delta into DuckDB, its rows match its log), it is the version before
the kill unless the kill came after that dataset's commit, and the watermark (in the commits)
has moved only if both bookings tables committed. Then a re-run publishes everything and the
bookings equal the simulator's export (``GET /_sim/export/bookings``) again.
"""

from __future__ import annotations

import multiprocessing as mp
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from sodtrack.extract.runner import published_watermark
from sodtrack.simulator.app import create_app
from sodtrack.simulator.testing import serve_in_thread
from sodtrack.warehouse import Warehouse

from . import crash_child
from .helpers import (
    COUNTRY,
    DATASET_NAMES,
    assert_bookings_equal,
    count,
    extract_config,
    parse_export,
    published_bookings,
    sim_of,
)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("extract-interrupt")]

LEASE_S = 301.0
"""A killed run's lock row outlives it by its lease (``StateStore.lock``, ``ttl_s=300``):
each following run comes that much later on the state store's clock."""

BOOKINGS = ("bookings", "booking_changes")
CATALOG = ("categories", "services", "variants")


@dataclass(frozen=True)
class Kill:
    datasets: tuple[str, ...]
    point: str
    committed: tuple[str, ...] = ()
    """Datasets whose new version was current when the process died."""
    full_refresh: bool = False


KILLS = [
    Kill(("bookings",), "walk:bookings#1", full_refresh=True),  # page 1 of 3 received
    Kill(("bookings",), "merge:bookings_staged"),  # staged, not validated
    Kill(("bookings",), "publish:checked#1"),  # validated, nothing committed
    Kill(("bookings",), "publish:committed#1", ("bookings",)),  # mid-family
    Kill(("bookings",), "publish:cleaned#2", BOOKINGS),  # both committed, run not finished
    Kill(("catalog",), "publish:committed#2", ("categories", "services")),  # mid-family
]


@pytest.fixture(scope="module")
def ctx() -> Iterator[Any]:
    context = mp.get_context("forkserver")
    # Modules importable from the venv alone (Python 3.11's forkserver ignores the parent's
    # sys.path while preloading); the test modules are imported by each child.
    context.set_forkserver_preload(["sodtrack.extract", "great_expectations", "duckdb"])
    # Children re-run the parent's __main__ (pytest's entry script) unless it has no
    # __file__: hide it while children start.
    main = sys.modules["__main__"]
    saved = main.__dict__.pop("__file__", None)
    try:
        yield context
    finally:
        if saved is not None:
            main.__file__ = saved


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Starlette, str]]:
    app = create_app(extract_config(bookings=2000))
    with serve_in_thread(app) as base_url:
        yield app, base_url


def _start(ctx: Any, root: Path, base_url: str, kill: Kill | None, runs: int) -> Any:
    proc = ctx.Process(
        target=crash_child.extract,
        args=(str(root), base_url, kill.datasets if kill else ()),
        kwargs={
            "full_refresh": kill.full_refresh if kill else False,
            "kill_at": kill.point if kill else None,
            "lock_clock_skew_s": LEASE_S * runs,
        },
    )
    proc.start()
    return proc


def _wait(proc: Any) -> int | None:
    proc.join(120)
    assert not proc.is_alive(), "the child hung"
    code: int | None = proc.exitcode
    return code


@dataclass
class Snapshot:
    versions: dict[str, str | None]
    bookings: dict[str, dict[str, Any]]
    watermark: Any


def _snapshot(root: Path) -> Snapshot:
    """Every dataset's latest version, checked complete: read through Delta into DuckDB, its
    rows are those its log says."""
    wh = Warehouse(root / "warehouse", durable=False)
    versions: dict[str, str | None] = {}
    for dataset in DATASET_NAMES:
        version = wh.current_version(dataset)
        versions[dataset] = version
        if version is None:
            continue
        described = wh.describe(dataset)
        assert described is not None
        assert described.version_id == version
        assert count(wh.root, dataset) == described.total_rows, dataset
    watermark = published_watermark(wh, COUNTRY)
    return Snapshot(versions, published_bookings(wh.root), watermark)


def _export(base_url: str) -> dict[str, dict[str, Any]]:
    response = httpx.get(f"{base_url}/_sim/export/bookings", params={"client_id": "sim-client"})
    response.raise_for_status()
    return parse_export(response.content)


def _leftovers(root: Path) -> list[str]:
    wh = root / "warehouse"
    found = [str(p.relative_to(wh)) for p in wh.glob("*/_staging/*")]
    found += [str(p.relative_to(wh)) for p in wh.glob("_work/*")]
    return found


def test_killed_runs_keep_the_last_good_data_and_a_rerun_converges(
    ctx: Any, served: tuple[Starlette, str], tmp_path: Path
) -> None:
    app, base_url = served
    sim = sim_of(app)
    root = tmp_path / "run"
    runs = 0
    assert _wait(_start(ctx, root, base_url, None, runs)) == 0
    good = _snapshot(root)
    assert_bookings_equal(good.bookings, _export(base_url))
    assert good.watermark is not None

    kills: list[Kill | float] = [*KILLS, random.Random(11).choice([0.5, 1.0, 1.5, 2.0])]
    for kill in kills:
        sim.advance(8 * 3600)
        runs += 1
        if isinstance(kill, Kill):
            code = _wait(_start(ctx, root, base_url, kill, runs))
            assert code == -9, f"{kill.point}: the child was not killed there (exit {code})"
        else:  # from outside, at a moment nobody chose
            proc = _start(ctx, root, base_url, None, runs)
            time.sleep(kill)
            proc.kill()
            code = _wait(proc)
            assert code in (-9, 0)
        after = _snapshot(root)
        if isinstance(kill, Kill):
            for dataset in DATASET_NAMES:
                moved = after.versions[dataset] != good.versions[dataset]
                assert moved == (dataset in kill.committed), (kill.point, dataset)
        published = {d for d in DATASET_NAMES if after.versions[d] != good.versions[d]}
        if "bookings" in published:
            assert_bookings_equal(after.bookings, _export(base_url))
        else:
            assert after.bookings == good.bookings, kill
        # The watermark moves with the data: once both bookings tables committed.
        if code == 0 or {"bookings", "booking_changes"} <= published:
            assert after.watermark is not None
            assert after.watermark >= good.watermark
        else:
            assert after.watermark == good.watermark, f"{kill}: the watermark moved"
        good = after

    runs += 1
    assert _wait(_start(ctx, root, base_url, None, runs)) == 0
    final = _snapshot(root)
    expected = _export(base_url)
    assert_bookings_equal(final.bookings, expected)
    assert final.watermark == max(r["updated_at"] for r in expected.values())
    assert all(final.versions[d] != good.versions[d] for d in DATASET_NAMES)
    assert _leftovers(root) == []
