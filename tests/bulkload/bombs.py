"""Hostile workbooks built by hand: the XML parts written here, the ZIP container written byte
by byte (so a part can declare any size, hold any deflate stream, and a deflate bomb of 1 GB
takes a megabyte and milliseconds to build). Used by the limits tests and bench_refuse."""

from __future__ import annotations

import random
import struct
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

CT = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    b'<Default Extension="rels" '
    b'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    b'<Default Extension="xml" ContentType="application/xml"/>'
    b'<Override PartName="/xl/workbook.xml" ContentType="application/'
    b'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    b'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/'
    b'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    b'<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
    b'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
    b"</Types>"
)
RELS = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    b'<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    b'relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>'
)
WORKBOOK = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    b'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    b'<sheets><sheet name="Bookings" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
WORKBOOK_RELS = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    b'<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    b'relationships/worksheet" Target="worksheets/sheet1.xml"/>'
    b'<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    b'relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>'
)
MAIN_NS = b"http://schemas.openxmlformats.org/spreadsheetml/2006/main"
SHEET = "xl/worksheets/sheet1.xml"
STRINGS = "xl/sharedStrings.xml"


@dataclass(frozen=True, slots=True)
class Member:
    """One ZIP entry: its raw (already compressed) bytes and what it declares."""

    name: str
    raw: bytes
    size: int
    method: int = 8
    crc: int = 0


def deflated(name: str, data: bytes) -> Member:
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return Member(name, c.compress(data) + c.flush(), len(data), crc=zlib.crc32(data))


def zeros_deflate(size: int) -> bytes:
    """A raw deflate stream of ``size`` zero bytes, about size/1000 long, built in
    milliseconds: one 1 MiB block compressed once after a full flush (which makes it
    independent of what precedes it), repeated, then a final block."""
    block = 1 << 20
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    piece = c.compress(bytes(block)) + c.flush(zlib.Z_FULL_FLUSH)
    count, rest = divmod(size, block)
    end = zlib.compressobj(9, zlib.DEFLATED, -15)
    return piece * count + end.compress(bytes(rest)) + end.flush()


def write_zip(path: Path, members: Sequence[Member]) -> Path:
    """A ZIP file written byte by byte (ZIP64 records where a size needs them). CRCs are
    whatever the members say: the checks under test never get that far."""
    central: list[bytes] = []
    with path.open("wb") as f:
        for m in members:
            offset = f.tell()
            name = m.name.encode()
            big = m.size >= 0xFFFFFFFF or len(m.raw) >= 0xFFFFFFFF
            extra = struct.pack("<HHQQ", 1, 16, m.size, len(m.raw)) if big else b""
            usize = 0xFFFFFFFF if big else m.size
            csize = 0xFFFFFFFF if big else len(m.raw)
            version = 45 if big else 20
            f.write(
                struct.pack(
                    "<4s5H3L2H",
                    b"PK\x03\x04",
                    version,
                    0,
                    m.method,
                    0,
                    0x21,
                    m.crc,
                    csize,
                    usize,
                    len(name),
                    len(extra),
                )
            )
            f.write(name + extra)
            f.write(m.raw)
            central.append(
                struct.pack(
                    "<4s6H3L5H2L",
                    b"PK\x01\x02",
                    version,
                    version,
                    0,
                    m.method,
                    0,
                    0x21,
                    m.crc,
                    csize,
                    usize,
                    len(name),
                    len(extra),
                    0,
                    0,
                    0,
                    0,
                    offset,
                )
                + name
                + extra
            )
        cd_start = f.tell()
        for entry in central:
            f.write(entry)
        cd_size = f.tell() - cd_start
        count = len(central)
        if count >= 0xFFFF or any(m.size >= 0xFFFFFFFF for m in members):
            eocd64 = f.tell()
            f.write(
                struct.pack(
                    "<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, cd_size, cd_start
                )
            )
            f.write(struct.pack("<4sLQL", b"PK\x06\x07", 0, eocd64, 1))
        short = min(count, 0xFFFF)
        f.write(struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, short, short, cd_size, cd_start, 0))
    return path


def sheet_xml(
    body: Iterable[bytes] | bytes, *, dimension: str | None = None, prefix: str = ""
) -> bytes:
    """A worksheet part around ``body`` (the ``<row>`` elements), with a namespace prefix
    (``x``) if asked."""
    p = f"{prefix}:".encode() if prefix else b""
    xmlns = b"xmlns:" + prefix.encode() if prefix else b"xmlns"
    head = b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    head += b"<" + p + b"worksheet " + xmlns + b'="' + MAIN_NS + b'">'
    if dimension is not None:
        head += b"<" + p + b'dimension ref="' + dimension.encode() + b'"/>'
    inner = body if isinstance(body, bytes) else b"".join(body)
    return head + b"<" + p + b"sheetData>" + inner + b"</" + p + b"sheetData></" + p + b"worksheet>"


def strings_xml(strings: Iterable[str]) -> bytes:
    items = b"".join(b"<si><t>" + s.encode() + b"</t></si>" for s in strings)
    return (
        b'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="' + MAIN_NS + b'">' + items + b"</sst>"
    )


