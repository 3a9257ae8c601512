"""A fault-injecting HTTP proxy for tests and benchmarks: a flaky network in front of the
simulator (issue #10, item 6).

:func:`serve_flaky_proxy` runs a small HTTP/1.1 server on a free loopback port, in a
background thread with its own event loop (asyncio streams, so that it controls every byte:
framing, cut-offs, stalls). Each request is forwarded to ``upstream`` (the simulator under
uvicorn, see :func:`~sodtrack.simulator.testing.serve_in_thread`) unless the proxy spoils it.

Which request is spoiled, and how, is decided by a hash of ``(seed, method, target, body, n)``
where ``n`` counts earlier identical requests: the same client behaviour meets the same faults
whatever the interleaving of concurrent requests, and a retry of a spoiled request is a new
draw. About ``rate`` of all answers are spoiled, in these ways (:data:`FAULTS`, weights)::

    5xx_json     500/502/503/504 with the API's error envelope    not forwarded
    5xx_html     500/502/503/504 with an HTML error page          not forwarded
    429_bare     429 without Retry-After or rate-limit headers    not forwarded
    stall        no answer for ``stall_s`` (> the client's read   not forwarded
                 timeout), then the connection is closed
    held_drop    forwarded, committed, connection closed unanswered
    held_502     forwarded, committed, answered 502 (HTML)
    held_stall   forwarded, committed, then a stall and a close
    cut_200      forwarded; a 2xx answered 200 with its body cut short (well framed)
    empty_200    forwarded; a 2xx answered 200 with an empty body

:attr:`FlakyProxy.script` adds faults on cue: ``"GET /api/v1/catalog/services"`` → a list of
fault kinds given, in order, to the next requests of that method and path (whatever the
draw), e.g. to spoil the checks before writing on every run.

``cut_200`` and ``empty_200`` only spoil answers that were 2xx (an error answer passes
through; it is counted as ``passed``). :attr:`FlakyProxy.counts` holds how many of each were
served; ``ok`` counts answers passed through untouched.

Not a general proxy: requests must carry ``Content-Length`` (no chunked uploads), which every
request of :class:`~sodtrack.client.SodtrackClient` does.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http import HTTPStatus

import httpx

FAULTS: Mapping[str, float] = {
    "5xx_json": 2.0,
    "5xx_html": 2.0,
    "429_bare": 1.5,
    "stall": 1.0,
    "held_drop": 1.0,
    "held_502": 1.0,
    "held_stall": 0.5,
    "cut_200": 2.0,
    "empty_200": 1.0,
}
"""Fault kind → relative weight among the spoiled answers."""

_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "transfer-encoding",
        "content-length",
        "content-encoding",
        "host",
        "accept-encoding",
    }
)


@dataclass
class FlakyProxy:
    upstream: str
    seed: int = 0
    rate: float = 0.12
    stall_s: float = 1.0
    faults: Mapping[str, float] = field(default_factory=lambda: dict(FAULTS))
    counts: Counter[str] = field(default_factory=Counter)
    """Fault kind (or ``ok``, ``passed``) → answers served that way."""
    requests: int = 0
    script: dict[str, list[str]] = field(default_factory=dict)
    """``"METHOD /path"`` → fault kinds for its next requests (consumed in order)."""
    _seen: Counter[str] = field(default_factory=Counter)
    _upstream: httpx.AsyncClient | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # ------------------------------------------------------------------ the draw

    def draw(self, method: str, target: str, body: bytes) -> str | None:
        """The fault for this request (``None``: forward and answer faithfully)."""
        cue = f"{method} {target.partition('?')[0]}"
        with self._lock:
            scripted = self.script.get(cue)
            if scripted:
                self.requests += 1
                return scripted.pop(0)
        identity = hashlib.sha256(method.encode() + b" " + target.encode() + b"\n" + body)
        key = identity.hexdigest()
        with self._lock:
            n = self._seen[key]
            self._seen[key] += 1
            self.requests += 1
        digest = hashlib.sha256(f"{self.seed}|{key}|{n}".encode()).digest()
        u = int.from_bytes(digest[:8], "big") / 2**64
        if u >= self.rate:
            return None
        v = int.from_bytes(digest[8:16], "big") / 2**64 * sum(self.faults.values())
        for kind, weight in self.faults.items():
            if v < weight:
                return kind
            v -= weight
        return next(reversed(list(self.faults)))

    def _pick(self, seed_text: str, options: int) -> int:
        digest = hashlib.sha256(f"{self.seed}|{seed_text}".encode()).digest()
        return int.from_bytes(digest[:8], "big") % options

    def _count(self, kind: str) -> None:
        with self._lock:
            self.counts[kind] += 1

    # ------------------------------------------------------------------ serving

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._upstream is None:
            # One client for every connection (built in the proxy's loop): a client per
            # connection costs an SSL context each, and a client retrying after timeouts
            # opens many connections.
            self._upstream = httpx.AsyncClient(
                base_url=self.upstream,
                timeout=60,
                limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
            )
        try:
            while await self._one(reader, writer, self._upstream):
                pass
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:
            # Shutting down (a keep-alive connection still open): end quietly, so that
            # asyncio's stream callback does not log the cancellation as an error.
            pass
        finally:
            writer.close()
            with suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _one(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        upstream: httpx.AsyncClient,
    ) -> bool:
        """Serve one request; False when the connection is to be closed."""
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, _version = lines[0].split(" ", 2)
        headers: list[tuple[str, str]] = []
        length = 0
        for line in lines[1:]:
            if not line:
                continue
            name, _, value = line.partition(":")
            name, value = name.strip(), value.strip()
            if name.lower() == "content-length":
                length = int(value)
            headers.append((name, value))
        body = await reader.readexactly(length) if length else b""
        fault = self.draw(method, target, body)

        if fault in ("5xx_json", "5xx_html"):
            status = (500, 502, 503, 504)[self._pick(f"{target}|{fault}", 4)]
            await self._answer(writer, status, *_error_page(status, html=fault == "5xx_html"))
            self._count(fault)
            return True
        if fault == "429_bare":
            await self._answer(writer, 429, b"", "text/plain")
            self._count(fault)
            return True
        if fault == "stall":
            self._count(fault)
            await asyncio.sleep(self.stall_s)
            return False

        forwarded = [(k, v) for k, v in headers if k.lower() not in _HOP]
        response = await upstream.request(method, target, headers=forwarded, content=body)
        content = response.content
        ctype = response.headers.get("content-type", "application/json")
        extra = [
            (k, v) for k, v in response.headers.items() if k.lower() not in _HOP | {"content-type"}
        ]
        if fault == "held_drop":
            self._count(fault)
            return False
        if fault == "held_stall":
            self._count(fault)
            await asyncio.sleep(self.stall_s)
            return False
        if fault == "held_502":
            await self._answer(writer, 502, *_error_page(502, html=True))
            self._count(fault)
            return True
        ok = 200 <= response.status_code < 300
        if fault == "cut_200" and ok and len(content) > 1:
            cut = 1 + self._pick(f"{target}|cut|{len(content)}", len(content) - 1)
            await self._answer(writer, 200, content[:cut], ctype, extra)
            self._count(fault)
            return True
        if fault == "empty_200" and ok:
            await self._answer(writer, 200, b"", ctype, extra)
            self._count(fault)
            return True
        await self._answer(writer, response.status_code, content, ctype, extra)
        self._count("ok" if fault is None else "passed")
        return True

    @staticmethod
    async def _answer(
        writer: asyncio.StreamWriter,
        status: int,
        body: bytes,
        content_type: str,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = "Status"
        out = [f"HTTP/1.1 {status} {reason}", f"Content-Type: {content_type}"]
        out += [f"{k}: {v}" for k, v in headers or ()]
        out.append(f"Content-Length: {len(body)}")
        writer.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + body)
        await writer.drain()


def _error_page(status: int, *, html: bool) -> tuple[bytes, str]:
    phrase = HTTPStatus(status).phrase
    if html:
        page = (
            f"<html><head><title>{status} {phrase}</title></head>"
            f"<body><center><h1>{status} {phrase}</h1></center><hr><center>nginx</center>"
            "</body></html>"
        )
        return page.encode(), "text/html"
    envelope: dict[str, object] = {
        "error": {
            "code": "unavailable" if status != 500 else "internal_error",
            "message": f"{phrase} (flaky proxy)",
            "details": [],
            "request_id": None,
            "existing_id": None,
        }
    }
    return json.dumps(envelope).encode(), "application/json"


@contextmanager
def serve_stream_handler(
    handle: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
    *,
    name: str,
    host: str = "127.0.0.1",
    on_stop: Callable[[], Awaitable[None]] | None = None,
) -> Iterator[str]:
    """Serve an ``asyncio`` connection handler on a free port of ``host`` in a background
    thread, its own event loop; yields its URL. On the way out the server closes, every task
    of its loop is cancelled, then ``on_stop`` runs (on that loop) and the thread ends. Also
    what the tests' S3 fault proxy serves on."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    box: dict[str, asyncio.Server] = {}

    async def start() -> None:
        box["server"] = await asyncio.start_server(handle, host, 0)
        started.set()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        loop.run_forever()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    if not started.wait(30):
        raise RuntimeError(f"{name} did not start")
    port = box["server"].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{port}"
    finally:

        async def stop() -> None:
            server = box["server"]
            server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if on_stop is not None:
                await on_stop()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


@contextmanager
def serve_flaky_proxy(proxy: FlakyProxy, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve ``proxy`` on a free port of ``host`` in a background thread; yields its URL."""

    async def close_upstream() -> None:
        if proxy._upstream is not None:
            await proxy._upstream.aclose()
            proxy._upstream = None

    with serve_stream_handler(
        proxy.handle, name="sodtrack-flaky-proxy", host=host, on_stop=close_upstream
    ) as url:
        yield url
