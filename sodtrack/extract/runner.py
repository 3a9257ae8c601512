"""One nightly extraction run over one or more countries, without any orchestrator.

:func:`extract_country` is the one orchestrator of a country (its lock, the cleanup of dead
runs, the families pipelined): the CLI, the demo and the tests reach it through
:func:`run_extraction`, the Prefect flow (``flows/nightly.py``) calls it with a task per phase
as its ``steps``. A family has two phases: :func:`stage_family` (walk and stage: IO bound,
paced by the API's rate limit) and :func:`check_family` (validate, then publish or
quarantine: CPU bound, run in a thread), so one family is checked while the next is walked.
What one phase passes to the next is a value (:class:`StagedFamily`,
:class:`FamilyExtraction`), so tasks could run in separate processes. Countries run one after
another here; the Prefect flow runs them concurrently.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import pyarrow.compute as pc

from sodtrack.arrowpool import use_run_memory_pool
from sodtrack.client import SodtrackClient
from sodtrack.contract.countries import get_country
from sodtrack.contract.limits import RATE_LIMIT_BURST
from sodtrack.extract import gate
from sodtrack.extract.docsite import DocsSite
from sodtrack.extract.families import FAMILIES, Family, families_for
from sodtrack.extract.report import DatasetRun, FamilyRun, RunReport, iso
from sodtrack.extract.staging import Progress, stage_bookings, stage_catalog, stage_coverage
from sodtrack.state import StateStore, hold_lock, updated_since
from sodtrack.validation import DEFAULT_BATCH_MEMORY, ValidationSession, reference_parameters
from sodtrack.validation.suites import P_CATEGORY_IDS, P_SERVICE_IDS, P_VARIANT_IDS, P_ZONE_IDS
from sodtrack.warehouse import DATASETS, Warehouse, layout
from sodtrack.warehouse.bookings import WORK

log = logging.getLogger("sodtrack.extract")

DEFAULT_LOOKBACK = timedelta(minutes=10)
"""Overlap re-read behind the watermark: records committed late with an ``updated_at`` just
before the previous run's newest one are still picked up (the merge drops the repeats)."""

ClientFactory = Callable[[str], AbstractAsyncContextManager[SodtrackClient]]
"""``factory(country)`` → an ``async with`` client for that country's API."""


@dataclass(frozen=True, slots=True)
class ExtractionOptions:
    countries: tuple[str, ...]
    datasets: tuple[str, ...] = ()
    """Datasets or families to run (a dataset runs its whole family); empty = all."""
    full_refresh: bool = False
    lookback: timedelta = DEFAULT_LOOKBACK
    docs_dir: Path | str | None = Path("data/docs")
    """Where the Data Docs are kept: a folder, or object storage (``s3://…/_docs``)."""
    reports_dir: Path | str | None = Path("data/reports")
    """Where the run report is written: a folder, or object storage (``s3://…/_reports``)."""
    s3_endpoint_url: str | None = None
    """The S3-compatible server of object-storage ``docs_dir``/``reports_dir``."""
    run_id: str | None = None
    lock_timeout_s: float = 3600.0
    validation_batch_memory: int = DEFAULT_BATCH_MEMORY
    """Memory budget of a GX batch (``SODTRACK_VALIDATION_BATCH_MEMORY``)."""


def new_run_id(now: datetime | None = None) -> str:
    return f"nightly-{(now or datetime.now(UTC)):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True, slots=True)
class CountryExtraction:
    """One country's part of a run (a value: tasks in other processes get a copy)."""

    country: str
    run_id: str
    """The warehouse run id (``<run>-<country>``): each country stages apart."""
    extracted_at: datetime


References = dict[str, list[str]]
"""Suite parameter → the ids a family's rows may refer to (:func:`reference_parameters`)."""


@dataclass(frozen=True, slots=True)
class FamilyExtraction:
    """What one family step returns: its run, and the references the country's next family
    checks against (given to the next step explicitly, never shared mutable state)."""

    run: FamilyRun
    references: References


def staged_references(
    warehouse: Warehouse, cx: CountryExtraction, datasets: Mapping[str, str]
) -> References:
    """Reference ids from this run's staging (``datasets``: dataset → reference name)."""
    found: References = {}
    for dataset, name in datasets.items():
        table = warehouse.staged_table(dataset, cx.run_id, {"country": cx.country})
        found.update(reference_parameters(**{name: table}))
    return found


