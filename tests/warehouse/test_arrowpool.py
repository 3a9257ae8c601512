"""A run's Arrow buffers come from the system allocator (mimalloc, pyarrow's default on Linux,
keeps what the merge and the validation free: ``bench/bench_extract.py`` measures it), unless
``ARROW_DEFAULT_MEMORY_POOL`` chose a pool."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from sodtrack.arrowpool import ENV, use_run_memory_pool
from sodtrack.settings import Settings
from sodtrack.warehouse import Warehouse


@pytest.fixture
def pool() -> Iterator[None]:
    """Start from mimalloc (pyarrow's Linux default) and put back the pool found."""
    before = pa.default_memory_pool()
    pa.set_memory_pool(pa.mimalloc_memory_pool())
    yield
    pa.set_memory_pool(before)


@pytest.mark.usefixtures("pool")
def test_opening_the_warehouse_switches_arrow_to_the_system_pool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV, raising=False)
    assert pa.default_memory_pool().backend_name == "mimalloc"
    Warehouse.from_settings(Settings(warehouse=str(tmp_path / "wh")))
    assert pa.default_memory_pool().backend_name == "system"
    pa.set_memory_pool(pa.mimalloc_memory_pool())
    Warehouse(tmp_path / "wh2")  # built directly (tests, benchmarks) too
    assert pa.default_memory_pool().backend_name == "system"
    assert use_run_memory_pool() == "system"  # idempotent


@pytest.mark.usefixtures("pool")
def test_a_pool_chosen_in_the_environment_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "mimalloc")
    assert use_run_memory_pool() == "mimalloc"
    assert pa.default_memory_pool().backend_name == "mimalloc"


@pytest.mark.usefixtures("pool")
def test_buffers_made_before_the_switch_stay_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    before = pa.array([f"id-{i}" for i in range(1000)])
    use_run_memory_pool()
    after = pa.array([f"id-{i}" for i in range(1000)])
    assert before.equals(after)
    del before
    assert after[999].as_py() == "id-999"
