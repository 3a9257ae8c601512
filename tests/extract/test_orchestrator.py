"""The one orchestrator of a country (``extract_country``): its lock, the cleanup of dead
runs, the families in order, and what one family step gives the next: a value, so steps
could run in separate processes (each step here gets a pickled copy of its arguments and
returns a pickled result, as a process boundary would)."""

from __future__ import annotations

import asyncio
import pickle
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sodtrack.errors import LockTimeout
from sodtrack.extract.families import Family
from sodtrack.extract.report import FamilyRun
from sodtrack.extract.runner import (
    CountryExtraction,
    FamilyExtraction,
    References,
    extract_country,
    without_references,
)
from sodtrack.state import StateStore
from sodtrack.validation.suites import P_CATEGORY_IDS, P_SERVICE_IDS, P_VARIANT_IDS, P_ZONE_IDS
from sodtrack.warehouse import Warehouse, layout

FAMILIES = [Family.CATALOG, Family.COVERAGE, Family.BOOKINGS]
PARAMETERS = (P_CATEGORY_IDS, P_SERVICE_IDS, P_VARIANT_IDS, P_ZONE_IDS)


def _across_a_process(value: object) -> object:
    return pickle.loads(pickle.dumps(value))  # noqa: S301 (bytes this test just made)


@pytest.mark.parametrize("seed", range(8))
def test_each_family_gets_what_the_previous_one_returned(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    warehouse = Warehouse(str(tmp_path / "warehouse"))
    cx = CountryExtraction("cl", f"run{seed}-cl", datetime(2026, 6, 1, tzinfo=UTC))
    dead = warehouse.fs.join(warehouse.dataset_path("services"), layout.STAGING, "dead-cl")
    warehouse.fs.make_dirs(dead)
    seen: list[tuple[Family, References]] = []
    returned: list[References] = []

    async def step(family: Family, got: CountryExtraction, refs: References) -> FamilyExtraction:
        got, refs = _across_a_process((got, refs))  # type: ignore[misc]
        assert got == cx
        assert not warehouse.fs.exists(dead), "dead runs are cleared before the first family"
        other = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
        try:  # the country's lock is held while a family runs
            with pytest.raises(LockTimeout), other.lock("nightly:cl", timeout_s=0.2):
                pass
        finally:
            other.dispose()
        seen.append((family, refs))
        out = dict(refs)
        for name in rng.sample(PARAMETERS, rng.randint(0, len(PARAMETERS))):
            out[name] = [f"{name}-{rng.randrange(1000)}"]
        if rng.random() < 0.3:
            out = without_references(out, family)
        returned.append(out)
        status = rng.choice(["published", "quarantined", "failed"])
        done = FamilyExtraction(FamilyRun(family.value, got.country, status=status), out)
        return _across_a_process(done)  # type: ignore[return-value]

    try:
        runs = asyncio.run(extract_country(cx, FAMILIES, step, warehouse=warehouse, store=store))
        with store.lock("nightly:cl", timeout_s=0.2):  # released at the end
            pass
    finally:
        store.dispose()
    assert [f for f, _ in seen] == FAMILIES
    assert [r for _, r in seen] == [{}, *returned[:-1]]
    assert [r.family for r in runs] == [f.value for f in FAMILIES]


def test_without_references_drops_only_the_familys_own() -> None:
    refs = {P_CATEGORY_IDS: ["c"], P_SERVICE_IDS: ["s"], P_VARIANT_IDS: ["v"], P_ZONE_IDS: ["z"]}
    assert without_references(refs, Family.CATALOG) == {P_ZONE_IDS: ["z"]}
    assert without_references(refs, Family.COVERAGE) == {
        P_CATEGORY_IDS: ["c"],
        P_SERVICE_IDS: ["s"],
        P_VARIANT_IDS: ["v"],
    }
    assert without_references(refs, Family.BOOKINGS) == refs
