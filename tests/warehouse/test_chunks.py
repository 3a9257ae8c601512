"""How many rows ``iter_chunks`` decodes at a time from a file (a byte target, clamped)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from sodtrack.warehouse.chunks import MIN_READ_ROWS, rows_per_read


def _metadata(tmp_path: Path, table: pa.Table) -> pq.FileMetaData:
    path = tmp_path / "f.parquet"
    pq.write_table(table, path)
    return pq.ParquetFile(path).metadata


def test_wide_rows_are_read_in_fewer_rows_than_narrow_ones(tmp_path: Path) -> None:
    wide = pa.table({f"c{i}": [f"value-{i}-{n:08d}" for n in range(5_000)] for i in range(8)})
    narrow = pa.table({"c": list(range(5_000))})
    target = 64 * 1024
    wide_rows = rows_per_read(_metadata(tmp_path, wide), 1_000_000, target)
    narrow_rows = rows_per_read(_metadata(tmp_path, narrow), 1_000_000, target)
    assert MIN_READ_ROWS <= wide_rows < narrow_rows


def test_rows_per_read_stays_within_its_bounds(tmp_path: Path) -> None:
    metadata = _metadata(tmp_path, pa.table({"c": list(range(5_000))}))
    assert rows_per_read(metadata, 100, 1 << 30) == 100  # never above read_rows
    assert rows_per_read(metadata, 1_000_000, 1) == MIN_READ_ROWS  # never below the floor
    assert rows_per_read(metadata, 10, 1) == 10  # a smaller read_rows wins over the floor
    empty = _metadata(tmp_path, pa.table({"c": pa.array([], pa.int64())}))
    assert rows_per_read(empty, 500, 1) == 500
