"""Benchmark: a 5,000-row upload (projects, stages, payments) against the simulator on loopback
with 50 ms latency and a 20 req/s rate limit; rows/s against the rate limit's ceiling.

The ceiling is what the rate limit allows at best: ``requests needed ÷ rate limit`` seconds,
where *needed* is the writes the file requires (one per project, booking, stage and payment)
plus the reads validation cannot do without (token, catalog, coverage). The ratio is measured
rows/s over ceiling rows/s (1.0 = the loader is as fast as the limit allows; the bucket's
initial burst lets a run slightly beat it).

    uv run python bench/bench_load.py [--rows 5000] [--projects 500] [--rate 20] [--latency 50]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import httpx
from pydantic import SecretStr

from sodtrack.bulkload import read_upload
from sodtrack.bulkload.engine.ledger import Ledger
from sodtrack.bulkload.engine.plan import build_plan
from sodtrack.bulkload.engine.run import run_upload
from sodtrack.bulkload.synth import synthesize_upload
from sodtrack.client import Credentials, RateLimiter, SodtrackClient
from sodtrack.simulator.app import create_app
from sodtrack.simulator.config import SimConfig
from sodtrack.simulator.testing import serve_in_thread


def _client(base_url: str, rate: float, concurrency: int) -> SodtrackClient:
    http = httpx.AsyncClient(
        timeout=30,
        limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
    )
    return SodtrackClient(
        http,
        base_url=base_url,
        country="cl",
        credentials=Credentials("sim-client", SecretStr("sim-secret")),
        rate_limiter=RateLimiter(rate),
        max_concurrency=concurrency,
        owns_http=True,
    )


async def main(args: argparse.Namespace) -> None:
    config = SimConfig(
        rate_limit=args.rate,
        latency_ms=args.latency,
        bookings=20_000,  # seeded history: not what is measured, kept small to start fast
    )
    app = create_app(config)
    work = Path(tempfile.mkdtemp(prefix="sodtrack-bench-load-"))
    path = work / "bookings.xlsx"
    with serve_in_thread(app) as base_url:
        async with _client(base_url, args.rate, args.concurrency) as client:
            summary = await synthesize_upload(
                client, path, country="cl", rows=args.rows, projects=args.projects
            )
        parsed = read_upload(path, "cl")
        plan = build_plan(parsed.rows)
        writes = len(plan.all_steps())
        before = app.state.sim.counters_snapshot()["requests"]
        ledger = Ledger(f"sqlite:///{work}/ledger.db")
        async with _client(base_url, args.rate, args.concurrency) as client:
            started = time.monotonic()
            result = await run_upload(
                parsed, client, ledger, uploaded_by="bench", concurrency=4 * args.concurrency
            )
            elapsed = time.monotonic() - started
            stats = client.stats
            made = stats.total_requests
            reads = made - sum(
                n for (op, _), n in stats.requests.items() if op.startswith("create")
            )
        after = app.state.sim.counters_snapshot()["requests"]
    served = sum(sum(v.values()) for v in after.values()) - sum(
        sum(v.values()) for v in before.values()
    )
    # needed: every write, plus the reads validation needs (token, services, a variant list
    # per service named with a variant, coverage zones)
    needed = writes + reads
    ceiling_s = needed / args.rate
    rows_s = len(parsed.rows) / elapsed
    ceiling_rows_s = len(parsed.rows) / ceiling_s
    print(
        f"file: {summary.rows} rows, {summary.projects} projects, {summary.stages} stages, "
        f"{summary.payments} payments ({summary.plain} plain bookings)"
    )
    print(
        f"simulator: latency {args.latency:g} ms, rate limit {args.rate:g} req/s "
        f"(burst {config.burst}), loopback HTTP"
    )
    print(f"outcomes: {result.counts}")
    print(f"elapsed: {elapsed:.1f} s  ->  {rows_s:.2f} rows/s")
    print(f"requests: made {made} (writes {made - reads}, reads {reads}); server saw {served}")
    print(
        f"needed: {needed} (writes {writes} + reads {reads})  ->  ceiling {ceiling_s:.1f} s, "
        f"{ceiling_rows_s:.2f} rows/s"
    )
    print(f"ratio (measured / ceiling rows/s): {rows_s / ceiling_rows_s:.3f}")
    print(
        f"client: retries {stats.total_retries}, 429s {stats.rate_limited}, "
        f"limiter wait {stats.limiter_wait_s:.1f} s"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--projects", type=int, default=500)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--latency", type=float, default=50.0)
    parser.add_argument("--concurrency", type=int, default=8)
    asyncio.run(main(parser.parse_args()))
