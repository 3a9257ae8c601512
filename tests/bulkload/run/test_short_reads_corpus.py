"""A generated corpus against the fault proxy: every read of an object from object storage gives
exactly its bytes or raises :class:`~sodtrack.errors.IncompleteObject`, never anything else.

Seeded files (empty, one byte, CSV text and XLSX-like zip bytes at sizes around
:data:`~sodtrack.objstore.COPY_CHUNK`, one past s3fs's block size), stored with and without a
checksum, × every fault kind × how often it strikes (once, twice, every answer) × where the
body is cut and which answer is spoiled first (seeded draws) × the reader
(:func:`~sodtrack.objstore.local_copy`, :func:`~sodtrack.objstore.read_object`, the upload
page's :class:`~sodtrack.web.storage.Place`).

s3fs's own retries are cut to two (``S3FileSystem.retries``) so that a fault on every answer
reaches this project's re-reads quickly: its backoff sleeps are the only waits here.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from s3faultproxy import EVERY, FAULT_KINDS, Fault, FaultKind, FaultProxy, serve_fault_proxy
from s3server import S3Server

from sodtrack import objstore
from sodtrack.errors import IncompleteObject

SEED = 20261203
CHUNK = objstore.COPY_CHUNK
BLOCK = 50 << 20
"""s3fs's default block size: its first range asks for one copy chunk plus this much."""


def _csv(size: int, rng: random.Random) -> bytes:
    lines = [b"external_reference,service_sku,postal_code,amount"]
    total = len(lines[0]) + 2
    i = 0
    while total < size:
        line = (
            f"ref-{i:07d},SKU-{rng.randrange(10**4):04d},{rng.randrange(10**7):07d},"
            f"{rng.random():.6f}"
        )
        lines.append(line.encode())
        total += len(line) + 2
        i += 1
    return (b"\r\n".join(lines) + b"\r\n")[:size]


def _xlsx_like(size: int, rng: random.Random) -> bytes:
    return (b"PK\x03\x04" + rng.randbytes(max(0, size - 4)))[:size]


def corpus() -> dict[str, bytes]:
    """name → bytes, the same on every run (seeded)."""
    rng = random.Random(SEED)
    files = {"empty.csv": b"", "one.csv": b"e"}
    for size in (CHUNK - 1, CHUNK, CHUNK + 1):
        files[f"rows-{size}.csv"] = _csv(size, rng)
    for size in (2 * CHUNK + 1, 3 * CHUNK - 7):
        files[f"book-{size}.xlsx"] = _xlsx_like(size, rng)
    return files


READERS = ["local_copy", "read_object", "page"]
"""The bulk load's copy, a small object read whole, and the upload page (a text it shows,
``Place.read_text``, for CSV files; a download it streams, ``Place.chunks``, for the rest)."""


@dataclass(frozen=True)
class Case:
    name: str
    checksum: bool
    kind: FaultKind
    times: int
    at: float | int
    after: int
    reader: str

    @property
    def id(self) -> str:
        times = "every" if self.times == EVERY else f"x{self.times}"
        stored = "crc32" if self.checksum else "bare"
        return (
            f"{self.name}-{stored}-{self.kind}-{times}-at{self.at}-after{self.after}-{self.reader}"
        )


def cases() -> list[Case]:
    """Every file × kind × times, with a seeded cut position, first spoiled answer, reader and
    stored checksum."""
    rng = random.Random(SEED + 1)
    found = []
    for name in corpus():
        for kind in FAULT_KINDS:
            for times in (1, 2, EVERY):
                at: float | int = rng.choice([1, -1, 0.5, CHUNK, CHUNK - 1, round(rng.random(), 3)])
                found.append(
                    Case(
                        name=name,
                        checksum=rng.random() < 0.5,
                        kind=kind,
                        times=times,
                        at=at,
                        after=rng.choice([0, 0, 1]),
                        reader=rng.choice(READERS),
                    )
                )
    return found


@pytest.fixture(scope="module")
def stored(s3_server: S3Server) -> dict[tuple[str, bool], str]:
    """Every corpus file in a fresh bucket, with and without a stored checksum → its URL."""
    bucket = s3_server.new_bucket()
    urls = {}
    for checksum in (False, True):
        client = s3_server.client(checksums=checksum)
        folder = "crc32" if checksum else "bare"
        for name, data in corpus().items():
            client.put_object(Bucket=bucket, Key=f"{folder}/{name}", Body=data)
            urls[(name, checksum)] = f"s3://{bucket}/{folder}/{name}"
    return urls