def without_references(references: Mapping[str, list[str]], family: Family) -> References:
    """``references`` less the ones ``family``'s staging gave: it was not published
    (quarantined, failed), so later families check against the published version instead."""
    dropped = {_REFERENCES[d][1] for d in FAMILIES[family] if d in _REFERENCES}
    return {name: ids for name, ids in references.items() if name not in dropped}


def with_published_references(
    warehouse: Warehouse, country: str, references: Mapping[str, list[str]]
) -> References:
    """``references`` completed from the published versions (an incremental bookings run
    checks its bookings against the catalog and coverage analysts can see)."""
    filled = dict(references)
    for dataset, (name, parameter) in _REFERENCES.items():
        if parameter in filled or warehouse.current_version(dataset) is None:
            continue
        table = warehouse.read_current(dataset).to_table(columns=["id", "country", "snapshot_date"])
        mine = table.filter(pc.equal(table["country"], country))
        if mine.num_rows == 0:
            continue
        latest = pc.max(mine["snapshot_date"]).as_py()
        mine = mine.filter(pc.equal(mine["snapshot_date"], latest))
        filled.update(reference_parameters(**{name: mine}))
    return filled


@dataclass(frozen=True, slots=True)
class BookingsRead:
    """Where a bookings run starts reading (see :func:`plan_bookings_read`)."""

    full: bool
    """Rebuild the country's bookings from this run alone (``replace_scope`` = the country)."""
    watermark: datetime | None
    """The watermark in force: the walk reads ``updated_since(watermark, lookback)``."""
    note: str | None = None
    """A decision a person should know about (logged, in the run report)."""


def published_watermark(warehouse: Warehouse, country: str) -> datetime | None:
    """The watermark the country's published bookings were extracted to, from the tables'
    own commits: the older of ``bookings``' and ``booking_changes``' (a run killed between
    the two commits re-reads the window; the merge is idempotent). ``None`` when either has
    none: the run reads everything and merges it into the published data."""
    marks = [warehouse.watermark(d, country) for d in ("bookings", "booking_changes")]
    if None in marks:
        return None
    return min(m for m in marks if m is not None)


def plan_bookings_read(warehouse: Warehouse, country: str, *, full_refresh: bool) -> BookingsRead:
    """Decide how a bookings run reads. The watermark lives in the commits of the tables
    themselves, so the data and the watermark cannot diverge (a moved, restored or rebuilt
    warehouse carries its own):

    * ``--full-refresh`` → full.
    * The ``bookings`` table holds no rows of the country (new or empty table) → **full**.
    * Otherwise → incremental from the watermark in the commits (none, e.g. a table migrated
      from the old layout: everything is read and merged into the published data).
    """
    if full_refresh:
        return BookingsRead(full=True, watermark=None)
    if gate.previous_rows(warehouse, "bookings", country) is None:
        return BookingsRead(full=True, watermark=None)
    return BookingsRead(full=False, watermark=published_watermark(warehouse, country))


_REFERENCES: dict[str, tuple[str, str]] = {
    # dataset: (reference_parameters keyword, the suite parameter it fills)
    "categories": ("categories", P_CATEGORY_IDS),
    "services": ("services", P_SERVICE_IDS),
    "variants": ("variants", P_VARIANT_IDS),
    "coverage_zones": ("zones", P_ZONE_IDS),
}


@dataclass(frozen=True, slots=True)
class StagedFamily:
    """What staging one family returns: its run (counts, or ``failed``), the ids its staging
    gives the country's later families, and what the publish records beside the data.

    A value, like :class:`FamilyExtraction`: the check may run in another task or process."""

    family: Family
    run: FamilyRun
    references: References
    """The reference ids of this family's own staging (empty when the staging failed)."""
    extra: dict[str, dict[str, Any]]
    """Stats per dataset the publish adds to the commit metadata (the bookings merge's)."""

    @property
    def failed(self) -> bool:
        return self.run.status == "failed"


_OWN_REFERENCES: dict[Family, dict[str, str]] = {
    Family.CATALOG: {"categories": "categories", "services": "services", "variants": "variants"},
    Family.COVERAGE: {"coverage_zones": "zones"},
    Family.BOOKINGS: {},
}


