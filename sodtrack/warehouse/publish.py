"""Staging, validation hand-off, atomic publish, quarantine and garbage collection.

The life of one run's output for one dataset::

    stage()  ──►  _staging/<run_id>/  ──►  (validation by others: staged_dataset/staged_table)
                                        ├─► publish()    → new version, `current` swapped
                                        └─► quarantine() → _quarantine/<dataset>/<run_id>/

``publish`` under the dataset's ``flock``:

1. read ``current`` (the base) and its manifest; refuse a staging without ``_stage.json``,
   with another schema version, or (for merged datasets) whose replaced partitions changed
   since the version the run read (``PublishConflict``: no lost update);
2. build ``_versions/.tmp-<version>/``: every file of the base that survives is *hard-linked*
   (immutable bytes, no copy), every staged file is hard-linked from staging;
3. write ``_manifest.json`` into it; rename ``.tmp-<version>`` → ``<version>`` (atomic);
4. swap ``current`` (temp symlink + ``os.replace``, atomic) — **the commit point**;
5. remove the staging and old versions beyond ``keep_versions``.

Killed anywhere before 4, ``current`` still names the previous complete version and the
leftovers (``.tmp-*`` directories, the staging) are either reused by a re-run or removed by
``gc``; killed after 4, the new version is complete and only clean-up is pending. Readers open
``<dataset>/current`` and, having resolved it, keep reading that version's files even while a
new one is published (files are never rewritten; an old version survives ``keep_versions``
more publishes and at least ``version_grace`` after it stopped being current, and an open file
outlives its unlinking on POSIX anyway). A file name is never reused for other bytes, so a
reader that listed files through ``current`` just before a swap finds each either unchanged
(a carried partition) or gone (a replaced one): it fails loudly, never mixes two runs.

What a run replaces depends on the dataset kind (``schemas.DatasetKind``): snapshots and merged
datasets replace whole partitions (those staged, plus those declared with
``StagingWriter.replace`` or inside ``replace_scope``); logs add the run's files to their
partitions, replacing only files of the same name (a re-publish of the same run id).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from sodtrack.errors import WarehouseError
from sodtrack.warehouse import layout
from sodtrack.warehouse.fs import WarehouseFS, open_fs
from sodtrack.warehouse.manifest import FileEntry, Manifest, PartitionEntry
from sodtrack.warehouse.schemas import META_SCHEMA_VERSION, DatasetKind, get_spec
from sodtrack.warehouse.writer import DEFAULT_ROW_GROUP_ROWS, StageInfo, StagingWriter

log = logging.getLogger(__name__)

DEFAULT_ROOT = "data/warehouse"
DEFAULT_KEEP_VERSIONS = 5
DEFAULT_VERSION_GRACE = timedelta(hours=1)
REPORT_NAME = "validation_report.json"


class PublishError(WarehouseError, RuntimeError):
    """The staging cannot be published (incomplete, wrong schema, missing)."""


class PublishConflict(PublishError):
    """Partitions this run replaces were changed by another publish since the run read them."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class _Source:
    """Where a file of the version being built comes from."""

    path: str
    entry: FileEntry


