"""The ASGI application: Starlette routes built from the contract's route table, wrapped in
one pure-ASGI middleware that does what every request gets.

Order of processing for an API request (``/api/v1/...``):

1. ``X-Request-Id`` assigned; the background world catches up with the clock;
2. rate limiting per client credential (a verified token's ``sub``, else the ``client_id``
   of a token request, else the peer address): 429 with ``Retry-After``, not counted;
3. latency/jitter, then an injected fault: ``503 unavailable`` with ``Retry-After: 1``;
4. routing: unknown path 404, wrong method 405;
5. authentication and scope (401/403);
6. content type and JSON (400), unknown query parameters (422), then the handler's rules;
7. for a successful write, maybe a drop after commit (500, or the connection cut off).

``/_sim/...`` controls skip 2, 3, 5 and 7. Every response carries ``X-Request-Id`` and the
``X-RateLimit-*`` headers (controls: the request id only).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from email.utils import format_datetime
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sodtrack.contract.errors import ErrorCode
from sodtrack.contract.limits import API_PREFIX, DOCUMENT_MAX_BYTES, HEADER_REQUEST_ID
from sodtrack.contract.operations import OPERATIONS, Operation
from sodtrack.simulator.clock import Clock
from sodtrack.simulator.config import SimConfig
from sodtrack.simulator.errors import ApiError, error_body
from sodtrack.simulator.handlers import HANDLERS
from sodtrack.simulator.handlers.common import Ctx
from sodtrack.simulator.sim import Simulator
from sodtrack.simulator.validation import query_params, require_json

log = logging.getLogger("sodtrack.simulator")

JSON = "application/json"
_REQUEST_ID = "sodtrack.request_id"
_ROUTE = "sodtrack.route"
_TOKEN_PATH = API_PREFIX + OPERATIONS["issue_token"].path
_WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
_MULTIPART_SLACK = 1024 * 1024
"""Room for multipart framing and small fields above the document limit before a request is
refused on its Content-Length alone."""


class SimulatedDrop(Exception):
    """Raised mid-response to cut the connection after a committed write."""


def _json_headers(body: bytes, extra: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    return [
        (b"content-type", JSON.encode()),
        (b"content-length", str(len(body)).encode()),
        *extra,
    ]


def error_response(error: ApiError, request_id: str) -> Response:
    return Response(
        error_body(error, request_id),
        status_code=error.status,
        media_type=JSON,
        headers=error.headers,
    )


def _request_id(scope: Scope) -> str:
    value = scope.get(_REQUEST_ID)
    return value if isinstance(value, str) else "req_unknown"


# ---------------------------------------------------------------- middleware


class SimMiddleware:
    def __init__(self, app: ASGIApp, sim: Simulator) -> None:
        self.app = app
        self.sim = sim

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sim = self.sim
        started = time.perf_counter()
        request_id = sim.new_request_id()
        scope[_REQUEST_ID] = request_id
        id_header = (HEADER_REQUEST_ID.lower().encode(), request_id.encode())
        if scope["path"].startswith("/_sim/"):

            async def send_control(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message["headers"] = [*message.get("headers", []), id_header]
                await send(message)

            await self.app(scope, receive, send_control)
            return

        sim.catch_up()
        key, receive = await self._identity(scope, receive)
        decision = sim.limiter.take(key)
        # The server's clock, as a real server's Date header (uvicorn's own, the wall
        # clock, is off): a simulator moved ahead looks like a server whose clock is ahead.
        date = (b"date", format_datetime(sim.clock.now(), usegmt=True).encode())
        extra = [id_header, date, *decision.headers()]
        if not decision.allowed:
            sim.counters.rate_limited += 1
            error = ApiError(
                ErrorCode.RATE_LIMITED,
                f"Rate limit exceeded; retry in {decision.retry_after_s} s",
            )
            await self._send_error(send, error, request_id, extra)
            self._done(scope, 429, started)
            return
        config = sim.config
        if config.latency_ms or config.jitter_ms:
            delay = config.latency_ms + sim.faults.jitter(config.jitter_ms)
            await asyncio.sleep(delay / 1000)
        if sim.faults.unavailable():
            sim.counters.faults += 1
            error = ApiError(ErrorCode.UNAVAILABLE, "Temporarily unavailable, retry later")
            await self._send_error(send, error, request_id, [*extra, (b"retry-after", b"1")])
            self._done(scope, 503, started)
            return

        is_write = scope["method"] in _WRITE_METHODS and scope["path"] != _TOKEN_PATH
        drop: str | None = None
        status = 0

        async def send_api(message: Message) -> None:
            nonlocal drop, status
            if message["type"] == "http.response.start":
                status = message["status"]
                if is_write and 200 <= status < 300:
                    drop = sim.faults.drop()
                if drop == "500":
                    sim.counters.drops["500"] += 1
                    status = 500
                    body = error_body(
                        ApiError(ErrorCode.INTERNAL_ERROR, "Internal error"), request_id
                    )
                    await send(
                        {
                            "type": "http.response.start",
                            "status": 500,
                            "headers": _json_headers(body, extra),
                        }
                    )
                    await send({"type": "http.response.body", "body": body})
                    return
                message["headers"] = [*message.get("headers", []), *extra]
                await send(message)
            elif message["type"] == "http.response.body":
                if drop == "500":
                    return  # the committed answer is lost; the 500 was sent instead
                if drop == "cut":
                    sim.counters.drops["cut"] += 1
                    body = message.get("body", b"")
                    await send(
                        {
                            "type": "http.response.body",
                            "body": body[: len(body) // 2],
                            "more_body": True,
                        }
                    )
                    raise SimulatedDrop("connection cut after commit")
                await send(message)
            else:
                await send(message)

        try:
            await self.app(scope, receive, send_api)
        finally:
            self._done(scope, status, started)

    def _done(self, scope: Scope, status: int, started: float) -> None:
        route = scope.get(_ROUTE) or "unmatched"
        self.sim.counters.request(str(route), status)
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "%s %s %s %.1fms",
                scope["method"],
                scope["path"],
                status,
                (time.perf_counter() - started) * 1000,
            )

    async def _send_error(
        self, send: Send, error: ApiError, request_id: str, extra: list[tuple[bytes, bytes]]
    ) -> None:
        body = error_body(error, request_id)
        await send(
            {
                "type": "http.response.start",
                "status": error.status,
                "headers": _json_headers(body, extra),
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _identity(self, scope: Scope, receive: Receive) -> tuple[str, Receive]:
        """The rate limiter's key for this request, and a ``receive`` that still yields the
        whole body (the token endpoint's body is read here for its ``client_id``)."""
        authorization = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
                break
        subject = self.sim.auth.subject(authorization)
        if subject is not None:
            return f"client:{subject}", receive
        if scope["path"] == _TOKEN_PATH and scope["method"] == "POST":
            chunks: list[bytes] = []
            more = True
            while more:
                message = await receive()
                if message["type"] != "http.request":
                    break
                chunks.append(message.get("body", b""))
                more = message.get("more_body", False)
            body = b"".join(chunks)
            replayed = False

            async def replay() -> Message:
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            try:
                client_id = orjson.loads(body).get("client_id")
            except (orjson.JSONDecodeError, AttributeError):
                client_id = None
            if isinstance(client_id, str) and client_id:
                return f"client:{client_id}", replay
            receive = replay
        peer = scope.get("client")
        return f"peer:{peer[0] if peer else 'unknown'}", receive


# ---------------------------------------------------------------- API endpoints


def _endpoint(
    sim: Simulator, ops: dict[str, Operation]
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        op = ops[method]
        scope = request.scope
        scope[_ROUTE] = f"{op.method} {API_PREFIX}{op.path}"
        request_id = _request_id(scope)
        try:
            principal = (
                sim.auth.verify(request.headers.get("authorization"), op.scope)
                if op.scope
                else None
            )
            raw = b""
            document: Any = None
            if op.body is not None:
                raw = await request.body()
                document = require_json(request.headers.get("content-type"), raw)
            elif op.multipart:
                media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
                if media != "multipart/form-data":
                    raise ApiError(
                        ErrorCode.MALFORMED_REQUEST, "Content-Type must be multipart/form-data"
                    )
                length = request.headers.get("content-length", "")
                if length.isdigit() and int(length) > DOCUMENT_MAX_BYTES + _MULTIPART_SLACK:
                    raise ApiError(
                        ErrorCode.PAYLOAD_TOO_LARGE,
                        f"Documents are at most {DOCUMENT_MAX_BYTES} bytes",
                    )
            params = query_params(op, request.query_params.multi_items())
            ctx = Ctx(
                sim=sim,
                op=op,
                request=request,
                principal=principal,
                path=dict(request.path_params),
                params=params,
                raw=raw,
                json=document,
                now_us=sim.clock.now_us(),
            )
            reply = await HANDLERS[op.id](ctx)
        except ApiError as error:
            return error_response(error, request_id)
        except Exception:
            log.exception("handler %s failed", op.id)
            internal = ApiError(ErrorCode.INTERNAL_ERROR, "Internal error")
            return error_response(internal, request_id)
        return Response(reply.body, status_code=reply.status, media_type=JSON)

    return endpoint


def _api_routes(sim: Simulator) -> list[Route]:
    missing = set(OPERATIONS) - set(HANDLERS)
    if missing:
        raise RuntimeError(f"operations without a handler: {sorted(missing)}")
    by_path: dict[str, dict[str, Operation]] = {}
    for op in OPERATIONS.values():
        by_path.setdefault(op.path, {})[op.method] = op
    return [
        Route(API_PREFIX + path, _endpoint(sim, ops), methods=list(ops))
        for path, ops in by_path.items()
    ]


# ---------------------------------------------------------------- /_sim/ controls


def _control_routes(sim: Simulator) -> list[Route]:
    def reply(body: Any, status: int = 200) -> Response:
        return Response(orjson.dumps(body), status_code=status, media_type=JSON)

    async def advance(request: Request) -> Response:
        try:
            seconds = orjson.loads(await request.body())["seconds"]
            if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
                raise ValueError
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            error = ApiError(ErrorCode.VALIDATION_ERROR, 'Send {"seconds": N} with N >= 0')
            return error_response(error, _request_id(request.scope))
        return reply(sim.advance(float(seconds)))

    async def clock(request: Request) -> Response:
        return reply({"now": sim.format_us(sim.clock.now_us())})

    async def counters(request: Request) -> Response:
        return reply(sim.counters_snapshot())

    async def reset(request: Request) -> Response:
        sim.reset()
        return reply({"reset": True})

    async def health(request: Request) -> Response:
        return reply({"ok": True})

    async def export_bookings(request: Request) -> Response:
        client_id = request.query_params.get("client_id") or sim.config.client_id
        if client_id not in sim.state.clients:
            return error_response(
                ApiError(ErrorCode.NOT_FOUND, "Unknown client"), _request_id(request.scope)
            )
        return StreamingResponse(
            _chunked(sim.export_bookings(client_id)), media_type="application/x-ndjson"
        )

    return [
        Route("/_sim/clock/advance", advance, methods=["POST"]),
        Route("/_sim/clock", clock, methods=["GET"]),
        Route("/_sim/counters", counters, methods=["GET"]),
        Route("/_sim/reset", reset, methods=["POST"]),
        Route("/_sim/health", health, methods=["GET"]),
        Route("/_sim/export/bookings", export_bookings, methods=["GET"]),
    ]


async def _chunked(lines: Any, size: int = 1000) -> Any:
    batch: list[bytes] = []
    for line in lines:
        batch.append(line)
        if len(batch) >= size:
            yield b"".join(batch)
            batch = []
            await asyncio.sleep(0)
    if batch:
        yield b"".join(batch)


# ---------------------------------------------------------------- the app


async def _http_error(request: Request, exc: Exception) -> Response:
    """Routing errors (unknown path, wrong method) in the contract's error shape."""
    assert isinstance(exc, HTTPException)
    code = ErrorCode.METHOD_NOT_ALLOWED if exc.status_code == 405 else ErrorCode.NOT_FOUND
    message = "Method not allowed on this path" if exc.status_code == 405 else "No such path"
    error = ApiError(code, message, headers=dict(exc.headers or {}))
    return error_response(error, _request_id(request.scope))


def create_app(config: SimConfig, *, clock: Clock | None = None) -> Starlette:
    """A simulator of the Sodtrack Integration API for ``config`` (seeded at creation).

    ``clock`` replaces the configured one (tests: ``Clock.manual(...)``). The simulator is
    ``app.state.sim``."""
    sim = Simulator(config, clock)
    app = Starlette(
        routes=[*_api_routes(sim), *_control_routes(sim)],
        middleware=[Middleware(SimMiddleware, sim=sim)],
        exception_handlers={HTTPException: _http_error},
    )
    app.router.redirect_slashes = False
    app.state.sim = sim
    return app


class _UnderPrefix:
    """Runs a single-country app below a ``Mount`` prefix as if it were at the root.

    Starlette's ``Mount`` keeps the full path in ``scope["path"]`` (and the prefix in
    ``root_path``); the simulator's middleware compares paths against ``/_sim/`` and the token
    path, so the inner app gets the path with the prefix taken off."""

    def __init__(self, app: ASGIApp, prefix: str) -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.prefix):
            scope = dict(scope)
            scope["path"] = scope["path"][len(self.prefix) :] or "/"
        await self.app(scope, receive, send)


def create_multi_country_app(configs: list[SimConfig]) -> Starlette:
    """Several countries' simulators in one app, each under ``/{country}``.

    ``/cl/api/v1/...`` is Chile's API and ``/cl/_sim/...`` its controls; every country has its
    own seeded data, clock, limiter and faults (exactly ``create_app(config)`` for each). A
    client's base URL is ``http://host:port/{country}``. ``app.state.sims`` maps each country
    code to its ``Simulator``."""
    codes = [c.country for c in configs]
    if not codes:
        raise ValueError("at least one country")
    if len(set(codes)) != len(codes):
        raise ValueError(f"each country once: {codes}")
    mounts: list[Mount] = []
    sims: dict[str, Simulator] = {}
    for config in configs:
        inner = create_app(config)
        sims[config.country] = inner.state.sim
        prefix = f"/{config.country}"
        mounts.append(Mount(prefix, app=_UnderPrefix(inner, prefix)))
    app = Starlette(routes=mounts, exception_handlers={HTTPException: _http_error})
    app.router.redirect_slashes = False
    app.state.sims = sims
    return app
