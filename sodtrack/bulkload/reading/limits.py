"""Upload limits: an oversized or hostile file is refused *before* any parser sees it.

A 5 KB workbook whose one cell sits at ``XFD1048576`` makes python-calamine allocate the dense
range (about 30 bytes a cell: 550 GB); a deflate stream expands 1,000 times; a CSV can hold a
million rows or one 50 MB cell. :func:`check_upload` is the one entry point (``read_upload``
calls it before the reader): it reads the file in bounded, streaming passes, and refuses it
with :class:`LimitExceeded` (an :class:`~.reader.UnreadableFile`, so the refusal
is an ordinary upload-level error: exit 2, no row loaded) naming the limit, the value found
and the setting that raises it.

The limits (:class:`UploadLimits`; each is a ``SODTRACK_UPLOAD_MAX_*`` setting, see
:data:`LIMITS`): 50 MiB on disk, 100,000 data rows (rows after the first), 200 columns,
3,000,000 cells in the range a sheet spans (rows × columns: what calamine allocates), 32,767
characters in a cell (Excel's own), 200 MiB of uncompressed workbook parts, a ratio of 100:1
for any part over 1 MiB, 1,000 parts in a workbook.

Every file
    Its size on disk (``stat``), first.
XLSX (a ZIP; never extracted)
    1. The end-of-central-directory record, then a walk of the central directory's entry
       headers, count the parts *before* :mod:`zipfile` builds one object per entry. A
       directory that cannot be read is refused (:class:`HostileFile`): calamine never gets
       a container these checks could not measure.
    2. Each part's declared uncompressed size, their total, and each part's ratio.
    3. Every part is inflated once from its raw bytes, streaming, and may not produce more than
       it declares (a lying header cannot smuggle a bomb past step 2); only stored and deflated
       parts are accepted (the two methods Excel and LibreOffice write).
    4. The worksheets (the one asked for, else all): the ``<dimension ref=...>`` in the head
       refuses at once (stop before ``<sheetData>``); then, as the dimension may be missing
       or lie, the body's row and cell tags (any namespace prefix) are counted with byte
       searches: references come from ``<row r="...">`` / ``<c r="...">`` with C-speed
       ``findall``; a buffer holding a tag without a leading ``r`` (or a prefixed one) is
       walked tag by tag instead, a cell without ``r`` being the next column, as calamine does.
       The last row, the last column and their product are checked.
    5. Text: every text node of the sheets and the shared strings is at most
       ``max_cell_chars`` characters (a byte search finds the nodes long enough to matter;
       only those are decoded). Runs of rich text are counted one by one. The shared strings
       may not outnumber ``max_cells`` (each is shown by some cell).
CSV
    One streaming pass with the csv module over lines read with a bounded ``readline`` (a
    50 MB line without a newline is never held whole): records, fields per record, the
    longest field. Text is decoded as the BOM says (UTF-8/16/32), else UTF-8 with
    replacement, which counts one character per byte for the single-byte encodings. The csv
    module refuses fields over 131,072 characters by itself: such a field is refused as too
    long whatever ``max_cell_chars`` says.

Refusals stop at the first limit crossed, so a bomb is refused within a second or two and in
a few tens of MiB (``bench/bench_refuse.py``). A file within every limit costs one more
streaming pass (about a tenth of the time ``read_upload`` takes).
"""

from __future__ import annotations

import codecs
import csv
import functools
import html
import posixpath
import re
import struct
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final, Literal
from xml.etree import ElementTree as ET

from sodtrack.bulkload.issues import IssueCode, UploadIssue
from sodtrack.bulkload.reading.reader import UnreadableFile, detect_delimiter, sniff_file_type

KiB: Final = 1 << 10
MiB: Final = 1 << 20

LimitName = Literal[
    "max_file_bytes",
    "max_rows",
    "max_columns",
    "max_cells",
    "max_cell_chars",
    "max_uncompressed_bytes",
    "max_compression_ratio",
    "max_zip_members",
]


