"""Object storage answers cut short never become a shorter file (the first rule: every input
row ends in exactly one outcome, so a file must never lose rows on its way from the store).

A fault proxy (``tests/s3faultproxy.py``) sits between the reader and the loopback S3 server
and spoils GET answers: cut with the connection closed, cut but well framed, empty, a shorter
range than asked. A read through it either gives exactly the object's bytes or raises
:class:`~sodtrack.errors.IncompleteObject` (retry later): never a shorter file.
"""

from __future__ import annotations

import io
import random
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import pytest
from openpyxl import Workbook
from s3faultproxy import EVERY, FAULT_KINDS, Fault, FaultKind, FaultProxy, serve_fault_proxy

from bulkload.objstore_helpers import Store, make_store
from sodtrack import objstore
from sodtrack.errors import IncompleteObject

CSV_ROWS = 30_000


def csv_bytes(rows: int = CSV_ROWS, seed: int = 3) -> bytes:
    """A CSV upload of ``rows`` rows (about 1.5 MiB at 30,000: more than one copy chunk)."""
    rng = random.Random(seed)
    lines = ["external_reference,service_sku,postal_code,amount"]
    lines += [
        f"ref-{i:06d},SKU-{rng.randrange(1000):04d},{rng.randrange(10**7):07d},"
        f"{rng.randrange(10**6)}.{rng.randrange(100):02d}"
        for i in range(rows)
    ]
    return ("\r\n".join(lines) + "\r\n").encode()


def xlsx_bytes(rows: int = 20_000, seed: int = 5) -> bytes:
    """An XLSX upload of ``rows`` rows (a zip: cut short, it is not a smaller workbook)."""
    rng = random.Random(seed)
    book = Workbook(write_only=True)
    book.properties.created = book.properties.modified = datetime(2026, 1, 2, 3, 4, 5)
    sheet = book.create_sheet("bookings")
    sheet.append(["external_reference", "service_sku", "notes"])
    for i in range(rows):
        sheet.append([f"ref-{i:06d}", f"SKU-{rng.randrange(1000):04d}", rng.randbytes(24).hex()])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    from s3fs import S3FileSystem  # type: ignore[import-untyped]

    # fsspec caches one filesystem per endpoint: a new proxy may reuse an old one's port.
    S3FileSystem.clear_instance_cache()
    return make_store("s3", tmp_path, monkeypatch, request)


@pytest.fixture(scope="module")
def uploads() -> dict[str, bytes]:
    return {"bookings.csv": csv_bytes(), "bookings.xlsx": xlsx_bytes()}


def _put(store: Store, tmp_path: Path, name: str, data: bytes, *, checksum: bool) -> str:
    """Store ``data`` at ``uploads/upl_cut/<name>``, straight to the server (not through the
    proxy). ``checksum``: as today's boto clients send it (``CRC32``, which the server keeps
    and returns on a whole-object GET, so botocore can notice some cut answers); without: as
    older clients, other tools and many S3-compatible stores leave an object (nothing but
    the length to go by)."""
    if checksum:
        local = tmp_path / f"src-{name}"
        local.write_bytes(data)
        return store.put(local, "uploads", "upl_cut", name)
    import boto3  # type: ignore[import-untyped]
    from botocore.config import Config  # type: ignore[import-untyped]

    assert store.server is not None
    env = store.server.env()
    client = boto3.client(
        "s3",
        endpoint_url=store.server.endpoint,
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_REGION"],
        config=Config(request_checksum_calculation="when_required"),
    )
    bucket = store.root.removeprefix("s3://")
    client.put_object(Bucket=bucket, Key=f"uploads/upl_cut/{name}", Body=data)
    return store.url("uploads", "upl_cut", name)


@contextmanager
def proxied(store: Store, *faults: Fault) -> Iterator[tuple[FaultProxy, str]]:
    proxy = FaultProxy(str(store.endpoint), faults)
    with serve_fault_proxy(proxy) as endpoint:
        yield proxy, endpoint


def copy_through(url: str, endpoint: str, max_bytes: int | None = None) -> bytes:
    with objstore.local_copy(url, max_bytes=max_bytes, endpoint_url=endpoint) as copy:
        return copy.read_bytes()


@pytest.mark.parametrize("kind", FAULT_KINDS)
@pytest.mark.parametrize("name", ["bookings.csv", "bookings.xlsx"])
@pytest.mark.parametrize("checksum", [False, True], ids=["no-checksum", "crc32"])
def test_an_answer_cut_once_still_gives_the_whole_upload(
    s3: Store, tmp_path: Path, uploads: dict[str, bytes], name: str, kind: FaultKind, checksum: bool
) -> None:
    """One spoiled answer (a flaky network): the copy is the object, byte for byte."""
    data = uploads[name]
    url = _put(s3, tmp_path, name, data, checksum=checksum)
    with proxied(s3, Fault(kind, at=0.5, times=1)) as (proxy, endpoint):
        got = copy_through(url, endpoint, max_bytes=50 << 20)
    assert proxy.counts[kind] + proxy.counts["passed"] == 1, proxy.counts
    assert len(got) == len(data), f"{name}: {len(got)} of {len(data)} bytes copied"
    assert got == data


@pytest.mark.parametrize("kind", FAULT_KINDS)
@pytest.mark.parametrize("name", ["bookings.csv", "bookings.xlsx"])
@pytest.mark.parametrize("checksum", [False, True], ids=["no-checksum", "crc32"])
def test_answers_always_cut_fail_the_copy_instead_of_shortening_it(
    s3: Store, tmp_path: Path, uploads: dict[str, bytes], name: str, kind: FaultKind, checksum: bool
) -> None:
    """Every answer spoiled: no copy at all, one classified error (retry later). A shorter
    range than asked that still holds a byte too: fsspec would read on a byte at a time, but
    each short answer costs one of the bounded reads."""
    data = uploads[name]
    url = _put(s3, tmp_path, name, data, checksum=checksum)
    got: bytes | None = None
    failed: IncompleteObject | None = None
    with proxied(s3, Fault(kind, at=0.5, times=EVERY)) as (_proxy, endpoint):
        try:
            got = copy_through(url, endpoint, max_bytes=50 << 20)
        except IncompleteObject as exc:
            failed = exc
    assert got is None, f"{name}: a {len(got)}-byte copy of a {len(data)}-byte object"
    assert failed is not None
    assert (failed.size, failed.classification) == (len(data), "retry")
    assert failed.copied < len(data)
    assert name in str(failed)
