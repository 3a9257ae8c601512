"""The one place that sizes Great Expectations runs: data in, batches out.

Data arrives as one table (or pandas frame) or an iterable of ``pyarrow`` chunks (e.g. the
decoded batches :func:`sodtrack.warehouse.chunks.iter_chunks` reads file by file). Chunks are
re-cut into batches (small ones concatenated zero-copy, big ones sliced), each converted to
pandas on its own: memory is bounded by the largest chunk plus one batch, never the dataset.

A batch's size comes from a memory budget (``SODTRACK_VALIDATION_BATCH_MEMORY``, default
``DEFAULT_BATCH_MEMORY``), not a fixed row count: :func:`budget_rows` divides it by the Arrow
bytes per row of the first chunk times ``PANDAS_EXPANSION`` (what a row costs once in pandas
and through GX's masks). GX has a fixed cost per run (~0.3-1.8 s, in expectation
configuration and in hashing the frame for its batch id), so the biggest batches the budget
allows are the cheapest: a 40-row catalog is one run, 2.74M coverage rows are a handful.

pandas dtypes: the default conversion (pandas 3's ``str`` dtype, Arrow-backed strings; numpy
numbers and timestamps, ``Decimal`` money) against ``types_mapper=pandas.ArrowDtype`` for
every column, on 1,000,000 ``coverage_postal_codes`` rows in one GX run (this 2-core machine,
loaded): with GX's batch fingerprint on, 3.8 s against 12.5 s wall (hashing ArrowDtype
columns is what was slow); with it off (:func:`sodtrack.validation.context.new_context`),
0.70 s of CPU each, a tie. The default is kept: it is what GX's pandas engine is tested with,
and the choice stays measurable (``ValidationSession(arrow_dtypes=True)``,
``bench/bench_validation.py --compare``).
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

DEFAULT_BATCH_MEMORY: Final = 96 << 20
"""Memory budget of one GX run (bytes): the pandas copy of a batch and GX's work on it.

96 MiB since session 8: once the reads stopped growing with the file
(:func:`sodtrack.warehouse.chunks.iter_file_batches`), one GX run was the bookings run's peak.
``bench/bench_extract.py --dlt --variant`` with this budget, the merge's DuckDB at 64 MiB (and
the checks' at 32 MiB, not kept: see ``DEFAULT_CHECKS_MEMORY_LIMIT``), one run, load ~1.3:
peak 577 / 627 / 650 → 545 / 563 / 579 MiB at 200k / 1M / 2M bookings, 7.6 / 36.5 / 69.8 →
7.6 / 37.3 / 78.6 s (dlt 17.2 / 91.8 / 177.2 s). The GX runs of 200k bookings took the same
time with 96 as with 128 MiB in the final run (validation + publish 5.47 against 5.52 s).
Earlier figures:

