"""Alerts as code, end to end on a real Prefect server (a subprocess with its own
``PREFECT_HOME``), with a webhook receiver on loopback standing in for the destination:

* ``sodtrack-etl prefect apply`` creates the notify block from ``SODTRACK_NOTIFY_WEBHOOK_URL``
  and the automations of ``automations/``; run again it updates them (same ids, no
  duplicate), also after ``prefect automation create --from-file`` of a rendered file made
  a second automation of one name;
* a real ``nightly-extract`` run that fails (a wrong setting) fires "run failed": the server
  records the action as executed, and the receiver gets the notification naming the run;
* ``sodtrack.dataset.quarantined`` and ``sodtrack.upload.rows-rejected`` events fire theirs;
* the proactive deadline (window shortened to 12 s in a copy of the files) fires for a
  country that completed nothing, and stays quiet for one that keeps completing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from e2e.procs import (
    BIN,
    ROOT,
    Proc,
    free_port,
    prefect_env,
    start_prefect_server,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900), pytest.mark.xdist_group("prefect-alerts")]

NOTIFY_TIMEOUT_S = 120.0


@dataclass
class Receiver:
    url: str
    received: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def matching(self, text: str) -> list[dict[str, Any]]:
        with self.lock:
            return [m for m in self.received if text in m.get("subject", "")]


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    """A webhook endpoint on loopback: each POSTed JSON body is kept."""
    holder: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            r = holder["r"]
            with r.lock:
                r.received.append(json.loads(body or b"{}"))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder["r"] = Receiver(f"http://127.0.0.1:{server.server_address[1]}/hook")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield holder["r"]
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Server:
    api_url: str
    env: dict[str, str]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("prefect-alerts")
    logs = base / "logs"
    logs.mkdir()
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = prefect_env(base, port) | {
        "SODTRACK_ENV_FILE": "none",
        "SODTRACK_COUNTRY": "cl",
        "SODTRACK_STATE_URL": f"sqlite:///{base / 'state.db'}",
        "SODTRACK_WAREHOUSE": str(base / "warehouse"),
        "SODTRACK_NOTIFY_BLOCK": "custom-webhook/sodtrack-alerts-test",
        "SODTRACK_NOTIFY_WEBHOOK_URL": receiver.url,
    }
    procs: list[Proc] = []
    try:
        start_prefect_server(env, logs, procs)
        yield Server(api_url, env)
    finally:
        for proc in procs:
            proc.stop()


def _cli(server: Server, *args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(BIN / args[0]), *args[1:]],
        cwd=ROOT,
        env=env or server.env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"{args}: {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _rows(stdout: str) -> list[tuple[str, str, str]]:
    """``apply``'s lines: (action, id, name)."""
    rows = [line.split("\t") for line in stdout.splitlines() if line.count("\t") == 2]
    return [(action, id_, name) for action, id_, name in rows]


def _applied(stdout: str) -> dict[str, tuple[str, str]]:
    """``apply``'s created or updated automations: name → (action, id)."""
    return {name: (a, i) for a, i, name in _rows(stdout) if a in ("created", "updated")}


def _automations(server: Server) -> list[dict[str, Any]]:
    response = httpx.post(f"{server.api_url}/automations/filter", json={}, timeout=30)
    response.raise_for_status()
    found: list[dict[str, Any]] = response.json()
    return found


def _events(server: Server, prefix: str, since: str) -> list[dict[str, Any]]:
    response = httpx.post(
        f"{server.api_url}/events/filter",
        json={"filter": {"event": {"prefix": [prefix]}, "occurred": {"since": since}}, "limit": 50},
        timeout=30,
    )
    response.raise_for_status()
    events: list[dict[str, Any]] = response.json()["events"]
    return events


