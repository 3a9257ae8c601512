"""Small pieces of the extraction, without a simulator."""

from __future__ import annotations

import logging
import random
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from sodtrack.extract import families_for, gate
from sodtrack.extract.families import Family
from sodtrack.extract.runner import clear_dead_runs
from sodtrack.validation.batching import gx_batches
from sodtrack.warehouse import DATASETS, Warehouse
from sodtrack.warehouse.chunks import published_chunks


def test_clear_dead_runs_removes_only_this_countrys_other_runs(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "wh", durable=False)
    root = Path(wh.root)
    stagings = {
        "bookings": ["dead-cl", "live-cl", "other-pe"],
        "services": ["dead-cl", "older-cl"],
    }
    for dataset, runs in stagings.items():
        for run in runs:
            (root / dataset / "_staging" / run).mkdir(parents=True)
            (root / dataset / "_staging" / run / "part-0.parquet").write_bytes(b"x")
    for work in ("dead-cl-bookings-cl", "live-cl-bookings-cl", "other-pe-bookings-pe"):
        (root / "_work" / work / "spill").mkdir(parents=True)
    (root / "_quarantine" / "bookings" / "dead-cl").mkdir(parents=True)

    removed = clear_dead_runs(wh, "cl", "live-cl")

    assert sorted(removed) == [
        "_work/dead-cl-bookings-cl",
        "bookings/_staging/dead-cl",
        "services/_staging/dead-cl",
        "services/_staging/older-cl",
    ]
    assert sorted(p.name for p in (root / "bookings" / "_staging").iterdir()) == [
        "live-cl",
        "other-pe",
    ]
    assert sorted(p.name for p in (root / "_work").iterdir()) == [
        "live-cl-bookings-cl",
        "other-pe-bookings-pe",
    ]
    assert (root / "_quarantine" / "bookings" / "dead-cl").is_dir()  # kept for people
    assert clear_dead_runs(wh, "cl", "live-cl") == []


def test_families_for_datasets() -> None:
    assert families_for(None) == [Family.CATALOG, Family.COVERAGE, Family.BOOKINGS]
    assert families_for(["variants"]) == [Family.CATALOG]
    assert families_for(["booking_changes", "coverage"]) == [Family.COVERAGE, Family.BOOKINGS]
    with pytest.raises(ValueError, match="unknown dataset"):
        families_for(["payments"])


def test_great_expectations_contexts_follow_the_applications_logging() -> None:
    """GX pins one of its loggers at INFO on import; a CLI configured for warnings printed
    "Created temporary directory ... for ephemeral docs site" on every validation."""
    from sodtrack.validation.runner import new_context

    parent = logging.getLogger("great_expectations")
    saved = parent.level
    parent.setLevel(logging.WARNING)
    try:
        new_context()
        loud = logging.getLogger("great_expectations.data_context.types.base")
        assert not loud.isEnabledFor(logging.INFO)
    finally:
        parent.setLevel(saved)


def _categories(n: int, start: int = 0) -> pa.RecordBatch:
    now = datetime(2026, 6, 10, tzinfo=UTC)
    ids = [f"cat_{i:06d}" for i in range(start, start + n)]
    return pa.record_batch(
        [ids, ids, [None] * n, [None] * n, [True] * n, [now] * n, [now] * n],
        schema=DATASETS["categories"].schema,
    )


def test_staged_chunks_are_bounded_even_within_one_partition(tmp_path: Path) -> None:
    """``booking_changes`` stages one partition per run (its extraction date): a full run of
    a million bookings is one partition, which must not be read or validated as one table.
    The read hands out decoded batches of at most ``read_rows``; the validation alone sizes
    its GX runs from them."""
    wh = Warehouse(tmp_path / "wh", durable=False)
    big = {"country": "cl", "snapshot_date": "2026-06-10"}
    small = {"country": "cl", "snapshot_date": "2026-06-09"}
    with wh.stage("categories", "run-cl", row_group_rows=64) as out:
        for start in range(0, 1000, 250):
            out.write(_categories(250, start), big)
        out.write(_categories(30, 5000), small)
        out.finish(finished_at=datetime(2026, 6, 10, tzinfo=UTC))

    chunks = list(gate.staged_chunks(wh, "categories", "run-cl", read_rows=100))

    assert all(0 < c.num_rows <= 100 for c in chunks), [c.num_rows for c in chunks]
    assert sum(c.num_rows for c in chunks) == 1030
    ids = [i for c in chunks for i in c.column("id").to_pylist()]
    assert len(set(ids)) == 1030
    days = {d for c in chunks for d in c.column("snapshot_date").to_pylist()}
    assert days == {"2026-06-09", "2026-06-10"}
    assert all(c.column("country").to_pylist() == ["cl"] * c.num_rows for c in chunks)
    runs = list(gx_batches(chunks, 100))
    assert [r.num_rows for r in runs] == [100] * 10 + [30]
    assert [i for r in runs for i in r.column("id").to_pylist()] == ids


