"""State store: watermarks, run records and named locks, on SQLite (and PostgreSQL when
``SODTRACK_TEST_POSTGRES_URL`` names a server)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from orchestration.pg import require_postgres
from sqlalchemy import insert, select, update

from sodtrack.db import normalise_url
from sodtrack.errors import LockTimeout
from sodtrack.state import (
    DEFAULT_LOOKBACK,
    StateStore,
    locks,
    updated_since,
)

T = datetime(2026, 11, 28, 3, 15, 42, 123456, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    if request.param == "sqlite":
        s = StateStore(f"sqlite:///{tmp_path}/deep/er/state.db")
    else:
        s = StateStore(require_postgres())
    yield s
    s.dispose()


def _key() -> str:
    """A country-like key unique to this test, so a shared PostgreSQL needs no cleaning."""
    return "t" + uuid.uuid4().hex[:7]


def test_sqlite_parent_directories_are_created(tmp_path: Path) -> None:
    StateStore(f"sqlite:///{tmp_path}/a/b/c/state.db").dispose()
    assert (tmp_path / "a" / "b" / "c" / "state.db").exists()


def test_postgres_urls_use_psycopg3() -> None:
    assert normalise_url("postgresql://u:p@h/db") == "postgresql+psycopg://u:p@h/db"
    assert normalise_url("sqlite:///x.db") == "sqlite:///x.db"


def test_updated_since_applies_the_lookback() -> None:
    assert updated_since(None) is None
    assert updated_since(T) == T - DEFAULT_LOOKBACK == T - timedelta(minutes=10)
    assert updated_since(T, timedelta(0)) == T
    with pytest.raises(ValueError, match="negative"):
        updated_since(T, timedelta(minutes=-1))


def test_run_records(store: StateStore) -> None:
    run_id = f"run-{uuid.uuid4().hex}"
    store.start_run(run_id, flow="nightly", country="cl", started_at=T)
    rec = store.get_run(run_id)
    assert rec is not None
    assert (rec.status, rec.started_at, rec.ended_at, rec.report) == ("running", T, None, None)
    report = {"records": {"bookings": 12}, "watermark_after": T, "ok": True}
    store.finish_run(run_id, "succeeded", report, ended_at=T + timedelta(minutes=5))
    rec = store.get_run(run_id)
    assert rec is not None
    assert rec.status == "succeeded"
    assert rec.ended_at == T + timedelta(minutes=5)
    assert rec.report == {"records": {"bookings": 12}, "watermark_after": str(T), "ok": True}
    store.start_run(run_id, flow="nightly", country="cl")  # a retry restarts the record
    rec = store.get_run(run_id)
    assert rec is not None
    assert (rec.status, rec.report) == ("running", None)
    assert run_id in [r.run_id for r in store.list_runs(country="cl", flow="nightly")]
    with pytest.raises(KeyError):
        store.finish_run("no-such-run", "failed")


def test_lock_serialises_threads(store: StateStore) -> None:
    name = f"nightly:{_key()}"
    inside = 0
    overlaps = []
    order = []

    def worker(i: int) -> None:
        nonlocal inside
        with store.lock(name, timeout_s=30, poll_s=0.02):
            inside += 1
            overlaps.append(inside)
            order.append(i)
            time.sleep(0.1)
            inside -= 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(order) == [0, 1, 2, 3]
    assert max(overlaps) == 1


def test_lock_timeout_and_release(store: StateStore) -> None:
    name = f"nightly:{_key()}"
    with (
        store.lock(name),
        pytest.raises(LockTimeout),
        store.lock(name, timeout_s=0.2, poll_s=0.05),
    ):
        pass  # pragma: no cover
    with store.lock(name, timeout_s=1):  # released on exit
        pass


def _eventually(condition: Callable[[], bool], what: str, within_s: float = 30.0) -> None:
    """Wait for ``condition`` (a heartbeat thread's doing): an event, not a gap of time."""
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {within_s}s"
        time.sleep(0.01)


def test_row_lock_takes_over_an_expired_holder_and_heartbeats(tmp_path: Path) -> None:
    """Expiry and renewal read the store's injected clock; a heartbeat is awaited as an
    event, so a slow machine (a late beat) cannot make the test fail or pass by chance."""
    clock = [datetime(2026, 11, 28, 3, 0, tzinfo=UTC)]
    store = StateStore(f"sqlite:///{tmp_path}/state.db", clock=lambda: clock[0])

    def expires_at() -> datetime:
        with store.engine.connect() as conn:
            value: datetime = conn.execute(
                select(locks.c.expires_at).where(locks.c.name == "nightly:cl")
            ).scalar_one()
        return value

    with store.engine.begin() as conn:  # a holder that died an hour ago
        conn.execute(
            insert(locks).values(
                name="nightly:cl",
                owner="dead:1",
                acquired_at=clock[0] - timedelta(hours=2),
                expires_at=clock[0] - timedelta(hours=1),
            )
        )
    with store.lock("nightly:cl", timeout_s=1) as held:
        assert not held.lost
    # a live holder's heartbeat keeps renewing a short ttl, so nobody takes it over
    with store.lock("nightly:cl", ttl_s=0.3) as held:
        clock[0] += timedelta(hours=1)  # long past the ttl: only a beat keeps the lock
        _eventually(lambda: expires_at() > clock[0], "the heartbeat renewed the lock")
        with (
            pytest.raises(LockTimeout),
            store.lock("nightly:cl", timeout_s=0.2, ttl_s=0.3, poll_s=0.05),
        ):
            pass  # pragma: no cover
        with store.engine.begin() as conn:  # now someone steals it behind our back
            conn.execute(update(locks).values(owner="thief"))
        _eventually(lambda: held.lost, "the heartbeat noticed the lock was taken over")
    store.dispose()


_CHILD = """
import sys, time
from sodtrack.state import StateStore
store = StateStore(sys.argv[1])
with store.lock(sys.argv[3], timeout_s=60, poll_s=0.02):
    with open(sys.argv[2], "a") as fh:
        fh.write(f"start {time.time()}\\n")
    time.sleep(0.4)
    with open(sys.argv[2], "a") as fh:
        fh.write(f"end {time.time()}\\n")
"""


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_lock_serialises_processes(tmp_path: Path, backend: str) -> None:
    url = require_postgres() if backend == "postgresql" else f"sqlite:///{tmp_path}/state.db"
    StateStore(url).dispose()  # create the tables before the race
    log = tmp_path / "log.txt"
    name = f"nightly:{_key()}"
    procs = [
        subprocess.Popen([sys.executable, "-c", _CHILD, url, str(log), name]) for _ in range(2)
    ]
    for p in procs:
        assert p.wait(120) == 0
    events = [line.split() for line in log.read_text().splitlines()]
    assert [e[0] for e in events] == ["start", "end", "start", "end"]
    assert float(events[1][1]) <= float(events[2][1])
