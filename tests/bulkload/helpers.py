"""Shared helpers of the engine tests: clients on the simulator, files, duplicate checks."""

from __future__ import annotations

import csv
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from orchestration.pg import require_postgres
from pydantic import SecretStr
from starlette.applications import Starlette

from sodtrack.bulkload.engine.ledger import Ledger
from sodtrack.bulkload.outcomes import UploadResult
from sodtrack.bulkload.synth import COLUMNS
from sodtrack.client import Credentials, RateLimiter, RetryPolicy, SodtrackClient
from sodtrack.simulator.store import ClientState
from sodtrack.simulator.testing import SIM_NOW, SimulatorTransport

SIM_TODAY = date.fromisoformat(SIM_NOW[:10])


def sim_client(
    app: Starlette | None = None,
    *,
    base_url: str | None = None,
    rate: float | None = None,
    concurrency: int = 16,
    retry: RetryPolicy | None = None,
    clock: Callable[[], float] | None = None,
) -> SodtrackClient:
    """A real client on the simulator: in-process (``app``) or over a socket (``base_url``).

    ``clock`` replaces the monotonic clock of the client and its rate limiter (on a
    :class:`virtual_time.VirtualTimeLoop`: ``loop.time``; its sleeps are the loop's own)."""
    timing: dict[str, Any] = {} if clock is None else {"clock": clock}
    if app is not None:
        http = httpx.AsyncClient(transport=SimulatorTransport(app), timeout=30)
        url = "http://sim"
    else:
        assert base_url is not None
        http = httpx.AsyncClient(
            timeout=30,
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        )
        url = base_url
    return SodtrackClient(
        http,
        base_url=url,
        country="cl",
        credentials=Credentials("sim-client", SecretStr("sim-secret")),
        retry=retry,
        rate_limiter=RateLimiter(rate, **timing) if rate else None,
        max_concurrency=concurrency,
        **timing,
        owns_http=True,
    )


def store(app: Starlette) -> ClientState:
    """The simulator's own records for the test client."""
    state: ClientState = app.state.sim.client("sim-client")
    return state


def write_rows(path: Path, rows: Iterable[Mapping[str, Any]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: "" if v is None else v for k, v in r.items()})
    return path


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def assert_no_duplicates(app: Starlette, refs: Sequence[str], payments: Sequence[str]) -> None:
    """No booking, project, stage or payment exists twice in the simulator's records."""
    st = store(app)
    bookings = Counter(b.external_reference for b in st.bookings.values())
    dup = {r: n for r, n in bookings.items() if n > 1}
    assert not dup, f"duplicate bookings: {dup}"
    projects = Counter(p.external_reference for p in st.projects.values())
    assert not {r: n for r, n in projects.items() if n > 1}, "duplicate projects"
    stages = Counter((s.project_id, s.sequence) for s in st.stages.values())
    assert not {k: n for k, n in stages.items() if n > 1}, "duplicate stages"
    pays = Counter(p.external_reference for p in st.payments.values())
    assert not {r: n for r, n in pays.items() if n > 1}, "duplicate payments"
    for ref in refs:
        assert st.count_bookings(ref) <= 1
    for ref in payments:
        assert st.count_payments(ref) <= 1


def assert_every_row_once(result: UploadResult, n_rows: int) -> None:
    positions = [r.position for r in result.rows]
    assert positions == list(range(n_rows)), "every row answered exactly once, in order"
    assert sum(result.counts.values()) == n_rows


def assert_matches_store(app: Starlette, result: UploadResult, rows: Sequence[Any]) -> None:
    """Each answer agrees with the simulator: the ids it names exist and belong to the row."""
    st = store(app)
    for r in result.rows:
        row = rows[r.position]
        if r.outcome in ("created", "already_existed"):
            assert r.booking_id is not None
            b = st.bookings[r.booking_id]
            assert b.external_reference == row.external_reference
            assert st.count_bookings(row.external_reference) == 1
            if row.project_reference:
                assert r.project_id is not None
                p = st.projects[r.project_id]
                assert p.external_reference == row.project_reference
            if row.stage_sequence is not None:
                assert r.stage_id is not None
                s = st.stages[r.stage_id]
                assert r.booking_id in s.booking_ids
                assert s.sequence == row.stage_sequence
            if row.payment_reference:
                assert st.count_payments(row.payment_reference) == 1
                assert r.payment_id is not None
                assert st.payments[r.payment_id].external_reference == row.payment_reference
        elif r.outcome in ("rejected", "skipped_dependency") and r.booking_id is None:
            assert st.count_bookings(row.external_reference) == 0


@contextmanager
def ledger_for(kind: str, tmp_path: Path) -> Iterator[Ledger]:
    """A fresh ledger: SQLite under ``tmp_path``, or PostgreSQL (``SODTRACK_TEST_POSTGRES_URL``)
    in a schema of its own, dropped afterwards (the same code, a different URL)."""
    if kind == "sqlite":
        led = Ledger(f"sqlite:///{tmp_path}/state/ledger.db")
        try:
            yield led
        finally:
            led.close()
        return
    pg_url = require_postgres()
    schema = f"ledger_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(pg_url)
    with admin.begin() as conn:
        conn.execute(sa.schema.CreateSchema(schema))
    url = sa.engine.make_url(pg_url).update_query_dict({"options": f"-csearch_path={schema}"})
    led = Ledger(url.render_as_string(hide_password=False))
    try:
        yield led
    finally:
        led.close()
        with admin.begin() as conn:
            conn.execute(sa.schema.DropSchema(schema, cascade=True))
        admin.dispose()
