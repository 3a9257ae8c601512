"""Benchmark: the upload page's dry run of a large XLSX against the direct dry run (the anchor),
and how responsive the page stays meanwhile.

The anchor is the same dry run called directly (``sodtrack.bulkload.run.read`` + ``load(...,
dry_run=True)``, what ``sodtrack-etl load --dry-run`` does) in this process, on the same
simulator (loopback, rate limit ``--rate``); its time is what the API's checks need. Then the
same file goes through the page under uvicorn: uploaded over HTTP (``POST /api/uploads``), its
preview polled until ready. Meanwhile another thread asks ``GET /api/me`` every 100 ms and
records each answer's latency. Printed: both times, their ratio (page / anchor: 1.0 = the page
adds nothing), and the latency of the page's answers during the dry run (median, p95, max).

    uv run python bench/bench_web_preview.py [--rows 10000] [--projects 500] [--rate 20]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx

from sodtrack.bulkload.run import load, read
from sodtrack.bulkload.synth import synthesize_upload
from sodtrack.client import country_client
from sodtrack.settings import Settings
from sodtrack.simulator.app import create_app
from sodtrack.simulator.config import SimConfig
from sodtrack.simulator.testing import serve_in_thread
from sodtrack.web.accounts import Accounts
from sodtrack.web.app import create_web_app

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def settings_in(work: Path, base_url: str, name: str) -> Settings:
    return Settings(
        base_url=base_url,
        country="cl",
        state_url=f"sqlite:///{work / name / 'state.db'}",
        uploads=str(work / name / "uploads"),
        outbox=str(work / name / "outbox"),
    )


def main(args: argparse.Namespace) -> None:
    app = create_app(SimConfig(rate_limit=args.rate, bookings=20_000))
    work = Path(tempfile.mkdtemp(prefix="sodtrack-bench-web-"))
    path = work / "bookings.xlsx"
    with serve_in_thread(app) as sim_url:
        direct = settings_in(work, sim_url, "direct")

        async def build() -> None:
            async with country_client(direct, "cl") as client:
                await synthesize_upload(
                    client, path, country="cl", rows=args.rows, projects=args.projects
                )

        asyncio.run(build())

        started = time.monotonic()
        parsed = read(path, "cl")
        anchor = asyncio.run(load(direct, parsed, uploaded_by="bench", dry_run=True))
        anchor_s = time.monotonic() - started

        web = settings_in(work, sim_url, "web")
        accounts = Accounts(web.state_url)
        accounts.add("bench", "bench password", ["cl"])
        token = accounts.new_token("bench")
        headers = {"authorization": f"Bearer {token}"}
        latencies: list[float] = []
        stop = threading.Event()
        with serve_in_thread(create_web_app(web)) as url:

            def probe() -> None:
                with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
                    while not stop.is_set():
                        t0 = time.monotonic()
                        http.get("/api/me").raise_for_status()
                        latencies.append(time.monotonic() - t0)
                        stop.wait(0.1)

            with httpx.Client(base_url=url, headers=headers, timeout=120) as http:
                started = time.monotonic()
                with path.open("rb") as fh:
                    answer = http.post(
                        "/api/uploads",
                        data={"country": "cl"},
                        files={"file": (path.name, fh, XLSX)},
                    )
                answer.raise_for_status()
                upload_id = answer.json()["upload_id"]
                prober = threading.Thread(target=probe, daemon=True)
                prober.start()
                while True:
                    preview = http.get(f"/api/uploads/{upload_id}/preview")
                    if preview.status_code == 200:
                        break
                    if preview.json().get("preview_status") == "failed":
                        raise SystemExit(f"the page's dry run failed: {preview.json()['error']}")
                    time.sleep(0.25)
                web_s = time.monotonic() - started
                stop.set()
                prober.join()
    counts = preview.json()["counts"]
    print(
        f"file: {args.rows} rows, {args.projects} projects; "
        f"simulator rate limit {args.rate:g} req/s"
    )
    print(f"anchor (direct dry run: read + live checks): {anchor_s:.1f} s, {dict(anchor.counts)}")
    print(f"page (upload over HTTP + background dry run until the preview is ready): {web_s:.1f} s")
    print(f"ratio (page / anchor): {web_s / anchor_s:.3f}")
    print(f"preview counts: {counts}")
    if latencies:
        ordered = sorted(latencies)
        p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
        print(
            f"page answers during the dry run ({len(latencies)} GET /api/me): median "
            f"{statistics.median(latencies) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
            f"max {max(latencies) * 1000:.0f} ms"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--projects", type=int, default=500)
    parser.add_argument("--rate", type=float, default=20.0)
    main(parser.parse_args())