def _emit(server: Server, event: str, resource: dict[str, str], payload: dict[str, Any]) -> None:
    body = [
        {
            "id": str(uuid.uuid4()),
            "occurred": datetime.now(UTC).isoformat(),
            "event": event,
            "resource": resource,
            "payload": payload,
        }
    ]
    httpx.post(f"{server.api_url}/events", json=body, timeout=30).raise_for_status()


def _until(what: str, probe: Any, timeout: float = NOTIFY_TIMEOUT_S) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(1.0)


DECLARED = {
    "sodtrack: run failed",
    "sodtrack: dataset quarantined",
    "sodtrack: upload with rejected rows",
    "sodtrack: nightly cl not completed",
}


def test_apply_is_idempotent_and_renders_for_the_prefect_cli(
    server: Server, receiver: Receiver, tmp_path: Path
) -> None:
    first = _applied(_cli(server, "sodtrack-etl", "prefect", "apply", "--render", str(tmp_path)))
    assert set(first) == DECLARED
    assert {action for action, _ in first.values()} == {"created"}
    mine = [a for a in _automations(server) if a["name"] in DECLARED]
    assert len(mine) == len(DECLARED)
    block = httpx.get(
        f"{server.api_url}/block_types/slug/custom-webhook/block_documents/name/sodtrack-alerts-test",
        timeout=30,
    )
    block.raise_for_status()
    block_id = block.json()["id"]
    assert receiver.url not in block.text  # the URL is a secret of the block
    assert "{{webhook_url}}" in block.text
    assert all(a["actions"][0]["block_document_id"] == block_id for a in mine)

    # The documented route: a rendered file through Prefect's own CLI (a second automation
    # of that name), then apply again: updated in place, the duplicate removed.
    rendered = tmp_path / "sodtrack-run-failed.yaml"
    assert yaml.safe_load(rendered.read_text())["actions"][0]["block_document_id"] == block_id
    _cli(server, "prefect", "automation", "create", "--from-file", str(rendered))
    assert len([a for a in _automations(server) if a["name"] == "sodtrack: run failed"]) == 2
    out = _cli(server, "sodtrack-etl", "prefect", "apply")
    second = _applied(out)
    assert {n: i for n, (_, i) in second.items()} == {n: i for n, (_, i) in first.items()}
    assert {action for action, _ in second.values()} == {"updated"}
    deleted = [(i, n) for a, i, n in _rows(out) if a == "deleted"]
    assert len(deleted) == 1, out
    assert deleted[0][1] == "sodtrack: run failed"
    assert deleted[0][0] != first["sodtrack: run failed"][1]
    names = [a["name"] for a in _automations(server)]
    assert sorted(n for n in names if n in DECLARED) == sorted(DECLARED)


