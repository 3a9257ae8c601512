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
from typing import Any, TypeVar

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


def http_ok(url: str) -> bool | None:
    """``True`` when ``url`` answers 200, else ``None``: a probe for :func:`wait_for`."""
    import httpx

    try:
        return True if httpx.get(url, timeout=2).status_code == 200 else None
    except httpx.HTTPError:
        return None


def prefect_env(base: Path, port: int) -> dict[str, str]:
    """The environment of a Prefect server on ``port`` (its home in ``base``) and of the
    processes that use its API (the CLI, workers, the watcher, the page)."""
    return clean_env() | {
        "PREFECT_HOME": str(base / "prefect-home"),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "INFO",
        "PWD": str(ROOT),
    }


def start_prefect_server(env: dict[str, str], logs: Path, procs: list[Proc]) -> Proc:
    """``prefect server start`` on the port of ``env``'s API URL (:func:`prefect_env`), added
    to ``procs`` (which the caller stops) before it is waited on: healthy, or the test fails
    quoting its log."""
    api_url = env["PREFECT_API_URL"]
    port = api_url.rsplit(":", 1)[1].split("/", 1)[0]
    server = Proc(
        "prefect-server",
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", port],
        env,
        logs,
    )
    procs.append(server)
    wait_for("the Prefect server", lambda: http_ok(f"{api_url}/health"), SERVER_START_S, server)
    return server


def create_work_pool(env: dict[str, str], pool: str = "sodtrack") -> None:
    """The process work pool the deployments of ``prefect.yaml`` name."""
    run_cli([str(BIN / "prefect"), "work-pool", "create", pool, "--type", "process"], env)


FINAL_STATES = frozenset({"COMPLETED", "FAILED", "CRASHED", "CANCELLED"})


def submit_run(client: Callable[[], Any], deployment_id: Any, parameters: dict[str, Any]) -> Any:
    """A flow run of the deployment ``deployment_id`` (``client``: a sync Prefect client's
    context manager factory); returns its id."""
    with client() as c:
        return c.create_flow_run_from_deployment(deployment_id, parameters=parameters).id


def final_run(client: Callable[[], Any], run_id: Any, timeout: float, *procs: Proc) -> Any:
    """The flow run ``run_id`` once in a final state (bounded by ``timeout``; a process of
    ``procs`` that exits fails the test with its log)."""

    def probe() -> Any:
        with client() as c:
            run = c.read_flow_run(run_id)
        return run if run.state_type and run.state_type.value in FINAL_STATES else None

    return wait_for(f"flow run {run_id}", probe, timeout, *procs)
