"""The column spec (``schemas/bulkload/columns.yaml``): its derived tables pinned, every column
used by each part that should use it, and a malformed spec refused naming its entry."""

from __future__ import annotations

import copy
import csv
import inspect
import json
import types
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import pytest
import yaml
from openpyxl import load_workbook
from starlette.applications import Starlette

from bulkload.helpers import SIM_TODAY, sim_client
from sodtrack.bulkload import ALIASES, CANONICAL_COLUMNS, PAYMENT_COLUMNS, read_upload
from sodtrack.bulkload.columns import (
    SPEC,
    SPEC_PATH,
    ColumnSpecError,
    ColumnType,
    derived_tables,
    load_column_spec,
)
from sodtrack.bulkload.engine.plan import PlanRow
from sodtrack.bulkload.reading import headers
from sodtrack.bulkload.reading.rows import (
    INTERPRETED_FIELDS,
    NOTED_TEXT_PARSERS,
    PLAIN_TEXT_PARSERS,
    BookingRow,
)
from sodtrack.bulkload.synth import COLUMNS as SYNTH_COLUMNS
from sodtrack.bulkload.synth import synthesize_upload
from sodtrack.bulkload.template import (
    BOOKINGS_SHEET,
    TEMPLATE_COLUMNS,
    CatalogLists,
    write_template,
)
from sodtrack.contract.models import BookingStatus, PaymentMethod
from sodtrack.errors import ConfigurationError, SodtrackError

GOLDEN = Path(__file__).with_name("columns.golden.json")

PYTHON_TYPES: dict[ColumnType, object] = {
    "text": str,
    "reference": str,
    "email": str,
    "phone": str,
    "document_id": str,
    "postal_code": str,
    "currency": str,
    "datetime": datetime,
    "integer": int,
    "amount": Decimal,
    "booking_status": BookingStatus,
    "payment_method": PaymentMethod,
}
"""The type ``BookingRow`` holds for each spec type (``date``/``time``: no field of their own)."""


# --- the derived tables, pinned ----------------------------------------------------------


def test_the_derived_tables_match_the_golden_file() -> None:
    """A change to columns.yaml changes these tables: regenerate the golden file with
    ``python -m sodtrack.bulkload.columns tests/bulkload/columns.golden.json`` and review it."""
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert derived_tables(SPEC) == golden


def test_the_header_matcher_uses_the_pinned_tables() -> None:
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert list(CANONICAL_COLUMNS) == golden["canonical_columns"]
    assert list(PAYMENT_COLUMNS) == golden["required"]["payment"]
    assert list(headers._ALWAYS_REQUIRED) == golden["required"]["always"]
    assert golden["alias_index"] == headers.ALIAS_INDEX
    assert {c: list(a) for c, a in ALIASES.items()} == {
        c: [*langs["en"], *langs["es"], *langs["pt"]]
        for c, langs in golden["aliases"].items()
        if any(langs.values())
    }


# --- no column declared in one place only ------------------------------------------------


def _without_none(hint: object) -> object:
    if get_origin(hint) in (Union, types.UnionType):
        rest = [a for a in get_args(hint) if a is not type(None)]
        assert len(rest) == 1, hint
        return rest[0]
    return hint


def test_booking_row_has_a_field_of_the_spec_type_for_every_row_column() -> None:
    hints = get_type_hints(BookingRow)
    assert SPEC.row_fields == INTERPRETED_FIELDS
    for name in SPEC.row_fields:
        assert _without_none(hints[name]) == PYTHON_TYPES[SPEC[name].type], name
    # and no interpreted field the spec does not declare
    own = {"row_number", "sheet", "headers", "original_values", "issues"}
    assert set(hints) - own == set(SPEC.row_fields)