async def stage_family(
    family: Family,
    client: SodtrackClient,
    warehouse: Warehouse,
    cx: CountryExtraction,
    *,
    full_refresh: bool,
    lookback: timedelta,
    progress: Progress,
) -> StagedFamily:
    """Walk one family of one country into this run's staging (IO bound: the API's rate
    limit sets its pace). Raises what the walk or the staging raised, after discarding the
    family's stagings; :func:`staging_failed` makes the failed result. A retry starts from
    empty stagings (the writers and the bookings merge clear what an attempt left)."""
    fam = FamilyRun(family.value, cx.country)
    started = time.monotonic()
    extra: dict[str, dict[str, Any]] = {}
    fam.full = family is not Family.BOOKINGS  # catalog and coverage are full snapshots
    try:
        if family is Family.CATALOG:
            fam.datasets = await stage_catalog(
                client, warehouse, cx.country, cx.run_id, cx.extracted_at, progress
            )
        elif family is Family.COVERAGE:
            fam.datasets = await stage_coverage(
                client, warehouse, cx.country, cx.run_id, cx.extracted_at, progress
            )
        else:
            read = plan_bookings_read(warehouse, cx.country, full_refresh=full_refresh)
            if read.note is not None:
                log.warning("%s/bookings: %s", cx.country, read.note)
                fam.notes.append(read.note)
            fam.full = read.full
            fam.watermark_before = iso(read.watermark)
            fam.datasets, merge = await stage_bookings(
                client,
                warehouse,
                cx.country,
                cx.run_id,
                cx.extracted_at,
                updated_since=updated_since(read.watermark, lookback),
                watermark_before=read.watermark,
                full_refresh=read.full,
                progress=progress,
            )
            extra = {"bookings": merge.stats()}
        own = staged_references(warehouse, cx, _OWN_REFERENCES[family])
    except BaseException:
        for dataset in FAMILIES[family]:
            warehouse.discard(dataset, cx.run_id)
        raise
    log.info("%s/%s staged in %.1f s", cx.country, family.value, time.monotonic() - started)
    return StagedFamily(family, fam, own, extra)


def staging_failed(family: Family, cx: CountryExtraction, exc: BaseException) -> StagedFamily:
    """The result of a family whose staging raised ``exc`` (its stagings are discarded)."""
    log.error("%s/%s staging failed: %s: %s", cx.country, family.value, type(exc).__name__, exc)
    fam = FamilyRun(family.value, cx.country, status="failed")
    fam.error = f"{type(exc).__name__}: {exc}"
    fam.datasets = [DatasetRun(d, cx.country, status="failed") for d in FAMILIES[family]]
    return StagedFamily(family, fam, {}, {})


def check_family(
    staged: StagedFamily,
    warehouse: Warehouse,
    session: ValidationSession,
    cx: CountryExtraction,
    references: Mapping[str, list[str]],
) -> FamilyExtraction:
    """Validate a staged family, then publish it or quarantine it (CPU bound: the
    orchestrator runs it in a thread while the next family is walked).

    ``references``: what the country's earlier families returned once *their* check was done
    (their staged ids when published, none when not, so the published ones fill in); the
    result's references add this family's staged ids when it is published. Never raises:
    a failure discards the family's stagings and is the family's ``failed`` status, so one
    family's failure does not hide the others' outcome."""
    family, fam = staged.family, staged.run
    if staged.failed:
        return FamilyExtraction(fam, without_references(references, family))
    started = time.monotonic()
    refs = {**references, **staged.references}
    try:
        refs = with_published_references(warehouse, cx.country, refs)
        outcomes = gate.validate_family(
            fam,
            warehouse,
            session,
            cx.run_id,
            references=refs,
            full_refresh=fam.full,
        )
        gate.publish_or_quarantine(fam, warehouse, cx.run_id, outcomes, extra_stats=staged.extra)
        if fam.status != "published":
            refs = without_references(refs, family)
        if family is Family.BOOKINGS and fam.status == "published":
            # The commits carry it: the data up to it is validated and published.
            fam.watermark_after = iso(published_watermark(warehouse, cx.country))
    except Exception as exc:  # one family's failure must not hide the others' outcome
        log.exception("%s/%s failed", cx.country, family.value)
        refs = without_references(refs, family)
        fam.status = "failed"
        fam.error = f"{type(exc).__name__}: {exc}"
        for dataset in FAMILIES[family]:
            warehouse.discard(dataset, cx.run_id)
        for d in fam.datasets:
            if d.status == "staged":
                d.status = "failed"
    log.info("%s/%s %s in %.1f s", cx.country, family.value, fam.status, time.monotonic() - started)
    return FamilyExtraction(fam, refs)