@dataclass(frozen=True, slots=True)
class UploadLimits:
    """What an upload may hold; checked before parsing (see the module docstring)."""

    max_file_bytes: int = 50 * MiB
    """Size of the file on disk."""
    max_rows: int = 100_000
    """Rows after the first (the header) of a sheet, records after the first of a CSV."""
    max_columns: int = 200
    """Columns of a sheet (its last used column), fields of a CSV record."""
    max_cells: int = 3_000_000
    """Rows × columns of the range a sheet spans (calamine allocates it whole, ~30 B a cell)."""
    max_cell_chars: int = 32_767
    """Characters in one cell (Excel's own limit)."""
    max_uncompressed_bytes: int = 200 * MiB
    """Total declared uncompressed size of a workbook's parts."""
    max_compression_ratio: float = 100.0
    """Uncompressed/compressed size of any workbook part over :data:`RATIO_FLOOR`."""
    max_zip_members: int = 1_000
    """Parts (ZIP entries) in a workbook."""

    def __post_init__(self) -> None:
        for name in LIMITS:
            if getattr(self, name) <= 0:
                raise ValueError(f"upload limit {name} must be positive")


@dataclass(frozen=True, slots=True)
class Limit:
    """How one limit is named to an operator: its setting, and what it counts."""

    setting: str
    noun: str
    unit: Literal["count", "bytes", "ratio"]


LIMITS: Final[Mapping[LimitName, Limit]] = {
    "max_file_bytes": Limit("SODTRACK_UPLOAD_MAX_FILE_BYTES", "file size", "bytes"),
    "max_rows": Limit("SODTRACK_UPLOAD_MAX_ROWS", "rows after the header", "count"),
    "max_columns": Limit("SODTRACK_UPLOAD_MAX_COLUMNS", "columns", "count"),
    "max_cells": Limit("SODTRACK_UPLOAD_MAX_CELLS", "cells in the range a sheet spans", "count"),
    "max_cell_chars": Limit("SODTRACK_UPLOAD_MAX_CELL_CHARS", "characters in a cell", "count"),
    "max_uncompressed_bytes": Limit(
        "SODTRACK_UPLOAD_MAX_UNCOMPRESSED_BYTES", "uncompressed workbook size", "bytes"
    ),
    "max_compression_ratio": Limit(
        "SODTRACK_UPLOAD_MAX_COMPRESSION_RATIO", "compression ratio of a workbook part", "ratio"
    ),
    "max_zip_members": Limit("SODTRACK_UPLOAD_MAX_ZIP_MEMBERS", "parts in a workbook", "count"),
}
"""Every limit: the setting that raises it and what it counts (messages quote both)."""

RATIO_FLOOR: Final = 1 * MiB
"""Parts smaller than this are not held to the compression ratio (they cannot hurt)."""

_CHUNK: Final = 1 * MiB
_RAW_CHUNK: Final = 64 * KiB
_METADATA_CAP: Final = 4 * MiB
"""workbook.xml and its relationships are parsed whole: no bigger than this."""
_NOT_A_SPREADSHEET_FIX: Final = (
    "This is not a workbook as Excel or LibreOffice write it. Open the original in Excel and "
    "save it again as .xlsx, or ask whoever sent it."
)


class LimitExceeded(UnreadableFile):
    """The file crosses an upload limit; ``issue`` names the limit, the value and the setting."""

    def __init__(self, limit: LimitName, found: str, allowed: str, where: str = "") -> None:
        spec = LIMITS[limit]
        where_text = f" ({where})" if where else ""
        super().__init__(
            UploadIssue(
                IssueCode.LIMIT_EXCEEDED,
                f"The file was refused before reading: {found}{where_text}, over the limit of "
                f"{allowed} {spec.noun} ({spec.setting}).",
                "Split the data into several files, or delete the rows, columns or formatting "
                "beyond the bookings; if the file is genuine and must be loaded whole, ask an "
                f"administrator to raise {spec.setting}.",
            )
        )
        self.limit: LimitName = limit
        self.setting = spec.setting


