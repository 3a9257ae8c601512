"""A minimal Compound File Binary (OLE2) writer for the loader's tests, following [MS-CFB].

Enough to build the two containers an upload can be: a password-protected XLSX (streams
``EncryptionInfo`` and ``EncryptedPackage``, beside a ``\\x06DataSpaces`` storage) and an old
binary ``.xls`` (a ``Workbook`` stream). Every stream lives in regular sectors (the loader
reads only the directory); sectors are laid out in a random order when given a ``Random``,
and part of the FAT may be listed in a DIFAT sector instead of the header.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Mapping
from pathlib import Path

FREE = 0xFFFFFFFF
END = 0xFFFFFFFE
FATSECT = 0xFFFFFFFD
DIFSECT = 0xFFFFFFFC
NOSTREAM = 0xFFFFFFFF

ENCRYPTED_XLSX_STREAMS: dict[str, bytes] = {
    "\x06DataSpaces": b"",  # a storage in real files (written here as a storage entry)
    "EncryptionInfo": b"\x04\x00\x04\x00\x40\x00\x00\x00" + b"<encryption/>" * 40,
    "EncryptedPackage": struct.pack("<Q", 6000) + bytes(range(256)) * 24,
}
LEGACY_XLS_STREAMS: dict[str, bytes] = {
    "Workbook": b"\x09\x08\x10\x00\x00\x06\x05\x00" + b"\x00" * 3000,
    "\x05SummaryInformation": b"\xfe\xff" + b"\x00" * 200,
}


def write_cfb(
    path: Path,
    streams: Mapping[str, bytes],
    *,
    version: int = 3,
    rng: random.Random | None = None,
    difat_split: int | None = None,
) -> Path:
    """Write a CFB file holding ``streams`` (an empty value makes a storage entry)."""
    size = 512 if version == 3 else 4096
    per_sector = size // 4
    names = list(streams)
    entries = 1 + len(names)
    dir_count = -(-entries * 128 // size)
    data_counts = [max(1, -(-len(streams[n]) // size)) if streams[n] else 0 for n in names]
    difat_count = 1 if difat_split is not None else 0
    others = dir_count + sum(data_counts) + difat_count
    fat_count = 1
    while fat_count * per_sector < others + fat_count:
        fat_count += 1
    total = others + fat_count
    order = list(range(total))
    if rng is not None:
        rng.shuffle(order)
    ids = iter(order)
    fat_ids = [next(ids) for _ in range(fat_count)]
    difat_ids = [next(ids) for _ in range(difat_count)]
    dir_ids = [next(ids) for _ in range(dir_count)]
    data_ids = [[next(ids) for _ in range(c)] for c in data_counts]

    fat = [FREE] * (fat_count * per_sector)
    for s in fat_ids:
        fat[s] = FATSECT
    for s in difat_ids:
        fat[s] = DIFSECT
    for chain in [c for c in (dir_ids, *data_ids) if c]:
        for a, b in zip(chain, [*chain[1:], END], strict=True):
            fat[a] = b

    sectors: dict[int, bytes] = {}
    for i, s in enumerate(fat_ids):
        sectors[s] = struct.pack(f"<{per_sector}I", *fat[i * per_sector : (i + 1) * per_sector])
    header_fat = fat_ids if difat_split is None else fat_ids[:difat_split]
    if difat_ids:
        rest = fat_ids[len(header_fat) :]
        body = (rest + [FREE] * (per_sector - 1))[: per_sector - 1]
        sectors[difat_ids[0]] = struct.pack(f"<{per_sector}I", *body, END)

    directory = bytearray()
    directory += _entry("Root Entry", 5, child=1 if names else NOSTREAM, start=END, length=0)
    for i, name in enumerate(names):
        data = streams[name]
        right = i + 2 if i + 1 < len(names) else NOSTREAM
        start = data_ids[i][0] if data_ids[i] else END
        kind = 2 if data else 1
        directory += _entry(name, kind, right=right, start=start, length=len(data))
    directory = directory.ljust(dir_count * size, b"\x00")
    for i, s in enumerate(dir_ids):
        sectors[s] = bytes(directory[i * size : (i + 1) * size])
    for i, name in enumerate(names):
        data = streams[name].ljust(len(data_ids[i]) * size, b"\x00")
        for j, s in enumerate(data_ids[i]):
            sectors[s] = data[j * size : (j + 1) * size]

    header = bytearray(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 16)
    header += struct.pack("<HHHHH", 0x3E, version, 0xFFFE, 9 if version == 3 else 12, 6)
    header += b"\x00" * 6
    header += struct.pack(
        "<IIIIIIIII",
        dir_count if version == 4 else 0,
        fat_count,
        dir_ids[0],
        0,
        4096,
        END,
        0,
        difat_ids[0] if difat_ids else END,
        difat_count,
    )
    header += struct.pack("<109I", *(header_fat + [FREE] * (109 - len(header_fat))))
    assert len(header) == 512
    out = bytes(header).ljust(size, b"\x00")
    out += b"".join(sectors[s] for s in range(total))
    path.write_bytes(out)
    return path


def _entry(
    name: str,
    kind: int,
    *,
    child: int = NOSTREAM,
    right: int = NOSTREAM,
    start: int,
    length: int,
) -> bytes:
    encoded = (name + "\x00").encode("utf-16-le")
    assert len(encoded) <= 64
    return (
        encoded.ljust(64, b"\x00")
        + struct.pack("<HBB", len(encoded), kind, 1)
        + struct.pack("<III", NOSTREAM, right, child)
        + b"\x00" * 16  # CLSID
        + b"\x00" * 4  # state bits
        + b"\x00" * 16  # creation and modification times
        + struct.pack("<IQ", start, length)
    )
