"""Failed sign-ins are throttled across processes: the counters live in the state database, so
two application instances on one database (or one restarted) share them, and a tired attacker
(many names, many addresses, case and space variants of a name, attempts at the same moment)
gets no more guesses than the limit. Virtual time throughout (one clock both instances read)."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from orchestration.pg import drop_database, fresh_postgres_database, require_postgres
from starlette.testclient import TestClient

from sodtrack.settings import Settings
from sodtrack.web.accounts import Accounts
from sodtrack.web.app import create_web_app
from sodtrack.web.throttle import LoginThrottle, address_key

from .conftest import (
    PASSWORD,
    THROTTLE_LIMIT,
    THROTTLE_WINDOW_S,
    csrf_of,
    throttle_settings,
)
from .conftest import VirtualClock as Clock

LIMIT = THROTTLE_LIMIT
WINDOW_S = THROTTLE_WINDOW_S


@pytest.fixture(params=["sqlite", "postgres"])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.db'}"
        return
    url, admin = fresh_postgres_database(require_postgres())
    try:
        yield url
    finally:
        from sodtrack.db import engine_for

        engine_for(url).dispose()
        drop_database(admin, url)


@pytest.fixture
def settings(state_url: str, tmp_path: Path) -> Settings:
    return throttle_settings(state_url, tmp_path)


def attempt(client: TestClient, name: str, password: str) -> int:
    token = csrf_of(client.get("/login").text)
    answer = client.post(
        "/login",
        data={"name": name, "password": password, "csrf": token},
        follow_redirects=False,
    )
    status: int = answer.status_code
    return status


def test_two_instances_and_a_restart_share_the_count(settings: Settings) -> None:
    clock = Clock()
    one = TestClient(create_web_app(settings, clock=clock), client=("10.0.0.1", 1))
    two = TestClient(create_web_app(settings, clock=clock), client=("10.0.0.2", 1))
    with one, two:
        assert attempt(one, "ana", "wrong password 1") == 401
        assert attempt(two, "ana", "wrong password 2") == 401
        assert attempt(one, "ana", "wrong password 3") == 401
        # The limit is the deployment's, not each process's: the right password waits.
        assert attempt(two, "ana", PASSWORD) == 429
        assert attempt(one, "ana", PASSWORD) == 429
    with TestClient(create_web_app(settings, clock=clock), client=("10.0.0.3", 1)) as again:
        assert attempt(again, "ana", PASSWORD) == 429, "a restart forgets nothing"
        clock.now += WINDOW_S + 1
        assert attempt(again, "ana", PASSWORD) == 303, "the window moved on"


def test_a_success_clears_the_names_count(settings: Settings) -> None:
    clock = Clock()
    with TestClient(create_web_app(settings, clock=clock), client=("10.0.0.1", 1)) as client:
        for _ in range(LIMIT - 1):
            assert attempt(client, "ana", "wrong password") == 401
        assert attempt(client, "ana", PASSWORD) == 303
    with TestClient(create_web_app(settings, clock=clock), client=("10.0.0.9", 1)) as client:
        for _ in range(LIMIT):
            assert attempt(client, "ana", "wrong password") == 401
        assert attempt(client, "ana", PASSWORD) == 429


def _variants(name: str, rng: random.Random) -> list[str]:
    """Ways to write ``name`` the sign-in form reads as ``name``."""
    out = [name.upper(), f" {name}", f"{name} ", f"\t{name}\n", name.capitalize()]
    for _ in range(10):
        mixed = "".join(c.upper() if rng.random() < 0.5 else c for c in name)
        out.append(" " * rng.randint(0, 3) + mixed + " " * rng.randint(0, 3))
    return out


def test_a_tired_attacker_gets_no_more_guesses_than_the_limit(settings: Settings) -> None:
    """Generated (seeded) corpus against two instances sharing one database: the guesses that
    reach the password check are counted, for the name and for the address."""
    rng = random.Random(20261203)
    clock = Clock()
    app_one = create_web_app(settings, clock=clock)
    app_two = create_web_app(settings, clock=clock)
    with TestClient(app_one), TestClient(app_two):
        apps = [app_one, app_two]

        def from_address(address: str) -> TestClient:
            return TestClient(rng.choice(apps), client=(address, rng.randint(1, 65535)))

        # 1. Many addresses against one name, written every way the form accepts.
        checked = 0
        for i, variant in enumerate(_variants("ana", rng)):
            status = attempt(from_address(f"198.51.100.{i + 1}"), variant, f"guess {i}")
            assert status in (401, 429), variant
            checked += status == 401
        assert checked == LIMIT, "each variant of the name counts against the name"
        assert attempt(from_address("198.51.100.200"), "ana", PASSWORD) == 429

        # 2. Many names (real and made up) from one address.
        names = ["bea", *(f"user{rng.randint(0, 10**6)}" for _ in range(20))]
        statuses = [attempt(from_address("203.0.113.7"), n, "guess") for n in names]
        assert statuses.count(401) == LIMIT, statuses
        assert attempt(from_address("203.0.113.7"), "bea", PASSWORD) == 429
        assert attempt(from_address("203.0.113.8"), "bea", PASSWORD) == 303, "others still can"

        # 3. An IPv6 attacker hopping through the addresses of one /64, and an IPv4 address
        # written as IPv4-mapped IPv6: one client each.
        hops = [f"2001:db8:0:1::{rng.randint(1, 0xFFFF):x}" for _ in range(10)]
        statuses = [attempt(from_address(a), f"nobody{i}", "guess") for i, a in enumerate(hops)]
        assert statuses.count(401) == LIMIT, statuses
        mapped = ["192.0.2.50", "::ffff:192.0.2.50", "::ffff:c000:232"]
        statuses = [attempt(from_address(a), f"ghost{i}", "g") for i, a in enumerate(mapped * 2)]
        assert statuses.count(401) == LIMIT, statuses


def test_attempts_at_the_same_moment_get_no_extra_guesses(settings: Settings) -> None:
    """Twelve guesses for one name sent at once through two instances: the count is taken
    before the (slow) password check, so no more than the limit are checked."""
    clock = Clock()
    apps = [create_web_app(settings, clock=clock) for _ in range(2)]
    with TestClient(apps[0]), TestClient(apps[1]):
        clients = [TestClient(apps[i % 2], client=(f"192.0.2.{i}", 1)) for i in range(12)]
        tokens = [csrf_of(c.get("/login").text) for c in clients]
        barrier = threading.Barrier(len(clients))
        statuses: list[int] = []

        def go(i: int) -> None:
            barrier.wait()
            answer = clients[i].post(
                "/login",
                data={"name": "ana", "password": f"guess {i}", "csrf": tokens[i]},
                follow_redirects=False,
            )
            statuses.append(answer.status_code)

        threads = [threading.Thread(target=go, args=(i,)) for i in range(len(clients))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(statuses).count(401) == LIMIT, statuses
    assert statuses.count(429) == len(clients) - LIMIT


@pytest.mark.parametrize("seed", range(3))
def test_simultaneous_reservations_on_one_database_never_exceed_the_limit(
    settings: Settings, seed: int
) -> None:
    """The throttle alone, without HTTP: rounds of 16 threads, each its own engine (as separate
    processes are), reserve one name at one moment from random addresses; in every round
    exactly ``LIMIT`` are let through. (Recording, then counting in a second transaction let
    PostgreSQL transactions count before the others' rows were committed.)"""
    from sodtrack.db import make_engine

    rng = random.Random(seed)
    clock = Clock()
    engines = [make_engine(settings.state_url) for _ in range(16)]
    throttles = [
        LoginThrottle(e, max_failures=LIMIT, window_s=WINDOW_S, clock=clock) for e in engines
    ]
    try:
        for round_ in range(6):
            clock.now += WINDOW_S + 1  # a fresh window for every round
            name = f"ana{round_}"
            barrier = threading.Barrier(len(throttles))
            waits: list[float] = []

            def go(
                i: int,
                name: str = name,
                barrier: threading.Barrier = barrier,
                waits: list[float] = waits,
            ) -> None:
                address = f"203.0.113.{rng.randrange(256)}" if i % 2 else f"2001:db8::{i:x}"
                barrier.wait()
                waits.append(throttles[i].reserve(name, address)[0])

            threads = [threading.Thread(target=go, args=(i,)) for i in range(len(throttles))]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert len(waits) == len(throttles)
            assert waits.count(0.0) == LIMIT, (round_, waits)
            assert all(w > 0 for w in waits if w != 0.0)
    finally:
        for e in engines:
            e.dispose()


def test_address_keys() -> None:
    assert address_key("10.0.0.1") == address_key("::ffff:10.0.0.1")
    assert address_key("2001:db8::1") == address_key("2001:db8::ffff:1")
    assert address_key("2001:db8::1") != address_key("2001:db8:0:1::1")
    assert address_key("10.0.0.1") != address_key("10.0.0.2")
    assert address_key("testclient") == "testclient"


def test_nothing_readable_is_kept(settings: Settings) -> None:
    """The table holds digests, not names or addresses (a leaked database tells nothing)."""
    clock = Clock()
    throttle = LoginThrottle(
        Accounts(settings.state_url).engine, max_failures=LIMIT, window_s=WINDOW_S, clock=clock
    )
    wait, _ = throttle.reserve("secret-name@example.org", "198.51.100.77")
    assert wait == 0
    import sqlalchemy as sa

    with throttle.engine.connect() as conn:
        keys = list(conn.execute(sa.text("SELECT key FROM sodtrack_web_login_failures")).scalars())
    assert len(keys) == 2
    assert not any("secret" in k or "198.51" in k for k in keys)


def test_counts_per_name_and_per_address(settings: Settings) -> None:
    clock = Clock()
    throttle = LoginThrottle(
        Accounts(settings.state_url).engine, max_failures=LIMIT, window_s=WINDOW_S, clock=clock
    )
    for _ in range(LIMIT):
        assert throttle.reserve("ana", "10.0.0.1")[0] == 0  # each a failure (never cleared)
    assert throttle.reserve("ana", "10.0.0.2")[0] > 0  # the name, from anywhere
    assert throttle.reserve("bob", "10.0.0.1")[0] > 0  # the address, for any name
    wait, ticket = throttle.reserve("bob", "10.0.0.2")
    assert wait == 0
    throttle.succeeded("bob", ticket)
    clock.now += 100
    wait, _ = throttle.reserve("ana", "10.0.0.3")
    assert wait == pytest.approx(WINDOW_S - 100), "until the oldest failure leaves the window"
    clock.now += WINDOW_S - 100 + 0.5
    assert throttle.reserve("ana", "10.0.0.1")[0] == 0
