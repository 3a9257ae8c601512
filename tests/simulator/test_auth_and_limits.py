"""Tokens, scopes, country, expiry and the rate limiter, with an injected clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import jwt
import pytest

from sodtrack.contract.limits import ALL_SCOPES
from sodtrack.simulator.app import create_app
from sodtrack.simulator.clock import Clock
from sodtrack.simulator.sim import Simulator
from sodtrack.simulator.testing import SimulatorTransport, small_config

from .helpers import error_of, issues, token, url

START = datetime(2026, 6, 10, 16, 0, tzinfo=UTC)


@pytest.fixture
async def manual() -> AsyncIterator[tuple[httpx.AsyncClient, Simulator]]:
    """A simulator whose clocks (server time and rate limiter) move only when told."""
    app = create_app(small_config(rate_limit=2.0, burst=3, token_ttl=60), clock=Clock.manual(START))
    async with httpx.AsyncClient(transport=SimulatorTransport(app), base_url="http://sim") as c:
        yield c, app.state.sim


async def test_token_claims(http: httpx.AsyncClient, sim: Simulator) -> None:
    response = await http.post(
        url("issue_token"), json={"client_id": "sim-client", "client_secret": "sim-secret"}
    )
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert body["scope"] == " ".join(ALL_SCOPES)
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert set(claims) == {"sub", "country", "scope", "iat", "exp"}
    assert claims["sub"] == "sim-client"
    assert claims["country"] == "cl"
    assert claims["iat"] == int(sim.clock.now().timestamp())
    assert claims["exp"] - claims["iat"] == 900


async def test_bad_credentials_and_scopes(http: httpx.AsyncClient) -> None:
    wrong = await http.post(
        url("issue_token"), json={"client_id": "sim-client", "client_secret": "nope"}
    )
    assert wrong.status_code == 401
    assert error_of(wrong)["code"] == "invalid_credentials"
    unknown = await http.post(
        url("issue_token"),
        json={"client_id": "sim-client", "client_secret": "sim-secret", "scope": "admin"},
    )
    assert unknown.status_code == 422
    assert issues(unknown) == {("scope", "invalid_format")}
    extra = await http.post(
        url("issue_token"), json={"client_id": "a", "client_secret": "b", "grant": "x"}
    )
    assert issues(extra) == {("grant", "unknown_field")}
    narrow = await token(http, scope="catalog:read bookings:read")
    ok = await http.get(url("list_services"), headers=narrow)
    assert ok.status_code == 200
    denied = await http.get(url("list_coverage_zones"), headers=narrow)
    assert denied.status_code == 403
    assert error_of(denied)["code"] == "insufficient_scope"
    write = await http.post(url("create_booking"), json={}, headers=narrow)
    assert error_of(write)["code"] == "insufficient_scope"


async def test_missing_unreadable_foreign_tokens(http: httpx.AsyncClient, sim: Simulator) -> None:
    for headers in ({}, {"Authorization": "Bearer garbage"}, {"Authorization": "Basic x"}):
        response = await http.get(url("list_services"), headers=headers)
        assert response.status_code == 401
        assert error_of(response)["code"] == "invalid_token"
    forged = jwt.encode(
        {"sub": "sim-client", "country": "cl", "scope": "catalog:read", "iat": 0, "exp": 2**40},
        "another-key-of-at-least-32-bytes!",
        algorithm="HS256",
    )
    response = await http.get(url("list_services"), headers={"Authorization": f"Bearer {forged}"})
    assert error_of(response)["code"] == "invalid_token"
    now = int(sim.clock.now().timestamp())
    peruvian = sim.auth.sign(
        {
            "sub": "sim-client",
            "country": "pe",
            "scope": " ".join(ALL_SCOPES),
            "iat": now,
            "exp": now + 900,
        }
    )
    response = await http.get(url("list_services"), headers={"Authorization": f"Bearer {peruvian}"})
    assert response.status_code == 403
    assert error_of(response)["code"] == "country_mismatch"


async def test_expiry_without_leeway(manual: tuple[httpx.AsyncClient, Simulator]) -> None:
    http, sim = manual
    auth = await token(http)
    sim.advance(59.999)
    sim.limiter.reset()
    assert (await http.get(url("list_forms"), headers=auth)).status_code == 200
    sim.advance(0.001)
    expired = await http.get(url("list_forms"), headers=auth)
    assert expired.status_code == 401
    assert error_of(expired)["code"] == "token_expired"


async def test_bucket_headers_and_429(manual: tuple[httpx.AsyncClient, Simulator]) -> None:
    http, sim = manual
    auth = await token(http)  # takes 1 of 3 from sim-client's bucket
    first = await http.get(url("list_forms"), headers=auth)
    assert first.headers["X-RateLimit-Limit"] == "3"
    assert first.headers["X-RateLimit-Remaining"] == "1"
    assert first.headers["X-RateLimit-Reset"] == "1"  # 2 tokens at 2/s
    second = await http.get(url("list_forms"), headers=auth)
    assert second.headers["X-RateLimit-Remaining"] == "0"
    assert second.headers["X-RateLimit-Reset"] == "2"  # 3 tokens at 2/s: 1.5 s, rounded up
    limited = await http.get(url("list_forms"), headers=auth)
    assert limited.status_code == 429
    assert error_of(limited)["code"] == "rate_limited"
    assert limited.headers["Retry-After"] == "1"
    again = await http.get(url("list_forms"), headers=auth)
    assert again.status_code == 429  # 429s take nothing, and time stands still
    other = await token(http, "other-client", "other-secret")  # a bucket of its own
    assert (await http.get(url("list_forms"), headers=other)).status_code == 200
    sim.advance(0.5)
    back = await http.get(url("list_forms"), headers=auth)
    assert back.status_code == 200
    assert back.headers["X-RateLimit-Remaining"] == "0"
    counters = sim.counters_snapshot()
    assert counters["rate_limited"] == 2


async def test_rejected_requests_count(manual: tuple[httpx.AsyncClient, Simulator]) -> None:
    http, _ = manual
    body = {"client_id": "sim-client", "client_secret": "wrong"}
    statuses = [(await http.post(url("issue_token"), json=body)).status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    anonymous = [(await http.get(url("list_forms"))).status_code for _ in range(4)]
    assert anonymous == [401, 401, 401, 429]  # bucketed by peer address
