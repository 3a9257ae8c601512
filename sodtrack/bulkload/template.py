"""``sodtrack-etl template``: an XLSX a person can fill in, for one country.

The columns, their help comments, number formats and drop-down lists come from the column
spec, ``schemas/bulkload/columns.yaml`` (:mod:`sodtrack.bulkload.columns`).

Sheets:

``bookings`` (first, the one the loader reads)
    the canonical headers, each with a comment saying what goes in it; postal code, phone,
    document id and references formatted as text (``@``) so Excel keeps leading zeros; the
    date, time and amount columns formatted for the country; drop-down lists for
    ``service_sku`` and ``variant_sku`` (active SKUs, from the ``catalog`` sheet),
    ``booking_status``, ``payment_method`` and ``payment_currency``, and a whole-number check on
    ``stage_sequence``.
``instructions``
    the rules in plain language: required columns, dates (day first, the country's time
    zone), slots, amounts (the currency's minor units), the postal-code format, projects,
    stages and payments, what a load answers and its exit codes.
``catalog`` (hidden)
    the active services and variants the lists offer, with names and prices, and where they
    came from: the latest published ``services``/``variants`` snapshot of the country in the
    warehouse, or the live API when the warehouse has none.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Final, Protocol

from openpyxl import Workbook
from openpyxl.comments import Comment
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation

from sodtrack.bulkload.columns import SPEC, TemplateFormat, TemplateList
from sodtrack.bulkload.reading.values import PAYMENT_METHODS
from sodtrack.bulkload.run import EXIT_CODES
from sodtrack.contract.countries import Country, get_country
from sodtrack.contract.limits import MAX_HORIZON_DAYS, SLOT_FIRST_HOUR, SLOT_LAST_HOUR
from sodtrack.contract.models import BookingStatus, Service, Variant

BOOKINGS_SHEET: Final = "bookings"
INSTRUCTIONS_SHEET: Final = "instructions"
CATALOG_SHEET: Final = "catalog"
LAST_ROW: Final = 1_048_576
"""Excel's last row: formats and lists cover every row a person may fill."""

TEMPLATE_COLUMNS: Final[tuple[str, ...]] = tuple(c.name for c in SPEC.template_columns)
"""The columns with a ``template`` entry in the spec: the canonical columns, the date and the
time apart (``scheduled_start`` also works)."""

REQUIRED: Final = frozenset(
    c.name for c in SPEC.template_columns if c.required in ("always", "schedule")
)
"""Required on every row (highlighted): the always-required columns, the date and the time."""
TEXT_COLUMNS: Final = frozenset(
    c.name for c in SPEC.template_columns if c.template and c.template.format == "text"
)
"""Formatted as text (``@``) so Excel keeps leading zeros and does not read numbers."""
BOOKING_STATUSES: Final[tuple[str, ...]] = tuple(str(s) for s in BookingStatus)
"""The drop-down list of ``booking_status`` (the contract's statuses, in their order)."""
DATE_FORMAT: Final = "dd/mm/yyyy"
TIME_FORMAT: Final = "hh:mm"


def amount_format(country: Country) -> str:
    return "#,##0" if country.minor_units == 0 else "#,##0." + "0" * country.minor_units


def _help(country: Country) -> dict[str, str]:
    """Each template column's header comment, the spec's help filled for ``country``."""
    values = {
        "country_name": country.name,
        "time_zone": country.time_zone,
        "phone_prefix": country.phone_prefix,
        "postal_code_example": country.postal_code_example,
        "currency": country.currency,
        "minor_units": country.minor_units,
        "slot_first_hour": f"{SLOT_FIRST_HOUR:02d}",
        "slot_last_hour": f"{SLOT_LAST_HOUR:02d}",
        "booking_statuses": ", ".join(BOOKING_STATUSES),
        "payment_methods": ", ".join(PAYMENT_METHODS),
    }
    return {c.name: c.template.help_for(values) for c in SPEC.template_columns if c.template}


def _number_format(column_format: TemplateFormat, country: Country) -> str:
    formats: dict[TemplateFormat, str] = {
        "text": "@",
        "date": DATE_FORMAT,
        "time": TIME_FORMAT,
        "amount": amount_format(country),
        "integer": "0",
    }
    return formats[column_format]


@dataclass(frozen=True, slots=True)
class CatalogService:
    sku: str
    name: str
    price: Decimal
    currency: str
    requires_project: bool


@dataclass(frozen=True, slots=True)
class CatalogVariant:
    sku: str
    name: str
    service_sku: str
    price: Decimal
    currency: str


