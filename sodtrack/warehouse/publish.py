"""Staging, validation hand-off, publish as one Delta Lake commit, quarantine, time travel.

Every dataset is a Delta Lake table at ``<root>/<dataset>`` (``root`` a folder or an
``s3://`` URL, see ``sodtrack.warehouse.location``), written with ``deltalake`` (delta-rs).
The life of one run's output for one dataset::

    stage()  ──►  <scratch>/<dataset>/_staging/<run_id>/   (local Parquet + _stage.json)
                   │   (validation by others: staged_dataset/staged_table)
                   ├─► publish()    → ONE Delta commit (the only thing readers ever see)
                   └─► quarantine() → <root>/_quarantine/<dataset>/<run_id>/ + report,
                                      nothing committed

``scratch`` is the warehouse folder itself when it is local (the staging sits beside the
table, ``_``-prefixed, never part of it: Delta readers read the log, not the folder) and a
local work folder (``SODTRACK_WAREHOUSE_SCRATCH``) when the warehouse is on object storage.

``publish`` commits the staged Parquet files themselves: each is hard-linked (local) or
copied, streamed (object storage), into the table's folder under a fresh name, and one commit
adds them and removes the files they replace (``create_write_transaction``). Nothing is
decoded or re-encoded, so its memory does not grow with the data (``write_deltalake``
buffered every row it wrote: 1.2 GiB peak at 1M bookings). The add actions carry the row
count only (no min/max: readers skip files by partition). A schema evolution, or a log file
holding rows of other runs as well, goes through ``write_deltalake`` instead. The commit's
kind follows the dataset's kind (``schemas.DatasetKind``):

* snapshots: ``overwrite`` with ``predicate`` = the staged ``(country, snapshot_date)``
  partitions (a replace-where): two runs on one day replace, never double, the rows; with
  ``replace_scope`` (a full refresh) every partition of the scope is replaced;
* merged (``bookings``): a replace-where of the touched month partitions, whose content the
  merge (``bookings.py``) rebuilt from the pinned base version; months every booking left
  are emptied by the same commit;
* logs (``booking_changes``): an append; re-publishing the same run id replaces that run's
  own rows (``run_id = …`` in the predicate) instead of doubling them.

The commit carries, in its ``commitInfo`` (``CommitProperties.custom_metadata``), the run id,
the country, the partitions it replaced, the run's watermarks and the stats: the data and the
watermark it was extracted to are one atomic object. ``watermark(dataset, country)`` reads it
back; an empty or new table has none, so the next run extracts everything.

Concurrency. delta-rs commits optimistically: two writers of different countries both land
(the loser of a version re-reads the log and commits the next one; S3 needs conditional puts,
set by ``location``). For ``bookings`` the merge reads a base version before the commit: if
another commit since that base replaced partitions this run replaces (the same country, e.g.
a second run of it), ``publish`` raises ``PublishConflict`` instead of losing its update. The
commit is made from the table loaded at the base version, so delta-rs's own conflict checker
(serializable: files added or removed since the read version in the replaced partitions)
refuses it atomically, at commit time; a check of the history before the commit gives the
early message. Runs of one country are also serialised by the state store's country lock.

Schema evolution is explicit: a table whose schema is the dataset's minus trailing nullable
columns is widened by the commit (``schema_mode="merge"``); any other difference (a type, a
nullability, an order) raises ``SchemaEvolutionRefused`` with the differences, and the gate
reports it.

Old versions stay readable by time travel (``read_version``) for ``retention`` (default 7
days, ``SODTRACK_WAREHOUSE_RETENTION_DAYS``), written into each table as
``delta.logRetentionDuration`` / ``delta.deletedFileRetentionDuration``; ``vacuum`` (run by
the nightly) deletes the files no version within the retention needs.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable, write_deltalake
from deltalake import Schema as DeltaSchema
from deltalake.exceptions import CommitFailedError, TableNotFoundError
from deltalake.transaction import AddAction, RemoveAction, create_table_with_add_actions

from sodtrack.arrowpool import use_run_memory_pool
from sodtrack.errors import WarehouseError
from sodtrack.warehouse import layout
from sodtrack.warehouse.duck import DuckLimits
from sodtrack.warehouse.fs import LocalFS
from sodtrack.warehouse.location import Location, parse_location
from sodtrack.warehouse.schemas import META_SCHEMA_VERSION, DatasetKind, DatasetSpec, get_spec
from sodtrack.warehouse.writer import DEFAULT_ROW_GROUP_ROWS, StageInfo, StagingWriter

log = logging.getLogger(__name__)

DEFAULT_ROOT = "data/warehouse"
DEFAULT_SCRATCH = "data/work/warehouse"
DEFAULT_RETENTION = timedelta(days=7)
REPORT_NAME = "validation_report.json"
META_PREFIX = "sodtrack."
STREAM_BATCH_ROWS = 64 * 1024
COMMIT_ATTEMPTS = 20
"""Commits of staged files tried against ever newer versions while other writers (other
countries, other datasets' logs) commit at the same moment (:meth:`Warehouse._commit_files`)."""


class PublishError(WarehouseError, RuntimeError):
    """The staging cannot be published (incomplete, wrong schema, missing)."""


class PublishConflict(PublishError):
    """Partitions this run replaces were changed by another publish since the run read them."""


class SchemaEvolutionRefused(PublishError):
    """The table's schema differs from the dataset's by more than added nullable columns."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


def table_schema(spec: DatasetSpec) -> pa.Schema:
    """The Delta table's schema: the dataset's columns, then its partition columns (strings)."""
    return pa.unify_schemas([spec.schema, spec.partition_schema]).remove_metadata()


def evolution(spec: DatasetSpec, current: pa.Schema) -> Literal["merge"] | None:
    """``None`` if ``current`` is the dataset's table schema, ``"merge"`` if the dataset only
    appends nullable columns to it; raises ``SchemaEvolutionRefused`` otherwise."""
    target = table_schema(spec)
    have = {f.name: f for f in current}
    if [f.name for f in current] == target.names and all(
        have[f.name].type == f.type and have[f.name].nullable == f.nullable for f in target
    ):
        return None
    problems: list[str] = []
    for f in target:
        old = have.get(f.name)
        if old is None:
            if not f.nullable:
                problems.append(f"new column {f.name} is not nullable")
        elif old.type != f.type:
            problems.append(f"{f.name}: {old.type} in the table, {f.type} declared")
        elif old.nullable != f.nullable:
            problems.append(
                f"{f.name}: nullable={old.nullable} in the table, {f.nullable} declared"
            )
    gone = [n for n in have if n not in set(target.names)]
    problems += [f"column {n} is in the table but no longer declared" for n in gone]
    kept = [n for n in target.names if n in have]
    if not problems and kept != [n for n in current.names if n in set(target.names)]:
        problems.append("columns are in another order than the table's")
    if problems:
        raise SchemaEvolutionRefused(
            f"{spec.name}: the declared schema (version {spec.version}) is not the table's "
            f"plus nullable columns: {'; '.join(problems)}. Only added nullable columns "
            "evolve a table; anything else needs a new dataset or a migration."
        )
    return "merge"


@dataclass(frozen=True, slots=True)
class TableVersion:
    """What one version of a dataset holds, read from its Delta log (no data read)."""

    dataset: str
    version_id: str
    """The Delta version number, as a string."""
    rows_per_partition: dict[str, int]
    """Hive partition path → rows (``country=cl/snapshot_date=2026-11-28``)."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """The ``sodtrack.*`` keys of the commit that made this version."""

    @property
    def total_rows(self) -> int:
        return sum(self.rows_per_partition.values())

    @property
    def run_id(self) -> str | None:
        value = self.metadata.get("run_id")
        return str(value) if value is not None else None


class Warehouse:
    """One warehouse root: staging, publishing and reading back versions of datasets.

    ``on_step`` is called with the name of each step of ``publish`` (``publish:checked``,
    ``publish:committed``, ``publish:cleaned``) and of the bookings merge: logging, metrics,
    and the fault injection the tests use to kill a publish.
    """

    def __init__(
        self,
        root: str | Path | Location = DEFAULT_ROOT,
        *,
        scratch: str | Path | None = None,
        retention: timedelta = DEFAULT_RETENTION,
        durable: bool = True,
        on_step: Callable[[str], None] | None = None,
        clock: Callable[[], datetime] = _utcnow,
        duck_limits: DuckLimits | None = None,
    ) -> None:
        self.location = root if isinstance(root, Location) else parse_location(str(root))
        self.root = self.location.uri
        if self.location.is_local:
            self.scratch = self.root
        else:
            self.scratch = os.path.abspath(str(scratch or DEFAULT_SCRATCH))
        self.fs = LocalFS(durable=durable)
        self.retention = retention
        self.on_step = on_step
        self.clock = clock
        self.duck_limits = duck_limits or DuckLimits()
        """What the DuckDB connections of this warehouse's merges may use."""
        use_run_memory_pool()  # Arrow's buffers from the system allocator (sodtrack.arrowpool)

    @classmethod
    def from_settings(cls, settings: Any, **kwargs: Any) -> Warehouse:
        """The warehouse at ``Settings.warehouse`` with its S3 options, scratch and retention."""
        location = parse_location(
            settings.warehouse,
            s3_endpoint_url=settings.s3_endpoint_url,
            s3_allow_http=settings.s3_allow_http,
        )
        kwargs.setdefault("scratch", settings.warehouse_scratch)
        kwargs.setdefault("retention", timedelta(days=settings.warehouse_retention_days))
        kwargs.setdefault("duck_limits", DuckLimits.from_settings(settings))
        return cls(location, **kwargs)

    @property
    def storage_options(self) -> dict[str, str]:
        return self.location.storage_options

    # ------------------------------------------------------------------ paths

    def table_uri(self, dataset: str) -> str:
        """The Delta table of a dataset: what ``delta_scan``/``scan_delta``/``DeltaTable`` open."""
        return self.location.join(get_spec(dataset).name)

    def dataset_path(self, dataset: str) -> str:
        """The dataset's local scratch folder (its ``_staging``): beside the table when local."""
        return self.fs.join(self.scratch, get_spec(dataset).name)

    def staging_path(self, dataset: str, run_id: str) -> str:
        return self.fs.join(self.dataset_path(dataset), layout.STAGING, layout.check_run_id(run_id))

    def quarantine_path(self, dataset: str, run_id: str) -> str:
        return self.location.join(layout.QUARANTINE, get_spec(dataset).name, run_id)

    # ------------------------------------------------------------------ versions

    def table(self, dataset: str, version: int | str | datetime | None = None) -> DeltaTable | None:
        """The dataset's ``DeltaTable`` (at ``version``: a number or a point in time)."""
        try:
            dt = DeltaTable(self.table_uri(dataset), storage_options=self.storage_options or None)
        except TableNotFoundError:
            return None
        if version is not None:
            dt.load_as_version(version if isinstance(version, datetime) else int(version))
        return dt

    def current_version(self, dataset: str) -> str | None:
        dt = self.table(dataset)
        return None if dt is None else str(dt.version())

    def describe(self, dataset: str, version: int | str | None = None) -> TableVersion | None:
        """Rows per partition and commit metadata of ``version`` (default: the latest)."""
        dt = self.table(dataset, version)
        if dt is None:
            return None
        spec = get_spec(dataset)
        actions = pa.table(dt.get_add_actions(flatten=True))
        rows: dict[str, int] = {}
        cols = [actions.column(f"partition.{k}").to_pylist() for k in spec.partition_keys]
        for i, n in enumerate(actions.column("num_records").to_pylist()):
            key = "/".join(f"{k}={c[i]}" for k, c in zip(spec.partition_keys, cols, strict=True))
            rows[key] = rows.get(key, 0) + int(n or 0)
        history = dt.history(1)
        meta = _sodtrack_metadata(history[0]) if history else {}
        return TableVersion(spec.name, str(dt.version()), rows, meta)

    def read_current(self, dataset: str) -> ds.Dataset:
        """The latest version as a pyarrow dataset with the declared types (tests, checks)."""
        return self.read_version(dataset)

    def read_version(self, dataset: str, version: int | str | datetime | None = None) -> ds.Dataset:
        """A version (number, or the one current at a time: time travel) as a pyarrow dataset."""
        dt = self.table(dataset, version)
        if dt is None:
            raise PublishError(f"{dataset}: nothing published yet")
        data = dt.to_pyarrow_dataset()
        return data.replace_schema(table_schema(get_spec(dataset)))

    def history(self, dataset: str, limit: int | None = None) -> list[dict[str, Any]]:
        """The commits, newest first: ``version``, ``timestamp``, ``operation`` and our keys."""
        dt = self.table(dataset)
        if dt is None:
            return []
        out = []
        for commit in dt.history(limit):
            out.append(
                {
                    "version": commit.get("version"),
                    "timestamp": commit.get("timestamp"),
                    "operation": commit.get("operation"),
                    **_sodtrack_metadata(commit),
                }
            )
        return out

    def watermark(self, dataset: str, country: str) -> datetime | None:
        """The watermark the country's data in ``dataset`` was extracted to: from the newest
        commit of that country, else from the newest commit carrying it forward. ``None`` for
        an empty or new table: the next run reads everything."""
        dt = self.table(dataset)
        if dt is None:
            return None
        if not any(k.startswith(f"country={country}/") for k in self._partitions(dataset)):
            return None
        for commit in self.history(dataset):
            if commit.get("country") == country and commit.get("watermark_after"):
                return datetime.fromisoformat(str(commit["watermark_after"]))
            carried = commit.get("watermarks")
            if isinstance(carried, dict) and carried.get(country):
                return datetime.fromisoformat(str(carried[country]))
        return None

    def check_schema(self, dataset: str) -> Literal["merge"] | None:
        """``None`` (same schema, or no table yet), ``"merge"`` (the declared schema appends
        nullable columns: the next commit adds them), or ``SchemaEvolutionRefused``."""
        dt = self.table(dataset)
        if dt is None:
            return None
        return evolution(get_spec(dataset), pa.schema(dt.schema().to_arrow()))

    def _partitions(self, dataset: str) -> set[str]:
        described = self.describe(dataset)
        return set(described.rows_per_partition) if described else set()

    # ------------------------------------------------------------------ staging

    def stage(
        self,
        dataset: str,
        run_id: str,
        *,
        base_version: str | None = None,
        row_group_rows: int = DEFAULT_ROW_GROUP_ROWS,
        max_rows_per_file: int | None = None,
    ) -> StagingWriter:
        """A writer for this run's output. ``base_version``: the version the run's output was
        derived from (merged datasets), checked again at publish."""
        return StagingWriter(
            self.fs,
            self.staging_path(dataset, run_id),
            get_spec(dataset),
            run_id,
            base_version=base_version,
            row_group_rows=row_group_rows,
            max_rows_per_file=max_rows_per_file,
        )

    def stage_info(self, dataset: str, run_id: str) -> StageInfo:
        path = self.fs.join(self.staging_path(dataset, run_id), layout.STAGE_INFO)
        if not self.fs.exists(path):
            raise PublishError(f"{dataset}/{run_id}: no complete staging (no {layout.STAGE_INFO})")
        return StageInfo.from_json(self.fs.read_bytes(path))

    def staged_files(self, dataset: str, run_id: str) -> list[str]:
        info = self.stage_info(dataset, run_id)
        base = self.staging_path(dataset, run_id)
        return [self.fs.join(base, f.partition, f.name) for f in info.files]

    def staged_dataset(self, dataset: str, run_id: str) -> ds.Dataset:
        """The staged output as a pyarrow dataset (partition keys as string columns): what the
        validation step reads. ``.to_table(filter=...)`` for one partition."""
        info = self.stage_info(dataset, run_id)
        base = self.staging_path(dataset, run_id)
        files = [self.fs.join(base, f.partition, f.name) for f in info.files]
        spec = get_spec(dataset)
        partitioning = ds.partitioning(spec.partition_schema, flavor="hive")
        return ds.dataset(
            files,
            schema=table_schema(spec),
            format="parquet",
            filesystem=self.fs.arrow,
            partitioning=partitioning,
            partition_base_dir=base,
        )

    def staged_table(
        self, dataset: str, run_id: str, partition: Mapping[str, str] | None = None
    ) -> pa.Table:
        """The staged rows (of one partition if given), with the partition columns."""
        data = self.staged_dataset(dataset, run_id)
        expr = None
        for key, value in (partition or {}).items():
            term = ds.field(key) == value
            expr = term if expr is None else expr & term
        return data.to_table(filter=expr)

    def discard(self, dataset: str, run_id: str) -> None:
        self.fs.remove_tree(self.staging_path(dataset, run_id))

    def gc_staging(self, dataset: str, run_ids: Iterable[str]) -> None:
        for run_id in run_ids:
            self.discard(dataset, run_id)

    # ------------------------------------------------------------------ publish

    def publish(
        self,
        dataset: str,
        run_id: str,
        *,
        validation: Mapping[str, Any] | None = None,
        stats: Mapping[str, Any] | None = None,
    ) -> TableVersion:
        """Commit a complete staging to the dataset's Delta table in one commit.

        ``validation`` (a summary of the suite results) and ``stats`` go into the commit's
        metadata beside the staging's own stats, run id and watermarks.
        """
        spec = get_spec(dataset)
        info = self.stage_info(dataset, run_id)
        if info.schema_version != spec.version:
            raise PublishError(
                f"{dataset}/{info.run_id}: staged with schema version {info.schema_version}, "
                f"the dataset is at {spec.version}"
            )
        staging = self.staging_path(dataset, run_id)
        self._check_staged_schemas(dataset, staging, info)
        dt = self.table(dataset)
        mode = self.check_schema(dataset) if dt is not None else None
        country = _country(spec, info)
        replaced = _replaced(spec, info)
        if dt is not None:
            self._check_conflict(dataset, info, replaced, country)
        predicate = _predicate(spec, info, replaced)
        self.step("publish:checked")
        metadata = self._commit_metadata(dataset, info, country, replaced, validation, stats)
        try:
            base = self._commit_base(dataset, info, dt)
            removals = None if mode is not None else self._removals(base, spec, info, replaced)
            if removals is None:
                # Schema evolution, or a log file holding rows of several runs: rewrite.
                self._commit_rewrite(dataset, run_id, spec, mode, base, predicate, metadata)
            else:
                self._commit_files(dataset, staging, spec, info, base, removals, metadata)
        except CommitFailedError as exc:  # delta-rs's conflict checker refused the commit
            raise PublishConflict(
                f"{dataset}/{info.run_id}: a concurrent commit changed what this run replaces "
                f"({exc}); re-run the merge"
            ) from exc
        except Exception as exc:  # delta-rs raises its own types; one of ours for callers
            if isinstance(exc, WarehouseError):
                raise
            raise PublishError(f"{dataset}/{info.run_id}: the commit failed: {exc}") from exc
        self.step("publish:committed")
        version = self.describe(dataset)
        assert version is not None
        log.info(
            "%s: published version %s from %s (%d rows in the table)",
            dataset,
            version.version_id,
            info.run_id,
            version.total_rows,
        )
        self.fs.remove_tree(staging)
        self.step("publish:cleaned")
        return version

    def _configuration(self) -> dict[str, str | None]:
        days = max(1, int(self.retention.total_seconds() // 86400))
        return {
            "delta.logRetentionDuration": f"interval {days} days",
            "delta.deletedFileRetentionDuration": f"interval {days} days",
        }

    def _commit_files(
        self,
        dataset: str,
        staging: str,
        spec: DatasetSpec,
        info: StageInfo,
        dt: DeltaTable | None,
        removals: list[RemoveAction],
        metadata: dict[str, str],
    ) -> None:
        """Commit the staged Parquet files themselves: each is linked (local) or copied
        (object storage, streamed) into the table's folder under a name no other attempt
        uses, then one commit adds them and removes the files they replace.

        Nothing is decoded or re-encoded, so memory does not depend on the data's size
        (``write_deltalake`` buffered what it wrote: ~1.8 MiB per 1,000 bookings, measured
        in ``bench/bench_warehouse.py``). Files not committed (a failed or lost commit) are
        referenced by no version: ``vacuum`` deletes them after the retention."""
        now_ms = int(self.clock().timestamp() * 1000)
        token = uuid.uuid4().hex
        arrow, base = self.location.arrow_fs()
        adds: list[AddAction] = []
        for f in info.files:
            if f.rows == 0:
                continue  # an empty partition holds no file in a Delta table
            source = self.fs.join(staging, f.partition, f.name)
            rel = f"{f.partition}/{f.name.removesuffix('.parquet')}-{token}.parquet"
            target = f"{base}/{spec.name}/{rel}"
            if self.location.is_local:
                self.fs.make_dirs(os.path.dirname(target))
                try:
                    os.link(source, target)
                except OSError:  # another filesystem, or no hard links: a copy
                    shutil.copyfile(source, target)
            else:
                pafs.copy_files(
                    source, target, source_filesystem=self.fs.arrow, destination_filesystem=arrow
                )
            adds.append(
                AddAction(
                    path=rel,
                    size=os.path.getsize(source),
                    partition_values=dict(layout.parse_partition_path(spec, f.partition)),
                    modification_time=now_ms,
                    data_change=True,
                    stats=json.dumps({"numRecords": f.rows}),
                )
            )
        properties = CommitProperties(custom_metadata=metadata)
        if dt is None:
            try:
                create_table_with_add_actions(
                    self.table_uri(dataset),
                    DeltaSchema.from_arrow(table_schema(spec)),
                    adds,
                    mode="append",
                    partition_by=list(spec.partition_keys),
                    configuration=self._configuration(),
                    storage_options=self.storage_options or None,
                    commit_properties=properties,
                )
                return
            except Exception:  # another writer created the table first: commit to it
                dt = self.table(dataset)
                if dt is None:
                    raise
                removals = self._removals(dt, spec, info, _replaced(spec, info)) or []
        for attempt in range(1, COMMIT_ATTEMPTS + 1):
            try:
                dt.create_write_transaction(
                    [*adds, *removals],
                    mode="append",
                    schema=table_schema(spec),
                    partition_by=list(spec.partition_keys),
                    commit_properties=properties,
                )
                return
            except CommitFailedError:
                # A commit landed since ``dt`` was loaded (delta-rs refuses any concurrent
                # add here). Load the latest version, check that no commit since the run's
                # base replaced what this run replaces (else ``PublishConflict``), and
                # commit on top of it: the check and the commit's read version are the same
                # version, so nothing can slip in between unseen.
                if attempt == COMMIT_ATTEMPTS:
                    raise
                latest = self.table(dataset)
                if latest is None:
                    raise
                dt = latest
                self._check_conflict(dataset, info, _replaced(spec, info), _country(spec, info))
                removals = self._removals(dt, spec, info, _replaced(spec, info)) or []

    def _removals(
        self, dt: DeltaTable | None, spec: DatasetSpec, info: StageInfo, replaced: list[str]
    ) -> list[RemoveAction] | None:
        """The table's files this publish replaces (the replace-where as remove actions):
        every file of a partition in ``replace_scope`` or in ``replaced``; for a log, only
        the files of this run id there. ``None`` when a file holds rows of this run and of
        others (only a rewrite can remove part of a file)."""
        if dt is None:
            return []
        actions = pa.table(dt.get_add_actions(flatten=True))
        if actions.num_rows == 0:
            return []
        keys = list(spec.partition_keys)
        parts = {
            k: actions.column(f"partition.{k}").to_pylist()
            for k in keys
            if f"partition.{k}" in actions.column_names
        }
        paths = actions.column("path").to_pylist()
        sizes = actions.column("size_bytes").to_pylist()
        lows = _stat_column(actions, "min.run_id")
        highs = _stat_column(actions, "max.run_id")
        targets = set(replaced)
        scope = dict(info.replace_scope or {})
        own_file = re.compile(rf"part-{re.escape(info.run_id)}-\d+-[0-9a-f]{{32}}\.parquet")
        now_ms = int(self.clock().timestamp() * 1000)
        out: list[RemoveAction] = []
        for i, path in enumerate(paths):
            values: dict[str, str | None] = {k: str(parts[k][i]) for k in keys if k in parts}
            key = "/".join(f"{k}={values.get(k)}" for k in keys)
            in_scope = bool(scope) and all(values.get(k) == v for k, v in scope.items())
            if not (in_scope or key in targets):
                continue
            if spec.kind is DatasetKind.LOG and not in_scope:
                name = str(path).rsplit("/", 1)[-1]
                low, high = lows[i], highs[i]
                if not own_file.fullmatch(name):
                    if low is None or high is None or (low == high and low != info.run_id):
                        continue  # another run's file (no stats: not one of ours either)
                    if low != info.run_id or high != info.run_id:
                        if low <= info.run_id <= high:
                            return None  # rows of this run beside others': rewrite
                        continue
            out.append(
                RemoveAction(
                    path=str(path),
                    data_change=True,
                    deletion_timestamp=now_ms,
                    size=int(sizes[i]) if sizes[i] is not None else None,
                    partition_values=values,
                )
            )
        return out

    def _commit_rewrite(
        self,
        dataset: str,
        run_id: str,
        spec: DatasetSpec,
        mode: Literal["merge"] | None,
        dt: DeltaTable | None,
        predicate: str | None,
        metadata: dict[str, str],
    ) -> None:
        """The staged rows rewritten by ``write_deltalake`` (a replace-where): what a schema
        evolution needs. Its writer buffers the data it writes (memory grows with it)."""
        data = self.staged_dataset(dataset, run_id)
        reader = data.scanner(batch_size=STREAM_BATCH_ROWS).to_reader()
        common: dict[str, Any] = {
            "partition_by": list(spec.partition_keys),
            "schema_mode": mode,
            "storage_options": self.storage_options or None,
            "configuration": self._configuration(),
            "commit_properties": CommitProperties(custom_metadata=metadata),
        }
        if predicate is not None and dt is not None:
            # against ``dt`` (the base version for a merge): its conflict check applies
            write_deltalake(dt, reader, mode="overwrite", predicate=predicate, **common)
        else:
            write_deltalake(self.table_uri(dataset), reader, mode="append", **common)

    def _commit_metadata(
        self,
        dataset: str,
        info: StageInfo,
        country: str | None,
        replaced: list[str],
        validation: Mapping[str, Any] | None,
        stats: Mapping[str, Any] | None,
    ) -> dict[str, str]:
        carried: dict[str, str] = {}
        previous: datetime | None = None
        for commit in self.history(dataset, 1):
            old = commit.get("watermarks")
            if isinstance(old, dict):
                carried = {str(k): str(v) for k, v in old.items()}
        if country is not None and carried.get(country):
            previous = datetime.fromisoformat(carried[country])
        after = datetime.fromisoformat(info.watermark_after) if info.watermark_after else None
        if after is None or (previous is not None and info.replace_scope is None):
            # a run that saw only the overlap window must not move the watermark back
            after = max(filter(None, (after, previous)), default=None)
        if country is not None and after is not None:
            carried[country] = after.isoformat()
        meta: dict[str, Any] = {
            "run_id": info.run_id,
            "dataset": dataset,
            "country": country,
            "schema_version": info.schema_version,
            "replaced": replaced,
            "replace_scope": dict(info.replace_scope) if info.replace_scope else None,
            "watermark_before": info.watermark_before,
            "watermark_after": after.isoformat() if after else None,
            "watermarks": carried,
            "validation": dict(validation) if validation else None,
            "stats": {**info.stats, **(stats or {})},
            "published_at": self.clock().isoformat(),
        }
        return {META_PREFIX + k: json.dumps(v, default=str) for k, v in meta.items()}

    def _commit_base(
        self, dataset: str, info: StageInfo, latest: DeltaTable | None
    ) -> DeltaTable | None:
        """The table the commit is made against: for a merge built on a base version, the
        table loaded *at that version*, so the commit's read version is the base and its
        remove actions are the base's files; delta-rs's conflict checker then refuses it when
        a commit since the base removed or rewrote files of the partitions it replaces
        (another run of the same country); a commit elsewhere (another country, other
        months) does not conflict and the commit lands on top of it. Otherwise ``latest``
        (the checker still guards the moments between loading it and committing)."""
        spec = get_spec(dataset)
        if latest is not None and spec.kind is DatasetKind.MERGED and info.base_version is not None:
            base = self.table(dataset, int(info.base_version))
            if base is not None:
                return base
        return latest

    def _check_conflict(
        self, dataset: str, info: StageInfo, replaced: list[str], country: str | None
    ) -> None:
        """For merged datasets: no commit since the run's base replaced what it replaces.

        An early, readable refusal (names the other run); the guarantee is the commit's own
        conflict check (:meth:`_commit_base`): two runs may both pass this check."""
        spec = get_spec(dataset)
        if spec.kind is not DatasetKind.MERGED or info.base_version is None:
            return
        base = int(info.base_version)
        mine = set(replaced)
        for commit in self.history(dataset):
            version = commit.get("version")
            if version is None or int(version) <= base:
                break
            theirs = set(commit.get("replaced") or [])
            scope = commit.get("replace_scope") or {}
            same_scope = bool(scope) and scope.get("country") == country
            if (
                theirs & mine
                or same_scope
                or (info.replace_scope and commit.get("country") == country)
            ):
                raise PublishConflict(
                    f"{dataset}/{info.run_id}: built on version {base} but version {version} "
                    f"({commit.get('run_id')}) changed {sorted(theirs & mine)[:5] or scope}; "
                    "re-run the merge"
                )

    def _check_staged_schemas(self, dataset: str, staging: str, info: StageInfo) -> None:
        spec = get_spec(dataset)
        for f in info.files:
            path = self.fs.join(staging, f.partition, f.name)
            schema = pq.read_schema(path, filesystem=self.fs.arrow)
            version = (schema.metadata or {}).get(META_SCHEMA_VERSION.encode(), b"").decode()
            if not schema.equals(spec.schema, check_metadata=False) or version != str(spec.version):
                raise PublishError(f"{dataset}/{info.run_id}: {path} does not have the schema")

    # ------------------------------------------------------------------ quarantine

    def quarantine(self, dataset: str, run_id: str, report: Mapping[str, Any] | str | Path) -> str:
        """Move the run's staging (complete or not) beside the tables with its report.

        Nothing is committed. ``report`` is a JSON-able mapping (written as
        ``validation_report.json``) or the path of a report file (copied under its own name).
        Returns the quarantine location (a path, or a URL on object storage).
        """
        staging = self.staging_path(dataset, run_id)
        arrow, base = self.location.arrow_fs()
        name = get_spec(dataset).name

        def target_of(rid: str) -> str:
            return "/".join([base, layout.QUARANTINE, name, rid])

        target, n, rid = target_of(run_id), 1, run_id
        while arrow.get_file_info(target).type != pafs.FileType.NotFound:
            n += 1  # a run id quarantined before: keep both
            rid = f"{run_id}.{n}"
            target = target_of(rid)
        arrow.create_dir(target, recursive=True)
        if self.fs.exists(staging):
            for rel in self.fs.walk_files(staging):
                dest = f"{target}/{rel}"
                arrow.create_dir(dest.rsplit("/", 1)[0], recursive=True)
                pafs.copy_files(
                    self.fs.join(staging, rel),
                    dest,
                    source_filesystem=self.fs.arrow,
                    destination_filesystem=arrow,
                )
            self.fs.remove_tree(staging)
        if isinstance(report, Mapping):
            data = json.dumps(report, indent=2, default=str).encode()
            report_name = REPORT_NAME
        else:
            data, report_name = Path(report).read_bytes(), Path(report).name
        with arrow.open_output_stream(f"{target}/{report_name}") as out:
            out.write(data)
        where = self.quarantine_path(dataset, rid)
        log.warning("%s/%s quarantined in %s", dataset, run_id, where)
        return where

    # ------------------------------------------------------------------ retention

    def vacuum(self, dataset: str) -> list[str]:
        """Delete the files no version younger than ``retention`` needs; returns them."""
        dt = self.table(dataset)
        if dt is None:
            return []
        hours = int(self.retention.total_seconds() // 3600)
        removed = dt.vacuum(retention_hours=hours, enforce_retention_duration=False, dry_run=False)
        dt.cleanup_metadata()
        return list(removed)

    # ------------------------------------------------------------------ bookings merge support

    def pin_files(
        self, dataset: str, country: str, into: str, *, version: str | None = None
    ) -> dict[str, list[str]]:
        """The country's data files of ``version`` (default the latest), local paths per
        partition.

        Local tables: the files themselves (immutable; vacuum leaves files of versions within
        the retention). Object storage: downloaded into ``into`` (a local folder).
        """
        dt = self.table(dataset, version)
        if dt is None:
            return {}
        spec = get_spec(dataset)
        actions = pa.table(dt.get_add_actions(flatten=True))
        out: dict[str, list[str]] = {}
        arrow, base = self.location.arrow_fs()
        countries = actions.column("partition.country").to_pylist()
        for i, path in enumerate(actions.column("path").to_pylist()):
            if countries[i] != country:
                continue
            rel = str(path)
            key = "/".join(rel.split("/")[: len(spec.partition_keys)])
            if self.location.is_local:
                local = self.fs.join(self.table_uri(dataset), rel)
            else:
                local = self.fs.join(into, rel)
                self.fs.make_dirs(os.path.dirname(local))
                pafs.copy_files(
                    f"{base}/{spec.name}/{rel}",
                    local,
                    source_filesystem=arrow,
                    destination_filesystem=self.fs.arrow,
                )
            out.setdefault(key, []).append(local)
        return out

    def step(self, name: str) -> None:
        """Report a step to ``on_step`` (the bookings merge reports its own steps too)."""
        if self.on_step is not None:
            self.on_step(name)


def _stat_column(actions: pa.Table, name: str) -> list[Any]:
    if name in actions.column_names:
        values: list[Any] = actions.column(name).to_pylist()
        return values
    return [None] * actions.num_rows


def _sodtrack_metadata(commit: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in commit.items():
        if isinstance(key, str) and key.startswith(META_PREFIX):
            try:
                out[key[len(META_PREFIX) :]] = json.loads(value)
            except (TypeError, ValueError):
                out[key[len(META_PREFIX) :]] = value
    return out


def _country(spec: DatasetSpec, info: StageInfo) -> str | None:
    if info.replace_scope and "country" in info.replace_scope:
        return info.replace_scope["country"]
    keys = set(info.replace_partitions) | set(info.partitions)
    countries = {dict(layout.parse_partition_path(spec, k))["country"] for k in keys}
    return countries.pop() if len(countries) == 1 else None


def _replaced(spec: DatasetSpec, info: StageInfo) -> list[str]:
    if spec.kind is DatasetKind.LOG:
        return sorted(info.partitions)
    return sorted(set(info.replace_partitions) | set(info.partitions))


def _sql(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _predicate(spec: DatasetSpec, info: StageInfo, replaced: list[str]) -> str | None:
    """The replace-where of the commit, ``None`` for a plain append."""
    terms: list[str] = []
    if info.replace_scope:
        terms.append(
            " AND ".join(f"{k} = {_sql(v)}" for k, v in sorted(info.replace_scope.items()))
        )
    for key in replaced:
        part = layout.parse_partition_path(spec, key)
        clause = " AND ".join(f"{k} = {_sql(v)}" for k, v in part)
        if spec.kind is DatasetKind.LOG:
            clause += f" AND run_id = {_sql(info.run_id)}"
        terms.append(clause)
    if not terms:
        return None
    return " OR ".join(f"({t})" for t in terms)