def test_published_chunks_read_one_countrys_latest_snapshot(tmp_path: Path) -> None:
    """``sodtrack-etl validate`` streams the published version: the country's latest
    snapshot only, in bounded chunks, partition columns included."""
    wh = Warehouse(tmp_path / "wh", durable=False)
    parts = {
        ("cl", "2026-06-09"): (0, 40),
        ("cl", "2026-06-10"): (100, 230),
        ("pe", "2026-06-11"): (900, 7),
    }
    with wh.stage("categories", "run-1", row_group_rows=64) as out:
        for (country, day), (start, n) in parts.items():
            out.write(_categories(n, start), {"country": country, "snapshot_date": day})
        out.finish(finished_at=datetime(2026, 6, 11, tzinfo=UTC))
    wh.publish("categories", "run-1")

    chunks = list(published_chunks(wh.read_current("categories"), "cl", read_rows=100))

    assert all(0 < c.num_rows <= 100 for c in chunks), [c.num_rows for c in chunks]
    assert {d for c in chunks for d in c.column("snapshot_date").to_pylist()} == {"2026-06-10"}
    assert {d for c in chunks for d in c.column("country").to_pylist()} == {"cl"}
    ids = [i for c in chunks for i in c.column("id").to_pylist()]
    assert sorted(ids) == [f"cat_{n:06d}" for n in range(100, 330)]  # no order promised
    assert [r.num_rows for r in gx_batches(chunks, 100)] == [100, 100, 30]
    assert list(published_chunks(wh.read_current("categories"), "ar", read_rows=100)) == []


@pytest.mark.parametrize("seed", range(12))
def test_one_chunk_path_from_files_to_gx_runs(tmp_path: Path, seed: int) -> None:
    """Generated stagings (partitions, row groups, read size, GX batch size at random):
    every row reaches the GX runs exactly once, in file order; no decoded batch exceeds the
    read size and no GX run the batch size; runs are full but for the last one."""
    rng = random.Random(seed)
    wh = Warehouse(tmp_path / "wh", durable=False)
    start = 0
    with wh.stage("categories", "run-cl", row_group_rows=rng.randint(1, 80)) as out:
        for day in range(rng.randint(1, 4)):
            values = {"country": "cl", "snapshot_date": f"2026-06-{day + 1:02d}"}
            for _ in range(rng.randint(1, 3)):
                n = rng.randint(0, 300)
                out.write(_categories(n, start), values)
                start += n
        out.finish(finished_at=datetime(2026, 6, 10, tzinfo=UTC))
    read_rows, batch_rows = rng.randint(1, 150), rng.randint(1, 400)

    chunks = list(gate.staged_chunks(wh, "categories", "run-cl", read_rows=read_rows))
    runs = list(gx_batches(chunks, batch_rows))

    assert all(0 < c.num_rows <= read_rows for c in chunks)
    sizes = [r.num_rows for r in runs]
    assert all(0 < n <= batch_rows for n in sizes)
    assert all(n == batch_rows for n in sizes[:-1]), sizes
    ids = [i for r in runs for i in r.column("id").to_pylist()]
    assert ids == [i for c in chunks for i in c.column("id").to_pylist()]
    assert sorted(ids) == [f"cat_{n:06d}" for n in range(start)]


def test_iter_chunks_keeps_a_files_missing_column_missing(tmp_path: Path) -> None:
    """The scanner would fill a declared column the file lacks with nulls; validation must
    see it missing instead (its column-set expectation then fails)."""
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    from sodtrack.warehouse.chunks import iter_chunks

    folder = tmp_path / "country=cl"
    folder.mkdir()
    full = _categories(5, 0)
    pq.write_table(pa.Table.from_batches([full]).drop_columns(["parent_id"]), folder / "a.parquet")
    data = ds.dataset(
        tmp_path,
        schema=pa.unify_schemas([full.schema, pa.schema([("country", pa.string())])]),
        format="parquet",
        partitioning=ds.partitioning(pa.schema([("country", pa.string())]), flavor="hive"),
    )

    (chunk,) = iter_chunks(data)

    assert "parent_id" not in chunk.column_names
    assert chunk.column("country").to_pylist() == ["cl"] * 5
