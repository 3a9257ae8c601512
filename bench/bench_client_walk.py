"""Benchmark: the client walks every booking of a default simulator over loopback.

The simulator runs with its default seed and scale (200,000 bookings), rate limiting off,
under real uvicorn on 127.0.0.1 in a background thread (so the server's CPU competes with
the client's for the GIL: the figures are a floor for a separate-process server). Each round
walks ``GET /bookings`` with ``limit=1000`` (one page per request, sequential: a cursor walk
cannot be parallelised) three ways, one after the other on the same server: a bare
``httpx`` + ``orjson`` walk (the anchor), the client's bulk read (``list_bookings_arrow``:
JSON → Arrow batches of the ``bookings`` schema, what the extraction does) and the client's
model walk (every record a ``contract.models.Booking``). It prints records/s of each and the
line ``RATIO arrow walk / bare walk`` (goal >= 0.90), then the client's stats and the
process's peak RSS.

    uv run python bench/bench_client_walk.py [--bookings 200000] [--limit 1000]
                                             [--prefetch | --no-prefetch] [--repeat 1]
                                             [--all]

``--all`` adds the model walk without prefetch and with the in-memory ``LatestById``
de-duplication.
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
from sodtrack.warehouse.convert import bookings_decoder


async def walk(
    base_url: str, client_id: str, secret: str, limit: int, dedupe: bool, prefetch: bool
) -> float:
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
    return records / elapsed


async def walk_arrow(
    base_url: str, client_id: str, secret: str, limit: int, prefetch: bool
) -> float:
    """The extraction's walk: bulk reads, each page's JSON straight to an Arrow batch."""
    decoder = bookings_decoder()
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
        records = pages = 0
        async with client.list_bookings_arrow(decoder, limit=limit, prefetch=prefetch) as w:
            async for page in w:
                pages += 1
                records += page.received
        elapsed = time.perf_counter() - started
    print(
        f"walk arrow (bulk reads) limit={limit} prefetch={prefetch}: {records:,} records in "
        f"{pages} pages, {elapsed:.2f} s = {records / elapsed:,.0f} records/s "
        f"({1000 * elapsed / pages:.1f} ms/page; pages read by the model path: "
        f"{decoder.fallbacks})"
    )
    return records / elapsed


async def baseline(base_url: str, client_id: str, secret: str, limit: int) -> float:
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
    return records / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bookings", type=int, default=SimConfig().bookings)
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--prefetch", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument(
        "--all",
        action="store_true",
        help="also the model walk without prefetch, and de-duplicated",
    )
    args = parser.parse_args()

    started = time.perf_counter()
    config = SimConfig(bookings=args.bookings, rate_limit=0.0)
    app = create_app(config)
    print(f"simulator seeded: {args.bookings:,} bookings in {time.perf_counter() - started:.1f} s")
    variants: list[tuple[bool, bool]] = [(False, True), (False, False), (True, True)]
    cid, secret = config.client_id, config.client_secret
    with serve_in_thread(app) as base_url:
        for _ in range(args.repeat):
            bare = asyncio.run(baseline(base_url, cid, secret, args.limit))
            arrow = asyncio.run(walk_arrow(base_url, cid, secret, args.limit, args.prefetch))
            models = asyncio.run(walk(base_url, cid, secret, args.limit, False, args.prefetch))
            print(
                f"RATIO arrow walk / bare walk: {arrow / bare:.2f}  (goal >= 0.90); "
                f"model walk / bare walk: {models / bare:.2f}"
            )
            if args.all:
                for dedupe, prefetch in variants[1:]:
                    asyncio.run(walk(base_url, cid, secret, args.limit, dedupe, prefetch))
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS (server + client, one process): {peak_mib:,.0f} MiB")


if __name__ == "__main__":
    main()
