"""A fresh PostgreSQL database per test, on the server ``SODTRACK_TEST_POSTGRES_URL`` names
(``.ci/run`` starts one with ``scripts/postgres.sh``)."""

from __future__ import annotations

import os
import uuid

import sqlalchemy as sa

PG_URL = os.environ.get("SODTRACK_TEST_POSTGRES_URL")
SKIP_REASON = "PostgreSQL: set SODTRACK_TEST_POSTGRES_URL (.ci/run starts a server)"


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
