"""End to end with no shared folder: two Prefect workers that share only S3 and PostgreSQL.

One Prefect server, one simulator (Chile and Peru), one moto S3 server and one PostgreSQL
database. ``sodtrack-etl prefect deploy`` runs from the checkout, as an operator would. Then
two process workers (``--limit 1`` each) and the inbox watcher start, each in **its own
temporary working directory** (cwd and ``PWD`` there, its own ``HOME``, ``TMPDIR``,
``PREFECT_HOME`` and warehouse scratch under ``<dir>/scratch``), the way a platform team
runs them on machines that share no disk. The code comes from the checkout, read only
(``PYTHONDONTWRITEBYTECODE=1``): the deployments import it as modules, and the pull step
keeps each run in its worker's own directory (``SODTRACK_PROJECT_DIR``). The warehouse, the
inbox, the stored uploads and the outbox are ``s3://`` URLs; the state store is PostgreSQL.

* the nightly of Chile and of Peru, submitted at the same moment, run on the two workers
  (each worker's log names the run it took; at least one pair lands on different workers),
  while a spreadsheet dropped into the S3 inbox is announced by the watcher and loaded by a
  ``bulk-load`` run, whose results land in the S3 outbox;
* a second nightly of both countries (incremental: the watermark comes from the Delta commit
  the other worker may have made) picks up the bookings the load created;
* every dataset, read back from the Delta tables on S3 through ``deltalake``, equals an
  independent walk of the simulator's API written here with bare ``httpx`` (not our client),
  and the loaded bookings exist in the simulator once;
* the run reports and Data Docs are on the object store (``<warehouse>/_reports``,
  ``<warehouse>/_docs``), not on a worker's disk;
* nothing was written in a worker's or the watcher's directory outside its own scratch, nor
  in the checkout.

Skips, saying so, without PostgreSQL (``SODTRACK_TEST_POSTGRES_URL``) or moto; fails instead
under ``SODTRACK_REQUIRE_POSTGRES=1`` / ``SODTRACK_REQUIRE_S3=1``.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from orchestration.pg import drop_database, fresh_postgres_database, require_postgres
from s3server import S3Server, moto_server, require_moto

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
    submit_run,
    wait_for,
)
from sodtrack.bulkload.engine.ledger import file_sha256, upload_id_for
from sodtrack.bulkload.synth import synthesize_upload
from sodtrack.simulator.testing import SIM_NOW

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(1800),
    pytest.mark.xdist_group("prefect-e2e-shared-nothing"),
]

SIM_TODAY = date.fromisoformat(SIM_NOW[:10])
RUN_TIMEOUT_S = 600.0
COUNTRIES = ("cl", "pe")
SIM_ARGS = [
    *("--country", "cl", "--country", "pe", "--now", SIM_NOW, "--rate-limit", "0"),
    *("--bookings", "200", "--services", "30", "--variants", "60", "--zones", "6"),
    *("--postal-codes", "200", "--log-level", "warning"),
]
UPLOAD_PREFIX = "E2ESN"
UPLOAD_ROWS = 12


# ---------------------------------------------------------------- the stack


@dataclass
class Stack:
    api_url: str
    sim_url: str
    s3: S3Server
    bucket: str
    state_url: str
    base: Path
    logs: Path
    deployments: dict[str, Any]

    @property
    def warehouse(self) -> str:
        return f"s3://{self.bucket}/warehouse"

    def url(self, *parts: str) -> str:
        return "/".join([f"s3://{self.bucket}", *parts])

    def client(self) -> Any:
        from prefect.client.orchestration import get_client

        return get_client(sync_client=True)

    def s3_client(self) -> Any:
        return self.s3.client()

    def keys(self, prefix: str) -> list[str]:
        pages = (
            self.s3_client()
            .get_paginator("list_objects_v2")
            .paginate(Bucket=self.bucket, Prefix=prefix)
        )
        return [o["Key"] for page in pages for o in page.get("Contents", [])]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    admin_url = require_postgres()
    require_moto()
    from prefect.settings import PREFECT_API_URL, temporary_settings

    base = tmp_path_factory.mktemp("shared-nothing")
    logs = base / "logs"
    logs.mkdir()
    port, sim_port = free_port(), free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = prefect_env(base, port)
    procs: list[Proc] = []
    state_url, admin = fresh_postgres_database(admin_url)
    try:
        with moto_server() as s3:
            bucket = s3.new_bucket()
            start_prefect_server(env, logs, procs)
            sim = Proc(
                "simulator",
                [str(BIN / "sodtrack-sim"), "serve", *SIM_ARGS, "--port", str(sim_port)],
                clean_env(),
                logs,
            )
            procs.append(sim)

            sim_url = f"http://127.0.0.1:{sim_port}"
            wait_for("the simulator", lambda: http_ok(f"{sim_url}/pe/_sim/health"), 120, sim)
            create_work_pool(env)
            admin_env = env | {"SODTRACK_COUNTRIES": "cl,pe", "SODTRACK_ENV_FILE": "none"}
            run_cli([str(BIN / "sodtrack-etl"), "prefect", "deploy"], admin_env)
            with temporary_settings(updates={PREFECT_API_URL: api_url}):
                stack = Stack(api_url, sim_url, s3, bucket, state_url, base, logs, {})
                with stack.client() as client:
                    for name in ("nightly-extract/nightly-extract", "bulk-load/bulk-load"):
                        stack.deployments[name] = client.read_deployment_by_name(name)
                    nightly = stack.deployments["nightly-extract/nightly-extract"]
                    for s in client.read_deployment_schedules(nightly.id):
                        client.update_deployment_schedule(nightly.id, s.id, active=False)
                yield stack
    finally:
        for p in reversed(procs):
            p.stop()
        drop_database(admin, state_url)


# ---------------------------------------------------------------- the machines


@dataclass
class Machine:
    """A worker's (or the watcher's) own directory: ``dir`` is its cwd; ``scratch`` the only
    place it may write on its disk."""

    name: str
    dir: Path
    scratch: Path

    def files(self) -> set[str]:
        """Every file and folder in ``dir`` outside ``scratch``."""
        return {
            str(p.relative_to(self.dir))
            for p in self.dir.rglob("*")
            if p != self.scratch and self.scratch not in p.parents
        }


def _machine(stack: Stack, name: str) -> tuple[Machine, dict[str, str]]:
    home = stack.base / name
    scratch = home / "scratch"
    for sub in ("home", "tmp", "prefect", "warehouse"):
        (scratch / sub).mkdir(parents=True)
    env = (
        clean_env()
        | stack.s3.env()
        | {
            "PWD": str(home),
            "HOME": str(scratch / "home"),
            "TMPDIR": str(scratch / "tmp"),
            "PYTHONDONTWRITEBYTECODE": "1",  # the checkout is read only
            "PREFECT_HOME": str(scratch / "prefect"),
            "PREFECT_API_URL": stack.api_url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_LOGGING_LEVEL": "INFO",
            "PREFECT_WORKER_QUERY_SECONDS": "2",
            "PREFECT_WORKER_PREFETCH_SECONDS": "5",
            "SODTRACK_PROJECT_DIR": str(home),  # runs work here, not in the checkout
            "SODTRACK_BASE_URL": stack.sim_url + "/{country}",
            "SODTRACK_RATE_LIMIT_PER_S": "1000",
            "SODTRACK_CLIENT_SECRET": "sim-secret",
            "SODTRACK_WAREHOUSE": stack.warehouse,
            "SODTRACK_WAREHOUSE_SCRATCH": str(scratch / "warehouse"),
            "SODTRACK_S3_ENDPOINT_URL": stack.s3.endpoint,
            "SODTRACK_S3_ALLOW_HTTP": "true",
            "SODTRACK_STATE_URL": stack.state_url,
            "SODTRACK_INBOX": stack.url("inbox"),
            "SODTRACK_UPLOADS": stack.url("uploads"),
            "SODTRACK_OUTBOX": stack.url("outbox"),
        }
    )
    env.pop("AWS_ENDPOINT_URL", None)  # reached through SODTRACK_S3_ENDPOINT_URL, as deployed
    return Machine(name, home, scratch), env


def _checkout_files() -> set[str]:
    """Untracked and ignored files of the checkout (bytecode and the test's own caches aside)."""
    done = subprocess.run(
        ["git", "status", "--porcelain", "--ignored", "--untracked-files=all"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    skip = ("__pycache__", ".pytest_cache", ".venv/", "test-artifacts/", ".mypy_cache", ".ruff")
    return {line for line in done.stdout.splitlines() if not any(s in line for s in skip)}


# ---------------------------------------------------------------- Prefect helpers


def _submit(stack: Stack, name: str, parameters: dict[str, Any]) -> uuid.UUID:
    run_id: uuid.UUID = submit_run(stack.client, stack.deployments[name].id, parameters)
    return run_id


def _final(stack: Stack, run_id: uuid.UUID, *procs: Proc) -> Any:
    return final_run(stack.client, run_id, RUN_TIMEOUT_S, *procs)


def _completed(stack: Stack, run_id: uuid.UUID, *procs: Proc) -> Any:
    run = _final(stack, run_id, *procs)
    if run.state_type.value != "COMPLETED":
        pytest.fail(
            f"{run.name}: {run.state_type.value} — {run.state.message}\n"
            + "\n".join(p.tail(150) for p in procs)
        )
    return run


def _bulk_runs(stack: Stack, upload_id: str) -> list[Any]:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterDeploymentId

    load = stack.deployments["bulk-load/bulk-load"]
    with stack.client() as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(deployment_id=FlowRunFilterDeploymentId(any_=[load.id]))
        )
    return [r for r in runs if r.parameters.get("upload_id") == upload_id]


def _online_workers(stack: Stack) -> set[str] | None:
    with stack.client() as client:
        workers = client.read_workers_for_work_pool("sodtrack")
    names = {w.name for w in workers if str(w.status).upper().endswith("ONLINE")}
    return names if {"worker-a", "worker-b"} <= names else None


def _taken_by(run_id: uuid.UUID, workers: list[Proc]) -> str:
    """The worker that ran the flow run: its log says it submitted it, and no abort (both
    may try; the server lets one have it)."""
    takers = []
    for w in workers:
        log = w.log_path.read_text(errors="replace")
        if f"submitting flow run '{run_id}'" in log and (
            f"Aborted submission of flow run '{run_id}'" not in log
        ):
            takers.append(w.name)
    assert len(takers) == 1, f"flow run {run_id} taken by {takers}"
    return takers[0]


# ---------------------------------------------------------------- the independent walk


class Walk:
    """The simulator's API walked with bare httpx: token, page-numbered lists, cursor lists."""

    def __init__(self, sim_url: str, country: str) -> None:
        self.http = httpx.Client(base_url=f"{sim_url}/{country}/api/v1", timeout=60)
        token = self.http.post(
            "/auth/token", json={"client_id": "sim-client", "client_secret": "sim-secret"}
        )
        token.raise_for_status()
        self.http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"

    def pages(self, path: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        page = 1
        while True:
            r = self.http.get(path, params={"page": page, "page_size": 500})
            r.raise_for_status()
            body = r.json()
            out += body["data"]
            if page >= body["meta"]["total_pages"]:
                return out
            page += 1

    def cursor(self, path: str) -> list[dict[str, Any]]:
        latest: dict[str, dict[str, Any]] = {}
        params: dict[str, Any] = {"limit": 1000}
        while True:
            r = self.http.get(path, params=params)
            r.raise_for_status()
            body = r.json()
            for doc in body["data"]:
                seen = latest.get(doc["id"])
                if seen is None or doc["updated_at"] >= seen["updated_at"]:
                    latest[doc["id"]] = doc
            if not body["next_cursor"]:
                return list(latest.values())
            params = {"limit": 1000, "cursor": body["next_cursor"]}


def _ts(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00"))


def _money(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def _expected(walk: Walk) -> dict[str, list[dict[str, Any]]]:
    """Every dataset's rows as the API gives them, in the warehouse's column names."""
    categories = [
        {k: c[k] for k in ("id", "name", "description", "parent_id", "active")}
        | {"updated_at": _ts(c["updated_at"])}
        for c in walk.pages("/catalog/categories")
    ]
    services_wire = walk.pages("/catalog/services")
    services = [
        {
            k: s[k]
            for k in (
                "id",
                "category_id",
                "sku",
                "name",
                "description",
                "duration_minutes",
                "currency",
                "requires_project",
                "active",
            )
        }
        | {"base_price": _money(s["base_price"]), "updated_at": _ts(s["updated_at"])}
        for s in services_wire
    ]
    variants = [
        {
            k: v[k]
            for k in ("id", "service_id", "sku", "name", "currency", "duration_minutes", "active")
        }
        | {"price": _money(v["price"]), "updated_at": _ts(v["updated_at"])}
        for s in services_wire
        for v in walk.pages(f"/catalog/services/{s['id']}/variants")
    ]
    zones_wire = walk.pages("/coverage/zones")
    zones = [
        {k: z[k] for k in ("id", "name", "region", "contractor_count", "active")}
        | {
            "postal_code_count": len(z["postal_codes"]),
            "service_count": len(z["service_ids"]),
            "updated_at": _ts(z["updated_at"]),
        }
        for z in zones_wire
    ]
    postal_codes = [
        {"zone_id": z["id"], "postal_code": pc, "service_id": sid, "zone_active": z["active"]}
        for z in zones_wire
        for pc in z["postal_codes"]
        for sid in z["service_ids"]
    ]
    bookings = []
    for b in walk.cursor("/bookings"):
        customer, address = b["customer"], b["address"]
        bookings.append(
            {
                k: b[k]
                for k in (
                    "id",
                    "external_reference",
                    "status",
                    "service_id",
                    "variant_id",
                    "zone_id",
                    "contractor_id",
                    "notes",
                    "currency",
                    "project_id",
                    "stage_id",
                    "cancelled_reason",
                )
            }
            | {f"customer_{k}": v for k, v in customer.items()}
            | {f"address_{k}": v for k, v in address.items()}
            | {
                k: _ts(b[k])
                for k in ("scheduled_start", "scheduled_end", "created_at", "updated_at")
            }
            | {"price": _money(b["price"])}
        )
    return {
        "categories": categories,
        "services": services,
        "variants": variants,
        "coverage_zones": zones,
        "coverage_postal_codes": postal_codes,
        "bookings": bookings,
    }


def _published(stack: Stack, dataset: str, country: str) -> list[dict[str, Any]]:
    """The dataset's rows of ``country`` in its latest Delta version on S3 (the newest
    snapshot of a snapshot dataset), without the partition and lineage columns."""
    from deltalake import DeltaTable

    env = stack.s3.env()
    options = {k: env[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION")}
    options |= {"AWS_ENDPOINT_URL": stack.s3.endpoint, "AWS_ALLOW_HTTP": "true"}
    table = DeltaTable(f"{stack.warehouse}/{dataset}", storage_options=options)
    rows = [r for r in table.to_pyarrow_table().to_pylist() if r["country"] == country]
    if rows and "snapshot_date" in rows[0]:
        newest = max(r["snapshot_date"] for r in rows)
        rows = [r for r in rows if r["snapshot_date"] == newest]
    drop = {"country", "snapshot_date", "scheduled_month", "extraction_date", "extracted_at"}
    return [{k: v for k, v in r.items() if k not in drop} for r in rows]


def _booking_changes(stack: Stack, country: str) -> dict[str, dict[str, Any]]:
    """``booking_changes`` of ``country``: the newest version of each booking it logged."""
    from deltalake import DeltaTable

    env = stack.s3.env()
    options = {k: env[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION")}
    options |= {"AWS_ENDPOINT_URL": stack.s3.endpoint, "AWS_ALLOW_HTTP": "true"}
    table = DeltaTable(f"{stack.warehouse}/booking_changes", storage_options=options)
    newest: dict[str, dict[str, Any]] = {}
    for r in table.to_pyarrow_table().to_pylist():
        if r["country"] != country:
            continue
        seen = newest.get(r["id"])
        if seen is None or r["updated_at"] > seen["updated_at"]:
            newest[r["id"]] = r
    return newest


def _text(value: Any) -> str:
    """Instants in UTC whatever their tzinfo object; money by value (``45990`` on the wire is
    ``45990.00`` in a ``decimal(18, 2)`` column)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, Decimal):
        return f"Decimal({value.normalize()})"
    return repr(value)


def _key(row: dict[str, Any]) -> tuple[Any, ...]:
    """A row as comparable text (:func:`_text`)."""
    return tuple(sorted((k, _text(v)) for k, v in row.items()))


# ---------------------------------------------------------------- the test


def _synthesize(stack: Stack, path: Path) -> Path:
    from bulkload.helpers import sim_client

    async def go() -> None:
        async with sim_client(base_url=f"{stack.sim_url}/cl") as client:
            await synthesize_upload(
                client, path, country="cl", rows=UPLOAD_ROWS, projects=2, seed=31,
                prefix=UPLOAD_PREFIX, today=SIM_TODAY, min_days_ahead=40, max_days_ahead=80,
            )  # fmt: skip

    asyncio.run(go())
    return path


def test_two_workers_share_only_object_storage_and_postgres(stack: Stack, tmp_path: Path) -> None:
    started = time.monotonic()
    machines: list[Machine] = []
    procs: list[Proc] = []
    checkout_before = _checkout_files()
    try:
        workers: list[Proc] = []
        for name in ("worker-a", "worker-b"):
            machine, env = _machine(stack, name)
            machines.append(machine)
            worker = Proc(
                name,
                [str(BIN / "prefect"), "worker", "start", "--pool", "sodtrack", "--type",
                 "process", "--name", name, "--limit", "1"],
                env,
                stack.logs,
            )  # fmt: skip
            workers.append(worker)
            procs.append(worker)
        machine, env = _machine(stack, "watcher")
        machines.append(machine)
        watcher = Proc(
            "watcher",
            [str(BIN / "sodtrack-etl"), "watch", "--interval", "0.5", "--settle", "0.5"],
            env,
            stack.logs,
        )
        procs.append(watcher)
        before = {m.name: m.files() for m in machines}
        wait_for("both workers online", lambda: _online_workers(stack), 180, *procs)
        upload = _synthesize(stack, tmp_path / "june.xlsx")
        upload_id = upload_id_for(file_sha256(upload), "cl")

        # Both countries at the same moment, and a file dropped into the S3 inbox.
        first = {c: _submit(stack, "nightly-extract/nightly-extract", {"countries": [c]})
                 for c in COUNTRIES}  # fmt: skip
        stack.s3_client().put_object(
            Bucket=stack.bucket, Key="inbox/cl/june.xlsx", Body=upload.read_bytes()
        )
        [load] = wait_for(
            "the triggered bulk-load run", lambda: _bulk_runs(stack, upload_id) or None, 240,
            *procs,
        )  # fmt: skip
        assert load.parameters["path"] == stack.url("uploads", upload_id, "june.xlsx")
        assert load.parameters["outbox"] == stack.url("outbox")
        loaded = _completed(stack, load.id, *procs)
        assert f"{UPLOAD_ROWS} created" in loaded.state.message, loaded.state.message
        outbox = stack.keys(f"outbox/{upload_id}/")
        assert any(".results." in k for k in outbox), outbox
        assert f"outbox/{upload_id}/receipt.json" in outbox
        for run_id in first.values():
            _completed(stack, run_id, *procs)

        # Again, incremental: the bookings the load created are extracted too.
        second = {c: _submit(stack, "nightly-extract/nightly-extract", {"countries": [c]})
                  for c in COUNTRIES}  # fmt: skip
        for run_id in second.values():
            _completed(stack, run_id, *procs)

        # Both workers did work, and one pair of countries ran on different workers.
        pairs = [(_taken_by(r["cl"], workers), _taken_by(r["pe"], workers))
                 for r in (first, second)]  # fmt: skip
        assert any(a != b for a, b in pairs), f"every pair ran on one worker: {pairs}"
        print(f"nightly runs (cl, pe) by worker: {pairs}; load by {_taken_by(load.id, workers)}")

        # The reports and Data Docs are on the object store, beside the tables.
        reports = stack.keys("warehouse/_reports/")
        assert len([k for k in reports if k.endswith(".json")]) == 4, reports
        docs = stack.keys("warehouse/_docs/")
        assert any(k.endswith("/index.html") for k in docs), docs[:20]
    finally:
        for p in procs:
            p.stop()

    # Every dataset equals the API, walked independently.
    for country in COUNTRIES:
        walk = Walk(stack.sim_url, country)
        expected = _expected(walk)
        for dataset, rows in expected.items():
            published = _published(stack, dataset, country)
            assert len(published) == len(rows), f"{country}/{dataset}"
            assert sorted(map(_key, published)) == sorted(map(_key, rows)), f"{country}/{dataset}"
        changes = _booking_changes(stack, country)
        bookings = {b["id"]: b for b in expected["bookings"]}
        assert set(changes) == set(bookings), f"{country}/booking_changes"
        for bid, row in changes.items():
            assert {k: row[k] for k in bookings[bid]} == bookings[bid], f"{country}/{bid}"
        if country == "cl":
            refs = [b["external_reference"] for b in expected["bookings"]]
            mine = [r for r in refs if r and r.startswith(UPLOAD_PREFIX)]
            assert len(mine) == UPLOAD_ROWS, mine
            assert len(set(mine)) == UPLOAD_ROWS, "a loaded booking exists twice"

    # No shared-folder assumption: nothing on any machine's disk outside its scratch, nothing
    # in the (read-only) checkout.
    for m in machines:
        assert m.files() == before[m.name], f"{m.name} wrote {m.files() - before[m.name]}"
    assert _checkout_files() == checkout_before
    print(f"shared nothing: {time.monotonic() - started:.0f}s")
