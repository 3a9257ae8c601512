"""Credentials and tokens never show: not in reprs, logs, exceptions or exception chains."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator

import httpx
import pytest
from client_fakes import SECRET, FakeApi, booking_json, error, make_client

from sodtrack.client import ApiError, AuthError, RejectedError, RetryExhausted, RetryPolicy


def chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo.extend([e.__cause__, e.__context__])


def assert_clean(exc: BaseException, secrets: list[str]) -> None:
    texts = ["".join(traceback.format_exception(exc))]
    for e in chain(exc):
        texts += [repr(e), str(e), repr(vars(e)) if hasattr(e, "__dict__") else ""]
        request = getattr(e, "_request", None) or getattr(e, "request", None)
        assert request is None, f"{type(e).__name__} holds an httpx.Request"
    for text in texts:
        for secret in secrets:
            assert secret not in text


async def test_nothing_the_client_prints_or_raises_contains_a_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    api = FakeApi()
    failures: list[object] = [httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("cut")]

    @api.route("GET", "/bookings/bkg_1")
    def get(request: httpx.Request) -> httpx.Response:
        if failures:
            failure = failures.pop(0)
            assert isinstance(failure, Exception)
            raise failure  # httpx's exception carries the request, Authorization and all
        return httpx.Response(200, json=booking_json("bkg_1", "OPS-1"))

    @api.route("GET", "/bookings/bkg_echo")
    def echo(request: httpx.Request) -> httpx.Response:
        # a careless server that echoes the credential it was given
        return error(422, "validation_error", f"bad header {request.headers['Authorization']}")

    @api.route("GET", "/bookings/bkg_down")
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("down")

    client, _ = make_client(api, retry=RetryPolicy(max_attempts=3, random=lambda: 0.0))
    raised: list[ApiError] = []
    with caplog.at_level(logging.DEBUG):
        async with client:
            await client.get_booking("bkg_1")
            api.revoke_all()
            await client.get_booking("bkg_1")  # 401 -> refresh -> retry
            with pytest.raises(RejectedError) as rejected:
                await client.get_booking("bkg_echo")
            raised.append(rejected.value)
            with pytest.raises(RetryExhausted) as exhausted:
                await client.get_booking("bkg_down")
            raised.append(exhausted.value)
        bad, _ = make_client(FakeApi(token_status=[401]), secret=SECRET)
        async with bad:
            with pytest.raises(AuthError) as auth:
                await bad.get_booking("bkg_1")
            raised.append(auth.value)

    secrets = [SECRET, *api.tokens]
    assert len(api.tokens) == 2
    assert "[redacted]" in str(rejected.value)
    for exc in raised:
        assert_clean(exc, secrets)
    for text in (
        repr(client),
        str(client),
        repr(client._engine),
        repr(client._engine.tokens),
        repr(client.stats.as_dict()),
        caplog.text,
    ):
        for secret in secrets:
            assert secret not in text
    assert "get_booking" in caplog.text  # the debug log exists, it just holds no secret


async def test_a_transport_failure_of_the_token_request_leaves_no_trace_of_the_secret() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("token endpoint hung")  # its .request body holds the secret

    client, _ = make_client(refuse, retry=RetryPolicy(max_attempts=2, random=lambda: 0.0))
    async with client:
        with pytest.raises(RetryExhausted) as caught:
            await client.get_booking("bkg_1")
    assert "issue_token:ReadTimeout" in str(caught.value)
    assert_clean(caught.value, [SECRET])


async def test_an_echoed_secret_in_a_token_error_is_redacted() -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        return error(401, "invalid_credentials", f"secret {SECRET} refused")

    client, _ = make_client(echo)
    async with client:
        with pytest.raises(AuthError) as caught:
            await client.get_booking("bkg_1")
    assert "refused" in str(caught.value)
    assert_clean(caught.value, [SECRET])
