"""Bombs through ``sodtrack-etl load --dry-run`` in a subprocess, against a loopback simulator:
exit 2, peak RSS under 300 MiB (the time to refuse is a benchmark, ``bench/bench_refuse.py``,
not an assertion), the limit and its setting named, nothing
created and no file written beyond the refusal's own (empty) answer.

On main (08cc8d1) the first case aborted the child (SIGABRT, exit 134: calamine allocating
the range up to XFD1048576)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from bulkload import bombs

from .conftest import Sim

pytestmark = pytest.mark.slow

CHILD = """
import sys
from sodtrack.cli import main
sys.argv = ["sodtrack-etl", *sys.argv[1:]]
try:
    main()
finally:
    hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
    print(f"peak_rss_kib: {hwm.split()[1]}", file=sys.stderr)
"""

SMALL_ENV = {
    "SODTRACK_UPLOAD_MAX_ROWS": "40",
    "SODTRACK_UPLOAD_MAX_COLUMNS": "30",
    "SODTRACK_UPLOAD_MAX_CELL_CHARS": "300",
    "SODTRACK_UPLOAD_MAX_FILE_BYTES": "2MiB",
    "SODTRACK_UPLOAD_MAX_ZIP_MEMBERS": "30",
}


def _csv(rows: int, cols: int, cell: str = "v") -> Callable[[Path], Path]:
    def build(path: Path) -> Path:
        with path.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow([f"c{i}" for i in range(cols)])
            for _ in range(rows):
                writer.writerow([cell] * cols)
        return path

    return build


CASES: dict[str, tuple[Callable[[Path], Path], str, str]] = {
    # name: (builder, file suffix, setting named)
    "xfd1048576": (bombs.xfd_cell, ".xlsx", "SODTRACK_UPLOAD_MAX_ROWS"),
    "xfd-no-dimension": (
        lambda p: bombs.xfd_cell(p, dimension=False),
        ".xlsx",
        "SODTRACK_UPLOAD_MAX_ROWS",
    ),
    "lying-dimension": (
        lambda p: bombs.dense(p, rows=60, columns=3, dimension="A1:C2"),
        ".xlsx",
        "SODTRACK_UPLOAD_MAX_ROWS",
    ),
    "dense-columns": (
        lambda p: bombs.dense(p, rows=3, columns=400),
        ".xlsx",
        "SODTRACK_UPLOAD_MAX_COLUMNS",
    ),
    "deflate-1GiB": (
        lambda p: bombs.deflate_bomb(p, 1 << 30),
        ".xlsx",
        "SODTRACK_UPLOAD_MAX_UNCOMPRESSED_BYTES",
    ),
    "shared-string": (
        lambda p: bombs.huge_shared_string(p, 5_000),
        ".xlsx",
        "SODTRACK_UPLOAD_MAX_CELL_CHARS",
    ),
    "members": (
        lambda p: bombs.many_members(p, 100),
        ".xlsx",
        "SODTRACK_UPLOAD_MAX_ZIP_MEMBERS",
    ),
    "csv-long-cell": (_csv(2, 5, "x" * 301), ".csv", "SODTRACK_UPLOAD_MAX_CELL_CHARS"),
    "csv-columns": (_csv(2, 31), ".csv", "SODTRACK_UPLOAD_MAX_COLUMNS"),
    "csv-rows": (_csv(41, 3), ".csv", "SODTRACK_UPLOAD_MAX_ROWS"),
    "csv-size": (_csv(300_000, 3), ".csv", "SODTRACK_UPLOAD_MAX_FILE_BYTES"),
}


def _run(sim: Sim, path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **SMALL_ENV, "COLUMNS": "200"}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, "load", str(path), "--dry-run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done


@pytest.mark.parametrize("name", list(CASES))
def test_a_bomb_exits_2_small_writing_nothing(sim: Sim, name: str) -> None:
    build, suffix, setting = CASES[name]
    inbox = sim.root / "inbox"
    inbox.mkdir()
    path = build(inbox / f"{name}{suffix}")
    before = sim.writes()
    done = _run(sim, path)
    assert done.returncode == 2, done.stdout + done.stderr
    output = " ".join((done.stdout + done.stderr).split())
    assert setting in output, output
    peak_kib = int(done.stderr.rsplit("peak_rss_kib: ", 1)[1].split()[0])
    assert peak_kib < 300 * 1024, peak_kib
    assert sim.writes() == before
    # Only the refusal's own answer: empty results and rejects, a summary naming the limit.
    written = [p for p in sim.outbox.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in written) < 64 * 1024, written
    summary = json.loads(next(p for p in written if p.name.endswith("summary.json")).read_text())
    assert any(setting in e for e in summary["upload_errors"]), summary
    results = next(p for p in written if p.name.endswith(".results.csv"))
    with results.open(encoding="utf-8-sig", newline="") as fh:
        assert list(csv.DictReader(fh)) == []
    assert {p.parent for p in written} <= {sim.outbox / p.parent.name for p in written}
