"""The app starts, answers in the contract's shapes, and works over a real socket."""

from __future__ import annotations

import httpx

from sodtrack.simulator.app import create_app
from sodtrack.simulator.config import SimConfig

from .helpers import error_of, url


async def test_token_and_a_page(http: httpx.AsyncClient, auth: dict[str, str]) -> None:
    response = await http.get(url("list_categories"), headers=auth)
    assert response.status_code == 200
    body = response.json()
    assert body["meta"]["total_items"] == 40
    assert response.headers["X-Request-Id"].startswith("req_")


async def test_unknown_path_and_method(http: httpx.AsyncClient) -> None:
    missing = await http.get("/api/v1/nope")
    assert missing.status_code == 404
    assert error_of(missing)["code"] == "not_found"
    wrong = await http.delete(url("list_bookings"))
    assert wrong.status_code == 405
    assert error_of(wrong)["code"] == "method_not_allowed"
    assert "POST" in wrong.headers["allow"]


def test_create_app_with_defaults_except_scale() -> None:
    app = create_app(SimConfig(bookings=100, postal_codes=500, zones=10, services=50, variants=60))
    assert app.state.sim.config.country == "cl"


def test_real_socket(sim_server: str) -> None:
    with httpx.Client(base_url=sim_server) as client:
        response = client.post(
            url("issue_token"), json={"client_id": "sim-client", "client_secret": "sim-secret"}
        )
        assert response.status_code == 200
        assert response.headers["X-RateLimit-Limit"] == "0" or response.headers["X-RateLimit-Limit"]