class HostileFile(UnreadableFile):
    """A workbook whose structure contradicts itself (a part expanding beyond its declared
    size, a method Excel never writes): refused whatever the limits."""

    def __init__(self, message: str, suggested_fix: str = _NOT_A_SPREADSHEET_FIX) -> None:
        super().__init__(UploadIssue(IssueCode.FILE_UNREADABLE, message, suggested_fix))


def _n(value: int) -> str:
    return f"{value:,}"


def _size(value: int) -> str:
    if value >= MiB:
        return f"{value / MiB:,.1f} MiB"
    if value >= KiB:
        return f"{value / KiB:,.1f} KiB"
    return f"{value:,} bytes"


# -- entry point -------------------------------------------------------------------------------


def check_upload(path: Path, limits: UploadLimits, *, sheet: str | None = None) -> None:
    """Refuse ``path`` (raise :class:`LimitExceeded` or :class:`HostileFile`) when it crosses
    a limit; return quietly otherwise. ``sheet`` narrows an XLSX check to the sheet the reader
    will open (default: every worksheet)."""
    size = path.stat().st_size
    if size > limits.max_file_bytes:
        raise LimitExceeded(
            "max_file_bytes", f"the file is {_size(size)}", _size(limits.max_file_bytes)
        )
    if sniff_file_type(path) == "xlsx":
        check_xlsx(path, limits, sheet=sheet)
    else:
        check_csv(path, limits)


# -- XLSX: the ZIP container -------------------------------------------------------------------

_EOCD = struct.Struct("<4s4H2LH")
_EOCD64_LOCATOR = struct.Struct("<4sLQL")
_EOCD64 = struct.Struct("<4sQ2H2L4Q")
_CD_ENTRY = struct.Struct("<4s6H3L5H2L")


def count_zip_members(f: IO[bytes], size: int, limit: int) -> int | None:
    """Entries in a ZIP's central directory, counted from the raw bytes (never more than
    ``limit + 1`` entry headers read); None when the end record cannot be found (the reader
    then reports the file as damaged)."""
    tail_size = min(size, _EOCD.size + 65535)
    f.seek(size - tail_size)
    tail = f.read(tail_size)
    at = tail.rfind(b"PK\x05\x06")
    if at == -1 or len(tail) - at < _EOCD.size:
        return None
    eocd_pos = size - tail_size + at
    _, _, _, _, declared, cd_size, _, _ = _EOCD.unpack_from(tail, at)
    cd_end = eocd_pos
    if declared == 0xFFFF or cd_size == 0xFFFFFFFF:
        locator_at = at - _EOCD64_LOCATOR.size
        if locator_at >= 0 and tail[locator_at : locator_at + 4] == b"PK\x06\x07":
            cd_end = eocd_pos - _EOCD64_LOCATOR.size - _EOCD64.size
            f.seek(max(0, cd_end))
            record = f.read(_EOCD64.size)
            if len(record) == _EOCD64.size and record[:4] == b"PK\x06\x06":
                fields = _EOCD64.unpack(record)
                declared, cd_size = fields[7], fields[8]
    if declared > limit:
        return int(declared)
    pos = cd_end - cd_size
    count = 0
    while pos < cd_end and count <= limit:
        f.seek(pos)
        head = f.read(_CD_ENTRY.size)
        if len(head) < _CD_ENTRY.size or head[:4] != b"PK\x01\x02":
            break
        name_len, extra_len, comment_len = struct.unpack_from("<3H", head, 28)
        pos += _CD_ENTRY.size + name_len + extra_len + comment_len
        count += 1
    return count


