"""``sodtrack-etl load`` when the ledger refuses a re-run of an upload: the upload id names
another file, or the file now reads as another number of rows. The ledger raises the typed
:class:`~sodtrack.errors.UploadMismatch` and the command exits 2 with its one line (the
command used to recognise the refusal by the text of a ``ValueError``)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from sodtrack.bulkload.engine.ledger import uploads_table
from sodtrack.cli import app

from .conftest import Sim, clean_file

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("column", "value", "said"),
    [
        ("file_sha256", "ab" * 32, "belongs to another file"),
        ("row_count", 99, "start a new upload instead"),
    ],
)
def test_a_refused_rerun_exits_2_and_loads_nothing(
    sim: Sim, column: str, value: object, said: str
) -> None:
    path = clean_file(sim.root / "inbox" / "bookings.xlsx", rows=4, projects=1)
    first = CliRunner().invoke(app, ["load", str(path), "--country", "cl"])
    assert first.exit_code == 0, first.output
    writes = sim.writes()
    engine = sa.create_engine(f"sqlite:///{sim.root / 'state' / 'state.db'}")
    with engine.begin() as conn:  # the ledger now remembers the upload differently
        conn.execute(sa.update(uploads_table).values({column: value}))
    engine.dispose()
    again = CliRunner().invoke(app, ["load", str(path), "--country", "cl"])
    assert again.exit_code == 2, again.output
    assert "nothing loaded" in again.output
    assert said in " ".join(again.output.split())  # rich wraps long lines
    assert sim.writes() == writes
