"""A run killed (SIGKILL) at any point leaves `current` on the last complete version, and a
re-run of the same run id succeeds.

Children are forked from a ``forkserver`` that has already imported the warehouse, so a kill
costs milliseconds, not an interpreter start.
"""

from __future__ import annotations

import multiprocessing as mp
import random
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from sodtrack.warehouse import Warehouse

from . import crash_child

SERVICE_POINTS = [
    "stage:partial#2",
    "stage:finished",
    "publish:locked",
    "publish:linked",
    "publish:manifest",
    "publish:renamed",
    "publish:swapped",
    "publish:cleaned",
]
BOOKING_POINTS = [
    "merge:page#2",
    "merge:changes_staged",
    "merge:partition_written#2",
    "merge:bookings_staged",
    "publish:linked#2",  # building the bookings version
    "publish:renamed",  # bookings version complete, not current
    "publish:swapped",  # bookings current, booking_changes not published yet
    "publish:manifest#2",  # building the booking_changes version
]


@pytest.fixture(scope="module")
def ctx() -> Iterator[mp.context.ForkServerContext]:
    context = mp.get_context("forkserver")
    # Preload what is importable from the venv alone (Python 3.11's forkserver ignores the
    # parent's sys.path while preloading); the small test modules are imported per child.
    context.set_forkserver_preload(["sodtrack.warehouse.bookings", "duckdb", "pyarrow.dataset"])
    # Children re-run the parent's __main__ (pytest's entry script) unless it has no
    # __file__: that import of pytest costs ~1 s per child, so hide it while children start.
    main = sys.modules["__main__"]
    saved = main.__dict__.pop("__file__", None)
    try:
        yield context
    finally:
        if saved is not None:
            main.__file__ = saved


def _run(ctx: Any, target: Callable[..., None], *args: Any) -> int | None:
    proc = ctx.Process(target=target, args=args)
    proc.start()
    proc.join(60)
    assert not proc.is_alive()
    code: int | None = proc.exitcode
    return code


def _snapshot(root: Path, dataset: str, columns: str) -> tuple[str | None, list[tuple[Any, ...]]]:
    """(current version, sorted rows), checking the version is complete and self-consistent."""
    wh = Warehouse(root, durable=False)
    version = wh.current_version(dataset)
    if version is None:
        return None, []
    manifest = wh.read_manifest(dataset)
    assert manifest is not None
    assert manifest.version_id == version
    glob = f"{wh.current_path(dataset)}/**/*.parquet"
    con = duckdb.connect()
    rows = con.execute(f"SELECT {columns} FROM read_parquet('{glob}') ORDER BY ALL").fetchall()  # noqa: S608
    assert len(rows) == manifest.total_rows
    files = sorted(p.name for p in Path(wh.current_path(dataset)).rglob("*.parquet"))
    assert files == sorted(f.name for p in manifest.partitions.values() for f in p.files)
    return version, rows


def _leftovers(root: Path, dataset: str) -> list[str]:
    return [p.name for p in Path(root, dataset, "_versions").glob(".tmp-*")]


@pytest.mark.parametrize("point", SERVICE_POINTS)
def test_killed_snapshot_publish_keeps_the_last_good_version(
    ctx: Any, tmp_path: Path, point: str
) -> None:
    root = tmp_path / "wh"
    assert _run(ctx, crash_child.services_run, str(root), "run-1", 30, "2026-11-27") == 0
    good = _snapshot(root, "services", "id, name")
    code = _run(ctx, crash_child.services_run, str(root), "run-2", 25, "2026-11-28", point)
    assert code == -9, "the child must have been killed at the step"
    after = _snapshot(root, "services", "id, name")
    committed = point in ("publish:swapped", "publish:cleaned")
    if committed:
        assert after[0] != good[0]
        assert len(after[1]) == 55
    else:
        assert after == good  # still the previous complete version, same rows
    # the re-run (same run id, as an orchestrator retry does) succeeds
    assert _run(ctx, crash_child.services_run, str(root), "run-2", 25, "2026-11-28") == 0
    final = _snapshot(root, "services", "id, name")
    assert len(final[1]) == 55
    assert not _leftovers(root, "services")
    versions = Warehouse(root, durable=False).list_versions("services")
    assert versions[-1] == final[0]


@pytest.fixture(scope="module")
def bookings_reference(ctx: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("ref") / "wh"
    assert _run(ctx, crash_child.bookings_run, str(root), "run-0", 0) == 0
    first = _snapshot(root, "bookings", "id, updated_at, scheduled_start")[1]
    assert _run(ctx, crash_child.bookings_run, str(root), "run-1", 1) == 0
    second = _snapshot(root, "bookings", "id, updated_at, scheduled_start")[1]
    changes = _snapshot(root, "booking_changes", "id, updated_at, run_id")[1]
    return {"first": first, "second": second, "changes": changes}


@pytest.mark.parametrize("point", BOOKING_POINTS)
def test_killed_bookings_run_keeps_the_last_good_version(
    ctx: Any, tmp_path: Path, point: str, bookings_reference: dict[str, Any]
) -> None:
    root = tmp_path / "wh"
    assert _run(ctx, crash_child.bookings_run, str(root), "run-0", 0) == 0
    assert _run(ctx, crash_child.bookings_run, str(root), "run-1", 1, point) == -9
    rows = _snapshot(root, "bookings", "id, updated_at, scheduled_start")[1]
    committed = point in ("publish:swapped", "publish:manifest#2")
    assert rows == bookings_reference["second" if committed else "first"]
    assert _run(ctx, crash_child.bookings_run, str(root), "run-1", 1) == 0
    assert (
        _snapshot(root, "bookings", "id, updated_at, scheduled_start")[1]
        == (bookings_reference["second"])
    )
    assert (
        _snapshot(root, "booking_changes", "id, updated_at, run_id")[1]
        == (bookings_reference["changes"])
    )
    assert not list(Path(root, "_work").iterdir())  # the merge's scratch space is gone


def test_kill_at_random_moments(ctx: Any, tmp_path: Path) -> None:
    rng = random.Random(7)
    root = tmp_path / "wh"
    for _ in range(4):
        proc = ctx.Process(target=crash_child.publish_loop, args=(str(root), 50))
        proc.start()
        time.sleep(rng.uniform(0.05, 0.6))
        proc.kill()
        proc.join(30)
        version, rows = _snapshot(root, "services", "id, name")
        if version is not None:
            assert rows  # a complete version, consistent with its manifest
    wh = Warehouse(root, durable=False)
    wh.gc("services")
    assert not _leftovers(root, "services")
    assert _run(ctx, crash_child.services_run, str(root), "after", 5, "2026-12-01") == 0
