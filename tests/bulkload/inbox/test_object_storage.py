"""The watcher with its inbox, stored uploads and receipts on a local folder and on a real S3
server (moto's, on loopback): the same behaviour, the same tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bulkload.objstore_helpers import Store, make_store
from sodtrack.bulkload.engine.ledger import upload_id_for
from sodtrack.bulkload.inbox import InboxWatcher, Registry
from sodtrack.objstore import filesystem

from .test_inbox import Clock, Events, polls, xlsx_bytes


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    return make_store(request.param, tmp_path, monkeypatch, request)


def _watcher(store: Store, tmp_path: Path, events: Events, clock: Clock) -> InboxWatcher:
    return InboxWatcher(
        inbox=store.url("inbox"),
        uploads=store.url("uploads"),
        outbox=store.url("outbox"),
        default_country="cl",
        registry=Registry(f"sqlite:///{tmp_path / 'state.db'}"),
        emit=events,
        settle_s=1.0,
        clock=clock,
        s3_endpoint_url=store.endpoint,
    )


def _drop(store: Store, relative: str, data: bytes) -> None:
    fs, _ = filesystem(store.url("inbox", relative), endpoint_url=store.endpoint)
    target = fs._strip_protocol(store.url("inbox", relative))
    fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
    fs.pipe_file(target, data)


def test_a_dropped_file_is_stored_received_and_announced_once(store: Store, tmp_path: Path) -> None:
    events, clock = Events(), Clock()
    watcher = _watcher(store, tmp_path, events, clock)
    data = xlsx_bytes("R-1")
    _drop(store, "cl/bookings.xlsx", data)

    taken = polls(watcher, clock)

    assert len(taken) == 1
    received = taken[0]
    upload_id = upload_id_for(received.sha256, "cl")
    assert received.upload_id == upload_id
    assert received.path == store.url("uploads", upload_id, "bookings.xlsx")
    assert store.read(received.path) == data
    assert not store.exists(store.url("inbox", "cl", "bookings.xlsx"))
    receipt = json.loads(store.read(store.url("outbox", upload_id, "receipt.json")))
    assert receipt["upload_id"] == upload_id
    assert receipt["stored_as"] == received.path
    assert [e["payload"]["path"] for e in events.sent] == [received.path]
    if store.remote:
        assert store.public_grants(received.path) == []
        assert store.public_grants(store.url("outbox", upload_id, "receipt.json")) == []
    else:
        assert Path(received.path).stat().st_mode & 0o077 == 0

    _drop(store, "cl/bookings.xlsx", data)  # the same bytes again: not loaded twice
    assert polls(watcher, clock) == []
    assert len(events.sent) == 1
    again = json.loads(store.read(store.url("outbox", upload_id, "receipt.json")))
    assert again["drops"] == 2
