"""The token's ``country`` claim (issue #10, items 8 and 10): a client refuses to go on with a
token issued for another country than its own, and sends nothing with it.

Unit level against the fake API (a generated corpus of claims and token shapes), then the
real simulator: a client for ``pe`` whose base URL does not vary by country reaches Chile's
simulator and stops at the token.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest
from client_fakes import CLIENT_ID, SECRET, FakeApi, make_client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from sodtrack.client import AuthError, Credentials, SodtrackClient, TokenCountryMismatch
from sodtrack.client.auth import token_country
from sodtrack.contract.countries import COUNTRIES
from sodtrack.contract.limits import API_PREFIX
from sodtrack.errors import ConfigurationError
from sodtrack.simulator.app import create_app
from sodtrack.simulator.testing import SimulatorTransport, small_config

CODES = sorted(COUNTRIES)


def _jwt(payload: bytes) -> str:
    body = base64.urlsafe_b64encode(payload).rstrip(b"=").decode()
    return f"eyJhbGciOiJIUzI1NiJ9.{body}.c2ln"


def _client_for(country: str, api: FakeApi) -> SodtrackClient:
    client, _ = make_client(api)
    return SodtrackClient(
        client._http,
        base_url="http://sodtrack.test",
        country=country,
        credentials=Credentials(CLIENT_ID, SecretStr(SECRET)),
        owns_http=True,
    )


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(issued=st.sampled_from(CODES), asked=st.sampled_from(CODES))
async def test_a_token_for_another_country_stops_the_client(issued: str, asked: str) -> None:
    api = FakeApi(country=issued)

    @api.route("GET", "/catalog/categories")
    def categories(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            json={
                "data": [],
                "meta": {"page": 1, "page_size": 1, "total_items": 0, "total_pages": 0},
            },
        )

    async with _client_for(asked, api) as client:
        if issued == asked:
            assert await client.collect_categories() == []
            return
        with pytest.raises(TokenCountryMismatch) as caught:
            await client.collect_categories()
    error = caught.value
    assert isinstance(error, ConfigurationError)
    assert isinstance(error, AuthError)  # the loader halts on it, as on refused credentials
    assert str(error) == error.line
    assert "\n" not in str(error)
    assert f"issued a token for {issued!r}, not {asked!r}" in str(error)
    assert "sodtrack.test" in str(error)
    assert (error.found, error.expected) == (issued, asked)
    assert api.paths() == [API_PREFIX + "/auth/token"], "nothing sent with the foreign token"
    assert SECRET not in repr(error)
    assert SECRET not in str(error)


_NOT_A_COUNTRY_CLAIM = st.one_of(
    st.binary(max_size=40),  # not JSON
    st.builds(lambda v: json.dumps(v).encode(), st.lists(st.integers(), max_size=3)),
    st.builds(
        lambda v: json.dumps({"sub": "x", "country": v}).encode(),
        st.none() | st.integers() | st.booleans() | st.lists(st.text(max_size=2), max_size=2),
    ),
    st.builds(lambda: json.dumps({"sub": "x"}).encode()),
)


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(payload=_NOT_A_COUNTRY_CLAIM)
def test_a_token_without_a_readable_country_claim_reads_as_none(payload: bytes) -> None:
    assert token_country(_jwt(payload)) is None


@pytest.mark.parametrize("token", ["opaque-token", "a.b", "a.b.c.d", "", "..", "x.!!!.y"])
def test_tokens_that_are_not_jwts_have_no_country(token: str) -> None:
    assert token_country(token) is None


@settings(max_examples=30, deadline=None)
@given(
    country=st.text(min_size=1, max_size=8),
    extra=st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)
def test_the_claim_is_read_without_the_signature(country: str, extra: dict[str, Any]) -> None:
    claims = {**extra, "country": country}
    assert token_country(_jwt(json.dumps(claims).encode())) == country


async def test_a_token_without_a_country_claim_is_refused() -> None:
    api = FakeApi(country=None)
    async with _client_for("cl", api) as client:
        with pytest.raises(TokenCountryMismatch, match="without a readable country claim"):
            await client.authenticate()
    assert api.paths() == [API_PREFIX + "/auth/token"]


async def test_the_real_simulator_of_chile_refuses_a_client_for_peru() -> None:
    """A base URL that does not vary by country: the ``pe`` client reaches Chile's API."""
    app = create_app(small_config(country="cl"))
    http = httpx.AsyncClient(transport=SimulatorTransport(app))
    client = SodtrackClient(
        http,
        base_url="http://sodtrack-shared.test",
        country="pe",
        credentials=Credentials("sim-client", SecretStr("sim-secret")),
        owns_http=True,
    )
    async with client:
        with pytest.raises(TokenCountryMismatch) as caught:
            await client.collect_services()
        assert str(caught.value).startswith(
            "the server at sodtrack-shared.test issued a token for 'cl', not 'pe'"
        )
    counters = app.state.sim.counters_snapshot()
    assert counters["writes"].get("token") == 1
    chile = SodtrackClient(
        httpx.AsyncClient(transport=SimulatorTransport(app)),
        base_url="http://sodtrack-shared.test",
        country="cl",
        credentials=Credentials("sim-client", SecretStr("sim-secret")),
        owns_http=True,
    )
    async with chile:
        assert await chile.collect_services()  # the same server, the right country: served