def _inflate(f: IO[bytes], info: zipfile.ZipInfo) -> Iterator[bytes]:
    """A part's bytes, inflated from its raw data in slices of at most 1 MiB; refuses a part
    that produces more than its declared size."""
    if info.flag_bits & 0x1:
        raise HostileFile("The workbook has an encrypted part, which Excel never writes.")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise HostileFile(
            "A part of the workbook is compressed with a method Excel and LibreOffice never "
            "use, so the loader does not read it."
        )
    f.seek(info.header_offset)
    head = f.read(30)
    if len(head) < 30 or head[:4] != b"PK\x03\x04":
        raise HostileFile("The workbook is damaged: a part is not where its directory says.")
    name_len, extra_len = struct.unpack_from("<2H", head, 26)
    f.seek(info.header_offset + 30 + name_len + extra_len)
    declared = info.file_size
    remaining = info.compress_size
    produced = 0

    def lying() -> HostileFile:
        return HostileFile(
            f"A part of the workbook expands to more than the {_size(declared)} it declares: "
            "the file is damaged or built to exhaust the memory of whoever opens it."
        )

    if info.compress_type == zipfile.ZIP_STORED:
        if remaining > declared:
            raise lying()
        while remaining > 0:
            data = f.read(min(_CHUNK, remaining))
            if not data:
                return
            remaining -= len(data)
            yield data
        return
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        while remaining > 0 and not inflater.eof:
            raw = f.read(min(_RAW_CHUNK, remaining))
            if not raw:
                break
            remaining -= len(raw)
            while raw and not inflater.eof:
                out = inflater.decompress(raw, _CHUNK)
                raw = inflater.unconsumed_tail
                produced += len(out)
                if produced > declared:
                    raise lying()
                if out:
                    yield out
        out = inflater.flush()
    except zlib.error:
        raise HostileFile("The workbook is damaged: a part cannot be decompressed.") from None
    produced += len(out)
    if produced > declared:
        raise lying()
    if out:
        yield out


def _aligned(chunks: Iterable[bytes], cap: int, limits: UploadLimits) -> Iterator[bytes]:
    """Re-slice XML bytes so that every slice ends just before a ``<``: no tag and no text
    node is ever cut in two. What is carried over is at most ``cap`` bytes (a longer text node
    is longer than any cell may be, a longer tag is no spreadsheet's)."""
    carry = b""
    for chunk in chunks:
        buf = carry + chunk if carry else chunk
        cut = buf.rfind(b"<")
        if cut == -1:
            carry = buf
        else:
            if cut > 0:
                yield buf[:cut]
            carry = buf[cut:]
        if len(carry) > cap:
            raise LimitExceeded(
                "max_cell_chars",
                f"a value of more than {_n(cap // 12)} characters",
                _n(limits.max_cell_chars),
            )
    if carry:
        yield carry


def _text_chars(text: bytes) -> int:
    return len(html.unescape(text.decode("utf-8", "replace")))


def _check_text(data: bytes, limits: UploadLimits, where: str) -> None:
    """Every text node of ``data`` (which starts at a ``<`` or at the part's start and ends
    before one) holds at most ``max_cell_chars`` characters. A byte search first: a node longer
    than the limit in bytes leaves a whole aligned block without any ``<``."""
    limit = limits.max_cell_chars
    if len(data) <= limit:
        return
    block = (limit + 1) // 2
    if block >= 256 and all(
        data.find(b"<", i, i + block) != -1 for i in range(0, len(data), block)
    ):
        return
    for piece in data.split(b"<"):
        if len(piece) <= limit:
            continue
        text = piece[piece.find(b">") + 1 :]
        if len(text) > limit:
            chars = _text_chars(text)
            if chars > limit:
                raise LimitExceeded(
                    "max_cell_chars", f"a cell holds {_n(chars)} characters", _n(limit), where
                )


# -- XLSX: worksheets --------------------------------------------------------------------------

