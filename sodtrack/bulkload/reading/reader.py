"""File -> raw rows: the only module that knows about CSV dialects and XLSX workbooks.

The reader yields each row's cells *as stored*: strings for CSV, typed values for XLSX
(``str``, ``int``, ``float``, ``bool``, ``date``, ``datetime``, ``time``, ``timedelta``; an
empty cell is ``""``), with the row number a person sees in the spreadsheet. Interpretation
is someone else's job (:mod:`sodtrack.bulkload.reading.rows`).

CSV
    Read twice, streaming, never whole in memory: a first pass hashes the bytes and finds
    their encoding. A byte-order mark declares it (UTF-8, or UTF-16/32 in either byte order;
    the mark is dropped). Without one, UTF-16/32 LE/BE show in where the NUL bytes fall in
    the first 256 bytes (a Latin letter has zero high bytes); Excel's "Unicode text" is
    UTF-16 LE with a mark, TAB-separated. Otherwise strict UTF-8, else strict CP-1252
    (Excel's "CSV" on Windows), else Latin-1. A second pass parses.

    Which record is the header: as for XLSX, the first of the top :data:`HEADER_SEARCH_ROWS`
    records naming enough columns the loader knows, so a title line, a date or a blank line
    above it is fine; row numbers stay the file's own. When none is, ``header_not_found``
    says which lines were looked at. The delimiter (``,`` ``;`` tab ``|``) is found from the
    file's first 64 KiB parsed with each one in turn (quotes and all, as the reader will):
    the one under which a header row is found; when several are, one that splits the header,
    then the one whose following records have the header's number of fields, then the wider
    header, then the earlier. When no delimiter shows a header: the one the reader parses
    furthest with, then that splits the most records into one same number of fields (more
    than one). A one-cell title line, or one with a comma in it above a ``;`` table, does
    not decide it (``csv.Sniffer`` guesses from character frequencies and is easily fooled
    by decimal commas). Row numbers count records, as a spreadsheet shows them (a quoted
    field may span lines; it is still one row); messages also name the physical line(s), as
    a text editor numbers them.

    Every record after the header (the found one: titles above it are not data) has the
    header's number of fields: one with more or fewer cannot be trusted to line up and is
    rejected (never padded nor cut to width). A file that ends mid-record is refused whole
    (``file_truncated``, nothing loaded): bytes that end inside a character, a quoted value
    still open at the end, or a last record short of fields with no line break after it: what
    a copy taken while still being written looks like. A complete last record without a line
    break is read, with a warning: a cut inside its last value looks the same.

XLSX
    Read with python-calamine: typed cells straight from the workbook, never through CSV,
    and about ten times faster than openpyxl. Whole numbers come back from calamine as
    floats (Excel stores every number as a double); the reader turns them back into ``int``.
    calamine cannot tell a formula whose cached value is missing (a file written by a
    program and never opened in Excel) or an error value (``#DIV/0!``) from an empty cell,
    so the sheet's XML is scanned for ``<f>`` elements and error cells; the scan is a fast
    byte search and only parses the XML when it finds any.

    Which sheet, which row: the named sheet, else the first visible worksheet that has a
    header row (an instructions sheet first is passed over). The header row is the first
    of the sheet's top :data:`HEADER_SEARCH_ROWS` rows naming enough columns the loader knows
    (:func:`~.headers.looks_like_header`, mapping included), so a title or a
    date above it is fine; row numbers stay the sheet's own. When no sheet has one, the
    upload-level ``header_not_found`` says which rows of which sheets were looked at.

    What a person sees but the cells do not say: merged ranges (from calamine, interpreted
    by :mod:`~.merges`) and hidden rows (``<row hidden="1">``, by hand or by
    a filter; LibreOffice writes ``"true"``), found by a second byte scan of the sheet's XML
    that only looks at tags around a ``hidden=`` match (:func:`scan_hidden_rows`); each
    hidden row is loaded with a warning.

    A Compound File (OLE2) is either an old ``.xls`` or an XLSX saved with a password (its
    directory holds ``EncryptionInfo`` and ``EncryptedPackage``: :mod:`~.cfb`);
    each gets its own message.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import re
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Final, Literal
from xml.etree import ElementTree as ET
from zlib import error as zlib_error

import python_calamine

from sodtrack.bulkload.issues import IssueCode, UploadIssue
from sodtrack.bulkload.reading.cfb import is_encrypted_package
from sodtrack.bulkload.reading.headers import looks_like_header
from sodtrack.bulkload.reading.merges import MergedRange
from sodtrack.errors import InputFileError

FileType = Literal["csv", "xlsx"]

DELIMITERS: tuple[str, ...] = (",", ";", "\t", "|")
HEADER_SEARCH_ROWS = 20
"""The header row is looked for in this many rows at the top of a sheet, or records at the
top of a CSV (a title, a date or a line of instructions often sits above it)."""
HeaderTest = Callable[[Sequence[object]], bool]
"""Whether a row's cells are the header row (:func:`~.headers.looks_like_header`)."""
_CHUNK = 1 << 20


class UnreadableFile(InputFileError):
    """The file cannot be read at all; carries the upload-level issue to report."""

    def __init__(self, issue: UploadIssue) -> None:
        super().__init__(issue.message)
        self.issue = issue


