"""Accounts, sessions, CSRF, throttling and the CLI that manages accounts (unit tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from sodtrack.cli import app
from sodtrack.errors import AccountError, SodtrackError
from sodtrack.web.accounts import Accounts
from sodtrack.web.security import SessionSigner, csrf_matches


@pytest.fixture
def accounts(tmp_path: Path) -> Accounts:
    return Accounts(f"sqlite:///{tmp_path / 'state.db'}")


def test_password_is_hashed_and_verified(accounts: Accounts) -> None:
    accounts.add("ana", "long enough pw", ["cl", "PE"])
    row = (
        accounts.engine.connect()
        .exec_driver_sql("select password_hash, countries from sodtrack_web_users")
        .one()
    )
    assert row[0].startswith("$argon2id$")
    assert "long enough pw" not in row[0]
    assert row[1] == "cl,pe"
    assert accounts.verify("ana", "long enough pw") is not None
    assert accounts.verify("ana", "wrong password") is None
    assert accounts.verify("nobody", "long enough pw") is None


def test_refusals_are_account_errors(accounts: Accounts) -> None:
    accounts.add("ana", "long enough pw", ["cl"])
    for call in (
        lambda: accounts.add("ana", "long enough pw", ["cl"]),  # exists
        lambda: accounts.add("Bad Name", "long enough pw", ["cl"]),
        lambda: accounts.add("bob", "short", ["cl"]),
        lambda: accounts.add("bob", "long enough pw", ["xx"]),
        lambda: accounts.add("bob", "long enough pw", []),
        lambda: accounts.disable("nobody"),
    ):
        with pytest.raises(AccountError):
            call()
    assert issubclass(AccountError, SodtrackError)


def test_disable_ends_sign_in_and_tokens(accounts: Accounts) -> None:
    accounts.add("ana", "long enough pw", ["cl"])
    token = accounts.new_token("ana")
    assert accounts.by_token(token) is not None
    assert accounts.by_token(token + "x") is None
    stored = accounts.engine.connect().exec_driver_sql("select * from sodtrack_web_tokens").all()
    assert token not in str(stored), "only the token's digest is kept"
    accounts.disable("ana")
    assert accounts.verify("ana", "long enough pw") is None
    assert accounts.by_token(token) is None
    account = accounts.get("ana")
    assert account is not None
    assert not account.may_load("cl")


def test_signing_key_is_made_once(accounts: Accounts, tmp_path: Path) -> None:
    again = Accounts(f"sqlite:///{tmp_path / 'state.db'}")
    assert accounts.signing_key() == again.signing_key()
    assert len(accounts.signing_key()) == 32


def test_session_cookie_is_signed_and_expires() -> None:
    now = [1000.0]
    signer = SessionSigner(b"k" * 32, max_age_s=60, clock=lambda: now[0])
    cookie, session = signer.issue("ana")
    assert signer.read(cookie) == session
    _payload, mac = cookie.split(".")
    forged = SessionSigner(b"x" * 32, max_age_s=60, clock=lambda: now[0]).issue("admin")[0]
    assert signer.read(forged) is None
    assert signer.read(forged.split(".")[0] + "." + mac) is None
    assert signer.read("garbage") is None
    assert csrf_matches(session, session.csrf)
    assert not csrf_matches(session, "other")
    assert not csrf_matches(session, None)
    now[0] += 61
    assert signer.read(cookie) is None


def test_users_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SODTRACK_STATE_URL", f"sqlite:///{tmp_path / 'state.db'}")
    monkeypatch.setenv("SODTRACK_ENV_FILE", "none")
    runner = CliRunner()
    added = runner.invoke(
        app,
        ["users", "add", "ana", "--country", "cl", "--country", "pe"],
        input="long enough pw\nlong enough pw\n",
    )
    assert added.exit_code == 0, added.output
    assert "long enough pw" not in added.output
    listed = runner.invoke(app, ["users", "list"])
    assert "ana\tcl,pe\tenabled" in listed.stdout
    token = runner.invoke(app, ["users", "token", "ana"]).stdout.strip()
    accounts = Accounts(f"sqlite:///{tmp_path / 'state.db'}")
    assert accounts.by_token(token.splitlines()[-1]) is not None
    assert runner.invoke(app, ["users", "disable", "ana"]).exit_code == 0
    assert "disabled" in runner.invoke(app, ["users", "list"]).stdout
    passwd = runner.invoke(
        app,
        ["users", "passwd", "ana", "--password-stdin", "--country", "cl"],
        input="another long pw\n",
    )
    assert passwd.exit_code == 0, passwd.output
    account = accounts.verify("ana", "another long pw")
    assert account is not None
    assert account.countries == ("cl",)
    refused = runner.invoke(
        app, ["users", "add", "x y", "-c", "cl", "--password-stdin"], input="p\n"
    )
    assert refused.exit_code == 2


def test_the_demo_ends_with_the_upload_page_and_an_account(tmp_path: Path) -> None:
    from rich.console import Console

    from sodtrack.demo import show_upload_page
    from sodtrack.settings import Settings

    settings = Settings(state_url=f"sqlite:///{tmp_path / 'state.db'}", country="cl")
    console = Console(record=True, width=300)
    password = show_upload_page(settings, tmp_path, console)
    text = console.export_text()
    assert "sodtrack-etl serve" in text
    assert "http://127.0.0.1:8080/" in text
    assert password in text
    account = Accounts(settings.state_url).verify("demo", password)
    assert account is not None
    assert account.countries == ("cl",)


def test_serve_runs_the_page_embedded_or_announcing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    from sodtrack.bulkload.inbox import PrefectEventsEmitter

    monkeypatch.setenv("SODTRACK_STATE_URL", f"sqlite:///{tmp_path / 'state.db'}")
    monkeypatch.setenv("SODTRACK_UPLOADS", str(tmp_path / "uploads"))
    monkeypatch.setenv("SODTRACK_OUTBOX", str(tmp_path / "outbox"))
    monkeypatch.setenv("SODTRACK_ENV_FILE", "none")
    ran: list[tuple[Any, dict[str, Any]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: ran.append((app, kw)))
    from tasks import watch as prefect_side  # where the CLI asks for the Prefect API

    monkeypatch.setattr(prefect_side, "prefect_api", lambda: (None, None, None))
    embedded = CliRunner().invoke(app, ["serve", "--port", "8123"])
    assert embedded.exit_code == 0, embedded.output
    assert "run by this process" in embedded.output
    web_app, options = ran[-1]
    assert options == {
        "host": "127.0.0.1",
        "port": 8123,
        "log_level": "info",
        "proxy_headers": True,  # believed from SODTRACK_WEB_FORWARDED_ALLOW_IPS (test_proxy.py)
        "forwarded_allow_ips": ["127.0.0.1", "::ffff:7f00:1", "::1"],
    }
    assert web_app.state.web.service.emit is None
    monkeypatch.setattr(
        prefect_side, "prefect_api", lambda: ("http://127.0.0.1:4200/api", None, None)
    )
    announcing = CliRunner().invoke(app, ["serve"])
    assert announcing.exit_code == 0, announcing.output
    assert "announced to Prefect" in announcing.output
    assert isinstance(ran[-1][0].state.web.service.emit, PrefectEventsEmitter)
    assert ran[-1][1]["port"] == 8080
