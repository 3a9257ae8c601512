"""Benchmark: our bookings extraction beside dlt's ``rest_api`` source, same simulator, one run.

One simulator process (``sodtrack-sim serve --rate-limit 0 --bookings N``); then, each in a
fresh child process so that peak RSS is its own:

* **dlt**: ``rest_api_source`` with a cursor paginator on ``next_cursor`` (``cursor`` query
  parameter), ``limit=1000`` per page, a bearer token from ``POST /api/v1/auth/token`` (a
  small ``OAuth2ClientCredentials`` subclass: the endpoint takes JSON, not a form), into the
  ``filesystem`` destination with ``loader_file_format="parquet"`` in a temp dir. Otherwise
  dlt's defaults (one extract thread, normalize in-process, its default buffer sizes).
* **ours**: ``run_extraction`` of the bookings family, ``--full-refresh`` (the catalog and
  coverage are published first, untimed: the bookings are validated against them).

Both walk every booking once, the same pages. Ours also keeps a changes log, merges the
latest state into month partitions, validates both datasets with Great Expectations and
publishes atomically; dlt writes one Parquet file of what it received (money and ids as
text, timestamps detected). So two ratios are printed: end to end, and ours' staging alone
(walk + convert + changes log + merge) against dlt's whole ``pipeline.run``.

    uv run --group bench python bench/bench_dlt.py                   # 200k bookings
    uv run --group bench python bench/bench_dlt.py --bookings 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from benchkit import (
    RssSampler,
    load,
    maxrss_mib,
    print_result,
    run_child,
    simulator,
)


def measure_dlt(base_url: str, root: str) -> dict[str, Any]:
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    import dlt
    import pyarrow.dataset as pads
    from dlt.common.configuration import configspec
    from dlt.sources.helpers.rest_client.auth import OAuth2ClientCredentials
    from dlt.sources.rest_api import rest_api_source

    @configspec
    class SodtrackToken(OAuth2ClientCredentials):  # type: ignore[misc]
        """``POST /auth/token`` with ``{"client_id", "client_secret"}`` as JSON."""

        def build_access_token_request(self) -> dict[str, Any]:
            return {"json": {"client_id": self.client_id, "client_secret": self.client_secret}}

    source = rest_api_source(
        {
            "client": {
                "base_url": f"{base_url}/api/v1/",
                "auth": SodtrackToken(
                    access_token_url=f"{base_url}/api/v1/auth/token",
                    client_id="sim-client",
                    client_secret="sim-secret",  # noqa: S106 (the simulator's default)
                ),
                "paginator": {
                    "type": "cursor",
                    "cursor_path": "next_cursor",
                    "cursor_param": "cursor",
                },
            },
            "resources": [
                {
                    "name": "bookings",
                    "endpoint": {
                        "path": "bookings",
                        "params": {"limit": 1000},
                        "data_selector": "data",
                    },
                    "write_disposition": "replace",
                }
            ],
        }
    )
    lake = Path(root, "lake")
    pipeline = dlt.pipeline(
        pipeline_name="sodtrack_bench",
        destination=dlt.destinations.filesystem(bucket_url=str(lake)),
        dataset_name="sodtrack",
        pipelines_dir=str(Path(root, "pipelines")),
    )
    load_before = load()
    with RssSampler() as rss:
        started = time.perf_counter()
        pipeline.run(source, loader_file_format="parquet")
        wall = time.perf_counter() - started
    trace = pipeline.last_trace
    assert trace is not None
    steps = {
        s.step: round((s.finished_at - s.started_at).total_seconds(), 2)
        for s in trace.steps
        if s.finished_at is not None
    }
    files = sorted(str(p) for p in lake.rglob("*.parquet") if "bookings" in p.parts)
    rows = pads.dataset(files, format="parquet").count_rows()
    return {
        "tool": "dlt",
        "which": "bookings",
        "records": rows,
        "wall_s": round(wall, 2),
        "records_per_s": round(rows / wall),
        "steps_s": steps,
        "parquet_files": len(files),
        "maxrss_mib": round(maxrss_mib()),
        "sampled_peak_rss_mib": round(rss.peak / 2**20),
        "sampled_peak_rss_with_children_mib": round(rss.peak_with_children / 2**20),
        "load_before": load_before,
        "load_after": load(),
        "dlt": dlt.__version__,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bookings", type=int, default=200_000)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--child", choices=["dlt"], help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure_dlt(args.base_url, args.root)), flush=True)
        return

    print(f"# {os.cpu_count()} CPUs, load average {load()}", flush=True)
    with simulator(args.bookings) as url, tempfile.TemporaryDirectory(prefix="bench-dlt-") as tmp:
        ours_root = str(Path(tmp, "ours"))
        run_child([EXTRACT, "--child", "catalog+coverage", "--base-url", url, "--root", ours_root])
        print("# catalog and coverage published (untimed here)", flush=True)
        compare(url, ours_root, str(Path(tmp, "dlt")), args.bookings)


EXTRACT = str(Path(__file__).with_name("bench_extract.py"))


def compare(url: str, ours_root: str, dlt_root: str, bookings: int) -> dict[str, Any]:
    """dlt, then ours (bookings, full refresh), against the simulator at ``url``; prints
    both and the ratios. ``ours_root`` must have the catalog and coverage published."""
    theirs = run_child([__file__, "--child", "dlt", "--base-url", url, "--root", dlt_root])
    theirs["bookings"] = bookings
    print_result(theirs)
    ours = run_child([EXTRACT, "--child", "bookings", "--base-url", url, "--root", ours_root])
    ours["bookings"] = bookings
    print_result(ours)
    staging_rate = ours["records"] / ours["stage_s"]
    print(
        f"# {bookings:,} bookings: ours {ours['records_per_s']:,} rec/s end to end "
        f"({staging_rate:,.0f} rec/s staging), dlt {theirs['records_per_s']:,} rec/s\n"
        f"# ratio ours/dlt: {ours['records_per_s'] / theirs['records_per_s']:.2f} end to end, "
        f"{staging_rate / theirs['records_per_s']:.2f} our staging vs dlt's whole run; "
        f"peak RSS ours {ours['maxrss_mib']:,} MiB, dlt {theirs['maxrss_mib']:,} MiB",
        flush=True,
    )
    return {"ours": ours, "dlt": theirs}


if __name__ == "__main__":
    main()
