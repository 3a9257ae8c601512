"""The Great Expectations suites of the nightly datasets, and the JSON files that hold them.

``schemas/expectations/<dataset>.json`` is what the pipeline loads at run time: one GX 1.x
``ExpectationSuite`` per dataset, in the format GX itself writes (``name``, ``expectations``
as ``{type, kwargs, meta, severity}``, ``meta``). Those files are *generated* from the
definitions below and reviewed like code; ``python -m sodtrack.validation --check``
(and a golden test) fail when the two disagree, ``--write`` regenerates the files.

Nothing here imports Great Expectations except ``--check`` (which loads every file into an
``ExpectationSuite``): building and reading the JSON is plain Python.

Run-time values come in as suite parameters (``{"$PARAMETER": name}``), filled by the runner:

* ``country_codes``, ``currency_codes``, ``postal_code_regex``: from the run's country
  (``sodtrack.contract.countries``);
* ``category_ids``, ``service_ids``, ``variant_ids``, ``zone_ids``: the ids of the sibling
  datasets of the same run (or of the currently published version), for referential integrity;
* ``row_count_min``/``row_count_max`` (critical band) and ``row_count_warn_min``/
  ``row_count_warn_max`` (warning band): from the previous snapshot's row count;
* ``published_row_count`` (``bookings`` only, critical): the staged rows may not be fewer
  than the published rows their publish replaces. Bookings are never deleted in the API
  (a cancellation is a status change), so the dataset can never shrink across runs: the
  gate passes the rows of the partitions the staging replaces (all of the country's on a
  full run, the touched months on an incremental one, where carried months stay as they
  are), ``None`` before a first publish.

GateSeverity: ``critical`` failures block publishing; ``warning`` ones publish and are reported.

Scope: an expectation about the whole dataset (uniqueness of a column or a compound key, a
row count, values among a sibling dataset's ids) carries ``"meta": {"scope": "whole_dataset"}``
in its file. The runner evaluates those exactly over the whole staged dataset in one DuckDB
pass (:mod:`sodtrack.validation.wholeset`), the others with Great Expectations batch by batch;
both land in one GX result per dataset (Data Docs, run report).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from sodtrack.contract.limits import (
    DURATION_STEP_MIN,
    EMAIL_PATTERN,
    EXTERNAL_REFERENCE_PATTERN,
    PHONE_PATTERN,
)
from sodtrack.contract.models import BookingStatus
from sodtrack.validation.wholeset import (
    COMPOUND_UNIQUE,
    IN_SET,
    ROW_COUNT,
    SCOPE_KEY,
    UNIQUE,
    WHOLE_DATASET,
)
from sodtrack.warehouse.schemas import DATASETS as WAREHOUSE_DATASETS

GateSeverity = Literal["critical", "warning"]
CRITICAL: Final[GateSeverity] = "critical"
WARNING: Final[GateSeverity] = "warning"

SUITES_DIR: Final = Path(__file__).resolve().parents[2] / "schemas" / "expectations"
"""Where the reviewed suite files live in the repository."""

MAX_DURATION_MIN: Final = 24 * 60
"""Longest duration a service or variant may declare (a working day is far below it)."""
DURATION_VALUES: Final = list(range(DURATION_STEP_MIN, MAX_DURATION_MIN + 1, DURATION_STEP_MIN))
"""Allowed ``duration_minutes``: multiples of 30 up to a day (GX has no modulo check)."""

# ---------------------------------------------------------------- parameters

P_COUNTRY_CODES: Final = "country_codes"
P_CURRENCY_CODES: Final = "currency_codes"
P_POSTAL_CODE_REGEX: Final = "postal_code_regex"
P_CATEGORY_IDS: Final = "category_ids"
P_SERVICE_IDS: Final = "service_ids"
P_VARIANT_IDS: Final = "variant_ids"
P_ZONE_IDS: Final = "zone_ids"
P_ROW_COUNT_MIN: Final = "row_count_min"
P_ROW_COUNT_MAX: Final = "row_count_max"
P_ROW_COUNT_WARN_MIN: Final = "row_count_warn_min"
P_ROW_COUNT_WARN_MAX: Final = "row_count_warn_max"
P_PUBLISHED_ROW_COUNT: Final = "published_row_count"

COUNTRY_PARAMETERS: Final = frozenset({P_COUNTRY_CODES, P_CURRENCY_CODES, P_POSTAL_CODE_REGEX})
REFERENCE_PARAMETERS: Final = frozenset({P_CATEGORY_IDS, P_SERVICE_IDS, P_VARIANT_IDS, P_ZONE_IDS})
ROW_COUNT_PARAMETERS: Final = frozenset(
    {P_ROW_COUNT_MIN, P_ROW_COUNT_MAX, P_ROW_COUNT_WARN_MIN, P_ROW_COUNT_WARN_MAX}
)
NULLABLE_PARAMETERS: Final = ROW_COUNT_PARAMETERS | {P_PUBLISHED_ROW_COUNT}
"""Parameters whose value may be ``None`` (no bound)."""


def param(name: str) -> dict[str, str]:
    """A suite parameter reference, filled by ``expectation_parameters`` at run time."""
    return {"$PARAMETER": name}


# ---------------------------------------------------------------- datasets

PARTITION_COLUMN: Final = "country"
"""The hive partition key every dataset carries when validated (the date keys are dropped)."""

DATASET_COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    name: tuple(f.name for f in spec.fields) for name, spec in WAREHOUSE_DATASETS.items()
}
"""The columns of each dataset as the Parquet writer stores them (``sodtrack.warehouse``'s
explicit Arrow schemas, without partition keys): the suites follow the schemas, and
``--check`` fails when a schema change was not carried into the suite files."""

IGNORED_PARTITION_COLUMNS: Final = frozenset(
    key
    for spec in WAREHOUSE_DATASETS.values()
    for key in spec.partition_keys
    if key != PARTITION_COLUMN
)
"""Hive date keys (``snapshot_date``, ``scheduled_month``, ``extraction_date``) that come along
when staged data is read back as a partitioned dataset: the runner drops them before
validation; they are properties of the path, not of the rows."""

DATASETS: Final = tuple(DATASET_COLUMNS)

KEY_COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    "categories": ("id",),
    "services": ("id",),
    "variants": ("id",),
    "coverage_zones": ("id",),
    "coverage_postal_codes": ("zone_id", "postal_code", "service_id"),
    "bookings": ("id",),
    # every version received, exact repeats of (id, updated_at) within a run dropped
    "booking_changes": ("run_id", "id", "updated_at"),
}
"""Each dataset's primary key: checked unique over the whole dataset (a ``whole_dataset``
expectation, :mod:`sodtrack.validation.wholeset`)."""


def expected_columns(dataset: str) -> list[str]:
    """The exact column set a dataset is validated against (its columns plus ``country``)."""
    return [*DATASET_COLUMNS[dataset], PARTITION_COLUMN]


# ---------------------------------------------------------------- expectation builders


@dataclass(frozen=True, slots=True)
class _E:
    type: str
    kwargs: dict[str, Any]
    severity: GateSeverity = CRITICAL

    def to_dict(self) -> dict[str, Any]:
        meta = {SCOPE_KEY: WHOLE_DATASET} if self.whole_dataset else {}
        return {"type": self.type, "kwargs": self.kwargs, "meta": meta, "severity": self.severity}

    @property
    def whole_dataset(self) -> bool:
        """Uniqueness, row counts and values among a sibling dataset's ids are properties of
        the whole dataset: the file marks them so (``meta.scope``) and the runner evaluates them
        in one DuckDB pass (:mod:`sodtrack.validation.wholeset`) rather than batch by batch."""
        if self.type in (UNIQUE, COMPOUND_UNIQUE, ROW_COUNT):
            return True
        value_set = self.kwargs.get("value_set")
        return (
            self.type == IN_SET
            and isinstance(value_set, dict)
            and value_set.get("$PARAMETER") in REFERENCE_PARAMETERS
        )


def _columns(dataset: str) -> _E:
    return _E(
        "expect_table_columns_to_match_set",
        {"column_set": expected_columns(dataset), "exact_match": True},
    )


def _not_null(column: str, severity: GateSeverity = CRITICAL, **extra: Any) -> _E:
    return _E("expect_column_values_to_not_be_null", {"column": column, **extra}, severity)


def _unique(column: str, severity: GateSeverity = CRITICAL) -> _E:
    return _E("expect_column_values_to_be_unique", {"column": column}, severity)


def _compound_unique(columns: Sequence[str]) -> _E:
    return _E("expect_compound_columns_to_be_unique", {"column_list": list(columns)})


def _in_set(column: str, value_set: Any, severity: GateSeverity = CRITICAL) -> _E:
    return _E(
        "expect_column_values_to_be_in_set", {"column": column, "value_set": value_set}, severity
    )


def _regex(column: str, regex: Any, severity: GateSeverity = CRITICAL) -> _E:
    return _E("expect_column_values_to_match_regex", {"column": column, "regex": regex}, severity)


def _at_least_zero(column: str) -> _E:
    return _E("expect_column_values_to_be_between", {"column": column, "min_value": 0})


def _a_greater_than_b(a: str, b: str, *, or_equal: bool, severity: GateSeverity) -> _E:
    kwargs: dict[str, Any] = {"column_A": a, "column_B": b}
    if or_equal:
        kwargs["or_equal"] = True
    return _E("expect_column_pair_values_a_to_be_greater_than_b", kwargs, severity)


def _required(*columns: str, severity: GateSeverity = CRITICAL) -> list[_E]:
    return [_not_null(c, severity) for c in columns]


def _referenced(column: str, parameter: str, *, nullable: bool = False) -> list[_E]:
    """``column`` ∈ the ids of another dataset (in-set ignores nulls: pair it with not-null)."""
    checks = [] if nullable else [_not_null(column)]
    return [*checks, _in_set(column, param(parameter))]


def _money(amount: str) -> list[_E]:
    return [
        _not_null(amount),
        _at_least_zero(amount),
        _not_null("currency"),
        _in_set("currency", param(P_CURRENCY_CODES)),
    ]


def _duration() -> list[_E]:
    return [_not_null("duration_minutes"), _in_set("duration_minutes", DURATION_VALUES)]


def _country() -> list[_E]:
    return [_not_null(PARTITION_COLUMN), _in_set(PARTITION_COLUMN, param(P_COUNTRY_CODES))]


def _row_counts() -> list[_E]:
    """Row count within bounds of the previous snapshot: a hard band (critical; a sudden drop
    blocks publishing) and a soft band (warning; mild growth or shrinkage is reported)."""
    return [
        _E(
            "expect_table_row_count_to_be_between",
            {"min_value": param(P_ROW_COUNT_MIN), "max_value": param(P_ROW_COUNT_MAX)},
            CRITICAL,
        ),
        _E(
            "expect_table_row_count_to_be_between",
            {"min_value": param(P_ROW_COUNT_WARN_MIN), "max_value": param(P_ROW_COUNT_WARN_MAX)},
            WARNING,
        ),
    ]


def _never_shrinks() -> _E:
    """Critical: at least as many rows as the published rows this publish replaces."""
    return _E("expect_table_row_count_to_be_between", {"min_value": param(P_PUBLISHED_ROW_COUNT)})


def _key(dataset: str) -> list[_E]:
    columns = KEY_COLUMNS[dataset]
    checks = _required(*columns)
    if len(columns) == 1:
        return [*checks, _unique(columns[0])]
    return [*checks, _compound_unique(columns)]


def _stamps(*columns: str) -> list[_E]:
    return _required(*columns, "extracted_at")


def _booking_checks(dataset: str) -> list[_E]:
    statuses = [s.value for s in BookingStatus]
    return [
        _columns(dataset),
        *_key(dataset),
        _not_null("external_reference"),
        _regex("external_reference", EXTERNAL_REFERENCE_PATTERN, WARNING),
        # Unique per client and never reused; the changes log holds several versions of one.
        *([_unique("external_reference", WARNING)] if dataset == "bookings" else []),
        _not_null("status"),
        _in_set("status", statuses),
        *_referenced("service_id", P_SERVICE_IDS),
        *_referenced("variant_id", P_VARIANT_IDS, nullable=True),
        *_referenced("zone_id", P_ZONE_IDS),
        _not_null("contractor_id"),
        *_required("scheduled_start", "scheduled_end"),
        _a_greater_than_b("scheduled_end", "scheduled_start", or_equal=False, severity=CRITICAL),
        *_required(
            "customer_first_name",
            "customer_last_name",
            "address_line1",
            "address_city",
            "address_region",
            severity=WARNING,
        ),
        # The API requires an e-mail or a phone: e-mail present wherever the phone is missing.
        _not_null(
            "customer_email",
            WARNING,
            row_condition="customer_phone.isnull()",
            condition_parser="pandas",
        ),
        _regex("customer_email", EMAIL_PATTERN, WARNING),
        _regex("customer_phone", PHONE_PATTERN, WARNING),
        _not_null("address_postal_code"),
        _regex("address_postal_code", param(P_POSTAL_CODE_REGEX)),
        _not_null("address_country"),
        _in_set("address_country", param(P_COUNTRY_CODES)),
        *_money("price"),
        # A booking in a stage belongs to that stage's project.
        _not_null(
            "project_id", WARNING, row_condition="stage_id.notnull()", condition_parser="pandas"
        ),
        *_stamps("created_at", "updated_at"),
        _a_greater_than_b("updated_at", "created_at", or_equal=True, severity=WARNING),
        _a_greater_than_b("extracted_at", "updated_at", or_equal=True, severity=WARNING),
        *_country(),
        *_row_counts(),
        *([_never_shrinks()] if dataset == "bookings" else []),
    ]


def _definitions() -> dict[str, list[_E]]:
    return {
        "categories": [
            _columns("categories"),
            *_key("categories"),
            _not_null("name"),
            *_referenced("parent_id", P_CATEGORY_IDS, nullable=True),
            _not_null("active"),
            *_stamps("updated_at"),
            *_country(),
            *_row_counts(),
        ],
        "services": [
            _columns("services"),
            *_key("services"),
            *_referenced("category_id", P_CATEGORY_IDS),
            _not_null("sku"),
            _unique("sku"),
            _not_null("name"),
            *_duration(),
            *_money("base_price"),
            *_required("requires_project", "active"),
            *_stamps("updated_at"),
            *_country(),
            *_row_counts(),
        ],
        "variants": [
            _columns("variants"),
            *_key("variants"),
            *_referenced("service_id", P_SERVICE_IDS),
            _not_null("sku"),
            _unique("sku"),
            _not_null("name"),
            *_money("price"),
            *_duration(),
            _not_null("active"),
            *_stamps("updated_at"),
            *_country(),
            *_row_counts(),
        ],
        "coverage_zones": [
            _columns("coverage_zones"),
            *_key("coverage_zones"),
            *_required("name", "region"),
            *(
                check
                for column in ("contractor_count", "postal_code_count", "service_count")
                for check in (_not_null(column), _at_least_zero(column))
            ),
            _not_null("active"),
            *_stamps("updated_at"),
            *_country(),
            *_row_counts(),
        ],
        "coverage_postal_codes": [
            _columns("coverage_postal_codes"),
            *_key("coverage_postal_codes"),
            _in_set("zone_id", param(P_ZONE_IDS)),
            _regex("postal_code", param(P_POSTAL_CODE_REGEX)),
            _in_set("service_id", param(P_SERVICE_IDS)),
            _not_null("zone_active"),
            *_stamps(),
            *_country(),
            *_row_counts(),
        ],
        "bookings": _booking_checks("bookings"),
        "booking_changes": _booking_checks("booking_changes"),
    }


def build_suite_dicts() -> dict[str, dict[str, Any]]:
    """Every dataset's suite as the JSON-ready dict written to ``schemas/expectations``."""
    suites: dict[str, dict[str, Any]] = {}
    for dataset, checks in _definitions().items():
        expectations: list[dict[str, Any]] = []
        for check in checks:  # shared helpers may repeat a check (e.g. a key column's not-null)
            if (entry := check.to_dict()) not in expectations:
                expectations.append(entry)
        suites[dataset] = {
            "name": dataset,
            "expectations": expectations,
            "meta": {
                "dataset": dataset,
                "key": list(KEY_COLUMNS[dataset]),
                "generated_by": "sodtrack.validation.suites",
            },
        }
    return suites


