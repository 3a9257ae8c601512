"""The stream names of an OLE2 / Compound File Binary container, read without a library.

Two kinds of upload start with the CFB signature: an old binary Excel workbook (``.xls``, a
``Workbook`` or ``Book`` stream) and a password-protected XLSX (Office wraps the encrypted
ZIP in a CFB holding ``EncryptionInfo`` and ``EncryptedPackage`` streams, [MS-OFFCRYPTO]).
They need different answers, so :func:`stream_names` reads the container's directory: the
header, the FAT sectors it lists (header DIFAT, then DIFAT sectors), and the directory
sectors' chain, following [MS-CFB]. Everything is bounded by the file's size (a hostile file
with a cycle in its chains or absurd counts ends the walk, it never loops or allocates
beyond the file); anything malformed raises :class:`NotACompoundFile`.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO, Final

from sodtrack.errors import InputFileError

SIGNATURE: Final = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_HEADER_SIZE: Final = 512
_HEADER_DIFAT_ENTRIES: Final = 109
_MAX_REGULAR_SECTOR: Final = 0xFFFFFFFA
_END_OF_CHAIN: Final = 0xFFFFFFFE
_DIRECTORY_ENTRY: Final = 128
_STREAM: Final = 2
_STORAGE: Final = 1

ENCRYPTED_PACKAGE_STREAMS: Final = frozenset({"EncryptionInfo", "EncryptedPackage"})
"""The streams of an encrypted OOXML package (an XLSX saved with a password)."""


class NotACompoundFile(InputFileError, ValueError):
    """The bytes are not a readable CFB container."""


def _read_sector(f: BinaryIO, sector: int, size: int, sectors: int) -> bytes:
    """Sector ``n`` starts at ``(n + 1) * size`` (the header fills sector -1); a last sector
    cut short (some writers do) reads as if padded with zeros."""
    if sector > _MAX_REGULAR_SECTOR or sector >= sectors:
        raise NotACompoundFile(f"sector {sector} is outside the file")
    f.seek((sector + 1) * size)
    return f.read(size).ljust(size, b"\0")


def stream_names(path: Path) -> set[str]:
    """The names of every stream and storage in the container's directory."""
    with path.open("rb") as f:
        header = f.read(_HEADER_SIZE)
        f.seek(0, 2)
        file_size = f.tell()
        if len(header) < _HEADER_SIZE or not header.startswith(SIGNATURE):
            raise NotACompoundFile("no CFB signature")
        (shift,) = struct.unpack_from("<H", header, 0x1E)
        if shift not in (9, 12):
            raise NotACompoundFile(f"sector shift {shift}")
        size = 1 << shift
        sectors = max(0, -(-(file_size - size) // size))
        (first_directory,) = struct.unpack_from("<I", header, 0x30)
        first_difat, difat_count = struct.unpack_from("<II", header, 0x44)
        fat_sectors = [
            s
            for s in struct.unpack_from(f"<{_HEADER_DIFAT_ENTRIES}I", header, 0x4C)
            if s <= _MAX_REGULAR_SECTOR
        ]
        per_sector = size // 4
        difat = first_difat
        seen: set[int] = set()
        while difat <= _MAX_REGULAR_SECTOR and len(seen) < min(difat_count, sectors):
            if difat in seen:
                raise NotACompoundFile("the DIFAT chain loops")
            seen.add(difat)
            entries = struct.unpack(f"<{per_sector}I", _read_sector(f, difat, size, sectors))
            fat_sectors.extend(s for s in entries[:-1] if s <= _MAX_REGULAR_SECTOR)
            difat = entries[-1]

        fat_cache: dict[int, tuple[int, ...]] = {}

        def next_sector(sector: int) -> int:
            index, offset = divmod(sector, per_sector)
            if index >= len(fat_sectors):
                raise NotACompoundFile(f"sector {sector} has no FAT entry")
            if index not in fat_cache:
                raw = _read_sector(f, fat_sectors[index], size, sectors)
                fat_cache[index] = struct.unpack(f"<{per_sector}I", raw)
            return int(fat_cache[index][offset])

        names: set[str] = set()
        sector = first_directory
        visited: set[int] = set()
        while sector != _END_OF_CHAIN:
            if sector in visited or len(visited) >= sectors:
                raise NotACompoundFile("the directory chain loops")
            visited.add(sector)
            data = _read_sector(f, sector, size, sectors)
            for at in range(0, size, _DIRECTORY_ENTRY):
                entry = data[at : at + _DIRECTORY_ENTRY]
                (length,) = struct.unpack_from("<H", entry, 0x40)
                kind = entry[0x42]
                if kind not in (_STREAM, _STORAGE) or not 2 <= length <= 64 or length % 2:
                    continue
                names.add(entry[: length - 2].decode("utf-16-le", errors="replace"))
            sector = next_sector(sector)
        return names


def is_encrypted_package(path: Path) -> bool:
    """Whether ``path`` is a CFB container holding an encrypted OOXML package."""
    try:
        return stream_names(path) >= ENCRYPTED_PACKAGE_STREAMS
    except (NotACompoundFile, struct.error, OSError):
        return False


__all__ = [
    "ENCRYPTED_PACKAGE_STREAMS",
    "SIGNATURE",
    "NotACompoundFile",
    "is_encrypted_package",
    "stream_names",
]
