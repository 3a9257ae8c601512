"""Taking a file in: the multipart body parsed while it streams, the file hashed on the way,
and a file over the limit refused after reading at most the limit (never written whole)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from sodtrack.errors import FileTooLarge
from sodtrack.simulator.testing import serve_in_thread
from sodtrack.web.receive import receive_multipart

from .conftest import Site

BOUNDARY = "sodtrackboundary"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"
CHUNK = 1 << 20
TWO_GB = 2 << 30


def _head(name: str) -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="country"\r\n\r\ncl\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: text/csv\r\n\r\n"
    ).encode()


def _tail() -> bytes:
    return f"\r\n--{BOUNDARY}--\r\n".encode()


class Body:
    """A multipart body with a file of ``size`` bytes, made as it is read; counts what the
    reader took."""

    def __init__(self, size: int, name: str = "big.csv") -> None:
        self.size = size
        self.name = name
        self.taken = 0

    def chunks(self) -> Iterator[bytes]:
        yield _head(self.name)
        left = self.size
        while left > 0:
            n = min(CHUNK, left)
            self.taken += n
            yield b"a,b\n" * (n // 4) + b"x" * (n % 4)
            left -= n
        yield _tail()

    async def stream(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks():
            yield chunk


def test_fields_and_file_are_read_and_hashed(tmp_path: Path) -> None:
    body = Body(3 * CHUNK + 5, name="../../etc/passwd.csv")
    got = asyncio.run(
        receive_multipart(body.stream(), CONTENT_TYPE, max_file_bytes=10 * CHUNK, tmp_dir=tmp_path)
    )
    data = b"".join(list(Body(3 * CHUNK + 5).chunks())[1:-1])
    assert got.fields == {"country": "cl"}
    assert got.file_name == "passwd.csv", "the client's path is dropped"
    assert got.size == len(data)
    assert got.sha256 == hashlib.sha256(data).hexdigest()
    assert got.path is not None
    assert got.path.read_bytes() == data
    assert (got.path.stat().st_mode & 0o777) == 0o600


def test_a_2_gb_file_is_refused_after_the_limit(tmp_path: Path) -> None:
    body = Body(TWO_GB)
    with pytest.raises(FileTooLarge):
        asyncio.run(
            receive_multipart(body.stream(), CONTENT_TYPE, max_file_bytes=CHUNK, tmp_dir=tmp_path)
        )
    assert body.taken <= 2 * CHUNK, f"read {body.taken} bytes of a 2 GB upload"
    assert list(tmp_path.iterdir()) == [], "the partial file is removed"


def test_a_2_gb_upload_over_a_real_socket_is_refused(stored_site: Site) -> None:
    """Over a real socket, to uploads on a local folder and on S3: refused once the limit
    is passed, nothing stored (the spool file is bounded by the limit and removed)."""
    site = stored_site
    settings = site.settings.model_copy(update={"upload_max_file_bytes": CHUNK})
    from sodtrack.web.app import create_web_app

    token = site.accounts.new_token("ana")
    body = Body(TWO_GB)
    with serve_in_thread(create_web_app(settings)) as url:
        try:
            answer = httpx.post(
                f"{url}/api/uploads",
                content=body.chunks(),
                headers={"content-type": CONTENT_TYPE, "authorization": f"Bearer {token}"},
                timeout=60,
            )
        except httpx.TransportError:
            pass  # the server answered 413 and closed while the client was still sending
        else:
            assert answer.status_code == 413, answer.text
    assert body.taken < 256 * CHUNK, f"sent {body.taken} bytes before the refusal"
    assert site.stored("uploads") == []
