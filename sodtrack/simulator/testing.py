"""Helpers to use the simulator from tests, in-process or over a real socket.

* ``SimulatorTransport(app)``: an ``httpx`` transport that runs the app in-process (over
  ``httpx.ASGITransport``) and turns a simulated cut-off connection into
  ``httpx.RemoteProtocolError``, which is what httpx raises when a real server closes the
  connection mid-response. Clients under test therefore see the same exception either way.
* ``serve_in_thread(app)``: the app under real uvicorn on a free loopback port, in a
  background thread; yields the base URL and stops the server on exit.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn
from starlette.types import ASGIApp

from sodtrack.simulator.app import SimulatedDrop
from sodtrack.simulator.config import SimConfig

SIM_NOW = "2026-06-10T12:00:00-04:00"
"""A Wednesday, mid-morning in Santiago: bookable slots later that day and all week."""


def small_config(**overrides: Any) -> SimConfig:
    """A small, fast simulator for tests (seeds in well under a second): fixed clock at
    ``SIM_NOW``, no rate limit, 2,000 bookings, a second client ``other-client``."""
    settings: dict[str, Any] = {
        "now": SIM_NOW,
        "rate_limit": 0.0,
        "bookings": 2000,
        "services": 80,
        "variants": 240,
        "zones": 20,
        "postal_codes": 2000,
        "extra_clients": (("other-client", "other-secret"),),
    }
    settings.update(overrides)
    return SimConfig(**settings)


class SimulatorTransport(httpx.AsyncBaseTransport):
    def __init__(self, app: ASGIApp, client: tuple[str, int] = ("127.0.0.1", 50_000)) -> None:
        self._inner = httpx.ASGITransport(app=app, client=client)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await self._inner.handle_async_request(request)
        except SimulatedDrop as exc:
            raise httpx.RemoteProtocolError(
                "peer closed connection without sending complete message body "
                "(simulated drop after commit)",
                request=request,
            ) from exc

    async def aclose(self) -> None:
        await self._inner.aclose()


class _QuietDrops(logging.Filter):
    """Keeps uvicorn from logging a traceback for each deliberate cut-off."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, SimulatedDrop)


def quiet_simulated_drops() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _QuietDrops) for f in logger.filters):
        logger.addFilter(_QuietDrops())


@contextmanager
def serve_in_thread(
    app: ASGIApp, host: str = "127.0.0.1", log_level: str = "warning"
) -> Iterator[str]:
    """Run ``app`` under uvicorn on a free port of ``host``; yields ``http://host:port``."""
    quiet_simulated_drops()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,
        lifespan="off",
        timeout_keep_alive=30,
        date_header=False,  # the simulator sends its own clock's
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="sodtrack-sim", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the simulator did not start")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
