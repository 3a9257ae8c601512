"""Benchmark: how fast, and in how much memory, ``read_upload`` refuses each kind of bomb.

Each file is read by a *fresh* child process (``python -c``: import the loader, time
``read_upload``, print its peak RSS, ``VmHWM``: ``ru_maxrss`` would carry the parent's
over ``exec``), so the figures are the refusal's own. The anchor is
the same child reading a tiny valid workbook, measured in the same run: every figure is also
printed as a ratio to that floor (a fresh interpreter with the loader imported).

The files, built once under /tmp/sodtrack-bench/refuse/ (``--fresh`` rebuilds them):

* ``xfd``: the issue's 5 KB workbook, one cell at XFD1048576 (main: SIGABRT, 550 GB);
* ``dense``: ~1M cells (1000 × 1000, no ``r`` attributes, no dimension), a few hundred KB;
* ``deflate-10GiB``: a 10 MB part declaring (and holding) 10 GiB of zeros;
* ``lying-size``: a part of 1 GiB of zeros that declares 50 MiB (20:1, passes the ratio);
* ``shared-strings``: 3.1M distinct shared strings;
* ``members``: 5,000 parts;
* ``csv-1M-rows``: a CSV of 1,000,000 short records;
* ``csv-60MiB``: a CSV over the 50 MiB size limit.

    uv run python bench/bench_refuse.py [--fresh] [--repeat 3]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # loader.bombs

from bulkload import bombs
from bulkload.sheets import booking, table, write_xlsx

CACHE_DIR = Path("/tmp/sodtrack-bench/refuse")

CHILD = """
import json, sys, time
from pathlib import Path
from sodtrack.bulkload import read_upload
started = time.perf_counter()
parsed = read_upload(Path(sys.argv[1]), "cl")
elapsed = time.perf_counter() - started
errors = [i for i in parsed.upload_issues if i.severity == "error"]
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({
    "s": elapsed,
    "rss_kib": int(hwm.split()[1]),
    "rows": len(parsed.rows),
    "code": errors[0].code if errors else None,
}))
"""


def _tiny(path: Path) -> Path:
    header, rows = table([booking(i) for i in range(1, 6)])
    return write_xlsx(path, {"Bookings": [header, *rows]})


def _dense_no_refs(path: Path) -> Path:
    def body() -> Iterator[bytes]:
        line = b"<row>" + b"<c><v>1</v></c>" * 1000 + b"</row>"
        for _ in range(1000):
            yield line

    return bombs.workbook(path, bombs.sheet_xml(body()))


def _csv_rows(path: Path) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["external_reference", "service_sku", "postal_code"])
        writer.writerows([f"OPS-{i}", "INST-AC-12000", "7500000"] for i in range(1_000_000))
    return path


def _csv_big(path: Path) -> Path:
    line = b"OPS-1,INST-AC-12000,7500000," + b"x" * 100 + b"\n"
    with path.open("wb") as fh:
        fh.write(b"external_reference,service_sku,postal_code,notes\n")
        for _ in range((60 << 20) // len(line) + 1):
            fh.write(line)
    return path


FILES: dict[str, tuple[str, Callable[[Path], Path]]] = {
    "anchor (tiny valid)": ("anchor.xlsx", _tiny),
    "xfd": ("xfd.xlsx", bombs.xfd_cell),
    "dense": ("dense.xlsx", _dense_no_refs),
    "deflate-10GiB": ("deflate.xlsx", lambda p: bombs.deflate_bomb(p, 10 << 30)),
    "lying-size": (
        "lying.xlsx",
        lambda p: bombs.lying_size_bomb(p, declared=50 << 20, real=1 << 30),
    ),
    "shared-strings": ("strings.xlsx", lambda p: bombs.many_shared_strings(p, 3_100_000)),
    "members": ("members.xlsx", lambda p: bombs.many_members(p, 5_000)),
    "csv-1M-rows": ("rows.csv", _csv_rows),
    "csv-60MiB": ("big.csv", _csv_big),
}


def _child(path: Path) -> dict[str, object]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(path)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    figures: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    figures["wall"] = time.perf_counter() - started
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fresh", action="store_true", help="rebuild the files")
    parser.add_argument("--repeat", type=int, default=3, help="children per file (median)")
    args = parser.parse_args()
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for kind, (name, build) in FILES.items():
        path = CACHE_DIR / name
        if args.fresh or not path.exists():
            build(path)
        paths[kind] = path
    results: dict[str, dict[str, object]] = {}
    for kind, path in paths.items():
        runs = [_child(path) for _ in range(args.repeat)]
        best = dict(runs[0])
        best["s"] = statistics.median(float(str(r["s"])) for r in runs)
        best["wall"] = statistics.median(float(str(r["wall"])) for r in runs)
        best["rss_kib"] = max(int(str(r["rss_kib"])) for r in runs)
        results[kind] = best
    anchor = results["anchor (tiny valid)"]
    anchor_s = float(str(anchor["s"]))
    anchor_rss = int(str(anchor["rss_kib"]))
    print(
        f"{'file':<20} {'size':>10} {'read_upload':>12} {'x anchor':>9} {'child wall':>10} "
        f"{'peak RSS':>9} {'x anchor':>9}  outcome"
    )
    for kind, figures in results.items():
        size = paths[kind].stat().st_size
        s = float(str(figures["s"]))
        rss = int(str(figures["rss_kib"]))
        outcome = str(figures["code"] or f"read, {figures['rows']} rows")
        print(
            f"{kind:<20} {size / 1024:>8.0f} K {s:>10.3f} s {s / anchor_s:>8.1f}x "
            f"{float(str(figures['wall'])):>8.2f} s {rss / 1024:>6.0f} MiB "
            f"{rss / anchor_rss:>8.2f}x  {outcome}"
        )
    load1 = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} CPUs, load average {load1:.1f}; median of {args.repeat}")


if __name__ == "__main__":
    main()
