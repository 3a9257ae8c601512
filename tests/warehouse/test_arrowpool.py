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


def test_importing_the_package_first_chooses_the_system_pool_for_the_process() -> None:
    """Set before pyarrow's first allocation, the variable gives the pool for the whole
    process (what a worker process gets: its first import is a flow module of ours)."""
    import os
    import subprocess
    import sys

    code = "import sodtrack, pyarrow as pa; print(pa.default_memory_pool().backend_name)"
    env = {k: v for k, v in os.environ.items() if k != ENV}
    chosen = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert chosen.stdout.strip() == "system"
    kept = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, ENV: "mimalloc"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert kept.stdout.strip() == "mimalloc"


def test_a_process_that_imported_pyarrow_first_is_still_switched() -> None:
    """pyarrow imported and allocating before ``sodtrack``: the variable the package sets
    comes too late for Arrow, and is not mistaken for a choice of the environment."""
    import os
    import subprocess
    import sys

    code = (
        "import pyarrow as pa; pa.array(['x']); import sodtrack; "
        "from sodtrack.arrowpool import use_run_memory_pool; "
        "print(pa.default_memory_pool().backend_name, use_run_memory_pool())"
    )
    env = {k: v for k, v in os.environ.items() if k != ENV}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["mimalloc", "system"]
