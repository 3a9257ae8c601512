"""Test doubles for the client tests: a fake clock and a tiny in-memory API for MockTransport.

The fake API answers the token endpoint and lets each test script the other routes; it
issues JWT-shaped tokens (unsigned: the client never verifies a signature, only reads the
``country`` claim), checks the ``Authorization`` header and records every request.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import SecretStr

from sodtrack.client import Credentials, RateLimiter, RetryPolicy, SodtrackClient
from sodtrack.contract.limits import API_PREFIX

SECRET = "s3cr3t-VALUE-never-printed"
CLIENT_ID = "acme-cl"
BASE = "http://sodtrack.test"


class FakeClock:
    """A monotonic clock whose ``sleep`` advances it instantly."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += max(seconds, 0.0)
        await asyncio.sleep(0)


def error(
    status: int,
    code: str,
    message: str = "x",
    existing_id: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    body: dict[str, Any] = {
        "error": {
            "code": code,
            "message": message,
            "details": [],
            "existing_id": existing_id,
            "request_id": "req_test",
        }
    }
    return httpx.Response(status, json=body, headers=headers)


Handler = Callable[[httpx.Request], httpx.Response]


@dataclass
class FakeApi:
    """Token endpoint plus scripted routes: ``routes[(method, path)] = handler``."""

    ttl: int = 900
    routes: dict[tuple[str, str], Handler] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    token_status: list[int] = field(default_factory=list)
    """Scripted statuses for the next token requests (then 200)."""
    valid_tokens: set[str] = field(default_factory=set)
    country: str | None = "cl"
    """The ``country`` claim of issued tokens (None: no such claim)."""
    _counter: itertools.count[int] = field(default_factory=itertools.count)

    def route(self, method: str, path: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.routes[(method, API_PREFIX + path)] = handler
            return handler

        return register

    def issue(self) -> str:
        claims: dict[str, Any] = {"sub": CLIENT_ID, "n": next(self._counter)}
        if self.country is not None:
            claims["country"] = self.country
        payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        token = f"eyJhbGciOiJIUzI1NiJ9.{payload}.{'x' * 20}"
        self.tokens.append(token)
        self.valid_tokens.add(token)
        return token

    def revoke_all(self) -> None:
        self.valid_tokens.clear()

    def paths(self, method: str | None = None) -> list[str]:
        return [r.url.path for r in self.requests if method is None or r.method == method]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if path == API_PREFIX + "/auth/token":
            if self.token_status:
                status = self.token_status.pop(0)
                if status != 200:
                    code = "invalid_credentials" if status == 401 else "unavailable"
                    return error(status, code, "token refused")
            body = json.loads(request.content)
            if body.get("client_secret") != SECRET:
                return error(401, "invalid_credentials", "bad credentials")
            return httpx.Response(
                200,
                json={
                    "access_token": self.issue(),
                    "token_type": "Bearer",
                    "expires_in": self.ttl,
                    "scope": "all",
                },
            )
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.valid_tokens:
            return error(401, "token_expired", "expired")
        handler = self.routes.get((request.method, path))
        if handler is None:
            return error(404, "not_found", f"no route {request.method} {path}")
        return handler(request)


def make_client(
    api: Handler,
    *,
    clock: FakeClock | None = None,
    retry: RetryPolicy | None = None,
    limiter: RateLimiter | None = None,
    max_concurrency: int = 4,
    token_margin_s: float = 60.0,
    secret: str = SECRET,
) -> tuple[SodtrackClient, FakeClock]:
    clock = clock or FakeClock()
    http = httpx.AsyncClient(transport=httpx.MockTransport(api))
    client = SodtrackClient(
        http,
        base_url=BASE,
        country="cl",
        credentials=Credentials(CLIENT_ID, SecretStr(secret)),
        retry=retry or RetryPolicy(random=lambda: 0.5),
        rate_limiter=limiter or RateLimiter(clock=clock, sleep=clock.sleep),
        clock=clock,
        sleep=clock.sleep,
        max_concurrency=max_concurrency,
        token_margin_s=token_margin_s,
        owns_http=True,
    )
    return client, clock


TS = "2026-12-03T13:00:00.000000Z"


def booking_json(bid: str, ref: str, updated_at: str = TS, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": bid,
        "external_reference": ref,
        "status": "scheduled",
        "service_id": "svc_1",
        "variant_id": None,
        "zone_id": "zone_1",
        "contractor_id": "ctr_1",
        "scheduled_start": TS,
        "scheduled_end": TS,
        "customer": {
            "first_name": "Ana",
            "last_name": "Rojas",
            "email": "ana@example.com",
            "phone": None,
            "document_id": None,
        },
        "address": {
            "line1": "Av. Providencia 1234",
            "line2": None,
            "city": "Santiago",
            "region": "RM",
            "postal_code": "7500000",
            "country": "cl",
        },
        "notes": None,
        "price": "45990",
        "currency": "CLP",
        "project_id": None,
        "stage_id": None,
        "created_at": TS,
        "updated_at": updated_at,
        "cancelled_reason": None,
    }
    body.update(over)
    return body


def category_json(cid: str) -> dict[str, Any]:
    return {
        "id": cid,
        "name": f"Category {cid}",
        "description": None,
        "parent_id": None,
        "active": True,
        "updated_at": TS,
    }
