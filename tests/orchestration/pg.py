"""PostgreSQL for tests: the server ``SODTRACK_TEST_POSTGRES_URL`` names (``.ci/run`` starts
one with ``scripts/postgres.sh``), and a fresh database per test on it.

:func:`require_postgres` is the one gate of every PostgreSQL variant: without a server it
*skips* the test, saying why, unless ``SODTRACK_REQUIRE_POSTGRES=1`` is set (``.ci/run`` sets
it with the server it starts), in which case the test *fails*: a CI run can never pass by
silently skipping them (as ``SODTRACK_REQUIRE_LIBREOFFICE`` does for LibreOffice).
"""

from __future__ import annotations

import os
import uuid

import pytest
import sqlalchemy as sa

REQUIRE_ENV = "SODTRACK_REQUIRE_POSTGRES"
SKIP_REASON = "PostgreSQL: set SODTRACK_TEST_POSTGRES_URL (.ci/run starts a server)"


def require_postgres() -> str:
    """The server's URL; else skip, or fail when :data:`REQUIRE_ENV` is ``1``."""
    url = os.environ.get("SODTRACK_TEST_POSTGRES_URL")
    if url:
        return url
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"SODTRACK_TEST_POSTGRES_URL is not set, and {REQUIRE_ENV}=1 requires it")
    pytest.skip(f"{SKIP_REASON} (set {REQUIRE_ENV}=1 to make this a failure)")


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
