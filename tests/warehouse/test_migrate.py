"""``sodtrack-etl warehouse migrate``: a warehouse written by the pre-Delta code (the fixture
``fixtures/legacy_warehouse``, see its README) becomes Delta tables with the same rows."""

from __future__ import annotations

import os
import shutil
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow.dataset as ds
import pytest
from typer.testing import CliRunner

from sodtrack.cli import app
from sodtrack.warehouse import Warehouse
from sodtrack.warehouse.migrate import migrate
from sodtrack.warehouse.publish import table_schema
from sodtrack.warehouse.schemas import get_spec

LEGACY = Path(__file__).parent / "fixtures" / "legacy_warehouse"


def _old_rows(root: Path, dataset: str) -> list[tuple[object, ...]]:
    spec = get_spec(dataset)
    data = ds.dataset(  # noqa: F841 - DuckDB reads the local name
        os.path.realpath(root / dataset / "current"),
        schema=table_schema(spec),
        partitioning=ds.partitioning(spec.partition_schema, flavor="hive"),
    ).to_table()
    return duckdb.connect().execute("SELECT * FROM data ORDER BY ALL").fetchall()


@pytest.fixture
def legacy(tmp_path: Path) -> Path:
    root = tmp_path / "wh"
    shutil.copytree(LEGACY, root, symlinks=True)
    return root


def test_migrate_turns_the_old_layout_into_delta_tables(legacy: Path) -> None:
    before = {d: _old_rows(legacy, d) for d in ("services", "bookings", "booking_changes")}
    # DuckDB's glob over the old folder double-counts: the reason for the move (issue #13)
    glob = f"{legacy}/bookings/**/*.parquet"
    assert duckdb.connect().execute(f"SELECT count(*) FROM '{glob}'").fetchall()[0][0] > len(  # noqa: S608
        before["bookings"]
    )
    done = migrate(str(legacy))
    assert {m.dataset for m in done} == set(before)
    wh = Warehouse(legacy)
    for dataset, rows in before.items():
        data = wh.read_current(dataset).to_table()  # noqa: F841
        after = duckdb.connect().execute("SELECT * FROM data ORDER BY ALL").fetchall()
        assert after == rows, dataset
        assert not (legacy / dataset / "current").exists()
        assert not (legacy / dataset / "_versions").exists()
        commit = wh.history(dataset)[0]
        assert commit["migrated_from"] == "v000002-r2-cl"
    # the watermark of the last old run travels with the data
    wm = wh.watermark("bookings", "cl")
    assert isinstance(wm, datetime)
    assert migrate(str(legacy)) == []  # nothing left to migrate: a re-run is harmless


def test_cli_migrates_to_another_root(legacy: Path, tmp_path: Path) -> None:
    target = tmp_path / "delta"
    result = CliRunner().invoke(
        app, ["warehouse", "migrate", "--warehouse", str(legacy), "--to", str(target)]
    )
    assert result.exit_code == 0, result.output
    assert "bookings: v000002-r2-cl" in result.output
    wh = Warehouse(target)
    described = wh.describe("services")
    assert described is not None
    assert described.rows_per_partition == {
        "country=cl/snapshot_date=2026-11-27": 3,
        "country=cl/snapshot_date=2026-11-28": 4,
    }
