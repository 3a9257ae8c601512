"""The watcher with its inbox, stored uploads and receipts on a local folder and on a real S3
server (moto's, on loopback): the same behaviour, the same tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from s3faultproxy import FaultKind

from bulkload.objstore_helpers import Store, make_store
from sodtrack.bulkload.engine.ledger import upload_id_for
from sodtrack.bulkload.inbox import InboxWatcher, Registry
from sodtrack.objstore import filesystem

from .test_inbox import Clock, Events, polls, xlsx_bytes


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    return make_store(request.param, tmp_path, monkeypatch, request)


def _watcher(
    store: Store, tmp_path: Path, events: Events, clock: Clock, endpoint: str | None = None
) -> InboxWatcher:
    return InboxWatcher(
        inbox=store.url("inbox"),
        uploads=store.url("uploads"),
        outbox=store.url("outbox"),
        default_country="cl",
        registry=Registry(f"sqlite:///{tmp_path / 'state.db'}"),
        emit=events,
        settle_s=1.0,
        clock=clock,
        s3_endpoint_url=endpoint or store.endpoint,
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


@pytest.mark.parametrize("kind", ["cut_framed", "empty"])
def test_an_inbox_object_cut_short_is_never_taken_shorter(
    kind: FaultKind,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An S3 inbox behind a proxy that cuts answers short. Once: the copy resumes where the
    answer stopped and the upload is the whole file. On every answer: nothing is taken (no
    upload, no event, the drop stays in the inbox), the log says the store did not give it
    whole, and a later poll through a healthy store takes the whole file."""
    from s3faultproxy import EVERY, Fault, FaultProxy, serve_fault_proxy
    from s3fs import S3FileSystem  # type: ignore[import-untyped]

    store = make_store("s3", tmp_path, monkeypatch, request)
    monkeypatch.setattr(S3FileSystem, "retries", 2)  # quick to reach this project's re-reads

    def via(endpoint: str | None, clock: Clock, events: Events) -> InboxWatcher:
        S3FileSystem.clear_instance_cache()  # a new proxy may reuse an old one's port
        return _watcher(store, tmp_path, events, clock, endpoint)

    # The done markers skip the watcher's look at the zip's end: the copy is the read spoiled.
    once = xlsx_bytes("cut-once")
    _drop(store, "cl/once.xlsx", once)
    _drop(store, "cl/once.xlsx.done", b"")
    clock, events = Clock(), Events()
    with serve_fault_proxy(
        FaultProxy(str(store.endpoint), [Fault(kind, 0.5, 1)], objects_only=True)
    ) as proxied:
        [taken] = polls(via(proxied, clock, events), clock)
    assert taken.size == len(once)
    assert store.read(taken.path) == once

    every = xlsx_bytes("cut-every")
    _drop(store, "cl/every.xlsx", every)
    _drop(store, "cl/every.xlsx.done", b"")
    clock, events = Clock(), Events()
    proxy = FaultProxy(str(store.endpoint), [Fault(kind, 0.5, EVERY)], objects_only=True)
    with serve_fault_proxy(proxy) as proxied, caplog.at_level("WARNING"):
        assert polls(via(proxied, clock, events), clock) == []
    assert proxy.counts[kind] > 0
    assert events.sent == []
    assert store.exists(store.url("inbox", "cl", "every.xlsx"))
    assert "every.xlsx: object storage did not give it whole" in caplog.text
    assert "read again at the next poll" in caplog.text
    [later] = polls(via(None, clock, events), clock)
    assert store.read(later.path) == every
