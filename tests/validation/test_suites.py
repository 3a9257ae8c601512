"""Golden tests of the reviewed suite files under schemas/expectations.

``golden/suites.txt`` pins every expectation (dataset, severity, type, kwargs) one per line:
a change of a suite shows up as a readable diff of that file. Regenerate it, after review,
with ``UPDATE_GOLDEN=1 uv run pytest tests/validation/test_suites.py``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from sodtrack.contract.models import BookingStatus
from sodtrack.validation.suites import (
    DATASETS,
    KEY_COLUMNS,
    build_suite_dicts,
    check_suites,
    expected_columns,
    load_suite_dict,
    suite_parameters,
)
from sodtrack.warehouse.schemas import get_spec

GOLDEN = Path(__file__).parent / "golden" / "suites.txt"


def _summary() -> str:
    lines = []
    for dataset in DATASETS:
        for e in load_suite_dict(dataset)["expectations"]:
            kwargs = json.dumps(e["kwargs"], sort_keys=True, ensure_ascii=False)
            scope = e["meta"].get("scope", "per_row")
            lines.append(f"{dataset} | {e['severity']} | {scope} | {e['type']} | {kwargs}")
    return "\n".join(lines) + "\n"


def _expectations(dataset: str) -> list[dict[str, Any]]:
    return list(load_suite_dict(dataset)["expectations"])


def _find(dataset: str, type_: str, **kwargs: Any) -> list[dict[str, Any]]:
    return [
        e
        for e in _expectations(dataset)
        if e["type"] == type_ and all(e["kwargs"].get(k) == v for k, v in kwargs.items())
    ]


def test_suite_files_are_generated_from_the_definitions() -> None:
    assert check_suites(load_with_gx=False) == []


def test_suite_files_match_the_reviewed_golden_summary() -> None:
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(_summary(), encoding="utf-8")
    assert _summary() == GOLDEN.read_text(encoding="utf-8")


@pytest.mark.parametrize("dataset", DATASETS)
def test_each_file_loads_into_a_gx_suite(dataset: str, gx_context: Any) -> None:
    import great_expectations as gx

    data = load_suite_dict(dataset)
    suite = gx.ExpectationSuite(**data)
    assert suite.name == dataset
    assert [e.expectation_type for e in suite.expectations] == [
        e["type"] for e in data["expectations"]
    ]
    assert [str(e.severity.value) for e in suite.expectations] == [
        e["severity"] for e in data["expectations"]
    ]
    assert set(data) == {"name", "expectations", "meta"}
    assert all(set(e) == {"type", "kwargs", "meta", "severity"} for e in data["expectations"])


@pytest.mark.parametrize("dataset", DATASETS)
def test_exact_column_set_is_the_warehouse_schema_plus_country(dataset: str) -> None:
    spec = get_spec(dataset)
    (check,) = _find(dataset, "expect_table_columns_to_match_set")
    assert check["kwargs"] == {
        "column_set": [*(f.name for f in spec.fields), "country"],
        "exact_match": True,
    }
    assert check["severity"] == "critical"
    assert expected_columns(dataset) == check["kwargs"]["column_set"]


@pytest.mark.parametrize("dataset", DATASETS)
def test_keys_are_critical_not_null_and_unique(dataset: str) -> None:
    key = list(KEY_COLUMNS[dataset])
    for column in key:
        (check,) = _find(dataset, "expect_column_values_to_not_be_null", column=column)
        assert check["severity"] == "critical"
    if len(key) == 1:
        (check,) = _find(dataset, "expect_column_values_to_be_unique", column=key[0])
    else:
        (check,) = _find(dataset, "expect_compound_columns_to_be_unique", column_list=key)
    assert check["severity"] == "critical"


REFERENCES = {
    "categories": {("parent_id", "category_ids")},
    "services": {("category_id", "category_ids")},
    "variants": {("service_id", "service_ids")},
    "coverage_zones": set(),
    "coverage_postal_codes": {("zone_id", "zone_ids"), ("service_id", "service_ids")},
    "bookings": {
        ("service_id", "service_ids"),
        ("variant_id", "variant_ids"),
        ("zone_id", "zone_ids"),
    },
}
REFERENCES["booking_changes"] = REFERENCES["bookings"]


@pytest.mark.parametrize("dataset", DATASETS)
def test_referential_integrity_through_parameters(dataset: str) -> None:
    found = {
        (e["kwargs"]["column"], e["kwargs"]["value_set"]["$PARAMETER"])
        for e in _find(dataset, "expect_column_values_to_be_in_set")
        if isinstance(e["kwargs"]["value_set"], dict)
        and e["kwargs"]["value_set"]["$PARAMETER"].endswith("_ids")
    }
    assert found == REFERENCES[dataset]
    for column, _ in found:
        assert (
            _find(dataset, "expect_column_values_to_be_in_set", column=column)[0]["severity"]
            == "critical"
        )


@pytest.mark.parametrize("dataset", DATASETS)
def test_in_set_and_regex_checks_are_paired_with_not_null(dataset: str) -> None:
    """In-set/regex ignore nulls: every such column is checked not-null, unless the schema
    says it is optional."""
    spec = get_spec(dataset)
    nullable = {f.name for f in spec.fields if f.nullable}
    not_null = {
        e["kwargs"]["column"]
        for e in _find(dataset, "expect_column_values_to_not_be_null")
        if "row_condition" not in e["kwargs"]
    }
    for e in _expectations(dataset):
        if e["type"] in {
            "expect_column_values_to_be_in_set",
            "expect_column_values_to_match_regex",
        }:
            column = e["kwargs"]["column"]
            assert column in not_null or column in nullable, f"{dataset}.{column}"


@pytest.mark.parametrize("dataset", DATASETS)
def test_country_currency_and_row_counts(dataset: str) -> None:
    (country,) = _find(dataset, "expect_column_values_to_be_in_set", column="country")
    assert country["kwargs"]["value_set"] == {"$PARAMETER": "country_codes"}
    rows = _find(dataset, "expect_table_row_count_to_be_between")
    floor = {  # bookings are never deleted: the dataset may not shrink (critical)
        ("critical", '{"min_value": {"$PARAMETER": "published_row_count"}}'),
    }
    assert {(r["severity"], json.dumps(r["kwargs"], sort_keys=True)) for r in rows} == (
        floor if dataset == "bookings" else set()
    ) | {
        (
            "critical",
            '{"max_value": {"$PARAMETER": "row_count_max"}, '
            '"min_value": {"$PARAMETER": "row_count_min"}}',
        ),
        (
            "warning",
            '{"max_value": {"$PARAMETER": "row_count_warn_max"}, '
            '"min_value": {"$PARAMETER": "row_count_warn_min"}}',
        ),
    }
    money = {"services": "base_price", "variants": "price", "bookings": "price"}
    money["booking_changes"] = "price"
    if dataset in money:
        (amount,) = _find(dataset, "expect_column_values_to_be_between", column=money[dataset])
        assert amount["kwargs"]["min_value"] == 0
        assert amount["severity"] == "critical"
        (currency,) = _find(dataset, "expect_column_values_to_be_in_set", column="currency")
        assert currency["kwargs"]["value_set"] == {"$PARAMETER": "currency_codes"}
        assert currency["severity"] == "critical"


@pytest.mark.parametrize("dataset", ["bookings", "booking_changes"])
def test_booking_statuses_times_and_postal_codes(dataset: str) -> None:
    (status,) = _find(dataset, "expect_column_values_to_be_in_set", column="status")
    assert status["kwargs"]["value_set"] == [s.value for s in BookingStatus]
    assert status["severity"] == "critical"
    (times,) = _find(
        dataset,
        "expect_column_pair_values_a_to_be_greater_than_b",
        column_A="scheduled_end",
        column_B="scheduled_start",
    )
    assert "or_equal" not in times["kwargs"]
    assert times["severity"] == "critical"
    (postal,) = _find(dataset, "expect_column_values_to_match_regex", column="address_postal_code")
    assert postal["kwargs"]["regex"] == {"$PARAMETER": "postal_code_regex"}
    assert postal["severity"] == "critical"


def test_durations_are_multiples_of_thirty() -> None:
    for dataset in ("services", "variants"):
        (check,) = _find(dataset, "expect_column_values_to_be_in_set", column="duration_minutes")
        values = check["kwargs"]["value_set"]
        assert values[0] == 30
        assert values[-1] == 1440
        assert all(v % 30 == 0 for v in values)


def test_parameters_used_by_the_suites() -> None:
    common = {
        "country_codes",
        "row_count_min",
        "row_count_max",
        "row_count_warn_min",
        "row_count_warn_max",
    }
    suites = build_suite_dicts()
    booking = common | {
        "currency_codes",
        "postal_code_regex",
        "service_ids",
        "variant_ids",
        "zone_ids",
    }
    assert {name: suite_parameters(s) for name, s in suites.items()} == {
        "categories": common | {"category_ids"},
        "services": common | {"category_ids", "currency_codes"},
        "variants": common | {"service_ids", "currency_codes"},
        "coverage_zones": common,
        "coverage_postal_codes": common | {"zone_ids", "service_ids", "postal_code_regex"},
        "bookings": booking | {"published_row_count"},
        "booking_changes": booking,
    }


@pytest.mark.parametrize("dataset", DATASETS)
def test_whole_dataset_scope_marks_exactly_the_dataset_level_checks(dataset: str) -> None:
    """Uniqueness, row counts and sibling-id sets are marked ``whole_dataset`` in the file (the
    runner evaluates them in DuckDB over the whole dataset); per-row checks are not."""
    references = {"category_ids", "service_ids", "variant_ids", "zone_ids"}
    for e in _expectations(dataset):
        value_set = e["kwargs"].get("value_set")
        dataset_level = e["type"] in {
            "expect_column_values_to_be_unique",
            "expect_compound_columns_to_be_unique",
            "expect_table_row_count_to_be_between",
        } or (isinstance(value_set, dict) and value_set.get("$PARAMETER") in references)
        assert (e["meta"].get("scope") == "whole_dataset") == dataset_level, e
