"""Several countries in one simulator (``sodtrack-sim serve --country cl --country pe``)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from typer.testing import CliRunner

from sodtrack.simulator import cli
from sodtrack.simulator.app import create_multi_country_app
from sodtrack.simulator.testing import SimulatorTransport, small_config

from .helpers import error_of, token, url


@pytest.fixture
def multi() -> Starlette:
    return create_multi_country_app([small_config(country="cl"), small_config(country="pe")])


async def test_each_country_under_its_prefix(multi: Starlette) -> None:
    for code, currency in (("cl", "CLP"), ("pe", "PEN")):
        async with httpx.AsyncClient(
            transport=SimulatorTransport(multi), base_url=f"http://sim/{code}"
        ) as http:
            auth = await token(http)
            page = await http.get(url("list_services"), headers=auth, params={"page_size": 1})
            assert page.status_code == 200, page.text
            assert page.json()["data"][0]["currency"] == currency
            health = await http.get("/_sim/health")
            assert health.status_code == 200
            assert health.json() == {"ok": True}
            assert health.headers["X-Request-Id"].startswith("req_")
    assert set(multi.state.sims) == {"cl", "pe"}


async def test_a_token_of_one_country_is_refused_by_another(multi: Starlette) -> None:
    transport = SimulatorTransport(multi)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim/cl") as cl:
        auth = await token(cl)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim/pe") as pe:
        refused = await pe.get(url("list_categories"), headers=auth)
    assert refused.status_code == 403
    assert error_of(refused)["code"] == "country_mismatch"


async def test_controls_are_per_country(multi: Starlette) -> None:
    transport = SimulatorTransport(multi)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as http:
        before = (await http.get("/pe/_sim/clock")).json()["now"]
        moved = await http.post("/cl/_sim/clock/advance", json={"seconds": 3600})
        assert moved.status_code == 200
        assert (await http.get("/pe/_sim/clock")).json()["now"] == before
        assert (await http.get("/cl/_sim/clock")).json()["now"] != before
        missing = await http.get("/api/v1/categories")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "not_found"  # no country: no request id


def test_each_country_once() -> None:
    with pytest.raises(ValueError, match="each country once"):
        create_multi_country_app([small_config(), small_config()])


@pytest.mark.parametrize(
    ("args", "mounted"),
    [(["--country", "pe"], None), (["--country", "cl", "--country", "pe"], {"cl", "pe"})],
)
def test_cli_serves_one_country_at_the_root_and_several_under_prefixes(
    monkeypatch: pytest.MonkeyPatch, args: list[str], mounted: set[str] | None
) -> None:
    served: dict[str, Any] = {}

    def fake_run(app: Starlette, **kwargs: Any) -> None:
        served["app"], served["kwargs"] = app, kwargs

    monkeypatch.setattr("uvicorn.run", fake_run)
    scale = ["--bookings", "50", "--services", "20", "--variants", "40", "--zones", "5"]
    result = CliRunner().invoke(cli.app, ["serve", *args, *scale, "--postal-codes", "100"])
    assert result.exit_code == 0, result.output
    app = served["app"]
    if mounted is None:
        assert app.state.sim.config.country == "pe"
    else:
        assert set(app.state.sims) == mounted
    assert served["kwargs"]["port"] == 8765
