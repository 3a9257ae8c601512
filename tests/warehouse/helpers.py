"""Small helpers shared by the warehouse tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import duckdb
import pyarrow as pa

from sodtrack.contract.models import Service
from sodtrack.warehouse import TableVersion, Warehouse
from sodtrack.warehouse.convert import services_batch

from .factories import service

NOW = datetime(2026, 11, 28, 4, 0, tzinfo=UTC)


def stage_batch(
    wh: Warehouse,
    dataset: str,
    run_id: str,
    batch: pa.RecordBatch,
    partition: dict[str, str],
) -> None:
    with wh.stage(dataset, run_id) as w:
        w.write(batch, partition)
        w.finish(finished_at=NOW)


def services(n: int, start: int = 0, price: str = "45990") -> Sequence[Service]:
    return [service(i, base_price=price) for i in range(start, start + n)]


def publish_services(
    wh: Warehouse, run_id: str, day: str, n: int = 3, country: str = "cl", price: str = "45990"
) -> TableVersion:
    batch = services_batch(services(n, price=price), NOW)
    stage_batch(wh, "services", run_id, batch, {"country": country, "snapshot_date": day})
    return wh.publish("services", run_id)


def delta_rows(wh: Warehouse, dataset: str, cols: str) -> list[tuple[object, ...]]:
    """The dataset's latest version read through deltalake → Arrow → DuckDB, sorted.

    DuckDB's own ``delta_scan`` needs its ``delta`` extension, which it downloads on first
    use (not possible offline): the Arrow route is what runs here."""
    if wh.current_version(dataset) is None:
        return []
    data = wh.read_current(dataset).to_table()  # noqa: F841 - DuckDB reads the local name
    con = duckdb.connect()
    return con.execute(f"SELECT {cols} FROM data ORDER BY ALL").fetchall()  # noqa: S608