_DIMENSION = re.compile(rb'<(?:[A-Za-z_][\w.\-]*:)?dimension\b[^>]*?\bref\s*=\s*"([^"]*)"')
_REF = re.compile(r"\$?([A-Za-z]{1,10})\$?(\d{1,12})")
_PREFIXED = re.compile(rb":(?:c|row)[\s/>]")
_CELL_TAG = re.compile(rb"<c[\s/>]")
_ROW_TAG = re.compile(rb"<row[\s/>]")
_ROW_R = re.compile(rb'<row r="(\d+)"')
_ODD_REF = re.compile(rb'<c r="(?![A-Z]{1,3}[1-9]\d{0,6}")|<row r="(?![1-9]\d{0,6}")')
"""A reference the fast path does not read: lower case, ``$``, leading zeros, past XFD or
row 9,999,999 (the tag-by-tag path reads it, and refuses what is too big)."""
_LETTERS = re.compile(rb"[A-Z]+")


@functools.lru_cache(maxsize=64)
def _columns_after(letters: str) -> re.Pattern[bytes]:
    """Cell references whose column comes after ``letters`` (group: their letters)."""
    k = len(letters)
    alternatives = [f"[A-Z]{{{k + 1},}}"]
    for i, ch in enumerate(letters):
        if ch < "Z":
            alternatives.append(f"{letters[:i]}[{chr(ord(ch) + 1)}-Z][A-Z]{{{k - i - 1}}}")
    return re.compile(b'<c r="(' + "|".join(alternatives).encode() + rb")(?=\d)")


@functools.lru_cache(maxsize=64)
def _rows_after(row: int) -> re.Pattern[bytes]:
    """Cell references whose row comes after ``row`` (group: their row's digits)."""
    digits = str(row)
    k = len(digits)
    alternatives = [f"[1-9]\\d{{{k},}}"]
    for i, ch in enumerate(digits):
        if ch < "9":
            alternatives.append(f"{digits[:i]}[{int(ch) + 1}-9]\\d{{{k - i - 1}}}")
    return re.compile(b'<c r="[A-Z]+(' + "|".join(alternatives).encode() + b')"')


_ANY_TAG = re.compile(rb"<(?:[A-Za-z_][\w.\-]*:)?(row|c)(?=[\s/>])([^>]*)>")
_R_ATTR = re.compile(rb"""(?:^|\s)r\s*=\s*["']([^"']*)["']""")
_EXPLICIT_REF = re.compile(rb"\$?([A-Za-z]+)\$?(\d+)")
_TOO_BIG = 10**12
"""A reference past this is refused without converting (digits beyond any sheet)."""


def column_number(letters: str | bytes) -> int:
    """1-based column number of spreadsheet letters (``A`` -> 1, ``XFD`` -> 16,384)."""
    text = letters.decode("ascii") if isinstance(letters, bytes) else letters
    number = 0
    for ch in text.upper():
        number = number * 26 + (ord(ch) - ord("A") + 1)
    return number


