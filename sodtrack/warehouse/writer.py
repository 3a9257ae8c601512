"""Streaming writer of one run's staged output for one dataset.

A run feeds batches as pages arrive; each partition gets a ``pq.ParquetWriter`` whose rows are
buffered only up to one row group (``row_group_rows``), so memory is bounded by
``open partitions × row group``, not by the size of the run. Producers that write partitions
one after another close each with ``close_partition`` to keep that to one.

Every batch is checked against the dataset schema (names, order, types, non-null columns) and
cast where only the physical type differs (DuckDB's Arrow output, for instance); nothing is
inferred.

The staging is complete only when ``finish()`` has written ``_stage.json`` (the last step):
publish refuses a staging without it, so a writer killed mid-file leaves nothing publishable.
Starting a run id's staging wipes what an earlier attempt of the same run left.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from sodtrack.errors import WarehouseError
from sodtrack.warehouse import layout
from sodtrack.warehouse.fs import LocalFS
from sodtrack.warehouse.schemas import DatasetKind, DatasetSpec

log = logging.getLogger(__name__)

DEFAULT_ROW_GROUP_ROWS = 128 * 1024
PARQUET_OPTIONS: dict[str, Any] = {"compression": "zstd", "write_statistics": True}


class SchemaMismatch(WarehouseError, ValueError):
    """A batch does not have the dataset's schema (drift is an error, never a silent file)."""


def conform(batch: pa.RecordBatch, spec: DatasetSpec) -> pa.RecordBatch:
    """Return ``batch`` with exactly the dataset schema, or raise ``SchemaMismatch``.

    Casting is allowed only between types that hold the same values (``string_view`` →
    ``string``, ``large_string`` → ``string``, a timestamp in another unit or zone → UTC µs,
    int64 → int32 when it fits): Arrow's safe cast raises on anything lossy.
    """
    schema = spec.schema
    if batch.schema.names != schema.names:
        raise SchemaMismatch(
            f"{spec.name}: columns {batch.schema.names} differ from {schema.names}"
        )
    for f, column in zip(schema, batch.columns, strict=True):
        if not f.nullable and column.null_count:
            raise SchemaMismatch(
                f"{spec.name}.{f.name} is not nullable but has {column.null_count} nulls"
            )
    if not batch.schema.equals(schema, check_metadata=False):
        try:
            batch = batch.cast(schema, safe=True)
        except (pa.ArrowException, ValueError) as exc:
            raise SchemaMismatch(f"{spec.name}: cannot cast to the dataset schema: {exc}") from exc
    return batch.replace_schema_metadata(schema.metadata)


@dataclass
class _Open:
    path: str
    writer: pq.ParquetWriter
    rows_in_file: int = 0
    buffer: list[pa.RecordBatch] = field(default_factory=list)
    buffered: int = 0


@dataclass(frozen=True, slots=True)
class StagedFile:
    partition: str
    name: str
    rows: int


