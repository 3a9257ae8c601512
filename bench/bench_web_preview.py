"""Benchmark: the upload page's dry run of a large XLSX against the direct dry run (the anchor),
and how responsive the page stays meanwhile.

The anchor is the same dry run called directly (``sodtrack.bulkload.run.read`` + ``load(...,
dry_run=True)``, what ``sodtrack-etl load --dry-run`` does) in this process, on the same
simulator (loopback, rate limit ``--rate``); its time is what the API's checks need. Then the
same file goes through the page under uvicorn: uploaded over HTTP (``POST /api/uploads``), its
preview polled until ready. Meanwhile another thread asks ``GET /api/me`` every 100 ms and
records each answer's latency, with the phase the dry run reported at that moment. The same
probe runs for ``--idle`` seconds against the idle page first: that is the latency anchor (what
the machine's own load costs an answer in this run). Printed: both times, their ratio (page /
anchor: 1.0 = the page adds nothing), the latency of the page's answers during the dry run and
idle (median, p95, max, and max during / max idle), the phases and times of the slowest
answers, and this process's full garbage collections (each stops every thread) that overlapped
them.

    uv run python bench/bench_web_preview.py [--rows 10000] [--projects 500] [--rate 20]
        [--idle 30] [--sim-in-process]

The simulator runs in a process of its own (``sodtrack-sim serve``), as the real API is not in
the page's process; ``--sim-in-process`` serves it from a thread of this process instead (its
work then competes with the page's for the interpreter).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
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


SIM_BOOKINGS = 20_000


@contextlib.contextmanager
def simulator(args: argparse.Namespace) -> Iterator[str]:
    """The simulator's URL: in a thread of this process, or in a process of its own."""
    if args.sim_in_process:
        with serve_in_thread(
            create_app(SimConfig(rate_limit=args.rate, bookings=SIM_BOOKINGS))
        ) as url:
            yield url
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sim_cli = str(Path(sys.executable).parent / "sodtrack-sim")
    command = [sim_cli, "serve", "--country", "cl", "--rate-limit", f"{args.rate:g}"]
    command += ["--bookings", str(SIM_BOOKINGS), "--port", str(port), "--log-level", "warning"]
    proc = subprocess.Popen(command)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(f"{url}/_sim/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the simulator did not start")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(30)


pauses: list[tuple[float, float]] = []
"""(start, duration) of each generation-2 collection in this process."""
_gc_started = [0.0]


def _gc_timer(phase: str, info: dict[str, int]) -> None:
    if info.get("generation") != 2:
        return
    if phase == "start":
        _gc_started[0] = time.monotonic()
    else:
        pauses.append((_gc_started[0], time.monotonic() - _gc_started[0]))


def main(args: argparse.Namespace) -> None:
    gc.callbacks.append(_gc_timer)
    work = Path(tempfile.mkdtemp(prefix="sodtrack-bench-web-"))
    path = work / "bookings.xlsx"
    with simulator(args) as sim_url:
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
        phases: list[str] = []
        starts: list[float] = []
        phase = ["idle"]
        stop = threading.Event()
        with serve_in_thread(create_web_app(web)) as url:

            def probe(into: list[float], until: float | None = None) -> None:
                with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
                    while not stop.is_set() and (until is None or time.monotonic() < until):
                        t0 = time.monotonic()
                        http.get("/api/me").raise_for_status()
                        into.append(time.monotonic() - t0)
                        if until is None:
                            phases.append(phase[0])
                            starts.append(t0)
                        stop.wait(0.1)

            idle: list[float] = []
            probe(idle, time.monotonic() + args.idle)

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
                prober = threading.Thread(target=probe, args=(latencies,), daemon=True)
                prober.start()
                while True:
                    preview = http.get(f"/api/uploads/{upload_id}/preview")
                    if preview.status_code == 200:
                        break
                    if preview.json().get("preview_status") == "failed":
                        raise SystemExit(f"the page's dry run failed: {preview.json()['error']}")
                    progress = preview.json().get("progress") or {}
                    phase[0] = str(progress.get("phase") or preview.json()["preview_status"])
                    time.sleep(0.25)
                web_s = time.monotonic() - started
                stop.set()
                prober.join()
    counts = preview.json()["counts"]
    where = "in this process" if args.sim_in_process else "in its own process"
    print(
        f"file: {args.rows} rows, {args.projects} projects; "
        f"simulator ({where}) rate limit {args.rate:g} req/s"
    )
    print(f"anchor (direct dry run: read + live checks): {anchor_s:.1f} s, {dict(anchor.counts)}")
    print(f"page (upload over HTTP + background dry run until the preview is ready): {web_s:.1f} s")
    print(f"ratio (page / anchor): {web_s / anchor_s:.3f}")
    print(f"preview counts: {counts}")
    if latencies and idle:
        for label, values in (("during the dry run", latencies), ("idle (anchor)", idle)):
            ordered = sorted(values)
            p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
            print(
                f"page answers {label} ({len(values)} GET /api/me): median "
                f"{statistics.median(values) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
                f"max {max(values) * 1000:.0f} ms"
            )
        print(f"max during / max idle: {max(latencies) / max(idle):.2f}")
        slowest = sorted(zip(latencies, phases, starts, strict=True), reverse=True)[:5]
        print("slowest answers (latency, phase, wall clock, full GCs overlapping):")
        for v, p, t0 in slowest:
            overlapping = [d for s, d in pauses if s < t0 + v and s + d > t0]
            wall = time.strftime("%H:%M:%S", time.localtime(time.time() - time.monotonic() + t0))
            gcs = ", ".join(f"{d * 1000:.0f} ms" for d in overlapping) or "none"
            print(f"  {v * 1000:.0f} ms ({p}) at {wall}; GC gen 2: {gcs}")
        total = sum(d for _, d in pauses)
        longest = max((d for _, d in pauses), default=0.0)
        print(f"full GCs: {len(pauses)}, longest {longest * 1000:.0f} ms, total {total:.1f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--projects", type=int, default=500)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--idle", type=float, default=30.0, help="Seconds of idle probing.")
    parser.add_argument("--sim-in-process", action="store_true", help="The simulator in a thread.")
    main(parser.parse_args())
