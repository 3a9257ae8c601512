"""Run state: run records and named locks.

SQLAlchemy Core on whatever ``Settings.state_url`` names: SQLite under ``data/state/`` by
default, PostgreSQL by URL; the engine (shared with the ledger and the inbox registry, owner-only
SQLite file, WAL) and the schema come from :mod:`sodtrack.db`. The same
statements run on both: no dialect-specific SQL except the PostgreSQL advisory lock, which is
the right tool there.

Watermarks are not here: each bookings commit carries the watermark its data was extracted
to (``sodtrack.warehouse.publish``), so the data and its watermark cannot diverge. A database
that still has the old ``sodtrack_watermarks`` table keeps it, unread.
``updated_since(watermark)`` = watermark − lookback (the overlap re-reads records written
while the previous run's walk was finishing; the merge de-duplicates them).

Locks. ``with store.lock("nightly:cl"):`` serialises runs for a country across processes and
machines sharing the database. PostgreSQL: ``pg_advisory_lock`` on a dedicated connection (the
server frees it if the process dies). Other databases: a row with owner and expiry, renewed by
a heartbeat thread while held; a lock whose holder died is taken over once it expires.

All timestamps are stored and returned as aware UTC datetimes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Dialect,
    Engine,
    MetaData,
    String,
    Table,
    delete,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.types import TypeDecorator

from sodtrack.db import AddColumn, engine_for, ensure_schema
from sodtrack.errors import LockTimeout

log = logging.getLogger(__name__)

DEFAULT_LOOKBACK = timedelta(minutes=10)
DEFAULT_URL = "sqlite:///data/state/state.db"


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on every backend.

    SQLite has no time zone type: values are stored as naive UTC (SQLAlchemy's fixed-width
    ISO text, so comparisons in SQL order correctly) and read back as UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: state timestamps must be aware")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

runs = Table(
    "sodtrack_runs",
    metadata,
    Column("run_id", String(128), primary_key=True),
    Column("flow", String(64), nullable=False),
    Column("country", String(8), nullable=True),
    Column("status", String(16), nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("ended_at", UTCDateTime(), nullable=True),
    Column("report", JSON(), nullable=True),
)

locks = Table(
    "sodtrack_locks",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("owner", String(200), nullable=False),
    Column("acquired_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
)

MIGRATIONS: tuple[AddColumn, ...] = ()
"""Columns added to these tables since databases exist in the field (:mod:`sodtrack.db`)."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


def updated_since(
    watermark: datetime | None, lookback: timedelta = DEFAULT_LOOKBACK
) -> datetime | None:
    """The ``updated_since`` of the next incremental read: ``None`` (read everything) when
    there is no watermark, else the watermark minus the lookback overlap."""
    if watermark is None:
        return None
    if lookback < timedelta(0):
        raise ValueError("lookback must not be negative")
    return watermark - lookback


@dataclass(frozen=True, slots=True)
class RunRecord:
    run_id: str
    flow: str
    country: str | None
    status: str
    started_at: datetime
    ended_at: datetime | None
    report: Any


@dataclass
class NamedLock:
    """A held lock. ``lost`` turns true if a heartbeat found the lock taken over (the holder
    stalled past the expiry): the holder should stop before publishing."""

    name: str
    owner: str
    lost: bool = False


