"""Uploads, stored uploads and results on object storage (issue #13, item 3): the same bulk
load reads a stored upload and writes its results, rejects and summary on a local folder and
on a real S3 server (moto's, on loopback), through the library and through the flow."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from bulkload.objstore_helpers import Store, make_store
from sodtrack.bulkload.run import EXIT_OK, run_load
from sodtrack.errors import ConfigurationError
from sodtrack.objstore import local_copy
from sodtrack.preflight import check_output
from sodtrack.settings import Settings
from tasks.load import RESULTS_LINK_KEY

from .conftest import Sim, clean_file


@pytest.fixture(params=["local", "s3"])
def store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sim: Sim
) -> Store:
    """Where uploads and results live; ``SODTRACK_UPLOADS``/``SODTRACK_OUTBOX`` point there."""
    place = make_store(request.param, tmp_path, monkeypatch, request)
    monkeypatch.setenv("SODTRACK_UPLOADS", place.url("uploads"))
    monkeypatch.setenv("SODTRACK_OUTBOX", place.url("outbox"))
    return place


def _stored_upload(sim: Sim, store: Store, rows: int = 12) -> str:
    """A clean file as the watcher stores it, ``<uploads>/<folder>/bookings.xlsx``."""
    local = clean_file(sim.root / "src" / "bookings.xlsx", rows=rows, projects=2)
    return store.put(local, "uploads", "upl_received", "bookings.xlsx")


def _results_rows(store: Store, url: str) -> list[dict[str, str]]:
    text = store.read(url).decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


def test_a_stored_upload_loads_and_its_results_land_in_the_outbox(sim: Sim, store: Store) -> None:
    path = _stored_upload(sim, store)

    run = asyncio.run(run_load(Settings(), path, uploaded_by="ops"))

    assert run.exit_code == EXIT_OK, run.headline()
    assert run.result.counts["created"] == 12
    assert run.result.file_name == "bookings.xlsx"
    assert str(run.out_dir) == store.url("outbox", run.upload_id)
    files = run.file_paths()
    assert set(files) == {
        "results_xlsx",
        "results_csv",
        "rejects_xlsx",
        "rejects_csv",
        "summary_json",
    }
    for where in [*files.values(), *run.latest_paths().values()]:
        assert where.startswith(store.url("outbox", run.upload_id) + "/"), where
        assert store.exists(where), where
    results = _results_rows(store, files["results_csv"])
    assert [r["outcome"] for r in results] == ["created"] * 12
    summary = json.loads(store.read(files["summary_json"]))
    assert summary["outcomes"]["created"] == 12
    assert summary["upload_id"] == run.upload_id
    if store.remote:  # as private as the bucket: no grant to everyone / any AWS user
        for where in files.values():
            assert store.public_grants(where) == [], where

    again = asyncio.run(run_load(Settings(), path, uploaded_by="ops"))
    assert again.result.counts["already_existed"] == 12
    assert again.result.run_no == 2
    rerun = _results_rows(store, again.file_paths()["results_csv"])
    assert [r["outcome"] for r in rerun] == ["already_existed"] * 12
    assert store.exists(files["results_csv"])  # the first run's answer is kept


def test_results_that_cannot_be_uploaded_make_the_run_incomplete(
    sim: Sim, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """A bucket that does not exist: the load is done, the answer is not stored; the run says
    which files were not written and ends ``5`` (re-run), never ``0``."""
    place = make_store("s3", tmp_path, monkeypatch, request)
    local = clean_file(sim.root / "src" / "bookings.xlsx", rows=4, projects=1)
    missing = place.root + "-missing/outbox"

    run = asyncio.run(run_load(Settings(), local, uploaded_by="ops", outbox=missing))

    assert run.result.counts["created"] == 4
    assert set(run.unwritten) >= {"results_xlsx", "results_csv", "summary_json"}
    assert run.exit_code == 5
    assert run.file_paths() == {}


def test_a_url_with_credentials_is_refused_without_repeating_them(tmp_path: Path) -> None:
    secret = "wJalrXUtnFEMI-not-a-real-secret"
    url = f"s3://AKIAEXAMPLE:{secret}@bucket/outbox"
    with pytest.raises(ConfigurationError) as refused:
        check_output(url, "SODTRACK_OUTBOX")
    assert secret not in str(refused.value)
    assert refused.value.setting == "SODTRACK_OUTBOX"
    with pytest.raises(ConfigurationError) as too, local_copy(url + "/x.csv"):
        pass
    assert secret not in str(too.value)


def test_a_remote_upload_longer_than_the_limit_is_not_downloaded_whole(
    sim: Sim, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    place = make_store("s3", tmp_path, monkeypatch, request)
    big = tmp_path / "big.csv"
    big.write_bytes(b"external_reference\r\n" + b"x" * 5000 + b"\r\n")
    url = place.put(big, "uploads", "u", "big.csv")
    with local_copy(url, max_bytes=1000, endpoint_url=place.endpoint) as copy:
        assert copy.stat().st_size == 1001
        folder = copy.parent
        assert folder.stat().st_mode & 0o077 == 0
    assert not folder.exists()


def _run_flow(**params: Any) -> Any:
    from flows.bulk_load import bulk_load

    return asyncio.run(bulk_load(return_state=True, **params))  # type: ignore[call-overload,arg-type]


@pytest.mark.prefect
@pytest.mark.slow
@pytest.mark.xdist_group("load-shell-prefect")  # one worker, one harness (--dist loadgroup)
def test_the_flow_reads_a_stored_upload_and_writes_results_to_the_store(
    prefect_harness: None, sim: Sim, store: Store
) -> None:
    from prefect.artifacts import Artifact

    path = _stored_upload(sim, store, rows=6)

    state = _run_flow(path=path, country="cl", upload_id="upl_received")

    assert state.is_completed(), state.message
    data = state.result()
    assert data["counts"]["created"] == 6
    assert data["out_dir"] == store.url("outbox", data["upload_id"])
    for where in data["files"].values():
        assert store.exists(where), where
    assert [r["outcome"] for r in _results_rows(store, data["files"]["results_csv"])] == [
        "created"
    ] * 6
    link = str(getattr(Artifact.get(RESULTS_LINK_KEY), "data", ""))
    target = data["files"]["results_xlsx"]
    expected = target if store.remote else Path(target).resolve().as_uri()
    assert f"]({expected})" in link


def test_watcher_and_worker_share_only_the_store_and_the_state_database(
    sim: Sim, store: Store, tmp_path: Path
) -> None:
    """The watcher stores a dropped file; a load given only the announced path (a URL on S3)
    reads it from the store and answers beside the receipt, in ``<outbox>/<upload_id>/``."""
    from sodtrack.bulkload.inbox import InboxWatcher, Registry

    local = clean_file(sim.root / "src" / "bookings.xlsx", rows=5, projects=1)
    store.put(local, "inbox", "cl", "bookings.xlsx")
    sent: list[dict[str, Any]] = []
    now = [0.0]
    watcher = InboxWatcher(
        inbox=store.url("inbox"),
        uploads=store.url("uploads"),
        outbox=store.url("outbox"),
        default_country="cl",
        registry=Registry(Settings().state_url),
        emit=sent.append,
        settle_s=1.0,
        clock=lambda: now[0],
        s3_endpoint_url=store.endpoint,
    )
    watcher.poll()
    now[0] += 2.0
    (received,) = watcher.poll()
    payload = sent[0]["payload"]

    run = asyncio.run(run_load(Settings(), payload["path"], uploaded_by="watcher"))

    assert run.upload_id == received.upload_id
    assert run.result.counts["created"] == 5
    folder = store.url("outbox", received.upload_id)
    assert store.exists(folder + "/receipt.json")
    assert all(where.startswith(folder + "/") for where in run.file_paths().values())


def test_an_outbox_the_store_refuses_fails_the_preflight_before_any_load(
    sim: Sim, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """A bucket that does not exist fails the flow's first check: nothing is loaded."""
    from sodtrack.errors import OutputNotWritable

    place = make_store("s3", tmp_path, monkeypatch, request)
    with pytest.raises(OutputNotWritable) as refused:
        check_output(place.root + "-missing/outbox", "SODTRACK_OUTBOX", endpoint_url=place.endpoint)
    assert refused.value.setting == "SODTRACK_OUTBOX"
    assert check_output(place.url("outbox"), "SODTRACK_OUTBOX", endpoint_url=place.endpoint) is None
    fs, root = place.fs()
    assert fs.find(root) == []  # the probe was removed


@pytest.mark.prefect
@pytest.mark.slow
@pytest.mark.xdist_group("load-shell-prefect")  # one worker, one harness (--dist loadgroup)
def test_the_flow_with_an_unwritable_outbox_fails_before_loading(
    prefect_harness: None,
    sim: Sim,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    place = make_store("s3", tmp_path, monkeypatch, request)
    path = _stored_upload(sim, place, rows=3)

    state = _run_flow(path=path, country="cl", outbox=place.root + "-missing/outbox")

    assert state.is_failed()
    assert "configuration error" in str(state.message)
    assert "SODTRACK_OUTBOX" in str(state.message) or "outbox" in str(state.message)
    assert sim.writes() == {}
