"""The demo-size first nightly run against its API floor (issue #12, goal 1).

Seeds the simulator as ``make demo`` does (real HTTP on loopback, the contract's rate limit
of 20 req/s), runs the first nightly extraction through the same library call as the demo
(:func:`sodtrack.terminal.extract_with_progress` without the bars), then, like the demo, a
day later the incremental bookings run. Prints each run's duration, requests, API floor and
the ratio ``duration ÷ floor`` (the floor is measured in the same run: requests ÷ the rate
the client paced by), and where the time went per family.

    cd bench && ../.venv/bin/python bench_nightly_floor.py [--bookings 200000] [--json out]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx


class Phases(logging.Handler):
    """Prints when each family's phases end (the runner's ``staged in`` / ``… in`` lines),
    in seconds since the run started: where the time goes."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.t0 = time.monotonic()

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if " in " in text and text.endswith(" s") and text.count("/") == 1:
            print(f"  t={time.monotonic() - self.t0:6.1f} s  {text}", flush=True)


def one_run(settings: Any, datasets: list[str]) -> Any:
    from sodtrack.client import country_client
    from sodtrack.extract import ExtractionOptions, run_extraction
    from sodtrack.state import StateStore
    from sodtrack.warehouse import Warehouse

    options = ExtractionOptions(
        countries=(settings.country,),
        datasets=tuple(datasets),
        docs_dir=settings.data_dir("docs"),
        reports_dir=settings.data_dir("reports"),
        validation_batch_memory=int(settings.validation_batch_memory),
    )
    store = StateStore(settings.state_url)
    phases = Phases()
    logger = logging.getLogger("sodtrack.extract")
    logger.setLevel(logging.INFO)
    logger.addHandler(phases)
    try:
        return asyncio.run(
            run_extraction(
                options,
                warehouse=Warehouse.from_settings(settings),
                store=store,
                client_factory=lambda c: country_client(settings, c),
            )
        )
    finally:
        logger.removeHandler(phases)
        store.dispose()


def describe(name: str, report: Any) -> dict[str, Any]:
    floor = report.api_floor_s
    ratio = report.api_floor_ratio
    row = {
        "run": name,
        "duration_s": report.duration_s,
        "requests": report.client.get("requests"),
        "api_floor_s": floor,
        "api_floor_ratio": round(ratio, 3) if ratio is not None else None,
        "success": report.success,
        "families": {
            f.family: {
                d.dataset: (d.status, round(d.seconds, 1), getattr(d, "reason", None))
                for d in f.datasets
            }
            for f in report.families
        },
    }
    shown = f"{ratio:.2f}x" if ratio is not None else "not meaningful"
    print(
        f"{name}: {report.duration_s:.1f} s, {row['requests']} requests, floor "
        f"{floor if floor is None else round(floor, 1)} s -> {shown} its floor "
        f"(success={report.success})",
        flush=True,
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--country", default="cl")
    parser.add_argument("--bookings", type=int, default=200_000)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    from sodtrack.settings import Settings
    from sodtrack.simulator.app import create_app
    from sodtrack.simulator.config import SimConfig
    from sodtrack.simulator.testing import serve_in_thread

    print(f"load average at start: {os.getloadavg()}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="bench-floor-"))
    started = time.monotonic()
    app = create_app(SimConfig(country=args.country, bookings=args.bookings))
    print(f"seeded {args.bookings:,} bookings in {time.monotonic() - started:.1f} s", flush=True)
    rows = []
    with serve_in_thread(app) as url:
        settings = Settings(
            country=args.country,
            base_url=url,
            warehouse=str(work / "warehouse"),
            state_url=f"sqlite:///{work / 'state.db'}",
            outbox=str(work / "outbox"),
        )
        rows.append(describe("first", one_run(settings, [])))
        httpx.post(f"{url}/_sim/clock/advance", json={"seconds": 86_400}).raise_for_status()
        rows.append(describe("incremental", one_run(settings, ["bookings"])))
        rows.append(describe("second-full", one_run(settings, ["catalog", "coverage"])))
    print(f"load average at end: {os.getloadavg()}", flush=True)
    for row in rows:
        print(json.dumps(row))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