class Warehouse:
    """One warehouse root: staging, publishing and reading back versions of datasets.

    Garbage collection (after each publish, or ``gc``) keeps the newest ``keep_versions``
    versions, and any older one that stopped being current less than ``version_grace`` ago.

    ``on_step`` is called with the name of each step of ``publish`` (``publish:locked``,
    ``publish:linked``, ``publish:manifest``, ``publish:renamed``, ``publish:swapped``,
    ``publish:cleaned``): logging, metrics, and the fault injection the tests use to kill a
    publish at every point.
    """

    def __init__(
        self,
        root: str | Path = DEFAULT_ROOT,
        *,
        keep_versions: int = DEFAULT_KEEP_VERSIONS,
        version_grace: timedelta = DEFAULT_VERSION_GRACE,
        lock_timeout_s: float = 600.0,
        durable: bool = True,
        on_step: Callable[[str], None] | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        if keep_versions < 1:
            raise ValueError("keep_versions must be at least 1 (the current version)")
        self.fs: WarehouseFS
        self.fs, self.root = open_fs(str(root), durable=durable)
        self.keep_versions = keep_versions
        self.version_grace = version_grace
        self.lock_timeout_s = lock_timeout_s
        self.on_step = on_step
        self.clock = clock

    @classmethod
    def from_settings(cls, settings: Any, **kwargs: Any) -> Warehouse:
        """The warehouse at ``Settings.warehouse`` (``data/warehouse`` by default)."""
        return cls(settings.warehouse, **kwargs)

    # ------------------------------------------------------------------ paths

    def dataset_path(self, dataset: str) -> str:
        return self.fs.join(self.root, get_spec(dataset).name)

    def current_path(self, dataset: str) -> str:
        """What readers read: ``read_parquet('<this>/**/*.parquet', hive_partitioning=true)``."""
        return self.fs.join(self.dataset_path(dataset), layout.CURRENT)

    def staging_path(self, dataset: str, run_id: str) -> str:
        return self.fs.join(self.dataset_path(dataset), layout.STAGING, layout.check_run_id(run_id))

    def version_path(self, dataset: str, version: str) -> str:
        return self.fs.join(self.dataset_path(dataset), layout.VERSIONS, version)

    def data_path(self, dataset: str, version: str) -> str:
        """A version's partitions (what ``current`` points at)."""
        return self.fs.join(self.version_path(dataset, version), layout.DATA)

    def quarantine_path(self, dataset: str, run_id: str) -> str:
        return self.fs.join(self.root, layout.QUARANTINE, get_spec(dataset).name, run_id)

    # ------------------------------------------------------------------ versions

    def current_version(self, dataset: str) -> str | None:
        target = self.fs.read_pointer(self.current_path(dataset))
        if not target:
            return None
        # "_versions/<version>/data"
        parts = target.strip("/").split("/")
        return parts[1] if len(parts) == 3 and parts[0] == layout.VERSIONS else None

    def list_versions(self, dataset: str) -> list[str]:
        """Complete versions, oldest first (``.tmp-*`` builds are not versions)."""
        names = self.fs.list_dir(self.fs.join(self.dataset_path(dataset), layout.VERSIONS))
        versions = [n for n in names if layout.version_seq(n) is not None]
        return sorted(versions, key=lambda n: layout.version_seq(n) or 0)

    def read_manifest(self, dataset: str, version: str | None = None) -> Manifest | None:
        """The manifest of ``version`` (default: the current one); None if nothing published."""
        version = version or self.current_version(dataset)
        if version is None:
            return None
        path = self.fs.join(self.version_path(dataset, version), layout.MANIFEST)
        return Manifest.from_json(self.fs.read_bytes(path))

    def read_current(self, dataset: str) -> ds.Dataset:
        """The current version as a pyarrow dataset with the declared schema (tests, checks).

        Resolves ``current`` once, so the returned dataset keeps reading that version.
        """
        version = self.current_version(dataset)
        if version is None:
            raise PublishError(f"{dataset}: nothing published yet")
        return self._dataset_of(dataset, self.data_path(dataset, version))

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
        schema = pa.unify_schemas([spec.schema, spec.partition_schema])
        return ds.dataset(
            files,
            schema=schema,
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

    # ------------------------------------------------------------------ publish

    def publish(
        self,
        dataset: str,
        run_id: str,
        *,
        validation: Mapping[str, Any] | None = None,
        stats: Mapping[str, Any] | None = None,
    ) -> Manifest:
        """Promote a complete staging into a new version and make it ``current``.

        ``validation`` (a summary of the suite results) and ``stats`` are recorded in the
        manifest beside the staging's own stats and watermarks.
        """
        spec = get_spec(dataset)
        info = self.stage_info(dataset, run_id)
        if info.schema_version != spec.version:
            raise PublishError(
                f"{dataset}/{run_id}: staged with schema version {info.schema_version}, "
                f"the dataset is at {spec.version}"
            )
        staging = self.staging_path(dataset, run_id)
        self._check_staged_schemas(dataset, staging, info)
        dataset_dir = self.dataset_path(dataset)
        with self.fs.lock(self.fs.join(dataset_dir, layout.LOCK), self.lock_timeout_s):
            self.step("publish:locked")
            base = self.current_version(dataset)
            base_manifest = self.read_manifest(dataset, base) if base else None
            self._check_conflict(dataset, info, base_manifest)
            versions = self.list_versions(dataset)
            seq = (layout.version_seq(versions[-1]) or 0) + 1 if versions else 1
            version = layout.version_id(seq, info.run_id)
            sources, replaced, removed = self._plan(spec.kind, info, staging, base_manifest)
            tmp = self.fs.join(dataset_dir, layout.VERSIONS, layout.TMP_PREFIX + version)
            self.fs.remove_tree(tmp)  # a build left by a killed publish of the same sequence
            self.fs.make_dirs(self.fs.join(tmp, layout.DATA))
            partitions: dict[str, PartitionEntry] = {}
            for key, files in sorted(sources.items()):
                entries = []
                for src in files:
                    self.fs.share(src.path, self.fs.join(tmp, layout.DATA, key, src.entry.name))
                    entry = src.entry
                    if not entry.version_id:  # staged: first published in this version
                        entry = FileEntry(entry.name, entry.rows, entry.run_id, version)
                    entries.append(entry)
                partitions[key] = PartitionEntry(tuple(entries))
                self.step("publish:linked")
            manifest = Manifest(
                dataset=spec.name,
                version_id=version,
                run_id=info.run_id,
                schema_version=spec.version,
                created_at=self.clock().isoformat(),
                previous_version=base,
                partitions=partitions,
                replaced=tuple(sorted(replaced)),
                removed=tuple(sorted(removed)),
                watermark_before=info.watermark_before,
                watermark_after=info.watermark_after,
                validation=validation,
                stats={**info.stats, **(stats or {})},
            )
            self.fs.write_bytes_atomic(self.fs.join(tmp, layout.MANIFEST), manifest.to_json())
            self.step("publish:manifest")
            final = self.version_path(dataset, version)
            self.fs.rename_dir(tmp, final)
            self.fs.sync_dir(self.fs.join(dataset_dir, layout.VERSIONS))
            self.step("publish:renamed")
            self.fs.set_pointer(
                self.current_path(dataset), f"{layout.VERSIONS}/{version}/{layout.DATA}"
            )
            self.step("publish:swapped")
            log.info("%s: published %s (%d rows)", dataset, version, manifest.total_rows)
            self.fs.remove_tree(staging)
            try:
                self._gc_locked(dataset)
            except OSError:  # clean-up must never fail a publish that has committed
                log.exception("%s: garbage collection failed after publishing %s", dataset, version)
            self.step("publish:cleaned")
        return manifest

    def _plan(
        self,
        kind: DatasetKind,
        info: StageInfo,
        staging: str,
        base: Manifest | None,
    ) -> tuple[dict[str, list[_Source]], set[str], set[str]]:
        """Files of the new version per partition, and which partitions changed or went."""
        staged: dict[str, list[_Source]] = {}
        for f in info.files:
            staged.setdefault(f.partition, []).append(
                _Source(
                    self.fs.join(staging, f.partition, f.name),
                    FileEntry(f.name, f.rows, info.run_id, ""),
                )
            )
        carried: dict[str, list[_Source]] = {}
        if base is not None:
            base_dir = self.data_path(info.dataset, base.version_id)
            for key, part in base.partitions.items():
                carried[key] = [_Source(self.fs.join(base_dir, key, e.name), e) for e in part.files]
        if kind is DatasetKind.LOG:
            out = dict(carried)
            for key, files in staged.items():
                names = {s.entry.name for s in files}
                kept = [s for s in carried.get(key, []) if s.entry.name not in names]
                out[key] = kept + files
            return out, set(staged), set()
        spec = get_spec(info.dataset)
        replace = set(info.replace_partitions)
        if info.replace_scope is not None:
            scope = info.replace_scope
            replace |= {
                k for k in carried if layout.matches(layout.parse_partition_path(spec, k), scope)
            }
        out = {k: v for k, v in carried.items() if k not in replace}
        out.update(staged)
        removed = {k for k in replace if k in carried and k not in staged}
        return out, set(staged), removed

    def _check_conflict(self, dataset: str, info: StageInfo, current: Manifest | None) -> None:
        """For merged datasets: the partitions this run replaces must be as the run read them."""
        if info.base_version is None and current is None:
            return
        if get_spec(dataset).kind is not DatasetKind.MERGED:
            return
        current_id = current.version_id if current else None
        if info.base_version == current_id:
            return
        if info.base_version is None:
            base_parts: Mapping[str, PartitionEntry] = {}
        else:
            try:
                base = self.read_manifest(dataset, info.base_version)
            except FileNotFoundError:
                raise PublishConflict(
                    f"{dataset}/{info.run_id}: base version {info.base_version} is gone"
                ) from None
            base_parts = base.partitions if base else {}
        cur_parts = current.partitions if current else {}
        keys = set(info.replace_partitions)
        if info.replace_scope is not None:
            spec = get_spec(dataset)
            keys |= {
                k
                for k in set(base_parts) | set(cur_parts)
                if layout.matches(layout.parse_partition_path(spec, k), info.replace_scope)
            }
        changed = sorted(k for k in keys if base_parts.get(k) != cur_parts.get(k))
        if changed:
            raise PublishConflict(
                f"{dataset}/{info.run_id}: built on {info.base_version} but {current_id} changed "
                f"{changed[:5]}; re-run the merge"
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
        """Move the run's staging (complete or not) aside with its validation report.

        ``current`` is not touched. ``report`` is a JSON-able mapping (written as
        ``validation_report.json``) or the path of a report file (copied under its own name).
        Returns the quarantine directory.
        """
        staging = self.staging_path(dataset, run_id)
        target = self.quarantine_path(dataset, run_id)
        n = 1
        while self.fs.exists(target):  # a run id quarantined before: keep both
            n += 1
            target = self.quarantine_path(dataset, f"{run_id}.{n}")
        self.fs.make_dirs(self.fs.join(self.root, layout.QUARANTINE, get_spec(dataset).name))
        if self.fs.exists(staging):
            self.fs.rename_dir(staging, target)
        else:
            self.fs.make_dirs(target)
        if isinstance(report, Mapping):
            data = json.dumps(report, indent=2, default=str).encode()
            self.fs.write_bytes_atomic(self.fs.join(target, REPORT_NAME), data)
        else:
            src = Path(report)
            self.fs.write_bytes_atomic(self.fs.join(target, src.name), src.read_bytes())
        log.warning("%s/%s quarantined in %s", dataset, run_id, target)
        return target

    # ------------------------------------------------------------------ garbage collection

    def gc(self, dataset: str, keep: int | None = None) -> list[str]:
        """Remove versions beyond the newest ``keep`` and leftovers of killed publishes
        (``.tmp-*`` builds, temp symlinks, versions that never became current)."""
        lock = self.fs.join(self.dataset_path(dataset), layout.LOCK)
        with self.fs.lock(lock, self.lock_timeout_s):
            return self._gc_locked(dataset, keep)

    def _gc_locked(self, dataset: str, keep: int | None = None) -> list[str]:
        keep = self.keep_versions if keep is None else keep
        versions_dir = self.fs.join(self.dataset_path(dataset), layout.VERSIONS)
        current = self.current_version(dataset)
        removed = []
        # Under the lock no publish is building, so every .tmp-* is a killed publish's.
        for name in self.fs.list_dir(versions_dir):
            if name.startswith(layout.TMP_PREFIX):
                self.fs.remove_tree(self.fs.join(versions_dir, name))
                removed.append(name)
        for name in self.fs.list_dir(self.dataset_path(dataset)):
            if name.startswith(f".{layout.CURRENT}-"):  # temp symlink of a killed swap
                self.fs.remove_file(self.fs.join(self.dataset_path(dataset), name))
        versions = self.list_versions(dataset)
        current_seq = layout.version_seq(current) if current else None
        if current_seq is not None:
            # Newer than current: a publish killed between its rename and its pointer swap.
            # Under the lock nobody is publishing, so it never became current and never will.
            for name in versions:
                if (layout.version_seq(name) or 0) > current_seq:
                    self.fs.remove_tree(self.fs.join(versions_dir, name))
                    removed.append(name)
            versions = [v for v in versions if v not in removed]
        now = self.clock()
        for i, name in enumerate(versions[: max(0, len(versions) - keep)]):
            if name == current:
                continue
            # A version stays readable for `version_grace` after it stopped being current
            # (when its successor was created): readers that resolved it just before a swap.
            superseded = self._created_at(dataset, versions[i + 1])
            if superseded is not None and now - superseded < self.version_grace:
                break  # every later version was superseded even more recently
            self.fs.remove_tree(self.fs.join(versions_dir, name))
            removed.append(name)
        return removed

    def _created_at(self, dataset: str, version: str) -> datetime | None:
        try:
            manifest = self.read_manifest(dataset, version)
        except (OSError, ValueError, KeyError):
            return None
        return datetime.fromisoformat(manifest.created_at) if manifest else None

    def gc_staging(self, dataset: str, run_ids: Iterable[str]) -> None:
        for run_id in run_ids:
            self.discard(dataset, run_id)

    # ------------------------------------------------------------------ internals

    def _dataset_of(self, dataset: str, path: str) -> ds.Dataset:
        spec = get_spec(dataset)
        return ds.dataset(
            path,
            schema=pa.unify_schemas([spec.schema, spec.partition_schema]),
            format="parquet",
            filesystem=self.fs.arrow,
            partitioning=ds.partitioning(spec.partition_schema, flavor="hive"),
        )

    def step(self, name: str) -> None:
        """Report a step to ``on_step`` (the bookings merge reports its own steps too)."""
        if self.on_step is not None:
            self.on_step(name)
