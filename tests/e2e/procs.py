"""Processes of the end-to-end tests: a subprocess per service, waited on with a bounded probe.

Shared by every module of ``tests/e2e`` (a Prefect server, its workers, the simulator, the
inbox watcher, the upload page): each runs in its own process group, logs to a file the
failure message quotes, and is stopped group-wide.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SERVER_START_S = 240.0

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Proc:
    """A subprocess in its own process group, logging to a file; stopped group-wide."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], logs: Path) -> None:
        self.name = name
        self.log_path = logs / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.popen = subprocess.Popen(
            args,
            cwd=env.get("PWD", str(ROOT)),
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return f"--- {self.name} (last {lines} lines)\n" + "\n".join(text[-lines:])

    def stop(self) -> None:
        """SIGINT twice (a Prefect worker wants two), then SIGTERM, then SIGKILL."""
        for sig, wait in (
            (signal.SIGINT, 8),
            (signal.SIGINT, 8),
            (signal.SIGTERM, 5),
            (signal.SIGKILL, 5),
        ):
            if self.popen.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(wait)
        with contextlib.suppress(ProcessLookupError):  # children left in the group
            os.killpg(self.popen.pid, signal.SIGKILL)
        self._log.close()


def clean_env() -> dict[str, str]:
    """The test's environment without any SODTRACK_*/PREFECT_* of the developer's shell."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("SODTRACK_", "PREFECT_", "PYTEST"))
    }
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("COV_CORE_SOURCE", None)
    return env


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, *procs: Proc) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value is not None:
            return value
        for p in procs:
            if not p.alive():
                pytest.fail(f"{p.name} exited while waiting for {what}\n{p.tail()}")
        time.sleep(1.0)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}\n" + "\n".join(
        p.tail() for p in procs
    ))  # fmt: skip


def run_cli(args: list[str], env: dict[str, str], timeout: float = 300) -> str:
    done = subprocess.run(
        args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        pytest.fail(f"{' '.join(args)} failed ({done.returncode})\n{done.stdout}\n{done.stderr}")
    return done.stdout
