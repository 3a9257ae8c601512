"""The warehouse layer: typed Parquet datasets with atomic, validated publishing.

Library only (no Prefect): the flows call it.

* ``schemas``  — explicit, versioned Arrow schemas per dataset (golden files pin them);
* ``convert``  — pages of API models → record batches;
* ``writer``   — streaming staging writer (bounded memory);
* ``publish``  — ``Warehouse``: stage → validate → publish (atomic) or quarantine; versions,
  manifests, garbage collection;
* ``bookings`` — the bounded-memory bookings merge (changes log + latest state per month);
* ``fs``/``layout``/``manifest`` — the filesystem seam, the on-disk layout, the manifest.

Readers need nothing from here: ``<root>/<dataset>/current`` is hive-partitioned Parquet::

    -- DuckDB
    SELECT * FROM read_parquet('data/warehouse/bookings/current/**/*.parquet',
                               hive_partitioning = true);
    # pandas / pyarrow
    pd.read_parquet("data/warehouse/bookings/current")
    pyarrow.dataset.dataset("data/warehouse/bookings/current", partitioning="hive")
    # polars
    pl.scan_parquet("data/warehouse/bookings/current/**/*.parquet", hive_partitioning=True)

Partition values are strings in the paths; DuckDB and polars sniff ``snapshot_date`` and
``extraction_date`` as DATE, pandas gives categoricals. ``current`` is swapped atomically, so a
query sees one complete version; a long-running reader that must not see a newer version
mid-way resolves it first (``os.path.realpath``, or ``Warehouse.read_current``). A dataset
with no partition at all (nothing extracted yet) has no file, and DuckDB's glob then raises
"No files found".
"""

from sodtrack.errors import LockTimeout
from sodtrack.warehouse.manifest import Manifest
from sodtrack.warehouse.publish import PublishConflict, PublishError, Warehouse
from sodtrack.warehouse.schemas import DATASETS, SCHEMA_VERSION, DatasetKind, DatasetSpec, get_spec
from sodtrack.warehouse.writer import SchemaMismatch, StageInfo, StagingWriter

__all__ = [
    "DATASETS",
    "SCHEMA_VERSION",
    "DatasetKind",
    "DatasetSpec",
    "LockTimeout",
    "Manifest",
    "PublishConflict",
    "PublishError",
    "SchemaMismatch",
    "StageInfo",
    "StagingWriter",
    "Warehouse",
    "get_spec",
]
