"""Owner-only files (0600) and folders (0700) from the start, for everything holding personal
data: the ledger and state databases with their -wal/-shm, the inbox registry, stored uploads
and receipts; and file names from the inbox never forge a log line. Real SQLite, real files,
under the usual umask 022 (which would leave 0644/0755 without care)."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sodtrack.bulkload.engine.ledger import Ledger
from sodtrack.bulkload.inbox import InboxWatcher, Registry
from sodtrack.private import atomic_binary, private_dir, touch_private
from sodtrack.state import StateStore
from sodtrack.textsafe import cell_safe, printable


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _assert_private_db(db: Path, created_dirs: list[Path]) -> None:
    assert _mode(db) == 0o600, db
    for side in (Path(f"{db}-wal"), Path(f"{db}-shm")):
        if side.exists():
            assert _mode(side) == 0o600, side
    for folder in created_dirs:
        assert _mode(folder) == 0o700, folder


def test_the_ledger_database_and_its_wal_are_owner_only(tmp_path: Path) -> None:
    db = tmp_path / "data" / "state" / "ledger.db"
    ledger = Ledger(f"sqlite:///{db}")
    try:
        ledger.begin_upload(
            upload_id="upl_x",
            file_sha256="a" * 64,
            file_name="f.csv",
            country="cl",
            uploaded_by="ana",
            dry_run=False,
            row_count=1,
        )
        assert Path(f"{db}-wal").exists()  # WAL mode: the side files exist while open
        _assert_private_db(db, [db.parent, db.parent.parent])
    finally:
        ledger.close()


def test_the_state_store_and_the_inbox_registry_are_owner_only(tmp_path: Path) -> None:
    db = tmp_path / "state" / "state.db"
    store = StateStore(f"sqlite:///{db}")
    try:
        store.start_run("run-1", flow="nightly", country="cl")
        _assert_private_db(db, [db.parent])
    finally:
        store.dispose()
    other = tmp_path / "reg" / "inbox.db"
    registry = Registry(f"sqlite:///{other}")
    try:
        _assert_private_db(other, [other.parent])
    finally:
        registry.close()


def test_an_existing_folder_keeps_its_mode(tmp_path: Path) -> None:
    mine = tmp_path / "shared"
    mine.mkdir(mode=0o755)
    private_dir(mine / "a" / "b")
    assert _mode(mine) == 0o755
    assert _mode(mine / "a") == _mode(mine / "a" / "b") == 0o700
    touch_private(mine / "a" / "f")
    assert _mode(mine / "a" / "f") == 0o600


def test_an_atomic_write_that_fails_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out" / "r.csv"
    with atomic_binary(target) as fh:
        fh.write(b"first")

    def half_then_fail() -> None:
        with atomic_binary(target) as fh:
            fh.write(b"half")
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        half_then_fail()
    assert target.read_bytes() == b"first"
    assert [p.name for p in target.parent.iterdir()] == ["r.csv"]
    assert _mode(target) == 0o600


def _watcher(tmp: Path) -> tuple[InboxWatcher, Registry, list[float]]:
    now = [0.0]
    registry = Registry(f"sqlite:///{tmp / 'state' / 'state.db'}")
    watcher = InboxWatcher(
        inbox=str(tmp / "inbox"),
        uploads=str(tmp / "uploads"),
        outbox=str(tmp / "outbox"),
        default_country="cl",
        registry=registry,
        emit=lambda event: None,
        settle_s=1.0,
        clock=lambda: now[0],
    )
    return watcher, registry, now


def _polls(watcher: InboxWatcher, now: list[float]) -> list[object]:
    taken: list[object] = []
    for _ in range(2):
        taken += watcher.poll()
        now[0] += 2.0
    return taken


def test_stored_uploads_and_receipts_are_owner_only(tmp_path: Path) -> None:
    watcher, registry, now = _watcher(tmp_path)
    try:
        (tmp_path / "inbox" / "cl" / "bookings.csv").write_bytes(b"external_reference\nB-1\n")
        (received,) = _polls(watcher, now)
    finally:
        registry.close()
    stored = Path(received.path)  # type: ignore[attr-defined]
    assert stored.read_bytes() == b"external_reference\nB-1\n"
    assert _mode(stored) == 0o600
    assert _mode(stored.parent) == 0o700  # <uploads>/<upload_id>/
    assert _mode(tmp_path / "uploads") == 0o700
    receipt = tmp_path / "outbox" / stored.parent.name / "receipt.json"
    assert _mode(receipt) == 0o600
    assert _mode(receipt.parent) == 0o700


HOSTILE_NAME = (
    st.lists(
        st.sampled_from(["a", "b", "\n", "\r", "\x1b", "[31m", "\x07", "\u202e", " ", "é"]),
        min_size=1,
        max_size=8,
    )
    .map("".join)
    .filter(lambda s: bool(s.strip()))
)


@settings(derandomize=True, max_examples=20, deadline=None)
@given(HOSTILE_NAME)
def test_inbox_file_names_never_forge_a_log_line(name: str) -> None:
    """A newline, an ESC or a bidi override in a file name is logged escaped: every record's
    message is one printable line."""
    import tempfile

    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep(level=logging.DEBUG)
    log = logging.getLogger("sodtrack.bulkload.inbox")
    log.addHandler(handler)
    old_level = log.level
    log.setLevel(logging.DEBUG)
    try:
        with tempfile.TemporaryDirectory() as d:
            tmp = Path(d)
            watcher, registry, now = _watcher(tmp)
            try:
                for folder in ("cl", "archive"):  # taken, and left with a warning
                    path = tmp / "inbox" / folder / f"{name}.csv"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(b"external_reference\nB-1\n")
                _polls(watcher, now)
                again = tmp / "inbox" / "cl" / f"{name}.csv"  # the same bytes again: a warning
                again.write_bytes(b"external_reference\nB-1\n")
                _polls(watcher, now)
            finally:
                registry.close()
    finally:
        log.removeHandler(handler)
        log.setLevel(old_level)
    assert records, "the watcher logged nothing: the test would prove nothing"
    for record in records:
        message = record.getMessage()
        assert message.isprintable(), repr(message)


@given(st.text(max_size=50))
@settings(derandomize=True, max_examples=200, deadline=None)
def test_printable_and_cell_safe_escape_exactly_what_they_must(text: str) -> None:
    shown = printable(text)
    assert shown.isprintable()
    if text.isprintable():
        assert shown == text
    cell = cell_safe(text)
    cell.encode("utf-8")  # no lone surrogate survives
    assert not any(0xD800 <= ord(c) <= 0xDFFF for c in cell)
    assert all(c in "\t\n\r" or ord(c) >= 0x20 for c in cell)
    assert printable("a\x0bb") == cell_safe("a\x0bb") == "a<U+000B>b"
