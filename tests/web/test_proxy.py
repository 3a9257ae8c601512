"""The sign-in throttle behind a reverse proxy, on a real uvicorn server over real HTTP.

The throttle counts failed sign-ins per client address; behind a proxy, that address is the
one the proxy forwards (``X-Forwarded-For``), believed only from the proxies
``SODTRACK_WEB_FORWARDED_ALLOW_IPS`` names (:func:`sodtrack.web.app.proxy_options`, what
``sodtrack-etl serve`` passes to uvicorn). Here:

* a trusted proxy (loopback, the default): each forwarded client has its own count (one
  client's failures lock nobody else out), the per-name limit still holds across clients, and
  what a client writes into the header itself (left of what the proxy appends) changes
  nothing;
* an untrusted connection: a seeded corpus of spoofed headers (many addresses, IPv6,
  garbage, several hops, ``Forwarded``/``X-Real-IP``) buys no new guesses;
* ``*`` believes anyone's header (why the docs say never when the page is reachable
  directly);
* ``serve`` itself passes the setting, never uvicorn's own ``FORWARDED_ALLOW_IPS``;
* the setting's validation at the edge (a generated corpus of good and bad values).

Virtual time (the app's clock) throughout; the servers listen on loopback only.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.types import ASGIApp
from typer.testing import CliRunner

from sodtrack.errors import InvalidSetting
from sodtrack.settings import LOOPBACK_PROXIES, Settings, resolve_settings
from sodtrack.web.app import create_web_app, proxy_options

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
VARIABLE = "SODTRACK_WEB_FORWARDED_ALLOW_IPS"


def make_settings(root: Path, **overrides: Any) -> Settings:
    """Settings on a state database under ``root`` holding ``ana`` and ``bea``."""
    return throttle_settings(f"sqlite:///{root / 'state.db'}", root, **overrides)


@contextlib.contextmanager
def served(
    app: ASGIApp, options: Mapping[str, Any], *, mapped: bool = False
) -> Iterator[httpx.Client]:
    """``app`` under a real uvicorn server (``options``: its proxy settings) on a free
    loopback port, and an HTTP client to it. ``mapped``: the server listens on an IPv6
    socket (dual stack, bound to ``::ffff:127.0.0.1``), so it sees its IPv4 clients as
    ``::ffff:127.0.0.1``, as a server listening on ``::`` does."""
    if mapped:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(("::ffff:127.0.0.1", 0))
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", **options)
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="sodtrack-page", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:  # start-up, not the behaviour under test
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the upload page did not start")
        time.sleep(0.01)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@contextlib.contextmanager
def page(settings: Settings, clock: Clock, *, mapped: bool = False) -> Iterator[httpx.Client]:
    with served(create_web_app(settings, clock=clock), proxy_options(settings), mapped=mapped) as c:
        yield c


def attempt(
    client: httpx.Client,
    name: str,
    password: str,
    forwarded: str | None = None,
    headers: list[tuple[str, str]] | None = None,
) -> int:
    """One sign-in through the form; ``forwarded``: the ``X-Forwarded-For`` it carries."""
    sent = list(headers or [])
    if forwarded is not None:
        sent.append(("x-forwarded-for", forwarded))
    token = csrf_of(client.get("/login", headers=sent).text)
    answer = client.post(
        "/login",
        data={"name": name, "password": password, "csrf": token},
        headers=sent,
        follow_redirects=False,
    )
    client.cookies.clear()  # each attempt a stranger (no session carried over)
    status: int = answer.status_code
    return status


class Names:
    """Made-up account names, a new one each time: attempts that only the address counts."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> str:
        self.n += 1
        return f"nobody{self.n}"


# ---------------------------------------------------------------- a trusted proxy


