"""Two processes publishing the same country's bookings merge from the same base version: the
second commit is refused by delta-rs's own conflict checker at commit time (the table is
loaded at the run's base version, so a concurrent replace of the same partitions since then
fails the commit), not only by the check that runs before it. Both processes pass that check
(neither has committed yet), then one commits and the other must not overwrite its update.
Local disk and the loopback moto S3 server.

The generated corpus: which partitions each run replaces (the same month, overlapping months,
a whole-country replace against a month) must conflict; disjoint months, and another country,
must both land."""

from __future__ import annotations

import multiprocessing
import os
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import pytest

from sodtrack.warehouse import Warehouse
from sodtrack.warehouse.convert import bookings_batch

from .factories import T0, booking
from .helpers import NOW

WAIT_S = 180.0


def _stage(wh: Warehouse, run_id: str, country: str, months: list[int], first_id: int,
           n: int, base: str, whole: bool) -> None:  # fmt: skip
    with wh.stage("bookings", run_id, base_version=base) as w:
        for month in months:
            rows = [booking(first_id + 100 * month + i, start=T0.replace(month=month))
                    for i in range(n)]  # fmt: skip
            w.write(
                bookings_batch(rows, NOW),
                {"country": country, "scheduled_month": f"2026-{month:02d}"},
            )
        w.finish(
            replace_scope={"country": country} if whole else None,
            watermark_after=NOW,
            finished_at=NOW,
        )


def _racer(
    root: str,
    scratch: str,
    env: dict[str, str],
    plan: dict[str, Any],
    checked: Event,
    go: Event,
    results: Any,
) -> None:
    """Stage from ``plan['base']``; publish, pausing after the pre-commit check until ``go``."""
    os.environ.update(env)

    def on_step(name: str) -> None:
        if name == "publish:checked":
            checked.set()
            if not go.wait(WAIT_S):
                raise TimeoutError("never released")

    wh = Warehouse(root, scratch=scratch, durable=False, on_step=on_step)
    _stage(wh, plan["run_id"], plan["country"], plan["months"], plan["first_id"], plan["n"],
           plan["base"], plan["whole"])  # fmt: skip
    try:
        version = wh.publish("bookings", plan["run_id"])
        results.put((plan["run_id"], "published", version.version_id))
    except Exception as exc:  # reported to the parent by type
        results.put((plan["run_id"], type(exc).__name__, str(exc)))


CASES = [
    # (first run: country, months, whole) , (second run), must the second conflict?
    pytest.param(("cl", [1], False), ("cl", [1], False), True, id="same-month"),
    pytest.param(("cl", [1, 2], False), ("cl", [2, 3], False), True, id="overlapping-months"),
    pytest.param(("cl", [1], True), ("cl", [2], False), True, id="country-replace-vs-month"),
    pytest.param(("cl", [2], False), ("cl", [1], True), True, id="month-vs-country-replace"),
    pytest.param(("cl", [1], False), ("cl", [2], False), False, id="disjoint-months"),
    pytest.param(("cl", [1], False), ("pe", [1], False), False, id="another-country"),
]


@pytest.mark.parametrize(("first", "second", "conflicts"), CASES)
def test_a_concurrent_merge_of_the_same_partitions_is_refused_at_commit(
    storage: str,
    tmp_path: Path,
    first: tuple[str, list[int], bool],
    second: tuple[str, list[int], bool],
    conflicts: bool,
) -> None:
    env = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
    wh = Warehouse(storage, scratch=tmp_path / "s0", durable=False)
    # versions 0 and 1: both countries, months 1-3, one booking each; 1 is the runs' base
    for first_id, country in ((0, "cl"), (500, "pe")):
        _stage(wh, f"seed-{country}", country, [1, 2, 3], first_id, 1, None, False)  # type: ignore[arg-type]
        wh.publish("bookings", f"seed-{country}")
    base = wh.current_version("bookings")
    assert base == "1"
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    plans = [
        {"run_id": f"run-{k}", "country": c, "months": m, "whole": w, "first_id": 1000 * (k + 1),
         "n": 2 + k, "base": base}
        for k, (c, m, w) in enumerate((first, second))
    ]  # fmt: skip
    checked = [ctx.Event(), ctx.Event()]
    go = [ctx.Event(), ctx.Event()]
    procs = [
        ctx.Process(
            target=_racer,
            args=(storage, str(tmp_path / f"s{k + 1}"), env, plan, checked[k], go[k], results),
            daemon=True,
        )
        for k, plan in enumerate(plans)
    ]
    for p in procs:
        p.start()
    try:
        # Both pass the check before either commits: the check alone cannot see the other.
        for k in (0, 1):
            _wait(checked[k], results, procs[k])
        go[0].set()
        one = results.get(timeout=WAIT_S)
        go[1].set()
        two = results.get(timeout=WAIT_S)
    finally:
        for e in go:
            e.set()
        for p in procs:
            p.join(timeout=60)
    assert one[:2] == ("run-0", "published"), one
    history = {c["run_id"] for c in wh.history("bookings")}
    assert "run-0" in history
    if conflicts:
        assert two[:2] == ("run-1", "PublishConflict"), two
        assert "run-1" not in history  # nothing of the loser was committed
    else:
        assert two[:2] == ("run-1", "published"), two
        assert "run-1" in history
    ids = wh.read_current("bookings").to_table(columns=["id"])["id"].to_pylist()
    assert len(ids) == len(set(ids)), "a booking published twice"
    first_ids = [i for i in ids if i.startswith("bkg_") and 1000 <= _num(i) < 2000]
    assert len(first_ids) == len(first[1]) * 2, "the first run's update was lost"


def _wait(event: Event, results: Any, proc: Any) -> None:
    """Until ``event`` is set; fails at once with what a racer reported if it stopped early."""
    deadline = WAIT_S
    while not event.wait(0.5):
        deadline -= 0.5
        if not results.empty() or not proc.is_alive() or deadline <= 0:
            early = results.get(timeout=1) if not results.empty() else None
            pytest.fail(f"a racer stopped before the commit: {early}, exit {proc.exitcode}")


def _num(booking_id: str) -> int:
    digits = "".join(ch for ch in booking_id if ch.isdigit())
    return int(digits) if digits else -1
