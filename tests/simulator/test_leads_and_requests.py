"""Lead forms and submissions; request-level rules (content type, JSON, unknown fields)."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx

from sodtrack.contract.errors import ErrorCode
from sodtrack.simulator.sim import Simulator
from sodtrack.simulator.store import VariantRec

from .helpers import error_of, issues, url

FORM = "frm_00001"  # Cotización de remodelación: a field of every type


async def test_forms(http: httpx.AsyncClient, auth: dict[str, str]) -> None:
    listed = await http.get(url("list_forms"), headers=auth)
    forms = listed.json()["data"]
    types = {f["type"] for form in forms for f in form["fields"]}
    assert types == {"text", "email", "phone", "postal_code", "select", "number"}
    one = await http.get(url("get_form", form_id=FORM), headers=auth)
    assert one.json() == forms[0]
    missing = await http.get(url("get_form", form_id="frm_nope"), headers=auth)
    assert missing.status_code == 404


async def test_submissions(http: httpx.AsyncClient, sim: Simulator, auth: dict[str, str]) -> None:
    path = url("submit_lead", form_id=FORM)
    good = {
        "full_name": "Ana Rojas",
        "email": "ana@example.com",
        "postal_code": "7500000",
        "project_type": "kitchen",
        "budget": 1500000,
    }
    created = await http.post(
        path, json={"fields": good, "source": "web", "external_reference": "L-1"}, headers=auth
    )
    assert created.status_code == 201, created.text
    lead = created.json()
    assert set(lead) == {"id", "form_id", "external_reference", "status", "created_at"}
    assert lead["status"] == "new"
    dup = await http.post(path, json={"fields": good, "external_reference": "L-1"}, headers=auth)
    assert error_of(dup)["existing_id"] == lead["id"]
    anonymous = await http.post(path, json={"fields": good}, headers=auth)
    assert anonymous.status_code == 201
    bad = {
        "full_name": "",
        "email": "nope",
        "phone": 56912345678,
        "postal_code": "75000",
        "project_type": "garage",
        "budget": "1500",
        "colour": "red",
    }
    response = await http.post(path, json={"fields": bad}, headers=auth)
    assert issues(response) == {
        ("fields.full_name", "required"),
        ("fields.email", "invalid_format"),
        ("fields.phone", "invalid_type"),
        ("fields.postal_code", "invalid_format"),
        ("fields.project_type", "invalid_format"),
        ("fields.budget", "invalid_type"),
        ("fields.colour", "unknown_field"),
    }
    boolean = await http.post(path, json={"fields": {**good, "budget": True}}, headers=auth)
    assert issues(boolean) == {("fields.budget", "invalid_type")}
    assert sim.client().count_leads("L-1") == 1
    other = await http.post(
        url("submit_lead", form_id="frm_nope"), json={"fields": good}, headers=auth
    )
    assert other.status_code == 404


async def test_malformed_and_unknown(http: httpx.AsyncClient, auth: dict[str, str]) -> None:
    path = url("create_project")
    not_json = await http.post(
        path, content=b"{nope", headers={**auth, "Content-Type": "application/json"}
    )
    assert not_json.status_code == 400
    assert error_of(not_json)["code"] == ErrorCode.MALFORMED_REQUEST
    wrong_type = await http.post(
        path, content=b"{}", headers={**auth, "Content-Type": "text/plain"}
    )
    assert wrong_type.status_code == 400
    empty = await http.post(path, headers={**auth, "Content-Type": "application/json"})
    assert empty.status_code == 400
    array = await http.post(path, json=[], headers=auth)
    assert issues(array) == {("body", "invalid_type")}
    unknown = await http.post(
        url("issue_token"), json={"client_id": "x", "client_secret": "y", "z": 1}
    )
    assert issues(unknown) == {("z", "unknown_field")}
    query = await http.get(
        url("get_booking", booking_id="bkg_x"), params={"expand": "1"}, headers=auth
    )
    assert issues(query) == {("expand", "unknown_field")}
    repeated = await http.get(url("list_services") + "?active=true&active=false", headers=auth)
    assert issues(repeated) == {("active", "invalid_format")}


async def test_every_response_has_the_headers(
    http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    responses = [
        await http.get(url("list_forms"), headers=auth),
        await http.get(url("list_forms")),
        await http.get("/api/v1/nothing"),
        await http.put(url("list_forms"), headers=auth),
        await http.post(url("issue_token"), json={}),
    ]
    for response in responses:
        assert response.headers["X-Request-Id"].startswith("req_")
        for name in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"):
            assert name in response.headers
        assert response.headers["content-type"] == "application/json"
    ids = {r.headers["X-Request-Id"] for r in responses}
    assert len(ids) == len(responses)


async def test_coverage_and_availability(
    http: httpx.AsyncClient, sim: Simulator, auth: dict[str, str]
) -> None:
    from .helpers import bookable

    place = bookable(sim)
    check = await http.get(
        url("check_coverage"),
        params={"postal_code": place.postal_code, "service_id": place.service_id},
        headers=auth,
    )
    assert check.json() == {
        "covered": True,
        "zone_id": place.zone_id,
        "contractor_count": place.contractor_count,
    }
    nowhere = await http.get(
        url("check_coverage"),
        params={"postal_code": "0000001", "service_id": place.service_id},
        headers=auth,
    )
    assert nowhere.json() == {"covered": False, "zone_id": None, "contractor_count": 0}
    bad = await http.get(
        url("check_coverage"), params={"postal_code": "75000", "service_id": "svc_x"}, headers=auth
    )
    assert issues(bad) == {("postal_code", "invalid_format"), ("service_id", "not_found")}
    base = {"service_id": place.service_id, "postal_code": place.postal_code}
    # SIM_NOW is Wednesday 2026-06-10 12:00 in Santiago: 13:00 is the first start >= 1 h ahead
    week = await http.get(
        url("get_availability"),
        params={**base, "date_from": "2026-06-10", "date_to": "2026-06-16"},
        headers=auth,
    )
    slots = week.json()["data"]
    assert slots[0]["start"] == "2026-06-10T17:00:00.000000Z"  # 13:00 -04:00
    assert len(slots) == 5 + 10 * 5  # Wed 13..17 h, Thu, Fri, Sat, Mon, Tue (no Sunday)
    wide = await http.get(
        url("get_availability"),
        params={**base, "date_from": "2026-06-10", "date_to": "2026-06-24"},
        headers=auth,
    )
    assert error_of(wide)["code"] == "range_too_wide"
    fourteen = await http.get(
        url("get_availability"),
        params={**base, "date_from": "2026-06-10", "date_to": "2026-06-23"},
        headers=auth,
    )
    assert fourteen.status_code == 200
    uncovered = await http.get(
        url("get_availability"),
        params={
            **base,
            "postal_code": "0000001",
            "date_from": "2026-06-10",
            "date_to": "2026-06-10",
        },
        headers=auth,
    )
    assert error_of(uncovered)["code"] == "postal_code_not_covered"


async def test_availability_checks_the_service_and_variant_as_a_booking_does(
    http: httpx.AsyncClient, sim: Simulator, auth: dict[str, str]
) -> None:
    """Rule 3 (one function for both): an inactive service, a variant of another service or
    none, are refused as ``create_booking`` refuses them; a variant's duration sets the end."""
    from .helpers import bookable

    shared = sim.state.shared
    place = bookable(sim)
    days = {"date_from": "2026-06-11", "date_to": "2026-06-11"}
    base = {"service_id": place.service_id, "postal_code": place.postal_code, **days}
    inactive = next(s for s in shared.services.values() if not s.active)
    response = await http.get(
        url("get_availability"), params={**base, "service_id": inactive.id}, headers=auth
    )
    assert error_of(response)["code"] == "service_inactive"
    other = next(v for v in shared.variants.values() if v.service_id != place.service_id)
    for variant_id in (other.id, "var_nope"):
        response = await http.get(
            url("get_availability"), params={**base, "variant_id": variant_id}, headers=auth
        )
        assert error_of(response)["code"] == "variant_mismatch", variant_id
        assert ("variant_id", "not_found") in issues(response)
    service = shared.services[place.service_id]
    longer = VariantRec("var_t", service.id, True, service.duration_min + 30, 0, b"{}")
    shared.variants[longer.id] = longer
    response = await http.get(
        url("get_availability"), params={**base, "variant_id": longer.id}, headers=auth
    )
    slot = response.json()["data"][0]
    end, start = (datetime.fromisoformat(slot[k]) for k in ("end", "start"))
    assert end - start == timedelta(minutes=longer.duration_min)