def test_behind_a_trusted_proxy_each_client_has_its_own_count(tmp_path: Path) -> None:
    """Loopback is trusted (the default): the proxy on this machine forwards its clients'
    addresses, and the throttle counts each of them, not the proxy."""
    settings = make_settings(tmp_path)
    assert settings.web_forwarded_allow_ips == list(LOOPBACK_PROXIES)
    fresh = Names()
    with page(settings, Clock()) as client:
        # One client uses up its failures (made-up names: only its address counts)...
        for _ in range(LIMIT):
            assert attempt(client, fresh(), "guess", forwarded="198.51.100.1") == 401
        assert attempt(client, "ana", PASSWORD, forwarded="198.51.100.1") == 429
        assert attempt(client, "ana", PASSWORD, forwarded="198.51.100.1:4711") == 429, "a port"
        # ...and locks out nobody else behind the same proxy, nor the proxy itself.
        assert attempt(client, fresh(), "guess", forwarded="198.51.100.2") == 401
        assert attempt(client, "ana", PASSWORD, forwarded="198.51.100.3") == 303
        assert attempt(client, "bea", PASSWORD) == 303

        # The proxy appends the address it saw to what the client sent: whatever the client
        # wrote (left of it) is not believed, so it buys no new guesses.
        rng = random.Random(20261203)
        for spoof in _spoofs(rng, 12):
            assert attempt(client, fresh(), "g", forwarded=f"{spoof}, 198.51.100.1") == 429, spoof

        # Clients of one IPv6 /64 are one client, forwarded as they are seen directly.
        for host in ("2001:db8:0:1::a", "[2001:db8:0:1::b]:443", "2001:db8:0:1::c"):
            assert attempt(client, fresh(), "guess", forwarded=host) == 401
        assert attempt(client, "bea", PASSWORD, forwarded="2001:db8:0:1::d") == 429
        assert attempt(client, "bea", PASSWORD, forwarded="2001:db8:0:2::d") == 303


