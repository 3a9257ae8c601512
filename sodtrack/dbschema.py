"""Creating our small SQL schemas (state store, ledger, inbox registry) safely under races."""

from __future__ import annotations

import time

import sqlalchemy as sa
from sqlalchemy.engine import Engine

_RACE_MARKERS = ("already exists", "duplicate key")


def create_tables(metadata: sa.MetaData, engine: Engine, *, attempts: int = 5) -> None:
    """``metadata.create_all(engine)``, tolerating another process doing the same at once.

    ``create_all`` checks for each table, then creates it: two processes opening a fresh
    database together (two ``bulk-load`` runs of one file started at the same moment by
    Prefect) can both see no table, and the slower one fails with "table ... already exists"
    (SQLite, PostgreSQL) or a duplicate key in PostgreSQL's catalog. The loser checks again:
    by then the tables exist. Any other error is raised as it is.
    """
    for attempt in range(1, attempts + 1):
        try:
            metadata.create_all(engine)
            return
        except sa.exc.DBAPIError as exc:
            if attempt == attempts or not any(m in str(exc).lower() for m in _RACE_MARKERS):
                raise
            time.sleep(0.05 * attempt)
