"""Benchmark: the client walks every booking of a default simulator over loopback.

The simulator runs with its default seed and scale (200,000 bookings), rate limiting off,
under real uvicorn on 127.0.0.1 in a background thread (so the server's CPU competes with
the client's for the GIL: the figures are a floor for a separate-process server). The client
walks ``GET /bookings`` with ``limit=1000`` (one page per request, sequential: a cursor walk
cannot be parallelised) and validates every record into ``contract.models.Booking``. Prints
records/s, pages/s, seconds per page, the client's stats and the process's peak RSS.

    uv run python bench/bench_client_walk.py [--bookings 200000] [--limit 1000]
                                             [--dedupe | --no-dedupe]
                                             [--prefetch | --no-prefetch] [--repeat 1]
                                             [--all]

``--no-dedupe`` (the default here) is how the extraction walks (it de-duplicates out of
core); ``--dedupe`` keeps the in-memory ``LatestById`` filter on.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time

import httpx
import orjson
from pydantic import SecretStr

from sodtrack.client import Credentials, SodtrackClient
from sodtrack.contract.limits import API_PREFIX, PARAM_CURSOR, PARAM_LIMIT
from sodtrack.contract.operations import OPERATIONS
from sodtrack.simulator.app import create_app
from sodtrack.simulator.config import SimConfig
from sodtrack.simulator.testing import serve_in_thread


async def walk(
    base_url: str, client_id: str, secret: str, limit: int, dedupe: bool, prefetch: bool
) -> None:
    async with (
        httpx.AsyncClient(timeout=60.0) as http,
        SodtrackClient(
            http,
            base_url=base_url,
            country="cl",
            credentials=Credentials(client_id, SecretStr(secret)),
        ) as client,
    ):
        started = time.perf_counter()
        first_page_s: float | None = None
        records = kept = pages = 0
        w = client.list_bookings(limit=limit, dedupe=dedupe, prefetch=prefetch)
        async for page in w:
            if first_page_s is None:
                first_page_s = time.perf_counter() - started
            pages += 1
            records += page.received
            kept += len(page.items)
        elapsed = time.perf_counter() - started
    print(
        f"walk limit={limit} dedupe={dedupe} prefetch={prefetch}: "
        f"{records:,} records ({kept:,} yielded) "
        f"in {pages} pages, {elapsed:.2f} s"
    )
    print(f"  records/s: {records / elapsed:,.0f}")
    print(f"  pages/s:   {pages / elapsed:,.2f}  ({1000 * elapsed / pages:.1f} ms/page)")
    print(f"  first page (incl. token): {1000 * (first_page_s or 0):.1f} ms")
    print(f"  superseded={w.superseded} duplicates_dropped={w.duplicates_dropped}")
    print("  stats:", json.dumps(client.stats.as_dict(), sort_keys=True))


async def baseline(base_url: str, client_id: str, secret: str, limit: int) -> None:
    """The floor: the same walk with bare httpx + orjson (no models, no client machinery)."""
    root = base_url + API_PREFIX
    async with httpx.AsyncClient(timeout=60.0) as http:
        token = orjson.loads(
            (
                await http.post(
                    root + OPERATIONS["issue_token"].path,
                    json={"client_id": client_id, "client_secret": secret},
                )
            ).content
        )["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        started = time.perf_counter()
        params: dict[str, str | int] = {PARAM_LIMIT: limit}
        records = pages = 0
        while True:
            response = await http.get(
                root + OPERATIONS["list_bookings"].path, params=params, headers=headers
            )
            body = orjson.loads(response.content)
            records += len(body["data"])
            pages += 1
            if body["next_cursor"] is None:
                break
            params = {PARAM_LIMIT: limit, PARAM_CURSOR: body["next_cursor"]}
        elapsed = time.perf_counter() - started
    print(
        f"baseline (bare httpx + orjson, no models): {records:,} records in {pages} pages, "
        f"{elapsed:.2f} s = {records / elapsed:,.0f} records/s, {pages / elapsed:.2f} pages/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bookings", type=int, default=SimConfig().bookings)
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--dedupe", action=argparse.BooleanOptionalAction, default=False)
    parser.add_argument("--prefetch", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument(
        "--all",
        action="store_true",
        help="a bare-httpx baseline, then the walk plain, without prefetch, and deduped",
    )
    args = parser.parse_args()

    started = time.perf_counter()
    config = SimConfig(bookings=args.bookings, rate_limit=0.0)
    app = create_app(config)
    print(f"simulator seeded: {args.bookings:,} bookings in {time.perf_counter() - started:.1f} s")
    variants: list[tuple[bool, bool]] = [(args.dedupe, args.prefetch)]
    if args.all:
        variants = [(False, True), (False, False), (True, True)]
    with serve_in_thread(app) as base_url:
        if args.all:
            asyncio.run(baseline(base_url, config.client_id, config.client_secret, args.limit))
        for _ in range(args.repeat):
            for dedupe, prefetch in variants:
                asyncio.run(
                    walk(
                        base_url,
                        config.client_id,
                        config.client_secret,
                        args.limit,
                        dedupe,
                        prefetch,
                    )
                )
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS (server + client, one process): {peak_mib:,.0f} MiB")


if __name__ == "__main__":
    main()
