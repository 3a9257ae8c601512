"""Where things live under the warehouse root, and how partitions are named.

::

    <root>/<dataset>/current                  -> _versions/<version_id>/data  (relative symlink)
    <root>/<dataset>/_versions/<version_id>/_manifest.json
    <root>/<dataset>/_versions/<version_id>/data/country=cl/snapshot_date=2026-11-28/part-<run>-0.parquet
    <root>/<dataset>/_versions/.tmp-<version_id>/   a version being built (never read)
    <root>/<dataset>/_staging/<run_id>/            a run's output awaiting validation
    <root>/<dataset>/_staging/<run_id>/_stage.json  written last: the staging is complete
    <root>/<dataset>/_publish.lock                 flock serialising publishers
    <root>/_quarantine/<dataset>/<run_id>/         a rejected run, with its validation report

Readers only ever read ``<root>/<dataset>/current``, which holds partition directories and
Parquet files and nothing else: polars refuses a directory with files of mixed extensions, so
the manifest sits beside ``data/`` rather than in it (``current/../_manifest.json`` from a
shell). Other non-data names start with ``_`` or ``.``, which pyarrow's, pandas' and DuckDB's
hive readers skip or never reach.

Version ids are ``v<6-digit sequence>-<run_id>``: the sequence (taken under the publish lock)
orders versions without trusting clocks, the run id says who made it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from sodtrack.warehouse.schemas import DatasetSpec

CURRENT = "current"
VERSIONS = "_versions"
STAGING = "_staging"
QUARANTINE = "_quarantine"
MANIFEST = "_manifest.json"
DATA = "data"
STAGE_INFO = "_stage.json"
LOCK = "_publish.lock"
TMP_PREFIX = ".tmp-"

_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_VERSION = re.compile(r"^v(\d{6,})-(.+)$")

Partition = tuple[tuple[str, str], ...]
"""Partition key values in the dataset's key order: ``(("country", "cl"), ...)``."""


def check_run_id(run_id: str) -> str:
    """Run ids become path segments and file names: keep them to a safe alphabet."""
    if not _SAFE.fullmatch(run_id):
        raise ValueError(f"run id {run_id!r} must match {_SAFE.pattern}")
    return run_id


def partition(spec: DatasetSpec, values: Mapping[str, str]) -> Partition:
    """Validate and order partition values for ``spec`` (every key, nothing else)."""
    if set(values) != set(spec.partition_keys):
        raise ValueError(
            f"{spec.name} partitions need exactly {list(spec.partition_keys)}, got {sorted(values)}"
        )
    out = []
    for key in spec.partition_keys:
        value = values[key]
        if not isinstance(value, str) or not _SAFE.fullmatch(value):
            raise ValueError(f"partition value {key}={value!r} must match {_SAFE.pattern}")
        out.append((key, value))
    return tuple(out)


def partition_path(part: Partition) -> str:
    """Hive path of a partition: ``country=cl/snapshot_date=2026-11-28``."""
    return "/".join(f"{k}={v}" for k, v in part)


def parse_partition_path(spec: DatasetSpec, path: str) -> Partition:
    segments = path.strip("/").split("/")
    values = {}
    for seg in segments:
        key, sep, value = seg.partition("=")
        if not sep:
            raise ValueError(f"not a hive partition path: {path!r}")
        values[key] = value
    return partition(spec, values)


def matches(part: Partition, scope: Mapping[str, str]) -> bool:
    """Whether a partition lies inside a scope such as ``{"country": "cl"}``."""
    values = dict(part)
    return all(values.get(k) == v for k, v in scope.items())


def version_id(seq: int, run_id: str) -> str:
    return f"v{seq:06d}-{run_id}"


def version_seq(version: str) -> int | None:
    m = _VERSION.fullmatch(version)
    return int(m.group(1)) if m else None


def file_name(run_id: str, index: int) -> str:
    """Data file names carry the run that wrote them; a name is never reused for new bytes."""
    return f"part-{run_id}-{index}.parquet"
