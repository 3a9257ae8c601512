"""The warehouse layer: typed Parquet datasets with atomic, validated publishing.

Library only (no Prefect): the flows call it.

* ``schemas``  — explicit, versioned Arrow schemas per dataset (golden files pin them);
* ``convert``  — pages of API models → record batches;
* ``writer``   — streaming staging writer (bounded memory);
* ``publish``  — ``Warehouse``: stage → validate → publish (atomic) or quarantine; versions,
  manifests, garbage collection;
* ``bookings`` — the bounded-memory bookings merge (changes log + latest state per month);
* ``fs``/``layout``/``manifest`` — the filesystem seam, the on-disk layout, the manifest.

Readers need nothing from here: ``<root>/<dataset>/current`` is hive-partitioned Parquet.
"""

from sodtrack.warehouse.fs import LockTimeout
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
