"""The inbox's ``check/`` folders (a dry run announced as such), and the watcher following the
flow run an upload started: logged, and written into ``receipt.json``."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

from sodtrack.bulkload.engine.ledger import upload_id_for
from sodtrack.bulkload.inbox import RunInfo, bulk_load_run_name, place_of

from .test_inbox import Box, polls, xlsx_bytes


@pytest.fixture
def box(tmp_path: Path) -> Box:
    return Box(tmp_path)


@pytest.mark.parametrize(
    ("relative", "place"),
    [
        ("x.xlsx", ("cl", False)),
        ("pe/x.xlsx", ("pe", False)),
        ("check/x.xlsx", ("cl", True)),
        ("pe/check/x.xlsx", ("pe", True)),
        ("PE/Check/x.xlsx", ("pe", True)),
        ("check/pe/x.xlsx", None),
        ("archive/check/x.xlsx", None),
        ("pe/old/x.xlsx", None),
    ],
)
def test_place_of_a_file(relative: str, place: tuple[str, bool] | None) -> None:
    assert place_of(relative, "cl") == place


def test_run_names() -> None:
    assert bulk_load_run_name("cl", "upl_cl_1") == "bulk-load-cl-upl_cl_1"
    assert bulk_load_run_name("cl", "upl_cl_1-dry", dry_run=True) == "bulk-load-cl-upl_cl_1-dry"
    assert bulk_load_run_name("pe", "a.xlsx", dry_run=True) == "bulk-load-pe-a.xlsx-dry"


def test_a_file_in_a_check_folder_is_announced_check_only(box: Box) -> None:
    data = xlsx_bytes("check")
    box.drop("pe/check/june.xlsx", data)
    [checked] = polls(box.watcher(), box.clock)
    sha = hashlib.sha256(data).hexdigest()
    assert checked.upload_id == upload_id_for(sha, "pe", dry_run=True)
    assert checked.check_only
    [event] = box.events.sent
    assert event["payload"]["check_only"] is True
    assert event["payload"]["country"] == "pe"
    receipt = json.loads((box.outbox / checked.upload_id / "receipt.json").read_text())
    assert receipt["check_only"] is True
    assert "nothing is created" in receipt["note"]

    # the same bytes dropped for real afterwards are a new upload, loaded for real
    box.drop("pe/june.xlsx", data)
    [real] = polls(box.watcher(), box.clock)
    assert real.upload_id == upload_id_for(sha, "pe")
    assert not real.check_only
    assert box.events.sent[-1]["payload"]["check_only"] is False


class Runs:
    """A fake Prefect API for the lookup: the run appears, runs, then ends."""

    def __init__(self) -> None:
        self.runs: dict[str, RunInfo] = {}
        self.asked: list[str] = []

    def __call__(self, name: str) -> RunInfo | None:
        self.asked.append(name)
        return self.runs.get(name)


def test_the_watcher_logs_the_run_it_started_and_records_its_end(
    box: Box, caplog: pytest.LogCaptureFixture
) -> None:
    runs = Runs()
    watcher = box.watcher()
    watcher.lookup = runs
    box.drop("cl/june.xlsx", xlsx_bytes("follow"))
    with caplog.at_level(logging.INFO, logger="sodtrack.bulkload.inbox"):
        [received] = polls(watcher, box.clock)
        name = f"bulk-load-cl-{received.upload_id}"
        assert runs.asked == [name]  # asked once, right after the event was accepted
        assert f"upload {received.upload_id}: event sodtrack.upload.received accepted" in (
            caplog.text
        )
        receipt_path = box.outbox / received.upload_id / "receipt.json"
        assert "flow_run" not in json.loads(receipt_path.read_text())

        running = RunInfo("r-1", name, "RUNNING", "Running", None, "http://ui/runs/flow-run/r-1")
        runs.runs[name] = running
        polls(watcher, box.clock, 1)
        assert f"started flow run {name} (r-1) http://ui/runs/flow-run/r-1" in caplog.text
        assert json.loads(receipt_path.read_text())["flow_run"] == {
            "id": "r-1",
            "name": name,
            "url": "http://ui/runs/flow-run/r-1",
            "state": "Running",
            "state_type": "RUNNING",
            "message": None,
            "final": False,
        }

        message = f"{received.upload_id}: all 9 rows accounted for; 2 rejected"
        runs.runs[name] = RunInfo("r-1", name, "COMPLETED", "Rows rejected", message, running.url)
        polls(watcher, box.clock, 1)
        assert f"flow run {name} ended Rows rejected: {message}" in caplog.text
        ended = json.loads(receipt_path.read_text())["flow_run"]
        assert (ended["state"], ended["state_type"], ended["final"]) == (
            "Rows rejected",
            "COMPLETED",
            True,
        )
        assert ended["message"] == message
        asked = len(runs.asked)
        polls(watcher, box.clock, 2)
        assert len(runs.asked) == asked, "a run that ended is not looked up again"


def test_a_lookup_that_fails_is_retried_at_the_next_poll(box: Box) -> None:
    calls: list[str] = []

    def down(name: str) -> RunInfo | None:
        calls.append(name)
        raise httpx.ConnectError("prefect is down")

    watcher = box.watcher()
    watcher.lookup = down
    box.drop("cl/a.xlsx", xlsx_bytes("down"))
    polls(watcher, box.clock, 4)
    assert len(calls) == 3  # the poll that announced it, then each later poll


def test_the_run_lookup_asks_prefect_by_name() -> None:
    from sodtrack.bulkload.inbox import PrefectRunLookup

    seen: list[httpx.Request] = []
    answer: list[dict[str, Any]] = [
        {
            "id": "0b1",
            "name": "bulk-load-cl-upl_cl_1",
            "state": {"type": "COMPLETED", "name": "Rows rejected", "message": "2 rejected"},
        }
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=answer if len(seen) == 1 else [])

    lookup = PrefectRunLookup(
        "http://prefect:4200/api/",
        ui_url="http://prefect:4200/",
        api_key="k",
        transport=httpx.MockTransport(handler),
    )
    run = lookup("bulk-load-cl-upl_cl_1")
    assert run == RunInfo(
        "0b1",
        "bulk-load-cl-upl_cl_1",
        "COMPLETED",
        "Rows rejected",
        "2 rejected",
        "http://prefect:4200/runs/flow-run/0b1",
    )
    assert run.final
    assert lookup("bulk-load-cl-upl_cl_2") is None
    assert str(seen[0].url) == "http://prefect:4200/api/flow_runs/filter"
    body = json.loads(seen[0].content)
    assert body["flow_runs"] == {"name": {"any_": ["bulk-load-cl-upl_cl_1"]}}
    assert body["limit"] == 1
    assert seen[0].headers["authorization"] == "Bearer k"
    lookup.close()


def test_a_second_drop_keeps_the_first_runs_record(box: Box) -> None:
    runs = Runs()
    watcher = box.watcher()
    watcher.lookup = runs
    data = xlsx_bytes("again")
    box.drop("cl/a.xlsx", data)
    [received] = polls(watcher, box.clock)
    name = f"bulk-load-cl-{received.upload_id}"
    runs.runs[name] = RunInfo("r-9", name, "COMPLETED", "Completed", "ok", None)
    polls(watcher, box.clock, 1)
    box.drop("cl/a (copy).xlsx", data)
    assert polls(watcher, box.clock) == []
    receipt = json.loads((box.outbox / received.upload_id / "receipt.json").read_text())
    assert receipt["drops"] == 2
    assert receipt["flow_run"]["id"] == "r-9"
    assert receipt["flow_run"]["state"] == "Completed"


def test_a_reader_never_sees_half_a_receipt(box: Box) -> None:
    """``receipt.json`` is what operations (and their scripts, and the end-to-end tests)
    poll while the watcher rewrites it at each change of the run it follows: every read
    finds the whole previous or the whole next receipt, never an empty or cut file (an end
    to end run once read ``""`` there mid-rewrite). The file stays owner-only."""
    import stat
    import threading

    runs = Runs()
    watcher = box.watcher()
    watcher.lookup = runs
    box.drop("cl/june.xlsx", xlsx_bytes("reader"))
    [received] = polls(watcher, box.clock)
    name = f"bulk-load-cl-{received.upload_id}"
    receipt_path = box.outbox / received.upload_id / "receipt.json"
    torn: list[str] = []
    reads = 0
    done = threading.Event()

    def read_until_done() -> None:
        nonlocal reads
        while not done.is_set():
            try:
                text = receipt_path.read_text()
            except FileNotFoundError:
                torn.append("<missing>")
                continue
            reads += 1
            try:
                json.loads(text)["upload_id"]
            except (ValueError, KeyError):
                torn.append(text[:40])

    reader = threading.Thread(target=read_until_done)
    reader.start()
    try:
        for i in range(300):  # each poll sees a new message: the receipt is rewritten
            runs.runs[name] = RunInfo("r-1", name, "RUNNING", "Running", f"step {i}", None)
            watcher.poll()
    finally:
        done.set()
        reader.join()
    assert reads > 0
    assert torn == [], f"{len(torn)} of {reads + len(torn)} reads saw a torn receipt"
    assert json.loads(receipt_path.read_text())["flow_run"]["message"] == "step 299"
    assert stat.S_IMODE(receipt_path.stat().st_mode) == 0o600