128 MiB, not 256: the validation's batch was the bookings run's peak once the publish
stopped buffering. Measured with ``bench/bench_validation.py`` (2-core machine, load ~9),
400,000 bookings: 256 MiB → 2 GX runs, 5.38 s CPU, peak 853 MiB; 128 MiB → 4 runs, 5.55 s,
712 MiB; 64 MiB → 8 runs, 7.46 s, 649 MiB. 2,742,166 coverage rows: 256 MiB → 3 runs, 4.32 s
CPU; 128 MiB → 6 runs, 4.65 s (peaks include the benchmark's own table). The whole bookings
run, ``bench/bench_extract.py --dlt --variant SODTRACK_VALIDATION_BATCH_MEMORY=64MiB`` (one
run, load ~1.3): 128 MiB → peak 648 / 825 MiB at 200k / 1M bookings, 9.0 s / 43.3 s (2.25× /
2.50× dlt); 64 MiB → 627 / 714 MiB, 11.8 s / 52.3 s (1.73× dlt at 200k)."""

PANDAS_EXPANSION: Final = 4.0
"""A row's cost in a GX run as a multiple of its Arrow size (the pandas copy, GX's boolean
masks, the DuckDB copy of the whole-dataset columns). Measured as the peak-RSS growth of one
validation in one GX run (``bench/bench_validation.py --calibrate``, loaded 2-core machine):
2.64x over 500,000 ``coverage_postal_codes`` rows (34 MiB of Arrow), 2.06x over 100,000
``bookings`` rows (31 MiB); 4 leaves headroom. With the default 96 MiB budget that is ~364,000
coverage rows or ~70,000 bookings a batch."""

MIN_BATCH_ROWS: Final = 1_000


def budget_rows(chunk: pa.Table, budget: int) -> int:
    """Rows per GX run so that a batch like ``chunk`` stays within ``budget`` bytes."""
    if budget < 1:
        raise ValueError(f"the batch memory budget must be >= 1 byte, got {budget}")
    per_row = max(chunk.nbytes / max(chunk.num_rows, 1), 1.0) * PANDAS_EXPANSION
    return max(MIN_BATCH_ROWS, int(budget // per_row))


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


def gx_batches(
    chunks: Iterable[Any], batch_rows: int | None, *, memory_budget: int | None = None
) -> Iterator[Any]:
    """Re-cut Arrow chunks into batches of at most ``batch_rows`` rows (or, when
    ``batch_rows`` is ``None`` and a ``memory_budget`` is given, as many rows as
    :func:`budget_rows` allows for the first chunk): small chunks are concatenated
    (zero-copy) and big ones sliced, so GX's fixed cost per run is paid a few times, not once
    per partition, while the pandas copy of a batch stays bounded. ``batch_rows=None``
    without a budget: one run per chunk as received. Chunks of different schemas are never
    merged (a missing column must stay visible); pandas frames pass through as they are."""
    if batch_rows is not None and batch_rows < 1:
        raise ValueError(f"batch_rows must be >= 1, got {batch_rows}")
    pending: list[pa.Table] = []
    size = 0
    produced = False
    last_empty: pa.Table | None = None

    def flush() -> Iterator[pa.Table]:
        # ``pending`` is emptied before the batch goes out: while the consumer works on it,
        # this generator holds no reference to its slices (the consumer may drop them).
        nonlocal pending, size, produced
        out, pending, size = pending, [], 0
        if out:
            produced = True
            if len(out) > 1:
                out = [pa.concat_tables(out)]
            yield out.pop()

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
        if batch_rows is None and memory_budget is not None:
            batch_rows = budget_rows(chunk, memory_budget)
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


_frozen = False


def freeze_long_lived() -> None:
    """Once per process, after Great Expectations is imported: move every object alive now
    (modules, classes, GX's registries: ~280,000 objects) out of the collector's reach, so
    the full collection between GX runs scans only what the runs created. Measured: a full
    ``gc.collect()`` with GX imported costs 0.25 s of CPU, ~1e-5 s after ``gc.freeze()``.
    Objects alive now are never collected later even if they become cyclic garbage: they
    are the process's long-lived state, so nothing of a validation's data is among them."""
    global _frozen
    if not _frozen:
        gc.collect()
        gc.freeze()
        _frozen = True


def release_memory() -> None:
    """Between Great Expectations runs: collect the previous batch's frames (GX's results
    and metric objects form reference cycles) and hand the freed heap back to the OS
    (glibc keeps it otherwise, and RSS would creep up batch after batch), Arrow's pool too
    (mimalloc keeps freed pages for reuse)."""
    gc.collect()
    pa.default_memory_pool().release_unused()
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def to_pandas(chunk: Any, *, arrow_dtypes: bool = False) -> pd.DataFrame:
    """One chunk as pandas: dictionary-encoded (partition) columns decoded, hive date keys
    dropped, money as ``Decimal`` objects, timestamps tz-aware. ``arrow_dtypes``: every column
    as ``pandas.ArrowDtype`` instead (measured slower, see the module docstring)."""
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
    df: pd.DataFrame = (
        chunk.to_pandas(types_mapper=pd.ArrowDtype) if arrow_dtypes else chunk.to_pandas()
    )
    return df


def empty_frame(dataset: str) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame({name: pd.Series([], dtype=object) for name in expected_columns(dataset)})
