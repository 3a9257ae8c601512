"""Small pieces of the extraction, without a simulator."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from sodtrack.extract import families_for
from sodtrack.extract.families import Family
from sodtrack.extract.runner import clear_dead_runs
from sodtrack.warehouse import Warehouse


def test_clear_dead_runs_removes_only_this_countrys_other_runs(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "wh", durable=False)
    root = Path(wh.root)
    stagings = {
        "bookings": ["dead-cl", "live-cl", "other-pe"],
        "services": ["dead-cl", "older-cl"],
    }
    for dataset, runs in stagings.items():
        for run in runs:
            (root / dataset / "_staging" / run).mkdir(parents=True)
            (root / dataset / "_staging" / run / "part-0.parquet").write_bytes(b"x")
    for work in ("dead-cl-bookings-cl", "live-cl-bookings-cl", "other-pe-bookings-pe"):
        (root / "_work" / work / "spill").mkdir(parents=True)
    (root / "_quarantine" / "bookings" / "dead-cl").mkdir(parents=True)

    removed = clear_dead_runs(wh, "cl", "live-cl")

    assert sorted(removed) == [
        "_work/dead-cl-bookings-cl",
        "bookings/_staging/dead-cl",
        "services/_staging/dead-cl",
        "services/_staging/older-cl",
    ]
    assert sorted(p.name for p in (root / "bookings" / "_staging").iterdir()) == [
        "live-cl",
        "other-pe",
    ]
    assert sorted(p.name for p in (root / "_work").iterdir()) == [
        "live-cl-bookings-cl",
        "other-pe-bookings-pe",
    ]
    assert (root / "_quarantine" / "bookings" / "dead-cl").is_dir()  # kept for people
    assert clear_dead_runs(wh, "cl", "live-cl") == []


def test_families_for_datasets() -> None:
    assert families_for(None) == [Family.CATALOG, Family.COVERAGE, Family.BOOKINGS]
    assert families_for(["variants"]) == [Family.CATALOG]
    assert families_for(["booking_changes", "coverage"]) == [Family.COVERAGE, Family.BOOKINGS]
    with pytest.raises(ValueError, match="unknown dataset"):
        families_for(["payments"])


def test_great_expectations_contexts_follow_the_applications_logging() -> None:
    """GX pins one of its loggers at INFO on import; a CLI configured for warnings printed
    "Created temporary directory ... for ephemeral docs site" on every validation."""
    from sodtrack.validation.runner import new_context

    parent = logging.getLogger("great_expectations")
    saved = parent.level
    parent.setLevel(logging.WARNING)
    try:
        new_context()
        loud = logging.getLogger("great_expectations.data_context.types.base")
        assert not loud.isEnabledFor(logging.INFO)
    finally:
        parent.setLevel(saved)
