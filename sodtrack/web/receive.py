"""Taking a file in: a multipart body parsed while it streams, the file part written to an
owner-only temporary file and hashed on the way, refused the moment it passes the size limit
(a 2 GB upload costs at most the limit on disk, never the whole), and its type checked by name
and first bytes before anything reads it.

No framework here: :func:`receive_multipart` takes the body as an async iterator of chunks
(Starlette's ``request.stream()``), so it is tested without a server.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Final

from python_multipart.multipart import MultipartParser, parse_options_header

from sodtrack.errors import FileRefused, FileTooLarge
from sodtrack.private import private_dir

SPREADSHEET_SUFFIXES: Final = (".csv", ".xlsx", ".xlsm")
FIELD_LIMIT: Final = 4096
"""Bytes a plain form field may hold (country, csrf token)."""
ZIP_MAGIC: Final = b"PK\x03\x04"
OLE_MAGIC: Final = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


@dataclass
class Received:
    """A form as it came in: its plain fields, and the file part (if any) on disk."""

    fields: dict[str, str] = field(default_factory=dict)
    file_name: str | None = None
    path: Path | None = None
    sha256: str = ""
    size: int = 0
    head: bytes = b""

    def discard(self) -> None:
        if self.path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()


def suffix_of(file_name: str) -> str:
    """The spreadsheet suffix of a name (lower case), or refuse the file."""
    suffix = Path(file_name).suffix.lower()
    if suffix not in SPREADSHEET_SUFFIXES:
        raise FileRefused(
            f"only CSV and XLSX files are taken (this one is {suffix or 'without a suffix'}): "
            "save the sheet as .xlsx or .csv"
        )
    return suffix


def check_type(file_name: str, head: bytes) -> str:
    """The suffix, once the first bytes agree with it (an XLSX is a zip; a CSV is text,
    neither a zip nor an old binary .xls)."""
    suffix = suffix_of(file_name)
    if suffix in (".xlsx", ".xlsm"):
        if not head.startswith(ZIP_MAGIC):
            hint = " (an old .xls or an encrypted workbook)" if head.startswith(OLE_MAGIC) else ""
            raise FileRefused(
                f"this file is not an XLSX workbook{hint}: save it as .xlsx without a password"
            )
    elif head.startswith(ZIP_MAGIC) or head.startswith(OLE_MAGIC):
        raise FileRefused("this .csv file is a workbook, not text: name it .xlsx or save as CSV")
    return suffix


class _Part:
    """The multipart part being parsed."""

    def __init__(self) -> None:
        self.reset()
        self.out: BinaryIO | None = None

    def reset(self) -> None:
        self.header_field = b""
        self.headers: dict[bytes, bytes] = {}
        self.name = ""
        self.buf = b""


async def receive_multipart(
    body: AsyncIterator[bytes],
    content_type: str,
    *,
    max_file_bytes: int,
    tmp_dir: Path,
    max_body_bytes: int | None = None,
) -> Received:
    """Parse a ``multipart/form-data`` body as it streams; the (one) file part goes to an
    owner-only file in ``tmp_dir``. Raises :class:`FileRefused` as soon as the file passes
    ``max_file_bytes`` (the partial file removed), or the body passes ``max_body_bytes``."""
    ctype, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if ctype != b"multipart/form-data" or not boundary:
        raise FileRefused("expected a multipart/form-data form")
    limit_body = max_body_bytes if max_body_bytes is not None else max_file_bytes + (1 << 20)
    received = Received()
    private_dir(tmp_dir)
    part = _Part()
    digest = hashlib.sha256()
    error: list[FileRefused] = []

    def on_part_begin() -> None:
        part.reset()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        part.header_field += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        key = part.header_field.lower()
        part.headers[key] = part.headers.get(key, b"") + data[start:end]

    def on_header_end() -> None:
        part.header_field = b""

    def on_headers_finished() -> None:
        _, disp = parse_options_header(part.headers.get(b"content-disposition", b""))
        part.name = disp.get(b"name", b"").decode("utf-8", "replace")
        if b"filename" in disp:
            if received.path is not None:
                error.append(FileRefused("one file per upload"))
                return
            received.file_name = Path(
                disp[b"filename"].decode("utf-8", "replace").replace("\\", "/")
            ).name
            fd, tmp = tempfile.mkstemp(dir=tmp_dir, prefix=".incoming-", suffix=".part")
            received.path = Path(tmp)
            part.out = os.fdopen(fd, "wb")

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if error:
            return
        chunk = data[start:end]
        if part.out is None:
            part.buf += chunk
            if len(part.buf) > FIELD_LIMIT:
                error.append(FileRefused(f"form field {part.name!r} is too long"))
            return
        received.size += len(chunk)
        if received.size > max_file_bytes:
            error.append(
                FileTooLarge(
                    f"the file is larger than the limit of {max_file_bytes:,} bytes "
                    "(SODTRACK_UPLOAD_MAX_FILE_BYTES): split it into smaller files"
                )
            )
            return
        if len(received.head) < 512:
            received.head += chunk[: 512 - len(received.head)]
        digest.update(chunk)
        part.out.write(chunk)

    def on_part_end() -> None:
        if part.out is not None:
            part.out.close()
            part.out = None
        elif part.name:
            received.fields[part.name] = part.buf.decode("utf-8", "replace")

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    total = 0
    try:
        async for chunk in body:
            total += len(chunk)
            if total > limit_body:
                error.append(
                    FileTooLarge(
                        f"the upload is larger than the limit of {max_file_bytes:,} bytes "
                        "(SODTRACK_UPLOAD_MAX_FILE_BYTES): split it into smaller files"
                    )
                )
            if error:
                raise error[0]
            parser.write(chunk)
        if error:
            raise error[0]
        parser.finalize()
    except BaseException:
        if part.out is not None:
            part.out.close()
        received.discard()
        raise
    received.sha256 = digest.hexdigest()
    return received
