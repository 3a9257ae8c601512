"""Benchmark: the nightly extraction against a simulator in a separate process.

For each size, a simulator is started as its own process (``sodtrack-sim serve --rate-limit 0
--bookings N``, the default seed and catalog), and the extraction runs ``run_extraction``
against it over loopback, each measurement in a fresh child process of this script so that
its peak RSS is its own:

1. ``catalog+coverage`` (categories, services, every service's variants, coverage zones and
   their postal codes), full — once: the catalog does not depend on the number of bookings
   (same seed, same ids), and the bookings runs of every size validate against it;
2. ``bookings``, ``--full-refresh`` (every booking: walk, changes log, merge, validation of
   both datasets, publish).

Printed per measurement: records received from the API, wall time, records/s end to end,
the staging part (walk + convert + merge) and what follows (validation + publish), requests,
peak RSS (``ru_maxrss`` at the end, and the maximum of a 20 ms ``psutil`` sampling), and the
machine's load average. Great Expectations is imported and a context created before the
clock starts (a worker process pays that once, ~10 s here, whatever the data size).

    uv run python bench/bench_extract.py                          # 200k and 1M bookings
    uv run python bench/bench_extract.py --bookings 50000         # a quick look
    uv run python bench/bench_extract.py --base-url http://127.0.0.1:8765 --bookings 200000
    uv run --group bench python bench/bench_extract.py --dlt     # and dlt beside, as a ratio
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from benchkit import (
    RssSampler,
    load,
    maxrss_mib,
    print_result,
    run_child,
    simulator,
    simulator_rss_mib,
)

# ---------------------------------------------------------------- one measurement (child)


FAMILY_SETS = {"bookings": ("bookings",), "catalog+coverage": ("catalog", "coverage")}
PRIMARY = {
    "bookings": ("bookings",),
    "catalog+coverage": ("categories", "services", "variants", "coverage_zones"),
}


def measure_ours(base_url: str, root: str, which: str) -> dict[str, Any]:
    """Our extraction of ``which`` (a key of ``FAMILY_SETS``), full, into ``root``."""
    from sodtrack.client import SodtrackClient
    from sodtrack.extract import ExtractionOptions, run_extraction
    from sodtrack.settings import Settings
    from sodtrack.state import StateStore
    from sodtrack.validation import new_context
    from sodtrack.warehouse import Warehouse

    warm = time.perf_counter()
    new_context()  # imports Great Expectations: a worker pays this once
    warm_s = time.perf_counter() - warm
    settings = Settings(
        base_url=base_url,
        country="cl",
        warehouse=str(Path(root, "warehouse")),
        state_url=f"sqlite:///{Path(root, 'state.db')}",
    )

    @contextlib.asynccontextmanager
    async def factory(country: str) -> AsyncIterator[SodtrackClient]:
        async with SodtrackClient.from_settings(
            settings.model_copy(update={"country": country})
        ) as client:
            yield client

    options = ExtractionOptions(
        countries=("cl",),
        datasets=FAMILY_SETS[which],
        full_refresh=True,
        docs_dir=None,
        reports_dir=None,
        validation_batch_memory=int(settings.validation_batch_memory),
    )
    store = StateStore(settings.state_url)
    rss = RssSampler()

    published: list[str] = []

    import pyarrow as pa

    arrow_at_mark: dict[str, int] = {}

    def on_step(step: str) -> None:
        arrow_at_mark[step + f"#{len(arrow_at_mark)}"] = pa.total_allocated_bytes() >> 20
        # Peak RSS per phase: the walk (and changes log), the merge, the validation of both
        # datasets, then each dataset's publish (commit).
        if step == "merge:started":
            rss.mark("walk")
        elif step == "merge:changes_staged":
            rss.mark("changes+decide")
        elif step == "merge:bookings_staged":
            rss.mark("merge")
        elif step == "publish:checked":
            rss.mark("validate" if not published else f"after publish {len(published)}")
        elif step == "publish:committed":
            published.append(step)
            rss.mark(f"publish {len(published)}")

    # SODTRACK_DUCKDB_* and SODTRACK_VALIDATION_BATCH_MEMORY in the environment apply
    warehouse = Warehouse.from_settings(settings, on_step=on_step)
    baseline = psutil.Process().memory_info().rss / 2**20
    load_before = load()
    with rss:
        started = time.perf_counter()
        report = asyncio.run(
            run_extraction(options, warehouse=warehouse, store=store, client_factory=factory)
        )
        wall = time.perf_counter() - started
        rss.mark("end" if rss.phases else "run")
    store.dispose()
    runs = {d.dataset: d for d in report.datasets()}
    if not report.success:
        problems = [(f.family, f.status, f.error, f.critical_failures) for f in report.families]
        raise SystemExit(f"extraction did not publish: {problems}")
    received = sum(runs[d].received for d in PRIMARY[which])
    # Staging (walk + convert + merge): the bookings datasets share one timing (one walk);
    # coverage_postal_codes is derived from the zones' walk.
    stage_s = (
        runs["bookings"].seconds
        if which == "bookings"
        else sum(d.seconds for d in report.datasets() if d.dataset != "coverage_postal_codes")
    )
    return {
        "tool": "ours",
        "which": which,
        "records": received,
        "rows_written": {d: r.written for d, r in runs.items()},
        "wall_s": round(wall, 2),
        "records_per_s": round(received / wall),
        "stage_s": round(stage_s, 2),
        "validate_publish_s": round(wall - stage_s, 2),
        "requests": report.client["requests"],
        "retries": report.client["retries"],
        "maxrss_mib": round(maxrss_mib()),
        "sampled_peak_rss_mib": round(rss.peak / 2**20),
        "rss_before_run_mib": round(baseline),
        "peak_rss_by_phase_mib": rss.phases,
        "arrow_allocated_at_step_mib": arrow_at_mark,
        "gx_import_s": round(warm_s, 1),
        "load_before": load_before,
        "load_after": load(),
    }


def measure(
    url: str, root: str, which: str, bookings: int, env: dict[str, str] | None = None
) -> dict[str, Any]:
    args = [__file__, "--child", which, "--base-url", url, "--root", root]
    result = run_child(args, {**os.environ, **env} if env else None)
    if env:
        result["tool"] = "ours'"
        result["env"] = env
    result["bookings"] = bookings
    print_result(result)
    return result


def measure_other(src: str, url: str, root: str, bookings: int, *, first: bool) -> dict[str, Any]:
    """The bookings extraction of the code checked out at ``src`` (its own bench script)."""
    script = str(Path(src, "bench", "bench_extract.py"))
    env = {**os.environ, "PYTHONPATH": src}
    if first:
        run_child([script, "--child", "catalog+coverage", "--base-url", url, "--root", root], env)
    result = run_child([script, "--child", "bookings", "--base-url", url, "--root", root], env)
    result["tool"] = "other"
    result["bookings"] = bookings
    print_result(result)
    return result


@dataclass
class Size:
    bookings: int
    results: list[dict[str, Any]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bookings", type=int, nargs="+", default=[200_000, 1_000_000])
    parser.add_argument("--base-url", help="Use this running simulator (one size only).")
    parser.add_argument(
        "--dlt",
        action="store_true",
        help="Also extract the bookings with dlt's rest_api source (bench_dlt.py), per size, "
        "against the same simulator process, and print the ratio.",
    )
    parser.add_argument(
        "--compare-with",
        metavar="SRC",
        help="Also run the bookings extraction of another checkout of the code (e.g. "
        "`git archive main | tar -x -C /tmp/main`) against the same simulator, with its "
        "own bench_extract.py and PYTHONPATH=SRC, and print its figures beside ours "
        "(before/after in one run).",
    )
    parser.add_argument(
        "--variant",
        metavar="KEY=VALUE",
        nargs="+",
        help="Also run our bookings extraction with these settings in its environment "
        "(e.g. SODTRACK_DUCKDB_MEMORY_LIMIT=128MiB), printed as ours'.",
    )
    parser.add_argument("--child", choices=sorted(FAMILY_SETS), help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        print(json.dumps(measure_ours(args.base_url, args.root, args.child)), flush=True)
        return

    print(f"# {os.cpu_count()} CPUs, load average {load()}", flush=True)
    sizes: list[Size] = []
    root = tempfile.mkdtemp(prefix="bench-extract-")
    other_root = tempfile.mkdtemp(prefix="bench-extract-other-")
    try:
        for i, n in enumerate(args.bookings):
            size = Size(n, [])
            for dataset in ("bookings", "booking_changes"):  # each size starts from nothing
                shutil.rmtree(Path(root, "warehouse", dataset), ignore_errors=True)
                shutil.rmtree(Path(other_root, "warehouse", dataset), ignore_errors=True)
            with contextlib.ExitStack() as stack:
                url = args.base_url or stack.enter_context(simulator(n))
                if i == 0:
                    size.results.append(measure(url, root, "catalog+coverage", n))
                if args.compare_with:
                    size.results.append(
                        measure_other(args.compare_with, url, other_root, n, first=i == 0)
                    )
                if args.dlt:
                    from bench_dlt import compare

                    with tempfile.TemporaryDirectory(prefix="bench-dlt-") as dlt_root:
                        size.results.append(compare(url, root, dlt_root, n)["ours"])
                else:
                    size.results.append(measure(url, root, "bookings", n))
                if args.variant:
                    variant = dict(v.split("=", 1) for v in args.variant)
                    for dataset in ("bookings", "booking_changes"):  # from nothing, as ours
                        shutil.rmtree(Path(root, "warehouse", dataset), ignore_errors=True)
                    size.results.append(measure(url, root, "bookings", n, variant))
                sim_rss = simulator_rss_mib(url)
                if sim_rss is not None:
                    print(f"# simulator process RSS {sim_rss:,.0f} MiB", flush=True)
            sizes.append(size)
    finally:
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(other_root, ignore_errors=True)
    if len(sizes) > 1:
        print("\n# bookings extraction: peak RSS against size", flush=True)
        base = next(r for r in sizes[0].results if r["which"] == "bookings" and r["tool"] == "ours")
        for size in sizes:
            r = next(x for x in size.results if x["which"] == "bookings" and x["tool"] == "ours")
            print(
                f"  {size.bookings:>9,} bookings: {r['records_per_s']:>7,} rec/s, "
                f"peak RSS {r['maxrss_mib']:,} MiB "
                f"(x{r['maxrss_mib'] / base['maxrss_mib']:.2f} for "
                f"x{size.bookings / sizes[0].bookings:.0f} the bookings)",
                flush=True,
            )


if __name__ == "__main__":
    main()
