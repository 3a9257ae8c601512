"""The inbox takes only whole files, by a rule that holds for slow copies too (issue 10, item 3).

Reproduced on ``main``: a copy that pauses longer than the settle time was taken half-way
(size and stamp were stable over the pause) and loaded cut short. The rule now also asks the
content to look whole (an XLSX zip with its central directory; a CSV ending with a line end),
waits for files that do not (up to ``max_wait_s``), and honours ``.done`` markers.

Generated corpora: real workbooks (openpyxl) and CSV files in every encoding the reader
takes, cut at every (or many seeded) byte offsets.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
from pathlib import Path

import openpyxl
import pytest

from sodtrack.bulkload.inbox import (
    DONE_SUFFIX,
    InboxWatcher,
    Received,
    csv_incomplete_reason,
    incomplete_reason,
    zip_incomplete_reason,
)

from .test_inbox import Box

SEED = 20261203
ENCODINGS = ("utf-8", "utf-8-sig", "cp1252", "utf-16", "utf-16-be", "utf-32", "utf-32-be")
"""``utf-16``/``utf-32`` write a little-endian BOM; the ``-be`` ones get one added below."""


def workbook_bytes(rng: random.Random) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["external_reference", "service_sku", "scheduled_start", "notes"])
    for i in range(rng.randint(1, 60)):
        sheet.append(
            [
                f"B-{i}",
                f"SKU-{rng.randrange(99)}",
                f"2027-01-{1 + i % 28:02d}",
                "ñ" * rng.randint(0, 9),
            ]
        )
    if rng.random() < 0.5:
        workbook.create_sheet("Instructions").append(["fill in one row per booking"])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def csv_text(rng: random.Random) -> str:
    newline = rng.choice(["\n", "\r\n"])
    rows = ["external_reference,service_sku,notes"]
    rows += [
        f"B-{i},SKU-{rng.randrange(99)},{'é' * rng.randint(0, 5)}"
        for i in range(rng.randint(1, 30))
    ]
    return newline.join(rows) + newline


def encode(text: str, encoding: str) -> bytes:
    data = text.encode(encoding)
    if encoding.endswith("-be"):  # Python writes no BOM for an explicit byte order
        return "\ufeff".encode(encoding) + data
    return data


def line_end_offsets(text: str, encoding: str) -> set[int]:
    """Byte offsets just after a line-end character: the cuts a CSV copy could pause at and
    still look whole (the documented limit of a content check). ``encode`` of a prefix
    carries the BOM as the whole file does."""
    return {len(encode(text[: i + 1], encoding)) for i, char in enumerate(text) if char in "\r\n"}


@pytest.fixture
def box(tmp_path: Path) -> Box:
    return Box(tmp_path)


def reason_of(name: str, data: bytes) -> str | None:
    return incomplete_reason(name, io.BytesIO(data), len(data))


# ---------------------------------------------------------------- the content rule


@pytest.mark.parametrize("case", range(6))
def test_a_workbook_cut_anywhere_does_not_look_whole(case: int) -> None:
    rng = random.Random(f"{SEED}-xlsx-{case}")
    data = workbook_bytes(rng)
    assert reason_of("bookings.xlsx", data) is None
    assert reason_of("bookings.XLSM", data) is None
    # every cut of the first two files, a seeded sample (and the whole tail) of the others
    cuts = (
        range(len(data))
        if case < 2
        else {*rng.sample(range(len(data)), 300), *range(len(data) - 200, len(data))}
    )
    for cut in cuts:
        assert reason_of("bookings.xlsx", data[:cut]) is not None, cut
    # pre-allocated to its full size, filled front to back: not whole until the last byte
    for filled in rng.sample(range(len(data)), 50):
        assert reason_of("bookings.xlsx", data[:filled] + bytes(len(data) - filled)) is not None


def test_a_workbook_whose_member_is_not_filled_in_does_not_look_whole() -> None:
    data = bytearray(workbook_bytes(random.Random(SEED)))
    # a hole at the start of the first member (a copier writing blocks out of order)
    data[0:64] = bytes(64)
    assert "not where" in str(zip_incomplete_reason(io.BytesIO(bytes(data))))


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("case", range(3))
def test_a_csv_cut_anywhere_but_after_a_line_end_does_not_look_whole(
    encoding: str, case: int
) -> None:
    rng = random.Random(f"{SEED}-csv-{encoding}-{case}")
    text = csv_text(rng)
    data = encode(text, encoding)
    assert reason_of("bookings.csv", data) is None
    boundaries = line_end_offsets(text, encoding)
    assert len(data) in boundaries
    for cut in range(len(data)):
        looks_whole = reason_of("bookings.csv", data[:cut]) is None
        assert looks_whole is (cut in boundaries), (cut, data[max(cut - 8, 0) : cut])


def test_csv_rule_edge_cases() -> None:
    assert csv_incomplete_reason(b"", b"", 0) == "the file is empty"
    assert csv_incomplete_reason(b"a,b\n", b"a,b\n", 4) is None
    assert csv_incomplete_reason(b"a,b\r", b"a,b\r", 4) is None  # old Mac line ends
    assert csv_incomplete_reason(b"a,b,", b"b,c", 9) is not None
    # UTF-16 LE cut between the two bytes of its last line end
    lines = "\ufeffa,b\n".encode("utf-16-le")
    assert csv_incomplete_reason(lines[:4], lines[-4:-1], len(lines) - 1) is not None
    # pre-allocated and not filled: zeros at the end are not a line end in any encoding
    assert csv_incomplete_reason(b"\xff\xfe\x00\x00", b"\x00\x00\x00\x00", 64) is not None


# ---------------------------------------------------------------- the watcher


def test_a_copy_that_pauses_longer_than_the_settle_time_is_taken_once_whole(tmp_path: Path) -> None:
    """A copier writes half a workbook through one open handle, pauses for many settle times
    (by the watcher's injected clock) while the watcher polls, writes the rest; the file is
    taken once, whole. On main the half was taken after the pause."""
    box = Box(tmp_path)
    settle = 1.0
    watcher = InboxWatcher(
        inbox=str(box.inbox),
        uploads=str(box.uploads),
        outbox=str(box.outbox),
        default_country="cl",
        registry=box.registry,
        emit=box.events,
        settle_s=settle,
        max_wait_s=60.0,
        clock=box.clock,
    )
    data = workbook_bytes(random.Random(SEED))
    target = box.inbox / "cl" / "slow copy.xlsx"
    target.parent.mkdir(parents=True, exist_ok=True)
    taken: list[Received] = []
    with target.open("wb") as fh:
        fh.write(data[: len(data) // 2])
        fh.flush()
        os.fsync(fh.fileno())
        for _ in range(10):  # the pause: ten times the settle time, polled all along
            taken += watcher.poll()
            box.clock.now += settle
        assert taken == [], "the half-written workbook was taken"
        fh.write(data[len(data) // 2 :])
    for _ in range(8):  # taken once settled, and never again
        taken += watcher.poll()
        box.clock.now += settle
    [received] = taken
    assert received.sha256 == hashlib.sha256(data).hexdigest()
    assert Path(received.path).read_bytes() == data
    assert len(box.events.sent) == 1


def test_a_half_written_file_waits_then_the_whole_is_taken(box: Box) -> None:
    """The same with the injected clock: half a workbook, then a CSV, stable for long."""
    watcher = box.watcher()
    rng = random.Random(SEED)
    book = workbook_bytes(rng)
    sheet = csv_text(rng).encode("utf-8")
    xlsx = box.drop("cl/a.xlsx", book[: len(book) // 3])
    csv = box.drop("cl/b.csv", sheet[: len(sheet) - 3])
    for _ in range(10):  # 20 s of a stalled copy: far beyond the settle time
        assert watcher.poll() == []
        box.clock.now += 2
    xlsx.write_bytes(book)
    csv.write_bytes(sheet)
    taken = []
    for _ in range(3):
        taken += watcher.poll()
        box.clock.now += 2
    assert sorted((r.file_name, Path(r.path).read_bytes()) for r in taken) == [
        ("a.xlsx", book),
        ("b.csv", sheet),
    ]


def test_a_file_that_never_looks_whole_is_taken_after_the_max_wait(
    box: Box, caplog: pytest.LogCaptureFixture
) -> None:
    """It is not rejected by the watcher: after ``max_wait_s`` unchanged it is taken as it
    is, and the load answers for it."""
    watcher = InboxWatcher(
        inbox=str(box.inbox),
        uploads=str(box.uploads),
        outbox=str(box.outbox),
        default_country="cl",
        registry=box.registry,
        emit=box.events,
        settle_s=1.0,
        max_wait_s=30.0,
        clock=box.clock,
        wall_clock=lambda: changed,  # the file stays new by its stamps
    )
    cut = b"external_reference,service_sku\nB-1,SK"
    path = box.drop("cl/cut.csv", cut)
    changed = max(os.stat(path).st_mtime, os.stat(path).st_ctime)
    caplog.set_level("INFO", logger="sodtrack.bulkload.inbox")
    while box.clock.now < 30.0:
        assert watcher.poll() == []
        box.clock.now += 2
    waiting = [r for r in caplog.records if "does not look whole yet" in r.getMessage()]
    assert len(waiting) == 1  # said once, not at every poll
    [received] = watcher.poll()
    assert Path(received.path).read_bytes() == cut
    assert any("taken" in r.getMessage() for r in caplog.records if r.levelname == "WARNING")


def test_under_cron_the_max_wait_counts_from_the_last_change(box: Box) -> None:
    """``watch --once`` starts a new watcher each time: an old file that does not look whole
    is taken by its age, a fresh one waits."""

    def once(wall: float) -> list[Received]:
        watcher = InboxWatcher(
            inbox=str(box.inbox),
            uploads=str(box.uploads),
            outbox=str(box.outbox),
            default_country="cl",
            registry=box.registry,
            emit=box.events,
            settle_s=1.0,
            max_wait_s=600.0,
            clock=box.clock,
            wall_clock=lambda: wall,
        )
        taken = list(watcher.poll())
        box.clock.now += 2
        return taken + list(watcher.poll())

    path = box.drop("cl/no-newline.csv", b"external_reference\nB-1")
    changed = max(os.stat(path).st_mtime, os.stat(path).st_ctime)
    assert once(changed + 60) == []
    [received] = once(changed + 601)
    assert Path(received.path).read_bytes() == b"external_reference\nB-1"


def test_a_done_marker_says_the_file_is_complete(box: Box) -> None:
    watcher = box.watcher()
    data = b"external_reference\nB-1"  # no final line end: would wait without the marker
    box.drop("cl/marked.csv", data)
    assert watcher.poll() == []
    box.clock.now += 2
    assert watcher.poll() == []
    box.drop("cl/marked.csv" + DONE_SUFFIX, b"")
    box.clock.now += 2
    [received] = watcher.poll()
    assert Path(received.path).read_bytes() == data
    assert sorted(p.name for p in (box.inbox / "cl").iterdir()) == []


def test_rename_into_place_from_a_dotfile_is_taken_once_whole(box: Box) -> None:
    watcher = box.watcher()
    data = workbook_bytes(random.Random(SEED + 1))
    hidden = box.drop("cl/.bookings.xlsx", data[:100])
    for _ in range(3):
        assert watcher.poll() == []
        box.clock.now += 2
    hidden.write_bytes(data)
    hidden.rename(hidden.with_name("bookings.xlsx"))
    taken = []
    for _ in range(4):
        taken += watcher.poll()
        box.clock.now += 2
    [received] = taken
    assert Path(received.path).read_bytes() == data
