"""``sodtrack-etl watch``: needs a Prefect API; ``--once`` takes what is complete and exits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import sodtrack.bulkload.inbox
import tasks.watch
from sodtrack import cli
from sodtrack.bulkload.inbox import EVENT_NAME
from sodtrack.cli import app


@pytest.fixture
def dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("inbox", "uploads", "outbox"):
        monkeypatch.setenv(f"SODTRACK_{name.upper()}", str(tmp_path / name))
    monkeypatch.setenv("SODTRACK_STATE_URL", f"sqlite:///{tmp_path / 'state.db'}")
    return tmp_path


def test_without_a_prefect_api_it_says_so(dirs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tasks.watch, "prefect_api", lambda: (None, None, None))
    result = CliRunner().invoke(app, ["watch", "--once"])
    assert result.exit_code == cli.EXIT_NO_API
    assert "PREFECT_API_URL" in result.output


def test_once(dirs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[tuple[str, dict[str, Any]]] = []

    class FakeEmitter:
        def __init__(self, url: str, **kwargs: Any) -> None:
            self.url = url

        def __call__(self, event: dict[str, Any]) -> None:
            sent.append((self.url, event))

        def close(self) -> None:
            pass

    monkeypatch.setattr(tasks.watch, "prefect_api", lambda: ("http://p/api", None, None))
    monkeypatch.setattr(sodtrack.bulkload.inbox, "PrefectEventsEmitter", FakeEmitter)
    (dirs / "inbox" / "pe").mkdir(parents=True)
    (dirs / "inbox" / "pe" / "a.csv").write_bytes(b"external_reference\nX-1\n")
    result = CliRunner().invoke(app, ["watch", "--once", "--settle", "0.2"])
    assert result.exit_code == 0, result.output
    [(url, event)] = sent
    assert url == "http://p/api"
    assert event["event"] == EVENT_NAME
    assert event["payload"]["upload_id"] in result.output
    assert (dirs / "uploads" / event["payload"]["upload_id"] / "a.csv").exists()


def test_the_max_wait_option_defaults_to_the_library_default() -> None:
    import inspect

    default = inspect.signature(cli.watch).parameters["max_wait"].default
    assert default == sodtrack.bulkload.inbox.DEFAULT_MAX_WAIT_S


def test_once_leaves_a_file_that_does_not_look_whole(
    dirs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[dict[str, Any]] = []

    class FakeEmitter:
        def __init__(self, url: str, **kwargs: Any) -> None:
            pass

        def __call__(self, event: dict[str, Any]) -> None:
            sent.append(event)

        def close(self) -> None:
            pass

    monkeypatch.setattr(tasks.watch, "prefect_api", lambda: ("http://p/api", None, None))
    monkeypatch.setattr(sodtrack.bulkload.inbox, "PrefectEventsEmitter", FakeEmitter)
    (dirs / "inbox" / "pe").mkdir(parents=True)
    cut = dirs / "inbox" / "pe" / "cut.xlsx"
    cut.write_bytes(b"PK\x03\x04 half a zip")
    result = CliRunner().invoke(app, ["watch", "--once", "--settle", "0.2"])
    assert result.exit_code == 0, result.output
    assert sent == []
    assert cut.exists()
    result = CliRunner().invoke(app, ["watch", "--once", "--settle", "0.2", "--max-wait", "0"])
    assert result.exit_code == 0, result.output
    [event] = sent
    assert event["payload"]["file_name"] == "cut.xlsx"
    assert not cut.exists()


def test_once_prints_a_hostile_file_name_on_one_escaped_line(
    dirs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class NoPrefect:
        def __init__(self, url: str, **kwargs: Any) -> None:
            pass

        def __call__(self, event: dict[str, Any]) -> None:
            pass

        def close(self) -> None:
            pass

    monkeypatch.setattr(tasks.watch, "prefect_api", lambda: ("http://p/api", None, None))
    monkeypatch.setattr(sodtrack.bulkload.inbox, "PrefectEventsEmitter", NoPrefect)
    (dirs / "inbox" / "cl").mkdir(parents=True)
    name = "b\nupl_cl_forged\tcl\tx\x1b[31m.csv"
    (dirs / "inbox" / "cl" / name).write_bytes(b"external_reference\nX-1\n")
    result = CliRunner().invoke(app, ["watch", "--once", "--settle", "0.2"])
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.stdout
    [line] = [ln for ln in result.stdout.splitlines() if ln.startswith("upl_")]
    assert line.endswith("\tb<U+000A>upl_cl_forged<U+0009>cl<U+0009>x<U+001B>[31m.csv")
