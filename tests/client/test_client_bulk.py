"""Bulk reads (``sodtrack.client.bulk``): JSON straight to Arrow, the model's verdict.

Every page of a corpus of malformed (and odd but valid) bookings pages is read twice: by the
bulk decoder and by the model path the walks used before (``parse_model`` with
``CursorPage[Booking]`` then ``bookings_batch``). Both must raise the same error (type,
reason, message) or return equal batches. The clean pages must take the fast path (the
decoder's ``fallbacks`` stays 0), so the comparison is not between two model paths.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pyarrow as pa
import pytest
from client_sim import VirtualClock, in_process_client, sim_of
from pydantic import SecretStr
from starlette.applications import Starlette

from sodtrack.client import (
    ApiError,
    ArrowPageDecoder,
    Credentials,
    RateLimiter,
    RetryPolicy,
    SodtrackClient,
    UnreadableResponse,
)
from sodtrack.client.core import parse_model
from sodtrack.contract.limits import API_PREFIX
from sodtrack.contract.models import Booking, CursorPage
from sodtrack.errors import SodtrackError
from sodtrack.simulator.app import create_app
from sodtrack.simulator.testing import SimulatorTransport, small_config
from sodtrack.warehouse.convert import (
    BOOKINGS_WIRE_SCHEMA,
    ConversionError,
    bookings_batch,
    bookings_decoder,
)

EPOCH = datetime.fromtimestamp(0, UTC)


def model_path(content: bytes) -> tuple[pa.RecordBatch, str | None]:
    response = httpx.Response(200, content=content)
    page = parse_model(response, CursorPage[Booking], "list_bookings")
    batch = bookings_batch(page.data, EPOCH).drop_columns(["extracted_at"])
    return batch, page.next_cursor


def outcome(read: Callable[[], tuple[pa.RecordBatch, str | None]]) -> tuple[str, Any]:
    try:
        batch, cursor = read()
    except SodtrackError as exc:
        reason = exc.reason if isinstance(exc, UnreadableResponse) else None
        return "error", (type(exc), reason, str(exc))
    return "ok", (batch.to_pylist(), cursor)


def bulk_path(
    decoder: ArrowPageDecoder[Booking], content: bytes
) -> tuple[pa.RecordBatch, str | None]:
    page = decoder.decode(httpx.Response(200, content=content), "list_bookings")
    return page.data, page.next_cursor


async def _raw_page(app: Starlette, limit: int) -> bytes:
    """The first page of ``GET /bookings`` as the simulator sends it (its bytes)."""
    config = app.state.sim.config
    async with httpx.AsyncClient(transport=SimulatorTransport(app), base_url="http://sim") as http:
        token = (
            await http.post(
                API_PREFIX + "/auth/token",
                json={"client_id": config.client_id, "client_secret": config.client_secret},
            )
        ).json()["access_token"]
        response = await http.get(
            API_PREFIX + "/bookings",
            params={"limit": limit},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 200
        return response.content


@pytest.fixture(scope="module")
def page_body() -> bytes:
    """A real page of the small simulator (60 bookings), its bytes as sent."""
    return asyncio.run(_raw_page(create_app(small_config()), 60))


def test_clean_page_takes_the_fast_path_and_equals_the_model_path(page_body: bytes) -> None:
    decoder = bookings_decoder()
    fast = outcome(lambda: bulk_path(decoder, page_body))
    assert decoder.fallbacks == 0
    assert fast == outcome(lambda: model_path(page_body))
    assert fast[0] == "ok"
    assert len(fast[1][0]) == 60
    batch, _ = bulk_path(decoder, page_body)
    assert batch.schema.equals(BOOKINGS_WIRE_SCHEMA)


def _mutate(body: bytes, change: Callable[[dict[str, Any]], None]) -> bytes:
    page = json.loads(body)
    change(page)
    return json.dumps(page, separators=(",", ":"), ensure_ascii=False).encode()


def _rec(i: int, f: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    return lambda page: f(page["data"][i])


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(record: dict[str, Any]) -> None:
        record[key] = value

    return change


def _drop(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda record: record.pop(key)


def _nested(parent: str, f: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    return lambda record: f(record[parent])


def _both(*fs: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def change(page: dict[str, Any]) -> None:
        for f in fs:
            f(page)

    return change


MUTATIONS: dict[str, Callable[[dict[str, Any]], None]] = {
    "missing id": _rec(3, _drop("id")),
    "missing nullable variant_id": _rec(5, _drop("variant_id")),
    "missing nullable notes in last record": _rec(-1, _drop("notes")),
    "missing nested nullable customer.email": _rec(7, _nested("customer", _drop("email"))),
    "missing nested required address.city": _rec(7, _nested("address", _drop("city"))),
    "missing customer": _rec(2, _drop("customer")),
    "customer null": _rec(2, _set("customer", None)),
    "customer a string": _rec(2, _set("customer", "Ana")),
    "null external_reference": _rec(1, _set("external_reference", None)),
    "number for a string": _rec(4, _set("zone_id", 15)),
    "bool for a string": _rec(4, _set("contractor_id", True)),
    "object for a string": _rec(4, _set("notes", {"x": 1})),
    "list for a string": _rec(4, _set("currency", ["CLP"])),
    "status not in the enum": _rec(0, _set("status", "lost")),
    "status null": _rec(0, _set("status", None)),
    "timestamp naive": _rec(0, _set("updated_at", "2026-01-02T03:04:05")),
    "timestamp a date": _rec(0, _set("created_at", "2026-01-02")),
    "timestamp a number": _rec(0, _set("created_at", 1767000000)),
    "timestamp unix text": _rec(0, _set("created_at", "1767000000")),
    "timestamp impossible day": _rec(0, _set("scheduled_start", "2026-02-30T10:00:00Z")),
    "timestamp year zero": _rec(0, _set("scheduled_end", "0000-01-01T00:00:00Z")),
    "timestamp leap second": _rec(0, _set("scheduled_end", "2026-06-30T23:59:60Z")),
    "timestamp offset +03:00 (valid)": _rec(0, _set("updated_at", "2026-01-02T03:04:05+03:00")),
    "timestamp 7 fraction digits (valid)": _rec(
        0, _set("updated_at", "2026-01-02T03:04:05.1234567Z")
    ),
    "timestamp lowercase t and z (valid)": _rec(0, _set("updated_at", "2026-01-02t03:04:05z")),
    "timestamp offset 25 h": _rec(0, _set("updated_at", "2026-01-02T03:04:05+25:00")),
    "money a number": _rec(6, _set("price", 45990)),
    "money not a number": _rec(6, _set("price", "abc")),
    "money NaN": _rec(6, _set("price", "NaN")),
    "money 1e3 (valid)": _rec(6, _set("price", "1e3")),
    "money three decimals": _rec(6, _set("price", "1.005")),
    "money too big": _rec(6, _set("price", "99999999999999999.99")),
    "money null": _rec(6, _set("price", None)),
    "extra field (valid: ignored)": _rec(8, _set("loyalty_tier", "gold")),
    "extra nested field (valid: ignored)": _rec(8, _nested("address", _set("floor", "3"))),
    "extra field holding a missing key's name": _both(
        _rec(8, _set("x", {"variant_id": "v"})), _rec(9, _drop("variant_id"))
    ),
    "an extra null field and a missing key": _both(
        _rec(8, _set("loyalty_tier", None)), _rec(9, _drop("project_id"))
    ),
    "a string holding ':null' and a missing key": _both(
        _rec(8, _set("notes", 'say "x":null')), _rec(9, _drop("stage_id"))
    ),
    "a string holding ':null' (valid)": _rec(8, _set("notes", 'say "x":null and "y": null')),
    "data not a list": lambda page: page.update(data=page["data"][0]),
    "data null": lambda page: page.update(data=None),
    "data missing": lambda page: page.pop("data"),
    "data holds a number": lambda page: page["data"].append(5),
    "next_cursor missing": lambda page: page.pop("next_cursor"),
    "next_cursor a number": lambda page: page.update(next_cursor=7),
    "next_cursor null (valid)": lambda page: page.update(next_cursor=None),
    "empty data (valid)": lambda page: page.update(data=[]),
    "envelope extra field (valid)": lambda page: page.update(total=3),
}

RAW: dict[str, Callable[[bytes], bytes]] = {
    "empty body": lambda b: b"",
    "blank body": lambda b: b"  \n",
    "cut short": lambda b: b[: len(b) // 2],
    "HTML": lambda b: b"<html><body>Bad gateway</body></html>",
    "two objects": lambda b: b + b"\n" + b,
    "trailing garbage": lambda b: b + b" x",
    "a top-level array": lambda b: b"[" + b + b"]",
    "byte order mark": lambda b: b"\xef\xbb\xbf" + b,
    "invalid UTF-8 in a string": lambda b: b.replace(b'"first_name":"', b'"first_name":"\xff', 1),
    "lone surrogate escape": lambda b: b.replace(b'"first_name":"', b'"first_name":"\\ud800', 1),
    "duplicate key (valid: the model keeps the last)": lambda b: b.replace(
        b'"status":', b'"status":"scheduled","status":', 1
    ),
    "blank before null (valid)": lambda b: b.replace(b'":null', b'": null'),
    "pretty-printed (valid)": lambda b: json.dumps(json.loads(b), indent=2).encode(),
    "leading blank (valid)": lambda b: b"\n  " + b,
    "trailing newline (valid)": lambda b: b + b"\n",
}


def _cases(page_body: bytes) -> dict[str, bytes]:
    cases = {name: _mutate(page_body, f) for name, f in MUTATIONS.items()}
    cases.update({name: f(page_body) for name, f in RAW.items()})
    return cases


@pytest.mark.parametrize("name", [*MUTATIONS, *RAW])
def test_corpus_same_verdict_as_the_model(page_body: bytes, name: str) -> None:
    content = _cases(page_body)[name]
    decoder = bookings_decoder()
    expected = outcome(lambda: model_path(content))
    got = outcome(lambda: bulk_path(decoder, content))
    assert got == expected
    valid = "(valid" in name
    assert (expected[0] == "ok") == valid or expected[1][0] is ConversionError, expected


def test_corpus_errors_are_the_walks_typed_errors(page_body: bytes) -> None:
    """The malformed pages are the client's retryable ``UnreadableResponse`` (or, for money
    Arrow cannot hold exactly, the converter's ``ConversionError`` as before), and no
    message quotes a value of the body."""
    cases = _cases(page_body)
    for name in [*MUTATIONS, *RAW]:
        if "(valid" in name:
            continue
        kind, detail = outcome(lambda c=cases[name]: bulk_path(bookings_decoder(), c))  # type: ignore[misc]
        assert kind == "error", name
        error_type, _, message = detail
        assert error_type in (UnreadableResponse, ConversionError), name
        if error_type is UnreadableResponse:
            for secret_like in ("Bad gateway", "lost", "gold", "abc", "0000-01-01"):
                assert secret_like not in message, (name, message)


def test_valid_odd_pages_go_through_the_model_path(page_body: bytes) -> None:
    """Pages the fast path cannot vouch for are read by the models (counted), never guessed."""
    decoder = bookings_decoder()
    for name in ("extra field (valid: ignored)", "timestamp offset +03:00 (valid)"):
        bulk_path(decoder, _mutate(page_body, MUTATIONS[name]))
    assert decoder.fallbacks == 1  # the +03:00 offset is read by the fast path
    assert decoder.pages == 2


async def test_walk_equals_the_model_walk(sim_app: Starlette) -> None:
    """The whole walk over the simulator: the same rows as the model walk, all fast."""
    client, _ = in_process_client(sim_app)
    async with client:
        models = [
            b async for page in client.list_bookings(limit=300, dedupe=False) for b in page.items
        ]
        decoder = bookings_decoder()
        batches = [p.batch async for p in client.list_bookings_arrow(decoder, limit=300)]
    assert decoder.fallbacks == 0
    table = pa.Table.from_batches(batches, schema=BOOKINGS_WIRE_SCHEMA)
    expected = bookings_batch(models, EPOCH).drop_columns(["extracted_at"])
    assert table.num_rows == len(models) == 2000
    assert table.to_pylist() == expected.to_pylist()


class SpoilFirstCursorPage(httpx.AsyncBaseTransport):
    """The simulator, except that the first bookings page asked with a cursor comes back
    off the contract once (a number for ``status``)."""

    def __init__(self, app: Starlette) -> None:
        self.inner = SimulatorTransport(app)
        self.spoilt = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        bookings = request.url.path.endswith("/bookings") and "cursor" in request.url.params
        if bookings and self.spoilt == 0:
            self.spoilt += 1
            body = await response.aread()
            return httpx.Response(200, content=body.replace(b'"status":"', b'"status":7,"x":"', 1))
        return response


async def test_a_spoilt_page_is_retried_like_any_unreadable_answer(sim_app: Starlette) -> None:
    transport = SpoilFirstCursorPage(sim_app)
    clock = VirtualClock(sim_of(sim_app))
    config = sim_of(sim_app).config
    client = SodtrackClient(
        httpx.AsyncClient(transport=transport),
        base_url="http://sim.test",
        country=config.country,
        credentials=Credentials(config.client_id, SecretStr(config.client_secret)),
        retry=RetryPolicy(max_attempts=5, budget_s=600.0, random=lambda: 0.5),
        rate_limiter=RateLimiter(clock=clock, sleep=clock.sleep),
        clock=clock,
        sleep=clock.sleep,
        owns_http=True,
    )
    decoder = bookings_decoder()
    async with client:
        rows = sum([p.received async for p in client.list_bookings_arrow(decoder, limit=300)])
    assert rows == 2000
    assert transport.spoilt == 1
    assert client.stats.unreadable["list_bookings"] == 1
    assert client.stats.retries["list_bookings"] == 1
    assert decoder.fallbacks == 1  # the spoilt answer, read (and refused) by the model path


def test_decoder_refuses_models_it_cannot_mirror() -> None:
    with pytest.raises(TypeError, match="not fields"):
        ArrowPageDecoder(
            Booking,
            BOOKINGS_WIRE_SCHEMA.append(pa.field("bogus", pa.string())),
            lambda ms: bookings_batch(ms, EPOCH),
        )
    with pytest.raises(TypeError, match="no column"):
        ArrowPageDecoder(
            Booking, BOOKINGS_WIRE_SCHEMA.remove(0), lambda ms: bookings_batch(ms, EPOCH)
        )
    assert issubclass(UnreadableResponse, ApiError)
