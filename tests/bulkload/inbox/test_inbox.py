"""The upload inbox: complete files only, once per (bytes, country), announced until accepted."""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
import uuid
from pathlib import Path
from typing import Any

import fsspec
import httpx
import openpyxl
import pytest
from orchestration.pg import require_postgres

from sodtrack.bulkload.engine.ledger import upload_id_for
from sodtrack.bulkload.inbox import (
    EVENT_NAME,
    Fingerprint,
    InboxWatcher,
    PrefectEventsEmitter,
    Registry,
    Stability,
    country_of,
    event_id_for,
    is_candidate,
)


def xlsx_bytes(*values: str) -> bytes:
    """A real (whole) workbook: the inbox takes only files that look whole."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["external_reference", *values])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Events:
    """A fake Prefect: records events; can be told to refuse the next ``fail`` ones."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.fail = 0
        self.lock = threading.Lock()

    def __call__(self, event: dict[str, Any]) -> None:
        with self.lock:
            if self.fail:
                self.fail -= 1
                raise ConnectionError("prefect is down")
            self.sent.append(event)


class Box:
    def __init__(self, tmp: Path, state_url: str | None = None) -> None:
        self.inbox, self.uploads, self.outbox = tmp / "inbox", tmp / "uploads", tmp / "outbox"
        self.registry = Registry(state_url or f"sqlite:///{tmp / 'state.db'}")
        self.events = Events()
        self.clock = Clock()

    def watcher(self, events: Events | None = None) -> InboxWatcher:
        return InboxWatcher(
            inbox=str(self.inbox),
            uploads=str(self.uploads),
            outbox=str(self.outbox),
            default_country="cl",
            registry=self.registry,
            emit=events or self.events,
            settle_s=1.0,
            clock=self.clock,
        )

    def drop(self, relative: str, data: bytes) -> Path:
        path = self.inbox / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path


@pytest.fixture
def box(tmp_path: Path) -> Box:
    return Box(tmp_path)


def polls(watcher: InboxWatcher, clock: Clock, n: int = 2) -> list[Any]:
    taken: list[Any] = []
    for _ in range(n):
        taken += watcher.poll()
        clock.now += 2.0
    return taken


# ---------------------------------------------------------------- pure core


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("bookings.xlsx", True),
        ("cl/Bookings June.XLSX", True),
        ("x.csv", True),
        ("x.xlsm", True),
        ("~$bookings.xlsx", False),
        (".bookings.xlsx", False),
        ("bookings.xlsx.part", False),
        ("bookings.xlsx.crdownload", False),
        ("bookings.xlsx.tmp", False),
        ("bookings.tmp", False),
        ("bookings.xlsx~", False),
        ("notes.txt", False),
        ("report.pdf", False),
    ],
)
def test_candidates(name: str, ok: bool) -> None:
    assert is_candidate(name) is ok


def test_country_from_the_folder() -> None:
    assert country_of("x.xlsx", "cl") == "cl"
    assert country_of("pe/x.xlsx", "cl") == "pe"
    assert country_of("PE/x.xlsx", "cl") == "pe"
    assert country_of("archive/x.xlsx", "cl") is None
    assert country_of("pe/old/x.xlsx", "cl") is None


def test_stability_needs_two_equal_sightings_settle_apart() -> None:
    s = Stability(settle_s=1.0)
    a = Fingerprint(10, "t1")
    assert s.observe({"f": a}, 0.0) == []
    assert s.observe({"f": a}, 0.5) == []  # too soon
    assert s.observe({"f": a}, 1.0) == ["f"]
    grown = Fingerprint(20, "t2")
    assert s.observe({"f": grown}, 2.0) == []  # changed: starts over
    assert s.observe({"f": grown}, 3.5) == ["f"]
    assert s.observe({"g": Fingerprint(0, "t")}, 4.0) == []
    assert s.observe({"g": Fingerprint(0, "t")}, 9.0) == []  # empty files wait


def test_event_id_is_stable_per_upload() -> None:
    assert event_id_for("upl_cl_1") == event_id_for("upl_cl_1") != event_id_for("upl_cl_2")
    uuid.UUID(event_id_for("upl_cl_1"))


