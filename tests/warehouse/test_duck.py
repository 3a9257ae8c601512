"""Every DuckDB connection of a run is bounded: the bookings merge and the validation's
whole-dataset pass get ``SODTRACK_DUCKDB_MEMORY_LIMIT`` / ``SODTRACK_DUCKDB_THREADS`` (DuckDB's
own defaults are 80% of the RAM and every core)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from sodtrack.settings import Settings
from sodtrack.validation import ValidationSession
from sodtrack.validation.wholeset import WholeDataset, WholeSpec
from sodtrack.warehouse import Warehouse
from sodtrack.warehouse.bookings import BookingsRun
from sodtrack.warehouse.duck import DEFAULT_MEMORY_LIMIT, DEFAULT_THREADS, DuckLimits, connect

AT = datetime(2026, 11, 28, 4, 0, tzinfo=UTC)


def _settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: str, threads: str
) -> Settings:
    monkeypatch.setenv("SODTRACK_DUCKDB_MEMORY_LIMIT", limit)
    monkeypatch.setenv("SODTRACK_DUCKDB_THREADS", threads)
    return Settings(warehouse=str(tmp_path / "wh"))


def _limits_of(con: object) -> tuple[str, int]:
    (row,) = con.execute(  # type: ignore[attr-defined]
        "SELECT current_setting('memory_limit'), current_setting('threads')"
    ).fetchall()
    return str(row[0]), int(row[1])


def test_the_bookings_merge_connection_gets_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(tmp_path, monkeypatch, "96MiB", "1")
    wh = Warehouse.from_settings(settings)
    assert wh.duck_limits == DuckLimits(96 << 20, 1)
    run = BookingsRun(wh, "cl", "run-1", extracted_at=AT)
    con = run._connect()
    try:
        assert _limits_of(con) == ("96.0 MiB", 1)
        ((spill,),) = con.execute("SELECT current_setting('temp_directory')").fetchall()
        assert str(spill).startswith(str(tmp_path / "wh"))  # spills beside the run's work
    finally:
        con.close()
        run.abort()


def test_the_whole_dataset_pass_gets_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(tmp_path, monkeypatch, "80MiB", "1")
    limits = Warehouse.from_settings(settings).duck_limits
    session = ValidationSession("run-1", duck_limits=limits, context=object())
    assert session.duck_limits == limits
    spec = WholeSpec("k", "expect_column_values_to_be_unique", {"column": "id"})
    with WholeDataset([spec], limits=session.duck_limits) as whole:
        assert _limits_of(whole.con) == ("80.0 MiB", 1)


def test_defaults_documented_and_bounded(tmp_path: Path) -> None:
    assert Settings.model_fields["duckdb_memory_limit"].default == DEFAULT_MEMORY_LIMIT
    assert Settings.model_fields["duckdb_threads"].default == DEFAULT_THREADS
    env_example = (Path(__file__).parents[2] / ".env.example").read_text(encoding="utf-8")
    assert f"\nSODTRACK_DUCKDB_MEMORY_LIMIT={DEFAULT_MEMORY_LIMIT >> 20}MiB\n" in env_example
    assert f"\nSODTRACK_DUCKDB_THREADS={DEFAULT_THREADS}\n" in env_example
    con = connect(DuckLimits(), str(tmp_path))
    assert _limits_of(con) == (f"{DEFAULT_MEMORY_LIMIT >> 20}.0 MiB", DEFAULT_THREADS)
    with pytest.raises(ValueError, match="at least 32 MiB"):
        DuckLimits(memory_limit=1 << 20)
    with pytest.raises(ValueError, match="one thread"):
        DuckLimits(threads=0)


def test_the_settings_refuse_a_limit_duckdb_cannot_work_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="duckdb_memory_limit"):
        _settings(tmp_path, monkeypatch, "1MiB", "2")
