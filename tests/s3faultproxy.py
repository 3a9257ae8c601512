"""A fault-injecting HTTP/1.1 proxy in front of the loopback S3 server (``tests/s3server.py``):
object storage answers cut short, on cue.

Point a client's ``endpoint_url`` at :func:`serve_fault_proxy`'s URL instead of moto's. Like
:mod:`sodtrack.simulator.flakyproxy` (asyncio streams in a background thread, so that it
controls every byte: framing, cut-offs, closes), but a byte-for-byte pass-through: a request
is forwarded exactly as the client sent it (its ``Host`` and SigV4 signature intact; a body
framed by ``Content-Length`` or ``Transfer-Encoding: chunked``, ``aws-chunked`` included; an
``Expect: 100-continue`` answered by the proxy) on one upstream connection per client
connection, and an answer that is not spoiled goes back exactly as moto sent it.

Only the answers to ``GET`` with a body (``200``/``206``, not empty) are spoiled, in order, by
the :class:`Fault` list given (each for its next ``times`` such answers; then answers pass;
``after`` lets that many answers pass first)::

    cut_close    the status and headers as sent (Content-Length the full length), the body
                 cut at ``at``, then the connection closed: framing broken
    cut_framed   the body cut at ``at``, Content-Length rewritten to the cut length (a
                 ``Content-Range`` left as it was): well framed, silently short
    empty        the status and headers kept, an empty body with ``Content-Length: 0``
    short_range  a ``206`` whose body is cut at ``at`` (at least one byte) and whose
                 ``Content-Range`` says so (``bytes s-(s+n-1)/total``): a shorter range than
                 asked, consistently framed (a ``200`` answer, or a one-byte one, is not
                 spoiled: ``passed``)

``at`` places the cut: a ``float`` in ``[0, 1)`` is a share of the answer's body, an ``int`` an
offset into it (negative: from its end); the cut always leaves the body shorter than sent.
:attr:`FaultProxy.counts` says how many answers were served each way (``ok``: untouched,
``passed``: a fault that did not apply). Deterministic: the same requests meet the same
faults; the corpus tests draw their own seeded positions.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Final, Literal
from urllib.parse import urlparse

from sodtrack.simulator.flakyproxy import serve_stream_handler

FaultKind = Literal["cut_close", "cut_framed", "empty", "short_range"]
FAULT_KINDS: Final[tuple[FaultKind, ...]] = ("cut_close", "cut_framed", "empty", "short_range")
EVERY: Final = 1 << 30
"""``times`` for a fault that spoils every answer (no retry ever gets the whole body)."""


@dataclass(frozen=True)
class Fault:
    """One way to spoil the next ``times`` GET answers with a body."""

    kind: FaultKind
    at: float | int = 0.5
    times: int = 1

    def cut(self, length: int) -> int:
        """How many bytes of a ``length``-byte body are kept (always fewer than ``length``)."""
        if self.kind == "empty":
            return 0
        if isinstance(self.at, float):
            n = int(length * self.at)
        else:
            n = self.at if self.at >= 0 else length + self.at
        low = 1 if self.kind == "short_range" else 0
        return max(low, min(n, length - 1))


@dataclass
class FaultProxy:
    upstream: str
    faults: Sequence[Fault] = ()
    after: int = 0
    """GET answers with a body passed untouched before the faults start (spoil the second)."""
    counts: Counter[str] = field(default_factory=Counter)
    """Fault kind (or ``ok``, ``passed``) → GET answers with a body served that way."""
    requests: Counter[str] = field(default_factory=Counter)
    """Method → requests forwarded."""
    objects_only: bool = False
    """Spoil object reads only (s3fs reads an object by ranges), never a listing's answer."""
    _left: list[int] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._left = [f.times for f in self.faults]

    def _next_fault(self) -> Fault | None:
        """The fault for the next GET answer with a body (in the order given), if any left."""
        with self._lock:
            if self.after > 0:
                self.after -= 1
                return None
            for i, fault in enumerate(self.faults):
                if self._left[i] > 0:
                    self._left[i] -= 1
                    return fault
            return None

    def _spared(self, request_headers: dict[str, str]) -> bool:
        return self.objects_only and "range" not in request_headers

    def _count(self, kind: str) -> None:
        with self._lock:
            self.counts[kind] += 1

    # ------------------------------------------------------------------ serving

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        try:
            while True:
                up = await self._one(reader, writer, up)
                if up is None:
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:
            pass  # shutting down with a keep-alive connection open
        finally:
            for w in (writer, up[1] if up else None):
                if w is not None:
                    w.close()
                    with suppress(ConnectionError, OSError, asyncio.CancelledError):
                        await w.wait_closed()

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        target = urlparse(self.upstream)
        return await asyncio.open_connection(target.hostname, target.port)

    async def _one(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        up: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None,
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """Serve one request; the upstream connection to keep, ``None`` to close both."""
        head = await reader.readuntil(b"\r\n\r\n")
        method, _target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
        headers = _headers(head)
        self.requests[method] += 1
        if headers.get("expect", "").lower() == "100-continue":
            head = _drop_header(head, b"expect")
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            await writer.drain()
        body = await _read_body(reader, headers, request=True)
        if up is None:
            up = await self._connect()
        up_reader, up_writer = up
        up_writer.write(head + body)
        await up_writer.drain()

        rhead = await up_reader.readuntil(b"\r\n\r\n")
        while rhead.startswith(b"HTTP/1.1 100"):  # an interim answer: pass it, read on
            writer.write(rhead)
            rhead = await up_reader.readuntil(b"\r\n\r\n")
        status = int(rhead.split(b" ", 2)[1])
        rheaders = _headers(rhead)
        bodiless = method == "HEAD" or status in (204, 304) or 100 <= status < 200
        raw = b"" if bodiless else await _read_body(up_reader, rheaders, request=False)
        closing = rheaders.get("connection", "").lower() == "close" or (
            not bodiless and "content-length" not in rheaders and not _chunked(rheaders)
        )

        fault = None
        if method == "GET" and status in (200, 206) and raw and not self._spared(headers):
            fault = self._next_fault()
        content = _decoded(raw, rheaders) if fault else raw
        keep = fault.cut(len(content)) if fault else 0
        if fault is None or keep >= len(content) or (fault.kind == "short_range" and status != 206):
            writer.write(rhead + raw)
            await writer.drain()
            if method == "GET" and status in (200, 206) and raw:
                self._count("ok" if fault is None else "passed")
            return None if closing else up

        out = _drop_header(rhead, b"transfer-encoding")
        if fault.kind == "cut_close":
            out = _set_header(out, b"content-length", str(len(content)).encode())
            writer.write(out + content[:keep])
            await writer.drain()
            self._count(fault.kind)
            return None  # the connection closes mid-body
        out = _set_header(out, b"content-length", str(keep).encode())
        if fault.kind == "short_range":
            match = re.match(r"bytes (\d+)-(\d+)/(\d+|\*)", rheaders.get("content-range", ""))
            if match:
                start = int(match.group(1))
                new = f"bytes {start}-{start + keep - 1}/{match.group(3)}"
                out = _set_header(out, b"content-range", new.encode())
        writer.write(out + content[:keep])
        await writer.drain()
        self._count(fault.kind)
        return None if closing else up


def _headers(head: bytes) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, sep, value = line.partition(":")
        if sep:
            found[name.strip().lower()] = value.strip()
    return found


def _chunked(headers: dict[str, str]) -> bool:
    return "chunked" in headers.get("transfer-encoding", "").lower()


async def _read_body(
    reader: asyncio.StreamReader, headers: dict[str, str], *, request: bool
) -> bytes:
    """The body's raw bytes, framing included (chunked: sizes, extensions, trailers)."""
    if _chunked(headers):
        parts: list[bytes] = []
        while True:
            line = await reader.readuntil(b"\r\n")
            parts.append(line)
            size = int(line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                while True:  # trailers, up to the empty line
                    trailer = await reader.readuntil(b"\r\n")
                    parts.append(trailer)
                    if trailer == b"\r\n":
                        return b"".join(parts)
            parts.append(await reader.readexactly(size + 2))
    if "content-length" in headers:
        length = int(headers["content-length"])
        return await reader.readexactly(length) if length else b""
    return b"" if request else await reader.read()


def _decoded(raw: bytes, headers: dict[str, str]) -> bytes:
    """The body without its chunked framing."""
    if not _chunked(headers):
        return raw
    out: list[bytes] = []
    rest = raw
    while rest:
        line, _, rest = rest.partition(b"\r\n")
        size = int(line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            break
        out.append(rest[:size])
        rest = rest[size + 2 :]
    return b"".join(out)


def _drop_header(head: bytes, name: bytes) -> bytes:
    lines = head[:-4].split(b"\r\n")
    kept = [lines[0]] + [x for x in lines[1:] if x.split(b":", 1)[0].strip().lower() != name]
    return b"\r\n".join(kept) + b"\r\n\r\n"


def _set_header(head: bytes, name: bytes, value: bytes) -> bytes:
    lines = _drop_header(head, name)[:-4].split(b"\r\n")
    return b"\r\n".join([*lines, name.title() + b": " + value]) + b"\r\n\r\n"


@contextmanager
def serve_fault_proxy(proxy: FaultProxy, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve ``proxy`` on a free port of ``host`` in a background thread; yields its URL."""
    with serve_stream_handler(proxy.handle, name="sodtrack-s3-fault-proxy", host=host) as url:
        yield url
