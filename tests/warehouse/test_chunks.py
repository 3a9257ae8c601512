"""How many rows ``iter_chunks`` decodes at a time from a file (a byte target, clamped), and
what a read holds as the file goes on (the same at its last row group as at its first)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

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


# ---------------------------------------------------------------- memory held while reading

_PEAK_SCRIPT = r"""
import json, sys
import pyarrow as pa, pyarrow.dataset as ds, pyarrow.parquet as pq
from sodtrack.warehouse.chunks import iter_chunks, iter_file_batches

path, how = sys.argv[1], sys.argv[2]
base = pa.total_allocated_bytes()
peak, rows, digest = 0, 0, []
if how == "file":
    batches = iter_file_batches(pq.ParquetFile(path), 700)
else:
    batches = iter_chunks(ds.dataset(path, format="parquet"), read_rows=700)
for batch in batches:
    peak = max(peak, pa.total_allocated_bytes() - base)
    rows += batch.num_rows
    digest.append(batch.column("n")[0].as_py())
print(json.dumps({"peak": peak, "rows": rows, "firsts": digest[:3],
                  "pool": pa.default_memory_pool().backend_name}))
"""


def _write_row_groups(path: Path, groups: int, seed: int) -> None:
    """``groups`` row groups of 2,000 seeded rows: ids, numbers, text of random length (some
    of it long, some null), like a staged dataset's mix."""
    rng = random.Random(seed)
    tables = []
    for g in range(groups):
        n = [g * 2_000 + i for i in range(2_000)]
        text = [
            None if rng.random() < 0.1 else "x" * rng.randint(0, rng.choice((8, 80, 400)))
            for _ in n
        ]
        tables.append(pa.table({"id": [f"bk-{seed}-{v:09d}" for v in n], "n": n, "text": text}))
    table = pa.concat_tables(tables)
    pq.write_table(table, path, row_group_size=2_000)
    assert pq.ParquetFile(path).num_row_groups == groups


def _read_in_child(path: Path, how: str) -> dict[str, object]:
    env = {**os.environ, "ARROW_DEFAULT_MEMORY_POOL": "system"}  # one pool, counted
    out = subprocess.run(
        [sys.executable, "-c", _PEAK_SCRIPT, str(path), how],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, object] = json.loads(out.stdout)
    assert result["pool"] == "system"
    return result


@pytest.mark.parametrize("how", ["file", "dataset"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_what_a_read_holds_does_not_grow_with_the_files_row_groups(
    tmp_path: Path, how: str, seed: int
) -> None:
    """Reading a file row group by row group: Arrow's live bytes while batches are read and
    dropped are the same for 4 row groups as for 48 (reading the whole file with one
    ``iter_batches`` held part of every row group decoded so far: 12x more at 48 here), and
    every row is read once, in file order."""
    peaks = {}
    for groups in (4, 48):
        folder = tmp_path / f"g{groups}"
        folder.mkdir()
        path = folder / "part-0.parquet"
        _write_row_groups(path, groups, seed)
        result = _read_in_child(path if how == "file" else folder, how)
        assert result["rows"] == groups * 2_000
        assert result["firsts"] == [0, 700, 1400]
        peaks[groups] = int(result["peak"])  # type: ignore[call-overload]
    assert peaks[48] <= peaks[4] * 1.25 + (64 << 10), peaks
