"""The fault-injecting proxy itself: its draw is seeded and near the rate asked, and each kind
of fault is what it says on the wire (checked with a bare httpx client over loopback)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from sodtrack.contract.limits import API_PREFIX
from sodtrack.simulator.app import create_app
from sodtrack.simulator.flakyproxy import FAULTS, FlakyProxy, serve_flaky_proxy
from sodtrack.simulator.testing import serve_in_thread, small_config


def _draws(seed: int, n: int = 20_000) -> list[str | None]:
    proxy = FlakyProxy("http://unused", seed=seed, rate=0.12)
    return [proxy.draw("GET", f"/api/v1/bookings/bkg_{i % 997}", b"") for i in range(n)]


def test_the_draw_is_seeded_near_the_rate_and_serves_every_kind() -> None:
    a, b, c = _draws(1), _draws(1), _draws(2)
    assert a == b
    assert a != c
    for draws in (a, c):
        spoiled = Counter(k for k in draws if k is not None)
        assert 0.11 < sum(spoiled.values()) / len(draws) < 0.13
        assert set(spoiled) == set(FAULTS)


def test_a_repeated_request_is_a_new_draw() -> None:
    proxy = FlakyProxy("http://unused", seed=3, rate=0.5)
    draws = {proxy.draw("POST", "/api/v1/bookings", b'{"x": 1}') for _ in range(50)}
    assert None in draws
    assert len(draws) > 2


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[FlakyProxy, str, str]]:
    app = create_app(small_config())
    with serve_in_thread(app) as sim_url:
        proxy = FlakyProxy(sim_url, seed=0, rate=0.0, stall_s=0.6)
        with serve_flaky_proxy(proxy) as url:
            yield proxy, url, sim_url


def _token(url: str) -> str:
    r = httpx.post(
        f"{url}{API_PREFIX}/auth/token",
        json={"client_id": "sim-client", "client_secret": "sim-secret"},
    )
    r.raise_for_status()
    return str(r.json()["access_token"])


def _get(proxy: FlakyProxy, url: str, kind: str | None) -> httpx.Response:
    path = f"{API_PREFIX}/coverage/zones"
    proxy.script = {f"GET {path}": [kind]} if kind is not None else {}
    headers = {"Authorization": f"Bearer {_token(url)}"}
    return httpx.get(f"{url}{path}", headers=headers, timeout=httpx.Timeout(5.0, read=0.3))


def test_each_fault_is_what_it_says_on_the_wire(served: tuple[FlakyProxy, str, str]) -> None:
    proxy, url, _ = served
    good = _get(proxy, url, None)
    assert good.status_code == 200
    whole = good.content
    json.loads(whole)

    r = _get(proxy, url, "5xx_json")
    assert r.status_code in (500, 502, 503, 504)
    assert "error" in r.json()
    r = _get(proxy, url, "5xx_html")
    assert r.status_code in (500, 502, 503, 504)
    assert r.text.startswith("<html>")
    r = _get(proxy, url, "429_bare")
    assert r.status_code == 429
    assert "retry-after" not in r.headers
    assert not any(h.startswith("x-ratelimit") for h in r.headers)
    r = _get(proxy, url, "cut_200")
    assert r.status_code == 200
    assert 0 < len(r.content) < len(whole)
    assert whole.startswith(r.content)
    r = _get(proxy, url, "empty_200")
    assert r.status_code == 200
    assert r.content == b""
    r = _get(proxy, url, "held_502")
    assert r.status_code == 502
    with pytest.raises(httpx.RemoteProtocolError):
        _get(proxy, url, "held_drop")
    with pytest.raises(httpx.ReadTimeout):
        _get(proxy, url, "stall")
    with pytest.raises(httpx.ReadTimeout):
        _get(proxy, url, "held_stall")


def test_a_held_back_write_was_committed(served: tuple[FlakyProxy, str, str]) -> None:
    """``held_drop`` forwards the create before dropping: the simulator has the project."""
    proxy, url, sim_url = served
    path = f"{API_PREFIX}/projects"
    proxy.script = {f"POST {path}": ["held_drop"]}
    headers = {"Authorization": f"Bearer {_token(url)}"}
    body = {
        "external_reference": "PXY-HELD-1",
        "name": "Held back",
        "customer": {"first_name": "Ana", "last_name": "Rojas", "email": "ana@example.com"},
        "address": {
            "line1": "Av. Providencia 1234",
            "city": "Santiago",
            "region": "RM",
            "postal_code": "7500000",
            "country": "cl",
        },
    }
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.post(f"{url}{path}", json=body, headers=headers)
    again = httpx.post(f"{sim_url}{path}", json=body, headers=headers)
    assert again.status_code == 409
    assert again.json()["error"]["existing_id"]
