"""A load in its own process, for the ``kill -9`` acceptance test (and by hand).

    python tests/bulkload/engine/load_worker.py BASE_URL FILE LEDGER_URL RATE CONCURRENCY

Prints the upload's counts as JSON on its last line when it completes.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import httpx
from pydantic import SecretStr

from sodtrack.bulkload import read_upload
from sodtrack.bulkload.engine.ledger import Ledger
from sodtrack.bulkload.engine.run import run_upload
from sodtrack.client import Credentials, RateLimiter, SodtrackClient


async def main(base_url: str, file: str, ledger_url: str, rate: float, concurrency: int) -> None:
    parsed = read_upload(Path(file), "cl")
    ledger = Ledger(ledger_url)
    http = httpx.AsyncClient(
        timeout=30,
        limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
    )
    client = SodtrackClient(
        http,
        base_url=base_url,
        country="cl",
        credentials=Credentials("sim-client", SecretStr("sim-secret")),
        rate_limiter=RateLimiter(rate),
        max_concurrency=concurrency,
        owns_http=True,
    )
    async with client:
        result = await run_upload(
            parsed, client, ledger, uploaded_by="worker", concurrency=4 * concurrency
        )
    print(json.dumps({"upload_id": result.upload_id, "counts": result.counts}))


if __name__ == "__main__":
    url, path, led, rate, conc = sys.argv[1:6]
    asyncio.run(main(url, path, led, float(rate), int(conc)))
