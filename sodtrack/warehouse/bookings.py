"""The nightly bookings run for one country: changes log + bounded-memory merge.

Input: the raw pages of ``GET /bookings?updated_since=<watermark - lookback>``. A cursor walk
returns a record again when it is updated during the walk, and the lookback overlap re-reads
the end of the previous run, so the same id can appear several times, with the same or a later
``updated_at``.

Output, both *staged* (validation and ``Warehouse.publish`` come after):

* ``booking_changes`` (``country``, ``extraction_date`` = the UTC date of ``extracted_at``):
  every version received, exact repeats of the same ``(id, updated_at)`` within the run
  dropped (the last received kept), in arrival order, with ``run_id``. One file per run in the
  partition: a log.
* ``bookings`` (``country``, ``scheduled_month``): the latest state. Touched partitions are the
  months of the changed bookings' *new* ``scheduled_start`` plus the months where those ids
  live in the current version (a reschedule moves a booking between months). A touched
  partition becomes ``current rows − changed ids + newest version of each changed id whose new
  month it is`` (newest = greatest ``updated_at``, a tie going to the last received; a stored
  row strictly newer than everything received for its id is kept, so a replayed run cannot
  move a booking back in time). Touched partitions left empty are removed; untouched ones
  are not part of the commit (a replace-where of the touched months). ``full_refresh``
  rebuilds every partition of the country from this run alone. Rows within a partition have
  no promised order (carried rows first, then this run's by id).

Bounded memory: pages are converted and streamed to a Parquet work file as they arrive (one
row group buffered). DuckDB then runs with ``memory_limit`` and a ``temp_directory`` so it
spills rather than grows: every decision (exact repeats, newest per id, which version wins,
touched months) is taken on the narrow columns ``(id, updated_at, month, arrival)``; the wide
winning rows are read once, by arrival number, and split into one work file per month (no
DuckDB sort of wide rows: it could not spill enough). Each touched month is one query whose
Arrow output is streamed in batches (``to_arrow_reader``) into the staging writer, cast to the
explicit schema, and closed before the next month starts. No query depends on insertion order
(the changes log takes its arrival order from the work file), so DuckDB may spill them all.
The base version's files are read where they are (a local table; Delta never rewrites a file)
or downloaded into the work directory (object storage). Peak memory depends on the memory
limit and the largest month, not on the number of bookings (``bench/bench_extract.py``):
the winning rows are picked in Arrow from a month code per arrival number (4 bytes a
version), and each month's stored rows are joined against that month's changed ids only.

Publish order recommended to the flow: ``bookings`` first, then ``booking_changes``; each
commit carries the run's watermark, and the next run reads from the older of the two. A run
killed between them re-extracts the same window on the next attempt; the merge is idempotent,
and ``booking_changes`` can at worst hold the same versions under two run ids
(distinguishable by ``run_id``).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sodtrack.contract.countries import get_country
from sodtrack.contract.models import Booking
from sodtrack.warehouse import duck, layout
from sodtrack.warehouse.chunks import iter_file_batches
from sodtrack.warehouse.convert import bookings_batch
from sodtrack.warehouse.duck import DuckLimits
from sodtrack.warehouse.publish import Warehouse
from sodtrack.warehouse.schemas import DATASETS
from sodtrack.warehouse.writer import StagingWriter, conform

WORK = "_work"
_SEQ = "_seq"
_MONTH = "_month"
_BOOKINGS = DATASETS["bookings"]
_CHANGES = DATASETS["booking_changes"]
WORK_ROW_GROUP_ROWS = 32 * 1024
"""Row group of the work file: every later read of it (the changes log, DuckDB's scans)
decodes a whole row group at a time, so this bounds what each read holds. With 128k rows (the
staged files' size) the merge of 1M bookings peaked ~35 MiB higher (809 and 823 against 776
and 786 MiB, two merge-only runs each, ``SODTRACK_DUCKDB_MEMORY_LIMIT=128MiB``)."""
_BATCH_ROWS = WORK_ROW_GROUP_ROWS
"""Rows per Arrow batch the merge reads or streams (the work file, DuckDB's results): one
work-file row group, not two. See ``CHANGES_ROW_GROUP_ROWS`` for the figures."""
CHANGES_ROW_GROUP_ROWS = 64 * 1024
"""Row group of the staged ``booking_changes`` files (the staging writer buffers one before
writing it; other datasets keep the writer's 128k). Merge-only runs of 1M bookings (GX
imported, a profiling script; peak RSS from ``merge:keys`` to ``merge:changes_staged``):
128k-row groups and 64k-row reads 677 / 705 MiB; 32k-row reads 651; and 64k-row groups 608
(32k-row groups: 610 / 607). The validation of the staged log peaked the same with 32k, 64k
or 128k-row groups (672 / 679 / 673 MiB)."""
_COLS = ", ".join(f'"{n}"' for n in _BOOKINGS.schema.names)


@dataclass(frozen=True, slots=True)
class MergeResult:
    """Counts of one bookings run (all of them go into the manifests' stats)."""

    run_id: str
    country: str
    full_refresh: bool
    base_version: str | None
    received: int
    """Records received, repeats included."""
    exact_repeats: int
    """Dropped from the changes log: same (id, updated_at) received again in this run."""
    changes_written: int
    distinct_ids: int
    superseded: int
    """Older versions of an id within the run (in the log, not in ``bookings``)."""
    stale_ignored: int
    """Ids whose received version is older than the stored one (kept the stored row)."""
    new_ids: int
    """Changed ids not in the base version (always ``distinct_ids`` on a full refresh)."""
    moved_ids: int
    """Changed ids whose month partition changed (reschedules across months)."""
    rows_written: int
    """Rows of the staged (touched) bookings partitions."""
    bookings_total: int
    """Rows of the country's bookings once published."""
    partitions_touched: tuple[str, ...]
    partitions_removed: tuple[str, ...]
    watermark_before: datetime | None
    watermark_after: datetime | None
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def deduplicated(self) -> int:
        """Records received that did not become a row of ``bookings``."""
        return self.received - self.distinct_ids

    def stats(self) -> dict[str, Any]:
        d = asdict(self)
        d["deduplicated"] = self.deduplicated
        for k in ("watermark_before", "watermark_after"):
            d[k] = d[k].isoformat() if d[k] else None
        d["partitions_touched"] = list(self.partitions_touched)
        d["partitions_removed"] = list(self.partitions_removed)
        return d


class BookingsRun:
    """Collects one run's booking pages for ``country``, then stages changes and merge.

    >>> run = BookingsRun(warehouse, "cl", run_id, extracted_at=now)
    >>> async for page in client.bookings(updated_since=...): run.add_page(page.data)
    >>> result = run.finish(watermark_before=wm)
    >>> # validate staged data, then warehouse.publish("bookings", run_id), ...

    ``limits`` (default: the warehouse's, ``SODTRACK_DUCKDB_MEMORY_LIMIT`` and
    ``SODTRACK_DUCKDB_THREADS``) cap DuckDB; it spills to ``<root>/_work/<run_id>/``.
    """

    def __init__(
        self,
        warehouse: Warehouse,
        country: str,
        run_id: str,
        *,
        extracted_at: datetime,
        limits: DuckLimits | None = None,
        row_group_rows: int = WORK_ROW_GROUP_ROWS,
    ) -> None:
        if extracted_at.tzinfo is None:
            raise ValueError("extracted_at must be timezone-aware")
        self.wh = warehouse
        self.country = get_country(country).code
        self.run_id = layout.check_run_id(run_id)
        self.extracted_at = extracted_at.astimezone(UTC)
        self.limits = limits or warehouse.duck_limits
        self.row_group_rows = row_group_rows
        fs = warehouse.fs
        self.work = fs.join(warehouse.scratch, WORK, f"{self.run_id}-bookings-{self.country}")
        fs.remove_tree(self.work)
        fs.make_dirs(self.work)
        self._raw_path = fs.join(self.work, "raw.parquet")
        raw_schema = _BOOKINGS.schema.append(pa.field(_SEQ, pa.int64(), nullable=False))
        self._raw_schema = raw_schema
        self._raw = pq.ParquetWriter(
            self._raw_path, raw_schema, compression="zstd", filesystem=fs.arrow
        )
        self._buffer: list[pa.RecordBatch] = []
        self._buffered = 0
        self._received = 0
        self._finished = False

    # ------------------------------------------------------------------ input

    def add_page(self, page: Sequence[Booking], received_at: datetime | None = None) -> None:
        """Convert one page of models and append it (in arrival order).

        ``received_at`` stamps the page's ``extracted_at`` (default: the run's start): a
        booking updated while the walk ran is then never "extracted before it was updated".
        """
        if page:
            self.add_batch(bookings_batch(page, (received_at or self.extracted_at).astimezone(UTC)))

    def add_batch(self, batch: pa.RecordBatch) -> None:
        """Append a batch with the ``bookings`` schema (e.g. from ``bookings_batch``)."""
        if self._finished:
            raise RuntimeError("run already finished")
        batch = conform(batch, _BOOKINGS)
        n = batch.num_rows
        if n == 0:
            return
        seq = pa.array(range(self._received, self._received + n), type=pa.int64())
        self._buffer.append(pa.record_batch([*batch.columns, seq], schema=self._raw_schema))
        self._buffered += n
        self._received += n
        if self._buffered >= self.row_group_rows:
            self._flush()

    async def consume(self, pages: AsyncIterable[Sequence[Booking]]) -> None:
        """Drain an async iterator of pages (the API client's ``bookings()``)."""
        async for page in pages:
            self.add_page(page)

    def add_pages(self, pages: Iterable[Sequence[Booking]]) -> None:
        for page in pages:
            self.add_page(page)

    # ------------------------------------------------------------------ merge

    def finish(
        self, *, watermark_before: datetime | None = None, full_refresh: bool = False
    ) -> MergeResult:
        """Stage ``booking_changes`` and the merged ``bookings`` partitions of this run."""
        if self._finished:
            raise RuntimeError("run already finished")
        started = time.monotonic()
        self._flush()
        self._raw.close()
        self._finished = True
        self.wh.step("merge:started")  # every page received and written to the work file
        try:
            with duck.within_limit(
                "the bookings merge", self.limits.memory_limit, duck.MERGE_SETTING
            ):
                return self._merge(watermark_before, full_refresh, started)
        finally:
            self.wh.fs.remove_tree(self.work)

    def abort(self) -> None:
        if not self._finished:
            self._raw.close()
            self._finished = True
        self.wh.fs.remove_tree(self.work)

    def _connect(self) -> duckdb.DuckDBPyConnection:
        # In-memory database: with memory_limit and temp_directory set, DuckDB spills its
        # tables and operators to the temp directory instead of growing.
        tmp = self.wh.fs.join(self.work, "spill")
        self.wh.fs.make_dirs(tmp)
        # Nothing here depends on insertion order (the changes log takes its order from the
        # work file, a month's rows have no promised order): DuckDB may spill every operator.
        return duck.connect(self.limits, tmp, keep_order=False)

    def _merge(
        self, watermark_before: datetime | None, full_refresh: bool, started: float
    ) -> MergeResult:
        """The merge as named steps: pin the base, decide on narrow keys, stage the changes
        log, choose the winning versions, rebuild each touched month."""
        wh = self.wh
        base = self._pin_base(full_refresh)
        extraction_date = self.extracted_at.date().isoformat()
        con = self._connect()
        try:
            raw = f"read_parquet('{_sql_str(self._raw_path)}')"
            _create_keys(con, raw)
            wh.step("merge:keys")
            with wh.stage(
                "booking_changes", self.run_id, row_group_rows=CHANGES_ROW_GROUP_ROWS
            ) as changes:
                changes_written = self._write_changes(con, changes, extraction_date)
                wh.step("merge:changes_written")
                decision = _decide_winners(con, base.parts)
                wh.step("merge:decided")
                winners = self._split_winners(con, decision.months)
                changes.finish(
                    watermark_before=watermark_before,
                    watermark_after=decision.max_updated,
                    stats={"received": self._received, "changes_written": changes_written},
                    finished_at=datetime.now(UTC),
                )
            wh.step("merge:changes_staged")
            with wh.stage("bookings", self.run_id, base_version=base.version) as out:
                touched, removed, rows_written = self._rebuild_months(
                    con, out, decision.months, base.parts, winners
                )
                untouched = sum(r for k, r in base.rows.items() if k not in set(touched))
                result = MergeResult(
                    run_id=self.run_id,
                    country=self.country,
                    full_refresh=full_refresh,
                    base_version=base.version,
                    received=self._received,
                    exact_repeats=self._received - changes_written,
                    changes_written=changes_written,
                    distinct_ids=decision.distinct_ids,
                    superseded=changes_written - decision.distinct_ids,
                    stale_ignored=decision.distinct_ids - decision.winners,
                    new_ids=decision.new_ids,
                    moved_ids=decision.moved_ids,
                    rows_written=rows_written,
                    bookings_total=untouched + rows_written,
                    partitions_touched=tuple(touched),
                    partitions_removed=tuple(removed),
                    watermark_before=watermark_before,
                    watermark_after=decision.max_updated,
                    seconds=time.monotonic() - started,
                )
                out.finish(
                    replace_scope={"country": self.country} if full_refresh else None,
                    watermark_before=watermark_before,
                    watermark_after=decision.max_updated,
                    stats=result.stats(),
                    finished_at=datetime.now(UTC),
                )
            wh.step("merge:bookings_staged")
            return result
        finally:
            con.close()
            pa.default_memory_pool().release_unused()  # the merge's Arrow buffers, to the OS

    def _pin_base(self, full_refresh: bool) -> _Base:
        """The country's partitions of the latest version (none for a full refresh): their
        files, which Delta never rewrites and ``vacuum`` keeps for the retention (a table on
        object storage: downloaded into the work directory)."""
        wh = self.wh
        described = wh.describe("bookings")
        if described is None:
            return _Base(None)
        base = _Base(described.version_id)
        if full_refresh:
            return base
        prefix = f"country={self.country}/"
        base.parts = wh.pin_files(
            "bookings", self.country, wh.fs.join(self.work, "base"), version=base.version
        )
        base.rows = {k: r for k, r in described.rows_per_partition.items() if k.startswith(prefix)}
        return base

    def _write_changes(
        self, con: duckdb.DuckDBPyConnection, changes: StagingWriter, extraction_date: str
    ) -> int:
        """The changes log: exact repeats dropped (the last received kept), in arrival order.

        DuckDB only names the dropped arrivals (narrow, usually few); the wide rows are read
        from the work file, which is in arrival order, one row group at a time: the order
        costs no sort and DuckDB need not keep insertion order anywhere. Returns the rows
        written."""
        values = {"country": self.country, "extraction_date": extraction_date}
        changes.touch(values)
        repeats: pa.Table = con.sql(
            f"SELECT {_SEQ} FROM keys WHERE NOT last_exact"  # noqa: S608
        ).to_arrow_table()
        dropped = repeats.column(0).combine_chunks()
        written = 0
        source = pq.ParquetFile(self._raw_path, filesystem=self.wh.fs.arrow)
        for batch in iter_file_batches(source, _BATCH_ROWS):
            seq = batch.column(_SEQ)
            if len(dropped):
                batch = batch.filter(pc.invert(pc.is_in(seq, value_set=dropped)))
            if batch.num_rows == 0:
                continue
            columns = [batch.column(n) for n in _BOOKINGS.schema.names]
            run_id = pa.repeat(pa.scalar(self.run_id, pa.string()), batch.num_rows)
            changes.write(
                pa.record_batch([*columns, run_id], names=[*_BOOKINGS.schema.names, "run_id"]),
                values,
            )
            written += batch.num_rows
        return written

    def _split_winners(self, con: duckdb.DuckDBPyConnection, months: list[str]) -> dict[str, str]:
        """The wide winning rows, read once from the work file and split by month into one
        work file per month (``winners-<n>.parquet``). Returns month → file.

        DuckDB only names the winners: the month of each winning arrival number, kept as a
        code per arrival (an index into ``months``, -1 for a version that does not win: 4
        bytes per version received). The work file is then read in Arrow, row group by row
        group, each batch filtered by its arrival numbers' codes, sorted by month and its
        runs appended to the months' files. Memory: one batch and the codes, whatever the
        number of bookings. Not a DuckDB semi-join of the wide rows on the ``win`` table (its
        hash table over every winner grew with the bookings: 2M of them fitted in a 128 MiB
        limit, not in 96), nor an ``ORDER BY`` of the wide rows (that sort could not spill
        enough: "failed to pin block of size 256.0 KiB"). The months' names are DuckDB's, the
        ones ``_decide_winners`` listed: no month is formatted twice."""
        fs = self.wh.fs
        for done in ("keys", "latest", "located"):  # decided: only ``win`` is needed now
            con.execute(f"DROP TABLE {done}")
        names = pa.array(months, pa.string())
        codes = np.full(self._received, -1, dtype=np.int32)
        for batch in _stream(con, f"SELECT {_SEQ}, {_MONTH} FROM win", []):  # noqa: S608
            code = pc.index_in(batch.column(1), value_set=names)
            if code.null_count:
                raise RuntimeError("a winner's month is not among the touched months")
            codes[batch.column(0).to_numpy()] = code.to_numpy()
        columns = list(_BOOKINGS.schema.names)
        files: dict[str, str] = {}
        writers: dict[str, pq.ParquetWriter] = {}
        try:
            source = pq.ParquetFile(self._raw_path, filesystem=fs.arrow)
            for batch in iter_file_batches(source, _BATCH_ROWS):
                code = codes[batch.column(_SEQ).to_numpy()]
                keep = np.flatnonzero(code >= 0)
                if not len(keep):
                    continue
                order = keep[np.argsort(code[keep], kind="stable")]  # by month, arrival order
                wanted = batch.select(columns).take(pa.array(order))
                sorted_codes = code[order]
                starts = [0, *(np.flatnonzero(np.diff(sorted_codes)) + 1).tolist()]
                for first, stop in zip(starts, [*starts[1:], len(order)], strict=True):
                    month = months[int(sorted_codes[first])]
                    piece = wanted.slice(first, stop - first)
                    writer = writers.get(month)
                    if writer is None:
                        files[month] = fs.join(self.work, f"winners-{len(files)}.parquet")
                        writer = writers[month] = pq.ParquetWriter(
                            files[month], piece.schema, filesystem=fs.arrow
                        )
                    writer.write_batch(piece)
        finally:
            for writer in writers.values():
                writer.close()
        return files

    def _rebuild_months(
        self,
        con: duckdb.DuckDBPyConnection,
        out: StagingWriter,
        months: list[str],
        base_parts: dict[str, list[str]],
        winners: dict[str, str],
    ) -> tuple[list[str], list[str], int]:
        """Each touched month: its stored rows less the changed ids, then the winners whose
        month it is (their work file), streamed and closed before the next. Returns the
        touched and the removed (left empty) partitions, and the rows written."""
        wh = self.wh
        touched: list[str] = []
        removed: list[str] = []
        rows_written = 0
        for month in months:
            values = {"country": self.country, "scheduled_month": month}
            key = layout.partition_path(layout.partition(_BOOKINGS, values))
            touched.append(key)
            out.replace([values])
            parts: list[str] = []
            params: list[Any] = []
            current = base_parts.get(key)
            if current:
                # The ids to drop from this month are the winners that live here now
                # (``old_month``, from ``located``): a hash table of this month's changed
                # ids, not of every winner (2M winners did not fit in 64 MiB).
                stored = f"read_parquet({_sql_list(current)})"
                leaving = "(SELECT id FROM win WHERE existed AND old_month = ?)"
                parts.append(f"SELECT {_COLS} FROM {stored} c ANTI JOIN {leaving} w ON c.id = w.id")  # noqa: S608
                params.append(month)
            if month in winners:
                parts.append(f"SELECT {_COLS} FROM read_parquet('{_sql_str(winners[month])}')")  # noqa: S608
            # Rows within a partition have no promised order (carried rows, then this run's).
            n = 0
            if parts:
                for batch in _stream(con, " UNION ALL ".join(parts), params):
                    out.write(batch, values)
                    n += batch.num_rows
            out.close_partition(values)  # one month buffered at a time
            rows_written += n
            if n == 0:
                removed.append(key)
            wh.step("merge:partition_written")
        return touched, removed, rows_written

    def _flush(self) -> None:
        if self._buffered:
            table = pa.Table.from_batches(self._buffer, schema=self._raw_schema)
            self._raw.write_table(table, row_group_size=self.row_group_rows)
            self._buffer.clear()
            self._buffered = 0


@dataclass(slots=True)
class _Base:
    """The published version a merge starts from, pinned in the work directory."""

    version: str | None
    parts: dict[str, list[str]] = field(default_factory=dict)
    """Partition key → the pinned paths of its files (the country's only)."""
    rows: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Decision:
    """Which versions win, taken on the narrow columns (tables ``latest``, ``located`` and
    ``win`` are left in the connection)."""

    distinct_ids: int
    max_updated: datetime | None
    winners: int
    new_ids: int
    moved_ids: int
    months: list[str]
    """The touched months: the winners' new ones and the ones they leave."""


def _create_keys(con: duckdb.DuckDBPyConnection, raw: str) -> None:
    """Decide on narrow columns (id, updated_at, month, _seq) first, then pick the wide rows
    by _seq: windowing or sorting the 29-column rows themselves is what costs."""
    con.execute(
        f"""
        CREATE TABLE keys AS
        SELECT id, updated_at, {_SEQ},
               strftime(timezone('UTC', scheduled_start), '%Y-%m') AS {_MONTH},
               {_SEQ} = max({_SEQ}) OVER (PARTITION BY id, updated_at) AS last_exact,
               row_number() OVER (
                   PARTITION BY id ORDER BY updated_at DESC, {_SEQ} DESC) = 1 AS newest
        FROM {raw}
        """  # noqa: S608
    )


def _decide_winners(con: duckdb.DuckDBPyConnection, base_parts: dict[str, list[str]]) -> _Decision:
    """The newest version of each changed id (greatest updated_at, a tie to the last
    received), where those ids live now, and which versions win: the incoming one unless the
    stored row is strictly newer (a replayed or out-of-order run must not move a booking back
    in time; a tie goes to the incoming, later-seen one)."""
    con.execute("CREATE TABLE latest AS SELECT * FROM keys WHERE newest")
    distinct_ids, max_updated = con.execute(
        "SELECT count(*), max(updated_at) FROM latest"
    ).fetchall()[0]
    if base_parts:
        files = [p for ps in base_parts.values() for p in ps]
        con.execute(
            f"""
            CREATE TABLE located AS
            SELECT b.id, b.scheduled_month AS {_MONTH}, b.updated_at
            FROM read_parquet({_sql_list(files)}, hive_partitioning = true,
                              hive_types = {{'country': VARCHAR,
                                             'scheduled_month': VARCHAR}}) b
            SEMI JOIN latest l ON b.id = l.id
            """  # noqa: S608
        )
    else:
        con.execute(f"CREATE TABLE located (id VARCHAR, {_MONTH} VARCHAR, updated_at TIMESTAMPTZ)")
    con.execute(
        f"""
        CREATE TABLE win AS
        SELECT l.id, l.{_SEQ}, l.{_MONTH}, o.{_MONTH} AS old_month,
               o.id IS NOT NULL AS existed
        FROM latest l LEFT JOIN located o ON l.id = o.id
        WHERE o.id IS NULL OR l.updated_at >= o.updated_at
        """  # noqa: S608
    )
    winners, new_ids, moved_ids = con.execute(
        f"""
        SELECT count(*), count(*) FILTER (WHERE NOT existed),
               count(*) FILTER (WHERE existed AND old_month <> {_MONTH})
        FROM win
        """  # noqa: S608
    ).fetchall()[0]
    months = [
        r[0]
        for r in con.execute(
            f"""
            SELECT {_MONTH} FROM win UNION SELECT old_month FROM win WHERE existed
            ORDER BY 1
            """  # noqa: S608
        ).fetchall()
    ]
    return _Decision(distinct_ids, _utc(max_updated), winners, new_ids, moved_ids, months)


def _stream(con: duckdb.DuckDBPyConnection, query: str, params: list[Any]) -> pa.RecordBatchReader:
    """Run ``query`` and stream its result as Arrow batches.

    ``con.sql(...).to_arrow_reader`` streams from the query; the DB-API path
    (``con.execute(...).to_arrow_reader``) would first copy every row of the result.
    """
    relation = con.sql(query, params=params)
    assert relation is not None  # a SELECT always gives a relation
    return relation.to_arrow_reader(_BATCH_ROWS)


def _utc(value: datetime | None) -> datetime | None:
    """DuckDB returns ``ZoneInfo('UTC')``-aware values; the rest of the code uses ``UTC``."""
    return value.astimezone(UTC) if value is not None else None


def _sql_str(value: str) -> str:
    """Quote a path for a SQL string literal. The queries here are assembled from constant
    column names, these quoted paths and validated partition values; user data only ever
    travels as bound parameters (hence the ``noqa: S608`` marks)."""
    return value.replace("'", "''")


def _sql_list(paths: Sequence[str]) -> str:
    return "[" + ", ".join(f"'{_sql_str(p)}'" for p in paths) + "]"
