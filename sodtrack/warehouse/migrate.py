"""``sodtrack-etl warehouse migrate``: the pre-Delta layout → one Delta Lake table per dataset.

The old layout (before Delta, see git history of ``publish.py``)::

    <root>/<dataset>/current -> _versions/<version>/data      hive-partitioned Parquet
    <root>/<dataset>/_versions/<version>/_manifest.json        run id, watermarks, stats
    <root>/<dataset>/_publish.lock

For each dataset with a ``current`` link, the current version's rows are streamed into a new
Delta table (``target``: the same root by default, or another one such as ``s3://…``) as its
version 0, whose commit carries the old version id, its run id and its ``watermark_after``
(for the country of that run: the old manifests hold nothing for other countries, whose next
run then reads everything and merges, once). The row count of the new table is checked
against the old version's before anything old is removed. A migration killed half-way is
re-run safely: a table written but not verified still has its ``current`` link, and is
rewritten (``mode="overwrite"``); a dataset
without ``current`` (migrated, or never published) is skipped.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass
from datetime import timedelta

import pyarrow.dataset as ds
from deltalake import CommitProperties, write_deltalake

from sodtrack.errors import WarehouseError
from sodtrack.warehouse.publish import (
    DEFAULT_RETENTION,
    META_PREFIX,
    STREAM_BATCH_ROWS,
    Warehouse,
    table_schema,
)
from sodtrack.warehouse.schemas import DATASETS

log = logging.getLogger(__name__)

OLD_CURRENT = "current"
OLD_VERSIONS = "_versions"
OLD_MANIFEST = "_manifest.json"
OLD_LOCK = "_publish.lock"


class MigrationError(WarehouseError):
    """The migrated table does not hold the old version's rows."""


@dataclass(frozen=True, slots=True)
class Migrated:
    dataset: str
    old_version: str
    rows: int
    table: str


def migrate(
    root: str, *, target: Warehouse | None = None, retention: timedelta = DEFAULT_RETENTION
) -> list[Migrated]:
    """Migrate every dataset of the old-layout warehouse at ``root`` (a local folder)."""
    root = os.path.abspath(root)
    dest = target or Warehouse(root, retention=retention)
    done: list[Migrated] = []
    for name, spec in DATASETS.items():
        folder = os.path.join(root, name)
        current = os.path.join(folder, OLD_CURRENT)
        if not os.path.islink(current):
            continue
        data_dir = os.path.realpath(current)
        version_dir = os.path.dirname(data_dir)
        old_version = os.path.basename(version_dir)
        with open(os.path.join(version_dir, OLD_MANIFEST), "rb") as fh:
            manifest = json.loads(fh.read())
        data = ds.dataset(
            data_dir,
            schema=table_schema(spec),
            format="parquet",
            partitioning=ds.partitioning(spec.partition_schema, flavor="hive"),
        )
        expected = int(manifest["total_rows"])
        run_id = manifest.get("run_id")
        country = run_id.rsplit("-", 1)[-1] if run_id and "-" in run_id else None
        watermark = (manifest.get("watermark") or {}).get("after")
        meta = {
            "run_id": run_id,
            "dataset": name,
            "country": country,
            "migrated_from": old_version,
            "watermark_after": watermark,
            "watermarks": {country: watermark} if country and watermark else {},
            "stats": manifest.get("stats") or {},
        }
        days = max(1, int(dest.retention.total_seconds() // 86400))
        write_deltalake(
            dest.table_uri(name),
            data.scanner(batch_size=STREAM_BATCH_ROWS).to_reader(),
            mode="overwrite",
            partition_by=list(spec.partition_keys),
            storage_options=dest.storage_options or None,
            configuration={
                "delta.logRetentionDuration": f"interval {days} days",
                "delta.deletedFileRetentionDuration": f"interval {days} days",
            },
            commit_properties=CommitProperties(
                custom_metadata={META_PREFIX + k: json.dumps(v) for k, v in meta.items()}
            ),
        )
        described = dest.describe(name)
        rows = described.total_rows if described else 0
        if rows != expected:
            raise MigrationError(
                f"{name}: the Delta table holds {rows} rows, the old version {old_version} "
                f"{expected}; the old layout is kept"
            )
        os.unlink(current)
        shutil.rmtree(os.path.join(folder, OLD_VERSIONS), ignore_errors=True)
        lock = os.path.join(folder, OLD_LOCK)
        if os.path.exists(lock):
            os.unlink(lock)
        log.info("%s: %s migrated, %d rows, to %s", name, old_version, rows, dest.table_uri(name))
        done.append(Migrated(name, old_version, rows, dest.table_uri(name)))
    return done
