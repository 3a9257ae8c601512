"""The ``bulk-load`` flow under ``prefect_test_harness`` against a loopback simulator:
final states, the state's data, artifacts, results files; task logic through ``.fn``."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from prefect.logging import disable_run_logger

from flows.bulk_load import ROWS_REJECTED
from tasks.load import (
    COUNTS_KEY,
    REJECTED_KEY,
    REJECTS_LINK_KEY,
    RESULTS_LINK_KEY,
    SUMMARY_KEY,
    progress_percent,
    read_upload_task,
)

from .conftest import Sim, clean_file, file_with_rejects


def _run(**params: Any) -> Any:
    from flows.bulk_load import bulk_load

    return asyncio.run(bulk_load(return_state=True, **params))  # type: ignore[call-overload,arg-type]


def _table(key: str) -> list[dict[str, Any]]:
    from prefect.artifacts import Artifact
    from prefect.client.schemas.objects import Artifact as ArtifactResponse

    artifact = Artifact.get(key)
    assert isinstance(artifact, ArtifactResponse), key
    data = json.loads(artifact.data) if isinstance(artifact.data, str) else artifact.data
    assert isinstance(data, list)
    return data


def _flow_run(state: Any) -> Any:
    """The flow run as the server has it (name, final state): what the runs list shows."""
    from prefect.client.orchestration import get_client

    async def read() -> Any:
        async with get_client() as client:
            return await client.read_flow_run(state.state_details.flow_run_id)

    return asyncio.run(read())


def _run_artifacts(state: Any) -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    async def read() -> list[Any]:
        async with get_client() as client:
            ids = ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])
            return list(
                await client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ids))
            )

    return asyncio.run(read())


def _text(key: str) -> str:
    from prefect.artifacts import Artifact
    from prefect.client.schemas.objects import Artifact as ArtifactResponse

    artifact = Artifact.get(key)
    assert isinstance(artifact, ArtifactResponse), key
    return str(artifact.data)


@pytest.mark.prefect
@pytest.mark.slow
@pytest.mark.xdist_group("load-shell-prefect")  # one worker, one harness (--dist loadgroup)
def test_clean_file_completes_with_artifacts(prefect_harness: None, sim: Sim) -> None:
    path = clean_file(sim.root / "inbox" / "bookings.xlsx", rows=12, projects=2)
    state = _run(path=str(path), country="cl")
    assert state.is_completed(), state.message
    data = state.result()
    assert data["accounted_for"] is True
    assert data["rejected"] == 0
    assert data["exit_code"] == 0
    assert data["counts"]["created"] == 12
    assert "all 12 rows accounted for" in state.message
    assert "every row created, updated or already existed" in state.message
    upload_id = data["upload_id"]
    assert Path(data["out_dir"]) == sim.outbox / upload_id
    for file in data["files"].values():
        assert Path(file).exists(), file

    assert upload_id in _text(SUMMARY_KEY)
    counts = {r["outcome"]: r["rows"] for r in _table(COUNTS_KEY)}
    assert counts["created"] == 12
    assert counts["rejected"] == 0
    assert "every row was created" in json.dumps(_table(REJECTED_KEY))
    link = _text(RESULTS_LINK_KEY)  # markdown: [name](file:///…/name)
    url = link[link.index("](") + 2 : -1]
    assert url == Path(data["files"]["results_xlsx"]).resolve().as_uri()

    kinds = {a.type: a for a in _run_artifacts(state)}
    assert {"markdown", "table", "progress"} <= set(kinds)  # a link artifact is markdown
    assert float(kinds["progress"].data) == 100.0

    again = _run(path=str(path), country="cl", upload_id=upload_id)
    assert again.is_completed(), again.message
    assert again.result()["counts"]["already_existed"] == 12


@pytest.mark.prefect
@pytest.mark.slow
@pytest.mark.xdist_group("load-shell-prefect")  # one worker, one harness (--dist loadgroup)
def test_rejected_rows_end_in_their_own_state_and_say_so(prefect_harness: None, sim: Sim) -> None:
    """Every row answered, some rejected: ``Completed`` named "Rows rejected" (not a crash,
    nothing to re-run), the counts in the message; the run named after the upload."""
    sample = file_with_rejects(sim.root / "inbox" / "sample.xlsx")
    writes = sim.writes()
    dry = _run(path=str(sample.path), dry_run=True, outbox=str(sim.root / "elsewhere"))
    assert dry.is_completed(), dry.message
    assert dry.name == ROWS_REJECTED
    assert _flow_run(dry).name == "bulk-load-default-sample.xlsx-dry"
    assert sim.writes() == writes, "a dry run creates nothing"
    dry_data = dry.result(raise_on_failure=False)
    assert dry_data["dry_run"] is True
    assert dry_data["rejected"] == 3
    assert dry_data["counts"]["would_create"] == sample.rows - 3
    assert Path(dry_data["out_dir"]).parent == sim.root / "elsewhere"

    state = _run(
        path=str(sample.path), country="cl", uploaded_by="ops@example.com", upload_id="upl_x"
    )
    assert state.is_completed(), state.message
    assert state.name == ROWS_REJECTED
    run = _flow_run(state)
    assert run.name == "bulk-load-cl-upl_x"
    assert run.state is not None
    assert (run.state.type.value, run.state.name) == ("COMPLETED", ROWS_REJECTED)
    assert "3 rejected, 0 skipped, 0 failed (transient)" in state.message
    assert f"all {sample.rows} rows accounted for" in state.message
    data = state.result(raise_on_failure=False)
    assert data["accounted_for"] is True
    assert data["rejected"] == data["needs_a_person"] == 3
    assert data["exit_code"] == 4
    assert data["counts"]["created"] == sample.rows - 3

    rejected = _table(REJECTED_KEY)
    assert {r["external_reference"] for r in rejected} == set(sample.bad)
    assert all(r["message"] and r["suggested_fix"] for r in rejected)
    assert _text(REJECTS_LINK_KEY).endswith(".rejects.xlsx)")
    summary = _text(SUMMARY_KEY)
    assert "**rejected**: 3" in summary
    assert "exit code** 4" in summary


def test_progress_percent() -> None:
    assert progress_percent("validate", 0, 10) == 0.0
    assert progress_percent("validate", 10, 10) == 5.0
    assert progress_percent("load", 0, 4) == 5.0
    assert progress_percent("load", 2, 4) == 52.5
    assert progress_percent("load", 4, 4) == 100.0
    assert progress_percent("load", 0, 0) == 100.0


def test_read_task_logic(tmp_path: Path) -> None:
    path = tmp_path / "b.csv"
    path.write_text("external_reference,service_sku\nR-1,SKU-1\n", encoding="utf-8")
    with disable_run_logger():
        parsed = read_upload_task.fn(str(path), "CL")
    assert parsed.country == "cl"
    assert parsed.has_upload_errors  # required columns missing: a file-level error


@pytest.mark.prefect
@pytest.mark.slow
@pytest.mark.xdist_group("load-shell-prefect")  # one worker, one harness (--dist loadgroup)
def test_a_load_past_its_task_timeout_ends_timed_out(
    prefect_harness: None, sim: Sim, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``SODTRACK_TASK_TIMEOUT_S`` bounds the ``load-upload`` task (a deadline already past
    when the task starts: no waiting, no timing); nothing is created, the run fails."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    path = clean_file(sim.root / "inbox" / "late.xlsx", rows=4, projects=1)
    monkeypatch.setenv("SODTRACK_TASK_TIMEOUT_S", "0.000001")
    writes = sim.writes()
    state = _run(path=str(path), country="cl")
    assert state.is_failed()
    assert sim.writes() == writes

    async def task_states() -> dict[str, str]:
        async with get_client() as client:
            ids = FlowRunFilterId(any_=[state.state_details.flow_run_id])
            runs = await client.read_task_runs(flow_run_filter=FlowRunFilter(id=ids))
            return {r.name.rsplit("-", 1)[0]: str(r.state.name) for r in runs if r.state}

    # Prefect 3 records task runs from events, a moment after the flow's state: look until the
    # task run is there (bounded), then assert on it.
    states: dict[str, str] = {}
    for _ in range(120):
        states = asyncio.run(task_states())
        if "load-upload" in states:
            break
        time.sleep(0.25)
    assert states.get("load-upload") == "TimedOut", states