def column_letters(number: int) -> str:
    letters = ""
    while number > 0:
        number, rest = divmod(number - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


class _SheetScan:
    """Bounds of one worksheet, from its XML streamed in tag-aligned slices."""

    def __init__(self, limits: UploadLimits, where: str) -> None:
        self.limits = limits
        self.where = where
        self.last_row = 0
        self.last_column = 0
        self.row = 0
        self.column = 0
        self.cells = 0
        self.head = True

    def check(self, rows: int, columns: int, declared: bool = False) -> None:
        limits = self.limits
        verb = "declares it spans" if declared else "spans"
        if rows - 1 > limits.max_rows:
            raise LimitExceeded(
                "max_rows",
                f"the sheet {verb} {_n(rows - 1)} rows after the first",
                _n(limits.max_rows),
                self.where,
            )
        if columns > limits.max_columns:
            raise LimitExceeded(
                "max_columns",
                f"the sheet {verb} {_n(columns)} columns (to column "
                f"{column_letters(min(columns, _TOO_BIG))})",
                _n(limits.max_columns),
                self.where,
            )
        if rows * columns > limits.max_cells:
            raise LimitExceeded(
                "max_cells",
                f"the sheet {verb} {_n(rows)} rows × {_n(columns)} columns = "
                f"{_n(rows * columns)} cells",
                _n(limits.max_cells),
                self.where,
            )

    def feed(self, data: bytes) -> None:
        if self.head:
            end = data.find(b"sheetData")
            match = _DIMENSION.search(data, 0, end if end != -1 else len(data))
            if match:
                self._dimension(match.group(1))
            self.head = end == -1 and len(data) < _CHUNK
        _check_text(data, self.limits, self.where)
        if not self._fast(data):
            self._slow(data)
        self.check(self.last_row, self.last_column)

    def _dimension(self, ref: bytes) -> None:
        corners = [_REF.fullmatch(part) for part in ref.decode("ascii", "replace").split(":")]
        if not corners or any(m is None for m in corners):
            return
        rows = max(int(m.group(2)) for m in corners if m)
        columns = max(column_number(m.group(1)) for m in corners if m)
        self.check(rows, columns, declared=True)

    def _fast(self, data: bytes) -> bool:
        """Every row and cell tag plain, with a well-formed ``r`` first: the last row and
        column from byte counts and regexes that match only what would raise them."""
        if _PREFIXED.search(data) or _ODD_REF.search(data):
            return False
        cell_tags = data.count(b'<c r="')
        row_tags = data.count(b'<row r="')
        # A "<c..." that is not '<c r="' may still be <col>, <cfRule>...: then count exactly.
        if data.count(b"<c") != cell_tags and cell_tags != len(_CELL_TAG.findall(data)):
            return False
        if data.count(b"<row") != row_tags and row_tags != len(_ROW_TAG.findall(data)):
            return False
        rows = _ROW_R.findall(data)
        if rows:
            self.last_row = max(self.last_row, max(map(int, rows)))
            self.row = int(rows[-1])
        if cell_tags:
            last = data.rfind(b'<c r="') + 6
            letters = _LETTERS.match(data, last)
            assert letters is not None  # _ODD_REF found no malformed reference
            self.column = column_number(letters.group())
            self.last_column = max(self.last_column, self.column)
            wider = _columns_after(column_letters(self.last_column)).findall(data)
            if wider:
                self.last_column = max(self.last_column, max(map(column_number, set(wider))))
            lower = _rows_after(self.last_row).findall(data)
            if lower:
                self.last_row = max(self.last_row, max(map(int, lower)))
            self.cells += cell_tags
        return True

    def _huge(self) -> None:
        self.check(_TOO_BIG, _TOO_BIG)

    def _slow(self, data: bytes) -> None:
        """Tag by tag, as calamine reads them: a row or cell without ``r`` is the next one."""
        for match in _ANY_TAG.finditer(data):
            tag, attributes = match.group(1), match.group(2)
            r = _R_ATTR.search(attributes)
            ref = r.group(1) if r else b""
            if tag == b"row":
                if ref.isdigit():
                    if len(ref) > 12:
                        self._huge()
                    self.row = int(ref)
                else:
                    self.row += 1
                self.column = 0
                self.last_row = max(self.last_row, self.row)
            else:
                cell = _EXPLICIT_REF.fullmatch(ref) if ref else None
                if cell:
                    if len(cell.group(1)) > 10 or len(cell.group(2)) > 12:
                        self._huge()
                    self.column = column_number(cell.group(1))
                    row = int(cell.group(2))
                else:
                    self.column += 1
                    row = self.row
                self.cells += 1
                self.last_column = max(self.last_column, self.column)
                self.last_row = max(self.last_row, row)
                if self.last_column > self.limits.max_columns:
                    self.check(self.last_row, self.last_column)


_SI_PLAIN = (b"<si>", b"<si ", b"<si/", b"<si\t", b"<si\n", b"<si\r")
_SI_PREFIXED = re.compile(rb":si[\s/>]")


class _StringsScan:
    """The shared-strings part: how many strings, and no text node too long."""

    def __init__(self, limits: UploadLimits) -> None:
        self.limits = limits
        self.strings = 0

    def feed(self, data: bytes) -> None:
        _check_text(data, self.limits, "shared strings")
        self.strings += sum(data.count(n) for n in _SI_PLAIN)
        self.strings += len(_SI_PREFIXED.findall(data))
        if self.strings > self.limits.max_cells:
            raise LimitExceeded(
                "max_cells",
                f"the workbook lists more than {_n(self.strings)} different texts",
                _n(self.limits.max_cells),
                "one per cell at most",
            )


# -- XLSX: which parts are sheets ------------------------------------------------------------

_MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_STRICT_NS = "http://purl.oclc.org/ooxml/spreadsheetml/main"
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"


def _read_small(f: IO[bytes], info: zipfile.ZipInfo) -> bytes | None:
    if info.file_size > _METADATA_CAP:
        raise HostileFile(
            f"The workbook's list of sheets takes {_size(info.file_size)}, more than any "
            "workbook needs."
        )
    return b"".join(_inflate(f, info))


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _workbook_parts(
    f: IO[bytes], infos: Mapping[str, zipfile.ZipInfo], sheet: str | None
) -> tuple[dict[str, str], set[str]]:
    """``{part: sheet name}`` of the worksheets to scan (the one asked for, else all) and the
    shared-strings parts, from workbook.xml and its relationships."""
    sheets: dict[str, str] = {}
    strings = {"xl/sharedStrings.xml"} & infos.keys()
    workbook, rels = infos.get("xl/workbook.xml"), infos.get("xl/_rels/workbook.xml.rels")
    targets: dict[str, str] = {}
    names: list[tuple[str, str]] = []
    try:
        if rels is not None:
            root = ET.fromstring(_read_small(f, rels) or b"<x/>")  # noqa: S314
            for rel in root.iter():
                if _local(rel.tag) != "Relationship":
                    continue
                target = rel.get("Target", "")
                part = (
                    target.lstrip("/")
                    if target.startswith("/")
                    else posixpath.normpath(posixpath.join("xl", target))
                )
                targets[rel.get("Id", "")] = part
                if rel.get("Type", "").endswith("/sharedStrings") and part in infos:
                    strings.add(part)
        if workbook is not None:
            root = ET.fromstring(_read_small(f, workbook) or b"<x/>")  # noqa: S314
            for node in root.iter():
                if _local(node.tag) == "sheet":
                    names.append((node.get("name", ""), node.get(f"{{{_REL_NS}}}id", "")))
    except ET.ParseError:
        pass  # the reader reports a damaged workbook; scan every worksheet-looking part
    wanted = sheet.strip().casefold() if sheet is not None else None
    for name, rel_id in names:
        found = targets.get(rel_id)
        if found in infos and (wanted is None or name.strip().casefold() == wanted):
            sheets[str(found)] = name
    if not sheets:
        sheets = {
            n: n.rsplit("/", 1)[-1]
            for n in infos
            if n.startswith("xl/worksheets/") and n.endswith(".xml")
        }
    return sheets, strings


def _damaged() -> HostileFile:
    return HostileFile(
        "The Excel file cannot be opened: its table of contents (the ZIP directory) is "
        "missing or damaged, as in a file cut short while being copied.",
        "Open it in Excel, check it is complete and not damaged, and save it again as .xlsx; "
        "or copy the file again.",
    )


def check_xlsx(path: Path, limits: UploadLimits, *, sheet: str | None = None) -> None:
    """Steps 1-5 of the module docstring, stopping at the first limit crossed."""
    size = path.stat().st_size
    with path.open("rb") as f:
        members = count_zip_members(f, size, limits.max_zip_members)
        if members is None:
            raise _damaged()
        if members > limits.max_zip_members:
            raise LimitExceeded(
                "max_zip_members",
                f"the workbook holds {_n(members)} parts",
                _n(limits.max_zip_members),
            )
        try:
            with zipfile.ZipFile(f) as archive:
                infos = archive.infolist()
        except (zipfile.BadZipFile, OSError, ValueError):
            # Never hand calamine a container these checks could not measure.
            raise _damaged() from None
        total = sum(i.file_size for i in infos)
        if total > limits.max_uncompressed_bytes:
            raise LimitExceeded(
                "max_uncompressed_bytes",
                f"the workbook's parts expand to {_size(total)}",
                _size(limits.max_uncompressed_bytes),
            )
        for info in infos:
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size > RATIO_FLOOR and ratio > limits.max_compression_ratio:
                raise LimitExceeded(
                    "max_compression_ratio",
                    f"a part of {_size(info.compress_size)} expands to "
                    f"{_size(info.file_size)}, {ratio:,.0f} to 1",
                    f"{limits.max_compression_ratio:,.0f} to 1",
                    "this is what a 'zip bomb' looks like",
                )
        by_name = {i.filename: i for i in infos}
        sheets, strings = _workbook_parts(f, by_name, sheet)
        cap = max(MiB, 12 * limits.max_cell_chars)
        for info in infos:
            chunks = _inflate(f, info)
            name = info.filename
            if name in sheets:
                scan = _SheetScan(limits, f"sheet '{sheets[name]}'")
                for data in _aligned(chunks, cap, limits):
                    scan.feed(data)
            elif name in strings:
                strings_scan = _StringsScan(limits)
                for data in _aligned(chunks, cap, limits):
                    strings_scan.feed(data)
            else:
                for _ in chunks:
                    pass


# -- CSV ---------------------------------------------------------------------------------------

_BOMS: Final = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def _text_encoding(path: Path) -> str:
    with path.open("rb") as f:
        head = f.read(4)
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            return encoding
    return "utf-8"


def _bounded_lines(stream: IO[str], cap: int, limits: UploadLimits) -> Iterator[str]:
    while True:
        line = stream.readline(cap + 1)
        if not line:
            return
        if len(line) > cap:
            raise LimitExceeded(
                "max_columns",
                f"a line of more than {_n(cap)} characters, more than "
                f"{_n(limits.max_columns)} columns of {_n(limits.max_cell_chars)} characters "
                "can hold",
                _n(limits.max_columns),
                f"or raise {LIMITS['max_cell_chars'].setting}",
            )
        yield line


def check_csv(path: Path, limits: UploadLimits) -> None:
    """Records, fields per record and field length, in one streaming pass."""
    encoding = _text_encoding(path)
    with path.open("r", encoding=encoding, errors="replace", newline="") as stream:
        sample = stream.read(64 * KiB)
    delimiter = detect_delimiter(sample)
    cap = limits.max_columns * (2 * limits.max_cell_chars + 3)
    records = 0
    with path.open("r", encoding=encoding, errors="replace", newline="") as stream:
        reader = csv.reader(_bounded_lines(stream, cap, limits), delimiter=delimiter)
        try:
            for record in reader:
                records += 1
                if records - 1 > limits.max_rows:
                    raise LimitExceeded(
                        "max_rows",
                        f"the file has more than {_n(limits.max_rows)} rows after the first",
                        _n(limits.max_rows),
                    )
                if len(record) > limits.max_columns:
                    raise LimitExceeded(
                        "max_columns",
                        f"row {_n(records)} has {_n(len(record))} values",
                        _n(limits.max_columns),
                    )
                if record and max(map(len, record)) > limits.max_cell_chars:
                    longest = max(map(len, record))
                    raise LimitExceeded(
                        "max_cell_chars",
                        f"a value in row {_n(records)} has {_n(longest)} characters",
                        _n(limits.max_cell_chars),
                    )
        except csv.Error:
            # strict=False leaves one error: a field over the csv module's own limit.
            raise LimitExceeded(
                "max_cell_chars",
                f"a value in row {_n(records + 1)} has more than {_n(csv.field_size_limit())} "
                "characters",
                _n(limits.max_cell_chars),
            ) from None


__all__ = [
    "LIMITS",
    "RATIO_FLOOR",
    "HostileFile",
    "Limit",
    "LimitExceeded",
    "LimitName",
    "UploadLimits",
    "check_csv",
    "check_upload",
    "check_xlsx",
    "column_letters",
    "column_number",
    "count_zip_members",
]
