"""The one orchestrator of a country (``extract_country``): its lock, the cleanup of dead
runs, the families in order, and what one family step gives the next: a value, so steps
could run in separate processes (each step here gets a pickled copy of its arguments and
returns a pickled result, as a process boundary would)."""

from __future__ import annotations

import asyncio
import itertools
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
    StagedFamily,
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

    def lock_is_held() -> None:
        other = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
        try:  # the country's lock is held while a family runs
            with pytest.raises(LockTimeout), other.lock("nightly:cl", timeout_s=0.2):
                pass
        finally:
            other.dispose()

    class Steps:
        async def warm_up(self) -> None:
            pass

        async def stage(self, family: Family, got: CountryExtraction) -> StagedFamily:
            got = _across_a_process(got)  # type: ignore[assignment]
            assert got == cx
            assert not warehouse.fs.exists(dead), "dead runs are cleared before the first family"
            lock_is_held()
            own = {f"{family.value}-own": [str(rng.randrange(1000))]}
            staged = StagedFamily(family, FamilyRun(family.value, got.country), own, {})
            return _across_a_process(staged)  # type: ignore[return-value]

        async def check(
            self, staged: StagedFamily, got: CountryExtraction, refs: References
        ) -> FamilyExtraction:
            staged, got, refs = _across_a_process((staged, got, refs))  # type: ignore[misc]
            lock_is_held()
            family = staged.family
            seen.append((family, refs))
            out = {**refs, **staged.references}
            for name in rng.sample(PARAMETERS, rng.randint(0, len(PARAMETERS))):
                out[name] = [f"{name}-{rng.randrange(1000)}"]
            if rng.random() < 0.3:
                out = without_references(out, family)
            returned.append(out)
            status = rng.choice(["published", "quarantined", "failed"])
            done = FamilyExtraction(FamilyRun(family.value, got.country, status=status), out)
            return _across_a_process(done)  # type: ignore[return-value]

    try:
        runs = asyncio.run(extract_country(cx, FAMILIES, Steps(), warehouse=warehouse, store=store))
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


class Recorder:
    """Steps that record when each phase starts and ends. A check of family N waits (with a
    guard, not a timing) until family N+1's staging has started: a sequential orchestrator
    never starts it, so the guard fails the run; a pipelined one does."""

    def __init__(self, families: list[Family], fail: dict[tuple[str, Family], str]) -> None:
        self.events: list[str] = []
        self.families = families
        self.fail = fail
        self.stage_started = {f: asyncio.Event() for f in families}
        self.got: dict[Family, References] = {}

    async def warm_up(self) -> None:
        self.events.append("warm up")
        await asyncio.sleep(0)
        self.events.append("warmed up")

    async def stage(self, family: Family, cx: CountryExtraction) -> StagedFamily:
        self.events.append(f"stage {family.value}")
        self.stage_started[family].set()
        await asyncio.sleep(0)  # let a check in flight run
        if ("stage", family) in self.fail:
            run = FamilyRun(family.value, cx.country, status="failed")
            self.events.append(f"staged {family.value} failed")
            return StagedFamily(family, run, {}, {})
        self.events.append(f"staged {family.value}")
        return StagedFamily(
            family, FamilyRun(family.value, cx.country), {f"{family.value}_ids": ["x"]}, {}
        )

    async def check(
        self, staged: StagedFamily, cx: CountryExtraction, references: References
    ) -> FamilyExtraction:
        family = staged.family
        self.events.append(f"check {family.value}")
        self.got[family] = references
        i = self.families.index(family)
        if i + 1 < len(self.families):
            # the guard: 30 s of nothing would mean the next family is not being walked
            await asyncio.wait_for(self.stage_started[self.families[i + 1]].wait(), 30)
        status = "failed" if staged.failed else self.fail.get(("check", family), "published")
        out = {**references, **staged.references}
        if status != "published":
            out = {k: v for k, v in out.items() if not k.startswith(family.value)}
        self.events.append(f"checked {family.value} {status}")
        return FamilyExtraction(FamilyRun(family.value, cx.country, status=status), out)


def _run(tmp_path: Path, steps: Recorder) -> list[FamilyRun]:
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    warehouse = Warehouse(str(tmp_path / "warehouse"))
    cx = CountryExtraction("cl", "pipe-cl", datetime(2026, 6, 1, tzinfo=UTC))
    try:
        return asyncio.run(
            extract_country(cx, steps.families, steps, warehouse=warehouse, store=store)
        )
    finally:
        store.dispose()


def test_the_next_family_is_walked_while_the_previous_one_is_checked(tmp_path: Path) -> None:
    steps = Recorder(FAMILIES, {})
    runs = _run(tmp_path, steps)
    assert [r.status for r in runs] == ["published"] * 3
    e = steps.events
    # the validation warms up while the first family is walked, before the first check
    assert e.index("warm up") < e.index("staged catalog")
    assert e.index("warmed up") < e.index("check catalog")
    # each family's check overlaps the next family's staging ...
    for family, after in itertools.pairwise(FAMILIES):
        f, n = family.value, after.value
        assert e.index(f"staged {f}") < e.index(f"check {f}") < e.index(f"staged {n}")
        assert e.index(f"stage {n}") < e.index(f"checked {f} published")
    # ... and checks run one at a time, in order, each after the previous verdict
    checks = [x for x in e if x.startswith("check")]
    assert checks == [
        "check catalog",
        "checked catalog published",
        "check coverage",
        "checked coverage published",
        "check bookings",
        "checked bookings published",
    ]
    assert steps.got[Family.CATALOG] == {}
    assert steps.got[Family.COVERAGE] == {"catalog_ids": ["x"]}
    assert steps.got[Family.BOOKINGS] == {"catalog_ids": ["x"], "coverage_ids": ["x"]}


@pytest.mark.parametrize(
    ("phase", "family", "verdict"),
    [("stage", f, "failed") for f in FAMILIES]
    + [("check", f, v) for f in FAMILIES for v in ("quarantined", "failed")],
)
def test_a_family_not_published_gives_the_next_check_no_staged_references(
    tmp_path: Path, phase: str, family: Family, verdict: str
) -> None:
    """Whichever phase of whichever family goes wrong, the next check gets the references
    of the families published before it, never the rejected staging's, and the families
    after it still run."""
    steps = Recorder(FAMILIES, {(phase, family): verdict})
    runs = _run(tmp_path, steps)
    status = {Family(r.family): r.status for r in runs}
    assert status[family] == verdict
    assert all(s == "published" for f, s in status.items() if f is not family)
    for later in FAMILIES[FAMILIES.index(family) + 1 :]:
        assert f"{family.value}_ids" not in steps.got[later]
