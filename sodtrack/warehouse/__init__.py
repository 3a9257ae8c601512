"""The warehouse layer: typed Delta Lake tables with validated, atomic publishing.

Library only (no Prefect): the flows call it.

* ``schemas``  — explicit, versioned Arrow schemas per dataset (golden files pin them);
* ``convert``  — pages of API models → record batches;
* ``writer``   — streaming staging writer (bounded memory);
* ``publish``  — ``Warehouse``: stage → validate → one Delta commit, or quarantine; the
  watermark in the commit's metadata; time travel and vacuum;
* ``bookings`` — the bounded-memory bookings merge (changes log + latest state per month);
* ``location`` — a local folder or an ``s3://`` URL and its storage options;
* ``migrate``  — turns the pre-Delta layout (``current`` symlink, ``_versions/``) into tables;
* ``fs``/``layout`` — the local scratch space (stagings) and its names.

Readers need nothing from here: ``<root>/<dataset>`` is a Delta table (hive-partitioned
Parquet files plus ``_delta_log/``; read the log, never the folder's files)::

    -- DuckDB (the delta extension)
    SELECT * FROM delta_scan('data/warehouse/bookings');
    # polars
    pl.scan_delta("data/warehouse/bookings")
    # pandas / pyarrow
    DeltaTable("data/warehouse/bookings").to_pandas()
    # yesterday's version (time travel)
    dt = DeltaTable("data/warehouse/bookings"); dt.load_as_version(datetime(...)); dt.to_pandas()

Partition columns are strings. Each commit is atomic: a reader sees one complete version.
"""

from sodtrack.warehouse.publish import (
    PublishConflict,
    PublishError,
    SchemaEvolutionRefused,
    TableVersion,
    Warehouse,
)
from sodtrack.warehouse.schemas import DATASETS, SCHEMA_VERSION, DatasetKind, DatasetSpec, get_spec
from sodtrack.warehouse.writer import SchemaMismatch, StageInfo, StagingWriter

__all__ = [
    "DATASETS",
    "SCHEMA_VERSION",
    "DatasetKind",
    "DatasetSpec",
    "PublishConflict",
    "PublishError",
    "SchemaEvolutionRefused",
    "SchemaMismatch",
    "StageInfo",
    "StagingWriter",
    "TableVersion",
    "Warehouse",
    "get_spec",
]