# ---------------------------------------------------------------- files


def suite_path(dataset: str, suites_dir: Path | None = None) -> Path:
    return (suites_dir or SUITES_DIR) / f"{dataset}.json"


def render_suite(suite: Mapping[str, Any]) -> str:
    """The exact text of a suite file (stable: reviewed diffs stay small)."""
    return json.dumps(suite, indent=2, ensure_ascii=False) + "\n"


def load_suite_dict(dataset: str, suites_dir: Path | None = None) -> dict[str, Any]:
    """Read one suite file (plain JSON; turning it into a GX suite is the runner's job)."""
    if dataset not in DATASET_COLUMNS:
        known = ", ".join(DATASETS)
        raise ValueError(f"unknown dataset {dataset!r}: expected one of {known}")
    data: dict[str, Any] = json.loads(suite_path(dataset, suites_dir).read_text(encoding="utf-8"))
    return data


def suite_parameters(suite: Mapping[str, Any]) -> set[str]:
    """Names of the ``$PARAMETER`` references a suite uses."""
    names: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, Mapping):
            if "$PARAMETER" in value:
                names.add(str(value["$PARAMETER"]))
                return
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for expectation in suite["expectations"]:
        walk(expectation["kwargs"])
    return names


def write_suites(suites_dir: Path | None = None) -> list[Path]:
    """(Re)generate the suite files from the definitions above."""
    target = suites_dir or SUITES_DIR
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for dataset, suite in build_suite_dicts().items():
        path = suite_path(dataset, target)
        path.write_text(render_suite(suite), encoding="utf-8")
        written.append(path)
    return written


