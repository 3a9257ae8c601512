"""Upload page fixtures: a loopback simulator, settings pointing at it and at ``tmp_path``
(state database, uploads, outbox), accounts, and the application in-process (Starlette's
``TestClient``: the lifespan runs, background dry runs and loads run in its event loop).

``stored_site`` is the same site with its uploads and outbox on a local folder and on a real
S3 server (moto's, on loopback: ``tests/s3server.py``), for the tests that touch files."""

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
from bulkload.objstore_helpers import Store, make_store
from s3server import S3Server, moto_server
from starlette.applications import Starlette
from starlette.testclient import TestClient

from sodtrack.settings import Settings
from sodtrack.simulator.app import create_app
from sodtrack.simulator.testing import SIM_NOW, serve_in_thread, small_config
from sodtrack.web.accounts import Accounts
from sodtrack.web.app import create_web_app

SIM_TODAY = date.fromisoformat(SIM_NOW[:10])
PASSWORD = "correct horse battery"
THROTTLE_LIMIT = 3
"""Failed sign-ins allowed per window in the throttle tests."""
THROTTLE_WINDOW_S = 600.0


@dataclass
class VirtualClock:
    """One clock the application instances of a throttle test read (virtual time)."""

    now: float = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def throttle_settings(state_url: str, root: Path, **overrides: Any) -> Settings:
    """Settings on ``state_url`` holding the accounts ``ana`` and ``bea`` (both ``cl``), files
    under ``root``, and the throttle tests' small limit and window."""
    accounts = Accounts(state_url)
    accounts.add("ana", PASSWORD, ["cl"])
    accounts.add("bea", PASSWORD, ["cl"])
    accounts.close()
    return Settings(
        base_url="http://127.0.0.1:9",
        country="cl",
        client_id="c",
        client_secret="s",  # type: ignore[arg-type]
        state_url=state_url,
        uploads=str(root / "uploads"),
        outbox=str(root / "outbox"),
        web_login_max_failures=THROTTLE_LIMIT,
        web_login_window_s=THROTTLE_WINDOW_S,
        **overrides,
    )


@dataclass
class Site:
    settings: Settings
    sim: Starlette
    root: Path
    accounts: Accounts
    store: Store | None = None

    @property
    def remote(self) -> bool:
        return self.store is not None and self.store.remote

    def stored(self, place: str) -> list[str]:
        """Every file under ``uploads`` or ``outbox``, relative to it (local or on S3)."""
        root: str = getattr(self.settings, place)
        if self.store is None or not self.store.remote:
            folder = Path(root)
            return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
        fs, key = self.store.fs()
        prefix = root.removeprefix(self.store.root).strip("/")
        base = f"{key.rstrip('/')}/{prefix}"
        fs.invalidate_cache()
        return sorted(p[len(base) + 1 :] for p in fs.find(base))

    def read(self, location: str) -> bytes:
        if self.store is None or not self.store.remote:
            return Path(location).read_bytes()
        return self.store.read(location)

    def writes(self) -> dict[str, int]:
        writes: dict[str, int] = self.sim.state.sim.counters_snapshot()["writes"]
        return {k: v for k, v in writes.items() if k != "token"}

    def app(self, **kwargs: Any) -> Starlette:
        return create_web_app(self.settings, **kwargs)


@contextlib.contextmanager
def make_site(root: Path, store: Store | None = None, **sim: Any) -> Iterator[Site]:
    """A site on a small simulator (``sim`` overrides its config, e.g. a rate limit);
    uploads and outbox in ``store`` when given (a folder or a bucket), else under ``root``."""
    app = create_app(small_config(**sim))
    with serve_in_thread(app) as url:
        settings = Settings(
            base_url=url,
            country="cl",
            client_id="sim-client",
            client_secret="sim-secret",  # type: ignore[arg-type]
            state_url=f"sqlite:///{root / 'state' / 'state.db'}",
            uploads=store.url("uploads") if store else str(root / "uploads"),
            outbox=store.url("outbox") if store else str(root / "outbox"),
            warehouse=str(root / "warehouse"),
            s3_endpoint_url=store.endpoint if store else None,
        )
        accounts = Accounts(settings.state_url)
        accounts.add("ana", PASSWORD, ["cl"])
        accounts.add("pedro", PASSWORD, ["pe"])
        yield Site(settings, app, root, accounts, store)
        accounts.close()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    with make_site(tmp_path) as made:
        yield made


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's standalone S3 server on loopback (``tests/s3server.py``), one per session."""
    with moto_server() as server:
        yield server


@pytest.fixture(params=["local", "s3"])
def stored_site(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Site]:
    """A site whose uploads and outbox are a local folder, or a bucket on the S3 server
    (reached through ``SODTRACK_S3_ENDPOINT_URL`` and the ``AWS_*`` variables)."""
    store = make_store(request.param, tmp_path, monkeypatch, request)
    with make_site(tmp_path, store) as made:
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