# ---------------------------------------------------------------- the watcher


def test_a_dropped_file_is_stored_announced_and_removed(box: Box) -> None:
    data = b"external_reference,service_sku\nB-1,S-1\n"
    box.drop("pe/June bookings.csv", data)
    watcher = box.watcher()
    assert watcher.poll() == []  # first sighting
    box.clock.now += 2
    [received] = watcher.poll()
    sha = hashlib.sha256(data).hexdigest()
    assert received.sha256 == sha
    assert received.country == "pe"
    assert received.upload_id == upload_id_for(sha, "pe")
    stored = box.uploads / received.upload_id / "June bookings.csv"
    assert received.path == str(stored)
    assert stored.read_bytes() == data
    assert received.outbox == str(box.outbox)
    assert not (box.inbox / "pe" / "June bookings.csv").exists()
    [event] = box.events.sent
    assert event["event"] == EVENT_NAME
    assert event["id"] == event_id_for(received.upload_id)
    assert event["resource"]["prefect.resource.id"] == f"sodtrack.upload.{received.upload_id}"
    assert event["payload"]["path"] == str(stored)
    assert event["payload"]["country"] == "pe"
    receipt = json.loads((box.outbox / received.upload_id / "receipt.json").read_text())
    assert receipt["upload_id"] == received.upload_id
    assert receipt["drops"] == 1
    row = box.registry.get(received.upload_id)
    assert row is not None
    assert row["emitted_at"] is not None
    assert list((box.uploads / ".incoming").iterdir()) == []


def test_a_file_at_the_top_is_for_the_default_country(box: Box) -> None:
    box.drop("x.xlsx", xlsx_bytes("top"))
    [received] = polls(box.watcher(), box.clock)
    assert received.country == "cl"


def test_partial_and_temporary_files_are_never_taken(box: Box) -> None:
    watcher = box.watcher()
    part = box.drop("cl/big.xlsx.part", b"half")
    box.drop("cl/~$big.xlsx", b"lock")
    box.drop("cl/.hidden.xlsx", b"x")
    assert polls(watcher, box.clock, 3) == []
    whole = xlsx_bytes("big")
    part.write_bytes(whole)
    part.rename(part.with_name("big.xlsx"))  # the writer's final rename
    [received] = polls(watcher, box.clock)
    assert received.file_name == "big.xlsx"
    assert Path(received.path).read_bytes() == whole
    assert (box.inbox / "cl" / "~$big.xlsx").exists()


def test_a_file_still_growing_waits(box: Box) -> None:
    watcher = box.watcher()
    path = box.drop("cl/slow.csv", b"a" * 9 + b"\n")
    for i in range(4):
        assert watcher.poll() == []
        box.clock.now += 2
        with path.open("ab") as fh:  # the writer is still going
            fh.write(b"b" * (i + 1) + b"\n")
        os.utime(path, (2_000_000_000 + i, 2_000_000_000 + i))
    [received] = polls(watcher, box.clock)
    assert received.size == 10 + 2 + 3 + 4 + 5


def test_the_same_file_twice_is_loaded_once(box: Box) -> None:
    watcher = box.watcher()
    same = xlsx_bytes("same")
    box.drop("cl/a.xlsx", same)
    [first] = polls(watcher, box.clock)
    box.drop("cl/a (copy).xlsx", same)  # dropped again, another name
    assert polls(watcher, box.clock) == []
    assert len(box.events.sent) == 1
    assert not (box.inbox / "cl" / "a (copy).xlsx").exists()
    assert sorted(p.name for p in (box.uploads / first.upload_id).iterdir()) == ["a.xlsx"]
    row = box.registry.get(first.upload_id)
    assert row is not None
    assert row["drops"] == 2
    receipt = json.loads((box.outbox / first.upload_id / "receipt.json").read_text())
    assert receipt["drops"] == 2
    assert "loaded once" in receipt["note"]
    # The same bytes for another country are another upload.
    box.drop("pe/a.xlsx", same)
    [other] = polls(watcher, box.clock)
    assert other.upload_id != first.upload_id
    assert len(box.events.sent) == 2


