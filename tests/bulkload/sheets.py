"""Builders for the loader's tests: booking rows, CSV files in any encoding/delimiter, and
real XLSX workbooks written by openpyxl (typed cells, formulas, several sheets)."""

from __future__ import annotations

import codecs
import zipfile
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

from openpyxl import Workbook

BASE: dict[str, object] = {
    "external_reference": "OPS-1",
    "service_sku": "INST-AC-12000",
    "scheduled_start": "03/12/2026 10:00",
    "customer_first_name": "Ana",
    "customer_last_name": "Rojas",
    "customer_email": "ana@example.com",
    "customer_phone": "+56912345678",
    "customer_document_id": "12.345.678-5",
    "address_line1": "Av. Providencia 1234",
    "address_line2": "",
    "city": "Providencia",
    "region": "RM",
    "postal_code": "7500000",
    "notes": "",
}

SPANISH: list[str] = [
    "Referencia externa",
    "SKU servicio",
    "Fecha y hora",
    "Nombre",
    "Apellido",
    "Correo",
    "Teléfono",
    "RUT",
    "Dirección",
    "Dirección 2",
    "Comuna",
    "Región",
    "Código postal",
    "Notas",
]
"""``BASE``'s columns under the Spanish headers an operator in Chile would write."""

PROJECT_COLUMNS = ("project_reference", "project_name", "stage_sequence", "stage_name")
PAYMENT = ("payment_reference", "payment_amount", "payment_method", "paid_at")


def booking(i: int = 1, **overrides: object) -> dict[str, object]:
    """A valid Chilean booking row (canonical headers), with overrides."""
    row = dict(BASE)
    row["external_reference"] = f"OPS-{i}"
    row.update(overrides)
    return row


def table(rows: Sequence[Mapping[str, object]]) -> tuple[list[str], list[list[object]]]:
    """Header (union of keys, first-seen order) and aligned rows ('' where a row has no key)."""
    header: list[str] = []
    for row in rows:
        header.extend(k for k in row if k not in header)
    return header, [[row.get(h, "") for h in header] for row in rows]


def csv_cell(value: object, delimiter: str) -> str:
    text = "" if value is None else str(value)
    if any(ch in text for ch in (delimiter, '"', "\n", "\r")):
        return '"' + text.replace('"', '""') + '"'
    return text


def write_csv(
    path: Path,
    header: Sequence[object],
    rows: Sequence[Sequence[object]],
    *,
    delimiter: str = ",",
    encoding: str = "utf-8",
    newline: str = "\r\n",
    bom: bool = False,
) -> Path:
    """``encoding`` is a codec name; ``bom`` puts the encoding's byte-order mark first (for
    ``utf-8``, ``utf-16-le``/``-be``, ``utf-32-le``/``-be``)."""
    path.write_bytes(
        csv_bytes(header, rows, delimiter=delimiter, encoding=encoding, newline=newline, bom=bom)
    )
    return path


BOMS: dict[str, bytes] = {
    "utf-8": codecs.BOM_UTF8,
    "utf-16-le": codecs.BOM_UTF16_LE,
    "utf-16-be": codecs.BOM_UTF16_BE,
    "utf-32-le": codecs.BOM_UTF32_LE,
    "utf-32-be": codecs.BOM_UTF32_BE,
}


def csv_text(
    header: Sequence[object],
    rows: Sequence[Sequence[object]],
    *,
    delimiter: str = ",",
    newline: str = "\r\n",
    final_newline: bool = True,
) -> str:
    """The CSV text of a header and rows, quoted the way Excel quotes."""
    lines = [delimiter.join(csv_cell(v, delimiter) for v in header)]
    lines.extend(delimiter.join(csv_cell(v, delimiter) for v in row) for row in rows)
    return newline.join(lines) + (newline if final_newline else "")


def csv_bytes(
    header: Sequence[object],
    rows: Sequence[Sequence[object]],
    *,
    delimiter: str = ",",
    encoding: str = "utf-8",
    newline: str = "\r\n",
    bom: bool = False,
    final_newline: bool = True,
) -> bytes:
    text = csv_text(header, rows, delimiter=delimiter, newline=newline, final_newline=final_newline)
    return (BOMS[encoding] if bom else b"") + text.encode(encoding)


def csv_of(
    path: Path,
    rows: Sequence[Mapping[str, object]],
    *,
    delimiter: str = ",",
    encoding: str = "utf-8",
    newline: str = "\r\n",
    bom: bool = False,
) -> Path:
    header, body = table(rows)
    return write_csv(
        path, header, body, delimiter=delimiter, encoding=encoding, newline=newline, bom=bom
    )


def write_xlsx(
    path: Path,
    sheets: Mapping[str, Sequence[Sequence[object]]],
    *,
    merges: Mapping[str, Sequence[str]] | None = None,
    hidden_rows: Mapping[str, Collection[int]] | None = None,
    auto_filter: Mapping[str, str] | None = None,
) -> Path:
    """A workbook with one sheet per entry (first entry first); rows include the header.

    A cell given as a ``(value, number_format)`` tuple gets that number format. ``merges``
    (sheet -> ranges like ``"A2:A6"``) merges cells as Excel does: only the top-left value
    is kept. ``hidden_rows`` (sheet -> 1-based row numbers) hides rows; ``auto_filter``
    (sheet -> range) puts a filter on the sheet.
    """
    workbook = Workbook()
    first = True
    for name, rows in sheets.items():
        sheet = workbook.active if first else workbook.create_sheet(name)
        assert sheet is not None
        sheet.title = name
        first = False
        for ref in (merges or {}).get(name, ()):
            sheet.merge_cells(ref)
        for number in (hidden_rows or {}).get(name, ()):
            sheet.row_dimensions[number].hidden = True
        if auto_filter and name in auto_filter:
            sheet.auto_filter.ref = auto_filter[name]
        for r, row in enumerate(rows, start=1):
            for c, value in enumerate(row, start=1):
                if value is None:
                    continue
                cell = sheet.cell(row=r, column=c)
                if type(cell).__name__ == "MergedCell":
                    continue  # hidden under a merge: Excel keeps only the top-left value
                if isinstance(value, tuple):
                    cell.value = value[0]
                    cell.number_format = value[1]
                else:
                    cell.value = value
    workbook.save(path)
    return path


def patch_sheet_xml(path: Path, member: str, old: bytes, new: bytes) -> None:
    """Rewrite part of a sheet's XML, e.g. to give a formula the cached value Excel would."""
    with zipfile.ZipFile(path) as source:
        entries = [(info, source.read(info.filename)) for info in source.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for info, data in entries:
            if info.filename == member:
                assert old in data, f"{old!r} not in {member}"
                data = data.replace(old, new)
            target.writestr(info, data)
