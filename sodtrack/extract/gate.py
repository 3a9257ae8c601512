"""The publishing gate: a family is validated whole, then published whole or quarantined whole.

* Every staged dataset of the family runs through its Great Expectations suite (streamed
  file by file as decoded batches, which the validation coalesces into its Great
  Expectations runs, so memory is bounded whatever the data size); the suite's
  whole-dataset expectations (uniqueness, row counts, sibling ids) are exact over the whole
  staged dataset (one DuckDB pass over the same stream).
* ``bookings`` never shrinks: its suite's critical ``published_row_count`` expectation
  requires at least as many staged rows as the published rows the publish replaces
  (:func:`replaced_rows`: the country's whole dataset on a full run, the touched months on
  an incremental one; months carried over are unchanged by construction). Bookings are never
  deleted in the API, so fewer rows means lost data: the family is quarantined.
* A snapshot whose content and check inputs are those of the country's published version
  is not validated again (:mod:`sodtrack.extract.unchanged`): "unchanged, validated in run
  X"; it is published all the same (today's ``snapshot_date``), its commit naming run X.
* A page-numbered walk whose records received differ from the server's ``total_items`` is a
  critical failure too: completeness is checked, never assumed.
* No critical failure → each dataset is published atomically (warnings are published and
  reported). Any critical failure → every dataset of the family goes to quarantine with the
  validation report, and the current versions stay what they were.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

import pyarrow as pa

from sodtrack.extract import unchanged
from sodtrack.extract.report import DatasetRun, FamilyRun
from sodtrack.validation import (
    RowCountPolicy,
    ValidationOutcome,
    ValidationSession,
    published_row_count_parameters,
)
from sodtrack.warehouse import Warehouse, layout
from sodtrack.warehouse.chunks import READ_BATCH_ROWS, iter_chunks
from sodtrack.warehouse.publish import SchemaEvolutionRefused
from sodtrack.warehouse.schemas import get_spec

log = logging.getLogger("sodtrack.extract")

NO_ROW_BOUNDS = RowCountPolicy(
    max_drop=None, max_growth=None, warn_drop=None, warn_growth=None, min_without_previous=None
)
"""An incremental bookings run stages only the months it touched: their row count says
nothing about the dataset's size. (The merge cannot lose a booking: it removes an id only
where it writes its newest version; a full refresh is checked against the previous total.)"""


def _partition_values(key: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in key.split("/") if "=" in part)


def staged_chunks(
    warehouse: Warehouse, dataset: str, run_id: str, *, read_rows: int = READ_BATCH_ROWS
) -> Iterator[pa.Table]:
    """The staged rows as decoded batches of at most ``read_rows`` rows, with the partition
    columns; the validation sizes its GX runs from them (a memory budget,
    ``SODTRACK_VALIDATION_BATCH_MEMORY``) and collects from the same stream what its
    whole-dataset checks need (one DuckDB pass: the staged files are read once).

    Streamed file by file (``sodtrack.warehouse.chunks``), whatever the partitions' sizes:
    ``booking_changes`` stages a single partition per run (its extraction date), which for
    a full run holds every booking. Uniqueness over the whole dataset is the validation's
    business (exact, whatever the chunks: :mod:`sodtrack.validation.wholeset`).
    """
    return iter_chunks(warehouse.staged_dataset(dataset, run_id), read_rows=read_rows)


def previous_rows(warehouse: Warehouse, dataset: str, country: str) -> int | None:
    """Rows of the country in the published version: the latest snapshot's for snapshot
    datasets, all partitions' for merged and log datasets. ``None`` before a first publish."""
    manifest = warehouse.describe(dataset)
    if manifest is None:
        return None
    mine = {
        key: rows
        for key, rows in manifest.rows_per_partition.items()
        if _partition_values(key).get("country") == country
    }
    if not mine:
        return None
    if any("snapshot_date" in _partition_values(k) for k in mine):
        latest = max(mine, key=lambda k: _partition_values(k)["snapshot_date"])
        return mine[latest]
    return sum(mine.values())


def replaced_rows(warehouse: Warehouse, dataset: str, run_id: str, country: str) -> int | None:
    """Rows of ``country`` in the published version that publishing this staging replaces:
    the partitions it writes or empties, and every partition of its ``replace_scope``.
    ``None`` when the published version holds no rows of the country (nothing to keep)."""
    manifest = warehouse.describe(dataset)
    if manifest is None or previous_rows(warehouse, dataset, country) is None:
        return None
    info = warehouse.stage_info(dataset, run_id)
    spec = get_spec(dataset)
    replaced = set(info.replace_partitions) | set(info.partitions)
    total = 0
    for key, rows in manifest.rows_per_partition.items():
        if _partition_values(key).get("country") != country:
            continue
        in_scope = info.replace_scope is not None and layout.matches(
            layout.parse_partition_path(spec, key), info.replace_scope
        )
        if key in replaced or in_scope:
            total += rows
    return total