def check_suites(suites_dir: Path | None = None, *, load_with_gx: bool = True) -> list[str]:
    """Problems with the suite files: stale or missing files, and (optionally) files GX refuses.

    Returns an empty list when every file equals its definition and loads into an
    ``ExpectationSuite``.
    """
    problems: list[str] = []
    for dataset, suite in build_suite_dicts().items():
        path = suite_path(dataset, suites_dir)
        if not path.exists():
            problems.append(f"{path}: missing")
            continue
        if path.read_text(encoding="utf-8") != render_suite(suite):
            problems.append(f"{path}: differs from sodtrack.validation.suites (run --write)")
        if load_with_gx:
            import great_expectations as gx

            try:
                gx.ExpectationSuite(**json.loads(path.read_text(encoding="utf-8")))
            except Exception as exc:
                problems.append(f"{path}: GX cannot load it: {exc}")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sodtrack.validation",
        description="Write or check the GX suite files under schemas/expectations.",
    )
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", action="store_true", help="regenerate the JSON files")
    action.add_argument("--check", action="store_true", help="fail if the files are stale")
    parser.add_argument("--dir", type=Path, default=None, help="suites folder (default: repo)")
    args = parser.parse_args(argv)
    if args.write:
        for path in write_suites(args.dir):
            print(f"wrote {path}")
        return 0
    problems = check_suites(args.dir)
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print(f"{len(DATASETS)} suites up to date and loadable by Great Expectations")
    return 1 if problems else 0
