"""When a file in the inbox is complete: a spreadsheet name, stable between polls, whole by
its content (see the package docstring). Pure: no I/O beyond the file handle it is given."""

from __future__ import annotations

import logging
import posixpath
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sodtrack.contract.countries import COUNTRIES, get_country

log = logging.getLogger("sodtrack.bulkload.inbox")


SPREADSHEET_SUFFIXES = frozenset({".xlsx", ".xlsm", ".csv"})
TEMP_SUFFIXES = frozenset(
    {".part", ".partial", ".tmp", ".temp", ".crdownload", ".download", ".filepart", ".swp"}
)
READ_CHUNK = 1 << 20
CHECK_FOLDER = "check"
"""``<inbox>[/<country>]/check/<name>``: load nothing, check every row (a dry run)."""
DONE_SUFFIX = ".done"
"""``<name>.done`` beside a file: its writer says the file is complete."""
DEFAULT_MAX_WAIT_S = 900.0
"""How long a stable file that does not look whole waits before it is taken anyway."""

# ---------------------------------------------------------------- pure core


def is_candidate(name: str) -> bool:
    """Whether a file name can be an upload (not hidden, not a lock or partial file)."""
    base = posixpath.basename(name)
    lower = base.lower()
    if not base or base.startswith((".", "~")) or lower.endswith("~"):
        return False
    suffix = posixpath.splitext(lower)[1]
    if suffix in TEMP_SUFFIXES or any(lower.endswith(s + ".tmp") for s in SPREADSHEET_SUFFIXES):
        return False
    return suffix in SPREADSHEET_SUFFIXES


def country_of(relative: str, default: str) -> str | None:
    """The country of a file from its place in the inbox (``cl/x.xlsx`` → ``cl``); a file at
    the top is for ``default``; ``None`` for any other place (unknown folder, too deep)."""
    place = place_of(relative, default)
    return place[0] if place is not None else None


def place_of(relative: str, default: str) -> tuple[str, bool] | None:
    """(country, check only) of a file from its place in the inbox: ``cl/x.xlsx`` → ``("cl",
    False)``, ``cl/check/x.xlsx`` → ``("cl", True)``, ``check/x.xlsx`` → ``(default, True)``;
    ``None`` for any other place."""
    parts = relative.strip("/").split("/")
    check = len(parts) >= 2 and parts[-2].lower() == CHECK_FOLDER
    if check:
        parts = parts[:-2] + parts[-1:]
    if len(parts) == 1:
        return get_country(default).code, check
    if len(parts) == 2 and parts[0].lower() in COUNTRIES:
        return parts[0].lower(), check
    return None


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What a listing says about a file: a change in either means it is still moving."""

    size: int
    stamp: str


class Stability:
    """Decides which listed files are complete: unchanged across two polls ``settle_s`` apart.

    Pure: feed it each poll's listing and the poll's (monotonic) time.
    """

    def __init__(self, settle_s: float = 1.0) -> None:
        self.settle_s = settle_s
        self._seen: dict[str, tuple[Fingerprint, float]] = {}

    def observe(self, listing: Mapping[str, Fingerprint], now: float) -> list[str]:
        ready: list[str] = []
        seen: dict[str, tuple[Fingerprint, float]] = {}
        for path, fp in listing.items():
            before = self._seen.get(path)
            if before is not None and before[0] == fp:
                seen[path] = before
                if fp.size > 0 and now - before[1] >= self.settle_s:
                    ready.append(path)
            else:
                seen[path] = (fp, now)
        self._seen = seen
        return sorted(ready)

    def forget(self, path: str) -> None:
        self._seen.pop(path, None)

    def stable_since(self, path: str) -> float | None:
        """When the file was first seen with its current fingerprint."""
        seen = self._seen.get(path)
        return seen[1] if seen is not None else None


_ZIP_SUFFIXES = frozenset({".xlsx", ".xlsm"})
_LINE_ENDS = (b"\n", b"\r")
_BOMS: tuple[tuple[bytes, int, bool], ...] = (
    # (BOM, code unit size, little endian): UTF-32 first (its LE BOM starts like UTF-16's)
    (b"\xff\xfe\x00\x00", 4, True),
    (b"\x00\x00\xfe\xff", 4, False),
    (b"\xff\xfe", 2, True),
    (b"\xfe\xff", 2, False),
)


def csv_incomplete_reason(head: bytes, tail: bytes, size: int) -> str | None:
    """Why a CSV does not look whole from its first and last bytes (``None``: it does).

    Whole = its last character is a line end, in the encoding its BOM names (UTF-16/32, LE
    or BE), else as a byte (UTF-8, CP-1252); a UTF-16/32 file is also a whole number of code
    units. An empty file is not whole.
    """
    if size == 0:
        return "the file is empty"
    for bom, unit, little in _BOMS:
        if head.startswith(bom):
            if size % unit:
                return f"it stops in the middle of a character ({size} bytes of UTF-{unit * 8})"
            ends = [
                (end + b"\x00" * (unit - 1)) if little else (b"\x00" * (unit - 1) + end)
                for end in _LINE_ENDS
            ]
            if any(tail.endswith(end) for end in ends):
                return None
            return "its last record does not end with a line end"
    if tail.endswith(_LINE_ENDS):
        return None
    return "its last record does not end with a line end"


def zip_incomplete_reason(fh: Any) -> str | None:
    """Why an XLSX/XLSM (a zip, open for binary reading and seekable) does not look whole:
    no end-of-central-directory record or central directory (a zip cut short), or a member
    that does not start where the directory says (a file not filled in yet). Reads the
    directory and four bytes per member: no decompression."""
    try:
        with zipfile.ZipFile(fh) as archive:
            members = archive.infolist()
            if not members:
                return "the zip holds no member"
            for info in members:
                fh.seek(info.header_offset)
                if fh.read(4) != b"PK\x03\x04":
                    return f"member {info.filename!r} is not where the zip's directory says"
    except (zipfile.BadZipFile, ValueError, EOFError, OSError) as exc:
        return f"not a whole zip ({type(exc).__name__}: no valid end of central directory)"
    return None


def incomplete_reason(name: str, fh: Any, size: int) -> str | None:
    """Why the file (``fh`` open for binary reading, seekable) does not look whole, from its
    content; ``None`` when it does (see the module docstring's rule 3)."""
    suffix = posixpath.splitext(name.lower())[1]
    if suffix in _ZIP_SUFFIXES:
        return zip_incomplete_reason(fh)
    if suffix == ".csv":
        head = fh.read(4)
        fh.seek(max(size - 4, 0))
        return csv_incomplete_reason(head, fh.read(4), size)
    return None