def clear_dead_runs(warehouse: Warehouse, country: str, run_id: str) -> list[str]:
    """Remove what earlier runs of ``country`` left behind when they died before publishing
    or quarantining (SIGKILL, OOM, a lost node): their stagings and the bookings merge's
    scratch space, which can be as large as a full extraction.

    Call it holding the country's lock (``nightly:<country>``): no other run of the country
    is alive then, so a staging of another ``<run>-<country>`` id is nobody's. Returns what
    was removed (paths under the warehouse root); a failure to remove is logged, not raised.
    """
    fs = warehouse.fs
    suffix = f"-{country}"
    doomed: list[tuple[str, str]] = []
    for dataset in DATASETS:
        staging = fs.join(warehouse.dataset_path(dataset), layout.STAGING)
        doomed += [
            (fs.join(staging, name), f"{dataset}/{layout.STAGING}/{name}")
            for name in fs.list_dir(staging)
            if name.endswith(suffix) and name != run_id
        ]
    work = fs.join(warehouse.scratch, WORK)
    mine = f"{run_id}-bookings-{country}"
    doomed += [
        (fs.join(work, name), f"{WORK}/{name}")
        for name in fs.list_dir(work)
        if name.endswith(f"-bookings{suffix}") and name != mine
    ]
    removed = []
    for path, label in doomed:
        try:
            fs.remove_tree(path)
        except OSError:
            log.exception("could not remove %s, left by a run that died", label)
        else:
            removed.append(label)
    if removed:
        log.warning("%s: removed leftovers of runs that died: %s", country, removed)
    return removed


def _no_progress(dataset: str, n: int) -> None:
    pass


@dataclass(frozen=True, slots=True)
class ExtractFamily:
    """The two phases of a family with what one country's families share bound to them
    (:class:`FamilySteps`): the CLI's run binds the run's client and validation session."""

    client: SodtrackClient
    warehouse: Warehouse
    session: ValidationSession
    full_refresh: bool = False
    lookback: timedelta = DEFAULT_LOOKBACK
    progress: Progress = _no_progress

    async def stage(self, family: Family, cx: CountryExtraction) -> StagedFamily:
        try:
            return await stage_family(
                family,
                self.client,
                self.warehouse,
                cx,
                full_refresh=self.full_refresh,
                lookback=self.lookback,
                progress=self.progress,
            )
        except Exception as exc:  # the family fails; the country's others go on
            return staging_failed(family, cx, exc)

    async def check(
        self, staged: StagedFamily, cx: CountryExtraction, references: References
    ) -> FamilyExtraction:
        return await asyncio.to_thread(
            check_family, staged, self.warehouse, self.session, cx, references
        )

    async def warm_up(self) -> None:
        await asyncio.to_thread(lambda: self.session.context)


class FamilySteps(Protocol):
    """The two phases of one family of one country (:class:`ExtractFamily`; in the flow,
    a Prefect task each)."""

    async def stage(self, family: Family, cx: CountryExtraction) -> StagedFamily:
        """Walk and stage (:func:`stage_family`); a failure is a failed :class:`StagedFamily`."""
        ...

    async def check(
        self, staged: StagedFamily, cx: CountryExtraction, references: References
    ) -> FamilyExtraction:
        """Validate, then publish or quarantine (:func:`check_family`), off the event loop."""
        ...

    async def warm_up(self) -> None:
        """Make ready, off the event loop, what the first check needs and costs seconds
        (Great Expectations' import and context), while the first family is walked."""
        ...


