"""State-store URLs for the orchestration tests: SQLite always, PostgreSQL when
``SODTRACK_TEST_POSTGRES_URL`` names a server (``.ci/run`` starts one)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .pg import drop_database, fresh_postgres_database, require_postgres


@pytest.fixture(params=["sqlite", "postgres"])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.db'}"
        return
    url, admin = fresh_postgres_database(require_postgres())
    try:
        yield url
    finally:
        drop_database(admin, url)
