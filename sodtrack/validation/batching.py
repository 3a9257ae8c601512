"""The one place that sizes Great Expectations runs: data in, batches out.

Data arrives as one table (or pandas frame) or an iterable of ``pyarrow`` chunks (e.g. the
decoded batches :func:`sodtrack.warehouse.chunks.iter_chunks` reads file by file). Chunks are
re-cut into batches of at most ``batch_rows`` rows (small ones concatenated zero-copy, big ones
sliced; default 100,000), each converted to pandas on its own: memory is bounded by the
largest chunk plus one batch, never the dataset. GX costs ~1 s of CPU per bookings-suite run
whatever the size, hence batching rather than one run per (often small) chunk.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Final, TypeAlias

import pyarrow as pa
import pyarrow.compute as pc

from sodtrack.validation.suites import IGNORED_PARTITION_COLUMNS, expected_columns

if TYPE_CHECKING:
    import pandas as pd

    DataInput: TypeAlias = pa.Table | pd.DataFrame | Iterable[pa.Table]
    """A dataset: one table (or pandas frame), or its chunks (e.g. one per partition)."""

DEFAULT_BATCH_ROWS: Final = 100_000
"""Rows per GX run: chunks are concatenated or sliced to this size (``None``: one run per
chunk as received). Bounds the pandas copy (~30-60 MB for 100k bookings rows)."""


def input_chunks(data: Any) -> Iterator[Any]:
    """Normalise the input to an iterator of tables/frames without materialising it."""
    if isinstance(data, pa.Table | pa.RecordBatch):
        yield data
        return
    if type(data).__name__ == "DataFrame":
        yield data
        return
    if isinstance(data, Iterable):
        yield from data
        return
    raise TypeError(f"expected a pyarrow Table or an iterable of Tables, got {type(data).__name__}")


class Counted:
    """Counts the input chunks as they are consumed."""

    def __init__(self, chunks: Iterator[Any]) -> None:
        self.chunks = chunks
        self.count = 0

    def __iter__(self) -> Iterator[Any]:
        for chunk in self.chunks:
            self.count += 1
            yield chunk


def gx_batches(chunks: Iterable[Any], batch_rows: int | None) -> Iterator[Any]:
    """Re-cut Arrow chunks into batches of at most ``batch_rows`` rows: small chunks are
    concatenated (zero-copy) and big ones sliced, so GX's fixed cost per run (~1 s of CPU for
    the bookings suite) is paid a few times, not once per partition, while the pandas copy of
    a batch stays bounded. Chunks of different schemas are never merged (a missing column must
    stay visible); pandas frames pass through as they are."""
    if batch_rows is not None and batch_rows < 1:
        raise ValueError(f"batch_rows must be >= 1, got {batch_rows}")
    pending: list[pa.Table] = []
    size = 0
    produced = False
    last_empty: pa.Table | None = None

    def flush() -> Iterator[pa.Table]:
        nonlocal pending, size, produced
        if pending:
            produced = True
            yield pending[0] if len(pending) == 1 else pa.concat_tables(pending)
        pending, size = [], 0

    for chunk in chunks:
        if isinstance(chunk, pa.RecordBatch):
            chunk = pa.Table.from_batches([chunk])
        if not isinstance(chunk, pa.Table):
            yield from flush()
            produced = True
            yield chunk
            continue
        if chunk.num_rows == 0:
            last_empty = chunk  # validated only if nothing else comes (column set, row count)
            continue
        if batch_rows is None:
            produced = True
            yield chunk
            continue
        if pending and not chunk.schema.equals(pending[0].schema):
            yield from flush()
        offset = 0
        while offset < chunk.num_rows:
            take = min(batch_rows - size, chunk.num_rows - offset)
            pending.append(chunk.slice(offset, take))
            size += take
            offset += take
            if size >= batch_rows:
                yield from flush()
    yield from flush()
    if not produced and last_empty is not None:
        yield last_empty


def _load_malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to trim
        return None
    return trim


_MALLOC_TRIM = _load_malloc_trim()


def release_memory() -> None:
    """Between Great Expectations runs: collect the previous batch's frames (GX's results
    and metric objects form reference cycles) and hand the freed heap back to the OS
    (glibc keeps it otherwise, and RSS would creep up batch after batch)."""
    gc.collect()
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def to_pandas(chunk: Any) -> pd.DataFrame:
    """One chunk as pandas: dictionary-encoded (partition) columns decoded, hive date keys
    dropped, money as ``Decimal`` objects, timestamps tz-aware."""
    import pandas as pd

    if isinstance(chunk, pd.DataFrame):
        drop = [c for c in chunk.columns if c in IGNORED_PARTITION_COLUMNS]
        return chunk.drop(columns=drop) if drop else chunk
    if isinstance(chunk, pa.RecordBatch):
        chunk = pa.Table.from_batches([chunk])
    if not isinstance(chunk, pa.Table):
        raise TypeError(f"expected pyarrow Tables as chunks, got {type(chunk).__name__}")
    drop = [name for name in chunk.column_names if name in IGNORED_PARTITION_COLUMNS]
    if drop:
        chunk = chunk.drop_columns(drop)
    for i, f in enumerate(chunk.schema):
        if pa.types.is_dictionary(f.type):
            chunk = chunk.set_column(i, f.name, pc.cast(chunk.column(i), f.type.value_type))
    df: pd.DataFrame = chunk.to_pandas()
    return df


def empty_frame(dataset: str) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame({name: pd.Series([], dtype=object) for name in expected_columns(dataset)})
