"""Bad answers on a flaky network (issue #10, item 6), each fault class with a generated corpus.

Through ``httpx.MockTransport`` (a scripted API and a fake clock): a 2xx whose body is empty,
cut short, not JSON or off the model is an :class:`UnreadableResponse`, retried like a 5xx
(bounded, with backoff, counted apart in the stats); an HTML error page is classified by its
status; a 429 without ``Retry-After`` waits a bounded default; a stalled answer is a read
timeout, retried; a create whose answer is unreadable is reconciled, never assumed.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from client_fakes import FakeApi, booking_json, error, make_client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from virtual_time import run_virtual

from sodtrack.client import (
    Credentials,
    NotFoundError,
    RejectedError,
    RetryableError,
    RetryExhausted,
    RetryPolicy,
    SodtrackClient,
    UnreadableResponse,
)
from sodtrack.client.core import parse_model
from sodtrack.contract import models as m

CUSTOMER = m.CustomerIn(first_name="Ana", last_name="Rojas", email="ana@example.com")
ADDRESS = m.AddressIn(
    line1="Av. Providencia 1234", city="Santiago", region="RM", postal_code="7500000", country="cl"
)
BOOKING = booking_json("bkg_1", "OPS-1")
BOOKING_BYTES = json.dumps(BOOKING).encode()


def _booking_create(ref: str = "OPS-1") -> m.BookingCreate:
    return m.BookingCreate(
        external_reference=ref,
        service_id="svc_1",
        scheduled_start=BOOKING["scheduled_start"],
        customer=CUSTOMER,
        address=ADDRESS,
    )


def _script(answers: list[Callable[[], httpx.Response]]) -> Callable[[httpx.Request], Any]:
    """A handler that plays ``answers`` in order, then answers the good booking."""
    queue = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        if queue:
            return queue.pop(0)()
        return httpx.Response(200, content=BOOKING_BYTES)

    return handler


def _html(status: int, rnd: random.Random) -> httpx.Response:
    title = rnd.choice(["Bad Gateway", "Service Unavailable", "Oops", "Error", "nginx"])
    junk = "".join(rnd.choice("abc <>/&;\n\t") for _ in range(rnd.randint(0, 200)))
    body = f"<html><head><title>{status} {title}</title></head><body>{junk}</body></html>"
    return httpx.Response(status, content=body.encode(), headers={"Content-Type": "text/html"})


# ---------------------------------------------------------------- the classification itself


def test_every_prefix_of_a_real_answer_is_unreadable_and_the_whole_is_not() -> None:
    whole = httpx.Response(200, content=BOOKING_BYTES)
    assert parse_model(whole, m.Booking, "get_booking").id == "bkg_1"
    for cut in range(len(BOOKING_BYTES)):
        response = httpx.Response(200, content=BOOKING_BYTES[:cut])
        with pytest.raises(UnreadableResponse) as caught:
            parse_model(response, m.Booking, "get_booking")
        assert isinstance(caught.value, RetryableError)
        assert caught.value.classification == "retry"
        assert caught.value.status == 200
        assert caught.value.__context__ is None


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_are_either_a_booking_or_unreadable(body: bytes) -> None:
    response = httpx.Response(200, content=body)
    failure: UnreadableResponse | None = None
    try:
        parse_model(response, m.Booking, "get_booking")
    except UnreadableResponse as exc:
        failure = exc
    if failure is not None:
        assert failure.reason in ("empty", "not_json", "off_model")
        assert failure.status == 200


def test_the_reason_names_empty_not_json_and_off_model_without_values() -> None:
    def reason(content: bytes) -> UnreadableResponse:
        with pytest.raises(UnreadableResponse) as caught:
            parse_model(httpx.Response(200, content=content), m.Booking, "get_booking")
        return caught.value

    assert reason(b"").reason == "empty"
    assert reason(b"<html>500</html>").reason == "not_json"
    off = reason(json.dumps({**BOOKING, "price": 12.5}).encode())
    assert off.reason == "off_model"
    assert "price" in off.message
    assert "12.5" not in off.message


# ---------------------------------------------------------------- reads are retried


async def test_a_get_answered_200_with_a_cut_short_body_is_retried_and_counted() -> None:
    api = FakeApi()
    cut = BOOKING_BYTES[: len(BOOKING_BYTES) // 2]
    api.route("GET", "/bookings/bkg_1")(
        _script([lambda: httpx.Response(200, content=cut), lambda: httpx.Response(200)])
    )
    client, clock = make_client(api)
    async with client:
        booking = await client.get_booking("bkg_1")
    assert booking.id == "bkg_1"
    assert client.stats.requests[("get_booking", "200")] == 3
    assert client.stats.unreadable["get_booking"] == 2
    assert client.stats.retry_causes["unreadable"] == 2
    assert client.stats.retries["get_booking"] == 2
    assert len(clock.slept) == 2
    assert all(s > 0 for s in clock.slept)


async def test_every_prefix_of_a_real_answer_is_retried_and_the_read_succeeds() -> None:
    """The corpus of all cut-short answers of a real booking, each served once before the
    whole answer: every read returns the booking after exactly one retry."""
    api = FakeApi()
    queue: list[bytes] = []

    @api.route("GET", "/bookings/bkg_1")
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=queue.pop(0) if queue else BOOKING_BYTES)

    client, _ = make_client(api)
    cuts = range(len(BOOKING_BYTES))
    async with client:
        for cut in cuts:
            queue.append(BOOKING_BYTES[:cut])
            assert (await client.get_booking("bkg_1")).id == "bkg_1"
    assert client.stats.unreadable["get_booking"] == len(cuts)
    assert client.stats.retries["get_booking"] == len(cuts)
    assert client.stats.gave_up == {}


async def test_a_body_that_stays_unreadable_gives_up_bounded_as_a_transient_failure() -> None:
    api = FakeApi()
    api.route("GET", "/bookings/bkg_1")(
        lambda r: httpx.Response(200, content=b'{"id": "bkg_1", "extern')
    )
    policy = RetryPolicy(max_attempts=4, random=lambda: 0.5)
    client, clock = make_client(api, retry=policy)
    async with client:
        with pytest.raises(RetryExhausted) as caught:
            await client.get_booking("bkg_1")
    assert caught.value.classification == "retry"
    assert caught.value.attempts == 4
    assert client.stats.unreadable["get_booking"] == 4
    assert client.stats.gave_up["get_booking"] == 1
    assert len(clock.slept) == 3


async def test_an_unreadable_page_of_a_walk_is_fetched_again_not_skipped() -> None:
    api = FakeApi()
    pages = {
        1: {"data": [], "meta": {"page": 1, "page_size": 100, "total_items": 0, "total_pages": 1}}
    }
    calls = {"n": 0}

    @api.route("GET", "/catalog/categories")
    def categories(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        body = json.dumps(pages[1]).encode()
        if calls["n"] == 1:
            return httpx.Response(200, content=body[:7])
        return httpx.Response(200, content=body)

    client, _ = make_client(api)
    async with client:
        assert await client.collect_categories() == []
    assert calls["n"] == 2
    assert client.stats.pages["list_categories"] == 1


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_mixes_of_bad_answers_end_in_the_booking_or_a_bounded_give_up(
    data: st.DataObject,
) -> None:
    """Any mix of 5xx (JSON or HTML), header-less 429s, cut-short/empty/HTML 200s and timeouts
    before the good answer: the read returns the booking if the mix fits in the attempts,
    else gives up with RetryExhausted; every bad answer is counted by its kind."""
    seed = data.draw(st.integers(0, 2**32 - 1))
    rnd = random.Random(seed)
    n_bad = data.draw(st.integers(0, 7))
    kinds = [
        data.draw(
            st.sampled_from(
                ["5xx_json", "5xx_html", "429_bare", "cut", "empty", "html_200", "timeout"]
            )
        )
        for _ in range(n_bad)
    ]

    def bad(kind: str) -> Callable[[], httpx.Response]:
        def answer() -> httpx.Response:
            if kind == "5xx_json":
                return error(rnd.choice([500, 502, 503, 504]), "unavailable")
            if kind == "5xx_html":
                return _html(rnd.choice([500, 502, 503, 504]), rnd)
            if kind == "429_bare":
                return httpx.Response(429)
            if kind == "cut":
                return httpx.Response(
                    200, content=BOOKING_BYTES[: rnd.randrange(len(BOOKING_BYTES))]
                )
            if kind == "empty":
                return httpx.Response(200, content=b"")
            if kind == "html_200":
                return _html(200, rnd)
            raise httpx.ReadTimeout("stalled")

        return answer

    api = FakeApi()
    api.route("GET", "/bookings/bkg_1")(_script([bad(k) for k in kinds]))
    policy = RetryPolicy(max_attempts=6, random=rnd.random, rate_limited_default_s=0.5)
    client, clock = make_client(api, retry=policy)

    async def read() -> None:
        async with client:
            if n_bad < policy.max_attempts:
                assert (await client.get_booking("bkg_1")).id == "bkg_1"
            else:
                with pytest.raises(RetryExhausted):
                    await client.get_booking("bkg_1")

    asyncio.run(read())
    tried = kinds[: policy.max_attempts]
    retried = tried[: policy.max_attempts - 1] if n_bad >= policy.max_attempts else tried
    spoiled = ("cut", "empty", "html_200")
    assert client.stats.unreadable["get_booking"] == sum(k in spoiled for k in tried)
    assert client.stats.retry_causes["unreadable"] == sum(k in spoiled for k in retried)
    assert client.stats.retry_causes["ReadTimeout"] == retried.count("timeout")
    assert client.stats.requests[("get_booking", "ReadTimeout")] == tried.count("timeout")
    assert client.stats.rate_limited == tried.count("429_bare")
    assert client.stats.total_retries == len(retried)
    # every wait is bounded; a wait after a bare 429 is at least the default
    assert all(s <= policy.max_delay_s for s in clock.slept)
    floor = policy.rate_limited_default_s * retried.count("429_bare")
    assert client.stats.retry_wait_s >= floor - 1e-9


# ---------------------------------------------------------------- HTML error pages


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_an_html_5xx_page_is_a_5xx(status: int) -> None:
    rnd = random.Random(status)
    api = FakeApi()
    api.route("GET", "/bookings/bkg_1")(_script([lambda: _html(status, rnd)]))
    client, _ = make_client(api)
    async with client:
        assert (await client.get_booking("bkg_1")).id == "bkg_1"
    assert client.stats.retry_causes[str(status)] == 1
    assert client.stats.unreadable["get_booking"] == 0


@pytest.mark.parametrize(
    ("status", "cls"), [(400, RejectedError), (404, NotFoundError), (422, RejectedError)]
)
async def test_an_html_4xx_page_is_classified_by_its_status(
    status: int, cls: type[Exception]
) -> None:
    rnd = random.Random(status)
    api = FakeApi()
    api.route("GET", "/bookings/bkg_1")(lambda r: _html(status, rnd))
    client, clock = make_client(api)
    async with client:
        with pytest.raises(cls) as caught:
            await client.get_booking("bkg_1")
    assert type(caught.value) is cls
    assert getattr(caught.value, "code", None) == f"http_{status}"
    assert clock.slept == []


async def test_a_429_without_headers_waits_the_default_even_when_jitter_draws_zero() -> None:
    api = FakeApi()
    api.route("GET", "/bookings/bkg_1")(_script([lambda: httpx.Response(429)] * 2))
    policy = RetryPolicy(random=lambda: 0.0, rate_limited_default_s=0.75)
    client, _ = make_client(api, retry=policy)
    async with client:
        assert (await client.get_booking("bkg_1")).id == "bkg_1"
    assert client.stats.retry_wait_s == pytest.approx(1.5)
    assert client.stats.retry_causes["429"] == 2


# ---------------------------------------------------------------- stalls: the read timeout


def test_a_stalled_answer_hits_the_read_timeout_and_is_retried() -> None:
    """A real server on loopback that holds its first answer longer than the read timeout.

    On virtual time (``tests/virtual_time.py``): the stall, the read timeout and the retry's
    backoff are timers of one virtual clock, so a busy machine cannot make the retried request
    outlast the read timeout too, and nothing waits for real."""
    run_virtual(_a_stalled_answer_hits_the_read_timeout_and_is_retried)


async def _a_stalled_answer_hits_the_read_timeout_and_is_retried() -> None:
    served = {"n": 0}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                writer.close()
                return
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            if length:
                await reader.readexactly(length)
            served["n"] += 1
            if b"/auth/token" in head:
                body = json.dumps(
                    {
                        "access_token": FakeApi().issue(),  # a JWT with country "cl"
                        "token_type": "Bearer",
                        "expires_in": 900,
                        "scope": "all",
                    }
                ).encode()
            else:
                if served["n"] == 2:
                    await asyncio.sleep(1.0)  # the stall
                    writer.close()
                    return
                body = BOOKING_BYTES
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                + str(len(body)).encode()
                + b"\r\n\r\n"
                + body
            )
            await writer.drain()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    http = httpx.AsyncClient(timeout=httpx.Timeout(5.0, read=0.2))
    client = SodtrackClient(
        http,
        base_url=f"http://127.0.0.1:{port}",
        country="cl",
        credentials=Credentials("id", SecretStr("secret-value")),
        retry=RetryPolicy(base_delay_s=0.01),
        clock=asyncio.get_running_loop().time,
        owns_http=True,
    )
    try:
        async with client:
            assert (await client.get_booking("bkg_1")).id == "bkg_1"
        await asyncio.sleep(0.05)  # the handlers see the client's EOF and return
    finally:
        server.close()
        await server.wait_closed()
    assert client.stats.requests[("get_booking", "ReadTimeout")] == 1
    assert client.stats.retry_causes["ReadTimeout"] == 1


# ---------------------------------------------------------------- writes are reconciled


@pytest.mark.parametrize(
    "spoil",
    ["cut", "empty", "html_200", "off_model", "502_html", "dropped"],
)
async def test_a_create_whose_answer_is_unreadable_is_reconciled_by_reference(spoil: str) -> None:
    """The server committed the booking, then its answer was spoiled: the client looks the
    reference up and returns the existing booking; it never POSTs again nor assumes failure."""
    api = FakeApi()
    committed: list[str] = []

    @api.route("POST", "/bookings")
    def create(request: httpx.Request) -> httpx.Response:
        committed.append(json.loads(request.content)["external_reference"])
        if spoil == "cut":
            return httpx.Response(201, content=BOOKING_BYTES[:40])
        if spoil == "empty":
            return httpx.Response(201, content=b"")
        if spoil == "html_200":
            return _html(200, random.Random(1))
        if spoil == "off_model":
            return httpx.Response(201, json={"id": "bkg_1"})
        if spoil == "502_html":
            return _html(502, random.Random(2))
        raise httpx.RemoteProtocolError("peer closed connection", request=request)

    @api.route("GET", "/bookings")
    def lookup(request: httpx.Request) -> httpx.Response:
        found = [BOOKING] if committed else []
        return httpx.Response(200, json={"data": found, "next_cursor": None})

    client, _ = make_client(api)
    async with client:
        result = await client.create_booking(_booking_create())
    assert committed == ["OPS-1"]
    assert result.id == "bkg_1"
    assert result.created is False
    assert result.reconciled is True
    assert client.stats.reconciliations["create_booking:found"] == 1


async def test_a_create_not_committed_behind_an_unreadable_answer_is_created_once() -> None:
    """The answer was spoiled *before* the server acted (so nothing exists): the lookup says
    not found and the create is sent again, exactly once more."""
    api = FakeApi()
    posts: list[int] = []

    @api.route("POST", "/bookings")
    def create(request: httpx.Request) -> httpx.Response:
        posts.append(1)
        if len(posts) == 1:
            return httpx.Response(201, content=b"<html>proxy error</html>")
        return httpx.Response(201, content=BOOKING_BYTES)

    @api.route("GET", "/bookings")
    def lookup(request: httpx.Request) -> httpx.Response:
        # the first (spoiled) POST did not commit in this script
        return httpx.Response(200, json={"data": [], "next_cursor": None})

    client, _ = make_client(api)
    async with client:
        result = await client.create_booking(_booking_create())
    assert len(posts) == 2
    assert result.created is True
    assert client.stats.reconciliations["create_booking:not_found"] == 1


async def test_an_unreadable_lookup_is_retried_within_the_same_plan() -> None:
    api = FakeApi()
    lookups = {"n": 0}

    @api.route("POST", "/bookings")
    def create(request: httpx.Request) -> httpx.Response:
        return httpx.Response(201, content=b"")

    @api.route("GET", "/bookings")
    def lookup(request: httpx.Request) -> httpx.Response:
        lookups["n"] += 1
        if lookups["n"] == 1:
            return httpx.Response(200, content=b'{"data": [')
        return httpx.Response(200, json={"data": [BOOKING], "next_cursor": None})

    client, _ = make_client(api)
    async with client:
        result = await client.create_booking(_booking_create())
    assert result.id == "bkg_1"
    assert result.reconciled
    assert lookups["n"] == 2
    assert len(api.paths("POST")) == 2  # one token + one create


async def test_a_lead_without_reference_behind_an_unreadable_answer_may_have_committed() -> None:
    api = FakeApi()

    @api.route("POST", "/leads/forms/frm_1/submissions")
    def submit(request: httpx.Request) -> httpx.Response:
        return httpx.Response(201, content=b"")

    client, _ = make_client(api)
    async with client:
        with pytest.raises(RetryExhausted) as caught:
            await client.submit_lead("frm_1", m.LeadSubmission(fields={"name": "Ana"}))
    assert caught.value.may_have_committed
    assert caught.value.classification == "reconcile"


async def test_an_unreadable_token_answer_is_a_transient_failure_of_the_step() -> None:
    api = FakeApi()
    real = api.__call__
    seen = {"n": 0}

    def flaky_token(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/auth/token") and seen["n"] == 0:
            seen["n"] += 1
            api.requests.append(request)
            return httpx.Response(200, content=b'{"access_token": "abc')
        return real(request)

    api.route("GET", "/bookings/bkg_1")(lambda r: httpx.Response(200, content=BOOKING_BYTES))
    client, _ = make_client(flaky_token)
    async with client:
        assert (await client.get_booking("bkg_1")).id == "bkg_1"
    assert client.stats.token_fetches == 2
    assert client.stats.retry_causes["unreadable"] == 1


@pytest.mark.parametrize("seed", range(40))
async def test_generated_spoiled_creates_end_with_exactly_one_booking(seed: int) -> None:
    """Seeded corpus: each POST may commit or not and its answer may be spoiled in any way
    (cut at any point, empty, HTML 200, HTML 5xx, dropped, timed out); lookups may be spoiled
    too. The create ends with the one booking, created exactly once, and says whether it
    had to reconcile."""
    rnd = random.Random(seed)
    api = FakeApi()
    store: list[str] = []
    posts = {"n": 0}
    spoils = ["cut", "empty", "html_200", "html_5xx", "dropped", "timeout", "ok"]

    def spoiled(kind: str, whole: bytes, request: httpx.Request) -> httpx.Response:
        if kind == "cut":
            return httpx.Response(200, content=whole[: rnd.randrange(len(whole))])
        if kind == "empty":
            return httpx.Response(200, content=b"")
        if kind == "html_200":
            return _html(200, rnd)
        if kind == "html_5xx":
            return _html(rnd.choice([500, 502, 503, 504]), rnd)
        if kind == "dropped":
            raise httpx.RemoteProtocolError("peer closed connection", request=request)
        raise httpx.ReadTimeout("stalled", request=request)

    conflicts = {"n": 0}
    posts_spoiled = {"n": 0}
    clean_201 = {"n": 0}

    @api.route("POST", "/bookings")
    def create(request: httpx.Request) -> httpx.Response:
        posts["n"] += 1
        if store:
            conflicts["n"] += 1
            return error(409, "duplicate_external_reference", existing_id="bkg_1")
        commits = rnd.random() < 0.6
        if commits:
            store.append("bkg_1")
        kind = rnd.choice(spoils) if posts["n"] < 4 else "ok"
        if kind == "ok":
            if not commits:
                store.append("bkg_1")
            clean_201["n"] += 1
            return httpx.Response(201, content=BOOKING_BYTES)
        posts_spoiled["n"] += 1
        return spoiled(kind, BOOKING_BYTES, request)

    @api.route("GET", "/bookings")
    def lookup(request: httpx.Request) -> httpx.Response:
        body = json.dumps({"data": [BOOKING] if store else [], "next_cursor": None}).encode()
        kind = rnd.choice(spoils) if rnd.random() < 0.3 else "ok"
        if kind == "ok":
            return httpx.Response(200, content=body)
        return spoiled(kind, body, request)

    @api.route("GET", "/bookings/bkg_1")
    def fetch(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=BOOKING_BYTES)

    policy = RetryPolicy(max_attempts=12, random=rnd.random)
    client, _ = make_client(api, retry=policy)
    async with client:
        result = await client.create_booking(_booking_create())
    assert store == ["bkg_1"], "exactly one booking exists"
    assert result.id == "bkg_1"
    # a committed create is never sent again: it is found by its reference first
    assert conflicts["n"] == 0
    assert posts["n"] == 1 + client.stats.reconciliations["create_booking:not_found"]
    # created: Sodtrack answered this client's POST with the booking; reconciled: an answer
    # to a POST was lost on the way, so the client had to find out
    assert result.created == (clean_201["n"] == 1)
    assert result.reconciled == (posts_spoiled["n"] > 0)