@dataclass(frozen=True, slots=True)
class CatalogLists:
    """The active SKUs a template offers, and where they came from."""

    country: str
    source: str
    """Human words: "warehouse snapshot 2026-06-10 (services version …)" or "live API"."""
    services: list[CatalogService] = field(default_factory=list)
    variants: list[CatalogVariant] = field(default_factory=list)


def catalog_from_warehouse(warehouse_root: str, country: str) -> CatalogLists | None:
    """The latest published ``services`` and ``variants`` snapshot of ``country``, active
    items only; ``None`` when the warehouse has none for the country."""
    import pyarrow.compute as pc

    from sodtrack.warehouse import Warehouse

    code = get_country(country).code
    wh = Warehouse(warehouse_root)
    try:
        if wh.current_version("services") is None:
            return None
        services = wh.read_current("services").to_table(filter=pc.field("country") == code)
    except (FileNotFoundError, OSError):
        return None
    if services.num_rows == 0:
        return None
    latest = pc.max(services["snapshot_date"])
    services = services.filter(pc.equal(services["snapshot_date"], latest))
    snapshot = latest.as_py()
    active = {s["id"]: s for s in services.filter(pc.equal(services["active"], True)).to_pylist()}
    variants: list[CatalogVariant] = []
    if wh.current_version("variants") is not None:
        vt = wh.read_current("variants").to_table(filter=pc.field("country") == code)
        if vt.num_rows:
            vt = vt.filter(pc.equal(vt["snapshot_date"], pc.max(vt["snapshot_date"])))
            for v in vt.filter(pc.equal(vt["active"], True)).to_pylist():
                parent = active.get(v["service_id"])
                if parent is not None:
                    variants.append(
                        CatalogVariant(
                            v["sku"], v["name"], parent["sku"], v["price"], v["currency"]
                        )
                    )
    return CatalogLists(
        country=code,
        source=f"the warehouse at {warehouse_root}: services snapshot of {snapshot} "
        f"(version {wh.current_version('services')})",
        services=sorted(
            (
                CatalogService(
                    s["sku"], s["name"], s["base_price"], s["currency"], s["requires_project"]
                )
                for s in active.values()
            ),
            key=lambda s: s.sku,
        ),
        variants=sorted(variants, key=lambda v: (v.service_sku, v.sku)),
    )


class CatalogReader(Protocol):
    async def collect_services(
        self, category_id: str | None = None, active: bool | None = None
    ) -> list[Service]: ...
    async def collect_variants(
        self, service_id: str, active: bool | None = None
    ) -> list[Variant]: ...


async def catalog_from_api(client: CatalogReader, country: str) -> CatalogLists:
    """Active services and their active variants, read live (one request per service for
    the variants: the API lists variants per service)."""
    services = sorted(
        (s for s in await client.collect_services(active=True) if s.active), key=lambda s: s.sku
    )
    per_service = await asyncio.gather(
        *(client.collect_variants(s.id, active=True) for s in services)
    )
    variants = [
        CatalogVariant(v.sku, v.name, s.sku, v.price, v.currency)
        for s, vs in zip(services, per_service, strict=True)
        for v in vs
        if v.active
    ]
    return CatalogLists(
        country=get_country(country).code,
        source="the live Sodtrack API (no published catalog for the country in the warehouse)",
        services=[
            CatalogService(s.sku, s.name, s.base_price, s.currency, s.requires_project)
            for s in services
        ],
        variants=sorted(variants, key=lambda v: (v.service_sku, v.sku)),
    )


