from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from s3server import S3Server, moto_server

from sodtrack.warehouse import Warehouse


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    with moto_server() as server:
        yield server


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A warehouse root: a local folder, or a fresh bucket on the loopback S3 server."""
    if request.param == "local":
        return str(tmp_path / "wh")
    server: S3Server = request.getfixturevalue("s3_server")
    for key, value in server.env().items():
        monkeypatch.setenv(key, value)
    return f"s3://{server.new_bucket()}/warehouse"


@pytest.fixture
def wh(storage: str, tmp_path: Path) -> Warehouse:
    # durable=False skips fsyncs of the stagings: same protocol, faster tests.
    return Warehouse(storage, scratch=tmp_path / "scratch", durable=False)