@pytest.fixture
def reach(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from s3fs import S3FileSystem  # type: ignore[import-untyped]

    for key, value in s3_server.env().items():
        if key != "AWS_ENDPOINT_URL":
            monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setattr(S3FileSystem, "retries", 2)
    S3FileSystem.clear_instance_cache()  # a new proxy may reuse an old one's port
    yield
    S3FileSystem.clear_instance_cache()


def read_through(reader: str, url: str, endpoint: str, max_bytes: int | None = None) -> Any:
    if reader == "read_object":
        return objstore.read_object(url, endpoint_url=endpoint)
    if reader == "page":  # the upload page: a text it shows, or a download it streams
        from sodtrack.web.storage import Place

        root, name = url.rsplit("/", 1)
        place = Place(root, setting="SODTRACK_OUTBOX", endpoint_url=endpoint)
        if name.endswith(".csv"):
            text = place.read_text(name)
            return None if text is None else text.encode("utf-8")
        found = place.file(name)
        assert found is not None
        assert found.size == len(corpus()[name])
        return b"".join(place.chunks(found))
    with objstore.local_copy(url, max_bytes=max_bytes, endpoint_url=endpoint) as copy:
        return copy.read_bytes()


@pytest.mark.parametrize("case", cases(), ids=lambda c: c.id)
def test_a_read_is_the_whole_object_or_the_classified_error(
    case: Case, stored: dict[tuple[str, bool], str], s3_server: S3Server, reach: None
) -> None:
    data = corpus()[case.name]
    url = stored[(case.name, case.checksum)]
    proxy = FaultProxy(
        s3_server.endpoint, [Fault(case.kind, case.at, case.times)], after=case.after
    )
    got: Any = None
    failed: IncompleteObject | None = None
    with serve_fault_proxy(proxy) as endpoint:
        try:
            got = read_through(case.reader, url, endpoint)
        except IncompleteObject as exc:
            failed = exc
    if failed is not None:
        assert case.times == EVERY, f"{failed!r} with {proxy.counts}"  # re-reads cure fewer
        assert failed.size == len(data)
        assert failed.copied < len(data)
        assert failed.classification == "retry"
        return
    assert isinstance(got, bytes), got
    assert len(got) == len(data), f"{len(got)} of {len(data)} bytes ({proxy.counts})"
    assert got == data


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_over_the_limit_under_faults_the_copy_is_still_cut_just_past_the_limit(
    kind: FaultKind, stored: dict[tuple[str, bool], str], s3_server: S3Server, reach: None
) -> None:
    """``max_bytes`` keeps its meaning: a longer object arrives as exactly its first
    ``max_bytes + 1`` bytes (for the reader's size check to refuse), not as a short read."""
    name = f"book-{2 * CHUNK + 1}.xlsx"
    data = corpus()[name]
    limit = CHUNK + 10
    proxy = FaultProxy(s3_server.endpoint, [Fault(kind, 0.3, 1)])
    with serve_fault_proxy(proxy) as endpoint:
        got = read_through("local_copy", stored[(name, False)], endpoint, max_bytes=limit)
    assert got == data[: limit + 1]


@pytest.mark.slow
@pytest.mark.parametrize("after", [0, 1], ids=["first-range", "tail-range"])
@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_past_the_block_size_a_spoiled_range_is_read_again(
    kind: FaultKind, after: int, s3_server: S3Server, reach: None, tmp_path: Path
) -> None:
    """An object one byte longer than s3fs's first range (a copy chunk plus its block size):
    the first range or the one-byte tail spoiled once, the copy is still the object."""
    data = _xlsx_like(CHUNK + BLOCK + 1, random.Random(SEED + 2))
    bucket = s3_server.new_bucket()
    s3_server.client().put_object(Bucket=bucket, Key="big.xlsx", Body=data)
    proxy = FaultProxy(s3_server.endpoint, [Fault(kind, 0.5, 1)], after=after)
    with serve_fault_proxy(proxy) as endpoint:
        got = read_through("local_copy", f"s3://{bucket}/big.xlsx", endpoint)
    assert proxy.counts[kind] + proxy.counts["passed"] == 1, proxy.counts
    assert len(got) == len(data)
    assert got == data