def test_every_text_type_but_currency_has_its_parser() -> None:
    """The row parser picks a text column's parser by its spec type; ``currency`` is parsed
    by name (it is checked against the country's and defaults to it)."""
    plain, noted = set(PLAIN_TEXT_PARSERS), set(NOTED_TEXT_PARSERS)
    assert not plain & noted
    text_types = {t for t, python in PYTHON_TYPES.items() if python is str}
    assert plain | noted == text_types - {"currency"}


def test_the_plan_reads_spec_columns_of_the_spec_types() -> None:
    properties = {
        name: get_type_hints(member.fget)["return"]
        for name, member in inspect.getmembers(PlanRow)
        if isinstance(member, property)
    }
    assert properties, "PlanRow declares no column"
    for name, hint in properties.items():
        assert name in SPEC.row_fields, f"PlanRow.{name} is not a column of the spec"
        expected = PYTHON_TYPES[SPEC[name].type]
        if isinstance(expected, type) and issubclass(expected, StrEnum):
            expected = str  # the plan may read a contract enum as its str
        assert _without_none(hint) == expected, name


def _write_csv(path: Path, row: dict[str, str]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(row))
        writer.writeheader()
        writer.writerow(row)
    return path


def _examples(*, start: Literal["datetime", "date and time"]) -> dict[str, str]:
    skip = {"scheduled_date", "scheduled_time"} if start == "datetime" else {"scheduled_start"}
    return {c.name: c.example for c in SPEC if c.name not in skip}


@pytest.mark.parametrize("start", ["datetime", "date and time"])
def test_the_row_parser_reads_every_column_of_the_spec(
    tmp_path: Path, start: Literal["datetime", "date and time"]
) -> None:
    """A row of the spec's examples is valid and every field holds its column's value; and
    each column, blanked (or, when a blank has a default, made unusable), changes the row:
    the parser reads it."""
    full = _examples(start=start)
    upload = read_upload(_write_csv(tmp_path / "full.csv", full), "cl")
    assert not upload.upload_issues, upload.upload_issues
    (row,) = upload.rows
    assert row.issues == [], row.issues
    for name in SPEC.row_fields:
        value = getattr(row, name)
        expected = PYTHON_TYPES[SPEC[name].type]
        assert value is not None, name
        assert isinstance(expected, type)
        assert isinstance(value, expected), name
    reference = row.interpreted()

    for name in full:
        field = name if SPEC[name].is_row_field else "scheduled_start"
        effects = []
        for probe in ("", "§"):
            changed = {**full, name: probe}
            (other,) = read_upload(_write_csv(tmp_path / f"{name}.csv", changed), "cl").rows
            effects.append(
                other.interpreted()[field] != reference[field]
                or any(issue.field == name for issue in other.issues)
            )
        assert any(effects), f"the row parser does not read {name}"


def test_the_template_has_the_spec_columns_and_reads_back(tmp_path: Path) -> None:
    """The template's header row is the spec's template columns; a row of the spec's examples
    typed into it reads back valid, every field filled."""
    path = write_template(tmp_path / "t.xlsx", "cl", CatalogLists("cl", "test"))
    wb = load_workbook(path)
    ws = wb[BOOKINGS_SHEET]
    header = [cell.value for cell in ws[1]]
    assert header == list(TEMPLATE_COLUMNS) == [c.name for c in SPEC.template_columns]
    without = [c.name for c in SPEC if c.template is None]
    assert without == ["scheduled_start"]  # the template has the date and the time apart
    examples = _examples(start="date and time")
    for i, name in enumerate(header, start=1):
        assert isinstance(name, str)
        ws.cell(row=2, column=i, value=examples[name])
    wb.save(path)
    upload = read_upload(path, "cl")
    assert not upload.has_upload_errors, upload.upload_issues
    (row,) = upload.rows
    assert row.issues == [], row.issues
    assert all(getattr(row, name) is not None for name in SPEC.row_fields)


