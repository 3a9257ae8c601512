"""Run-time values of the suites' ``$PARAMETER`` references (plain Python, no GX import).

* country facts: ``country_parameters("mx")``;
* referential integrity: ``reference_parameters(categories=..., services=..., ...)`` collects
  the ids of the sibling datasets of the same run (or of the currently published version);
* row-count bounds: ``row_count_parameters(dataset, previous_row_count)`` applies the
  dataset's ``RowCountPolicy``;
* the bookings floor: ``published_row_count_parameters(rows)``, the published rows a staging
  replaces (``parameters_for`` defaults it to ``previous_row_count`` when not given).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

import pyarrow as pa
import pyarrow.compute as pc

from sodtrack.contract.countries import get_country
from sodtrack.validation.suites import (
    P_CATEGORY_IDS,
    P_COUNTRY_CODES,
    P_CURRENCY_CODES,
    P_POSTAL_CODE_REGEX,
    P_PUBLISHED_ROW_COUNT,
    P_ROW_COUNT_MAX,
    P_ROW_COUNT_MIN,
    P_ROW_COUNT_WARN_MAX,
    P_ROW_COUNT_WARN_MIN,
    P_SERVICE_IDS,
    P_VARIANT_IDS,
    P_ZONE_IDS,
)

IdSource: TypeAlias = pa.Table | Iterable[pa.Table] | Iterable[str]
"""Where reference ids come from: a dataset (its ``id`` column) or the ids themselves."""


@dataclass(frozen=True, slots=True)
class RowCountPolicy:
    """How far a dataset's row count may move from the previous snapshot's.

    The critical band is ``[previous × (1 − max_drop), previous × (1 + max_growth)]`` (outside
    it, publishing is blocked); the warning band, narrower, uses ``warn_drop``/``warn_growth``.
    ``None`` leaves that side unbounded. Without a previous snapshot only
    ``min_without_previous`` applies (critical).
    """

    max_drop: float | None = 0.2
    max_growth: float | None = 2.0
    warn_drop: float | None = 0.05
    warn_growth: float | None = 0.25
    min_without_previous: int | None = 1


ROW_COUNT_POLICIES: Final[dict[str, RowCountPolicy]] = {
    # Reference data, full snapshots: never empty; a sudden drop (> 20 %) is an error.
    "categories": RowCountPolicy(),
    "services": RowCountPolicy(),
    "variants": RowCountPolicy(),
    "coverage_zones": RowCountPolicy(),
    "coverage_postal_codes": RowCountPolicy(),
    # All bookings the client sees: the API never deletes one, so *any* drop blocks, through
    # the suite's own ``published_row_count`` expectation (``published_row_count_parameters``);
    # the band only bounds growth. A first run may legitimately have none.
    "bookings": RowCountPolicy(
        max_drop=None, max_growth=3.0, warn_drop=None, warn_growth=0.5, min_without_previous=None
    ),
    # One run's changes: their number follows business activity, not the previous run.
    "booking_changes": RowCountPolicy(
        max_drop=None, max_growth=None, warn_drop=None, warn_growth=None, min_without_previous=None
    ),
}


def row_count_parameters(
    dataset: str, previous_row_count: int | None, policy: RowCountPolicy | None = None
) -> dict[str, int | None]:
    """The four row-count bounds of a dataset given the previous snapshot's row count."""
    policy = policy or ROW_COUNT_POLICIES[dataset]
    if previous_row_count is None:
        return {
            P_ROW_COUNT_MIN: policy.min_without_previous,
            P_ROW_COUNT_MAX: None,
            P_ROW_COUNT_WARN_MIN: None,
            P_ROW_COUNT_WARN_MAX: None,
        }
    if previous_row_count < 0:
        raise ValueError(f"previous_row_count must be >= 0, got {previous_row_count}")

    def low(drop: float | None) -> int | None:
        return None if drop is None else math.floor(previous_row_count * (1 - drop))

    def high(growth: float | None) -> int | None:
        # Growth from an empty snapshot has no meaningful ceiling.
        if growth is None or previous_row_count == 0:
            return None
        return math.ceil(previous_row_count * (1 + growth))

    hard_min = low(policy.max_drop)
    if policy.min_without_previous is not None:
        hard_min = max(hard_min or 0, policy.min_without_previous)
    return {
        P_ROW_COUNT_MIN: hard_min,
        P_ROW_COUNT_MAX: high(policy.max_growth),
        P_ROW_COUNT_WARN_MIN: low(policy.warn_drop),
        P_ROW_COUNT_WARN_MAX: high(policy.warn_growth),
    }


def published_row_count_parameters(published_rows: int | None) -> dict[str, int | None]:
    """The floor of a ``bookings`` staging: the published rows its publish replaces
    (``None``: nothing published yet, no floor)."""
    if published_rows is not None and published_rows < 0:
        raise ValueError(f"published_rows must be >= 0, got {published_rows}")
    return {P_PUBLISHED_ROW_COUNT: published_rows}


def country_parameters(country: str) -> dict[str, Any]:
    """Currency, postal-code format and code of a country, as the suites reference them."""
    c = get_country(country)
    return {
        P_COUNTRY_CODES: [c.code],
        P_CURRENCY_CODES: [c.currency],
        P_POSTAL_CODE_REGEX: c.postal_code_pattern,
    }


def collect_ids(source: IdSource, column: str = "id") -> list[str]:
    """Distinct non-null values of ``column`` over a table or chunks (or ids given as such)."""
    if isinstance(source, pa.Table):
        source = [source]
    ids: set[str] = set()
    for item in source:
        if isinstance(item, pa.Table):
            values = pc.unique(item.column(column).combine_chunks()).drop_null()
            ids.update(str(v) for v in values.to_pylist())
        elif isinstance(item, str):
            ids.add(item)
        else:
            raise TypeError(f"expected pyarrow Tables or id strings, got {type(item).__name__}")
    return sorted(ids)


def reference_parameters(
    *,
    categories: IdSource | None = None,
    services: IdSource | None = None,
    variants: IdSource | None = None,
    zones: IdSource | None = None,
) -> dict[str, list[str]]:
    """Referential-integrity parameters from the sibling datasets of the same run.

    Pass the catalog/coverage tables of the run (or of the current published version, for an
    incremental bookings run): ``reference_parameters(services=services_table, ...)``.
    """
    sources: Mapping[str, IdSource | None] = {
        P_CATEGORY_IDS: categories,
        P_SERVICE_IDS: services,
        P_VARIANT_IDS: variants,
        P_ZONE_IDS: zones,
    }
    return {name: collect_ids(src) for name, src in sources.items() if src is not None}