def instructions(country: Country, catalog: CatalogLists) -> list[str]:
    """The instructions sheet, one paragraph per line ("" = blank line, "# " = a heading)."""
    decimals = (
        f"{country.currency} has no decimals: write 45990 (45.990 is read as forty-five "
        "thousand nine hundred ninety too)."
        if country.minor_units == 0
        else f"{country.currency} has {country.minor_units} decimals: write 1234.50 or "
        "1.234,50; an amount with more decimals is refused, never rounded."
    )
    codes = [f"  {code}: {meaning}" for code, meaning in sorted(EXIT_CODES.items())]
    return [
        f"# Bookings upload for {country.name} ({country.code})",
        "Fill one row per booking in the 'bookings' sheet, from row 2 down. Keep the headers "
        "as they are; the order of the columns does not matter, and extra columns are "
        "reported and ignored.",
        "Then load it: sodtrack-etl load FILE.xlsx --country "
        f"{country.code} --dry-run (checks everything, creates nothing), then without "
        "--dry-run.",
        "",
        "# Required on every row",
        f"{', '.join(c for c in TEMPLATE_COLUMNS if c in REQUIRED)}, and "
        f"{' or '.join(SPEC.required('contact'))} (at least one).",
        "Hover over a header to see what goes in its column.",
        "",
        "# Dates and times",
        f"Dates are day first: dd/mm/yyyy (03/12/2026 is 3 December 2026). Times are "
        f"{country.name}'s local time ({country.time_zone}).",
        f"A booking starts on the hour, between {SLOT_FIRST_HOUR:02d}:00 and "
        f"{SLOT_LAST_HOUR:02d}:00, Monday to Saturday, within the next {MAX_HORIZON_DAYS} "
        "days. A slot can be taken by someone else before your load runs: the row then says "
        "so.",
        "",
        "# Services and variants",
        "Pick service_sku and variant_sku from the drop-down lists (active SKUs only). A "
        "variant belongs to one service and its price replaces the service's base price.",
        "Services marked 'requires_project' in the catalog sheet can only be booked inside "
        "a project.",
        f"The lists come from {catalog.source}: {len(catalog.services)} services, "
        f"{len(catalog.variants)} variants. To see names and prices: right-click a sheet tab, "
        "Unhide, 'catalog'.",
        "",
        "# Postal codes, phones, amounts",
        f"Postal codes look like {country.postal_code_example}; the column is text, so leading "
        "zeros stay. The postal code must be covered for the service.",
        f"Phones: with or without {country.phone_prefix}; they are sent as "
        f"{country.phone_prefix}...",
        decimals,
        "",
        "# Projects, stages and payments",
        "A project is one customer's work in several bookings: give its rows the same "
        "project_reference (and the project_name on at least one of them).",
        "Stages: stage_sequence 1, 2, 3... groups a project's bookings; rows with the same "
        "number are one stage, named by stage_name.",
        "A payment goes on a row of its project: payment_reference, payment_amount, "
        "payment_method and paid_at together. The payments of a project may not add up to "
        "more than the sum of its bookings' prices.",
        "",
        "# What a load answers",
        "Every row gets exactly one outcome in the results file (CSV and XLSX, same order as "
        "this sheet): created, updated, already_existed, rejected, skipped_dependency, "
        "failed_transient (or would_create / would_update in a dry run), with a message and "
        "a suggested fix. A row already in Sodtrack with another start, notes, status or "
        "project or stage name is updated; other differences are rejected, naming the fields.",
        "Statuses: booking_status corrects a booking already in Sodtrack. It moves forward "
        "only (scheduled → confirmed → in_progress → completed; several steps at once are "
        "fine), or to cancelled (with a cancellation_reason) from anything but completed; "
        "going back, or leaving completed or cancelled, is rejected. A new booking always "
        "starts scheduled: a new row with another status is rejected (load it first, then "
        "upload its status). An empty cell leaves the status as it is.",
        "Rows to fix are also in a rejects file with your columns as you wrote them: fix "
        "them there and upload that file. Loading the same file again creates nothing twice.",
        "",
        "# Exit codes of sodtrack-etl load",
        *codes,
    ]


def write_template(path: Path, country: str, catalog: CatalogLists) -> Path:
    """Write the template to ``path`` (.xlsx)."""
    ctry = get_country(country)
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = BOOKINGS_SHEET
    _bookings_sheet(ws, ctry, catalog)
    _instructions_sheet(wb.create_sheet(INSTRUCTIONS_SHEET), ctry, catalog)
    cat = wb.create_sheet(CATALOG_SHEET)
    _catalog_sheet(cat, catalog)
    cat.sheet_state = "hidden"
    wb.active = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    wb.save(tmp)
    tmp.replace(path)
    return path


def _list_range(column: str, count: int) -> str:
    return f"{CATALOG_SHEET}!${column}$2:${column}${max(2, count + 1)}"


def _bookings_sheet(ws: object, country: Country, catalog: CatalogLists) -> None:
    from openpyxl.worksheet.worksheet import Worksheet

    assert isinstance(ws, Worksheet)
    notes = _help(country)
    required_fill = PatternFill("solid", fgColor="FFF2CC")
    optional_fill = PatternFill("solid", fgColor="E7EEF7")
    for i, column in enumerate(SPEC.template_columns, start=1):
        assert column.template is not None
        name = column.name
        cell = ws.cell(row=1, column=i, value=name)
        cell.font = Font(bold=True)
        cell.fill = required_fill if name in REQUIRED else optional_fill
        cell.number_format = "@"
        cell.comment = Comment(notes[name], "sodtrack", width=320, height=110)
        letter = get_column_letter(i)
        dim = ws.column_dimensions[letter]
        dim.width = max(14, len(name) + 4)
        if column.template.format is not None:
            dim.number_format = _number_format(column.template.format, country)
        if column.template.list is not None:
            dv = _data_validation(column.template.list, country, catalog)
            dv.add(f"{letter}2:{letter}{LAST_ROW}")
            ws.add_data_validation(dv)
    ws.freeze_panes = "A2"