@dataclass(frozen=True, slots=True)
class CellProblem:
    """An XLSX cell whose stored value cannot be trusted (calamine shows it as empty)."""

    kind: Literal["formula_not_calculated", "error_value"]
    cell: str
    """The cell's reference, e.g. ``G2``."""
    formula: str | None
    error: str | None


@dataclass(slots=True)
class RawTable:
    """A file's header and (lazily) its data rows, with how it was read."""

    file_type: FileType
    file_sha256: str
    sheet: str | None
    sheet_names: tuple[str, ...]
    encoding: str | None
    delimiter: str | None
    header_row_number: int
    header: list[object]
    first_column: int
    """0-based sheet column of ``header[0]`` (XLSX sheets may not start at column A)."""
    rows: Iterator[tuple[int, Sequence[object]]]
    """``(row_number, cells)`` for every row after the header, blank rows included."""
    cell_problems: dict[tuple[int, int], CellProblem] = field(default_factory=dict)
    """``(row_number, position in header)`` -> problem, for XLSX formula/error cells."""
    issues: list[UploadIssue] = field(default_factory=list)
    """Upload-level issues found while reading (appended to as ``rows`` is consumed)."""
    merged_rows: set[int] = field(default_factory=set)
    """CSV records that look like several lines fused by stray quotes (filled as ``rows`` is
    consumed, before the record is yielded)."""
    field_counts: dict[int, RecordShape] = field(default_factory=dict)
    """CSV records (by row number) with more or fewer fields than the header, and the lines
    they span (filled as ``rows`` is consumed, before the record is yielded)."""
    unterminated_rows: set[int] = field(default_factory=set)
    """The CSV's last row when no line break follows it (the file may be cut inside its last
    value); filled when ``rows`` is exhausted."""
    merged_ranges: tuple[MergedRange, ...] = ()
    """The XLSX sheet's merged cells (see :mod:`sodtrack.bulkload.reading.merges`)."""
    hidden_rows: dict[int, bool] = field(default_factory=dict)
    """Hidden XLSX rows -> whether the sheet's filter covers them (:func:`scan_hidden_rows`)."""


def sniff_file_type(path: Path) -> FileType:
    """``xlsx`` for a ZIP container, ``csv`` for anything else that is not a CFB container
    (a legacy .xls, or an XLSX saved with a password: :mod:`.cfb` tells)."""
    with path.open("rb") as f:
        magic = f.read(8)
    if magic.startswith(b"PK\x03\x04"):
        return "xlsx"
    if magic.startswith(b"\xd0\xcf\x11\xe0"):
        if is_encrypted_package(path):
            raise UnreadableFile(
                UploadIssue(
                    IssueCode.FILE_ENCRYPTED,
                    "The workbook is password-protected: save it without a password and "
                    "upload it again.",
                    "In Excel: File > Info > Protect Workbook > Encrypt with Password, clear "
                    "the password, save. In LibreOffice: File > Save As, untick 'Save with "
                    "password'.",
                )
            )
        raise UnreadableFile(
            UploadIssue(
                IssueCode.UNSUPPORTED_FILE_TYPE,
                "This is an old-style Excel file (.xls), which the loader does not read.",
                "Open it in Excel and save it as .xlsx (Excel Workbook) or as CSV UTF-8.",
            )
        )
    return "csv"


def read_table(
    path: Path, *, sheet: str | None = None, is_header: HeaderTest | None = None
) -> RawTable:
    """Open ``path`` (CSV or XLSX, judged by its bytes) and return its header and rows.

    ``is_header`` tells which row is the header (see :func:`read_xlsx`, :func:`read_csv`)."""
    if sniff_file_type(path) == "xlsx":
        return read_xlsx(path, sheet=sheet, is_header=is_header)
    return read_csv(path, is_header=is_header)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


# -- CSV ---------------------------------------------------------------------------------------

_MOJIBAKE = re.compile("Ã[\u0080-\u00bf]|Â[\u00a0-\u00bf]")

# A byte-order mark declares the encoding; the codec named reads the mark and drops it. The
# UTF-32 LE mark starts with the UTF-16 LE one, so it is tried first.
_BOMS: Final[tuple[tuple[bytes, str], ...]] = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_WIDE: Final = frozenset({"utf-16", "utf-32"})

# Without a mark, UTF-16 and UTF-32 show in where the NUL bytes fall among the first bytes:
# a Latin letter has zero high bytes (one in UTF-16, three in UTF-32). For each encoding,
# which of every four bytes is NUL.
_NUL_PATTERNS: Final[tuple[tuple[str, tuple[bool, bool, bool, bool]], ...]] = (
    ("utf-32-le", (False, True, True, True)),
    ("utf-32-be", (True, True, True, False)),
    ("utf-16-le", (False, True, False, True)),
    ("utf-16-be", (True, False, True, False)),
)
_NUL_SAMPLE: Final = 256
_MOSTLY_NUL: Final = 0.6
_RARELY_NUL: Final = 0.2