def validate_family(
    family: FamilyRun,
    warehouse: Warehouse,
    session: ValidationSession,
    run_id: str,
    *,
    references: Mapping[str, Any],
    full_refresh: bool,
) -> dict[str, ValidationOutcome]:
    """Run each staged dataset's suite; record outcomes, critical failures and warnings."""
    outcomes: dict[str, ValidationOutcome] = {}
    for run in family.datasets:
        policy = None
        parameters = dict(references)
        previous = previous_rows(warehouse, run.dataset, family.country)
        if run.dataset == "bookings":
            floor = replaced_rows(warehouse, run.dataset, run_id, family.country)
            parameters.update(published_row_count_parameters(floor))
            if not full_refresh:
                policy, previous = NO_ROW_BOUNDS, None
        if unchanged.is_snapshot(run.dataset) and _unchanged(
            run, warehouse, session, run_id, parameters
        ):
            continue
        outcome = session.validate(
            run.dataset,
            staged_chunks(warehouse, run.dataset, run_id),
            country=family.country,
            parameters=parameters,
            previous_row_count=previous,
            row_count_policy=policy,
        )
        outcomes[run.dataset] = outcome
        run.validation = outcome.to_dict()
        if run.content_hash is not None:
            run.validated_in = run_id
        for failure in outcome.critical_failures:
            family.critical_failures.append(f"{run.dataset}: {failure.label}")
        for warning in outcome.warnings:
            family.warnings.append(f"{family.country}/{run.dataset}: {warning.label}")
        if not run.complete:
            family.critical_failures.append(
                f"{run.dataset}: incomplete walk — received {run.received} records, "
                f"the API announced {run.expected}"
            )
    return outcomes


def _unchanged(
    run: DatasetRun,
    warehouse: Warehouse,
    session: ValidationSession,
    run_id: str,
    parameters: Mapping[str, Any],
) -> bool:
    """Whether a staged snapshot is the country's published content checked with the same
    inputs (:mod:`sodtrack.extract.unchanged`): then it is not validated again, and says so.
    Records the digests either way (the publish writes them into the commit). Anything that
    cannot be computed or read means "validate"."""
    if not run.complete:
        return False
    try:
        run.content_hash = unchanged.content_hash(warehouse, run.dataset, run_id)
        run.inputs_hash = unchanged.inputs_hash(session, run.dataset, run.country, parameters)
        published = unchanged.published_validation(
            warehouse.history(run.dataset, HISTORY_LOOKBACK), run.country
        )
    except Exception:  # a digest is an optimisation: never a reason to fail the family
        log.exception("%s/%s: no digest, validating", run.country, run.dataset)
        run.content_hash = run.inputs_hash = None
        return False
    if published is None or (published.content_hash, published.inputs_hash) != (
        run.content_hash,
        run.inputs_hash,
    ):
        return False
    run.validated_in = published.validated_in
    run.reason = f"unchanged, validated in run {published.validated_in}"
    run.validation = {"success": True, "status": "unchanged", "validated_in": run.validated_in}
    log.info("%s/%s: %s", run.country, run.dataset, run.reason)
    return True


HISTORY_LOOKBACK = 200
"""Commits read back to find the country's newest (a table holds every country's)."""


def publish_or_quarantine(
    family: FamilyRun,
    warehouse: Warehouse,
    run_id: str,
    outcomes: Mapping[str, ValidationOutcome],
    *,
    extra_stats: Mapping[str, Mapping[str, Any]] | None = None,
) -> None:
    """Publish the whole family, or quarantine the whole family with its report.

    A table whose schema cannot evolve to the declared one (anything but added nullable
    columns) is a critical failure of the family, with the differences as its message."""
    for run in family.datasets:
        try:
            warehouse.check_schema(run.dataset)
        except SchemaEvolutionRefused as exc:
            family.critical_failures.append(f"{run.dataset}: {exc}")
    if family.critical_failures:
        report = {
            "run_id": run_id,
            "country": family.country,
            "family": family.family,
            "critical_failures": family.critical_failures,
            "warnings": family.warnings,
            "validation": {name: o.to_dict() for name, o in outcomes.items()},
            "datasets": [_counts(d) for d in family.datasets],
        }
        for run in family.datasets:
            run.quarantine_path = warehouse.quarantine(run.dataset, run_id, report)
            run.status = "quarantined"
        family.status = "quarantined"
        return
    for run in family.datasets:
        summary = _validation_summary(outcomes.get(run.dataset))
        if run.reason is not None:  # unchanged: the earlier run's verdict, carried forward
            summary = {"success": True, "critical_failures": [], "warnings": []}
            summary["row_count"] = run.written
        if summary is not None and run.content_hash and run.validated_in:
            summary["content_hash"] = run.content_hash
            summary["inputs_hash"] = run.inputs_hash
            summary["validated_in"] = run.validated_in
        manifest = warehouse.publish(
            run.dataset,
            run_id,
            validation=summary,
            stats={**_counts(run), **dict((extra_stats or {}).get(run.dataset, {}))},
        )
        run.version = manifest.version_id
        run.status = "published"
        if run.rows_total is None:
            run.rows_total = sum(
                rows
                for key, rows in manifest.rows_per_partition.items()
                if _partition_values(key).get("country") == family.country
            )
    family.status = "published"


def _validation_summary(outcome: ValidationOutcome | None) -> dict[str, Any] | None:
    if outcome is None:
        return None
    return {
        "success": outcome.success,
        "critical_failures": [f.label for f in outcome.critical_failures],
        "warnings": [w.label for w in outcome.warnings],
        "row_count": outcome.row_count,
    }


def _counts(run: DatasetRun) -> dict[str, Any]:
    return {
        "dataset": run.dataset,
        "pages": run.pages,
        "expected": run.expected,
        "received": run.received,
        "deduplicated": run.deduplicated,
        "written": run.written,
        "completeness": run.completeness,
    }
