"""Reading a dataset back in bounded chunks, file by file (what validation consumes).

Why not ``pyarrow.dataset.Dataset.to_batches``: its scanner decodes ahead on background
threads, and even with ``batch_readahead=1, fragment_readahead=1`` it held ~400 MiB more than
the batches it had handed out while a slow consumer (a Great Expectations run of 5-8 s per
100,000 bookings) worked: measured with 1,000,000 bookings, validation peaked at ~1,000 MiB
through the scanner and ~630 MiB reading each file with ``ParquetFile.iter_batches``. So here
each file is read sequentially, row group by row group (:func:`iter_file_batches`: a reader
over the whole file holds more with every row group it passes), and its hive partition
values (from the fragment's partition expression) are appended as constant string columns.
The batches go out as decoded: the validation alone coalesces them into its Great Expectations
runs (``sodtrack.validation.batching``), so there is one chunk path from page to GX.

A file's own columns are kept as they are: a file missing a declared column stays visibly
missing to the validation (the scanner would have filled it with nulls).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

READ_BATCH_ROWS = 64 * 1024
"""At most this many rows decoded at a time: a file's batches are handed out as read."""

READ_BATCH_BYTES = 2 << 20
"""And about this many bytes of the file's (uncompressed, encoded) Parquet data per read: wide
rows are read in fewer rows (~14k bookings or ~17k ``booking_changes`` rows; narrow
``coverage_postal_codes`` rows stay at ``READ_BATCH_ROWS``). Why: a read batch of a slow
consumer's input stays alive with its share of the reader, and the GX batches are cut from
several of them. Measured validating the staged files of 1M bookings (both datasets, one
session, two runs each): 64k-row reads peaked at 602 / 603 MiB (``bookings``) and 695 / 695
MiB (``booking_changes``), 16k-row reads at 598 / 601 and 655 / 654 MiB, the same CPU time
(26.7 / 25.9 s against 27.1 / 26.1 s); 16k-row reads of 2.74M ``coverage_postal_codes`` rows
cost ~0.6 s more CPU (3.9 against 3.3 s) for no lower peak, hence a byte target, not a row
count."""

MIN_READ_ROWS = 1024

PartitionFilter = Callable[[Mapping[str, str]], bool]


def partition_values(fragment: ds.Fragment) -> dict[str, str]:
    """The hive partition values of one fragment, as strings."""
    keys = ds.get_partition_keys(fragment.partition_expression)
    return {name: str(value) for name, value in keys.items()}


def rows_per_read(metadata: pq.FileMetaData, read_rows: int, read_bytes: int) -> int:
    """Rows to decode at a time from a file: about ``read_bytes`` of its Parquet data (by its
    row groups' uncompressed sizes), at least ``MIN_READ_ROWS``, at most ``read_rows``."""
    encoded = sum(
        int(metadata.row_group(i).total_byte_size) for i in range(metadata.num_row_groups)
    )
    rows = int(metadata.num_rows)
    if rows <= 0 or encoded <= 0:
        return read_rows
    return min(read_rows, max(MIN_READ_ROWS, read_bytes * rows // encoded))


def iter_file_batches(parquet: pq.ParquetFile, batch_size: int) -> Iterator[pa.RecordBatch]:
    """Every row of one Parquet file as batches of at most ``batch_size`` rows, one row group
    after another, each row group read by a reader of its own.

    Not ``parquet.iter_batches(batch_size)`` over the whole file: that reader keeps part of
    every row group it has decoded until it is done with the file, so what it holds grows
    with the file. Measured (pyarrow 26, ``ARROW_DEFAULT_MEMORY_POOL=system``, Arrow's live
    bytes while batches are read and dropped): a 2M-row ``booking_changes`` file of 31 row
    groups, 56 MiB after the first batch, 88 at the 40th, 144 at the 100th; row group by row
    group, 28 MiB throughout. Batches never span two row groups."""
    for index in range(parquet.num_row_groups):
        yield from parquet.iter_batches(batch_size=batch_size, row_groups=[index])


def iter_chunks(
    data: ds.FileSystemDataset,
    *,
    where: PartitionFilter | None = None,
    read_rows: int = READ_BATCH_ROWS,
    read_bytes: int = READ_BATCH_BYTES,
) -> Iterator[pa.Table]:
    """Every row of ``data`` (of the partitions ``where`` accepts) as the decoded batches
    of its files, in file order, each of at most ``read_rows`` rows (fewer for wide rows:
    :func:`rows_per_read`) with the partition columns appended. Nothing is coalesced here:
    the validation sizes its Great Expectations runs
    (:func:`sodtrack.validation.batching.gx_batches`, the one place that does).

    Memory: one decoded batch at a time, whatever the dataset's or a partition's size.
    """
    if read_rows < 1:
        raise ValueError(f"read_rows must be >= 1, got {read_rows}")
    # A hive dataset (a staging) names its partition keys; a Delta table's dataset has no
    # partitioning but puts each file's partition values in its partition expression.
    keys = set(data.partitioning.schema.names) if data.partitioning else None
    partition_fields = [f for f in data.schema if keys is None or f.name in keys]
    for fragment in data.get_fragments():
        values = partition_values(fragment)
        if where is not None and not where(values):
            continue
        with data.filesystem.open_input_file(fragment.path) as handle:
            parquet = pq.ParquetFile(handle)
            rows = rows_per_read(parquet.metadata, read_rows, read_bytes)
            for batch in iter_file_batches(parquet, rows):
                if not batch.num_rows:
                    continue
                table = pa.Table.from_batches([batch])
                for f in partition_fields:
                    if f.name not in table.column_names and f.name in values:
                        column = pa.array([values[f.name]] * table.num_rows, pa.string())
                        table = table.append_column(f.name, column)
                yield table


def published_chunks(
    data: ds.FileSystemDataset, country: str, *, read_rows: int = READ_BATCH_ROWS
) -> Iterator[pa.Table]:
    """One country's rows of a published version in bounded chunks (:func:`iter_chunks`): for
    a snapshot dataset, its latest ``snapshot_date`` only (what ``sodtrack-etl validate``
    checks)."""
    mine = [
        values
        for values in (partition_values(f) for f in data.get_fragments())
        if values.get("country") == country
    ]
    dates = [v["snapshot_date"] for v in mine if "snapshot_date" in v]
    latest = max(dates) if dates else None

    def where(values: Mapping[str, str]) -> bool:
        if values.get("country") != country:
            return False
        return latest is None or values.get("snapshot_date") == latest

    return iter_chunks(data, where=where, read_rows=read_rows)
