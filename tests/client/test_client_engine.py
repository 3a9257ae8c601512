"""The client against scripted APIs (httpx.MockTransport): auth, retries, writes, walks."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from client_fakes import (
    BASE,
    SECRET,
    TS,
    FakeApi,
    booking_json,
    category_json,
    error,
    make_client,
)
from pydantic import SecretStr

from sodtrack.client import (
    AuthError,
    ConflictError,
    ContractViolation,
    NotFoundError,
    RetryExhausted,
    RetryPolicy,
    SodtrackClient,
)
from sodtrack.contract import models as m
from sodtrack.contract.limits import API_PREFIX, PAGE_SIZE_MAX
from sodtrack.errors import InsecureTransport
from sodtrack.settings import Settings

CUSTOMER = m.CustomerIn(first_name="Ana", last_name="Rojas", email="ana@example.com")
ADDRESS = m.AddressIn(
    line1="Av. Providencia 1234", city="Santiago", region="RM", postal_code="7500000", country="cl"
)


def booking_create(ref: str = "OPS-1") -> m.BookingCreate:
    return m.BookingCreate(
        external_reference=ref,
        service_id="svc_1",
        scheduled_start=datetime(2026, 12, 3, 10, tzinfo=timezone(timedelta(hours=-3))),
        customer=CUSTOMER,
        address=ADDRESS,
    )


def query(request: httpx.Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.url.query.decode()).items()}


def one_booking(api: FakeApi, bid: str = "bkg_1", ref: str = "OPS-1") -> None:
    @api.route("GET", f"/bookings/{bid}")
    def get(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=booking_json(bid, ref))


# ---------------------------------------------------------------- auth


async def test_concurrent_calls_share_one_token_and_respect_max_concurrency() -> None:
    api = FakeApi()
    active = peak = 0

    async def slow(request: httpx.Request) -> httpx.Response:
        nonlocal active, peak
        if request.url.path.endswith("/auth/token"):
            return api(request)
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.005)
        active -= 1
        return api(request)

    one_booking(api)
    client, _ = make_client(slow, max_concurrency=3)  # type: ignore[arg-type]
    async with client:
        results = await asyncio.gather(*(client.get_booking("bkg_1") for _ in range(20)))
    assert len(results) == 20
    assert client.stats.token_fetches == 1
    assert api.paths("POST").count(API_PREFIX + "/auth/token") == 1
    assert peak == 3


async def test_expired_token_is_refreshed_once_and_the_request_retried() -> None:
    api = FakeApi()
    one_booking(api)
    client, _ = make_client(api)
    async with client:
        await client.get_booking("bkg_1")
        api.revoke_all()  # the server now refuses the token the client holds
        booking = await client.get_booking("bkg_1")
    assert booking.id == "bkg_1"
    assert client.stats.token_fetches == 2
    assert client.stats.token_refreshes_on_401 == 1
    assert client.stats.requests[("get_booking", "401")] == 1


async def test_a_second_401_after_a_fresh_token_is_an_auth_error() -> None:
    api = FakeApi()

    @api.route("GET", "/bookings/bkg_1")
    def always_401(request: httpx.Request) -> httpx.Response:
        return error(401, "invalid_token", "no")

    client, _ = make_client(api)
    async with client:
        with pytest.raises(AuthError) as caught:
            await client.get_booking("bkg_1")
    assert caught.value.code == "invalid_token"
    assert client.stats.token_fetches == 2


async def test_invalid_credentials_is_an_auth_error_without_retry() -> None:
    api = FakeApi()
    one_booking(api)
    client, clock = make_client(api, secret="wrong-secret")
    async with client:
        with pytest.raises(AuthError) as caught:
            await client.get_booking("bkg_1")
    assert caught.value.code == "invalid_credentials"
    assert api.paths() == [API_PREFIX + "/auth/token"]
    assert clock.slept == []


async def test_a_token_endpoint_outage_is_retried_by_the_callers_loop() -> None:
    api = FakeApi(token_status=[503, 503])
    one_booking(api)
    client, _ = make_client(api)
    async with client:
        assert (await client.get_booking("bkg_1")).id == "bkg_1"
    assert client.stats.requests[("issue_token", "503")] == 2
    assert client.stats.retries["get_booking"] == 2


async def test_scope_403_is_an_auth_error() -> None:
    api = FakeApi()

    @api.route("GET", "/bookings/bkg_1")
    def forbidden(request: httpx.Request) -> httpx.Response:
        return error(403, "insufficient_scope", "needs bookings:read")

    client, _ = make_client(api)
    async with client:
        with pytest.raises(AuthError):
            await client.get_booking("bkg_1")


# ---------------------------------------------------------------- retries


def flaky(responses: list[Any], final: httpx.Response) -> Any:
    """A handler that answers ``responses`` in order (exceptions raised), then ``final``."""
    script = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        if script:
            item = script.pop(0)
            if isinstance(item, Exception):
                raise item
            return item  # type: ignore[no-any-return]
        return final

    return handler


async def test_transient_statuses_and_transport_errors_are_retried_with_retry_after_floor() -> None:
    api = FakeApi()
    api.routes[("GET", API_PREFIX + "/bookings/bkg_1")] = flaky(
        [
            error(503, "unavailable", headers={"Retry-After": "3"}),
            httpx.ConnectError("refused"),
            httpx.ReadTimeout("slow"),
            error(429, "rate_limited", headers={"Retry-After": "1"}),
            error(502, "internal_error"),
        ],
        httpx.Response(200, json=booking_json("bkg_1", "OPS-1")),
    )
    client, clock = make_client(api, retry=RetryPolicy(max_attempts=6, random=lambda: 0.0))
    async with client:
        booking = await client.get_booking("bkg_1")
    assert booking.id == "bkg_1"
    assert clock.slept == [3.0, 1.0]  # jitter 0: only the Retry-After floors wait
    stats = client.stats
    assert stats.retries["get_booking"] == 5
    assert stats.rate_limited == 1
    assert stats.retry_wait_s == 4.0
    for outcome in ("503", "ConnectError", "ReadTimeout", "429", "502", "200"):
        assert stats.requests[("get_booking", outcome)] == 1


async def test_giving_up_raises_retry_exhausted_saying_what_was_tried() -> None:
    api = FakeApi()
    api.routes[("GET", API_PREFIX + "/bookings/bkg_1")] = flaky(
        [], error(503, "unavailable", headers={"Retry-After": "1"})
    )
    client, _ = make_client(api, retry=RetryPolicy(max_attempts=3, random=lambda: 0.0))
    async with client:
        with pytest.raises(RetryExhausted) as caught:
            await client.get_booking("bkg_1")
    err = caught.value
    assert err.attempts == 3
    assert err.seen == ("503", "503", "503")
    assert "get_booking" in str(err)
    assert "max_attempts=3" in str(err)
    assert "waited 2.00s" in str(err)
    assert client.stats.gave_up["get_booking"] == 1
    assert err.__cause__ is None
    assert err.__context__ is None


async def test_the_wait_budget_bounds_a_call() -> None:
    api = FakeApi()
    api.routes[("GET", API_PREFIX + "/bookings/bkg_1")] = flaky(
        [], error(503, "unavailable", headers={"Retry-After": "4"})
    )
    client, _ = make_client(api, retry=RetryPolicy(max_attempts=100, budget_s=10.0))
    async with client:
        with pytest.raises(RetryExhausted, match="budget"):
            await client.get_booking("bkg_1")
    assert client.stats.retry_wait_s == 8.0


async def test_a_permanent_rejection_is_not_retried() -> None:
    api = FakeApi()

    @api.route("GET", "/bookings/bkg_9")
    def missing(request: httpx.Request) -> httpx.Response:
        return error(404, "not_found", "No booking bkg_9")

    client, clock = make_client(api)
    async with client:
        with pytest.raises(NotFoundError) as caught:
            await client.get_booking("bkg_9")
    assert caught.value.classification == "reject"
    assert clock.slept == []
    assert client.stats.requests[("get_booking", "404")] == 1


async def test_a_body_outside_the_contract_is_retried_then_reported_without_values() -> None:
    """An off-model 2xx is an unreadable answer (issue #10): retried like a 5xx, and the
    give-up names the failing location, never the value."""
    api = FakeApi()

    @api.route("GET", "/bookings/bkg_1")
    def bad(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={**booking_json("bkg_1", "OPS-1"), "price": 12.5})

    client, _ = make_client(api, retry=RetryPolicy(max_attempts=3, random=lambda: 0.5))
    async with client:
        with pytest.raises(RetryExhausted) as caught:
            await client.get_booking("bkg_1")
    assert caught.value.attempts == 3
    assert "price" in str(caught.value)
    assert "12.5" not in str(caught.value)
    assert caught.value.__context__ is None
    assert client.stats.unreadable["get_booking"] == 3


# ---------------------------------------------------------------- requests on the wire


async def test_query_parameters_use_the_contracts_names_and_json_forms() -> None:
    api = FakeApi()
    seen: list[dict[str, str]] = []

    @api.route("GET", "/bookings")
    def bookings(request: httpx.Request) -> httpx.Response:
        seen.append(query(request))
        return httpx.Response(200, json={"data": [], "next_cursor": None})

    @api.route("GET", "/catalog/categories")
    def categories(request: httpx.Request) -> httpx.Response:
        seen.append(query(request))
        meta = {"page": 1, "page_size": PAGE_SIZE_MAX, "total_items": 0, "total_pages": 0}
        return httpx.Response(200, json={"data": [], "meta": meta})

    client, _ = make_client(api)
    since = datetime(2026, 12, 3, 10, 0, tzinfo=timezone(timedelta(hours=-3)))
    async with client:
        await client.collect_bookings(updated_since=since, status=m.BookingStatus.SCHEDULED)
        await client.collect_categories(active=False)
    assert seen[0] == {
        "updated_since": "2026-12-03T13:00:00.000000Z",
        "status": "scheduled",
        "limit": "1000",
    }
    assert seen[1] == {"active": "false", "page": "1", "page_size": str(PAGE_SIZE_MAX)}


async def test_patch_sends_only_the_fields_set() -> None:
    api = FakeApi()
    bodies: list[dict[str, Any]] = []

    @api.route("PATCH", "/bookings/bkg_1")
    def patch(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(200, json=booking_json("bkg_1", "OPS-1"))

    client, _ = make_client(api)
    async with client:
        await client.update_booking("bkg_1", m.BookingUpdate(status=m.BookingStatus.CONFIRMED))
        await client.update_booking("bkg_1", m.BookingUpdate(notes=None))
    assert bodies == [{"status": "confirmed"}, {"notes": None}]


# ---------------------------------------------------------------- safe-to-repeat creates


def booking_api(*, commit_then: list[Any]) -> tuple[FakeApi, dict[str, dict[str, Any]]]:
    """A booking endpoint with a store: each POST commits, then answers per ``commit_then``
    (an exception or a status to answer instead of 201), then 201s. 409 on a repeat."""
    api = FakeApi()
    store: dict[str, dict[str, Any]] = {}
    script = list(commit_then)

    @api.route("POST", "/bookings")
    def create(request: httpx.Request) -> httpx.Response:
        ref = json.loads(request.content)["external_reference"]
        existing = next((b for b in store.values() if b["external_reference"] == ref), None)
        if existing is not None:
            return error(409, "duplicate_external_reference", "dup", existing_id=existing["id"])
        item = script.pop(0) if script else None
        if item == "503-before":
            return error(503, "unavailable")
        bid = f"bkg_{len(store) + 1}"
        store[bid] = booking_json(bid, ref)
        if isinstance(item, Exception):
            raise item
        if isinstance(item, int):
            return error(item, "internal_error")
        return httpx.Response(201, json=store[bid])

    @api.route("GET", "/bookings")
    def lookup(request: httpx.Request) -> httpx.Response:
        ref = query(request).get("external_reference")
        data = [b for b in store.values() if b["external_reference"] == ref]
        return httpx.Response(200, json={"data": data, "next_cursor": None})

    def get(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=store[request.url.path.rsplit("/", 1)[-1]])

    for bid in ("bkg_1", "bkg_2"):
        api.routes[("GET", f"{API_PREFIX}/bookings/{bid}")] = get
    return api, store


async def test_create_booking_plain_201() -> None:
    api, _store = booking_api(commit_then=[])
    client, _ = make_client(api)
    async with client:
        result = await client.create_booking(booking_create())
    assert (result.created, result.reconciled, result.id) == (True, False, "bkg_1")


async def test_a_repeat_returns_the_existing_booking_not_created() -> None:
    api, store = booking_api(commit_then=[])
    client, _ = make_client(api)
    async with client:
        first = await client.create_booking(booking_create())
        again = await client.create_booking(booking_create())
    assert (again.created, again.reconciled, again.id) == (False, False, first.id)
    assert len(store) == 1
    assert client.stats.reconciliations["create_booking:conflict_fetched"] == 1


@pytest.mark.parametrize(
    "failure", [httpx.RemoteProtocolError("cut"), httpx.ReadTimeout("slow"), 500, 504]
)
async def test_an_ambiguous_failure_after_commit_is_reconciled_by_reference(failure: Any) -> None:
    api, store = booking_api(commit_then=[failure])
    client, _ = make_client(api)
    async with client:
        result = await client.create_booking(booking_create())
    assert (result.created, result.reconciled, result.id) == (False, True, "bkg_1")
    assert len(store) == 1
    assert api.paths("POST").count(API_PREFIX + "/bookings") == 1  # found: no second POST
    assert client.stats.reconciliations["create_booking:found"] == 1


async def test_an_ambiguous_failure_before_commit_is_looked_up_then_created() -> None:
    api, store = booking_api(commit_then=["503-before"])
    client, _ = make_client(api)
    async with client:
        result = await client.create_booking(booking_create())
    assert (result.created, result.reconciled) == (True, True)
    assert len(store) == 1
    assert api.paths("GET").count(API_PREFIX + "/bookings") == 1
    assert client.stats.reconciliations["create_booking:not_found"] == 1


async def test_a_429_or_refused_connection_is_not_ambiguous() -> None:
    api, _store = booking_api(commit_then=[])
    inner = api.routes[("POST", API_PREFIX + "/bookings")]
    api.routes[("POST", API_PREFIX + "/bookings")] = flaky(
        [error(429, "rate_limited", headers={"Retry-After": "1"}), httpx.ConnectError("no")],
        None,  # type: ignore[arg-type]
    )
    first = api.routes[("POST", API_PREFIX + "/bookings")]

    def handler(request: httpx.Request) -> httpx.Response:
        return first(request) or inner(request)  # type: ignore[no-any-return]

    api.routes[("POST", API_PREFIX + "/bookings")] = handler
    client, _ = make_client(api)
    async with client:
        result = await client.create_booking(booking_create())
    assert (result.created, result.reconciled) == (True, False)
    assert API_PREFIX + "/bookings" not in api.paths("GET")  # no lookup


async def test_lookup_failures_share_the_creates_retry_budget() -> None:
    api, _store = booking_api(commit_then=[500])
    api.routes[("GET", API_PREFIX + "/bookings")] = flaky([], error(503, "unavailable"))
    client, _ = make_client(api, retry=RetryPolicy(max_attempts=3, random=lambda: 0.0))
    async with client:
        with pytest.raises(RetryExhausted) as caught:
            await client.create_booking(booking_create())
    err = caught.value
    assert err.seen == ("500", "503", "503")  # one loop: the POST, then two lookups
    assert err.may_have_committed
    assert err.classification == "reconcile"
    assert api.paths("POST").count(API_PREFIX + "/bookings") == 1


def project_json(pid: str, ref: str) -> dict[str, Any]:
    return {
        "id": pid,
        "external_reference": ref,
        "name": "Kitchen",
        "customer": booking_json("x", "x")["customer"],
        "address": booking_json("x", "x")["address"],
        "status": "open",
        "currency": "CLP",
        "total_amount": "0",
        "paid_amount": "0",
        "created_at": TS,
        "updated_at": TS,
    }


async def test_create_project_reconciles_by_reposting_and_the_409() -> None:
    api = FakeApi()
    store: dict[str, dict[str, Any]] = {}

    @api.route("POST", "/projects")
    def create(request: httpx.Request) -> httpx.Response:
        ref = json.loads(request.content)["external_reference"]
        if store:
            return error(409, "duplicate_external_reference", existing_id="prj_1")
        store["prj_1"] = project_json("prj_1", ref)
        raise httpx.RemoteProtocolError("cut after commit")

    @api.route("GET", "/projects/prj_1")
    def get(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={**store["prj_1"], "stages": []})

    client, _ = make_client(api)
    body = m.ProjectCreate(
        external_reference="PRJ-1", name="Kitchen", customer=CUSTOMER, address=ADDRESS
    )
    async with client:
        result = await client.create_project(body)
    assert (result.created, result.reconciled, result.id) == (False, True, "prj_1")
    assert api.paths("POST").count(API_PREFIX + "/projects") == 2


def stage_json(sid: str, booking_ids: list[str]) -> dict[str, Any]:
    return {
        "id": sid,
        "project_id": "prj_1",
        "name": "Demolition",
        "sequence": 1,
        "status": "pending",
        "booking_ids": booking_ids,
        "created_at": TS,
        "updated_at": TS,
    }


async def test_duplicate_stage_returns_the_existing_one_and_reports_booking_differences(
    caplog: pytest.LogCaptureFixture,
) -> None:
    api = FakeApi()

    @api.route("POST", "/projects/prj_1/stages")
    def create(request: httpx.Request) -> httpx.Response:
        return error(409, "duplicate_stage", existing_id="stg_1")

    @api.route("GET", "/projects/prj_1")
    def get(request: httpx.Request) -> httpx.Response:
        stages = [stage_json("stg_0", []), stage_json("stg_1", ["bkg_2"])]
        return httpx.Response(200, json={**project_json("prj_1", "P"), "stages": stages})

    client, _ = make_client(api)
    body = m.StageCreate(name="Demolition", sequence=1, booking_ids=["bkg_1"])
    with caplog.at_level(logging.WARNING, logger="sodtrack.client"):
        async with client:
            result = await client.create_stage("prj_1", body)
            same = await client.create_stage(
                "prj_1", m.StageCreate(name="Demolition", sequence=1, booking_ids=["bkg_2"])
            )
    assert (result.created, result.id) == (False, "stg_1")
    assert result.mismatches
    assert "bkg_1" in result.mismatches[0]
    assert same.mismatches == ()
    assert "differs" in caplog.text
    assert client.stats.reconciliations["create_stage:mismatch"] == 1


async def test_booking_already_staged_is_a_conflict_error() -> None:
    api = FakeApi()

    @api.route("POST", "/projects/prj_1/stages")
    def create(request: httpx.Request) -> httpx.Response:
        return error(409, "booking_already_staged", existing_id="stg_7")

    client, _ = make_client(api)
    async with client:
        with pytest.raises(ConflictError) as caught:
            await client.create_stage("prj_1", m.StageCreate(name="x", sequence=2))
    assert caught.value.existing_id == "stg_7"
    assert caught.value.classification == "reconcile"


def payment_json(pid: str, ref: str) -> dict[str, Any]:
    return {
        "id": pid,
        "external_reference": ref,
        "project_id": "prj_1",
        "stage_id": None,
        "amount": "1000",
        "currency": "CLP",
        "method": "card",
        "paid_at": TS,
        "created_at": TS,
    }


def payments_api(existing: int) -> FakeApi:
    api = FakeApi()
    payments = [payment_json(f"pay_{i:03d}", f"PAY-{i}") for i in range(existing)]

    @api.route("GET", "/projects/prj_1/payments")
    def listing(request: httpx.Request) -> httpx.Response:
        q = query(request)
        page, size = int(q["page"]), int(q["page_size"])
        data = payments[(page - 1) * size : page * size]
        meta = {
            "page": page,
            "page_size": size,
            "total_items": len(payments),
            "total_pages": -(-len(payments) // size),
        }
        return httpx.Response(200, json={"data": data, "meta": meta})

    @api.route("POST", "/projects/prj_1/payments")
    def create(request: httpx.Request) -> httpx.Response:
        ref = json.loads(request.content)["external_reference"]
        if ref == "PAY-OTHER":
            return error(409, "duplicate_external_reference", existing_id="pay_elsewhere")
        if any(p["external_reference"] == ref for p in payments):
            return error(409, "duplicate_external_reference", existing_id="pay_x")
        payments.append(payment_json(f"pay_{len(payments):03d}", ref))
        return error(502, "internal_error")

    return api


def payment_create(ref: str) -> m.PaymentCreate:
    return m.PaymentCreate(
        external_reference=ref,
        amount=Decimal("1000"),
        currency="CLP",
        method=m.PaymentMethod.CARD,
        paid_at=datetime(2026, 6, 1, tzinfo=UTC),
    )


async def test_an_ambiguous_payment_is_found_in_the_projects_payment_pages() -> None:
    api = payments_api(existing=PAGE_SIZE_MAX + 10)
    client, _ = make_client(api)
    async with client:
        result = await client.create_payment("prj_1", payment_create("PAY-NEW"))
    assert (result.created, result.reconciled) == (False, True)
    assert result.resource.external_reference == "PAY-NEW"
    assert api.paths("GET").count(API_PREFIX + "/projects/prj_1/payments") == 2


async def test_a_payment_reference_held_by_another_project_is_a_conflict() -> None:
    api = payments_api(existing=3)
    client, _ = make_client(api)
    async with client:
        with pytest.raises(ConflictError) as caught:
            await client.create_payment("prj_1", payment_create("PAY-OTHER"))
    assert caught.value.existing_id == "pay_elsewhere"
    assert client.stats.reconciliations["create_payment:conflict_unresolved"] == 1


def lead_api(script: list[Any]) -> FakeApi:
    api = FakeApi()

    @api.route("POST", "/leads/forms/frm_1/submissions")
    def submit(request: httpx.Request) -> httpx.Response:
        item = script.pop(0) if script else "201"
        if isinstance(item, Exception):
            raise item
        if item == "409":
            return error(409, "duplicate_external_reference", existing_id="lead_1")
        if item != "201":
            return error(int(item), "x")
        lead = {
            "id": "lead_2",
            "form_id": "frm_1",
            "external_reference": None,
            "status": "new",
            "created_at": TS,
        }
        return httpx.Response(201, json=lead)

    return api


async def test_a_repeated_lead_has_no_resource_to_read_back() -> None:
    client, _ = make_client(lead_api(["409"]))
    body = m.LeadSubmission(fields={"name": "Ana"}, external_reference="LEAD-1")
    async with client:
        result = await client.submit_lead("frm_1", body)
    assert (result.id, result.resource, result.created) == ("lead_1", None, False)


async def test_a_lead_without_reference_is_not_repeated_after_an_ambiguous_failure() -> None:
    api = lead_api([httpx.RemoteProtocolError("cut")])
    client, _ = make_client(api)
    async with client:
        with pytest.raises(RetryExhausted) as caught:
            await client.submit_lead("frm_1", m.LeadSubmission(fields={"name": "Ana"}))
    assert caught.value.may_have_committed
    assert "no external_reference" in str(caught.value)
    assert len(api.paths("POST")) == 2  # the token and one submission

    api = lead_api(["429", "201"])
    client, _ = make_client(api)
    async with client:
        result = await client.submit_lead("frm_1", m.LeadSubmission(fields={"name": "Ana"}))
    assert result.created


async def test_upload_document_sends_multipart_and_reconciles_by_reference() -> None:
    api = FakeApi()
    docs: list[dict[str, Any]] = []
    seen: list[bytes] = []

    @api.route("POST", "/projects/prj_1/documents")
    def upload(request: httpx.Request) -> httpx.Response:
        seen.append(request.content)
        docs.append(
            {
                "id": "doc_1",
                "external_reference": "DOC-1",
                "project_id": "prj_1",
                "stage_id": None,
                "kind": "invoice",
                "filename": "a.pdf",
                "size_bytes": 8,
                "sha256": "0" * 64,
                "created_at": TS,
            }
        )
        return error(500, "internal_error")

    @api.route("GET", "/projects/prj_1/documents")
    def listing(request: httpx.Request) -> httpx.Response:
        meta = {"page": 1, "page_size": PAGE_SIZE_MAX, "total_items": len(docs), "total_pages": 1}
        return httpx.Response(200, json={"data": docs, "meta": meta})

    client, _ = make_client(api)
    form = m.DocumentUpload(kind=m.DocumentKind.INVOICE, external_reference="DOC-1")
    async with client:
        result = await client.upload_document(
            "prj_1", b"%PDF-1.4", "a.pdf", form, content_type="application/pdf"
        )
    assert (result.created, result.reconciled, result.id) == (False, True, "doc_1")
    body = seen[0]
    assert b'name="file"; filename="a.pdf"' in body
    assert b'name="kind"' in body
    assert b"invoice" in body
    assert b'name="external_reference"' in body
    assert b"%PDF-1.4" in body


# ---------------------------------------------------------------- walks


async def test_page_walk_reports_a_completeness_mismatch(caplog: pytest.LogCaptureFixture) -> None:
    api = FakeApi()

    @api.route("GET", "/catalog/categories")
    def categories(request: httpx.Request) -> httpx.Response:
        page = int(query(request)["page"])
        data = [category_json(f"cat_{page}{i}") for i in range(2)] if page <= 2 else []
        meta = {"page": page, "page_size": 2, "total_items": 5, "total_pages": 3}
        return httpx.Response(200, json={"data": data, "meta": meta})

    client, _ = make_client(api)
    with caplog.at_level(logging.WARNING, logger="sodtrack.client"):
        async with client:
            walk = client.list_categories(page_size=2)
            pages = [page async for page in walk]
    assert [len(p.items) for p in pages] == [2, 2, 0]
    assert walk.completeness is not None
    assert (walk.completeness.expected, walk.completeness.received) == (5, 4)
    assert walk.warning is not None
    assert client.stats.completeness_warnings == [walk.warning]
    assert "expected 5 records, received 4" in caplog.text
    assert client.stats.pages["list_categories"] == 3


async def test_cursor_walk_dedupes_keeping_the_newest_and_collect_returns_one_per_id() -> None:
    api = FakeApi()
    t1, t2 = TS, "2026-12-03T14:00:00.000000Z"
    pages = {
        None: ([booking_json("bkg_1", "A", t1), booking_json("bkg_2", "B", t1)], "c1"),
        "c1": ([booking_json("bkg_2", "B", t1), booking_json("bkg_1", "A", t2)], "c2"),
        "c2": ([booking_json("bkg_3", "C", t2), booking_json("bkg_1", "A", t1)], None),
    }

    @api.route("GET", "/bookings")
    def bookings(request: httpx.Request) -> httpx.Response:
        data, nxt = pages[query(request).get("cursor")]
        return httpx.Response(200, json={"data": data, "next_cursor": nxt})

    client, _ = make_client(api)
    async with client:
        walk = client.list_bookings()
        streamed = [b.id for page in [p async for p in walk] for b in page.items]
        raw_walk = client.list_bookings(dedupe=False)
        raw = [b.id for page in [p async for p in raw_walk] for b in page.items]
        collected = await client.collect_bookings()
    assert streamed == ["bkg_1", "bkg_2", "bkg_1", "bkg_3"]
    assert (walk.superseded, walk.duplicates_dropped) == (1, 2)
    assert len(raw) == 6
    assert sorted(b.id for b in collected) == ["bkg_1", "bkg_2", "bkg_3"]
    newest = {b.id: b.updated_at for b in collected}
    assert newest["bkg_1"] == datetime(2026, 12, 3, 14, tzinfo=UTC)


async def test_a_cursor_loop_ends_the_walk_with_a_contract_violation() -> None:
    api = FakeApi()

    @api.route("GET", "/bookings")
    def bookings(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"data": [], "next_cursor": "same"})

    client, _ = make_client(api)
    async with client:
        with pytest.raises(ContractViolation, match="cursor loop"):
            await client.collect_bookings()


# ---------------------------------------------------------------- construction


async def test_from_settings_uses_the_settings_and_owns_its_http_client() -> None:
    settings = Settings(
        base_url="http://sim.local:8765/",
        country="pe",
        client_id="acme-pe",
        client_secret=SecretStr(SECRET),
        max_concurrency=3,
        retry_budget_s=42.0,
        rate_limit_per_s=5.0,
        allow_insecure_http=True,  # plain http to a host outside loopback: said explicitly
    )
    with pytest.raises(InsecureTransport):  # else refused before anything is sent
        SodtrackClient.from_settings(settings.model_copy(update={"allow_insecure_http": False}))
    client = SodtrackClient.from_settings(settings)
    assert client.base_url == "http://sim.local:8765"
    assert client.country.currency == "PEN"
    assert client.retry_policy.budget_s == 42.0
    assert client.rate_limiter.bucket.configured_rate == 5.0
    async with client:
        pass
    assert client._http.is_closed

    injected = httpx.AsyncClient()
    async with SodtrackClient.from_settings(settings, injected):
        pass
    assert not injected.is_closed
    await injected.aclose()


async def test_requests_go_under_the_api_prefix_of_the_base_url() -> None:
    api = FakeApi()
    one_booking(api)
    client, _ = make_client(api)
    async with client:
        await client.get_booking("bkg_1")
    assert str(api.requests[-1].url) == f"{BASE}{API_PREFIX}/bookings/bkg_1"


def cursor_pages_api(n_pages: int, fail_at: int | None = None) -> FakeApi:
    api = FakeApi()

    @api.route("GET", "/bookings")
    def bookings(request: httpx.Request) -> httpx.Response:
        k = int(query(request).get("cursor", "0"))
        if k == fail_at:
            return error(404, "not_found", "gone")
        nxt = str(k + 1) if k + 1 < n_pages else None
        data = [booking_json(f"bkg_{k}", f"R{k}")]
        return httpx.Response(200, json={"data": data, "next_cursor": nxt})

    return api


async def test_prefetch_fetches_one_page_ahead_and_aclose_cancels_it() -> None:
    api = cursor_pages_api(5)
    client, _ = make_client(api)
    async with client:
        async with client.list_bookings() as walk:
            async for _ in walk:
                break
            await asyncio.sleep(0)
        assert walk._ahead is None
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert pending == []
        raw = client.list_bookings(prefetch=False)
        await raw.__anext__()
    assert client.stats.pages["list_bookings"] == 2
    assert client.stats.requests[("list_bookings", "200")] <= 3


async def test_an_error_on_a_prefetched_page_surfaces_when_it_is_read() -> None:
    api = cursor_pages_api(5, fail_at=2)
    client, _ = make_client(api)
    got: list[str] = []

    async def consume() -> None:
        async for page in client.list_bookings():
            got.extend(b.id for b in page.items)

    async with client:
        with pytest.raises(NotFoundError):
            await consume()
    assert got == ["bkg_0", "bkg_1"]