class StateStore:
    """Watermarks, run records and named locks in one SQL database."""

    def __init__(self, url: str = DEFAULT_URL, *, clock: Any = _utcnow) -> None:
        self.engine: Engine = engine_for(url)
        self.clock = clock
        ensure_schema(metadata, self.engine, MIGRATIONS)

    @classmethod
    def from_settings(cls, settings: Any) -> StateStore:
        return cls(settings.state_url)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def dispose(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------------ runs

    def start_run(
        self,
        run_id: str,
        *,
        flow: str,
        country: str | None = None,
        started_at: datetime | None = None,
    ) -> None:
        """Record a run as ``running`` (a retry of the same run id restarts its record)."""
        values = {
            "flow": flow,
            "country": country,
            "status": "running",
            "started_at": started_at or self.clock(),
            "ended_at": None,
            "report": None,
        }
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(runs).values(run_id=run_id, **values))
        except IntegrityError:
            with self.engine.begin() as conn:
                conn.execute(update(runs).where(runs.c.run_id == run_id).values(**values))

    def finish_run(
        self,
        run_id: str,
        status: str,
        report: Mapping[str, Any] | None = None,
        *,
        ended_at: datetime | None = None,
    ) -> None:
        with self.engine.begin() as conn:
            result = conn.execute(
                update(runs)
                .where(runs.c.run_id == run_id)
                .values(
                    status=status,
                    ended_at=ended_at or self.clock(),
                    report=dict(report) if report is not None else None,
                )
            )
            if not result.rowcount:
                raise KeyError(f"no run {run_id!r}: call start_run first")

    def get_run(self, run_id: str) -> RunRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(runs).where(runs.c.run_id == run_id)).first()
        return RunRecord(**row._mapping) if row is not None else None

    def list_runs(
        self, *, country: str | None = None, flow: str | None = None, limit: int = 50
    ) -> list[RunRecord]:
        stmt = select(runs).order_by(runs.c.started_at.desc()).limit(limit)
        if country is not None:
            stmt = stmt.where(runs.c.country == country)
        if flow is not None:
            stmt = stmt.where(runs.c.flow == flow)
        with self.engine.connect() as conn:
            return [RunRecord(**r._mapping) for r in conn.execute(stmt)]

    # ------------------------------------------------------------------ locks

    @contextlib.contextmanager
    def lock(
        self,
        name: str,
        *,
        timeout_s: float = 3600.0,
        ttl_s: float = 300.0,
        poll_s: float = 0.25,
        owner: str | None = None,
    ) -> Iterator[NamedLock]:
        """Hold the named lock for the ``with`` block; ``LockTimeout`` after ``timeout_s``.

        ``ttl_s`` (row locks only) is how long a dead holder blocks others; a live holder's
        heartbeat renews it every ``ttl_s / 3``.
        """
        held = NamedLock(
            name, owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        )
        if self.dialect == "postgresql":
            with self._advisory_lock(held, timeout_s, poll_s):
                yield held
        else:
            with self._row_lock(held, timeout_s, ttl_s, poll_s):
                yield held

    @contextlib.contextmanager
    def _advisory_lock(self, held: NamedLock, timeout_s: float, poll_s: float) -> Iterator[None]:
        key = int.from_bytes(
            hashlib.blake2b(held.name.encode(), digest_size=8).digest(), "big", signed=True
        )
        deadline = time.monotonic() + timeout_s
        # A session-level advisory lock lives with its connection: keep one checked out.
        with self.engine.connect() as conn:
            while True:
                got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
                conn.commit()  # don't sit "idle in transaction" for the whole run
                if got:
                    break
                if time.monotonic() >= deadline:
                    raise LockTimeout(f"lock {held.name!r} still held after {timeout_s}s")
                time.sleep(poll_s)
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()

    @contextlib.contextmanager
    def _row_lock(
        self, held: NamedLock, timeout_s: float, ttl_s: float, poll_s: float
    ) -> Iterator[None]:
        deadline = time.monotonic() + timeout_s
        while not self._try_row_lock(held, ttl_s):
            if time.monotonic() >= deadline:
                raise LockTimeout(f"lock {held.name!r} still held after {timeout_s}s")
            time.sleep(poll_s)
        stop = threading.Event()
        beat = threading.Thread(
            target=self._heartbeat, args=(held, ttl_s, stop), name=f"lock:{held.name}", daemon=True
        )
        beat.start()
        try:
            yield
        finally:
            stop.set()
            beat.join()
            with self.engine.begin() as conn:
                conn.execute(
                    delete(locks).where(locks.c.name == held.name, locks.c.owner == held.owner)
                )

    def _try_row_lock(self, held: NamedLock, ttl_s: float) -> bool:
        now = self.clock()
        values = {
            "owner": held.owner,
            "acquired_at": now,
            "expires_at": now + timedelta(seconds=ttl_s),
        }
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(locks).values(name=held.name, **values))
            return True
        except IntegrityError:
            pass
        with self.engine.begin() as conn:
            taken = conn.execute(
                update(locks)
                .where(locks.c.name == held.name, locks.c.expires_at < now)
                .values(**values)
            ).rowcount
        if taken:
            log.warning("lock %r: took over an expired lock", held.name)
        return bool(taken)

    def _heartbeat(self, held: NamedLock, ttl_s: float, stop: threading.Event) -> None:
        while not stop.wait(ttl_s / 3):
            try:
                with self.engine.begin() as conn:
                    renewed = conn.execute(
                        update(locks)
                        .where(locks.c.name == held.name, locks.c.owner == held.owner)
                        .values(expires_at=self.clock() + timedelta(seconds=ttl_s))
                    ).rowcount
            except Exception:  # a transient DB error: try again at the next beat
                log.exception("lock %r: heartbeat failed", held.name)
                continue
            if not renewed:
                held.lost = True
                log.error("lock %r: lost (taken over after expiry)", held.name)
                return


@contextlib.asynccontextmanager
async def hold_lock(
    store: StateStore, name: str, *, timeout_s: float = 3600.0
) -> AsyncIterator[NamedLock]:
    """``store.lock(name)`` for async code: waiting for the lock happens in a thread, so a run
    blocked on one country's lock never stalls the other countries of its event loop.

    The names in use: ``nightly:<country>`` (one extraction of a country at a time, across
    processes and machines sharing ``SODTRACK_STATE_URL``) and ``load:<sha256>`` (one load of
    a file at a time)."""
    manager = store.lock(name, timeout_s=timeout_s)
    held = await asyncio.to_thread(manager.__enter__)
    try:
        yield held
    except BaseException as exc:
        if not await asyncio.to_thread(manager.__exit__, type(exc), exc, exc.__traceback__):
            raise
    else:
        await asyncio.to_thread(manager.__exit__, None, None, None)