def test_a_refused_event_is_sent_again_with_the_same_id(box: Box) -> None:
    box.events.fail = 2
    watcher = box.watcher()
    box.drop("cl/a.csv", b"x,y\n")
    [received] = polls(watcher, box.clock)  # taken, but Prefect refused (twice)
    assert box.events.sent == []
    assert [r.upload_id for r in box.registry.pending()] == [received.upload_id]
    restarted = box.watcher()  # e.g. the watcher was restarted meanwhile
    restarted.poll()
    [event] = box.events.sent
    assert event["id"] == event_id_for(received.upload_id)
    assert box.registry.pending() == []


def test_files_outside_country_folders_are_left_alone(box: Box) -> None:
    box.drop("archive/old.xlsx", b"x")
    assert polls(box.watcher(), box.clock, 3) == []
    assert (box.inbox / "archive" / "old.xlsx").exists()
    assert box.events.sent == []


def test_any_fsspec_url_works_the_same(tmp_path: Path) -> None:
    root = f"memory://sodtrack-{uuid.uuid4().hex}"
    registry = Registry(f"sqlite:///{tmp_path / 'state.db'}")
    events, clock = Events(), Clock()
    watcher = InboxWatcher(
        inbox=f"{root}/inbox",
        uploads=f"{root}/uploads",
        outbox=f"{root}/outbox",
        default_country="cl",
        registry=registry,
        emit=events,
        clock=clock,
    )
    fs = fsspec.filesystem("memory")
    remote = xlsx_bytes("remote")
    fs.pipe(f"{root}/inbox/pe/remote.xlsx", remote)
    fs.pipe(f"{root}/inbox/pe/remote.xlsx.part", b"half")
    [received] = polls(watcher, clock)
    assert received.path.startswith("memory://")
    assert received.path.endswith(f"/uploads/{received.upload_id}/remote.xlsx")
    assert fs.cat(received.path) == remote
    assert not fs.exists(f"{root}/inbox/pe/remote.xlsx")
    assert fs.exists(f"{root}/outbox/{received.upload_id}/receipt.json")
    assert len(events.sent) == 1


def _two_watchers_one_inbox(tmp_path: Path, state_url: str) -> None:
    box = Box(tmp_path, state_url)
    registry2 = Registry(state_url)
    watchers = [box.watcher(), box.watcher()]
    watchers[1].registry = registry2
    for i in range(12):
        box.drop(f"cl/file-{i}.csv", f"row {i}\n".encode())
    box.clock.now = 0
    errors: list[BaseException] = []

    def run(w: InboxWatcher) -> None:
        try:
            w.poll()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    for _ in range(2):
        threads = [threading.Thread(target=run, args=(w,)) for w in watchers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        box.clock.now += 2
    assert errors == []
    ids = [e["payload"]["upload_id"] for e in box.events.sent]
    assert len(ids) == len(set(ids)) == 12, "each file announced exactly once"
    assert list(box.inbox.glob("cl/*")) == []


def test_two_watchers_on_one_inbox_announce_each_file_once_sqlite(tmp_path: Path) -> None:
    _two_watchers_one_inbox(tmp_path, f"sqlite:///{tmp_path / 'state.db'}")


def test_two_watchers_on_one_inbox_announce_each_file_once_postgres(tmp_path: Path) -> None:
    pg_url = require_postgres()
    import sqlalchemy as sa

    from sodtrack.bulkload.inbox import inbox_table

    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        inbox_table.drop(conn, checkfirst=True)
    engine.dispose()
    _two_watchers_one_inbox(tmp_path, pg_url)


def test_the_emitter_posts_prefect_events() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    emit = PrefectEventsEmitter(
        "http://prefect:4200/api/", auth_string="admin:pass", transport=httpx.MockTransport(handler)
    )
    emit({"id": "x", "event": EVENT_NAME})
    [request] = seen
    assert str(request.url) == "http://prefect:4200/api/events"
    assert json.loads(request.content) == [{"id": "x", "event": EVENT_NAME}]
    assert request.headers["authorization"].startswith("Basic ")
    refusing = PrefectEventsEmitter(
        "http://prefect/api", transport=httpx.MockTransport(lambda r: httpx.Response(503))
    )
    with pytest.raises(httpx.HTTPStatusError):
        refusing({"id": "y"})
