"""Re-cutting chunks into GX batches (pure Arrow, no GX)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from sodtrack.settings import Settings
from sodtrack.validation.batching import (
    DEFAULT_BATCH_MEMORY,
    MIN_BATCH_ROWS,
    PANDAS_EXPANSION,
    budget_rows,
)
from sodtrack.validation.batching import Counted as _Counted
from sodtrack.validation.batching import gx_batches as _batches


def _t(start: int, n: int) -> pa.Table:
    return pa.table({"id": [f"x{i}" for i in range(start, start + n)]})


def _ids(batches: list[pa.Table]) -> list[list[str]]:
    return [b.column("id").to_pylist() for b in batches]


def test_small_chunks_are_concatenated_and_big_ones_sliced() -> None:
    chunks = [_t(0, 2), _t(2, 2), _t(4, 7), _t(11, 1)]
    batches = list(_batches(chunks, 4))
    assert [b.num_rows for b in batches] == [4, 4, 4]
    assert [i for ids in _ids(batches) for i in ids] == [f"x{i}" for i in range(12)]


def test_none_keeps_chunks_as_received() -> None:
    assert [b.num_rows for b in _batches([_t(0, 2), _t(2, 9)], None)] == [2, 9]


def test_schemas_are_never_merged() -> None:
    other = pa.table({"id": ["y"], "extra": [1]})
    batches = list(_batches([_t(0, 1), other, _t(1, 1)], 100))
    assert [b.column_names for b in batches] == [["id"], ["id", "extra"], ["id"]]


def test_empty_chunks_are_skipped_unless_alone() -> None:
    assert [b.num_rows for b in _batches([_t(0, 0), _t(0, 3), _t(0, 0)], 10)] == [3]
    assert [b.num_rows for b in _batches([_t(0, 0)], 10)] == [0]
    assert list(_batches([], 10)) == []


def test_record_batches_and_counting() -> None:
    counted = _Counted(iter([_t(0, 2).to_batches()[0], _t(2, 1)]))
    assert [b.num_rows for b in _batches(counted, 10)] == [3]
    assert counted.count == 2
    with pytest.raises(ValueError, match="batch_rows"):
        list(_batches([_t(0, 1)], 0))


def test_batches_are_sized_by_the_memory_budget() -> None:
    """Rows per batch = budget / (Arrow bytes per row x PANDAS_EXPANSION), from the first
    chunk; never below MIN_BATCH_ROWS."""
    wide = pa.table({"id": [f"{i:0100d}" for i in range(5_000)]})  # ~104 bytes a row
    per_row = wide.nbytes / wide.num_rows * PANDAS_EXPANSION
    budget = int(per_row * 2_500)
    assert budget_rows(wide, budget) == 2_500
    sizes = [b.num_rows for b in _batches([wide.slice(0, 3_000), wide.slice(3_000)], None,
                                          memory_budget=budget)]  # fmt: skip
    assert sizes == [2_500, 2_500]
    assert budget_rows(wide, 1) == MIN_BATCH_ROWS
    with pytest.raises(ValueError, match="budget"):
        budget_rows(wide, 0)


def test_the_budget_setting_defaults_to_the_library_default() -> None:
    assert Settings.model_fields["validation_batch_memory"].default == DEFAULT_BATCH_MEMORY
    env_example = (Path(__file__).parents[2] / ".env.example").read_text(encoding="utf-8")
    assert "\nSODTRACK_VALIDATION_BATCH_MEMORY=96MiB\n" in env_example
    assert DEFAULT_BATCH_MEMORY == 96 << 20