async def extract_country(
    cx: CountryExtraction,
    families: list[Family],
    steps: FamilySteps,
    *,
    warehouse: Warehouse,
    store: StateStore,
    lock_timeout_s: float = 3600.0,
) -> list[FamilyRun]:
    """The families of one country under the country's lock: the one orchestrator of the
    CLI, the demo and the Prefect flow (which gives its tasks as ``steps``).

    Holds ``nightly:<country>`` (waiting in a thread, so other countries of the event loop
    go on), removes what dead runs of the country left, then pipelines the families: family
    N+1 is walked (IO bound, paced by the API) while family N is checked and published (CPU
    bound, in a thread). Staging needs nothing from an earlier family; a check waits for the
    previous family's verdict, because its references are that family's staged ids when it
    was published and the published ones when it was not (:func:`without_references`).
    Checks run one at a time, in family order. Whatever happens, the lock is released only
    once the check in flight has finished (a thread cannot be cancelled halfway through a
    publish)."""
    runs: list[FamilyRun] = []
    async with hold_lock(store, f"nightly:{cx.country}", timeout_s=lock_timeout_s):
        clear_dead_runs(warehouse, cx.country, cx.run_id)
        references: References = {}
        warming: asyncio.Task[None] | None = asyncio.create_task(steps.warm_up())
        checking: asyncio.Task[FamilyExtraction] | None = None
        try:
            for family in families:
                staged = await steps.stage(family, cx)
                if warming is not None:
                    await _warmed(warming)
                    warming = None
                if checking is not None:
                    done = await checking
                    runs.append(done.run)
                    references = done.references
                checking = asyncio.create_task(steps.check(staged, cx, references))
            if warming is not None:  # no family asked
                await _warmed(warming)
                warming = None
            if checking is not None:
                done = await checking
                runs.append(done.run)
            checking = None
        finally:
            for task in (warming, checking):
                if task is not None and not task.done():
                    await asyncio.wait([task])
        vacuum_tables(warehouse, {d for f in families for d in FAMILIES[f]})
    return runs


async def _warmed(warming: asyncio.Task[None]) -> None:
    """A warm-up is an optimisation: its failure is logged, and the check does the work."""
    try:
        await warming
    except Exception:
        log.exception("warming up the validation failed (the first check will do it)")


def vacuum_tables(warehouse: Warehouse, datasets: Iterable[str]) -> dict[str, int]:
    """Delete the files of versions older than the retention (the nightly's last step).

    Files a version within the retention needs stay: time travel reads them. A failure is
    logged, never raised: the data is published already. Returns files removed per dataset."""
    removed: dict[str, int] = {}
    for dataset in sorted(datasets):
        try:
            removed[dataset] = len(warehouse.vacuum(dataset))
        except Exception:  # delta-rs raises its own types; clean-up must not fail a run
            log.exception("%s: vacuum failed", dataset)
    return removed


def start_report(
    run_id: str, started_at: datetime, countries: list[str], *, full_refresh: bool, warehouse: str
) -> RunReport:
    """The report of a run that starts (families and totals come with :func:`finish_report`)."""
    return RunReport(
        run_id=run_id,
        started_at=started_at.isoformat(),
        countries=countries,
        full_refresh=full_refresh,
        warehouse=warehouse,
    )


def finish_report(
    report: RunReport,
    families: list[FamilyRun],
    client_stats: list[dict[str, Any]],
    *,
    finished_at: datetime,
    duration_s: float,
) -> RunReport:
    """The families' runs, the clients' summed counters and the end of the run."""
    report.families = families
    report.client = merge_client_stats(client_stats)
    report.finished_at = finished_at.isoformat()
    report.duration_s = round(duration_s, 3)
    return report


