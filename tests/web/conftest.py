"""Upload page fixtures: a loopback simulator, settings pointing at it and at ``tmp_path``
(state database, uploads, outbox), accounts, and the application in-process (Starlette's
``TestClient``: the lifespan runs, background dry runs and loads run in its event loop)."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from sodtrack.settings import Settings
from sodtrack.simulator.app import create_app
from sodtrack.simulator.testing import SIM_NOW, serve_in_thread, small_config
from sodtrack.web.accounts import Accounts
from sodtrack.web.app import create_web_app

SIM_TODAY = date.fromisoformat(SIM_NOW[:10])
PASSWORD = "correct horse battery"


@dataclass
class Site:
    settings: Settings
    sim: Starlette
    root: Path
    accounts: Accounts

    def writes(self) -> dict[str, int]:
        writes: dict[str, int] = self.sim.state.sim.counters_snapshot()["writes"]
        return {k: v for k, v in writes.items() if k != "token"}

    def app(self, **kwargs: Any) -> Starlette:
        return create_web_app(self.settings, **kwargs)


@contextlib.contextmanager
def make_site(root: Path, **sim: Any) -> Iterator[Site]:
    """A site on a small simulator (``sim`` overrides its config, e.g. a rate limit)."""
    app = create_app(small_config(**sim))
    with serve_in_thread(app) as url:
        settings = Settings(
            base_url=url,
            country="cl",
            client_id="sim-client",
            client_secret="sim-secret",  # type: ignore[arg-type]
            state_url=f"sqlite:///{root / 'state' / 'state.db'}",
            uploads=str(root / "uploads"),
            outbox=str(root / "outbox"),
            warehouse=str(root / "warehouse"),
        )
        accounts = Accounts(settings.state_url)
        accounts.add("ana", PASSWORD, ["cl"])
        accounts.add("pedro", PASSWORD, ["pe"])
        yield Site(settings, app, root, accounts)
        accounts.close()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    with make_site(tmp_path) as made:
        yield made


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "no CSRF field on the page"
    return found.group(1)


def sign_in(client: TestClient, name: str = "ana", password: str = PASSWORD) -> str:
    """Signs in through the form; returns the session's CSRF token (from the home page)."""
    page = client.get("/login")
    answer = client.post(
        "/login",
        data={"name": name, "password": password, "csrf": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return csrf_of(client.get("/").text)


def wait_for(check: Callable[[], Any], *, timeout_s: float = 60.0, what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy (the job runs in the app's loop)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
