"""End to end: the upload page announces a load, a Prefect worker runs it, the page follows it.

Every piece is its own process, as in a deployment: a Prefect server (its own
``PREFECT_HOME``), the simulator (``sodtrack-sim serve``), the deployments from
``prefect.yaml`` (``sodtrack-etl prefect deploy``, whose ``bulk-load`` trigger expects
``sodtrack.upload.received``), a process worker of the ``sodtrack`` pool, moto's S3 server
(``tests/s3server.py``) holding uploads and outbox, and the page itself (``sodtrack-etl
serve`` with ``PREFECT_API_URL`` set). The page and the worker share nothing but the bucket
and the state database: PostgreSQL (a fresh database on ``SODTRACK_TEST_POSTGRES_URL``) when
one is configured, else SQLite, saying so (under ``SODTRACK_REQUIRE_POSTGRES=1`` a missing
PostgreSQL fails the test); without moto the module skips (fails under
``SODTRACK_REQUIRE_S3=1``).

Over real HTTP, with the API token ``sodtrack-etl users token`` prints: the demo sample
(``sodtrack-etl sample --errors``) is uploaded; its preview shows the three planted rejects
with their messages and fixes; Load → one ``bulk-load`` flow run, named after the upload,
appears on the server and completes on the worker; the page's status follows the ledger to
the outcome counts; the results and rejects the page serves are the objects the worker wrote
to the bucket; the same file uploaded again is the same upload and starts nothing.
"""

from __future__ import annotations

import csv
import io
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from orchestration.pg import drop_database, fresh_postgres_database, require_postgres
from s3server import ACCESS_KEY, SECRET_KEY, S3Server, moto_server

from e2e.procs import (
    BIN,
    ROOT,
    Proc,
    clean_env,
    create_work_pool,
    final_run,
    free_port,
    http_ok,
    prefect_env,
    run_cli,
    start_prefect_server,
    wait_for,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(1200),
    pytest.mark.xdist_group("prefect-web-e2e"),  # both variants share one server
]

RUN_TIMEOUT_S = 420.0
SAMPLE_ROWS = 40
PLANTED_REJECTS = 3
BOOKINGS_CREATED = SAMPLE_ROWS - 2
"""The overpaid row is rejected for its payment: its booking is created all the same."""
# The simulator keeps the real clock: ``sodtrack-etl sample`` plans its bookings from today,
# as it does for an operator.
SIM_ARGS = [
    *("--country", "cl", "--rate-limit", "0"),
    *("--bookings", "300", "--services", "40", "--variants", "80", "--zones", "8"),
    *("--postal-codes", "300", "--log-level", "warning"),
]


@dataclass
class Stack:
    api_url: str
    env: dict[str, str]
    logs: Path
    s3: S3Server
    bulk_load_id: uuid.UUID

    def client(self) -> Any:
        from prefect.client.orchestration import get_client

        return get_client(sync_client=True)

    def bulk_runs(self, upload_id: str) -> list[Any]:
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterDeploymentId

        with self.client() as client:
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    deployment_id=FlowRunFilterDeploymentId(any_=[self.bulk_load_id])
                )
            )
        return [r for r in runs if r.parameters.get("upload_id") == upload_id]

    def s3_read(self, url: str) -> bytes:
        import fsspec

        fs = fsspec.filesystem(
            "s3",
            key=ACCESS_KEY,
            secret=SECRET_KEY,
            client_kwargs={"endpoint_url": self.s3.endpoint},
        )
        data: bytes = fs.cat_file(url.removeprefix("s3://"))
        return data


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    base = tmp_path_factory.mktemp("web-worker-e2e")
    logs = base / "logs"
    logs.mkdir()
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = prefect_env(base, port)
    procs: list[Proc] = []
    with moto_server() as s3:
        try:
            start_prefect_server(env, logs, procs)
            create_work_pool(env)
            admin_env = env | {"SODTRACK_COUNTRIES": "cl", "SODTRACK_ENV_FILE": "none"}
            run_cli([str(BIN / "sodtrack-etl"), "prefect", "deploy"], admin_env)
            with temporary_settings(updates={PREFECT_API_URL: api_url}):
                from prefect.client.orchestration import get_client

                with get_client(sync_client=True) as client:
                    load = client.read_deployment_by_name("bulk-load/bulk-load")
                    nightly = client.read_deployment_by_name("nightly-extract/nightly-extract")
                    for s in client.read_deployment_schedules(nightly.id):  # no 02:00 surprise
                        client.update_deployment_schedule(nightly.id, s.id, active=False)
                yield Stack(api_url, env, logs, s3, load.id)
        finally:
            for p in reversed(procs):
                p.stop()