def test_a_failing_run_fires_the_alert(server: Server, receiver: Receiver) -> None:
    applied = _applied(_cli(server, "sodtrack-etl", "prefect", "apply"))
    automation_id = applied["sodtrack: run failed"][1]
    since = datetime.now(UTC).isoformat()
    # The real flow, on the real server, failing on a wrong setting.
    env = server.env | {"SODTRACK_ENV": "staging"}
    subprocess.run(
        [
            str(BIN / "python"),
            "-c",
            "import asyncio; from flows.nightly import nightly; "
            "asyncio.run(nightly(countries=['cl'], return_state=True))",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=300,
        check=False,
    )
    runs = httpx.post(
        f"{server.api_url}/flow_runs/filter",
        json={"flows": {"name": {"any_": ["nightly-extract"]}}},
        timeout=30,
    ).json()
    failed = [r for r in runs if r["state_type"] == "FAILED"]
    assert failed, runs
    run_name = failed[0]["name"]

    executed = _until(
        "the automation's action executed",
        lambda: [
            e
            for e in _events(server, "prefect.automation.action.executed", since)
            if e["resource"]["prefect.resource.id"] == f"prefect.automation.{automation_id}"
        ],
    )
    assert executed
    notes = _until(f"the notification of {run_name}", lambda: receiver.matching(run_name))
    assert "nightly-extract" in notes[0]["subject"]
    assert "Failed" in notes[0]["subject"]
    assert "configuration error" in notes[0]["body"]
    assert "SODTRACK_ENV" in notes[0]["body"]
    assert not [
        e
        for e in _events(server, "prefect.automation.action.failed", since)
        if e["resource"]["prefect.resource.id"] == f"prefect.automation.{automation_id}"
    ]


def test_quarantine_and_rejected_rows_fire_theirs(server: Server, receiver: Receiver) -> None:
    _cli(server, "sodtrack-etl", "prefect", "apply")
    _emit(
        server,
        "sodtrack.dataset.quarantined",
        {"prefect.resource.id": "sodtrack.dataset.cl.services"},
        {
            "country": "cl",
            "dataset": "services",
            "run_id": "nightly-e2e-cl",
            "quarantine_path": "/wh/_quarantine/services/nightly-e2e-cl",
            "critical_failures": ["row_count: 6 rows, expected at least 24"],
        },
    )
    quarantined = _until(
        "the quarantine notification", lambda: receiver.matching("services (cl) quarantined")
    )
    assert "nightly-e2e-cl" in quarantined[0]["body"]
    assert "row_count" in quarantined[0]["body"]

    _emit(
        server,
        "sodtrack.upload.rows-rejected",
        {"prefect.resource.id": "sodtrack.upload.u-e2e", "prefect.resource.name": "june.xlsx"},
        {
            "upload_id": "u-e2e",
            "file_name": "june.xlsx",
            "country": "cl",
            "run": 1,
            "rows": 12,
            "rejected": 3,
            "skipped_dependency": 1,
            "failed_transient": 0,
            "needs_a_person": 4,
            "counts": {"created": 8, "rejected": 3, "skipped_dependency": 1},
        },
    )
    rejected = _until("the upload notification", lambda: receiver.matching("june.xlsx"))
    assert "4 rows to fix" in rejected[0]["subject"]
    assert "3 rejected" in rejected[0]["body"]


def test_the_nightly_deadline_is_proactive(
    server: Server, receiver: Receiver, tmp_path: Path
) -> None:
    """Windows of 12 s: Chile completes nothing and is alerted; Peru completes every 3 s and
    is not."""
    files = tmp_path / "automations"
    shutil.copytree(ROOT / "automations", files)
    deadline = files / "nightly-deadline.yaml"
    data = yaml.safe_load(deadline.read_text())
    data["x-sodtrack"]["countries"] = {"cl": 12, "pe": 12}
    data["name"] = "sodtrack-test: nightly {country} not completed"
    data["actions"][0]["subject"] = "Deadline test: nightly {country} missed"
    deadline.write_text(yaml.safe_dump(data))
    for other in files.glob("*.yaml"):
        if other != deadline:
            other.unlink()
    args = ["sodtrack-etl", "prefect", "apply", "--dir", str(files), "-c", "cl", "-c", "pe"]
    _cli(server, *args)
    started = time.monotonic()
    alerted_at: float | None = None
    # Peru completes every 3 s until a full window (and more) after Chile's alert.
    while time.monotonic() - started < 60:
        _emit(
            server,
            "sodtrack.nightly.completed",
            {"prefect.resource.id": "sodtrack.nightly.pe"},
            {"country": "pe", "run_id": "nightly-e2e"},
        )
        if alerted_at is None and receiver.matching("Deadline test: nightly cl"):
            alerted_at = time.monotonic()
        if alerted_at is not None and time.monotonic() - alerted_at > 15:
            break
        time.sleep(3)
    assert alerted_at is not None, "no deadline alert for Chile within 60 s of a 12 s window"
    notes = receiver.matching("Deadline test: nightly cl")
    assert "within 0.00333333 hours" in notes[0]["body"], notes
    assert not receiver.matching("Deadline test: nightly pe")
