"""Every DuckDB connection of a run is bounded: the bookings merge gets
``SODTRACK_DUCKDB_MEMORY_LIMIT``, the validation's whole-dataset pass its own lower
``SODTRACK_VALIDATION_DUCKDB_MEMORY_LIMIT`` (order-free queries, insertion order dropped), both
``SODTRACK_DUCKDB_THREADS`` (DuckDB's own defaults are 80% of the RAM and every core)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from sodtrack.errors import ConfigurationError, MemoryLimitTooLow
from sodtrack.settings import Settings
from sodtrack.validation import ValidationSession
from sodtrack.validation.wholeset import WholeDataset, WholeSpec
from sodtrack.warehouse import Warehouse
from sodtrack.warehouse.bookings import BookingsRun
from sodtrack.warehouse.duck import (
    CHECKS_SETTING,
    DEFAULT_CHECKS_MEMORY_LIMIT,
    DEFAULT_MEMORY_LIMIT,
    DEFAULT_THREADS,
    MERGE_SETTING,
    DuckLimits,
    connect,
    within_limit,
)

AT = datetime(2026, 11, 28, 4, 0, tzinfo=UTC)


def _settings(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    limit: str,
    threads: str,
    checks_limit: str | None = None,
) -> Settings:
    monkeypatch.setenv("SODTRACK_DUCKDB_MEMORY_LIMIT", limit)
    monkeypatch.setenv("SODTRACK_DUCKDB_THREADS", threads)
    if checks_limit is not None:
        monkeypatch.setenv("SODTRACK_VALIDATION_DUCKDB_MEMORY_LIMIT", checks_limit)
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
    assert wh.duck_limits.checks_memory_limit == DEFAULT_CHECKS_MEMORY_LIMIT
    run = BookingsRun(wh, "cl", "run-1", extracted_at=AT)
    con = run._connect()
    try:
        assert _limits_of(con) == ("96.0 MiB", 1)
        # nothing relies on insertion order (the changes log reads the work file in order:
        # test_bookings_merge.py), so every operator may spill
        ((order,),) = con.execute("SELECT current_setting('preserve_insertion_order')").fetchall()
        assert order is False
        ((spill,),) = con.execute("SELECT current_setting('temp_directory')").fetchall()
        assert str(spill).startswith(str(tmp_path / "wh"))  # spills beside the run's work
    finally:
        con.close()
        run.abort()


def test_the_whole_dataset_pass_gets_its_own_lower_limit_without_insertion_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(tmp_path, monkeypatch, "200MiB", "1", checks_limit="40MiB")
    limits = Warehouse.from_settings(settings).duck_limits
    assert limits == DuckLimits(200 << 20, 1, checks_memory_limit=40 << 20)
    session = ValidationSession("run-1", duck_limits=limits, context=object())
    assert session.duck_limits == limits
    spec = WholeSpec("k", "expect_column_values_to_be_unique", {"column": "id"})
    with WholeDataset([spec], limits=session.duck_limits) as whole:
        assert _limits_of(whole.con) == ("40.0 MiB", 1)
        ((order, spill),) = whole.con.execute(
            "SELECT current_setting('preserve_insertion_order'), current_setting('temp_directory')"
        ).fetchall()
        assert order is False
        assert Path(spill).is_dir()
    assert not Path(spill).exists()  # the spill folder goes with the pass


def test_the_whole_dataset_pass_has_a_default_limit_of_its_own() -> None:
    limits = DuckLimits()
    assert limits.for_checks() == DuckLimits(
        DEFAULT_CHECKS_MEMORY_LIMIT, DEFAULT_THREADS, DEFAULT_CHECKS_MEMORY_LIMIT
    )
    assert DuckLimits(memory_limit=DEFAULT_MEMORY_LIMIT * 2).for_checks().memory_limit == (
        DEFAULT_CHECKS_MEMORY_LIMIT
    )
    with WholeDataset([], limits=limits) as whole:
        assert _limits_of(whole.con) == (f"{DEFAULT_CHECKS_MEMORY_LIMIT >> 20}.0 MiB", 2)


def test_the_whole_dataset_pass_spills_keys_larger_than_its_limit_and_stays_exact() -> None:
    """~45 MiB of key strings through a 32 MiB connection: the grouping spills, and a
    duplicate 900,000 rows after its first occurrence is still found. (With two threads this
    ran out of memory in about 1 run of 12; the queries now run on one.)"""
    spec = WholeSpec("k", "expect_column_values_to_be_unique", {"column": "id"})
    chunk = 100_000
    with WholeDataset([spec], limits=DuckLimits(checks_memory_limit=32 << 20)) as whole:
        for start in range(0, 10 * chunk, chunk):
            ids = [f"{i:08d}-aaaa-bbbb-cccc-{i:012d}" for i in range(start, start + chunk)]
            if start == 9 * chunk:
                ids[-1] = f"{5:08d}-aaaa-bbbb-cccc-{5:012d}"
            whole.add(pa.table({"id": ids}))
        answer = whole.evaluate({})["k"]
    assert whole.rows == 10 * chunk
    assert answer.success is False
    assert answer.result["unexpected_count"] == 2
    assert answer.result["partial_unexpected_list"] == ["00000005-aaaa-bbbb-cccc-000000000005"] * 2


def test_defaults_documented_and_bounded(tmp_path: Path) -> None:
    assert Settings.model_fields["duckdb_memory_limit"].default == DEFAULT_MEMORY_LIMIT
    assert Settings.model_fields["duckdb_threads"].default == DEFAULT_THREADS
    assert (
        Settings.model_fields["validation_duckdb_memory_limit"].default
        == DEFAULT_CHECKS_MEMORY_LIMIT
    )
    env_example = (Path(__file__).parents[2] / ".env.example").read_text(encoding="utf-8")
    assert f"\nSODTRACK_DUCKDB_MEMORY_LIMIT={DEFAULT_MEMORY_LIMIT >> 20}MiB\n" in env_example
    assert f"\nSODTRACK_DUCKDB_THREADS={DEFAULT_THREADS}\n" in env_example
    checks = f"\nSODTRACK_VALIDATION_DUCKDB_MEMORY_LIMIT={DEFAULT_CHECKS_MEMORY_LIMIT >> 20}MiB\n"
    assert checks in env_example
    con = connect(DuckLimits(), str(tmp_path))
    assert _limits_of(con) == (f"{DEFAULT_MEMORY_LIMIT >> 20}.0 MiB", DEFAULT_THREADS)
    with pytest.raises(ValueError, match="at least 32 MiB"):
        DuckLimits(memory_limit=1 << 20)
    with pytest.raises(ValueError, match="at least 32 MiB"):
        DuckLimits(checks_memory_limit=16 << 20)
    with pytest.raises(ValueError, match="one thread"):
        DuckLimits(threads=0)


def test_the_settings_refuse_a_limit_duckdb_cannot_work_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="duckdb_memory_limit"):
        _settings(tmp_path, monkeypatch, "1MiB", "2")
    with pytest.raises(ValidationError, match="validation_duckdb_memory_limit"):
        _settings(tmp_path, monkeypatch, "256MiB", "2", checks_limit="8MiB")


# ---------------------------------------------------------------- a limit set too low


def test_a_merge_query_out_of_its_limit_names_the_setting_to_raise(tmp_path: Path) -> None:
    """A query no spilling can save (one 100 MB string) under 32 MiB: a configuration error
    naming SODTRACK_DUCKDB_MEMORY_LIMIT, DuckDB's own error kept as its cause."""
    con = connect(DuckLimits(memory_limit=32 << 20, threads=1), str(tmp_path), keep_order=False)
    try:
        with (
            pytest.raises(MemoryLimitTooLow) as caught,
            within_limit("the bookings merge", 32 << 20, MERGE_SETTING),
        ):
            con.execute("SELECT length(string_agg(repeat('x', 100), '')) FROM range(1000000)")
    finally:
        con.close()
    assert isinstance(caught.value, ConfigurationError)
    assert caught.value.setting == MERGE_SETTING
    assert "32 MiB" in str(caught.value)
    assert type(caught.value.__cause__).__name__ == "OutOfMemoryException"


@pytest.mark.parametrize("seed", [1, 2])
def test_checks_out_of_their_limit_name_the_setting_to_raise(seed: int) -> None:
    """1M compound keys of three ~47-character strings through the checks at 32 MiB (the
    lowest limit a setting may give): their grouping cannot fit, and the answer is a
    configuration error naming SODTRACK_VALIDATION_DUCKDB_MEMORY_LIMIT, not DuckDB's."""
    rows = 1_000_000
    numbers = pc.cast(pa.array(np.random.default_rng(seed).permutation(rows)), pa.string())
    keys = pa.table({c: pc.binary_join_element_wise(c * 45 + "-", numbers, "") for c in "abc"})
    spec = WholeSpec("k", "expect_compound_columns_to_be_unique", {"column_list": ["a", "b", "c"]})
    with WholeDataset([spec], limits=DuckLimits(checks_memory_limit=32 << 20)) as whole:
        for start in range(0, rows, 65_536):
            whole.add(keys.slice(start, 65_536))
        with pytest.raises(MemoryLimitTooLow) as caught:
            whole.evaluate({})
    assert caught.value.setting == CHECKS_SETTING
    assert str(caught.value).startswith("the whole-dataset checks ran out of DuckDB memory")
