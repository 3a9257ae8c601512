"""DuckDB connections with bounded memory: the bookings merge and the validation's
whole-dataset pass both open theirs here, each with its own memory limit.

DuckDB's default ``memory_limit`` is 80% of the machine's RAM and its default thread count
is every core: on a shared worker a merge of a million bookings would take what it finds.
With a ``memory_limit`` and a ``temp_directory`` it spills its tables and operators to disk
instead of growing (``SODTRACK_DUCKDB_MEMORY_LIMIT``, ``SODTRACK_DUCKDB_THREADS``).

The whole-dataset checks (``sodtrack.validation.wholeset``) read only the key columns (staged
to Parquet files as the data streams past) and ask order-free questions (group by, anti-join,
count), so they drop insertion order and spill freely, with a limit of their own
(``SODTRACK_VALIDATION_DUCKDB_MEMORY_LIMIT``). The merge's queries are order-free too (its
changes log takes its order from the work file) and touch the wide rows only to stream them
(the winners are picked in Arrow, each month rebuilt against its own changed ids).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from sodtrack.errors import MemoryLimitTooLow

if TYPE_CHECKING:
    import duckdb

MERGE_SETTING: Final = "SODTRACK_DUCKDB_MEMORY_LIMIT"
CHECKS_SETTING: Final = "SODTRACK_VALIDATION_DUCKDB_MEMORY_LIMIT"

DEFAULT_MEMORY_LIMIT: Final = 64 << 20
"""Bytes: the bookings merge spills past it (``bench/bench_extract.py``; 256 MiB while its
queries kept insertion order, 128 MiB while the winners were picked by a semi-join over all of
them). 64 MiB merges 2M bookings, a full refresh and an incremental run where every one of
them changed (36.9 s, peak 546 MiB, merge alone)."""
DEFAULT_CHECKS_MEMORY_LIMIT: Final = 64 << 20
"""Bytes: the whole-dataset checks spill their key columns past it (``bench/bench_extract.py``).
Not lower: their grouping does not spill everything. Compound keys like the demo's 2.74M
``coverage_postal_codes`` failed "Out of Memory" at 32 MiB while the checks kept a DuckDB table
and ran on two threads (pass at 36); over key files on one thread they pass at 32, and 8M of
them fail at 48 MiB and pass at 64 (session 8). Too low a limit is
:class:`~sodtrack.errors.MemoryLimitTooLow` naming the setting (``tests/warehouse/test_duck.py``).
"""
DEFAULT_THREADS: Final = 2
MIN_MEMORY_LIMIT: Final = 32 << 20


@dataclass(frozen=True, slots=True)
class DuckLimits:
    """What every DuckDB connection of a run may use."""

    memory_limit: int = DEFAULT_MEMORY_LIMIT
    threads: int = DEFAULT_THREADS
    checks_memory_limit: int = DEFAULT_CHECKS_MEMORY_LIMIT
    """The whole-dataset checks' connection (:meth:`for_checks`)."""

    def __post_init__(self) -> None:
        for limit in (self.memory_limit, self.checks_memory_limit):
            if limit < MIN_MEMORY_LIMIT:
                raise ValueError(
                    f"the DuckDB memory limit must be at least {MIN_MEMORY_LIMIT >> 20} MiB, "
                    f"got {limit} bytes"
                )
        if self.threads < 1:
            raise ValueError(f"DuckDB needs at least one thread, got {self.threads}")

    @classmethod
    def from_settings(cls, settings: object) -> DuckLimits:
        return cls(
            memory_limit=int(getattr(settings, "duckdb_memory_limit", DEFAULT_MEMORY_LIMIT)),
            threads=int(getattr(settings, "duckdb_threads", DEFAULT_THREADS)),
            checks_memory_limit=int(
                getattr(settings, "validation_duckdb_memory_limit", DEFAULT_CHECKS_MEMORY_LIMIT)
            ),
        )

    def for_checks(self) -> DuckLimits:
        """The limits of the whole-dataset checks' connection: their own memory limit, the
        same threads."""
        return DuckLimits(
            memory_limit=self.checks_memory_limit,
            threads=self.threads,
            checks_memory_limit=self.checks_memory_limit,
        )


def connect(
    limits: DuckLimits, temp_directory: str, *, keep_order: bool = True
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB bounded by ``limits``, spilling into ``temp_directory``; session
    time zone UTC (Arrow output of ``TIMESTAMPTZ`` in UTC). ``keep_order=False`` lets
    DuckDB drop insertion order (less memory) where no result depends on it."""
    import duckdb

    con = duckdb.connect(":memory:")
    con.execute(f"SET memory_limit = '{limits.memory_limit >> 20}MiB'")
    con.execute(f"SET threads = {int(limits.threads)}")
    con.execute("SET temp_directory = ?", [temp_directory])
    con.execute("SET TimeZone = 'UTC'")
    if not keep_order:
        con.execute("SET preserve_insertion_order = false")
    return con


@contextlib.contextmanager
def within_limit(what: str, limit: int, setting: str) -> Iterator[None]:
    """Queries of one step under ``limit`` bytes: DuckDB's "Out of Memory" (its own exception
    type) becomes :class:`~sodtrack.errors.MemoryLimitTooLow` naming ``setting``, the one
    to raise, instead of a bare DuckDB error. (Results streamed to Arrow report it as a
    plain ``OSError``, which is left as it is: telling it apart would mean reading the
    message.)"""
    import duckdb

    try:
        yield
    except duckdb.OutOfMemoryException as exc:
        raise MemoryLimitTooLow(
            f"{what} ran out of DuckDB memory ({limit >> 20} MiB, the limit {setting} "
            "gives it): raise it",
            setting=setting,
        ) from exc
