"""``sodtrack.preflight.check_api``: what a token request's answer means (issue #10, item 7).

Against a scripted token endpoint (``httpx.MockTransport``) and an injected sleep (no real
waiting): a generated corpus of statuses and bodies. 401 is rejected credentials; any other
refusal, or a body that is not a token, means the base URL does not serve the API; a host
that cannot be connected to is a configuration error after a few quick attempts; a 5xx or
429 is *not* one (the check passes with a warning: the run's own retries decide).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sodtrack.client import TokenCountryMismatch
from sodtrack.client.baseurl import Target, check_base_url
from sodtrack.contract.errors import RETRYABLE_STATUSES
from sodtrack.errors import CredentialsRejected, UnusableBaseUrl
from sodtrack.preflight import CONNECT_ATTEMPTS, check_api
from sodtrack.settings import Settings

BASE = "https://sodtrack.test"
SETTINGS = Settings(base_url=BASE, country="cl")
_FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))


def _token(country: str = "cl") -> str:
    claims = base64.urlsafe_b64encode(json.dumps({"country": country}).encode()).decode()
    return "eyJhbGciOiJIUzI1NiJ9." + claims.rstrip("=") + ".sig"


def _ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "access_token": _token(),
            "token_type": "Bearer",
            "expires_in": 900,
            "scope": "catalog:read",
        },
    )


class _Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


async def _check(handler: Callable[[httpx.Request], httpx.Response]) -> tuple[Target, _Sleeps]:
    sleeps = _Sleeps()
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        target = await check_api(SETTINGS, check_base_url(SETTINGS), http=http, sleep=sleeps)
    return target, sleeps


async def test_a_token_for_the_right_country_passes() -> None:
    target, sleeps = await _check(_ok)
    assert target.checked
    assert target.host == "sodtrack.test"
    assert sleeps.calls == []


async def test_401_is_rejected_credentials_naming_the_host() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            401, json={"error": {"code": "invalid_credentials", "message": "no", "details": []}}
        )

    with pytest.raises(CredentialsRejected) as caught:
        await _check(refuse)
    assert str(caught.value).startswith(
        "SODTRACK_CLIENT_ID/SODTRACK_CLIENT_SECRET rejected by sodtrack.test (401"
    )


_REFUSALS = st.integers(400, 499).filter(lambda s: s not in (401, *RETRYABLE_STATUSES))
_BODIES = st.sampled_from([b"", b"<html>Not Found</html>", b'{"detail": "nope"}', b"\xff\xfe"])


@_FUZZ
@given(status=_REFUSALS, body=_BODIES)
async def test_any_other_refusal_means_not_the_api(status: int, body: bytes) -> None:
    with pytest.raises(UnusableBaseUrl) as caught:
        await _check(lambda request: httpx.Response(status, content=body))
    assert str(caught.value) == (
        f"SODTRACK_BASE_URL {BASE} does not serve the Sodtrack API (token endpoint answered "
        f"{status})"
    )


@_FUZZ
@given(body=_BODIES | st.sampled_from([b"[]", b'{"access_token": 5}', b"null"]))
async def test_a_2xx_that_is_not_a_token_means_not_the_api(body: bytes) -> None:
    with pytest.raises(UnusableBaseUrl, match="with something that is not a token"):
        await _check(lambda request: httpx.Response(200, content=body))


@pytest.mark.parametrize("status", sorted(RETRYABLE_STATUSES))
async def test_a_server_in_trouble_is_not_a_configuration_error(status: int) -> None:
    target, _ = await _check(lambda request: httpx.Response(status))
    assert not target.checked
    assert target.warning is not None
    assert f"answered {status}" in target.warning


@pytest.mark.parametrize("error", [httpx.ConnectError, httpx.ConnectTimeout])
async def test_a_host_that_cannot_be_reached_is_one_after_a_few_quick_attempts(
    error: type[httpx.TransportError],
) -> None:
    calls: list[int] = []

    def down(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        raise error("down", request=request)

    with pytest.raises(UnusableBaseUrl) as caught:
        await _check(down)
    assert len(calls) == CONNECT_ATTEMPTS
    assert f"cannot connect to sodtrack.test ({error.__name__}, {CONNECT_ATTEMPTS} attempts)" in (
        str(caught.value)
    )


async def test_a_later_attempt_that_connects_passes() -> None:
    calls: list[int] = []

    def flaky(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:
            raise httpx.ConnectError("down", request=request)
        return _ok(request)

    target, sleeps = await _check(flaky)
    assert target.checked
    assert len(sleeps.calls) == 1


async def test_another_country_s_token_is_the_client_s_typed_error() -> None:
    def peru(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            json={
                "access_token": _token("pe"),
                "token_type": "Bearer",
                "expires_in": 900,
                "scope": "catalog:read",
            },
        )

    with pytest.raises(TokenCountryMismatch, match="issued a token for 'pe', not 'cl'"):
        await _check(peru)