# How a file can end mid-way, as (message, suggested fix); ``{row}`` and ``{line}`` are the
# row and the physical line of the record that is cut.
Truncation = Literal["mid_character", "open_quote", "short_last_record", "changed"]
_TRUNCATED_FIX: Final = "The file was probably still being copied: upload the complete file."
TRUNCATED_MESSAGES: Final[Mapping[Truncation, tuple[str, str]]] = {
    "mid_character": (
        "The file ends in the middle of a character: it is cut short, so its last rows are "
        "missing.",
        _TRUNCATED_FIX,
    ),
    "open_quote": (
        "The file ends inside a quoted value that starts in row {row} (line {line}): either "
        'the file is cut short, or that row has a quote character (") that is never closed.',
        _TRUNCATED_FIX + ' If the file is complete, check row {row} for a stray quote (").',
    ),
    "short_last_record": (
        "The file ends in the middle of row {row} (line {line}): the row has {fields} of the "
        "header's {expected} values and no line break after it, so the file is cut short.",
        _TRUNCATED_FIX,
    ),
    "changed": (
        "The file changed while it was being read (its bytes no longer decode as they did a "
        "moment before).",
        _TRUNCATED_FIX,
    ),
}


def _truncated(kind: Truncation, **context: int) -> UnreadableFile:
    message, fix = TRUNCATED_MESSAGES[kind]
    return UnreadableFile(
        UploadIssue(IssueCode.FILE_TRUNCATED, message.format(**context), fix.format(**context))
    )


