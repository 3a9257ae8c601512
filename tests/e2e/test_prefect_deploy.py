"""End to end on a real Prefect server: deploy from ``prefect.yaml``, run with a process worker.

One Prefect server (a subprocess, its own ``PREFECT_HOME``) and one simulator serving Chile
and Peru (``sodtrack-sim serve --country cl --country pe``) serve the whole module;
``sodtrack-etl prefect deploy`` (``prefect --no-prompt deploy --all``, then the schedules of
the countries served, ``SODTRACK_COUNTRIES=cl,pe``, on) runs from the checkout, as an
operator would, and ``sodtrack-etl prefect secret --from-env`` creates the Secret block. Each
variant (the state store on SQLite, then on PostgreSQL) starts its own process worker and
inbox watcher with the environment its flow runs inherit, and checks, all at once:

* ``nightly-extract`` for ``["cl", "pe"]`` completes and both countries are in the warehouse;
  the client secret comes from a Prefect ``Secret`` block (the environment holds a wrong one);
* two more nightly runs of Chile submitted at the same moment complete, and the three runs'
  Chile tasks never overlap in time (the ``nightly:cl`` lock in the state store);
* a spreadsheet dropped into ``<inbox>/cl/`` (written under a temporary name, then renamed)
  triggers ``bulk-load`` through the ``sodtrack.upload.received`` event; the run completes
  and its results file lands in ``<outbox>/<upload_id>/``; the run is named
  ``bulk-load-cl-<upload_id>`` and the watcher writes its id, link and final state into
  ``receipt.json``; the same bytes dropped again start no second run; dropped into
  ``<inbox>/cl/check/`` they start a dry run (``check_only``) that creates nothing;
* two ``bulk-load`` runs of one file submitted at the same moment both complete, one creating
  the rows and the other finding them (the ``load:<sha256>`` lock), and the simulator holds
  each booking once.

The PostgreSQL variant skips, saying so, when ``SODTRACK_TEST_POSTGRES_URL`` is unset, and
fails instead under ``SODTRACK_REQUIRE_POSTGRES=1`` (``.ci/run`` starts a throwaway server
with ``scripts/postgres.sh`` and sets both).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from orchestration.pg import drop_database, fresh_postgres_database, require_postgres

from e2e.procs import (
    BIN,
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
from sodtrack.contract.countries import COUNTRIES
from sodtrack.simulator.testing import SIM_NOW

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(1200),
    pytest.mark.xdist_group("prefect-e2e"),  # both variants share one server (--dist loadgroup)
]

SIM_TODAY = date.fromisoformat(SIM_NOW[:10])
RUN_TIMEOUT_S = 420.0
SECRET_BLOCK = "sodtrack-client-secret"
SIM_ARGS = [
    *("--country", "cl", "--country", "pe", "--now", SIM_NOW, "--rate-limit", "0"),
    *("--bookings", "300", "--services", "40", "--variants", "80", "--zones", "8"),
    *("--postal-codes", "300", "--log-level", "warning"),
]


# ---------------------------------------------------------------- the shared stack


@dataclass
class Stack:
    api_url: str
    sim_url: str
    prefect_env: dict[str, str]
    logs: Path
    deployments: dict[str, Any]
    deploy_output: str = ""
    schedules_after_deploy: dict[str, bool] = field(default_factory=dict)

    def client(self) -> Any:
        from prefect.client.orchestration import get_client

        return get_client(sync_client=True)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    base = tmp_path_factory.mktemp("prefect-e2e")
    logs = base / "logs"
    logs.mkdir()
    port, sim_port = free_port(), free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = prefect_env(base, port)
    started = time.monotonic()
    procs: list[Proc] = []
    try:
        sim = Proc(
            "simulator",
            [str(BIN / "sodtrack-sim"), "serve", *SIM_ARGS, "--port", str(sim_port)],
            clean_env(),
            logs,
        )
        procs.append(sim)

        start_prefect_server(env, logs, procs)
        print(f"prefect server healthy after {time.monotonic() - started:.0f}s")
        sim_url = f"http://127.0.0.1:{sim_port}"
        wait_for("the simulator", lambda: http_ok(f"{sim_url}/pe/_sim/health"), 120, sim)
        create_work_pool(env)
        admin_env = env | {"SODTRACK_COUNTRIES": "cl,pe", "SODTRACK_ENV_FILE": "none"}
        deployed = run_cli([str(BIN / "sodtrack-etl"), "prefect", "deploy"], admin_env)
        print(f"deployed after {time.monotonic() - started:.0f}s")
        secret_env = admin_env | {
            "SODTRACK_CLIENT_SECRET": "sim-secret",
            "SODTRACK_CLIENT_SECRET_BLOCK": SECRET_BLOCK,
        }
        saved = run_cli([str(BIN / "sodtrack-etl"), "prefect", "secret", "--from-env"], secret_env)
        assert "sim-secret" not in saved
        with temporary_settings(updates={PREFECT_API_URL: api_url}):
            stack = Stack(api_url, sim_url, env, logs, {}, deployed)
            with stack.client() as client:
                for name in ("nightly-extract/nightly-extract", "bulk-load/bulk-load"):
                    stack.deployments[name] = client.read_deployment_by_name(name)
                nightly = stack.deployments["nightly-extract/nightly-extract"]
                # The schedules are real (pinned in tests/orchestration); once their state
                # after the deploy is recorded, pause them so a 02:00 somewhere during the
                # test does not start an extra run.
                for s in client.read_deployment_schedules(nightly.id):
                    stack.schedules_after_deploy[s.slug or ""] = s.active
                    client.update_deployment_schedule(nightly.id, s.id, active=False)
            yield stack
    finally:
        for p in reversed(procs):
            p.stop()


def test_deployments_as_declared(stack: Stack) -> None:
    nightly = stack.deployments["nightly-extract/nightly-extract"]
    load = stack.deployments["bulk-load/bulk-load"]
    assert nightly.entrypoint == "flows.nightly.nightly"
    assert load.entrypoint == "flows.bulk_load.bulk_load"
    assert nightly.work_pool_name == load.work_pool_name == "sodtrack"
    from tasks.deploy import checkout_revision

    revision = checkout_revision()
    assert nightly.version == load.version == revision
    assert nightly.pull_steps == [
        {"tasks.deploy.set_project_directory": {"expected_revision": revision}}
    ]
    assert stack.schedules_after_deploy == {f"nightly-{c}": c in ("cl", "pe") for c in COUNTRIES}, (
        stack.deploy_output
    )
    schedules = {
        s.schedule.timezone: (s.schedule.cron, s.parameters["countries"]) for s in nightly.schedules
    }
    assert schedules == {c.time_zone: ("0 2 * * *", [c.code]) for c in COUNTRIES.values()}
    assert load.schedules == []


# ---------------------------------------------------------------- helpers of a variant


def _submit(stack: Stack, name: str, parameters: dict[str, Any]) -> uuid.UUID:
    run_id: uuid.UUID = submit_run(stack.client, stack.deployments[name].id, parameters)
    return run_id


def _final(stack: Stack, run_id: uuid.UUID, *procs: Proc) -> Any:
    return final_run(stack.client, run_id, RUN_TIMEOUT_S, *procs)


def _assert_completed(run: Any, *procs: Proc) -> None:
    if run.state_type.value != "COMPLETED":
        pytest.fail(
            f"{run.name}: {run.state_type.value} — {run.state.message}\n"
            + "\n".join(p.tail(120) for p in procs)
        )


def _task_intervals(stack: Stack, parents: list[uuid.UUID], country: str) -> dict[Any, Any]:
    """The span of each run's family tasks (``stage-…``, ``check-…``) of ``country``, by
    subflow run."""
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        FlowRunFilterParentFlowRunId,
    )

    with stack.client() as client:
        subflows = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=parents)
            )
        )
        mine = [f.id for f in subflows if f.name.startswith(f"extract-{country}-")]
        tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=mine)))
    spans: dict[Any, Any] = {}
    for t in tasks:
        if not t.name.endswith(f"-{country}") or t.start_time is None or t.end_time is None:
            continue
        lo, hi = spans.get(t.flow_run_id, (t.start_time, t.end_time))
        spans[t.flow_run_id] = (min(lo, t.start_time), max(hi, t.end_time))
    return spans


def _bulk_runs(stack: Stack, upload_id: str) -> list[Any]:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterDeploymentId

    load = stack.deployments["bulk-load/bulk-load"]
    with stack.client() as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(deployment_id=FlowRunFilterDeploymentId(any_=[load.id]))
        )
    return [r for r in runs if r.parameters.get("upload_id") == upload_id]


def _synthesize(stack: Stack, path: Path, *, seed: int, prefix: str, days: tuple[int, int]) -> Path:
    from bulkload.helpers import sim_client

    async def go() -> None:
        async with sim_client(base_url=f"{stack.sim_url}/cl") as client:
            await synthesize_upload(
                client,
                path,
                country="cl",
                rows=12,
                projects=2,
                seed=seed,
                prefix=prefix,
                today=SIM_TODAY,
                min_days_ahead=days[0],
                max_days_ahead=days[1],
            )

    asyncio.run(go())
    return path


def _bookings_by_reference(stack: Stack) -> dict[str, int]:
    response = httpx.get(f"{stack.sim_url}/cl/_sim/export/bookings", timeout=60)
    response.raise_for_status()
    counts: dict[str, int] = {}
    for line in response.text.splitlines():
        if line.strip():
            ref = json.loads(line).get("external_reference")
            if ref:
                counts[ref] = counts.get(ref, 0) + 1
    return counts


# ---------------------------------------------------------------- the variants


@dataclass(frozen=True)
class Variant:
    name: str
    seed: int
    days: tuple[int, int, int]
    """Three day offsets: the inbox file's slots in [0, 1), the double-load file's in [1, 2)."""


def _variant(stack: Stack, tmp_path: Path, v: Variant, state_url: str) -> None:
    started = time.monotonic()
    data = tmp_path / "data"
    inbox, uploads, outbox = data / "inbox", data / "uploads", data / "outbox"
    env = stack.prefect_env | {
        "PREFECT_WORKER_QUERY_SECONDS": "2",
        "PREFECT_WORKER_PREFETCH_SECONDS": "5",
        "SODTRACK_BASE_URL": stack.sim_url + "/{country}",
        "SODTRACK_WAREHOUSE": str(data / "warehouse"),
        "SODTRACK_STATE_URL": state_url,
        "SODTRACK_INBOX": str(inbox),
        "SODTRACK_UPLOADS": str(uploads),
        "SODTRACK_OUTBOX": str(outbox),
        "SODTRACK_RATE_LIMIT_PER_S": "1000",
        # Wrong on purpose: the flows must take the secret from the Prefect Secret block.
        "SODTRACK_CLIENT_SECRET": "not-the-secret",
        "SODTRACK_CLIENT_SECRET_BLOCK": SECRET_BLOCK,
    }
    logs = stack.logs / v.name
    logs.mkdir()
    worker = Proc(
        "worker",
        [str(BIN / "prefect"), "worker", "start", "--pool", "sodtrack", "--type", "process"],
        env,
        logs,
    )
    watcher = Proc(
        "watcher",
        [str(BIN / "sodtrack-etl"), "watch", "--interval", "0.5", "--settle", "0.5"],
        env,
        logs,
    )
    procs = (worker, watcher)
    try:
        inbox_file = _synthesize(
            stack, tmp_path / "june.xlsx", seed=v.seed, prefix=f"E2E{v.name[:2].upper()}A",
            days=(v.days[0], v.days[1]),
        )  # fmt: skip
        twice_file = _synthesize(
            stack, tmp_path / "twice.xlsx", seed=v.seed + 1,
            prefix=f"E2E{v.name[:2].upper()}B", days=(v.days[1], v.days[2]),
        )  # fmt: skip
        # Everything at once: the worker runs them side by side.
        both = _submit(stack, "nightly-extract/nightly-extract", {"countries": ["cl", "pe"]})
        chile = [
            _submit(
                stack,
                "nightly-extract/nightly-extract",
                {"countries": ["cl"], "datasets": ["catalog"]},
            )
            for _ in range(2)
        ]
        twice = [
            _submit(stack, "bulk-load/bulk-load", {"path": str(twice_file), "country": "cl"})
            for _ in range(2)
        ]
        wait_for("the inbox folders", lambda: (inbox / "cl").is_dir() or None, 120, watcher)
        part = inbox / "cl" / "june.xlsx.part"
        shutil.copyfile(inbox_file, part)  # written under a temporary name…
        part.rename(inbox / "cl" / "june.xlsx")  # …then renamed: complete
        upload_id = upload_id_for(file_sha256(inbox_file), "cl")

        # The upload: one triggered bulk-load run, its results in the outbox.
        triggered = wait_for(
            "the triggered bulk-load run", lambda: _bulk_runs(stack, upload_id) or None, 180,
            *procs,
        )  # fmt: skip
        assert len(triggered) == 1
        assert triggered[0].parameters["path"] == str(uploads / upload_id / "june.xlsx")
        assert triggered[0].parameters["outbox"] == str(outbox)
        assert triggered[0].parameters["dry_run"] is False
        load_run = _final(stack, triggered[0].id, *procs)
        _assert_completed(load_run, *procs)
        # named when it starts on the worker (the server gives a random name until then)
        assert load_run.name == f"bulk-load-cl-{upload_id}"
        assert "12 created" in load_run.state.message

        def followed() -> dict[str, Any] | None:
            receipt = json.loads((outbox / upload_id / "receipt.json").read_text())
            run = receipt.get("flow_run") or {}
            return run if run.get("final") else None

        recorded = wait_for("the run's final state in receipt.json", followed, 60, watcher)
        assert recorded["id"] == str(load_run.id)
        assert recorded["name"] == f"bulk-load-cl-{upload_id}"
        assert recorded["state"] == "Completed"
        assert recorded["url"].endswith(f"/runs/flow-run/{load_run.id}")
        watcher_log = watcher.log_path.read_text()
        assert f"upload {upload_id}: event sodtrack.upload.received accepted" in watcher_log
        assert f"started flow run bulk-load-cl-{upload_id} ({load_run.id})" in watcher_log
        results = sorted(p.name for p in (outbox / upload_id).glob("*.results.*"))
        assert results, f"no results file in {outbox / upload_id}"
        assert not (inbox / "cl" / "june.xlsx").exists()
        # The same bytes again, under another name: received, recognised, not loaded again.
        shutil.copyfile(inbox_file, inbox / "cl" / "june (again).xlsx")
        wait_for(
            "the second drop to be taken",
            lambda: None if (inbox / "cl" / "june (again).xlsx").exists() else True,
            60,
            watcher,
        )
        receipt = json.loads((outbox / upload_id / "receipt.json").read_text())
        assert receipt["drops"] == 2

        # The same bytes into cl/check/: a check only, a dry run that creates nothing. The two
        # runs of the other file, submitted at the start, must have ended first: bookings they
        # create while the check runs would look like the check's.
        for run_id in twice:
            _final(stack, run_id, *procs)
        before_check = _bookings_by_reference(stack)
        (inbox / "cl" / "check").mkdir()
        shutil.copyfile(inbox_file, inbox / "cl" / "check" / "june.xlsx")
        check_id = upload_id_for(file_sha256(inbox_file), "cl", dry_run=True)
        [checking] = wait_for(
            "the check-only run", lambda: _bulk_runs(stack, check_id) or None, 180, *procs
        )
        assert checking.parameters["dry_run"] is True
        checked = _final(stack, checking.id, *procs)
        _assert_completed(checked, *procs)
        assert checked.name == f"bulk-load-cl-{check_id}"
        assert "all 12 rows accounted for" in checked.state.message, checked.state.message
        assert _bookings_by_reference(stack) == before_check, "a check created something"

        # Nightly: both countries published, with the secret from the block.
        run = _final(stack, both, *procs)
        _assert_completed(run, *procs)
        assert run.name.startswith("nightly-cl-pe-20"), run.name
        from sodtrack.warehouse import Warehouse

        wh = Warehouse(str(data / "warehouse"))
        for dataset in ("services", "coverage_zones", "bookings"):
            table = wh.read_current(dataset).to_table(columns=["country"])
            countries = set(table["country"].to_pylist())
            assert countries == {"cl", "pe"}, dataset
        assert list((data / "reports").glob("nightly-*.json"))
        assert list((data / "docs").iterdir()), "no Data Docs"

        # Two more Chile runs at the same moment: they and the first took turns.
        for run_id in chile:
            _assert_completed(_final(stack, run_id, *procs), *procs)
        spans = sorted(_task_intervals(stack, [both, *chile], "cl").values())
        assert len(spans) == 3, spans
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert end <= start, f"two Chile extractions overlapped: {spans}"

        # Two loads of one file at the same moment: both complete, one created, once.
        messages = []
        for run_id in twice:
            done = _final(stack, run_id, *procs)
            _assert_completed(done, *procs)
            messages.append(done.state.message)
        assert sorted("12 created" in m for m in messages) == [False, True], messages
        assert any("12 already_existed" in m for m in messages), messages
        counts = _bookings_by_reference(stack)
        assert counts
        assert max(counts.values()) == 1, "a booking was created twice"
        assert len(_bulk_runs(stack, upload_id)) == 1, "the second drop started a load"
        print(f"{v.name}: {time.monotonic() - started:.0f}s")
    finally:
        for p in procs:
            p.stop()


def test_sqlite_state_store(stack: Stack, tmp_path: Path) -> None:
    _variant(stack, tmp_path, Variant("sqlite", 11, (30, 60, 90)), f"sqlite:///{tmp_path}/state.db")


def test_postgres_state_store(stack: Stack, tmp_path: Path) -> None:
    url, admin = fresh_postgres_database(require_postgres())
    try:
        _variant(stack, tmp_path, Variant("postgres", 21, (100, 135, 170)), url)
    finally:
        drop_database(admin, url)
