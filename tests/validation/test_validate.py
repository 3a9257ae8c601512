"""Each suite passes on clean data and fails, with the right expectation and severity, on
injected defects.

To stay fast (a bookings run costs ~1 s of GX overhead), the defects of one dataset are
injected into one table on different rows and validated once (module fixture); one test per
defect then looks for its failure, and one per dataset checks nothing else failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from sodtrack.validation import ValidationOutcome, ValidationSession, reference_parameters
from sodtrack.validation.outcome import ExpectationOutcome

from .samples import Row, clean_rows, table

UNIQUE = "expect_column_values_to_be_unique"
COMPOUND_UNIQUE = "expect_compound_columns_to_be_unique"
NOT_NULL = "expect_column_values_to_not_be_null"
IN_SET = "expect_column_values_to_be_in_set"
REGEX = "expect_column_values_to_match_regex"
BETWEEN = "expect_column_values_to_be_between"
PAIR = "expect_column_pair_values_a_to_be_greater_than_b"
ROW_COUNT = "expect_table_row_count_to_be_between"
COLUMNS = "expect_table_columns_to_match_set"

MISSING = object()


@dataclass(frozen=True)
class Defect:
    name: str
    dataset: str
    row: int | None
    """Row to mutate; ``None`` appends a copy of row 0 with the changes."""
    changes: dict[str, Any]
    type: str
    target: str
    """The column (or ``a,b`` for pair/compound expectations) the failure names."""
    bad_value: Any = MISSING
    severity: str = "critical"


DEFECTS = [
    # bookings: one defect per row
    Defect("duplicate id", "bookings", 1, {"id": "bkg_000000"}, UNIQUE, "id", "bkg_000000"),
    Defect("null id", "bookings", 2, {"id": None}, NOT_NULL, "id", None),
    Defect(
        "dangling service",
        "bookings",
        3,
        {"service_id": "svc_999"},
        IN_SET,
        "service_id",
        "svc_999",
    ),
    Defect("dangling zone", "bookings", 4, {"zone_id": "zone_999"}, IN_SET, "zone_id", "zone_999"),
    Defect(
        "dangling variant",
        "bookings",
        5,
        {"variant_id": "var_999"},
        IN_SET,
        "variant_id",
        "var_999",
    ),
    Defect(
        "bad postal code",
        "bookings",
        6,
        {"address_postal_code": "750000"},
        REGEX,
        "address_postal_code",
        "750000",
    ),
    Defect("negative price", "bookings", 7, {"price": Decimal("-1.00")}, BETWEEN, "price", "-1.00"),
    Defect("wrong currency", "bookings", 8, {"currency": "USD"}, IN_SET, "currency", "USD"),
    Defect(
        "end equals start",
        "bookings",
        9,
        {"scheduled_end": "start"},
        PAIR,
        "scheduled_end,scheduled_start",
    ),
    Defect("unknown status", "bookings", 10, {"status": "lost"}, IN_SET, "status", "lost"),
    Defect(
        "foreign address",
        "bookings",
        11,
        {"address_country": "pe"},
        IN_SET,
        "address_country",
        "pe",
    ),
    # booking_changes
    Defect(
        "duplicate version",
        "booking_changes",
        1,
        {"id": "bkg_000000", "updated_at": "row0"},
        COMPOUND_UNIQUE,
        "run_id,id,updated_at",
    ),
    Defect("null run id", "booking_changes", 2, {"run_id": None}, NOT_NULL, "run_id", None),
    Defect(
        "end before start",
        "booking_changes",
        3,
        {"scheduled_end": "before"},
        PAIR,
        "scheduled_end,scheduled_start",
    ),
    # categories: appended rows (mutating one would orphan its children)
    Defect("duplicate category", "categories", None, {}, UNIQUE, "id", "cat_001"),
    Defect("null category id", "categories", None, {"id": None}, NOT_NULL, "id", None),
    Defect(
        "dangling parent",
        "categories",
        None,
        {"id": "cat_009", "parent_id": "cat_999"},
        IN_SET,
        "parent_id",
        "cat_999",
    ),
    # services
    Defect(
        "dangling category",
        "services",
        0,
        {"category_id": "cat_999"},
        IN_SET,
        "category_id",
        "cat_999",
    ),
    Defect(
        "duration not multiple of 30",
        "services",
        0,
        {"duration_minutes": 45},
        IN_SET,
        "duration_minutes",
        45,
    ),
    Defect(
        "negative base price",
        "services",
        1,
        {"base_price": Decimal("-5.00")},
        BETWEEN,
        "base_price",
        "-5.00",
    ),
    Defect(
        "duplicate sku", "services", 1, {"sku": "INST-AC-12000"}, UNIQUE, "sku", "INST-AC-12000"
    ),
    Defect("services currency", "services", 2, {"currency": "ARS"}, IN_SET, "currency", "ARS"),
    # variants
    Defect(
        "variant of unknown service",
        "variants",
        0,
        {"service_id": "svc_999"},
        IN_SET,
        "service_id",
        "svc_999",
    ),
    Defect("duplicate variant id", "variants", 1, {"id": "var_001"}, UNIQUE, "id", "var_001"),
    Defect("null variant currency", "variants", 2, {"currency": None}, NOT_NULL, "currency", None),
    # coverage_zones
    Defect(
        "negative contractors",
        "coverage_zones",
        0,
        {"contractor_count": -1},
        BETWEEN,
        "contractor_count",
        -1,
    ),
    Defect("null zone id", "coverage_zones", 1, {"id": None}, NOT_NULL, "id", None),
    # coverage_postal_codes
    Defect(
        "unknown zone",
        "coverage_postal_codes",
        0,
        {"zone_id": "zone_999"},
        IN_SET,
        "zone_id",
        "zone_999",
    ),
    Defect(
        "unknown service",
        "coverage_postal_codes",
        1,
        {"service_id": "svc_999"},
        IN_SET,
        "service_id",
        "svc_999",
    ),
    Defect(
        "malformed postal code",
        "coverage_postal_codes",
        2,
        {"postal_code": "75000-00"},
        REGEX,
        "postal_code",
        "75000-00",
    ),
    Defect(
        "duplicate zone x code x service",
        "coverage_postal_codes",
        3,
        {"copy_key_of": 4},
        COMPOUND_UNIQUE,
        "zone_id,postal_code,service_id",
    ),
    Defect(
        "null postal code",
        "coverage_postal_codes",
        5,
        {"postal_code": None},
        NOT_NULL,
        "postal_code",
        None,
    ),
]


def _apply(rows: list[Row], defect: Defect) -> None:
    if defect.row is None:
        rows.append({**rows[0], **defect.changes})
        return
    row = rows[defect.row]
    for column, value in defect.changes.items():
        if column == "copy_key_of":
            other = rows[value]
            row.update({k: other[k] for k in ("zone_id", "postal_code", "service_id")})
        elif value == "start":
            row[column] = row["scheduled_start"]
        elif value == "before":
            row[column] = row["scheduled_start"] - timedelta(minutes=30)
        elif value == "row0":
            row[column] = rows[0][column]
        else:
            row[column] = value


def find(outcome: ValidationOutcome, type_: str, target: str) -> ExpectationOutcome:
    matches = [
        r
        for r in outcome.results
        if r.type == type_ and (r.column == target or ",".join(r.columns or []) == target)
    ]
    assert len(matches) == 1, (type_, target, matches)
    return matches[0]


def failed(outcome: ValidationOutcome) -> set[tuple[str, str, str]]:
    return {
        (r.type, r.column or ",".join(r.columns or []), r.severity)
        for r in outcome.results
        if not r.success
    }


@pytest.fixture(scope="module")
def defective(
    session: ValidationSession, cl_params: dict[str, list[str]]
) -> dict[str, ValidationOutcome]:
    """Every dataset with all its defects injected, validated once."""
    outcomes = {}
    for dataset in sorted({d.dataset for d in DEFECTS}):
        rows = clean_rows("cl", bookings=12)[dataset]
        for defect in DEFECTS:
            if defect.dataset == dataset:
                _apply(rows, defect)
        params = dict(cl_params)
        if dataset == "categories":
            params.pop("category_ids")  # derived from the table itself
        outcomes[dataset] = session.validate(
            dataset, table(dataset, rows), country="cl", parameters=params
        )
    return outcomes


@pytest.mark.parametrize("dataset", sorted({d.dataset for d in DEFECTS}))
def test_clean_dataset_passes(
    dataset: str,
    session: ValidationSession,
    cl_tables: dict[str, pa.Table],
    cl_params: dict[str, list[str]],
) -> None:
    data = cl_tables[dataset]
    if dataset == "categories":  # read back from a hive layout: date key present, dropped
        data = data.append_column("snapshot_date", pa.array(["2026-11-28"] * data.num_rows))
    if dataset == "coverage_zones":  # partition columns come dictionary-encoded
        i = data.schema.get_field_index("country")
        data = data.set_column(i, "country", pc.dictionary_encode(data.column("country")))
    outcome = session.validate(
        dataset, data, country="cl", parameters=cl_params, previous_row_count=data.num_rows
    )
    assert outcome.success, outcome.to_json()
    assert outcome.critical_failures == []
    assert outcome.warnings == []
    assert outcome.row_count == data.num_rows
    assert outcome.chunks == 1
    assert outcome.statistics["unsuccessful_expectations"] == 0


@pytest.mark.parametrize("defect", DEFECTS, ids=[d.name for d in DEFECTS])
def test_defect_fails_the_right_expectation(
    defect: Defect, defective: dict[str, ValidationOutcome]
) -> None:
    outcome = defective[defect.dataset]
    result = find(outcome, defect.type, defect.target)
    assert not result.success
    assert result.severity == defect.severity
    assert result.unexpected_count
    assert result.unexpected_count >= 1
    if defect.bad_value is not MISSING:
        assert defect.bad_value in result.partial_unexpected_list
    assert not outcome.success
    assert result in outcome.critical_failures


@pytest.mark.parametrize("dataset", sorted({d.dataset for d in DEFECTS}))
def test_defects_cause_no_collateral_failures(
    dataset: str, defective: dict[str, ValidationOutcome]
) -> None:
    expected = {(d.type, d.target, d.severity) for d in DEFECTS if d.dataset == dataset}
    assert failed(defective[dataset]) == expected


def test_row_count_drop_beyond_bound_is_critical(
    session: ValidationSession, cl_tables: dict[str, pa.Table], cl_params: dict[str, list[str]]
) -> None:
    outcome = session.validate(
        "categories",
        cl_tables["categories"],
        country="cl",
        parameters=cl_params,
        previous_row_count=100,
    )
    assert not outcome.success
    assert failed(outcome) == {(ROW_COUNT, "", "critical"), (ROW_COUNT, "", "warning")}
    assert outcome.critical_failures[0].observed_value == 4
    assert outcome.parameters["row_count_min"] == 80


def test_mild_growth_is_only_a_warning(
    session: ValidationSession, cl_tables: dict[str, pa.Table], cl_params: dict[str, list[str]]
) -> None:
    outcome = session.validate(
        "categories",
        cl_tables["categories"],
        country="cl",
        parameters=cl_params,
        previous_row_count=2,
    )
    assert outcome.success
    assert failed(outcome) == {(ROW_COUNT, "", "warning")}
    assert [w.observed_value for w in outcome.warnings] == [4]


def test_warnings_do_not_fail(session: ValidationSession, cl_params: dict[str, list[str]]) -> None:
    rows = clean_rows("cl", bookings=12)["bookings"]
    rows[0]["customer_email"] = "not-an-email"
    rows[1]["customer_phone"] = "56 9 1234"
    rows[2]["customer_first_name"] = None
    rows[3]["updated_at"] = rows[3]["created_at"] - timedelta(hours=1)
    rows[4]["external_reference"] = "OPS 2026/11"
    rows[5].update(customer_email=None, customer_phone=None)
    rows[6]["stage_id"] = "stg_001"
    rows[7]["external_reference"] = rows[8]["external_reference"]
    outcome = session.validate(
        "bookings", table("bookings", rows), country="cl", parameters=cl_params
    )
    assert outcome.success, outcome.to_json()
    assert outcome.critical_failures == []
    assert failed(outcome) == {
        (REGEX, "customer_email", "warning"),
        (REGEX, "customer_phone", "warning"),
        (NOT_NULL, "customer_first_name", "warning"),
        (PAIR, "updated_at,created_at", "warning"),
        (REGEX, "external_reference", "warning"),
        (NOT_NULL, "customer_email", "warning"),  # neither e-mail nor phone
        (NOT_NULL, "project_id", "warning"),  # in a stage without a project
        (UNIQUE, "external_reference", "warning"),
    }
    assert '"success": true' in outcome.to_json()


def test_missing_and_extra_columns_are_critical(
    session: ValidationSession, cl_tables: dict[str, pa.Table], cl_params: dict[str, list[str]]
) -> None:
    data = (
        cl_tables["categories"]
        .drop_columns(["name"])
        .append_column("surprise", pa.array([1, 2, 3, 4]))
    )
    outcome = session.validate("categories", data, country="cl", parameters=cl_params)
    assert not outcome.success
    columns = find(outcome, COLUMNS, "")
    assert not columns.success
    assert columns.severity == "critical"
    name = find(outcome, NOT_NULL, "name")
    assert not name.success
    assert name.exception


def test_missing_reference_parameters_are_refused(
    session: ValidationSession, cl_tables: dict[str, pa.Table]
) -> None:
    with pytest.raises(ValueError, match=r"missing suite parameters \['service_ids'"):
        session.validate(
            "bookings",
            cl_tables["bookings"],
            country="cl",
            parameters=reference_parameters(variants=cl_tables["variants"], zones=["zone_001"]),
        )
    with pytest.raises(ValueError, match="unknown dataset"):
        session.validate("orders", cl_tables["bookings"], country="cl")
    with pytest.raises(ValueError, match="unknown country"):
        session.validate("categories", cl_tables["categories"], country="xx")
