"""State-store URLs for the orchestration tests: SQLite always, PostgreSQL when
``SODTRACK_TEST_POSTGRES_URL`` names a server (``.ci/run`` starts one)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

PG_URL = os.environ.get("SODTRACK_TEST_POSTGRES_URL")


def fresh_postgres_database(admin_url: str) -> tuple[str, sa.Engine]:
    """A new empty database on the server of ``admin_url``: its URL, and an engine to drop it."""
    url = sa.engine.make_url(admin_url)
    name = f"sodtrack_t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    return url.set(database=name).render_as_string(hide_password=False), admin


def drop_database(admin: sa.Engine, url: str) -> None:
    name = sa.engine.make_url(url).database
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.db'}"
        return
    if not PG_URL:
        pytest.skip("PostgreSQL: set SODTRACK_TEST_POSTGRES_URL (.ci/run starts a server)")
    url, admin = fresh_postgres_database(PG_URL)
    try:
        yield url
    finally:
        drop_database(admin, url)
