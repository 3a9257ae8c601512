"""Where things live under the warehouse root, and how partitions are named.

::

    <root>/<dataset>/_delta_log/                   the Delta log: the versions (delta-rs)
    <root>/<dataset>/country=cl/snapshot_date=2026-11-28/part-….parquet   data files
    <scratch>/<dataset>/_staging/<run_id>/         a run's output awaiting validation
    <scratch>/<dataset>/_staging/<run_id>/_stage.json  written last: the staging is complete
    <scratch>/_work/<run_id>-bookings-<country>/   the bookings merge's work files
    <root>/_quarantine/<dataset>/<run_id>/         a rejected run, with its validation report

``scratch`` is ``root`` for a local warehouse (the ``_``-prefixed folders are not part of the
tables: Delta readers read the log) and a local folder for one on object storage. Readers
read ``<root>/<dataset>`` through Delta (``delta_scan``, ``scan_delta``, ``DeltaTable``),
never its files by glob: files of replaced versions stay there until ``vacuum``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from sodtrack.warehouse.schemas import DatasetSpec

STAGING = "_staging"
QUARANTINE = "_quarantine"
STAGE_INFO = "_stage.json"

_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

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


def file_name(run_id: str, index: int) -> str:
    """Data file names carry the run that wrote them; a name is never reused for new bytes."""
    return f"part-{run_id}-{index}.parquet"
