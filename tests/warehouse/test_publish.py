"""Publish, read back with DuckDB/pandas/pyarrow/polars, versions, quarantine, gc, locks."""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from sodtrack.warehouse import PublishConflict, PublishError, SchemaMismatch, Warehouse
from sodtrack.warehouse.convert import (
    booking_changes_batch,
    bookings_batch,
    categories_batch,
    coverage_postal_codes_batch,
    coverage_zones_batch,
    scheduled_month,
    services_batch,
    variants_batch,
)
from sodtrack.warehouse.schemas import DATASETS, MONEY, TIMESTAMP

from .factories import T0, booking, category, variant, zone
from .helpers import NOW, publish_services, services, stage_batch

_DUCK = {
    pa.string(): "VARCHAR",
    pa.bool_(): "BOOLEAN",
    pa.int32(): "INTEGER",
    MONEY: "DECIMAL(18,2)",
    TIMESTAMP: "TIMESTAMP WITH TIME ZONE",
}
DAY = {"country": "cl", "snapshot_date": "2026-11-28"}


def _publish_every_dataset(wh: Warehouse) -> dict[str, int]:
    snapshots = {
        "categories": categories_batch([category(i) for i in range(6)], NOW),
        "services": services_batch(services(4), NOW),
        "variants": variants_batch([variant(1), variant(2, price="0.10")], NOW),
        "coverage_zones": coverage_zones_batch([zone(1), zone(2)], NOW),
        "coverage_postal_codes": coverage_postal_codes_batch([zone(1), zone(2)], NOW),
    }
    rows = {}
    for name, batch in snapshots.items():
        stage_batch(wh, name, "run-1", batch, DAY)
        rows[name] = wh.publish(name, "run-1").total_rows
    bookings = bookings_batch(
        [booking(i, start=T0.replace(month=1 + i % 3)) for i in range(9)], NOW
    )
    months = scheduled_month(bookings).to_pylist()
    with wh.stage("bookings", "run-1") as w:
        for month in sorted(set(months)):
            mask = pa.array([m == month for m in months])
            w.write(bookings.filter(mask), {"country": "cl", "scheduled_month": month})
        w.finish(finished_at=NOW)
    rows["bookings"] = wh.publish("bookings", "run-1").total_rows
    changes = booking_changes_batch(bookings, "run-1")
    stage_batch(
        wh, "booking_changes", "run-1", changes, {"country": "cl", "extraction_date": "2026-11-28"}
    )
    rows["booking_changes"] = wh.publish("booking_changes", "run-1").total_rows
    return rows


def test_every_dataset_reads_back_typed_with_duckdb_pandas_and_pyarrow(wh: Warehouse) -> None:
    rows = _publish_every_dataset(wh)
    assert rows["bookings"] == 9
    assert rows["coverage_postal_codes"] == 12
    con = duckdb.connect()
    for name, spec in DATASETS.items():
        glob = f"{wh.current_path(name)}/**/*.parquet"
        described = con.execute(
            f"DESCRIBE SELECT * FROM read_parquet('{glob}', hive_partitioning = true)"  # noqa: S608
        ).fetchall()
        types = {r[0]: r[1] for r in described}
        for field in spec.schema:
            assert types[field.name] == _DUCK[field.type], (name, field.name)
        for key in spec.partition_keys:  # hive keys: strings (DuckDB sniffs dates as DATE)
            assert types[key] in ("VARCHAR", "DATE"), (name, key)
        assert list(types)[: len(spec.schema)] == spec.schema.names  # column order kept
        count = con.execute(f"SELECT count(*) FROM read_parquet('{glob}')").fetchall()[0][0]  # noqa: S608
        assert count == rows[name]

        frame = pd.read_parquet(wh.current_path(name))  # _manifest.json is not beside data
        assert len(frame) == rows[name]
        assert list(frame.columns[: len(spec.schema)]) == spec.schema.names

        table = ds.dataset(wh.current_path(name), partitioning="hive").to_table()
        assert table.num_rows == rows[name]
        for field in spec.schema:
            assert table.schema.field(field.name).type == field.type
        typed = wh.read_current(name).to_table()
        assert typed.schema.field(spec.partition_keys[0]).type == pa.string()

    frame = pd.read_parquet(wh.current_path("variants"))
    assert frame["price"].tolist() == [Decimal("149.90"), Decimal("0.10")]  # Decimal, not float
    assert str(frame["updated_at"].dtype) == "datetime64[us, UTC]"
    money = con.execute(
        f"SELECT sum(price) FROM read_parquet('{wh.current_path('variants')}/**/*.parquet')"  # noqa: S608
    ).fetchall()[0][0]
    assert money == Decimal("150.00")
    metadata = pq.read_schema(next(Path(wh.current_path("services")).rglob("*.parquet"))).metadata
    assert metadata[b"sodtrack.schema_version"] == b"1"
    assert metadata[b"sodtrack.dataset"] == b"services"
    assert metadata[b"sodtrack.run_id"] == b"run-1"


