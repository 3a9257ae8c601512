"""A real S3-compatible server on loopback for the tests: moto's standalone server.

``python -m moto.server`` runs in its own process (an in-process ``ThreadedMotoServer``
deadlocks with delta-rs, whose calls hold the GIL while its runtime waits for the server
thread). It answers S3 over HTTP like any S3-compatible store, conditional puts included
(``If-None-Match: *``), which delta-rs needs for concurrent writers.

Without moto the S3 variants skip, saying why; ``SODTRACK_REQUIRE_S3=1`` (set by ``.ci/run``)
turns that skip into a failure.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

ACCESS_KEY = "sodtrack-test-key"
SECRET_KEY = "sodtrack-test-secret"
REGION = "us-east-1"


@dataclass(frozen=True)
class S3Server:
    endpoint: str

    def env(self) -> dict[str, str]:
        """The variables a process needs to reach the server (delta-rs, pyarrow, boto3)."""
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ALLOW_HTTP": "true",
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def client(self, *, checksums: bool = True) -> Any:
        """A boto3 S3 client of this server. ``checksums=False``: objects are put without a
        stored checksum (``when_required``), as older clients and many S3-compatible stores
        leave them."""
        import boto3  # type: ignore[import-untyped]
        from botocore.config import Config  # type: ignore[import-untyped]

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
            config=Config(
                request_checksum_calculation="when_supported" if checksums else "when_required"
            ),
        )

    def new_bucket(self) -> str:
        name = f"wh-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def require_moto() -> None:
    if importlib.util.find_spec("moto") is None:
        message = "moto[server] is not installed: the S3 variants need its standalone server"
        if os.environ.get("SODTRACK_REQUIRE_S3") == "1":
            pytest.fail(message)
        pytest.skip(message)


@contextmanager
def moto_server() -> Iterator[S3Server]:
    """Start ``python -m moto.server`` on a free loopback port; stop it afterwards."""
    require_moto()
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{endpoint}/moto-api/", timeout=1.0)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.1)
        yield S3Server(endpoint)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