@dataclass(frozen=True, slots=True)
class StageInfo:
    """What a finished staging holds and what its publish should do (``_stage.json``)."""

    dataset: str
    run_id: str
    schema_version: int
    files: tuple[StagedFile, ...]
    replace_partitions: tuple[str, ...]
    replace_scope: Mapping[str, str] | None
    base_version: str | None
    watermark_before: str | None
    watermark_after: str | None
    stats: Mapping[str, Any]
    finished_at: str

    @property
    def partitions(self) -> dict[str, int]:
        rows: dict[str, int] = {}
        for f in self.files:
            rows[f.partition] = rows.get(f.partition, 0) + f.rows
        return rows

    @property
    def total_rows(self) -> int:
        return sum(f.rows for f in self.files)

    def to_json(self) -> bytes:
        doc = {
            "dataset": self.dataset,
            "run_id": self.run_id,
            "schema_version": self.schema_version,
            "files": [
                {"partition": f.partition, "name": f.name, "rows": f.rows} for f in self.files
            ],
            "replace_partitions": list(self.replace_partitions),
            "replace_scope": dict(self.replace_scope) if self.replace_scope is not None else None,
            "base_version": self.base_version,
            "watermark_before": self.watermark_before,
            "watermark_after": self.watermark_after,
            "stats": dict(self.stats),
            "finished_at": self.finished_at,
        }
        return json.dumps(doc, indent=2, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> StageInfo:
        d = json.loads(data)
        return cls(
            dataset=d["dataset"],
            run_id=d["run_id"],
            schema_version=d["schema_version"],
            files=tuple(StagedFile(f["partition"], f["name"], f["rows"]) for f in d["files"]),
            replace_partitions=tuple(d["replace_partitions"]),
            replace_scope=d["replace_scope"],
            base_version=d["base_version"],
            watermark_before=d["watermark_before"],
            watermark_after=d["watermark_after"],
            stats=d["stats"],
            finished_at=d["finished_at"],
        )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


class StagingWriter:
    """Writes one run's batches for one dataset into ``<dataset>/_staging/<run_id>/``.

    Use as a context manager; ``finish()`` commits the staging. Leaving the block without
    ``finish()`` (an exception, an early return) discards it.
    Obtain it from ``Warehouse.stage()``.
    """

    def __init__(
        self,
        fs: LocalFS,
        path: str,
        spec: DatasetSpec,
        run_id: str,
        *,
        base_version: str | None = None,
        row_group_rows: int = DEFAULT_ROW_GROUP_ROWS,
        max_rows_per_file: int | None = None,
    ) -> None:
        self.fs = fs
        self.path = path
        self.spec = spec
        self.run_id = layout.check_run_id(run_id)
        self.base_version = base_version
        self.row_group_rows = row_group_rows
        self.max_rows_per_file = max_rows_per_file
        self._schema = spec.file_schema(run_id)
        self._open: dict[str, _Open] = {}
        self._files: list[StagedFile] = []
        self._file_index: dict[str, int] = {}
        self._replace: set[str] = set()
        self._finished = False
        # An earlier attempt of this run id may have left files: start from an empty directory.
        fs.remove_tree(path)
        fs.make_dirs(path)

    # ------------------------------------------------------------------ writing

    def write(self, batch: pa.RecordBatch, partition: Mapping[str, str]) -> None:
        """Append ``batch`` (dataset schema, no partition columns) to ``partition``."""
        self._check_open()
        key = layout.partition_path(layout.partition(self.spec, partition))
        batch = conform(batch, self.spec)
        if batch.num_rows == 0:
            self.touch(partition)
            return
        offset = 0
        while offset < batch.num_rows:
            handle = self._handle(key)
            room = batch.num_rows - offset
            if self.max_rows_per_file is not None:
                room = min(room, self.max_rows_per_file - handle.rows_in_file - handle.buffered)
            piece = batch.slice(offset, room)
            handle.buffer.append(piece)
            handle.buffered += piece.num_rows
            offset += piece.num_rows
            if handle.buffered >= self.row_group_rows:
                self._flush(handle)
            if (
                self.max_rows_per_file is not None
                and handle.rows_in_file + handle.buffered >= self.max_rows_per_file
            ):
                self._close_file(key)

    def write_table(self, table: pa.Table, partition: Mapping[str, str]) -> None:
        for batch in table.to_batches():
            self.write(batch, partition)
        if table.num_rows == 0:
            self.touch(partition)

    def touch(self, partition: Mapping[str, str]) -> None:
        """Declare ``partition`` written even if no rows come: it is published as an empty
        file (an empty snapshot is a fact, not a missing one)."""
        self._check_open()
        key = layout.partition_path(layout.partition(self.spec, partition))
        if key not in self._open and key not in self._file_index:
            self._handle(key)

    def close_partition(self, partition: Mapping[str, str]) -> None:
        """Flush and close ``partition``'s file now (a producer that writes partitions one
        after another calls this, so only one partition's row group is ever buffered).
        Writing to it again later starts a new file."""
        self._check_open()
        key = layout.partition_path(layout.partition(self.spec, partition))
        if key in self._open:
            self._close_file(key)

    def replace(self, partitions: Iterable[Mapping[str, str]]) -> None:
        """Declare partitions this run replaces even if it writes nothing to them: publish
        removes those left without staged files (a month every booking moved out of)."""
        for values in partitions:
            self._replace.add(layout.partition_path(layout.partition(self.spec, values)))

    # ------------------------------------------------------------------ committing

    def finish(
        self,
        *,
        replace_scope: Mapping[str, str] | None = None,
        watermark_before: datetime | None = None,
        watermark_after: datetime | None = None,
        stats: Mapping[str, Any] | None = None,
        finished_at: datetime,
    ) -> StageInfo:
        """Close every file and commit the staging by writing ``_stage.json`` last.

        ``replace_scope`` (e.g. ``{"country": "cl"}``) makes publish drop every existing
        partition in the scope that this run did not write: a full refresh.
        """
        self._check_open()
        for key in list(self._open):
            self._close_file(key)
        for f in self._files:
            self.fs.sync_file(self.fs.join(self.path, f.partition, f.name))
        staged = {f.partition for f in self._files}
        if self.spec.kind is DatasetKind.LOG and (self._replace or replace_scope):
            raise ValueError(f"{self.spec.name} is a log: runs add files, they replace nothing")
        info = StageInfo(
            dataset=self.spec.name,
            run_id=self.run_id,
            schema_version=self.spec.version,
            files=tuple(sorted(self._files, key=lambda f: (f.partition, f.name))),
            replace_partitions=tuple(sorted(staged | self._replace)),
            replace_scope=dict(replace_scope) if replace_scope is not None else None,
            base_version=self.base_version,
            watermark_before=_iso(watermark_before),
            watermark_after=_iso(watermark_after),
            stats=dict(stats or {}),
            finished_at=finished_at.isoformat(),
        )
        self.fs.write_bytes_atomic(self.fs.join(self.path, layout.STAGE_INFO), info.to_json())
        self.fs.sync_dir(self.path)
        self._finished = True
        return info

    def abort(self) -> None:
        """Discard the staging (closing open files first)."""
        for handle in self._open.values():
            handle.writer.close()
        self._open.clear()
        self._finished = True
        self.fs.remove_tree(self.path)

    def __enter__(self) -> StagingWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._finished:
            if exc_type is None:
                log.warning(
                    "%s/%s: staging left without finish(): discarded", self.spec.name, self.run_id
                )
            self.abort()

    # ------------------------------------------------------------------ internals

    def _check_open(self) -> None:
        if self._finished:
            raise RuntimeError("staging already finished or aborted")

    def _handle(self, key: str) -> _Open:
        handle = self._open.get(key)
        if handle is None:
            index = self._file_index.get(key, -1) + 1
            self._file_index[key] = index
            directory = self.fs.join(self.path, key)
            self.fs.make_dirs(directory)
            path = self.fs.join(directory, layout.file_name(self.run_id, index))
            self.fs.remove_file(path)  # never reopen an existing (possibly shared) inode
            writer = pq.ParquetWriter(
                path, self._schema, filesystem=self.fs.arrow, **PARQUET_OPTIONS
            )
            handle = self._open[key] = _Open(path, writer)
        return handle

    def _flush(self, handle: _Open) -> None:
        if handle.buffered:
            table = pa.Table.from_batches(handle.buffer, schema=self._schema)
            handle.writer.write_table(table, row_group_size=self.row_group_rows)
            handle.rows_in_file += handle.buffered
            handle.buffer.clear()
            handle.buffered = 0

    def _close_file(self, key: str) -> None:
        handle = self._open.pop(key)
        self._flush(handle)
        handle.writer.close()
        name = handle.path.rsplit("/", 1)[-1]
        self._files.append(StagedFile(key, name, handle.rows_in_file))
