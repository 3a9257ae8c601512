"""The one database module: one engine per URL per process, migrations declared as data.

A generated corpus (seeded) of migration steps checks that an old database gains every
declared column, that existing rows keep their values (nullable or filled with the default),
that running the steps again changes nothing, and that a step a competitor applied meanwhile
is recorded, not applied twice. PostgreSQL variants run with ``SODTRACK_TEST_POSTGRES_URL``.
"""

from __future__ import annotations

import gc
import random
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from orchestration.conftest import state_url  # noqa: F401  (SQLite, and PostgreSQL if set)

from sodtrack import db
from sodtrack.bulkload.engine.ledger import Ledger
from sodtrack.bulkload.inbox import Registry
from sodtrack.state import StateStore


def test_the_three_stores_share_one_engine_per_url(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/state.db"
    store = StateStore(url)
    with store.engine.connect() as conn:  # the state store alone keeps SQLite's journal
        assert conn.execute(sa.text("PRAGMA journal_mode")).scalar() == "delete"
    ledger, registry = Ledger(url), Registry(url)
    assert store.engine is ledger.engine is registry.engine
    other = StateStore(f"sqlite:///{tmp_path}/other.db")
    assert other.engine is not store.engine
    names = set(sa.inspect(store.engine).get_table_names())
    assert {"sodtrack_runs", "sodtrack_locks", "load_uploads", "sodtrack_inbox"} <= names
    store.dispose()  # the shared engine stays usable after one store closes
    assert ledger.get_upload("nope") is None
    with registry.engine.connect() as conn:  # the ledger's WAL mode, for every connection
        assert conn.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(sa.text("PRAGMA synchronous")).scalar() == 1  # NORMAL
    ledger.close()
    other.dispose()


def test_postgresql_urls_are_normalised_before_caching() -> None:
    assert db.normalise_url("postgresql://u:p@h/db") == "postgresql+psycopg://u:p@h/db"
    assert db.normalise_url("postgres://u:p@h/db") == "postgresql+psycopg://u:p@h/db"
    first = db.engine_for("postgresql://u:p@127.0.0.1:1/db")
    assert first is db.engine_for("postgresql+psycopg://u:p@127.0.0.1:1/db")
    assert first.dialect.driver == "psycopg"


def test_an_unused_engine_is_released_and_memory_databases_are_private(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/gone.db"
    store = StateStore(url)
    store.dispose()
    del store
    gc.collect()  # an engine holds reference cycles: freed by the collector, as before
    assert not any(key[1] == url for key in list(db._engines.keys()))
    assert db.engine_for("sqlite://") is not db.engine_for("sqlite://")


def _url(tmp_path: Path, name: str) -> str:
    return f"sqlite:///{tmp_path}/{name}.db"


TYPES: list[tuple[sa.types.TypeEngine[Any], list[tuple[str | None, str | None]]]] = [
    (sa.String(40), [(None, None), ("'none'", "none"), ("''", "")]),
    (sa.Integer(), [(None, None), ("0", "0"), ("7", "7")]),
    (sa.Text(), [(None, None), ("'x'", "x")]),
]
"""A column type, and its defaults: (SQL literal, the value existing rows then read)."""


def _corpus(seed: int) -> tuple[list[db.AddColumn], dict[str, str | None]]:
    rng = random.Random(seed)
    steps: list[db.AddColumn] = []
    defaults: dict[str, str | None] = {}
    for i in range(rng.randint(1, 4)):
        type_, choices = rng.choice(TYPES)
        default, read_back = rng.choice(choices)
        name = f"c{seed}_{i}"
        steps.append(db.AddColumn("things", name, type_, default))
        defaults[name] = read_back
    return steps, defaults


@pytest.mark.parametrize("seed", range(12))
def test_migrations_add_the_declared_columns_once(state_url: str, seed: int) -> None:  # noqa: F811
    steps, defaults = _corpus(seed)
    old = sa.MetaData()
    sa.Table("things", old, sa.Column("id", sa.Integer, primary_key=True))
    engine = db.make_engine(state_url)
    try:
        db.ensure_schema(old, engine)
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO things (id) VALUES (1), (2)"))
        # a competitor applied the first step already, without recording it
        competitor = steps[0]
        db.create_tables(db.schema_metadata, engine)
        db._apply(engine, competitor)
        with engine.begin() as conn:
            conn.execute(sa.delete(db.schema_versions))
        new = sa.MetaData()
        sa.Table(
            "things",
            new,
            sa.Column("id", sa.Integer, primary_key=True),
            *(sa.Column(s.name, s.type) for s in steps),
        )
        db.ensure_schema(new, engine, steps)
        db.ensure_schema(new, engine, steps)  # idempotent
        columns = {c["name"] for c in sa.inspect(engine).get_columns("things")}
        assert columns == {"id", *defaults}
        with engine.connect() as conn:
            keys = set(conn.execute(sa.select(db.schema_versions.c.key)).scalars())
            rows = conn.execute(sa.text("SELECT * FROM things ORDER BY id")).mappings().all()
        assert keys == {s.key for s in steps}
        assert [r["id"] for r in rows] == [1, 2]
        for name, expected in defaults.items():
            assert all((None if r[name] is None else str(r[name])) == expected for r in rows)
    finally:
        engine.dispose()


def test_a_real_error_in_a_migration_is_raised(tmp_path: Path) -> None:
    engine = db.make_engine(_url(tmp_path, "bad"))
    meta = sa.MetaData()
    sa.Table("things", meta, sa.Column("id", sa.Integer, primary_key=True))
    db.ensure_schema(meta, engine)
    with pytest.raises(sa.exc.OperationalError):
        db.ensure_schema(meta, engine, [db.AddColumn("things", "x", sa.Integer(), "nonsense(")])
    with pytest.raises(sa.exc.NoSuchTableError):  # a step on a table that is not there
        db.ensure_schema(meta, engine, [db.AddColumn("missing", "x", sa.Integer())])
    engine.dispose()