def test_polars_reads_the_current_directory(wh: Warehouse) -> None:
    import polars as pl

    _publish_every_dataset(wh)
    frame = pl.read_parquet(f"{wh.current_path('bookings')}/**/*.parquet", hive_partitioning=True)
    assert frame.height == 9
    assert str(frame.schema["price"]).startswith("Decimal")
    assert pl.scan_parquet(wh.current_path("services"), hive_partitioning=True).collect().height


def test_manifest_records_the_version(wh: Warehouse) -> None:
    first = publish_services(wh, "run-1", "2026-11-27")
    second = publish_services(wh, "run-2", "2026-11-28", n=5)
    assert wh.list_versions("services") == [first.version_id, second.version_id]
    assert wh.current_version("services") == second.version_id
    m = wh.read_manifest("services")
    assert m is not None
    assert m == second
    assert m.previous_version == first.version_id
    assert m.rows_per_partition == {
        "country=cl/snapshot_date=2026-11-27": 3,
        "country=cl/snapshot_date=2026-11-28": 5,
    }
    assert m.total_rows == 8
    assert m.replaced == ("country=cl/snapshot_date=2026-11-28",)
    carried = m.partitions["country=cl/snapshot_date=2026-11-27"].files[0]
    assert (carried.run_id, carried.version_id) == ("run-1", first.version_id)
    doc = json.loads(Path(wh.version_path("services", m.version_id), "_manifest.json").read_text())
    assert doc["total_rows"] == 8
    assert doc["schema_version"] == 1
    # carried partitions are hard links, not copies
    a = Path(wh.data_path("services", first.version_id), "country=cl/snapshot_date=2026-11-27")
    b = Path(wh.data_path("services", second.version_id), "country=cl/snapshot_date=2026-11-27")
    (fa,), (fb,) = list(a.iterdir()), list(b.iterdir())
    assert fa.stat().st_ino == fb.stat().st_ino


def test_a_snapshot_run_replaces_only_its_own_partition(wh: Warehouse) -> None:
    publish_services(wh, "run-1", "2026-11-27", n=3)
    publish_services(wh, "run-2", "2026-11-28", n=3)
    publish_services(wh, "run-3", "2026-11-28", n=2, price="10")
    publish_services(wh, "run-4", "2026-11-28", n=2, country="pe")
    m = wh.read_manifest("services")
    assert m is not None
    assert m.rows_per_partition == {
        "country=cl/snapshot_date=2026-11-27": 3,
        "country=cl/snapshot_date=2026-11-28": 2,
        "country=pe/snapshot_date=2026-11-28": 2,
    }
    day = (ds.field("snapshot_date") == "2026-11-28") & (ds.field("country") == "cl")
    t = wh.read_current("services").to_table(filter=day)
    assert sorted(set(t.column("base_price").to_pylist())) == [Decimal("10.00")]


def test_empty_snapshot_is_published_as_an_empty_partition(wh: Warehouse) -> None:
    with wh.stage("categories", "run-1") as w:
        w.touch(DAY)
        w.finish(finished_at=NOW)
    m = wh.publish("categories", "run-1")
    assert m.rows_per_partition == {"country=cl/snapshot_date=2026-11-28": 0}
    glob = f"{wh.current_path('categories')}/**/*.parquet"
    query = f"SELECT count(*) FROM read_parquet('{glob}')"  # noqa: S608
    assert duckdb.connect().execute(query).fetchall() == [(0,)]


def test_a_reader_keeps_its_version_while_new_ones_are_published(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "wh", durable=False, keep_versions=2, version_grace=timedelta(0))
    publish_services(wh, "run-1", "2026-11-28", n=3)
    pinned = wh.read_current("services")  # resolved to version 1
    listed = sorted(Path(wh.current_path("services")).rglob("*.parquet"))  # via `current/`
    before = {p.name: pq.read_table(p) for p in listed}
    handle = pq.ParquetFile(listed[0])  # an open file outlives its version's removal
    publish_services(wh, "run-2", "2026-11-28", n=5)
    assert pinned.to_table().num_rows == 3
    publish_services(wh, "run-3", "2026-11-28", n=7)
    publish_services(wh, "run-4", "2026-11-28", n=9)  # version 1 garbage-collected now
    assert handle.read().num_rows == 3
    assert wh.read_current("services").to_table().num_rows == 9
    # A path listed through `current` either shows the same bytes or is gone: never a mix.
    for path in listed:
        if path.exists():
            assert pq.read_table(path).equals(before[path.name])


