"""A place for uploads, stored uploads and results: a local folder or a bucket on the loopback
S3 server, reached the way a deployment reaches it (``SODTRACK_S3_ENDPOINT_URL`` and the
``AWS_*`` credential variables; no ``AWS_ENDPOINT_URL``, so the setting is what routes)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from s3server import S3Server

from sodtrack.objstore import filesystem


@dataclass(frozen=True)
class Store:
    root: str
    endpoint: str | None = None
    server: S3Server | None = None

    @property
    def remote(self) -> bool:
        return self.server is not None

    def url(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def fs(self) -> tuple[Any, str]:
        return filesystem(self.root, endpoint_url=self.endpoint)

    def put(self, local: Path, *parts: str) -> str:
        fs, _ = filesystem(self.url(*parts), endpoint_url=self.endpoint)
        target = self.url(*parts)
        if not self.remote:
            Path(target).parent.mkdir(parents=True, exist_ok=True)
        fs.put_file(str(local), fs._strip_protocol(target))
        return target

    def exists(self, url: str) -> bool:
        fs, path = filesystem(url, endpoint_url=self.endpoint)
        return bool(fs.exists(path))

    def read(self, url: str) -> bytes:
        fs, path = filesystem(url, endpoint_url=self.endpoint)
        data: bytes = fs.cat_file(path)
        return data

    def public_grants(self, url: str) -> list[Any]:
        """Grants of the object to everyone or to any AWS user (there must be none)."""
        assert self.server is not None
        bucket, _, key = url.removeprefix("s3://").partition("/")
        grants = self.server.client().get_object_acl(Bucket=bucket, Key=key)["Grants"]
        return [g for g in grants if "URI" in g["Grantee"] and "groups" in g["Grantee"]["URI"]]


def make_store(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Store:
    """``local``: a folder; ``s3``: a fresh bucket, with the variables a deployment sets."""
    if kind == "local":
        return Store(str(tmp_path / "store"))
    server: S3Server = request.getfixturevalue("s3_server")
    for key, value in server.env().items():
        if key != "AWS_ENDPOINT_URL":
            monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("SODTRACK_S3_ENDPOINT_URL", server.endpoint)
    return Store(f"s3://{server.new_bucket()}", server.endpoint, server)
