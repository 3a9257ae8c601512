"""The nightly extraction: Sodtrack → staged Parquet → Great Expectations → published datasets.

A library (no Prefect). One orchestrator per country, ``runner.extract_country`` (the
country's lock, the cleanup of dead runs, the families pipelined: family N is checked and
published in a thread while family N+1 is walked; each check is given the references the
previous family's check returned, as a value): the CLI and the demo reach it through
``run_extraction``, the Prefect flow (``flows/nightly.py``) calls it with a task per phase
(``stage-family``, ``check-family``). One run, for one country::

    plan_bookings_read   (the tables decide: full when the warehouse has no bookings of
                          the country, else from the watermark in their commits)
    stage_catalog / stage_coverage / stage_bookings   (API → staging, counts per dataset)
        └─► gate_family  (validate every staged dataset of a family with its GX suite;
                          bookings may not have fewer rows than the published ones)
              ├─ all pass (warnings allowed) → one Delta commit per dataset, carrying the
              │                                run id and (bookings) the watermark
              └─ a critical failure          → quarantine the family, commit nothing
    vacuum the tables                         (files older than the retention)

Datasets come in families that publish together, so an analyst never sees services of one
run beside variants of another: ``catalog`` (categories, services, variants), ``coverage``
(coverage_zones, coverage_postal_codes), ``bookings`` (bookings, booking_changes).
"""

from sodtrack.extract.families import FAMILIES, Family, families_for
from sodtrack.extract.report import DatasetRun, FamilyRun, RunReport
from sodtrack.extract.runner import ExtractionOptions, extract_country, run_extraction

__all__ = [
    "FAMILIES",
    "DatasetRun",
    "ExtractionOptions",
    "Family",
    "FamilyRun",
    "RunReport",
    "extract_country",
    "families_for",
    "run_extraction",
]
