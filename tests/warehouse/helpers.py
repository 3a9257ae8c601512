"""Small helpers shared by the warehouse tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pyarrow as pa

from sodtrack.contract.models import Service
from sodtrack.warehouse import Manifest, Warehouse
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
) -> Manifest:
    batch = services_batch(services(n, price=price), NOW)
    stage_batch(wh, "services", run_id, batch, {"country": country, "snapshot_date": day})
    return wh.publish("services", run_id)