def _data_validation(kind: TemplateList, country: Country, catalog: CatalogLists) -> DataValidation:
    """The drop-down list (or check) a column's cells get, by the spec's ``template.list``."""
    if kind == "services":
        return DataValidation(
            type="list",
            formula1=_list_range("A", len(catalog.services)),
            allow_blank=True,
            showErrorMessage=True,
            errorTitle="Unknown service",
            error="Pick an active service SKU from the list (see the catalog sheet).",
            promptTitle="service_sku",
            prompt="Pick the service from the list.",
            showInputMessage=True,
        )
    if kind == "variants":
        return DataValidation(
            type="list",
            formula1=_list_range("G", len(catalog.variants)),
            allow_blank=True,
            showErrorMessage=True,
            errorTitle="Unknown variant",
            error="Pick an active variant SKU from the list, or leave it empty.",
            promptTitle="variant_sku",
            prompt="Optional: a variant of the row's service.",
            showInputMessage=True,
        )
    if kind == "booking_statuses":
        return DataValidation(
            type="list",
            formula1='"' + ",".join(BOOKING_STATUSES) + '"',
            allow_blank=True,
            showErrorMessage=True,
            errorTitle="Booking status",
            error=f"One of: {', '.join(BOOKING_STATUSES)}, or empty.",
        )
    if kind == "payment_methods":
        return DataValidation(
            type="list",
            formula1='"' + ",".join(PAYMENT_METHODS) + '"',
            allow_blank=True,
            showErrorMessage=True,
            errorTitle="Payment method",
            error=f"One of: {', '.join(PAYMENT_METHODS)}.",
        )
    if kind == "currency":
        return DataValidation(
            type="list",
            formula1=f'"{country.currency}"',
            allow_blank=True,
            showErrorMessage=True,
            errorTitle="Currency",
            error=f"Payments in {country.name} are in {country.currency}.",
        )
    return DataValidation(
        type="whole",
        operator="between",
        formula1="1",
        formula2="999",
        allow_blank=True,
        showErrorMessage=True,
        errorTitle="Stage number",
        error="A whole number: 1, 2, 3...",
    )


def _instructions_sheet(ws: object, country: Country, catalog: CatalogLists) -> None:
    from openpyxl.worksheet.worksheet import Worksheet

    assert isinstance(ws, Worksheet)
    ws.column_dimensions["A"].width = 120
    for n, line in enumerate(instructions(country, catalog), start=1):
        heading = line.startswith("# ")
        cell = ws.cell(row=n, column=1, value=line[2:] if heading else line or None)
        cell.alignment = Alignment(wrap_text=True, vertical="top")
        if heading:
            cell.font = Font(bold=True, size=13 if n == 1 else 11)


CATALOG_HEADERS: Final[Sequence[str]] = (
    "service_sku",
    "service_name",
    "base_price",
    "currency",
    "requires_project",
    "",
    "variant_sku",
    "variant_name",
    "variant_of_service",
    "variant_price",
)


def _catalog_sheet(ws: object, catalog: CatalogLists) -> None:
    from openpyxl.worksheet.worksheet import Worksheet

    assert isinstance(ws, Worksheet)
    for i, header in enumerate(CATALOG_HEADERS, start=1):
        if header:
            ws.cell(row=1, column=i, value=header).font = Font(bold=True)
    for n, s in enumerate(catalog.services, start=2):
        ws.cell(row=n, column=1, value=s.sku).number_format = "@"
        ws.cell(row=n, column=2, value=s.name)
        ws.cell(row=n, column=3, value=float(s.price))
        ws.cell(row=n, column=4, value=s.currency)
        ws.cell(row=n, column=5, value="yes" if s.requires_project else "no")
    for n, v in enumerate(catalog.variants, start=2):
        ws.cell(row=n, column=7, value=v.sku).number_format = "@"
        ws.cell(row=n, column=8, value=v.name)
        ws.cell(row=n, column=9, value=v.service_sku)
        ws.cell(row=n, column=10, value=float(v.price))
    ws.cell(row=1, column=12, value="source").font = Font(bold=True)
    ws.cell(row=2, column=12, value=catalog.source)
    for letter, width in (("A", 18), ("B", 36), ("G", 18), ("H", 36), ("I", 18), ("L", 60)):
        ws.column_dimensions[letter].width = width
