"""The systemd units in ``deploy/systemd/`` start commands this environment has, with the
signals those commands stop on, and keep no secret."""

from __future__ import annotations

import configparser
import shlex
import signal
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "deploy" / "systemd"
BIN = Path(sys.executable).parent


def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=True, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((UNITS / name).read_text())
    return parser


@pytest.mark.parametrize(
    ("name", "command", "stop"),
    [
        ("sodtrack-worker.service", ["prefect", "worker", "start", "--pool", "sodtrack"], "SIGINT"),
        ("sodtrack-watcher.service", ["sodtrack-etl", "watch"], "SIGTERM"),
    ],
)
def test_a_unit(name: str, command: list[str], stop: str) -> None:
    unit = _unit(name)
    service = unit["Service"]
    argv = shlex.split(service["ExecStart"])
    assert Path(argv[0]).name == command[0]
    assert argv[1:] == command[1:]
    assert (BIN / command[0]).exists(), f"{command[0]} is not installed by uv sync"
    assert service["KillSignal"] == stop
    assert service["WorkingDirectory"] == str(Path(argv[0]).parents[2])
    assert service["UMask"] == "0077"
    assert service["Restart"] == "always"
    for key, value in service.items():
        assert "#" not in value, f"{key}: systemd has no end-of-line comments"
    text = (UNITS / name).read_text().lower()
    assert "client_secret=" not in text
    assert unit["Install"]["WantedBy"] == "multi-user.target"


@pytest.mark.slow
def test_the_watcher_stops_on_the_units_kill_signal(tmp_path: Path) -> None:
    """``sodtrack-etl watch`` started as the unit starts it ends cleanly (exit 0) on the
    unit's ``KillSignal``, once it is watching."""
    import os
    import subprocess

    stop = signal.Signals[_unit("sodtrack-watcher.service")["Service"]["KillSignal"]]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SODTRACK_", "PREFECT_"))}
    env |= {
        "SODTRACK_ENV_FILE": "none",
        "PREFECT_API_URL": "http://127.0.0.1:9/api",  # never called: no file is dropped
        "SODTRACK_INBOX": str(tmp_path / "inbox"),
        "SODTRACK_UPLOADS": str(tmp_path / "uploads"),
        "SODTRACK_OUTBOX": str(tmp_path / "outbox"),
        "SODTRACK_STATE_URL": f"sqlite:///{tmp_path / 'state.db'}",
    }
    proc = subprocess.Popen(
        [str(BIN / "sodtrack-etl"), "watch", "--interval", "0.2"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        for line in proc.stderr:  # blocks until the watcher says it is watching
            if "watching" in line:
                break
        proc.send_signal(stop)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
