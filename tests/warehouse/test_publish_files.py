"""Publish commits the staged Parquet files themselves (no rewrite, so its memory does not
grow with the data), and its replace-where becomes remove actions: checked here on local
disk and S3, and against a model over a seeded corpus of publish sequences."""

from __future__ import annotations

import hashlib
import random
from datetime import timedelta

import pyarrow as pa
from deltalake import write_deltalake

from sodtrack.warehouse import Warehouse
from sodtrack.warehouse.convert import booking_changes_batch, bookings_batch, services_batch
from sodtrack.warehouse.publish import table_schema
from sodtrack.warehouse.schemas import get_spec

from .factories import booking
from .helpers import NOW, delta_rows, services, stage_batch

DAY = {"country": "cl", "extraction_date": "2026-11-28"}


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _table_file_digests(wh: Warehouse, dataset: str) -> set[str]:
    dt = wh.table(dataset)
    assert dt is not None
    arrow, base = wh.location.arrow_fs()
    out = set()
    for rel in pa.table(dt.get_add_actions(flatten=True)).column("path").to_pylist():
        with arrow.open_input_stream(f"{base}/{get_spec(dataset).name}/{rel}") as f:
            out.add(_digest(f.read()))
    return out


def test_publish_commits_the_staged_files_byte_for_byte(wh: Warehouse) -> None:
    """On main, ``write_deltalake`` decoded and re-encoded every row (and buffered them)."""
    batch = bookings_batch([booking(i) for i in range(50)], NOW)
    with wh.stage("booking_changes", "run-1") as w:
        w.write(booking_changes_batch(batch, "run-1"), DAY)
        w.finish(finished_at=NOW)
    staged = set()
    for path in wh.staged_files("booking_changes", "run-1"):
        with open(path, "rb") as f:
            staged.add(_digest(f.read()))
    version = wh.publish("booking_changes", "run-1")
    assert version.total_rows == 50
    assert _table_file_digests(wh, "booking_changes") == staged
    assert len(delta_rows(wh, "booking_changes", "id")) == 50


def _log(wh: Warehouse, run_id: str, ids: range) -> None:
    b = bookings_batch([booking(i) for i in ids], NOW)
    stage_batch(wh, "booking_changes", run_id, booking_changes_batch(b, run_id), DAY)
    wh.publish("booking_changes", run_id)


def test_a_republished_run_removes_only_its_own_files_not_a_run_whose_id_it_prefixes(
    wh: Warehouse,
) -> None:
    _log(wh, "run-1", range(3))
    _log(wh, "run-1-2", range(4))
    _log(wh, "run-1", range(2))  # run-1 again: its 3 rows become 2; run-1-2 keeps its 4
    rows = delta_rows(wh, "booking_changes", "run_id")
    assert rows == [("run-1",)] * 2 + [("run-1-2",)] * 4


def test_a_log_file_holding_several_runs_is_rewritten_keeping_the_other_runs(
    wh: Warehouse,
) -> None:
    """A file with rows of two runs (as a rewrite or a migration may leave): only a rewrite
    can take one run's rows out of it."""
    spec = get_spec("booking_changes")
    b = bookings_batch([booking(i) for i in range(3)], NOW)
    mixed = pa.concat_tables(
        [
            pa.Table.from_batches([booking_changes_batch(b, "run-1")]),
            pa.Table.from_batches([booking_changes_batch(b, "run-2")]),
        ]
    )
    for k, v in DAY.items():
        mixed = mixed.append_column(k, pa.array([v] * mixed.num_rows, pa.string()))
    write_deltalake(
        wh.table_uri("booking_changes"),
        mixed.cast(table_schema(spec)),
        partition_by=list(spec.partition_keys),
        mode="append",
        storage_options=wh.storage_options or None,
    )
    _log(wh, "run-2", range(1))
    assert delta_rows(wh, "booking_changes", "run_id") == [("run-1",)] * 3 + [("run-2",)]


def test_a_seeded_corpus_of_publish_sequences_matches_a_model(tmp_path: object) -> None:
    """30 seeded sequences of snapshot runs (same day twice, other days, another country,
    full refreshes of a country) and log runs (new runs, re-published runs): after each
    publish, rows per partition equal the model's."""
    for seed in range(30):
        rng = random.Random(seed)
        root = f"{tmp_path}/wh-{seed}"
        wh = Warehouse(root, durable=False)
        snap: dict[str, int] = {}
        log: dict[tuple[str, str], int] = {}
        for step in range(rng.randint(2, 7)):
            run_id = f"run-{rng.randint(1, 3)}"
            if rng.random() < 0.5:
                country = rng.choice(["cl", "pe"])
                day = (NOW + timedelta(days=rng.randint(0, 2))).date().isoformat()
                n = rng.randint(0, 4)
                key = f"country={country}/snapshot_date={day}"
                full = rng.random() < 0.25
                with wh.stage("services", f"{run_id}-{step}") as w:
                    w.write(
                        services_batch(services(n), NOW), {"country": country, "snapshot_date": day}
                    )
                    w.finish(replace_scope={"country": country} if full else None, finished_at=NOW)
                wh.publish("services", f"{run_id}-{step}")
                if full:
                    snap = {
                        k: v for k, v in snap.items() if not k.startswith(f"country={country}/")
                    }
                snap[key] = n
                described = wh.describe("services")
                assert described is not None
                # an empty staged partition is an empty file: no rows, maybe no entry
                got = {k: v for k, v in described.rows_per_partition.items() if v}
                assert got == {k: v for k, v in snap.items() if v}, (seed, step)
            else:
                n = rng.randint(1, 4)
                _log(wh, run_id, range(n))
                log[(DAY["extraction_date"], run_id)] = n
                rows = delta_rows(wh, "booking_changes", "run_id")
                want = sorted((r,) for (_, r), c in log.items() for _ in range(c))
                assert rows == want, (seed, step)
