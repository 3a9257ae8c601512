"""Publish as Delta commits, read back with deltalake → DuckDB and polars, time travel, vacuum,
quarantine, watermarks, schema evolution, concurrent writers: on local disk and on S3 (a real
S3-compatible server on loopback, ``tests/s3server.py``)."""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from sodtrack.errors import ConfigurationError
from sodtrack.warehouse import (
    PublishConflict,
    PublishError,
    SchemaEvolutionRefused,
    SchemaMismatch,
    Warehouse,
)
from sodtrack.warehouse import schemas as schemas_module
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
from sodtrack.warehouse.location import parse_location
from sodtrack.warehouse.publish import evolution, table_schema
from sodtrack.warehouse.schemas import DATASETS, MONEY, TIMESTAMP

from .factories import T0, booking, category, variant, zone
from .helpers import NOW, delta_rows, publish_services, services, stage_batch

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


def test_every_dataset_reads_back_typed_through_deltalake_into_duckdb_and_polars(
    wh: Warehouse,
) -> None:
    import polars as pl

    rows = _publish_every_dataset(wh)
    assert rows["bookings"] == 9
    assert rows["coverage_postal_codes"] == 12
    con = duckdb.connect()
    for name, spec in DATASETS.items():
        table = wh.table(name)
        assert table is not None
        data = table.to_pyarrow_table()  # noqa: F841 - DuckDB reads the local name
        described = con.execute("DESCRIBE SELECT * FROM data").fetchall()
        types = {r[0]: r[1] for r in described}
        for field in spec.schema:
            assert types[field.name] == _DUCK[field.type], (name, field.name)
        for key in spec.partition_keys:
            assert types[key] == "VARCHAR", (name, key)
        assert list(types) == table_schema(spec).names  # column order kept, keys last
        assert con.execute("SELECT count(*) FROM data").fetchall()[0][0] == rows[name]

        frame = pl.scan_delta(wh.table_uri(name), storage_options=wh.storage_options or None)
        schema = frame.collect_schema()
        assert schema["extracted_at"] == pl.Datetime("us", "UTC")
        assert frame.select(pl.len()).collect().item() == rows[name]
        typed = wh.read_current(name).to_table()
        assert typed.schema == table_schema(spec)

    variants = wh.read_current("variants").to_table()
    assert sorted(variants["price"].to_pylist()) == [Decimal("0.10"), Decimal("149.90")]
    money = delta_rows(wh, "variants", "sum(price)")
    assert money == [(Decimal("150.00"),)]
    frame = pl.scan_delta(wh.table_uri("bookings"), storage_options=wh.storage_options or None)
    assert str(frame.collect_schema()["price"]).startswith("Decimal")


def test_a_snapshot_run_replaces_only_its_own_partition_and_never_doubles(wh: Warehouse) -> None:
    publish_services(wh, "run-1", "2026-11-27", n=3)
    publish_services(wh, "run-2", "2026-11-28", n=4)
    publish_services(wh, "run-3", "2026-11-28", n=5)  # the same day again: replaced
    publish_services(wh, "run-4", "2026-11-28", n=2, country="pe")
    described = wh.describe("services")
    assert described is not None
    assert described.rows_per_partition == {
        "country=cl/snapshot_date=2026-11-27": 3,
        "country=cl/snapshot_date=2026-11-28": 5,
        "country=pe/snapshot_date=2026-11-28": 2,
    }
    assert described.version_id == "3"
    assert described.run_id == "run-4"


def test_time_travel_reads_the_previous_versions(wh: Warehouse) -> None:
    publish_services(wh, "run-1", "2026-11-28", n=3)
    publish_services(wh, "run-2", "2026-11-28", n=7)
    assert wh.read_current("services").count_rows() == 7
    assert wh.read_version("services", 0).count_rows() == 3
    history = wh.history("services")
    assert [h["run_id"] for h in history] == ["run-2", "run-1"]
    if wh.location.is_local:
        # By time: delta-rs dates a version by its log object's modification time, which S3
        # keeps to the second; the two commits here are milliseconds apart, so on S3 only the
        # version number tells them apart (yesterday's version is a day away in real use).
        first_at = datetime.fromtimestamp(history[1]["timestamp"] / 1000, UTC)
        assert wh.read_version("services", first_at).count_rows() == 3


def test_vacuum_keeps_versions_within_the_retention(storage: str, tmp_path: Path) -> None:
    wh = Warehouse(storage, scratch=tmp_path / "s", durable=False)
    publish_services(wh, "run-1", "2026-11-28", n=3)
    publish_services(wh, "run-2", "2026-11-28", n=4)
    assert wh.vacuum("services") == []  # 7 days: yesterday's version stays readable
    assert wh.read_version("services", 0).count_rows() == 3
    now = Warehouse(storage, scratch=tmp_path / "s", durable=False, retention=timedelta(0))
    removed = now.vacuum("services")
    assert len(removed) == 1
    assert "snapshot_date=2026-11-28" in removed[0]
    assert now.read_current("services").count_rows() == 4
    with pytest.raises(OSError, match=r"(?i)not found|no such file|404"):  # file gone
        now.read_version("services", 0).to_table()


