"""Object storage answers cut short never become a shorter file (the first rule: every input
row ends in exactly one outcome, so a file must never lose rows on its way from the store).

A fault proxy (``tests/s3faultproxy.py``) sits between the reader and the loopback S3 server
and spoils GET answers: cut with the connection closed, cut but well framed, empty, a shorter
range than asked. A read through it either gives exactly the object's bytes or raises
:class:`~sodtrack.errors.IncompleteObject` (retry later): never a shorter file.
"""

from __future__ import annotations

import asyncio
import io
import random
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook
from s3faultproxy import EVERY, FAULT_KINDS, Fault, FaultKind, FaultProxy, serve_fault_proxy

from bulkload.objstore_helpers import Store, make_store
from sodtrack import objstore
from sodtrack.bulkload.run import EXIT_OK, run_load
from sodtrack.errors import IncompleteObject
from sodtrack.settings import Settings

from .conftest import Sim, clean_file

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
    assert store.server is not None
    client = store.server.client(checksums=False)
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


def test_the_proxy_passes_what_it_does_not_spoil_byte_for_byte(s3: Store) -> None:
    """Writes (a PUT, a multipart upload: botocore's checksummed, possibly chunked bodies)
    and reads go through untouched when no fault is due: the faults are the only difference."""
    data = random.Random(11).randbytes((6 << 20) + 3)
    with proxied(s3) as (proxy, endpoint):
        fs, path = objstore.filesystem(s3.url("p", "one.bin"), endpoint_url=endpoint)
        fs.pipe_file(path, data)
        with fs.open(s3.url("p", "parts.bin"), "wb", block_size=5 << 20) as fh:  # multipart
            fh.write(data)
        back = objstore.read_object(s3.url("p", "parts.bin"), endpoint_url=endpoint)
    assert proxy.requests["PUT"] >= 2
    assert proxy.counts == {"ok": 1}
    assert back == data
    assert s3.read(s3.url("p", "one.bin")) == data


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


def test_a_bulk_load_never_loads_a_cut_upload_as_a_shorter_file(
    sim: Sim, s3: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """End to end: a stored CSV upload whose answers are cut at a row boundary (then empty)
    would parse as a valid file of fewer rows. The load instead loads nothing, says why and
    that a re-run later will do; once the store answers whole, the re-run loads every row."""
    local = clean_file(sim.root / "src" / "bookings.csv", rows=40, projects=3)
    data = local.read_bytes()
    url = _put(s3, tmp_path, "bookings.csv", data, checksum=False)
    at_a_row = data.index(b"\n", len(data) // 2) + 1
    outbox = tmp_path / "outbox"
    faults = (Fault("cut_framed", at=at_a_row, times=1), Fault("empty", times=EVERY))

    with proxied(s3, *faults) as (_proxy, endpoint):
        monkeypatch.setenv("SODTRACK_S3_ENDPOINT_URL", endpoint)
        try:
            run = asyncio.run(run_load(Settings(), url, uploaded_by="ops", outbox=outbox))
        except IncompleteObject as exc:
            failed: IncompleteObject | None = exc
        else:
            failed = None
            pytest.fail(f"loaded a cut upload: {run.headline()}")
    assert failed is not None
    assert (failed.size, failed.copied, failed.classification) == (len(data), at_a_row, "retry")
    assert "bookings.csv" in str(failed)
    assert "try again later" in str(failed)
    assert sim.writes() == {}  # nothing loaded, nothing half-loaded

    with proxied(s3, Fault("empty", times=1)) as (_proxy, endpoint):  # one more blip, then whole
        monkeypatch.setenv("SODTRACK_S3_ENDPOINT_URL", endpoint)
        again = asyncio.run(run_load(Settings(), url, uploaded_by="ops", outbox=outbox))
    assert again.exit_code == EXIT_OK, again.headline()
    assert again.accounted_for
    assert len(again.parsed.rows) == 40
    assert again.result.counts["created"] == 40


@pytest.mark.prefect
@pytest.mark.slow
@pytest.mark.xdist_group("load-shell-prefect")  # one worker, one harness (--dist loadgroup)
def test_the_flow_fails_a_cut_upload_to_be_rerun_with_nothing_loaded(
    prefect_harness: None, sim: Sim, s3: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ``bulk-load`` flow on a stored upload whose answers stay cut: ``Failed`` (re-run
    later), the message naming the file and saying nothing was loaded; never ``Completed``."""
    from flows.bulk_load import bulk_load

    local = clean_file(sim.root / "src" / "bookings.csv", rows=6, projects=1)
    url = _put(s3, tmp_path, "bookings.csv", local.read_bytes(), checksum=False)
    with proxied(s3, Fault("empty", times=EVERY)) as (_proxy, endpoint):
        monkeypatch.setenv("SODTRACK_S3_ENDPOINT_URL", endpoint)
        params = {"path": url, "country": "cl", "outbox": str(tmp_path / "outbox")}
        state: Any = asyncio.run(bulk_load(return_state=True, **params))  # type: ignore[call-overload,arg-type]
    assert state.is_failed()
    assert "nothing loaded, re-run later" in str(state.message)
    assert "bookings.csv" in str(state.message)
    assert sim.writes() == {}
