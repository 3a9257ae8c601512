"""Benchmark: a bulk load through a flaky network (issue #10, item 6).

The simulator (small test scale, rate limit off) runs under real uvicorn on 127.0.0.1; in
front of it the fault-injecting proxy of :mod:`sodtrack.simulator.flakyproxy` spoils
``--rate`` of the answers (seeded): 5xx with JSON and HTML bodies, 429 without headers,
stalls longer than the client's read timeout, answers held back after the write committed,
2xx bodies cut short or empty; the first answers of the checks before writing (the services
and zones lists) are spoiled on every run as well. An upload of ``--rows`` rows with projects,
stages and payments (``synthesize_upload`` against the live catalog) is loaded, and re-run
through the ledger until complete (at most ``--runs``).

Prints, per run: the counts by outcome, requests, retries by cause, unreadable answers,
reconciliations and wall time; the proxy's faults served; then the same upload on a fresh
simulator through the proxy with faults off (the fault-free floor) and the ratio of requests.

    uv run python bench/bench_flaky.py [--rows 200] [--projects 25] [--seed 10]
                                       [--rate 0.12] [--read-timeout 0.5]
                                       [--concurrency 4] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from sodtrack.bulkload import read_upload
from sodtrack.bulkload.engine.ledger import Ledger
from sodtrack.bulkload.engine.run import run_upload
from sodtrack.bulkload.outcomes import UploadResult
from sodtrack.bulkload.synth import synthesize_upload
from sodtrack.client import Credentials, SodtrackClient
from sodtrack.simulator.app import create_app
from sodtrack.simulator.flakyclient import PRE_CHECK_FAULTS, flaky_client
from sodtrack.simulator.flakyproxy import FAULTS, FlakyProxy, serve_flaky_proxy
from sodtrack.simulator.testing import SIM_NOW, SimulatorTransport, serve_in_thread, small_config


def line(i: int, result: UploadResult, wall: float) -> str:
    stats: Mapping[str, Any] = result.client_stats
    counts = {k: n for k, n in result.counts.items() if n}
    return (
        f"run {i}: outcomes {counts}; requests {result.requests}; "
        f"retries {stats.get('retries_total')} by cause {stats.get('retry_causes')}; "
        f"unreadable {stats.get('unreadable')}; reconciliations {stats.get('reconciliations')}; "
        f"wall {wall:.1f}s"
    )


async def load(
    args: argparse.Namespace, path: Path, db: Path, rate: float, spoil_checks: bool
) -> tuple[list[UploadResult], FlakyProxy]:
    app = create_app(small_config())
    parsed = read_upload(path, "cl")
    ledger = Ledger(f"sqlite:///{db}")
    proxy = FlakyProxy("", seed=args.seed, rate=rate, stall_s=args.read_timeout + 0.4)
    runs: list[UploadResult] = []
    with serve_in_thread(app) as sim_url:
        proxy.upstream = sim_url
        with serve_flaky_proxy(proxy) as url:
            for i in range(1, args.runs + 1):
                if spoil_checks:
                    proxy.script = {cue: list(kinds) for cue, kinds in PRE_CHECK_FAULTS.items()}
                started = time.monotonic()
                async with flaky_client(
                    url, read_timeout_s=args.read_timeout, concurrency=args.concurrency
                ) as client:
                    result = await run_upload(parsed, client, ledger, uploaded_by="bench")
                runs.append(result)
                print("  " + line(i, result, time.monotonic() - started), flush=True)
                if result.complete:
                    break
    ledger.close()
    return runs, proxy


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--projects", type=int, default=25)
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument("--rate", type=float, default=0.12)
    parser.add_argument("--read-timeout", type=float, default=0.5)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-flaky-"))
    path = tmp / "upload.xlsx"
    app = create_app(small_config())
    http = httpx.AsyncClient(transport=SimulatorTransport(app))
    async with SodtrackClient(
        http,
        base_url="http://sim",
        country="cl",
        credentials=Credentials("sim-client", SecretStr("sim-secret")),
        owns_http=True,
    ) as client:
        summary = await synthesize_upload(
            client,
            path,
            country="cl",
            rows=args.rows,
            projects=args.projects,
            today=date.fromisoformat(SIM_NOW[:10]),
            prefix="BNF",
            seed=args.seed,
        )
    print(
        f"upload: {summary.rows} rows, {summary.projects} projects, {summary.stages} stages, "
        f"{summary.payments} payments; proxy spoils {args.rate:.0%} (seed {args.seed}), "
        f"read timeout {args.read_timeout}s, concurrency {args.concurrency}"
    )

    print("flaky network:")
    runs, proxy = await load(args, path, tmp / "flaky.db", args.rate, spoil_checks=True)
    faults = {k: n for k, n in sorted(proxy.counts.items()) if k in FAULTS and n}
    spoiled = sum(faults.values())
    share = spoiled / max(proxy.requests, 1)
    print(f"  proxy: {spoiled} of {proxy.requests} answers spoiled ({share:.1%}): {faults}")
    print("fault-free floor (same proxy, faults off):")
    floor, _ = await load(args, path, tmp / "floor.db", 0.0, spoil_checks=False)
    flaky_requests = sum(r.requests for r in runs)
    floor_requests = sum(r.requests for r in floor)
    final = runs[-1]
    print(
        f"result: {'complete' if final.complete else 'INCOMPLETE'} after {len(runs)} run(s); "
        f"requests {flaky_requests} vs floor {floor_requests} "
        f"(x{flaky_requests / max(floor_requests, 1):.2f})"
    )


if __name__ == "__main__":
    asyncio.run(main())