def test_quarantine_leaves_current_untouched(wh: Warehouse, tmp_path: Path) -> None:
    first = publish_services(wh, "run-1", "2026-11-28")
    stage_batch(wh, "services", "run-2", services_batch(services(9), NOW), DAY)
    staged = wh.staged_table("services", "run-2", {"country": "cl"})
    assert staged.num_rows == 9
    assert "snapshot_date" in staged.column_names
    where = wh.quarantine("services", "run-2", {"success": False, "failed": ["row_count"]})
    assert wh.current_version("services") == first.version_id
    assert wh.read_current("services").to_table().num_rows == 3
    assert json.loads(Path(where, "validation_report.json").read_text())["success"] is False
    assert list(Path(where).rglob("*.parquet"))
    assert Path(where, "_stage.json").exists()
    assert not Path(wh.staging_path("services", "run-2")).exists()
    with pytest.raises(PublishError):
        wh.publish("services", "run-2")
    # A failed run with no staging, and a report file: quarantined side by side.
    report = tmp_path / "gx-report.html"
    report.write_text("<html/>")
    again = wh.quarantine("services", "run-2", report)
    assert again != where
    assert Path(again, "gx-report.html").exists()


def test_incomplete_or_drifted_staging_is_refused(wh: Warehouse) -> None:
    with pytest.raises(PublishError, match="no complete staging"):
        wh.publish("services", "never-staged")
    w = wh.stage("services", "run-1")
    w.write(services_batch(services(2), NOW), DAY)  # killed before finish(): no _stage.json
    with pytest.raises(PublishError, match="no complete staging"):
        wh.publish("services", "run-1")
    w.abort()
    batch = services_batch(services(2), NOW)
    with wh.stage("services", "run-2") as w2, pytest.raises(SchemaMismatch):
        w2.write(batch.drop_columns(["sku"]), DAY)
    nulls = batch.set_column(2, "sku", pa.array([None, "x"], pa.string()))
    with wh.stage("services", "run-3") as w3, pytest.raises(SchemaMismatch, match="not nullable"):
        w3.write(nulls, DAY)
    # a staged file swapped for one with another schema is caught at publish
    stage_batch(wh, "services", "run-4", batch, DAY)
    (path,) = wh.staged_files("services", "run-4")
    pq.write_table(pa.table({"id": ["x"]}), path)
    with pytest.raises(PublishError, match="does not have the schema"):
        wh.publish("services", "run-4")
    assert wh.current_version("services") is None


def test_writer_casts_compatible_types_and_rotates_files(wh: Warehouse) -> None:
    batch = services_batch(services(60), NOW)
    loose = pa.RecordBatch.from_arrays(
        [c.cast(pa.large_string()) if c.type == pa.string() else c for c in batch.columns],
        names=batch.schema.names,
    )
    with wh.stage("services", "run-1", row_group_rows=10, max_rows_per_file=25) as w:
        for start in range(0, 60, 7):
            w.write(loose.slice(start, 7), DAY)
        info = w.finish(finished_at=NOW)
    assert [f.rows for f in info.files] == [25, 25, 10]
    for path in wh.staged_files("services", "run-1"):
        meta = pq.ParquetFile(path).metadata
        assert all(meta.row_group(i).num_rows <= 10 for i in range(meta.num_row_groups))
    m = wh.publish("services", "run-1")
    assert m.total_rows == 60
    assert wh.read_current("services").to_table().column("id").to_pylist() == [
        f"svc_{i:04d}" for i in range(60)
    ]


def test_restaging_a_run_id_never_rewrites_published_bytes(wh: Warehouse) -> None:
    first = publish_services(wh, "run-1", "2026-11-28", n=3)
    # the same run id staged again (a retry): same file names, new content
    stage_batch(wh, "services", "run-1", services_batch(services(8), NOW), DAY)
    old = wh.data_path("services", first.version_id)
    assert ds.dataset(old, partitioning="hive").count_rows() == 3


def test_log_datasets_accumulate_run_files(wh: Warehouse) -> None:
    part = {"country": "cl", "extraction_date": "2026-11-28"}
    for run, n in (("run-1", 2), ("run-2", 3), ("run-1", 4)):
        batch = booking_changes_batch(bookings_batch([booking(i) for i in range(n)], NOW), run)
        stage_batch(wh, "booking_changes", run, batch, part)
        wh.publish("booking_changes", run)
    m = wh.read_manifest("booking_changes")
    assert m is not None
    (entry,) = m.partitions.values()
    assert sorted((f.run_id, f.rows) for f in entry.files) == [("run-1", 4), ("run-2", 3)]
    with wh.stage("booking_changes", "run-3") as w:
        w.replace([part])
        with pytest.raises(ValueError, match="log"):
            w.finish(finished_at=NOW)