def column_letters(number: int) -> str:
    letters = ""
    while number > 0:
        number, rest = divmod(number - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def cell(ref: str | None, text: str = "x", *, prefix: str = "") -> bytes:
    p = f"{prefix}:" if prefix else ""
    r = f' r="{ref}"' if ref else ""
    return f'<{p}c{r} t="inlineStr"><{p}is><{p}t>{text}</{p}t></{p}is></{p}c>'.encode()


def row(number: int | None, cells: Iterable[bytes], *, prefix: str = "") -> bytes:
    p = f"{prefix}:" if prefix else ""
    r = f' r="{number}"' if number is not None else ""
    return f"<{p}row{r}>".encode() + b"".join(cells) + f"</{p}row>".encode()


def workbook(
    path: Path,
    sheet: bytes,
    *,
    strings: bytes | None = None,
    extra: Sequence[Member] = (),
    sheet_member: Member | None = None,
) -> Path:
    """A minimal workbook (one sheet called Bookings) around a worksheet part."""
    members = [
        deflated("[Content_Types].xml", CT),
        deflated("_rels/.rels", RELS),
        deflated("xl/workbook.xml", WORKBOOK),
        deflated("xl/_rels/workbook.xml.rels", WORKBOOK_RELS),
        sheet_member or deflated(SHEET, sheet),
    ]
    if strings is not None:
        members.append(deflated(STRINGS, strings))
    members.extend(extra)
    return write_zip(path, members)


# -- the bombs -------------------------------------------------------------------------------


def xfd_cell(path: Path, *, dimension: bool = True) -> Path:
    """The 5 KB workbook of the issue: a header row, and one cell at XFD1048576 (calamine
    allocates the range A1:XFD1048576, 17 billion cells)."""
    header = row(1, [cell(f"{c}1", f"h{c}") for c in "ABCD"])
    body = header + row(1048576, [cell("XFD1048576")])
    return workbook(path, sheet_xml(body, dimension="A1:XFD1048576" if dimension else None))


def dense(path: Path, rows: int, columns: int, *, dimension: str | None = None) -> Path:
    """``rows`` × ``columns`` small numeric cells (a 283 KB file of ~1M cells at 1000×1000)."""

    def body() -> Iterator[bytes]:
        for r in range(1, rows + 1):
            yield (
                f'<row r="{r}">'.encode()
                + b"".join(
                    f'<c r="{column_letters(c)}{r}"><v>1</v></c>'.encode()
                    for c in range(1, columns + 1)
                )
                + b"</row>"
            )

    return workbook(path, sheet_xml(body(), dimension=dimension))


def deflate_bomb(path: Path, size: int) -> Path:
    """A sheet part declaring ``size`` bytes of zeros (and holding them)."""
    return workbook(path, b"", sheet_member=Member(SHEET, zeros_deflate(size), size))


def lying_size_bomb(path: Path, declared: int, real: int, *, part: str = "xl/media/a.bin") -> Path:
    """A workbook whose ``part`` declares ``declared`` bytes but inflates to ``real`` (zeros)."""
    sheet = sheet_xml(row(1, [cell("A1")]))
    return workbook(path, sheet, extra=[Member(part, zeros_deflate(real), declared)])


def many_members(path: Path, count: int) -> Path:
    extra = [Member(f"xl/media/p{i}.bin", b"", 0, method=0) for i in range(count)]
    return workbook(path, sheet_xml(row(1, [cell("A1")])), extra=extra)


def huge_shared_string(path: Path, chars: int) -> Path:
    body = row(1, [b'<c r="A1" t="s"><v>0</v></c>'])
    return workbook(path, sheet_xml(body), strings=strings_xml(["y" * chars]))


def many_shared_strings(path: Path, count: int) -> Path:
    body = row(1, [b'<c r="A1" t="s"><v>0</v></c>'])
    return workbook(path, sheet_xml(body), strings=strings_xml(str(i) for i in range(count)))


def corpus_variant(rng: random.Random, path: Path, rows: int, columns: int) -> tuple[Path, str]:
    """One seeded hostile sheet over the given row/column limits, and the limit it crosses:
    with or without r attributes, a namespace prefix, a dimension that lies or is absent, the
    offending cell first, in the middle or last."""
    kind = rng.choice(["row", "column", "cell_row"])
    prefix = rng.choice(["", "", "x"])
    explicit = rng.random() < 0.7
    n = rng.randint(2, max(2, rows // 2))
    body: list[bytes] = []
    for r in range(1, n + 1):
        width = rng.randint(1, columns)
        refs = [f"{column_letters(c)}{r}" if explicit else None for c in range(1, width + 1)]
        body.append(
            row(r if explicit else None, [cell(x, prefix=prefix) for x in refs], prefix=prefix)
        )
    where = rng.choice([0, len(body) // 2, len(body)])
    big_row = rows + 1 + rng.choice([1, 2, 1000, 1048575 - rows])
    big_col = columns + rng.choice([1, 2, 50, 16384 - columns])
    if kind == "row":
        offender = row(big_row, [cell(f"A{big_row}", prefix=prefix)], prefix=prefix)
        limit = "max_rows"
    elif kind == "column":
        if explicit:
            ref: str | None = f"{column_letters(big_col)}{where + 1}"
            cells = [cell(ref, prefix=prefix)]
        else:
            cells = [cell(None, prefix=prefix) for _ in range(big_col)]
        offender = row(None if not explicit else where + 1, cells, prefix=prefix)
        limit = "max_columns"
    else:
        offender = row(2, [cell(f"B{big_row}", prefix=prefix)], prefix=prefix)
        limit = "max_rows"
    body.insert(where, offender)
    dimension = rng.choice([None, "A1", f"A1:{column_letters(columns)}{rows}"])
    return workbook(path, sheet_xml(body, dimension=dimension, prefix=prefix)), limit