async def test_synthetic_files_fill_the_spec_synth_columns(tmp_path: Path, app: Starlette) -> None:
    path = tmp_path / "synth.csv"
    async with sim_client(app) as client:
        await synthesize_upload(client, path, country="cl", rows=40, projects=6, today=SIM_TODAY)
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == list(SYNTH_COLUMNS) == list(SPEC.synth_columns)
    for name in SYNTH_COLUMNS:
        assert any(r[name] for r in rows), f"synth never fills {name}"
    upload = read_upload(path, "cl")
    assert not upload.upload_issues
    assert all(r.is_valid for r in upload.rows), [r.errors for r in upload.rows if r.errors]


# --- a malformed spec is refused, naming the entry -----------------------------------------


def _spec_data() -> dict[str, Any]:
    data = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _column(data: dict[str, Any], name: str) -> dict[str, Any]:
    (column,) = (c for c in data["columns"] if c["name"] == name)
    assert isinstance(column, dict)
    return column


def _entry(name: str) -> str:
    return f"columns[{SPEC.names.index(name)}] ({name})"


def _set_type(d: dict[str, Any]) -> None:
    _column(d, "scheduled_start")["type"] = "timestamp"


def _drop_name(d: dict[str, Any]) -> None:
    del d["columns"][0]["name"]


def _extra_key(d: dict[str, Any]) -> None:
    _column(d, "scheduled_time")["colour"] = "red"


def _alias_of_another(d: dict[str, Any]) -> None:
    _column(d, "postal_code")["aliases"]["pt"].append("Município")  # city's, by its key


def _alias_twice(d: dict[str, Any]) -> None:
    _column(d, "notes")["aliases"]["en"].append("remarks")


def _column_twice(d: dict[str, Any]) -> None:
    d["columns"].append(copy.deepcopy(_column(d, "service_sku")))


def _unknown_placeholder(d: dict[str, Any]) -> None:
    _column(d, "postal_code")["template"]["help"] = "Like {example}."


def _bad_language(d: dict[str, Any]) -> None:
    _column(d, "region")["aliases"]["fr"] = ["département"]


def _bad_list(d: dict[str, Any]) -> None:
    _column(d, "payment_method")["template"]["list"] = "methods"


@pytest.mark.parametrize(
    ("mutate", "entry", "says"),
    [
        (_set_type, _entry("scheduled_start"), "type"),
        (_drop_name, "columns[0]", "name"),
        (_extra_key, _entry("scheduled_time"), "colour"),
        (_alias_of_another, _entry("postal_code"), "already means the column 'city'"),
        (_alias_twice, _entry("notes"), "listed twice"),
        (_column_twice, f"columns[{len(SPEC.names)}] (service_sku)", "declared twice"),
        (_unknown_placeholder, _entry("postal_code"), "{example}"),
        (_bad_language, _entry("region"), "fr"),
        (_bad_list, _entry("payment_method"), "list"),
    ],
)
def test_a_malformed_entry_is_refused_naming_it(
    tmp_path: Path, mutate: Callable[[dict[str, Any]], None], entry: str, says: str
) -> None:
    data = _spec_data()
    mutate(data)
    path = tmp_path / "columns.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ColumnSpecError) as caught:
        load_column_spec(path)
    assert caught.value.entry == entry
    assert str(caught.value).startswith(f"{entry}: ")
    assert says in str(caught.value)
    assert isinstance(caught.value, ConfigurationError)
    assert isinstance(caught.value, SodtrackError)


@pytest.mark.parametrize(
    "text", ["columns: [", "- a list", "columns: []", "columns: {a: 1}", "cols: []"]
)
def test_a_malformed_file_is_refused_naming_the_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "columns.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ColumnSpecError) as caught:
        load_column_spec(path)
    assert caught.value.entry == str(path)


def test_the_unchanged_spec_round_trips_through_the_loader(tmp_path: Path) -> None:
    """The mutations above start from a copy that loads: only the mutation is refused."""
    path = tmp_path / "columns.yaml"
    path.write_text(yaml.safe_dump(_spec_data(), allow_unicode=True), encoding="utf-8")
    assert derived_tables(load_column_spec(path)) == derived_tables(SPEC)
