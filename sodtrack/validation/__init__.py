"""Validation of the nightly datasets with Great Expectations 1.x (a library: no Prefect).

Great Expectations itself is imported lazily, inside the functions that run a suite, so that
importing this package (and CLI start-up) stays fast.

    from sodtrack.validation import reference_parameters, validate_dataset
    params = reference_parameters(categories=cats, services=svcs, variants=vars_, zones=zones)
    outcome = validate_dataset("bookings", chunks, country="cl", parameters=params,
                               previous_row_count=41_250, docs_dir=Path("data/docs"))
    if not outcome.success: quarantine(outcome.to_json())
"""

from sodtrack.validation.batching import DEFAULT_BATCH_MEMORY
from sodtrack.validation.outcome import ExpectationOutcome, ValidationOutcome
from sodtrack.validation.parameters import (
    ROW_COUNT_POLICIES,
    RowCountPolicy,
    collect_ids,
    country_parameters,
    published_row_count_parameters,
    reference_parameters,
    row_count_parameters,
)
from sodtrack.validation.runner import (
    ValidationSession,
    new_context,
    new_run_id,
    validate_dataset,
)
from sodtrack.validation.suites import (
    DATASETS,
    KEY_COLUMNS,
    SUITES_DIR,
    expected_columns,
    load_suite_dict,
)

__all__ = [
    "DATASETS",
    "DEFAULT_BATCH_MEMORY",
    "KEY_COLUMNS",
    "ROW_COUNT_POLICIES",
    "SUITES_DIR",
    "ExpectationOutcome",
    "RowCountPolicy",
    "ValidationOutcome",
    "ValidationSession",
    "collect_ids",
    "country_parameters",
    "expected_columns",
    "load_suite_dict",
    "new_context",
    "new_run_id",
    "published_row_count_parameters",
    "reference_parameters",
    "row_count_parameters",
    "validate_dataset",
]