def _site_env(stack: Stack, tmp_path: Path, state_url: str, sim_url: str) -> dict[str, str]:
    """What the page and the worker both get: the state database, the bucket, the API."""
    bucket = stack.s3.new_bucket()
    s3_env = {k: v for k, v in stack.s3.env().items() if k != "AWS_ENDPOINT_URL"}
    return (
        stack.env
        | s3_env
        | {
            "PREFECT_WORKER_QUERY_SECONDS": "2",
            "PREFECT_WORKER_PREFETCH_SECONDS": "5",
            "SODTRACK_ENV_FILE": "none",
            "SODTRACK_BASE_URL": sim_url,  # one country: served at the root
            "SODTRACK_COUNTRY": "cl",
            "SODTRACK_CLIENT_SECRET": "sim-secret",
            "SODTRACK_STATE_URL": state_url,
            "SODTRACK_S3_ENDPOINT_URL": stack.s3.endpoint,
            "SODTRACK_UPLOADS": f"s3://{bucket}/uploads",
            "SODTRACK_OUTBOX": f"s3://{bucket}/outbox",
            "SODTRACK_WAREHOUSE": str(tmp_path / "warehouse"),
            "SODTRACK_RATE_LIMIT_PER_S": "1000",
        }
    )


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))


def _bookings(sim_url: str) -> int:
    answer = httpx.get(f"{sim_url}/_sim/export/bookings", timeout=60)
    answer.raise_for_status()
    return sum(1 for line in answer.text.splitlines() if line.strip())


def _variant(stack: Stack, tmp_path: Path, name: str, state_url: str) -> None:
    logs = stack.logs / name
    logs.mkdir()
    # A simulator per variant: the sample's references (DEMO-…) are the same in both.
    sim_url = f"http://127.0.0.1:{free_port()}"
    sim = Proc(
        "simulator",
        [str(BIN / "sodtrack-sim"), "serve", *SIM_ARGS, "--port", sim_url.rsplit(":", 1)[1]],
        clean_env(),
        logs,
    )
    try:
        wait_for("the simulator", lambda: http_ok(f"{sim_url}/_sim/health"), 120, sim)
        _page_and_worker(stack, tmp_path, logs, _site_env(stack, tmp_path, state_url, sim_url))
    finally:
        sim.stop()