async def run_extraction(
    options: ExtractionOptions,
    *,
    warehouse: Warehouse,
    store: StateStore,
    client_factory: ClientFactory,
    progress: Progress | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> RunReport:
    """Extract, validate and publish the asked families for each country; write the report.

    Countries run one after another, each with one client and one validation session for
    the whole run (one Data Docs site). Arrow allocates from the system pool
    (:mod:`sodtrack.arrowpool`)."""
    use_run_memory_pool()
    started_at = now()
    clock0 = time.monotonic()
    run_id = options.run_id or new_run_id(started_at)
    countries = [get_country(c).code for c in options.countries]
    families = families_for(options.datasets)
    report = start_report(
        run_id,
        started_at,
        countries,
        full_refresh=options.full_refresh,
        warehouse=str(warehouse.root),
    )
    site = DocsSite(options.docs_dir, endpoint_url=options.s3_endpoint_url)
    session = ValidationSession(
        run_id,
        docs_dir=site.build_dir,
        batch_memory=options.validation_batch_memory,
        duck_limits=warehouse.duck_limits,
    )
    runs: list[FamilyRun] = []
    client_stats: list[dict[str, Any]] = []
    for country in countries:
        cx = CountryExtraction(country, f"{run_id}-{country}", now())
        async with client_factory(country) as client:
            steps = ExtractFamily(
                client,
                warehouse,
                session,
                full_refresh=options.full_refresh,
                lookback=options.lookback,
                progress=progress or _no_progress,
            )
            runs += await extract_country(
                cx,
                families,
                steps,
                warehouse=warehouse,
                store=store,
                lock_timeout_s=options.lock_timeout_s,
            )
            client_stats.append({**client.stats.as_dict(), "country": country})
    with site:
        if options.docs_dir is not None and session.outcomes:
            report.docs_path = site.keep(session.build_docs())
    finish_report(
        report, runs, client_stats, finished_at=now(), duration_s=time.monotonic() - clock0
    )
    if options.reports_dir is not None:
        report.write_to(options.reports_dir, endpoint_url=options.s3_endpoint_url)
    return report


def merge_client_stats(stats: list[dict[str, Any]]) -> dict[str, Any]:
    """Sum the clients' counters into the report's ``client`` section (one client per
    country here, one per family task in the flow; each carries its ``country``)."""
    stats = [s for s in stats if s]  # a family whose task never ran has no counters
    keys = (
        "requests_total",
        "retries_total",
        "rate_limited_429",
        "retry_wait_s",
        "limiter_wait_s",
        "superseded",
        "duplicates_dropped",
        "token_fetches",
        "token_refreshes_on_401",
    )
    total: dict[str, Any] = {k: sum(s.get(k, 0) for s in stats) for k in keys}
    total["requests"] = total.pop("requests_total")
    total["retries"] = total.pop("retries_total")
    total["rate_limited"] = total.pop("rate_limited_429")
    total["pages"] = sum(sum(s.get("pages", {}).values()) for s in stats)
    total["completeness_warnings"] = [w for s in stats for w in s.get("completeness_warnings", [])]
    total.update(api_floor(stats))
    total["per_country"] = stats
    return total


def api_floor(stats: list[dict[str, Any]]) -> dict[str, Any]:
    """The run's API floor: the time its requests need at the rate limit alone, summed over
    countries (each has its own credential, so its own bucket; countries run one after
    another here). ``api_floor_s`` is ``None`` when it is unknown or not meaningful, and
    ``api_floor_note`` then says why:

    * an API that showed no limit: nothing to compare with;
    * **a country whose requests fit in its API's burst** (``X-RateLimit-Limit``, the
      bucket's size; the contract's when the client saw none): those requests pass at once,
      the rate never paces them, and the client's estimate of the rate only reaches the true
      rate as the bucket drains (an incremental run of 2 requests "learnt" 1 req/s). The rule:
      the floor is meaningful when every country made more requests than its burst.
    """
    rates = [s.get("rate_limit_per_s") for s in stats]
    rate = rates[0] if rates and len(set(rates)) == 1 else None
    if not stats or not all(rates):
        return {"api_floor_s": None, "rate_limit_per_s": rate, "api_floor_note": "no rate limit"}
    per_country: dict[str, tuple[int, float]] = {}
    floor = 0.0
    for i, s in enumerate(stats):
        key = str(s.get("country", i))
        requests = int(s.get("requests_total", 0))
        burst = float(s.get("rate_limit_burst") or RATE_LIMIT_BURST)
        before, seen = per_country.get(key, (0, 0.0))
        per_country[key] = (before + requests, max(seen, burst))
        floor += requests / float(s["rate_limit_per_s"])
    paced = {c: r > b for c, (r, b) in per_country.items()}
    if not all(paced.values()):
        few = ", ".join(
            f"{c}: {r} requests within a burst of {b:g}"
            for c, (r, b) in per_country.items()
            if not paced[c]
        )
        return {
            "api_floor_s": None,
            "rate_limit_per_s": rate,
            "api_floor_note": f"not meaningful ({few}: the rate limit never paced them)",
        }
    return {"api_floor_s": round(floor, 3), "rate_limit_per_s": rate, "api_floor_note": None}