def test_replace_scope_is_a_full_refresh_of_one_country(wh: Warehouse) -> None:
    publish_services(wh, "run-1", "2026-11-27")
    publish_services(wh, "run-2", "2026-11-27", country="pe")
    with wh.stage("services", "run-3") as w:
        w.write(services_batch(services(1), NOW), DAY)
        w.finish(replace_scope={"country": "cl"}, finished_at=NOW)
    m = wh.publish("services", "run-3")
    assert m.rows_per_partition == {
        "country=cl/snapshot_date=2026-11-28": 1,
        "country=pe/snapshot_date=2026-11-27": 3,
    }
    assert m.removed == ("country=cl/snapshot_date=2026-11-27",)


def test_garbage_collection_keeps_the_last_versions(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "wh", durable=False, keep_versions=3, version_grace=timedelta(0))
    for i in range(7):
        publish_services(wh, f"run-{i}", f"2026-11-{10 + i}")
    versions = wh.list_versions("services")
    assert [v.split("-", 1)[1] for v in versions] == ["run-4", "run-5", "run-6"]
    assert wh.read_current("services").to_table().num_rows == 21  # carried links survive
    leftover = Path(wh.dataset_path("services"), "_versions", ".tmp-v000099-x")
    leftover.mkdir()
    assert ".tmp-v000099-x" in wh.gc("services", keep=1)
    assert wh.list_versions("services") == [versions[-1]]


def test_superseded_versions_survive_the_grace_period(tmp_path: Path) -> None:
    now = [datetime(2026, 11, 28, 4, 0, tzinfo=UTC)]
    wh = Warehouse(
        tmp_path / "wh",
        durable=False,
        keep_versions=1,
        version_grace=timedelta(hours=1),
        clock=lambda: now[0],
    )
    for i in range(3):
        publish_services(wh, f"run-{i}", "2026-11-28")
        now[0] += timedelta(minutes=20)
    assert len(wh.list_versions("services")) == 3  # superseded 20 and 40 minutes ago
    now[0] += timedelta(minutes=25)  # run-0 was superseded (by run-1) 65 minutes ago
    assert [v.split("-", 1)[1] for v in wh.gc("services")] == ["run-0"]
    now[0] += timedelta(hours=1)
    assert len(wh.gc("services")) == 1
    assert wh.list_versions("services") == [wh.current_version("services")]


def test_concurrent_publishers_do_not_lose_each_others_partitions(wh: Warehouse) -> None:
    runs = [f"run-{i}" for i in range(6)]
    for i, run in enumerate(runs):
        part = {"country": "cl", "snapshot_date": f"2026-11-{10 + i}"}
        stage_batch(wh, "services", run, services_batch(services(i + 1), NOW), part)
    barrier = threading.Barrier(len(runs))
    errors: list[BaseException] = []

    def go(run: str) -> None:
        barrier.wait()
        try:
            wh.publish("services", run)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(r,)) for r in runs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    m = wh.read_manifest("services")
    assert m is not None
    assert len(m.partitions) == 6
    assert m.total_rows == 21
    assert len(wh.list_versions("services")) == 6  # all within the grace period


def test_merged_dataset_refuses_a_stale_base(wh: Warehouse) -> None:
    def stage(run: str, country: str, base: str | None) -> None:
        batch = bookings_batch([booking(run)], NOW)
        with wh.stage("bookings", run, base_version=base) as w:
            w.write(batch, {"country": country, "scheduled_month": "2026-12"})
            w.finish(finished_at=NOW)

    stage("run-a", "cl", None)
    stage("run-b", "cl", None)
    stage("run-c", "pe", None)
    wh.publish("bookings", "run-a")
    with pytest.raises(PublishConflict, match="re-run the merge"):
        wh.publish("bookings", "run-b")
    wh.publish("bookings", "run-c")  # another country's partitions: no conflict
    m = wh.read_manifest("bookings")
    assert m is not None
    assert sorted(m.partitions) == [
        "country=cl/scheduled_month=2026-12",
        "country=pe/scheduled_month=2026-12",
    ]


def test_durable_mode_publishes_the_same(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "wh", durable=True)
    m = publish_services(wh, "run-1", "2026-11-28")
    assert m.total_rows == 3
    assert os.readlink(wh.current_path("services")) == f"_versions/{m.version_id}/data"


def test_unknown_roots_and_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(NotImplementedError, match="only local paths"):
        Warehouse("s3://bucket/warehouse")
    wh = Warehouse(f"file://{tmp_path}/wh", durable=False)
    with pytest.raises(ValueError, match="unknown dataset"):
        wh.stage("orders", "run-1")
    with pytest.raises(ValueError, match="run id"):
        wh.stage("services", "../escape")
    with wh.stage("services", "run-1") as w, pytest.raises(ValueError, match="partition"):
        w.write(services_batch(services(1), NOW), {"country": "cl/../x", "snapshot_date": "d"})
