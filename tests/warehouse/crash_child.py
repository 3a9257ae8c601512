"""Runs executed in a child process and killed with SIGKILL at a named step.

Used by ``test_interrupt.py`` through a ``forkserver`` that has these modules imported, so each
child is a cheap fork of a clean process (no threads inherited from pytest).
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sodtrack.warehouse import Warehouse
from sodtrack.warehouse.bookings import BookingsRun
from sodtrack.warehouse.convert import services_batch

from .factories import T0, booking, service

NOW = datetime(2026, 11, 28, 4, 0, tzinfo=UTC)


def killer(kill_at: str | None) -> Callable[[str], None]:
    """``on_step`` that SIGKILLs this process at ``step`` or at its n-th time (``step#n``)."""
    seen: Counter[str] = Counter()
    name, _, nth = (kill_at or "").partition("#")
    target = int(nth or 1)

    def on_step(step: str) -> None:
        seen[step] += 1
        if step == name and seen[step] == target:
            os.kill(os.getpid(), signal.SIGKILL)

    return on_step


def services_run(root: str, run_id: str, rows: int, day: str, kill_at: str | None = None) -> None:
    wh = Warehouse(root, durable=False, on_step=killer(kill_at))
    batch = services_batch([service(i, name=f"{run_id}-{i}") for i in range(rows)], NOW)
    part = {"country": "cl", "snapshot_date": day}
    with wh.stage("services", run_id, row_group_rows=8) as w:
        for start in range(0, rows, 10):
            w.write(batch.slice(start, 10), part)
            wh.step("stage:partial")
        w.finish(finished_at=NOW)
    wh.step("stage:finished")
    wh.publish("services", run_id)
    wh.step("run:done")


def bookings_history(run: int) -> list[list[object]]:
    """Pages of the n-th bookings run: run 0 creates 120 bookings over 4 months, run 1
    reschedules 30 of them (some across months), updates 10 twice and adds 15."""
    if run == 0:
        items = [
            booking(i, start=T0 + timedelta(days=9 * (i % 12)), validate=False) for i in range(120)
        ]
    else:
        later = T0 + timedelta(hours=1)
        items = [
            booking(i, start=T0 + timedelta(days=40 + i), updated=later, validate=False)
            for i in range(30)
        ]
        items += [
            booking(i, start=T0, updated=later + timedelta(minutes=5), validate=False)
            for i in range(10)
        ]
        items += [booking(200 + i, updated=later, validate=False) for i in range(15)]
    return [items[i : i + 25] for i in range(0, len(items), 25)]  # type: ignore[misc]


def bookings_run(root: str, run_id: str, run: int, kill_at: str | None = None) -> None:
    wh = Warehouse(root, durable=False, on_step=killer(kill_at))
    extracted = NOW + timedelta(days=run)
    nightly = BookingsRun(wh, "cl", run_id, extracted_at=extracted, row_group_rows=16)
    for page in bookings_history(run):
        nightly.add_page(page)  # type: ignore[arg-type]
        wh.step("merge:page")
    nightly.finish()
    wh.publish("bookings", run_id)
    wh.publish("booking_changes", run_id)
    wh.step("run:done")


def publish_loop(root: str, runs: int) -> None:
    """Publishes ``runs`` service snapshots back to back (killed at a random moment)."""
    for i in range(runs):
        services_run(root, f"loop-{i}", 40 + i, f"2026-11-{1 + i % 20:02d}")
