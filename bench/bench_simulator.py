"""Benchmark of the simulator at default scale (seed 42, 200,000 bookings, rate limit off).

Measures, and prints:

* seeding time and memory, in this process (``seed_state`` alone);
* the real server: ``sodtrack-sim serve`` in a subprocess under uvicorn on loopback, its
  time to readiness and its RSS after seeding and after the walk;
* a full cursor walk over every seeded booking with ``limit=500`` using raw httpx (no
  project client): pages/s and records/s.

Run: ``uv run python bench/bench_simulator.py``
"""

from __future__ import annotations

import gc
import os
import socket
import subprocess
import sys
import time

import httpx
import orjson
import psutil

from sodtrack.contract.limits import API_PREFIX
from sodtrack.contract.operations import operation
from sodtrack.simulator.clock import Clock
from sodtrack.simulator.config import SimConfig
from sodtrack.simulator.seed import seed_state

LIMIT = 500


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def bench_seeding() -> None:
    config = SimConfig()
    process = psutil.Process(os.getpid())
    before = process.memory_info().rss
    started, cpu = time.perf_counter(), time.process_time()
    state = seed_state(config, Clock.from_config(None).now_us())
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    grown = process.memory_info().rss - before
    bookings = len(state.clients[config.client_id].bookings)
    print(
        f"seeding: {bookings} bookings in {wall:.2f} s wall ({cpu:.2f} s CPU), "
        f"+{grown / 2**20:.0f} MiB RSS"
    )
    del state
    gc.collect()


def bench_server() -> None:
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable, "-c", "from sodtrack.simulator.cli import main; main()",
        "serve", "--port", str(port), "--rate-limit", "0", "--log-level", "warning",
    ]  # fmt: skip
    started = time.perf_counter()
    server = subprocess.Popen(command)
    try:
        with httpx.Client(base_url=base_url, timeout=60) as http:
            while True:
                if server.poll() is not None:
                    raise RuntimeError("the simulator exited")
                try:
                    if http.get("/_sim/health").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            ready = time.perf_counter() - started
            rss = psutil.Process(server.pid).memory_info().rss
            print(
                f"server: ready in {ready:.2f} s (import + seed + bind), RSS {rss / 2**20:.0f} MiB"
            )
            token_path = API_PREFIX + operation("issue_token").path
            list_path = API_PREFIX + operation("list_bookings").path

            def token() -> dict[str, str]:
                body = {"client_id": "sim-client", "client_secret": "sim-secret"}
                issued = http.post(token_path, json=body).json()
                return {"Authorization": f"Bearer {issued['access_token']}"}

            headers = token()
            pages = records = 0
            nbytes = 0
            cursor: str | None = None
            walk_started = time.perf_counter()
            while True:
                params: dict[str, str | int] = {"limit": LIMIT}
                if cursor:
                    params["cursor"] = cursor
                response = http.get(list_path, params=params, headers=headers)
                if response.status_code == 401:
                    headers = token()
                    continue
                response.raise_for_status()
                body = orjson.loads(response.content)
                pages += 1
                records += len(body["data"])
                nbytes += len(response.content)
                cursor = body["next_cursor"]
                if cursor is None:
                    break
            elapsed = time.perf_counter() - walk_started
            rss_after = psutil.Process(server.pid).memory_info().rss
            print(
                f"cursor walk (limit={LIMIT}): {pages} pages, {records} records, "
                f"{nbytes / 2**20:.0f} MiB in {elapsed:.2f} s -> "
                f"{pages / elapsed:.1f} pages/s, {records / elapsed:,.0f} records/s "
                f"(client parses JSON with orjson)"
            )
            print(f"server RSS after the walk: {rss_after / 2**20:.0f} MiB")
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    bench_seeding()
    bench_server()


if __name__ == "__main__":
    main()
