"""Password-protected XLSX (issue #10, item 11): its own message, not "an old .xls".

An XLSX saved with a password is a Compound File (OLE2) holding ``EncryptionInfo`` and
``EncryptedPackage`` streams, like an old ``.xls`` is a Compound File holding ``Workbook``.
The containers are built by hand (:mod:`.cfb_files`), in many layouts.
"""

from __future__ import annotations

import contextlib
import random
from pathlib import Path

import pytest

from bulkload.cfb_files import ENCRYPTED_XLSX_STREAMS, LEGACY_XLS_STREAMS, write_cfb
from sodtrack.bulkload import IssueCode, read_upload
from sodtrack.bulkload.reading.cfb import NotACompoundFile, is_encrypted_package, stream_names


def test_a_password_protected_xlsx_says_so(tmp_path: Path) -> None:
    path = write_cfb(tmp_path / "bookings.xlsx", ENCRYPTED_XLSX_STREAMS)
    upload = read_upload(path, "cl")
    (issue,) = upload.upload_issues
    assert issue.code == IssueCode.FILE_ENCRYPTED
    assert issue.message == (
        "The workbook is password-protected: save it without a password and upload it again."
    )
    assert ".xls" not in issue.message
    assert upload.rows == []


def test_an_old_xls_is_still_an_old_xls(tmp_path: Path) -> None:
    path = write_cfb(tmp_path / "old.xls", LEGACY_XLS_STREAMS)
    assert stream_names(path) == set(LEGACY_XLS_STREAMS)
    (issue,) = read_upload(path, "cl").upload_issues
    assert issue.code == IssueCode.UNSUPPORTED_FILE_TYPE
    assert ".xls" in issue.message


@pytest.mark.parametrize("seed", range(40))
def test_generated_containers(tmp_path: Path, seed: int) -> None:
    """Random sector layouts, both CFB versions, the FAT partly in a DIFAT sector, extra
    streams, and sometimes only one of the two encryption streams: encrypted exactly when
    both are there."""
    rng = random.Random(seed)
    streams: dict[str, bytes] = {}
    kind = rng.choice(["encrypted", "xls", "half"])
    if kind == "encrypted":
        streams.update(ENCRYPTED_XLSX_STREAMS)
    elif kind == "xls":
        streams.update(LEGACY_XLS_STREAMS)
    else:
        name = rng.choice(["EncryptionInfo", "EncryptedPackage"])
        streams[name] = ENCRYPTED_XLSX_STREAMS[name]
        streams["Workbook"] = LEGACY_XLS_STREAMS["Workbook"]
    for i in range(rng.randint(0, 12)):
        streams[f"Extra{i}"] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 3000)))
    items = list(streams.items())
    rng.shuffle(items)
    version = rng.choice([3, 4])
    path = write_cfb(
        tmp_path / "upload.xlsx",
        dict(items),
        version=version,
        rng=rng,
        difat_split=rng.choice([None, 0, 1]),
    )
    assert stream_names(path) == set(streams)
    assert is_encrypted_package(path) == (kind == "encrypted")
    (issue,) = read_upload(path, "cl").upload_issues
    expected = IssueCode.FILE_ENCRYPTED if kind == "encrypted" else IssueCode.UNSUPPORTED_FILE_TYPE
    assert issue.code == expected


@pytest.mark.parametrize("seed", range(30))
def test_damaged_containers_never_hang_or_crash(tmp_path: Path, seed: int) -> None:
    """Bytes flipped in the header and the sectors (loops, sectors past the end, absurd
    counts): the answer is an upload-level issue, quickly."""
    rng = random.Random(seed)
    path = write_cfb(tmp_path / "x.xlsx", ENCRYPTED_XLSX_STREAMS, rng=rng)
    data = bytearray(path.read_bytes())
    for _ in range(rng.randint(1, 40)):
        at = rng.randrange(8, min(len(data), 2048))  # the header and the first sectors
        data[at] = rng.randrange(256)
    path.write_bytes(bytes(data))
    with contextlib.suppress(NotACompoundFile):  # anything else fails the test
        stream_names(path)
    (issue,) = read_upload(path, "cl").upload_issues
    assert issue.code in (IssueCode.FILE_ENCRYPTED, IssueCode.UNSUPPORTED_FILE_TYPE)


def test_a_directory_chain_that_loops_is_refused(tmp_path: Path) -> None:
    path = write_cfb(tmp_path / "x.xlsx", ENCRYPTED_XLSX_STREAMS)
    data = bytearray(path.read_bytes())
    # Sector 0 is the FAT (no rng); make the directory's FAT entry point at itself.
    first_directory = int.from_bytes(data[0x30:0x34], "little")
    at = 512 + first_directory * 4
    data[at : at + 4] = first_directory.to_bytes(4, "little")
    path.write_bytes(bytes(data))
    with pytest.raises(NotACompoundFile):
        stream_names(path)
    assert not is_encrypted_package(path)
