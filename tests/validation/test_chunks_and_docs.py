"""Postal codes per country, chunked validation (bounded memory) and Data Docs."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from sodtrack.contract.countries import COUNTRIES
from sodtrack.validation import ValidationSession, reference_parameters, validate_dataset

from .samples import clean_rows, clean_tables, table

BAD_POSTAL_CODES = {
    "cl": ["750000", "75000000", "7500-000"],
    "pe": ["1507", "150740", "15074-1"],
    "co": ["11011", "1101110", "11O111"],
    "mx": ["6700", "067000", "06700-1"],  # a spreadsheet stripped the leading zero
    "ar": ["1425", "c1425dkf", "C1425DK", "C 1425DKF"],
    "br": ["01310100", "1310-100", "01310-10"],
    "uy": ["1100", "110000", "11000 "],
}


@pytest.mark.parametrize("country", sorted(COUNTRIES))
def test_postal_codes_follow_the_country_format(country: str, session: ValidationSession) -> None:
    """Valid codes of the country pass (MX ``06700``, BR ``01310-100``, AR ``C1425DKF``),
    malformed ones are critical failures; other countries' formats are malformed too."""
    tables = clean_tables(country)
    rows = clean_rows(country)["coverage_postal_codes"]
    valid = sorted({r["postal_code"] for r in rows})
    assert COUNTRIES[country].postal_code_example in valid
    foreign = {
        c.postal_code_example
        for c in COUNTRIES.values()
        if not COUNTRIES[country].is_valid_postal_code(c.postal_code_example)
    }
    bad = BAD_POSTAL_CODES[country] + sorted(foreign)
    template = rows[0]
    rows += [{**template, "postal_code": code} for code in bad]
    params = reference_parameters(services=tables["services"], zones=tables["coverage_zones"])
    outcome = session.validate(
        "coverage_postal_codes",
        table("coverage_postal_codes", rows),
        country=country,
        parameters=params,
    )
    (regex,) = [r for r in outcome.results if r.type == "expect_column_values_to_match_regex"]
    assert regex.severity == "critical"
    assert not regex.success
    assert regex.unexpected_count == len(bad)
    assert sorted(regex.partial_unexpected_list) == sorted(bad)
    assert [r.label for r in outcome.critical_failures] == [regex.label]


def test_duplicate_id_across_two_chunks(
    session: ValidationSession, cl_tables: dict[str, pa.Table], cl_params: dict[str, list[str]]
) -> None:
    """Each chunk is clean on its own; the repeat is caught across chunks. The row count is
    judged on the total (each chunk alone is below the bound)."""
    rows = clean_rows("cl", bookings=12)["bookings"]
    rows[7]["id"] = rows[2]["id"]
    first, second = table("bookings", rows[:6]), table("bookings", rows[6:])
    outcome = session.validate(
        "bookings",
        iter([first, second]),
        country="cl",
        parameters=cl_params,
        previous_row_count=12,
        batch_rows=6,  # one GX run per chunk
    )
    assert (outcome.chunks, outcome.batches, outcome.row_count) == (2, 2, 12)
    assert not outcome.success
    (failure,) = outcome.critical_failures
    assert (failure.type, failure.column) == ("expect_column_values_to_be_unique", "id")
    assert failure.unexpected_count == 2  # as in GX: every occurrence of a repeated value
    assert failure.partial_unexpected_list == [rows[2]["id"]] * 2
    (row_count,) = [
        r
        for r in outcome.results
        if r.type == "expect_table_row_count_to_be_between"
        and r.severity == "critical"
        and "published_row_count" in r.parameters
    ]
    assert row_count.success
    assert row_count.observed_value == 12
    assert outcome.parameters["published_row_count"] == 12


def test_chunked_compound_key_and_row_count_drop(
    session: ValidationSession, cl_tables: dict[str, pa.Table], cl_params: dict[str, list[str]]
) -> None:
    data = cl_tables["coverage_postal_codes"]
    chunks = [data.slice(0, 3), data.slice(3), data.slice(1, 1)]  # row 1 again
    outcome = session.validate(
        "coverage_postal_codes",
        chunks,
        country="cl",
        parameters=cl_params,
        previous_row_count=100,
        batch_rows=4,  # batches: rows 0-3, then 4-5 + row 1 again
    )
    assert (outcome.chunks, outcome.batches, outcome.row_count) == (3, 2, 7)
    assert {(r.type, r.severity) for r in outcome.critical_failures} == {
        ("expect_compound_columns_to_be_unique", "critical"),
        ("expect_table_row_count_to_be_between", "critical"),
    }


def test_empty_iterable_of_changes(
    session: ValidationSession, cl_params: dict[str, list[str]]
) -> None:
    outcome = session.validate("booking_changes", iter([]), country="cl", parameters=cl_params)
    assert outcome.success
    assert outcome.row_count == 0
    assert outcome.chunks == 0
    assert outcome.batches == 1


def test_data_docs_for_a_run(
    tmp_path: Path,
    session: ValidationSession,
    cl_tables: dict[str, pa.Table],
    cl_params: dict[str, list[str]],
) -> None:
    """Two GX runs (one per chunk) and one validation page: the aggregate replaced them."""
    variants = cl_tables["variants"]
    outcome = validate_dataset(
        "variants",
        [variants.slice(0, 2), variants.slice(2)],
        country="cl",
        parameters=cl_params,
        previous_row_count=3,
        docs_dir=tmp_path,
        session=session,
        batch_rows=2,
    )
    assert outcome.success
    assert outcome.batches == 2
    index = tmp_path / "pytest-validation" / "index.html"
    assert outcome.docs_path == index
    assert index.is_file()
    (page,) = (tmp_path / "pytest-validation" / "validations" / "variants").rglob("*.html")
    html = page.read_text(encoding="utf-8")
    assert "Must have exactly these columns" in html
    assert "rows" in html
    assert "variants" in index.read_text(encoding="utf-8")
    assert '"docs_path"' in outcome.to_json()