def _nul_pattern(head: bytes) -> str | None:
    """UTF-16/32 (LE/BE) told by where NUL bytes fall in ``head``; None for other text."""
    size = min(len(head), _NUL_SAMPLE) // 4 * 4
    if size == 0:
        return None
    ratios = [head[k:size:4].count(0) / (size // 4) for k in range(4)]
    for encoding, pattern in _NUL_PATTERNS:
        if all(
            (ratio >= _MOSTLY_NUL) if nul else (ratio <= _RARELY_NUL)
            for ratio, nul in zip(ratios, pattern, strict=True)
        ):
            return encoding
    return None


DecodeState = Literal["ok", "invalid", "cut"]


def _strict_decode(
    path: Path,
    encoding: str,
    *,
    feed: Callable[[bytes], object] | None = None,
    inspect: Callable[[str], None] | None = None,
) -> DecodeState:
    """Decode the whole file, streaming: ``ok``, ``invalid`` (a byte sequence that is not
    ``encoding``) or ``cut`` (every byte fits, but the last character is incomplete).

    ``feed`` is given every byte (even past an invalid one); ``inspect`` sees the text.
    """
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    state: DecodeState = "ok"
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            if feed is not None:
                feed(chunk)
            if state != "ok":
                continue
            try:
                text = decoder.decode(chunk)
            except UnicodeDecodeError:
                state = "invalid"
                if feed is None:
                    break
                continue
            if inspect is not None:
                inspect(text)
    if state == "ok":
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            state = "cut"
    return state


def detect_encoding(path: Path) -> tuple[str, str, list[UploadIssue]]:
    """Hash the file and find the codec that reads it (see the module docstring).

    Returns ``(encoding, sha256, issues)``: ``utf-8``, ``utf-8-sig``, ``utf-16``, ``utf-32``
    (those three with a BOM, which the codec drops), ``utf-16-le``, ``utf-16-be``,
    ``utf-32-le``, ``utf-32-be``, ``cp1252`` or ``latin-1``; ``issues`` warns about a
    fallback to CP-1252 / Latin-1 and about text that looks UTF-8-encoded twice ("Ã©" for
    "é"). Raises :class:`UnreadableFile`: ``file_truncated`` when the bytes end inside a
    character, ``file_unreadable`` when a file marked (or patterned) as UTF-16/32 is not.
    """
    with path.open("rb") as f:
        head = f.read(_NUL_SAMPLE)
    declared = next((encoding for bom, encoding in _BOMS if head.startswith(bom)), None)
    wide = declared if declared in _WIDE else None if declared else _nul_pattern(head)
    digest = hashlib.sha256()
    if wide is not None:
        state = _strict_decode(path, wide, feed=digest.update)
        if state == "cut":
            raise _truncated("mid_character")
        if state == "invalid":
            raise UnreadableFile(
                UploadIssue(
                    IssueCode.FILE_UNREADABLE,
                    f"The file looks like {wide.upper()} text but holds bytes that are not.",
                    "Open it in Excel or LibreOffice and save it again as 'CSV UTF-8'.",
                )
            )
        return wide, digest.hexdigest(), []

    mojibake = False

    def look_for_mojibake(text: str) -> None:
        nonlocal mojibake
        mojibake = mojibake or bool(_MOJIBAKE.search(text))

    state = _strict_decode(path, "utf-8-sig", feed=digest.update, inspect=look_for_mojibake)
    if state == "cut":
        raise _truncated("mid_character")
    issues: list[UploadIssue] = []
    if state == "ok":
        if mojibake:
            issues.append(
                UploadIssue(
                    IssueCode.POSSIBLE_MOJIBAKE,
                    "Some text looks garbled, like 'Ã©' for 'é': the file was probably "
                    "converted to UTF-8 twice.",
                    "Export the sheet again as 'CSV UTF-8', starting from the original file.",
                    "warning",
                )
            )
        return ("utf-8-sig" if declared else "utf-8"), digest.hexdigest(), issues
    # Not UTF-8 (rare, so a second pass is fine): CP-1252 leaves 5 bytes undefined.
    cp1252_ok = _strict_decode(path, "cp1252") == "ok"
    encoding = "cp1252" if cp1252_ok else "latin-1"
    label = "Windows-1252" if cp1252_ok else "Latin-1"
    issues.append(
        UploadIssue(
            IssueCode.ENCODING_FALLBACK,
            f"The file is not UTF-8; it was read as {label}. Accented letters should be "
            "right, but check a few names in the results.",
            "Next time save the sheet as 'CSV UTF-8 (comma delimited)'.",
            "warning",
        )
    )
    return encoding, digest.hexdigest(), issues


_VOTE_RECORDS: Final = 40
"""Records of the sample parsed per delimiter: the header search's, and as many after it."""


def _sample_records(sample: str, delimiter: str, limit: int) -> list[list[str]]:
    """The first ``limit`` records of ``sample`` as the reader parses them with ``delimiter``
    (a blank line is ``[]``); fewer when the sample ends, or the reader would stop, before
    (a quote in a place ``delimiter`` does not allow: a sign it is not the delimiter)."""
    records: list[list[str]] = []
    reader = csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter, strict=True)
    try:
        for cells in reader:
            records.append(cells)
            if len(records) >= limit:
                break
    except csv.Error:  # or the sample ends inside a value: the reader judges the file
        pass
    return records


def _has_value(cells: Sequence[str]) -> bool:
    return any(c.strip() for c in cells)


def detect_delimiter(sample: str, is_header: HeaderTest | None = None) -> str:
    """The delimiter of a CSV, from the first records of its text (see the module docstring).

    ``is_header`` tells a header row (by default one naming enough columns the loader knows).
    """
    test = is_header or looks_like_header
    candidates: list[tuple[bool, int, int, int, int, str]] = []
    for order, delimiter in enumerate(DELIMITERS):
        records = _sample_records(sample, delimiter, _VOTE_RECORDS)
        for index, cells in enumerate(records[:HEADER_SEARCH_ROWS]):
            if _has_value(cells) and test(cells):
                following = [r for r in records[index + 1 :] if r]  # blank lines: []
                agree = sum(len(r) == len(cells) for r in following)
                candidates.append((len(cells) > 1, agree, len(cells), -index, -order, delimiter))
                break
    if candidates:
        return max(candidates)[-1]
    return _vote_delimiter(sample)


def _vote_delimiter(sample: str) -> str:
    """No header row in sight: the delimiter under which the reader gets furthest (a quote
    where the delimiter does not allow one stops it), then that splits the most records into
    one same number (more than one) of fields, ties going to more fields, then to
    :data:`DELIMITERS` order."""
    best: tuple[int, int, int, int] | None = None
    chosen = ","
    for order, delimiter in enumerate(DELIMITERS):
        records = _sample_records(sample, delimiter, _VOTE_RECORDS)
        widths = Counter(len(r) for r in records if len(r) > 1 and _has_value(r))
        if not widths:
            continue
        width, agree = max(widths.items(), key=lambda item: (item[1], item[0]))
        key = (len(records), agree, width, -order)
        if best is None or key > best:
            best, chosen = key, delimiter
    return chosen


@dataclass(frozen=True, slots=True)
class RecordShape:
    """A CSV record whose number of fields is not the header's, and where it is in the file."""

    fields: int
    expected: int
    first_line: int
    """1-based physical line (as a text editor numbers them) where the record starts."""
    last_line: int
    """Where it ends: a quoted value may hold line breaks."""

    @property
    def lines(self) -> str:
        """``line 7`` or ``lines 7-9``."""
        if self.first_line == self.last_line:
            return f"line {self.first_line}"
        return f"lines {self.first_line}-{self.last_line}"


def read_csv(path: Path, *, is_header: HeaderTest | None = None) -> RawTable:
    """Read a CSV file: detect encoding and delimiter, find the header among the first
    :data:`HEADER_SEARCH_ROWS` records (``is_header`` tells one; by default a record naming
    enough columns the loader knows), then stream the records after it."""
    encoding, digest, issues = detect_encoding(path)
    try:
        with path.open("r", encoding=encoding, newline="") as f:
            sample = f.read(64 * 1024)
    except UnicodeDecodeError:
        raise _truncated("changed") from None
    if not sample.strip():
        raise UnreadableFile(
            UploadIssue(
                IssueCode.EMPTY_FILE,
                "The file is empty.",
                "Upload the sheet with its header row and one row per booking.",
            )
        )
    test = is_header or looks_like_header
    delimiter = detect_delimiter(sample, test)
    stream = path.open("r", encoding=encoding, newline="")
    records = _CsvRecords(stream, delimiter, issues, test)
    rows = iter(records)
    header_row = 0
    header: list[object] = []
    for row_number, cells in rows:
        if row_number == records.header:
            header_row, header = row_number, list(cells)
            break
        if row_number >= HEADER_SEARCH_ROWS:
            break
    if not header_row:
        stream.close()
        broken = next((i for i in issues if i.severity == "error"), None)
        raise UnreadableFile(broken or _csv_header_not_found(records.searched_lines))
    return RawTable(
        file_type="csv",
        file_sha256=digest,
        sheet=None,
        sheet_names=(),
        encoding=encoding,
        delimiter=delimiter,
        header_row_number=header_row,
        header=header,
        first_column=0,
        rows=rows,
        issues=issues,
        merged_rows=records.merged,
        field_counts=records.shapes,
        unterminated_rows=records.unterminated,
    )


def _csv_header_not_found(lines: int) -> UploadIssue:
    where = f"lines 1-{lines}" if lines > 1 else "line 1"
    return UploadIssue(
        IssueCode.HEADER_NOT_FOUND,
        f"No header row found: looked at {where} of the file for a row naming the columns "
        "(external_reference, service_sku, scheduled_start, customer_first_name...), and "
        "none does.",
        f"Put the column names in one line within the first {HEADER_SEARCH_ROWS} of the "
        "file (the template's headers, or names in English, Spanish or Portuguese), or map "
        "your headers with a mapping file.",
    )


class _CsvRecords:
    """The CSV's records, numbered from 1, with what is learnt while reading them.

    The header is the first of the top :data:`HEADER_SEARCH_ROWS` records that ``is_header``
    accepts (``header``, set before it is yielded; ``searched_lines`` is the physical line
    where the search ended); every later record whose number of fields differs goes to
    ``shapes`` (before it is yielded). Records are yielded one behind the
    parser, so the last one can be judged at the end of the file: without a line break after
    it and short of fields, it is cut mid-way and the file is refused as truncated (an
    upload-level issue, the record not yielded); without a line break but complete, it is
    yielded and noted in ``unterminated`` (a copy cut inside its last value looks the same).
    ``strict`` parsing refuses a quote that is never closed instead of swallowing the rest of
    the file into one value: at the end of the file that is a truncation too, elsewhere an
    unreadable file. Two stray quotes can still fuse several lines into one value; a record
    spanning several lines whose value holds many delimiters is put in ``merged``.
    """

    def __init__(
        self, stream: IO[str], delimiter: str, issues: list[UploadIssue], is_header: HeaderTest
    ) -> None:
        self.stream = stream
        self.delimiter = delimiter
        self.issues = issues
        self.is_header = is_header
        self.header: int | None = None
        self.searched_lines = 0
        self.merged: set[int] = set()
        self.shapes: dict[int, RecordShape] = {}
        self.unterminated: set[int] = set()
        self._last_line = ""
        self._at_end = False

    def _lines(self) -> Iterator[str]:
        for line in self.stream:
            self._last_line = line
            yield line
        self._at_end = True

    def __iter__(self) -> Iterator[tuple[int, list[str]]]:
        try:
            yield from self._records()
        finally:
            self.stream.close()

    def _records(self) -> Iterator[tuple[int, list[str]]]:
        reader = csv.reader(self._lines(), delimiter=self.delimiter, strict=True)
        width: int | None = None
        header = 0
        number = 0
        end_line = 0
        held: tuple[int, list[str], int] | None = None  # (number, cells, first line)
        try:
            for number, cells in enumerate(reader, start=1):
                first_line, end_line = end_line + 1, reader.line_num
                if end_line - first_line > 0 and _looks_merged(cells, self.delimiter):
                    self.merged.add(number)
                if held is not None:
                    yield held[0], held[1]
                if width is None:
                    if number <= HEADER_SEARCH_ROWS:
                        self.searched_lines = end_line
                        if _has_value(cells) and self.is_header(cells):
                            width = len(cells)
                            header = self.header = number
                elif len(cells) != width:
                    self.shapes[number] = RecordShape(len(cells), width, first_line, end_line)
                held = (number, cells, first_line)
        except UnicodeDecodeError:  # the first pass decoded every byte: they changed since
            self.issues.append(_truncated("changed").issue)
            return
        except csv.Error as exc:
            if held is not None:
                yield held[0], held[1]
            if self._at_end:
                self.issues.append(
                    _truncated("open_quote", row=number + 1, line=end_line + 1).issue
                )
            else:
                self.issues.append(
                    UploadIssue(
                        IssueCode.FILE_UNREADABLE,
                        f"Row {number + 1} (line {end_line + 1}) of the CSV cannot be read "
                        f"({exc}), so the rest of the file cannot be trusted.",
                        'Check that row for a quote character (") that is opened but not '
                        "closed, or a quote in the middle of a value; then export the file "
                        "again.",
                    )
                )
            return
        if held is None:
            return
        last, cells, first_line = held
        if self._last_line.endswith(("\n", "\r")):
            yield last, cells
            return
        if width is not None and len(cells) < width:
            self.shapes.pop(last, None)
            self.issues.append(
                _truncated(
                    "short_last_record",
                    row=last,
                    line=first_line,
                    fields=len(cells),
                    expected=width,
                ).issue
            )
            return
        if last != header:
            self.unterminated.add(last)
        yield last, cells


def _looks_merged(cells: list[str], delimiter: str) -> bool:
    threshold = max(3, (len(cells) - 1) // 2)
    return any(
        ("\n" in cell or "\r" in cell) and cell.count(delimiter) >= threshold for cell in cells
    )


# -- XLSX --------------------------------------------------------------------------------------


def _sheets_to_search(workbook: python_calamine.CalamineWorkbook, sheet: str | None) -> list[str]:
    """The sheet named (matched leniently), else every visible worksheet in workbook order."""
    names: list[str] = list(workbook.sheet_names)
    if sheet is not None:
        if sheet in names:
            return [sheet]
        wanted = sheet.strip().casefold()
        for name in names:
            if name.strip().casefold() == wanted:
                return [name]
        raise UnreadableFile(
            UploadIssue(
                IssueCode.SHEET_NOT_FOUND,
                f"The workbook has no sheet called '{sheet}'. Its sheets are: "
                f"{', '.join(repr(n) for n in names)}.",
                "Choose one of those sheets, or rename the sheet in the workbook.",
            )
        )
    visible = [
        str(meta.name)
        for meta in workbook.sheets_metadata
        if meta.typ == python_calamine.SheetTypeEnum.WorkSheet
        and meta.visible == python_calamine.SheetVisibleEnum.Visible
    ]
    if visible or names:
        return visible or names
    raise UnreadableFile(
        UploadIssue(
            IssueCode.EMPTY_FILE,
            "The workbook has no sheets.",
            "Upload a workbook with the bookings on its first sheet.",
        )
    )


def _typed(value: object) -> object:
    # calamine gives every number as float, as Excel stores it; whole ones are ints to people.
    if type(value) is float and value.is_integer():
        return int(value)
    return value


def _sheet_list(names: Sequence[str]) -> str:
    quoted = ", ".join(f"'{n}'" for n in names)
    return f"sheet {quoted}" if len(names) == 1 else f"sheets {quoted}"


def _find_header(
    calamine_sheet: python_calamine.CalamineSheet, is_header: HeaderTest
) -> tuple[Iterator[Sequence[object]], int, list[object]] | Literal["empty"] | None:
    """``(remaining rows, header row number, header cells)``; None when none of the first
    :data:`HEADER_SEARCH_ROWS` rows is a header, ``"empty"`` when they are all blank."""
    if not calamine_sheet.start:
        return "empty"
    # calamine's iter_rows starts at sheet row 1 (blank leading rows included) but at the
    # first used column; tests pin this, as row numbers must be the sheet's real ones.
    raw_rows: Iterator[Sequence[object]] = iter(calamine_sheet.iter_rows())
    blank = True
    for number, cells in enumerate(raw_rows, start=1):
        typed = [_typed(c) for c in cells]
        if any(not _blank(c) for c in typed):
            blank = False
            if is_header(typed):
                return raw_rows, number, typed
        if number >= HEADER_SEARCH_ROWS:
            break
    return "empty" if blank else None


def read_xlsx(
    path: Path, *, sheet: str | None = None, is_header: HeaderTest | None = None
) -> RawTable:
    """Read one sheet of an XLSX workbook: the named one, else the first visible one with a
    header row in its first :data:`HEADER_SEARCH_ROWS` rows (``is_header`` tells a header
    row; by default one naming enough columns the loader knows)."""
    digest = file_sha256(path)
    test = is_header or looks_like_header
    searched: list[str] = []
    found = None
    workbook: python_calamine.CalamineWorkbook | None = None
    try:
        workbook = python_calamine.CalamineWorkbook.from_path(str(path))
        candidates = _sheets_to_search(workbook, sheet)
        for name in candidates:
            calamine_sheet = workbook.get_sheet_by_name(name)
            located = _find_header(calamine_sheet, test)
            if located == "empty":
                continue
            searched.append(name)
            if located is not None:
                found = located
                break
    except UnreadableFile:
        if workbook is not None:
            workbook.close()
        raise
    except Exception as exc:  # calamine raises its own (unexported) error types
        if workbook is not None:
            workbook.close()
        raise UnreadableFile(
            UploadIssue(
                IssueCode.FILE_UNREADABLE,
                f"The Excel file cannot be opened: {exc}.",
                "Open it in Excel, check it is not password-protected or damaged, and save "
                "it again as .xlsx.",
            )
        ) from None
    if found is None:
        workbook.close()
        if not searched:
            verb = "is" if len(candidates) == 1 else "are"
            raise UnreadableFile(
                UploadIssue(
                    IssueCode.EMPTY_FILE,
                    f"The {_sheet_list(candidates)} {verb} empty (nothing in the first "
                    f"{HEADER_SEARCH_ROWS} rows).",
                    "Choose the sheet that holds the bookings, with its header row at the top.",
                )
            )
        raise UnreadableFile(
            UploadIssue(
                IssueCode.HEADER_NOT_FOUND,
                f"No header row found: looked at rows 1-{HEADER_SEARCH_ROWS} of "
                f"{_sheet_list(searched)} for a row naming the columns (external_reference, "
                "service_sku, scheduled_start, customer_first_name...), and none does.",
                "Put the column names in one row near the top of the bookings sheet (the "
                "template's headers, or names in English, Spanish or Portuguese), or pass "
                "the sheet's name, or map your headers with a mapping file.",
            )
        )
    raw_rows, header_row, header = found
    sheet_names = tuple(str(n) for n in workbook.sheet_names)
    name = searched[-1]
    start = calamine_sheet.start
    first_column = start[1] if start else 0
    problems = scan_cell_problems(path, name)
    cell_problems = {
        (row, col - first_column): problem
        for (row, col), problem in problems.items()
        if col >= first_column
    }

    def rows() -> Iterator[tuple[int, Sequence[object]]]:
        try:
            for n, cells in enumerate(raw_rows, start=header_row + 1):
                # Inlined _typed: this runs for every cell of the sheet.
                yield n, [int(c) if type(c) is float and c.is_integer() else c for c in cells]
        finally:
            workbook.close()

    return RawTable(
        file_type="xlsx",
        file_sha256=digest,
        sheet=name,
        sheet_names=sheet_names,
        encoding=None,
        delimiter=None,
        header_row_number=header_row,
        header=header,
        first_column=first_column,
        rows=rows(),
        cell_problems=cell_problems,
        merged_ranges=_merged_ranges(calamine_sheet),
        hidden_rows=scan_hidden_rows(path, name),
    )


def _merged_ranges(calamine_sheet: python_calamine.CalamineSheet) -> tuple[MergedRange, ...]:
    """The sheet's merged ranges (calamine gives 0-based ``((row, col), (row, col))``)."""
    ranges = getattr(calamine_sheet, "merged_cell_ranges", None) or ()
    return tuple(
        MergedRange(top + 1, left, bottom + 1, right) for (top, left), (bottom, right) in ranges
    )


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


# -- XLSX formula and error cells ------------------------------------------------------------

_MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_ERROR_CELL = b't="e"'


def _has_formula_or_error(data: bytes) -> bool:
    """Whether XML bytes hold an ``<f>`` element (``<f>``, ``<f .../>``, prefixed ``<x:f>``) or
    an error cell. ``bytes.find`` with a short needle scans ~100 MB/s even on a slow machine,
    several times faster than a regular expression."""
    if _ERROR_CELL in data:
        return True
    for needle in (b"<f", b":f"):
        i = data.find(needle)
        while i != -1:
            if data[i + 2 : i + 3] in (b">", b" ", b"/"):
                return True
            i = data.find(needle, i + 2)
    return False


_CELL_REF = re.compile(r"([A-Z]+)(\d+)")


def _sheet_member(archive: zipfile.ZipFile, sheet_name: str) -> str | None:
    """The ZIP member holding ``sheet_name``'s XML, via workbook.xml and its relationships."""
    try:
        workbook = ET.fromstring(archive.read("xl/workbook.xml"))  # noqa: S314
        rels = ET.fromstring(archive.read("xl/_rels/workbook.xml.rels"))  # noqa: S314
    except (KeyError, ET.ParseError):
        return None
    rel_id = None
    for node in workbook.iter(f"{{{_MAIN_NS}}}sheet"):
        if node.get("name") == sheet_name:
            rel_id = node.get(f"{{{_REL_NS}}}id")
            break
    for rel in rels.iter(f"{{{_PKG_REL_NS}}}Relationship"):
        if rel.get("Id") == rel_id:
            target = rel.get("Target", "")
            return target.lstrip("/") if target.startswith("/") else f"xl/{target}"
    return None


def _has_suspects(stream: IO[bytes]) -> bool:
    tail = b""
    for chunk in iter(lambda: stream.read(_CHUNK), b""):
        if _has_formula_or_error(tail + chunk):  # the tail catches markers split by a chunk
            return True
        tail = chunk[-8:]
    return False


def column_index(letters: str) -> int:
    """0-based column index of spreadsheet column letters (``A`` -> 0, ``AA`` -> 26)."""
    index = 0
    for ch in letters:
        index = index * 26 + (ord(ch) - ord("A") + 1)
    return index - 1


def scan_cell_problems(path: Path, sheet_name: str) -> dict[tuple[int, int], CellProblem]:
    """Formula cells with no cached value and error cells of one sheet, by (row, column).

    Rows are 1-based sheet rows, columns 0-based sheet columns. Empty when the sheet has
    neither (the common case, decided by a byte search without parsing any XML).
    """
    problems: dict[tuple[int, int], CellProblem] = {}
    try:
        with zipfile.ZipFile(path) as archive:
            member = _sheet_member(archive, sheet_name)
            if member is None:
                return problems
            with archive.open(member) as stream:
                if not _has_suspects(stream):
                    return problems
            with archive.open(member) as stream:
                _collect_problems(stream, problems)
    except (zipfile.BadZipFile, KeyError, ET.ParseError):
        return problems
    return problems


def _collect_problems(stream: IO[bytes], problems: dict[tuple[int, int], CellProblem]) -> None:
    cell_tag, row_tag = f"{{{_MAIN_NS}}}c", f"{{{_MAIN_NS}}}row"
    f_tag, v_tag = f"{{{_MAIN_NS}}}f", f"{{{_MAIN_NS}}}v"
    row_number = 0
    column = -1
    for event, node in ET.iterparse(stream, events=("start", "end")):  # noqa: S314
        if event == "start":
            if node.tag == row_tag:
                row_number = int(node.get("r") or row_number + 1)
                column = -1
            continue
        if node.tag == cell_tag:
            ref = node.get("r")
            match = _CELL_REF.fullmatch(ref) if ref else None
            column = column_index(match.group(1)) if match else column + 1
            formula = node.find(f_tag)
            value = node.find(v_tag)
            cached = value is not None and bool(value.text)
            where = ref or f"R{row_number}C{column + 1}"
            if node.get("t") == "e":
                problems[(row_number, column)] = CellProblem(
                    "error_value",
                    where,
                    None if formula is None else (formula.text or None),
                    value.text if value is not None else None,
                )
            elif formula is not None and not cached:
                problems[(row_number, column)] = CellProblem(
                    "formula_not_calculated", where, formula.text or None, None
                )
            node.clear()
        elif node.tag == row_tag:
            node.clear()


# -- XLSX hidden rows ----------------------------------------------------------------------

# A hidden row: Excel writes hidden="1", LibreOffice "true" (and "false" on every other row).
# The search is for the attribute (a literal prefix, so fast), then the tag around it is
# checked to be a row's; attribute values never hold "<" or ">" unescaped.
_HIDDEN_ATTR = re.compile(rb"hidden\s*=\s*[\"'](?:1|true)[\"']")
_HIDDEN_IN_TAG = re.compile(rb"\shidden\s*=\s*[\"'](?:1|true)[\"']")
_ROW_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?row\s")
_ANY_ROW = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?row[\s>/][^>]*>?")
_ROW_NUMBER = re.compile(rb"\sr\s*=\s*[\"'](\d+)[\"']")
_AUTO_FILTER = re.compile(
    rb"autoFilter\s[^>]*?\bref\s*=\s*[\"']\$?[A-Z]+\$?(\d+)"
    rb"(?::\$?[A-Z]+\$?(\d+))?[\"']"
)
_TAG_KEEP = 1 << 14
"""Bytes kept between chunks: a tag longer than this (no real one is) could be missed."""


def _scan(stream: IO[bytes], pattern: re.Pattern[bytes]) -> Iterator[re.Match[bytes]]:
    """Every match of ``pattern`` in a stream read in chunks, once each, with (where the
    stream has them) :data:`_TAG_KEEP` bytes around it in ``match.string``, which stays
    valid until the next match is asked for."""
    buffer = b""
    pos = 0
    for chunk in iter(lambda: stream.read(_CHUNK), b""):
        buffer += chunk
        limit = len(buffer) - _TAG_KEEP
        following = max(pos, limit)
        for match in pattern.finditer(buffer, pos):
            if match.start() >= limit:
                break
            yield match
            following = max(following, match.end())
        drop = max(0, following - _TAG_KEEP)
        buffer, pos = buffer[drop:], following - drop
    yield from pattern.finditer(buffer, pos)


def _hidden_row_tag(match: re.Match[bytes]) -> bytes | None:
    """The row tag a ``hidden=`` match belongs to, or None if it is another tag's (``<col>``,
    ``<sheet state>``...) or part of a longer attribute name."""
    text, at = match.string, match.start()
    if not text[at - 1 : at].isspace():
        return None
    start = text.rfind(b"<", max(0, at - _TAG_KEEP), at)
    end = text.find(b">", match.end(), match.end() + _TAG_KEEP)
    if start == -1 or end == -1:
        return None
    tag = text[start : end + 1]
    return tag if _ROW_TAG.match(tag) else None


def scan_hidden_rows(path: Path, sheet_name: str) -> dict[int, bool]:
    """The hidden rows of one sheet (``<row hidden="1">``), 1-based, each mapped to whether
    the sheet's filter (``<autoFilter>``) covers it, i.e. the row is probably filtered out.

    One streaming pass with a byte pattern that matches only hidden rows' tags; empty when
    the sheet hides none. A row tag without its ``r`` number (optional in the format, written
    by every real producer) is numbered by counting, in a second pass.
    """
    hidden: list[int | None] = []
    filtered: tuple[int, int] | None = None
    try:
        with zipfile.ZipFile(path) as archive:
            member = _sheet_member(archive, sheet_name)
            if member is None:
                return {}
            with archive.open(member) as stream:
                for match in _scan(stream, _HIDDEN_ATTR):
                    tag = _hidden_row_tag(match)
                    if tag is not None:
                        number = _ROW_NUMBER.search(tag)
                        hidden.append(int(number.group(1)) if number else None)
            if not hidden:
                return {}
            if None in hidden:
                with archive.open(member) as stream:
                    hidden = _count_hidden_rows(stream)
            with archive.open(member) as stream:
                for match in _scan(stream, _AUTO_FILTER):
                    top = int(match.group(1))
                    filtered = (top, int(match.group(2) or top))
    except (zipfile.BadZipFile, KeyError, OSError, zlib_error):
        return {}
    return {
        n: filtered is not None and filtered[0] < n <= filtered[1] for n in hidden if n is not None
    }


def _count_hidden_rows(stream: IO[bytes]) -> list[int | None]:
    numbers: list[int | None] = []
    current = 0
    for match in _scan(stream, _ANY_ROW):
        tag = match.group(0)
        number = _ROW_NUMBER.search(tag)
        current = int(number.group(1)) if number else current + 1
        if _HIDDEN_IN_TAG.search(tag):
            numbers.append(current)
    return numbers


__all__ = [
    "DELIMITERS",
    "HEADER_SEARCH_ROWS",
    "TRUNCATED_MESSAGES",
    "CellProblem",
    "RawTable",
    "RecordShape",
    "UnreadableFile",
    "detect_delimiter",
    "detect_encoding",
    "read_csv",
    "read_table",
    "read_xlsx",
    "scan_cell_problems",
    "scan_hidden_rows",
]