def test_quarantine_commits_nothing_and_keeps_staging_and_report(wh: Warehouse) -> None:
    publish_services(wh, "run-1", "2026-11-28", n=3)
    stage_batch(wh, "services", "run-2", services_batch(services(9), NOW), DAY)
    where = wh.quarantine("services", "run-2", {"critical": ["row count"]})
    assert where == wh.quarantine_path("services", "run-2")
    assert wh.current_version("services") == "0"
    assert wh.read_current("services").count_rows() == 3
    fs, base = wh.location.arrow_fs()
    import pyarrow.fs as pafs

    names = sorted(
        i.path.rsplit("/", 1)[-1]
        for i in fs.get_file_info(
            pafs.FileSelector(f"{base}/_quarantine/services/run-2", recursive=True)
        )
        if i.type == pafs.FileType.File
    )
    assert names == ["_stage.json", "part-run-2-0.parquet", "validation_report.json"]
    assert not os.path.exists(wh.staging_path("services", "run-2"))
    # quarantined twice: both kept
    stage_batch(wh, "services", "run-2", services_batch(services(1), NOW), DAY)
    assert wh.quarantine("services", "run-2", {}).endswith("run-2.2")


def test_incomplete_or_drifted_staging_is_refused(wh: Warehouse) -> None:
    with pytest.raises(PublishError, match="no complete staging"):
        wh.publish("services", "never")
    with wh.stage("services", "run-1") as w:
        w.write(services_batch(services(2), NOW), DAY)  # no finish(): discarded
    with pytest.raises(PublishError):
        wh.publish("services", "run-1")
    batch = services_batch(services(2), NOW)
    with pytest.raises(SchemaMismatch), wh.stage("services", "run-2") as w:
        w.write(batch.drop_columns(["sku"]), DAY)
    assert wh.current_version("services") is None


def test_log_dataset_appends_and_a_republished_run_replaces_its_own_rows(wh: Warehouse) -> None:
    day = {"country": "cl", "extraction_date": "2026-11-28"}
    b = bookings_batch([booking(i) for i in range(3)], NOW)
    stage_batch(wh, "booking_changes", "run-1", booking_changes_batch(b, "run-1"), day)
    wh.publish("booking_changes", "run-1")
    stage_batch(wh, "booking_changes", "run-2", booking_changes_batch(b, "run-2"), day)
    wh.publish("booking_changes", "run-2")
    stage_batch(wh, "booking_changes", "run-2", booking_changes_batch(b, "run-2"), day)
    wh.publish("booking_changes", "run-2")  # a re-publish of run-2: not doubled
    rows = delta_rows(wh, "booking_changes", "run_id")
    assert rows == [("run-1",)] * 3 + [("run-2",)] * 3


def test_replace_scope_is_a_full_refresh_of_one_country(wh: Warehouse) -> None:
    publish_services(wh, "run-1", "2026-11-27", n=3)
    publish_services(wh, "run-2", "2026-11-27", n=2, country="pe")
    with wh.stage("services", "run-3") as w:
        w.write(services_batch(services(1), NOW), {"country": "cl", "snapshot_date": "2026-11-28"})
        w.finish(replace_scope={"country": "cl"}, finished_at=NOW)
    wh.publish("services", "run-3")
    described = wh.describe("services")
    assert described is not None
    assert described.rows_per_partition == {
        "country=cl/snapshot_date=2026-11-28": 1,
        "country=pe/snapshot_date=2026-11-27": 2,
    }


def _stage_bookings(wh: Warehouse, run_id: str, ids: range, base: str | None, wm: datetime) -> None:
    batch = bookings_batch([booking(i, start=T0.replace(month=1)) for i in ids], NOW)
    with wh.stage("bookings", run_id, base_version=base) as w:
        w.write(batch, {"country": "cl", "scheduled_month": "2026-01"})
        w.finish(watermark_after=wm, finished_at=NOW)


def test_watermark_lives_in_the_commit_and_never_moves_back(wh: Warehouse) -> None:
    assert wh.watermark("bookings", "cl") is None  # no table: a full extraction
    t1, t2 = NOW, NOW + timedelta(hours=1)
    _stage_bookings(wh, "run-1", range(2), None, t2)
    wh.publish("bookings", "run-1")
    assert wh.watermark("bookings", "cl") == t2
    assert wh.watermark("bookings", "pe") is None  # no rows of pe: a full extraction for it
    _stage_bookings(wh, "run-2", range(2), "0", t1)  # a run that saw only the overlap
    wh.publish("bookings", "run-2")
    assert wh.watermark("bookings", "cl") == t2
    commit = wh.history("bookings", 1)[0]
    assert (commit["run_id"], commit["country"]) == ("run-2", "cl")
    assert commit["watermarks"] == {"cl": t2.isoformat()}


