"""The one database module: engines, schema creation and migrations for our SQL stores.

Four stores share one SQL database (``Settings.state_url``): the run state
(:mod:`sodtrack.state`: runs, locks), the load ledger (:mod:`sodtrack.bulkload.engine.ledger`,
tables ``load_*``), the inbox registry (:mod:`sodtrack.bulkload.inbox`) and the upload page's
accounts (:mod:`sodtrack.web.accounts`). None of them builds an engine: each asks
:func:`engine_for`, and
creates its tables with :func:`ensure_schema`.

Engines. :func:`engine_for` normalises the URL (``postgresql://`` is read as
``postgresql+psycopg://``, the driver we ship) and returns **one engine per URL per process**:
the three stores opened on one database share one connection pool. The cache holds an engine
only while some store uses it (weak references), so a test's temporary database is freed with
its last store, as it was before. ``store.dispose()`` closes the pooled connections; the shared
engine stays usable (SQLAlchemy opens a new pool on demand). A forked child never reuses its
parent's engine (the cache is keyed by process id as well). ``sqlite://`` (in memory) is not
cached: each store gets its own private database, as before.

SQLite: the file is created owner-only before the first connection (``0600``, its folders
``0700``, so the ``-wal``/``-shm`` files too: :mod:`sodtrack.private`); every connection waits up
to 30 s for a competing writer instead of failing at once with "database is locked". The ledger
puts the file in WAL mode (:func:`use_wal`: readers never block the writer); a connection to a
file in WAL mode uses ``synchronous=NORMAL`` (durable against a killed process; only an OS crash
could lose the last commits, never corrupt the file).
PostgreSQL: ``pool_pre_ping`` (a connection the server closed is replaced, not handed out).
JSON columns are serialised with ``default=str`` (datetimes in run details).

Schema. :func:`ensure_schema` creates what is missing (``metadata.create_all``) safely under
races: two processes opening a fresh database together (two ``bulk-load`` runs of one file
started at the same moment) can both see no table, and the slower one's ``CREATE TABLE`` fails.
The loser does not read the error's text: it inspects the database again, and if a table that
was missing before its attempt now exists, someone else is creating the schema and it tries
again; otherwise the error is raised as it is.

Migrations. A table that gains a column after databases already exist in the field declares
the step as data, a :class:`AddColumn` in the store's ``MIGRATIONS`` tuple. :func:`ensure_schema`
applies each step whose column is missing (``ALTER TABLE … ADD COLUMN``, nullable or with a
server default, so existing rows stay valid) and records the step's ``key`` in the
``sodtrack_schema`` table. Steps are idempotent: a step another process applied meanwhile is
found by re-inspection and recorded, never applied twice.
"""

from __future__ import annotations

import json
import os
import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from sodtrack.private import private_sqlite

SQLITE_BUSY_TIMEOUT_S: Final = 30
"""How long a SQLite connection waits for a competing writer."""

schema_metadata = sa.MetaData()
schema_versions = sa.Table(
    "sodtrack_schema",
    schema_metadata,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("applied_at", sa.String(40), nullable=False),
)
"""One row per migration step applied to this database."""


def normalise_url(url: str) -> str:
    """``postgresql://`` → ``postgresql+psycopg://`` (psycopg 3 is the driver we ship)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
    if cur.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
        cur.execute("PRAGMA synchronous=NORMAL")  # durable in WAL mode (see use_wal)
    cur.close()


def use_wal(engine: Engine) -> None:
    """Put a SQLite database in WAL mode (persistent: every later connection finds it so and
    uses ``synchronous=NORMAL``); other databases are left as they are.

    The ledger asks for it (readers never block the writer; a killed process loses nothing
    it committed, only an OS crash could lose the last commits, never corrupt the file). A
    state database no ledger has opened keeps SQLite's default journal, as before: a copy of
    its one file is a complete backup."""
    if engine.dialect.name != "sqlite":
        return
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()
    finally:
        raw.close()


def make_engine(url: str) -> Engine:
    """A new engine on ``url`` with our settings (see the module docstring); most callers
    want the shared one, :func:`engine_for`."""
    url = normalise_url(url)
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"json_serializer": lambda obj: json.dumps(obj, default=str)}
    if parsed.get_backend_name() == "sqlite":
        private_sqlite(parsed.database)  # 0600 file (and so -wal/-shm), 0700 folders
        kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_S}
        engine = sa.create_engine(url, **kwargs)
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs["pool_pre_ping"] = True
    return sa.create_engine(url, **kwargs)


_engines: weakref.WeakValueDictionary[tuple[int, str], Engine] = weakref.WeakValueDictionary()
_engines_lock = threading.Lock()


def _in_memory(url: str) -> bool:
    parsed = make_url(url)
    return parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:")


def engine_for(url: str) -> Engine:
    """The process's engine on ``url`` (normalised), made on first use."""
    url = normalise_url(url)
    if _in_memory(url):
        return make_engine(url)
    key = (os.getpid(), url)
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            engine = make_engine(url)
            _engines[key] = engine
        return engine


@dataclass(frozen=True)
class AddColumn:
    """A migration step: column ``name`` of ``type`` added to ``table``, nullable, or filled
    with the SQL literal ``default`` (e.g. ``"'none'"``, ``"0"``) in existing rows."""

    table: str
    name: str
    type: sa.types.TypeEngine[Any]
    default: str | None = None

    @property
    def key(self) -> str:
        return f"{self.table}.{self.name}:add"


def _table_names(engine: Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def create_tables(metadata: sa.MetaData, engine: Engine, *, attempts: int = 5) -> None:
    """``metadata.create_all(engine)``, tolerating another process doing the same at once
    (see the module docstring: re-inspection, never the error's text)."""
    wanted = set(metadata.tables)
    for attempt in range(1, attempts + 1):
        missing_before = wanted - _table_names(engine)
        try:
            metadata.create_all(engine)
            return
        except sa.exc.DBAPIError:
            someone_else = missing_before - (wanted - _table_names(engine))
            if attempt == attempts or not someone_else:
                raise
            time.sleep(0.05 * attempt)


def _columns(engine: Engine, table: str) -> set[str]:
    return {c["name"] for c in sa.inspect(engine).get_columns(table)}


def _apply(engine: Engine, step: AddColumn) -> None:
    if step.name not in _columns(engine, step.table):
        column_type = step.type.compile(dialect=engine.dialect)
        ddl = f"ALTER TABLE {step.table} ADD COLUMN {step.name} {column_type}"
        if step.default is not None:
            ddl += f" DEFAULT {step.default}"
        try:
            with engine.begin() as conn:
                conn.execute(sa.text(ddl))
        except sa.exc.DBAPIError:
            if step.name not in _columns(engine, step.table):
                raise  # not a competitor's step: a real error
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.insert(schema_versions).values(
                    key=step.key, applied_at=datetime.now(UTC).isoformat()
                )
            )
    except sa.exc.IntegrityError:
        pass  # recorded meanwhile by another process


def ensure_schema(
    metadata: sa.MetaData, engine: Engine, migrations: Sequence[AddColumn] = ()
) -> None:
    """Create ``metadata``'s missing tables, then apply the ``migrations`` not yet applied."""
    create_tables(metadata, engine)
    if not migrations:
        return
    create_tables(schema_metadata, engine)
    with engine.connect() as conn:
        done = set(conn.execute(sa.select(schema_versions.c.key)).scalars())
    for step in migrations:
        if step.key not in done:
            _apply(engine, step)