def _page_and_worker(stack: Stack, tmp_path: Path, logs: Path, env: dict[str, str]) -> None:
    sim_url = env["SODTRACK_BASE_URL"]
    etl = str(BIN / "sodtrack-etl")
    sample = tmp_path / "demo bookings.xlsx"
    run_cli([etl, "sample", str(sample), "--errors", "--rows", str(SAMPLE_ROWS)], env)
    done = subprocess.run(
        [etl, "users", "add", "ana", "--country", "cl", "--password-stdin"],
        cwd=ROOT, env=env, input="correct horse battery\n", capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    token = run_cli([etl, "users", "token", "ana"], env).strip()
    assert token.startswith("sdt_")
    web_port = free_port()
    page = Proc("page", [etl, "serve", "--host", "127.0.0.1", "--port", str(web_port)], env, logs)
    worker = Proc(
        "worker",
        [str(BIN / "prefect"), "worker", "start", "--pool", "sodtrack", "--type", "process"],
        env,
        logs,
    )
    procs = (page, worker)
    url = f"http://127.0.0.1:{web_port}"
    try:
        wait_for("the upload page", lambda: http_ok(f"{url}/login"), 120, page)
        assert "loads announced to Prefect" in page.log_path.read_text()
        http = httpx.Client(base_url=url, headers={"authorization": f"Bearer {token}"}, timeout=60)

        def upload() -> dict[str, Any]:
            with sample.open("rb") as fh:
                answer = http.post(
                    "/api/uploads", data={"country": "cl"}, files={"file": (sample.name, fh)}
                )
            assert answer.status_code in (200, 201), answer.text
            body: dict[str, Any] = answer.json()
            return body

        first = upload()
        assert first["created"] is True
        upload_id = first["upload_id"]

        def previewed() -> dict[str, Any] | None:
            answer = http.get(f"/api/uploads/{upload_id}/preview")
            if answer.status_code == 202:
                assert answer.json()["preview_status"] != "failed", answer.json()
                return None
            assert answer.status_code == 200, answer.text
            body: dict[str, Any] = answer.json()
            return body

        preview = wait_for("the preview", previewed, 180, *procs)
        rejected = [r for r in preview["rows"] if r["outcome"] == "rejected"]
        assert len(rejected) == PLANTED_REJECTS, [r["message"] for r in rejected[:5]]
        assert all(r["message"] and r["suggested_fix"] for r in rejected)
        assert preview["would_load"] == SAMPLE_ROWS - PLANTED_REJECTS
        bookings_before = _bookings(sim_url)

        started = http.post(f"/api/uploads/{upload_id}/load")
        assert started.status_code == 202, started.text
        assert started.json()["started"] is True
        assert started.json()["load_status"] == "announced"

        [triggered] = wait_for(
            "the bulk-load run", lambda: stack.bulk_runs(upload_id) or None, 180, *procs
        )
        assert triggered.parameters["path"] == f"{env['SODTRACK_UPLOADS']}/{upload_id}/upload.xlsx"
        assert triggered.parameters["outbox"] == env["SODTRACK_OUTBOX"]
        assert triggered.parameters["dry_run"] is False

        run = final_run(stack.client, triggered.id, RUN_TIMEOUT_S, *procs)
        if run.state_type.value != "COMPLETED":
            pytest.fail(f"{run.state_type.value}: {run.state.message}\n{worker.tail(120)}")
        assert run.name == f"bulk-load-cl-{upload_id}"
        assert f"{SAMPLE_ROWS - PLANTED_REJECTS} created" in run.state.message, run.state.message

        def loaded() -> dict[str, Any] | None:
            body: dict[str, Any] = http.get(f"/api/uploads/{upload_id}").json()
            assert body["load_status"] != "failed", body
            return body if body["load_status"] == "done" else None

        status = wait_for("the page to see the load done", loaded, 60, *procs)
        counts = status["ledger"]["counts"]
        assert counts["created"] == SAMPLE_ROWS - PLANTED_REJECTS
        assert counts["rejected"] == PLANTED_REJECTS
        assert set(status["downloads"]) == {
            "results.xlsx",
            "results.csv",
            "rejects.xlsx",
            "rejects.csv",
        }
        assert _bookings(sim_url) == bookings_before + BOOKINGS_CREATED

        # What the page serves is what the worker wrote to the bucket.
        outbox = f"{env['SODTRACK_OUTBOX']}/{upload_id}"
        results = http.get(f"/api/uploads/{upload_id}/files/results.csv")
        assert results.status_code == 200
        assert results.content == stack.s3_read(f"{outbox}/upload.{upload_id}.results.csv")
        outcomes = [r["outcome"] for r in _rows(results.text)]
        assert outcomes.count("created") == SAMPLE_ROWS - PLANTED_REJECTS
        rejects = http.get(f"/api/uploads/{upload_id}/files/rejects.csv")
        ref = preview["headers"].index("external_reference")
        assert {r["external_reference"] for r in _rows(rejects.text)} == {
            r["cells"][ref] for r in rejected
        }
        xlsx = http.get(f"/api/uploads/{upload_id}/files/rejects.xlsx")
        assert xlsx.content == stack.s3_read(f"{outbox}/upload.{upload_id}.rejects.xlsx")

        # The same file again: the same upload, no second run, nothing created.
        again = upload()
        assert again["created"] is False
        assert again["upload_id"] == upload_id
        second = http.post(f"/api/uploads/{upload_id}/load")
        assert second.json()["started"] is False, "nothing announced a second time"
        assert second.json()["load_status"] == "done"
        assert len(stack.bulk_runs(upload_id)) == 1
        assert _bookings(sim_url) == bookings_before + BOOKINGS_CREATED
        for secret in ("sim-secret", token):
            assert secret not in page.log_path.read_text(), "a secret in the page's log"
        http.close()
    finally:
        for p in procs:
            p.stop()


def test_the_page_loads_through_a_prefect_worker(stack: Stack, tmp_path: Path) -> None:
    """On PostgreSQL, the state database a deployment's page and workers share, when one is
    configured (``SODTRACK_TEST_POSTGRES_URL``; ``SODTRACK_REQUIRE_POSTGRES=1`` makes a missing
    one a failure, as in CI); else on SQLite, saying so. One variant: the state store's two
    engines are each run end to end by ``test_prefect_deploy.py``, and the page's own database
    code by ``tests/web`` on both."""
    try:
        server = require_postgres()
    except pytest.skip.Exception as why:
        print(f"state database: SQLite ({why})")
        _variant(stack, tmp_path, "sqlite", f"sqlite:///{tmp_path}/state.db")
        return
    url, admin = fresh_postgres_database(server)
    try:
        _variant(stack, tmp_path, "postgres", url)
    finally:
        drop_database(admin, url)