def test_merged_dataset_refuses_a_stale_base(wh: Warehouse) -> None:
    _stage_bookings(wh, "run-1", range(2), None, NOW)
    wh.publish("bookings", "run-1")
    _stage_bookings(wh, "run-2", range(3), "0", NOW)
    _stage_bookings(wh, "run-3", range(4), "0", NOW)  # built on the same base
    wh.publish("bookings", "run-2")
    with pytest.raises(PublishConflict, match="re-run the merge"):
        wh.publish("bookings", "run-3")
    assert wh.read_current("bookings").count_rows() == 3


def _widened(spec: schemas_module.DatasetSpec) -> schemas_module.DatasetSpec:
    extra = pa.field("rating", pa.int32(), nullable=True)
    return dataclasses.replace(spec, version=spec.version + 1, fields=(*spec.fields, extra))


def test_schema_evolution_adds_nullable_columns_and_refuses_the_rest(
    wh: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = DATASETS["services"]
    wide = _widened(spec)
    assert evolution(spec, table_schema(spec)) is None
    assert evolution(wide, table_schema(spec)) == "merge"
    changed = dataclasses.replace(
        spec,
        fields=tuple(
            pa.field(f.name, pa.int64(), nullable=False) if f.name == "sku" else f
            for f in spec.fields
        ),
    )
    with pytest.raises(SchemaEvolutionRefused, match="sku: string in the table, int64 declared"):
        evolution(changed, table_schema(spec))
    strict = dataclasses.replace(
        wide, fields=(*spec.fields, pa.field("rating", pa.int32(), nullable=False))
    )
    with pytest.raises(SchemaEvolutionRefused, match="new column rating is not nullable"):
        evolution(strict, table_schema(spec))

    publish_services(wh, "run-1", "2026-11-27", n=2)
    batch = services_batch(services(3), NOW)
    monkeypatch.setitem(DATASETS, "services", wide)
    assert wh.check_schema("services") == "merge"
    batch = pa.record_batch(
        [*batch.columns, pa.array([5, None, 1], pa.int32())], schema=wide.schema
    )
    stage_batch(wh, "services", "run-2", batch, {"country": "cl", "snapshot_date": "2026-11-28"})
    wh.publish("services", "run-2")
    table = wh.read_current("services").to_table()
    assert table.schema == table_schema(wide)
    ratings = sorted(
        zip(table["snapshot_date"].to_pylist(), table["rating"].to_pylist(), strict=True),
        key=str,
    )
    assert [r for d, r in ratings if d == "2026-11-27"] == [None, None]
    monkeypatch.setitem(DATASETS, "services", changed)
    with pytest.raises(SchemaEvolutionRefused):
        wh.check_schema("services")


def _publish_country(root: str, scratch: str, country: str, env: dict[str, str], n: int) -> None:
    os.environ.update(env)
    wh = Warehouse(root, scratch=scratch, durable=False)
    for k in range(n):
        day = f"2026-11-{10 + k:02d}"
        batch = services_batch(services(3 + k), NOW)
        stage_batch(
            wh, "services", f"run-{k}-{country}", batch, {"country": country, "snapshot_date": day}
        )
        wh.publish("services", f"run-{k}-{country}")


def test_two_processes_publishing_different_countries_both_land(
    storage: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
    first = Warehouse(storage, scratch=tmp_path / "s0", durable=False)
    publish_services(first, "run-0", "2026-11-01", n=1, country="co")  # the table exists
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(
            target=_publish_country, args=(storage, str(tmp_path / c), c, env, 4), daemon=True
        )
        for c in ("cl", "pe")
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=240)
    assert [p.exitcode for p in procs] == [0, 0]
    described = first.describe("services")
    assert described is not None
    assert described.version_id == "8"  # 1 + 2 x 4 commits, none lost
    for c in ("cl", "pe"):
        for k in range(4):
            assert (
                described.rows_per_partition[f"country={c}/snapshot_date=2026-11-{10 + k}"] == 3 + k
            )


def test_roots_and_urls(tmp_path: Path) -> None:
    assert parse_location(str(tmp_path)).is_local
    assert parse_location(f"file://{tmp_path}").uri == str(tmp_path)
    s3 = parse_location("s3://bucket/wh/", s3_endpoint_url="http://127.0.0.1:9", s3_allow_http=True)
    assert s3.uri == "s3://bucket/wh"
    assert s3.storage_options == {
        "conditional_put": "etag",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "AWS_ALLOW_HTTP": "true",
    }
    with pytest.raises(ConfigurationError, match="must not carry credentials"):
        parse_location("s3://AKIA:secret@bucket/wh")
    with pytest.raises(ConfigurationError, match="unsupported scheme"):
        parse_location("ftp://host/wh")
    with pytest.raises(ValueError, match="unknown dataset"):
        Warehouse(tmp_path).table_uri("nope")
    with pytest.raises(ValueError, match="run id"):
        Warehouse(tmp_path).stage("services", "../x")
