"""Two processes opening a fresh state database at once (two bulk-load runs of one file,
started together): the one that loses the create-table race must carry on, not fail.

The race is made deterministic with a real second connection: just before our
``CREATE TABLE``, another engine creates the same table (as the competing process would).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from sodtrack.bulkload.engine.ledger import Ledger
from sodtrack.bulkload.engine.ledger import metadata as ledger_metadata
from sodtrack.db import create_tables
from sodtrack.state import StateStore
from sodtrack.state import metadata as state_metadata


def _competitor(url: str) -> Callable[..., None]:
    def create_first(target: sa.Table, connection: Any, **kw: Any) -> None:
        other = sa.create_engine(url)
        try:
            with other.begin() as conn:
                target.create(conn)
        finally:
            other.dispose()

    return create_first


@pytest.mark.parametrize(
    ("metadata", "opener"),
    [(state_metadata, StateStore), (ledger_metadata, Ledger)],
    ids=["state-store", "ledger"],
)
def test_losing_the_create_table_race_is_not_an_error(
    tmp_path: Path, metadata: sa.MetaData, opener: Callable[[str], Any]
) -> None:
    url = f"sqlite:///{tmp_path}/shared.db"
    table = sorted(metadata.tables.values(), key=lambda t: t.name)[0]
    listener = _competitor(url)
    sa.event.listen(table, "before_create", listener, once=True)
    try:
        store = opener(url)
    finally:
        if sa.event.contains(table, "before_create", listener):
            sa.event.remove(table, "before_create", listener)
    names = set(sa.inspect(store.engine).get_table_names())
    assert set(metadata.tables) <= names
    store.engine.dispose()


def test_other_database_errors_are_raised(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path}/x.db")
    broken = sa.MetaData()
    sa.Table("t", broken, sa.Column("a", sa.Integer), sa.CheckConstraint("nonsense(a)"))
    with pytest.raises(sa.exc.OperationalError):
        create_tables(broken, engine)
    engine.dispose()
