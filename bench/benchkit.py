"""What the benchmark scripts share: peak-RSS sampling, a simulator in its own process, a
measurement in a fresh child process, and printing a result. ``bench_extract`` and
``bench_dlt`` both import it, and neither imports the other at module level."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil

VENV_BIN = Path(sys.executable).parent


# ---------------------------------------------------------------- measuring


class RssSampler:
    """Peak RSS of this process (and, separately, with its children) sampled every 20 ms."""

    def __init__(self, interval_s: float = 0.02) -> None:
        self.interval_s = interval_s
        self.peak = 0
        self.peak_with_children = 0
        self.phase_peak = 0
        self.phases: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss", daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            try:
                own = me.memory_info().rss
                kids = sum(c.memory_info().rss for c in me.children(recursive=True))
            except psutil.Error:
                continue
            self.peak = max(self.peak, own)
            self.phase_peak = max(self.phase_peak, own)
            self.peak_with_children = max(self.peak_with_children, own + kids)
            self._stop.wait(self.interval_s)

    def mark(self, phase: str) -> None:
        """End a phase: remember its peak RSS (MiB) and start the next one."""
        own = psutil.Process().memory_info().rss
        self.phases[phase] = round(max(self.phase_peak, own) / 2**20)
        self.phase_peak = own

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def maxrss_mib() -> float:
    """``ru_maxrss`` of this process (KiB on Linux) in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# ---------------------------------------------------------------- the simulator process


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def simulator(bookings: int, port: int = 0) -> Iterator[str]:
    """``sodtrack-sim serve --rate-limit 0 --bookings N`` in its own process; yields its URL
    once ``/_sim/health`` answers."""
    port = port or free_port()
    command = [
        str(VENV_BIN / "sodtrack-sim"),
        "serve",
        "--rate-limit",
        "0",
        "--bookings",
        str(bookings),
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    started = time.perf_counter()
    proc = subprocess.Popen(command)
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the simulator exited with {proc.returncode}")
            try:
                if httpx.get(f"{url}/_sim/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        print(
            f"# simulator: {bookings:,} bookings, ready in {time.perf_counter() - started:.1f} s "
            f"(pid {proc.pid}, {url})",
            flush=True,
        )
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def simulator_rss_mib(url: str) -> float | None:
    port = int(url.rsplit(":", 1)[1])
    for conn in psutil.net_connections("tcp"):
        if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN:
            if conn.pid is None:
                return None
            return float(psutil.Process(conn.pid).memory_info().rss) / 2**20
    return None


def run_child(args: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run this script (or another bench script) in a fresh process; parse its JSON line."""
    out = subprocess.run(
        [sys.executable, *args], check=True, stdout=subprocess.PIPE, text=True, env=env
    ).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def print_result(r: dict[str, Any]) -> None:
    print(
        f"{r['tool']:>5} {r['which']:<17} {r['records']:>9,} records  {r['wall_s']:>7.1f} s  "
        f"{r['records_per_s']:>7,} rec/s   peak RSS {r['maxrss_mib']:>5,} MiB (ru_maxrss), "
        f"{r['sampled_peak_rss_mib']:>5,} MiB (sampled)   load {r['load_before']} → "
        f"{r['load_after']}",
        flush=True,
    )
    detail = {
        k: v
        for k, v in r.items()
        if k
        not in (
            "tool",
            "which",
            "records",
            "wall_s",
            "records_per_s",
            "maxrss_mib",
            "sampled_peak_rss_mib",
            "load_before",
            "load_after",
        )
    }
    print(f"      {json.dumps(detail)}", flush=True)