def test_behind_a_trusted_proxy_the_name_limit_holds_across_clients(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    clock = Clock()
    with page(settings, clock) as client:
        for i in range(LIMIT):
            assert attempt(client, "ana", f"wrong {i}", forwarded=f"192.0.2.{10 + i}") == 401
        # A client that never failed cannot sign in as ana now; bea is not affected.
        assert attempt(client, "ana", PASSWORD, forwarded="192.0.2.99") == 429
        assert attempt(client, "bea", PASSWORD, forwarded="192.0.2.99") == 303
        clock.now += WINDOW_S + 1
        assert attempt(client, "ana", PASSWORD, forwarded="192.0.2.99") == 303, "window moved on"


def test_an_ipv4_proxy_is_trusted_on_a_dual_stack_socket(tmp_path: Path) -> None:
    """A server listening on ``::`` sees an IPv4 proxy as ``::ffff:a.b.c.d``; the setting
    names it as ``a.b.c.d`` and is believed all the same (``proxy_options`` adds the twin)."""
    settings = make_settings(tmp_path, web_forwarded_allow_ips="127.0.0.1")
    fresh = Names()
    with page(settings, Clock(), mapped=True) as client:
        for _ in range(LIMIT):
            assert attempt(client, fresh(), "guess", forwarded="198.51.100.1") == 401
        assert attempt(client, "ana", PASSWORD, forwarded="198.51.100.1") == 429
        assert attempt(client, "ana", PASSWORD, forwarded="198.51.100.2") == 303


# ---------------------------------------------------------------- an untrusted connection


def _spoofs(rng: random.Random, count: int) -> list[str]:
    """Seeded ``X-Forwarded-For`` values an attacker might send: IPv4, IPv6 (with and without
    brackets and ports), IPv4-mapped, loopback, garbage, empty hops, several hops."""

    def v4() -> str:
        return str(ipaddress.IPv4Address(rng.getrandbits(32)))

    def v6() -> str:
        return str(ipaddress.IPv6Address(rng.getrandbits(128)))

    makers: list[Callable[[], str]] = [
        v4,
        v6,
        lambda: f"{v4()}:{rng.randint(1, 65535)}",
        lambda: f"[{v6()}]:{rng.randint(1, 65535)}",
        lambda: f"::ffff:{v4()}",
        lambda: rng.choice(["127.0.0.1", "::1", "localhost", "unknown", "_hidden", ""]),
        lambda: "".join(rng.choice("abcxyz0123456789.:;[]/ -_") for _ in range(rng.randint(1, 40))),
        lambda: ", ".join(rng.choice([v4, v6])() for _ in range(rng.randint(2, 6))),
        lambda: f"{v4()},,{v6()} , 127.0.0.1",
    ]
    return [rng.choice(makers)() for _ in range(count)]


def _spoofed_headers(rng: random.Random) -> list[tuple[str, str]]:
    """One request's spoofing headers: one or several ``X-Forwarded-For`` lines, and at times
    ``Forwarded``, ``X-Real-IP`` and ``X-Forwarded-Proto``."""
    headers = [("x-forwarded-for", s) for s in _spoofs(rng, rng.randint(1, 3))]
    if rng.random() < 0.3:
        headers.append(("forwarded", f'for="[{ipaddress.IPv6Address(rng.getrandbits(128))}]"'))
    if rng.random() < 0.3:
        headers.append(("x-real-ip", str(ipaddress.IPv4Address(rng.getrandbits(32)))))
    if rng.random() < 0.2:
        headers.append(("x-forwarded-proto", "https"))
    return headers


@pytest.mark.parametrize("allowed", ["192.0.2.10", "10.0.0.0/8,fd00::/8"])
def test_an_untrusted_clients_forwarded_header_buys_no_guesses(
    tmp_path: Path, allowed: str
) -> None:
    """The connection (from 127.0.0.1) is not a trusted proxy: every spoofed header is
    ignored, the attempts all count against 127.0.0.1, and the limit is the limit."""
    settings = make_settings(tmp_path, web_forwarded_allow_ips=allowed)
    rng = random.Random(f"spoof-{allowed}")
    clock = Clock()
    fresh = Names()
    with page(settings, clock) as client:
        statuses = [
            attempt(client, fresh(), "guess", headers=_spoofed_headers(rng)) for _ in range(40)
        ]
        assert statuses == [401] * LIMIT + [429] * (40 - LIMIT)
        assert attempt(client, "ana", PASSWORD, headers=_spoofed_headers(rng)) == 429
        clock.now += WINDOW_S + 1
        assert attempt(client, "ana", PASSWORD, headers=_spoofed_headers(rng)) == 303


def test_a_star_believes_anyones_header(tmp_path: Path) -> None:
    """``*``: any client names its own address, so each spoofed address brings ``LIMIT`` new
    guesses (only the per-name limit remains). Never when the page is reachable directly."""
    settings = make_settings(tmp_path, web_forwarded_allow_ips="*")
    assert proxy_options(settings)["forwarded_allow_ips"] == "*"
    fresh = Names()
    with page(settings, Clock()) as client:
        for i in range(3):
            statuses = [
                attempt(client, fresh(), "guess", forwarded=f"203.0.113.{i}") for _ in range(LIMIT)
            ]
            assert statuses == [401] * LIMIT


# ---------------------------------------------------------------- `serve` passes the setting


def _clean_environment(monkeypatch: pytest.MonkeyPatch, cwd: Path) -> None:
    for name in list(os.environ):
        if name.upper().startswith(("SODTRACK_", "PREFECT_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SODTRACK_ENV_FILE", "none")
    monkeypatch.chdir(cwd)


def test_serve_hands_the_setting_to_uvicorn_not_uvicorns_own_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``sodtrack-etl serve`` as run from the command line, up to ``uvicorn.run``: what it
    hands over, served by a real uvicorn, ignores spoofed headers although uvicorn's own
    ``FORWARDED_ALLOW_IPS=*`` is in the environment (read by uvicorn when not told)."""
    from sodtrack.cli import app as cli

    settings = make_settings(tmp_path)
    _clean_environment(monkeypatch, tmp_path)
    for var, value in {
        "SODTRACK_STATE_URL": settings.state_url,
        "SODTRACK_UPLOADS": settings.uploads,
        "SODTRACK_OUTBOX": settings.outbox,
        "SODTRACK_BASE_URL": settings.base_url or "",
        "SODTRACK_WEB_LOGIN_MAX_FAILURES": str(LIMIT),
        "SODTRACK_WEB_LOGIN_WINDOW_S": str(WINDOW_S),
        VARIABLE: "192.0.2.10",
        "FORWARDED_ALLOW_IPS": "*",
    }.items():
        monkeypatch.setenv(var, value)
    handed: list[tuple[ASGIApp, dict[str, Any]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: handed.append((app, kw)))

    result = CliRunner().invoke(cli, ["serve", "--embedded", "--port", "8999"])
    assert result.exit_code == 0, result.output
    assert "X-Forwarded-For believed from: 192.0.2.10" in result.output
    [(app, options)] = handed
    server_options = {k: v for k, v in options.items() if k not in ("host", "port", "log_level")}
    rng = random.Random(7)
    fresh = Names()
    with served(app, server_options) as client:
        statuses = [
            attempt(client, fresh(), "guess", headers=_spoofed_headers(rng)) for _ in range(10)
        ]
    assert statuses == [401] * LIMIT + [429] * (10 - LIMIT)
    assert options["forwarded_allow_ips"] == ["192.0.2.10", "::ffff:c000:20a"]
    assert options["proxy_headers"] is True


def test_serve_refuses_a_bad_value_naming_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sodtrack.cli import app as cli

    _clean_environment(monkeypatch, tmp_path)
    monkeypatch.setenv(VARIABLE, "10.0.0.5,proxy.internal")
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: pytest.fail("served anyway"))
    result = CliRunner().invoke(cli, ["serve", "--embedded"])
    assert result.exit_code == 2, result.output
    assert f"{VARIABLE}: 'proxy.internal' is not an IP address or network" in result.output


# ---------------------------------------------------------------- the setting at the edge


def _good_entries(rng: random.Random) -> list[tuple[str, str]]:
    """``(as written, canonical)`` pairs: addresses and networks, IPv4 and IPv6."""
    out: list[tuple[str, str]] = []
    for _ in range(30):
        if rng.random() < 0.5:
            v4 = ipaddress.IPv4Address(rng.getrandbits(32))
            out.append((str(v4), str(v4)))
            net4 = ipaddress.IPv4Network((int(v4), rng.randint(0, 32)), strict=False)
            out.append((str(net4), str(net4)))
        else:
            v6 = ipaddress.IPv6Address(rng.getrandbits(128))
            written = v6.exploded.upper() if rng.random() < 0.5 else str(v6)
            out.append((written, str(v6)))
            net6 = ipaddress.IPv6Network((int(v6), rng.randint(0, 128)), strict=False)
            out.append((net6.exploded, str(net6)))
    return out


_BAD_ENTRIES = [
    "proxy.internal",
    "localhost",
    "256.1.1.1",
    "10.0.0",
    "10.0.0.0/33",
    "fd00::/129",
    "10.0.0.1/8",  # host bits: uvicorn would keep it as a literal, trusting nobody
    "fd00::1/8",
    "10.0.0.5:8080",
    "[::1]",
    "10.0.0.*",
    "10.0.0.1-10.0.0.9",
    "10.0.0.0/",
    "/8",
    "**",
    "1.2.3.4/255.0.0.0.0",
]


@pytest.fixture
def edge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    _clean_environment(monkeypatch, tmp_path)
    return monkeypatch


def test_good_values_are_read_canonically(edge: pytest.MonkeyPatch) -> None:
    rng = random.Random(20261203)
    entries = _good_entries(rng)
    for _ in range(40):
        chosen = rng.sample(entries, rng.randint(1, 5))
        glue = rng.choice([",", ", ", " ,", ",\t", ",,"])
        edge.setenv(VARIABLE, glue.join(written for written, _ in chosen) + rng.choice(["", ","]))
        settings, origin = resolve_settings()
        assert settings.web_forwarded_allow_ips == [canonical for _, canonical in chosen]
        assert origin.source("web_forwarded_allow_ips") == f"environment variable {VARIABLE}"
        proxy_options(settings)  # every entry is one uvicorn reads as an address or network
    for star in ("*", " * ", "*,"):
        edge.setenv(VARIABLE, star)
        assert resolve_settings()[0].web_forwarded_allow_ips == ["*"]
    edge.setenv(VARIABLE, "")  # empty: unset, the default
    assert resolve_settings()[0].web_forwarded_allow_ips == list(LOOPBACK_PROXIES)


def test_bad_values_are_one_line_naming_the_variable(edge: pytest.MonkeyPatch) -> None:
    rng = random.Random(20261204)
    good = [written for written, _ in _good_entries(rng)]
    for bad in _BAD_ENTRIES:
        entries = rng.sample(good, rng.randint(0, 3))
        entries.insert(rng.randint(0, len(entries)), bad)
        edge.setenv(VARIABLE, ",".join(entries))
        with pytest.raises(InvalidSetting) as caught:
            resolve_settings()
        assert caught.value.setting == VARIABLE
        assert str(caught.value).startswith(f"{VARIABLE}: {bad!r} ")
        assert "\n" not in caught.value.line
    for mixed in ("*,10.0.0.5", "10.0.0.5, *"):
        edge.setenv(VARIABLE, mixed)
        with pytest.raises(InvalidSetting, match="must stand alone") as caught:
            resolve_settings()
        assert caught.value.setting == VARIABLE
    for nothing in (",", " , ,", " "):
        edge.setenv(VARIABLE, nothing)
        with pytest.raises(InvalidSetting, match="names no proxy") as caught:
            resolve_settings()
        assert caught.value.setting == VARIABLE
