"""``_manifest.json``: what a published version holds and how it came to be.

One manifest per version, written inside the version directory before the version becomes
visible, so a version with no manifest was never published. It lists every partition with its
files, each file with its row count, the run that wrote it and the version it first appeared
in; that provenance is what lets ``publish`` detect two runs replacing the same partition from
different bases, and lets an analyst answer "where did these rows come from".
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MANIFEST_FORMAT = 1


@dataclass(frozen=True, slots=True)
class FileEntry:
    name: str
    rows: int
    run_id: str
    version_id: str
    """The version in which these bytes were first published."""


@dataclass(frozen=True, slots=True)
class PartitionEntry:
    files: tuple[FileEntry, ...]

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)


@dataclass(frozen=True, slots=True)
class Manifest:
    dataset: str
    version_id: str
    run_id: str
    schema_version: int
    created_at: str
    previous_version: str | None
    partitions: Mapping[str, PartitionEntry]
    replaced: tuple[str, ...] = ()
    """Partitions this version wrote (new or replaced) ..."""
    removed: tuple[str, ...] = ()
    """... and those it dropped (replaced by nothing)."""
    watermark_before: str | None = None
    watermark_after: str | None = None
    validation: Mapping[str, Any] | None = None
    stats: Mapping[str, Any] = field(default_factory=dict)

    @property
    def total_rows(self) -> int:
        return sum(p.rows for p in self.partitions.values())

    @property
    def rows_per_partition(self) -> dict[str, int]:
        return {k: p.rows for k, p in self.partitions.items()}

    def to_json(self) -> bytes:
        doc = {
            "format": MANIFEST_FORMAT,
            "dataset": self.dataset,
            "version_id": self.version_id,
            "run_id": self.run_id,
            "schema_version": self.schema_version,
            "created_at": self.created_at,
            "previous_version": self.previous_version,
            "total_rows": self.total_rows,
            "rows_per_partition": self.rows_per_partition,
            "replaced": list(self.replaced),
            "removed": list(self.removed),
            "watermark": {"before": self.watermark_before, "after": self.watermark_after},
            "validation": dict(self.validation) if self.validation is not None else None,
            "stats": dict(self.stats),
            "partitions": {
                key: {
                    "rows": p.rows,
                    "files": [
                        {
                            "name": f.name,
                            "rows": f.rows,
                            "run_id": f.run_id,
                            "version_id": f.version_id,
                        }
                        for f in p.files
                    ],
                }
                for key, p in sorted(self.partitions.items())
            },
        }
        return json.dumps(doc, indent=2, default=str).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        d = json.loads(data)
        if d.get("format") != MANIFEST_FORMAT:
            raise ValueError(f"unsupported manifest format {d.get('format')!r}")
        return cls(
            dataset=d["dataset"],
            version_id=d["version_id"],
            run_id=d["run_id"],
            schema_version=d["schema_version"],
            created_at=d["created_at"],
            previous_version=d["previous_version"],
            partitions={
                key: PartitionEntry(
                    tuple(
                        FileEntry(f["name"], f["rows"], f["run_id"], f["version_id"])
                        for f in p["files"]
                    )
                )
                for key, p in d["partitions"].items()
            },
            replaced=tuple(d["replaced"]),
            removed=tuple(d["removed"]),
            watermark_before=d["watermark"]["before"],
            watermark_after=d["watermark"]["after"],
            validation=d["validation"],
            stats=d["stats"],
        )
