"""The load ledger: a durable record of every upload, every row and every step's outcome.

Why it exists: the API is POST-only and a write that timed out may or may not have been
committed. The ledger is what lets a killed run (``kill -9`` at any instruction) be re-run and
resume at the right step, create nothing twice, and still give an exact answer for every row.

Storage is SQLAlchemy Core on any URL: SQLite by default (``sqlite:///data/state/ledger.db``),
PostgreSQL for several workers, with the same code. The engine and the schema come from
:mod:`sodtrack.db` (one engine per database shared with the state store and the inbox registry;
SQLite owner-only ``0600``/``0700`` with its ``-wal``/``-shm``; WAL journal so readers never block
the writer and a killed process loses nothing it committed). Tables are prefixed
``load_`` so the ledger can share a database with the extraction's watermark store.

Tables
------
``load_uploads``
    One per upload: ``upload_id`` (see :func:`upload_id_for`), ``file_sha256``, ``file_name``,
    ``country``, ``uploaded_by``, ``created_at``, ``updated_at``, ``status`` (``running``;
    after a run ``completed``, ``completed_with_errors`` (some rows rejected), ``incomplete``
    (some rows wait for a re-run) or ``failed`` (file-level errors); after a cancel
    ``cancelled`` or ``cancel_incomplete``), ``dry_run``, ``runs`` (how many times it was
    started), ``row_count``, ``summary_json`` (counts by outcome of the last run) and a lease
    (``lease_owner``, ``lease_until``) so two workers never drive one upload at once.
``load_rows``
    One per input row, keyed ``(upload_id, position)`` (position = 0-based index in the file's
    row order, across sheets): ``sheet``, ``row_number``, the row's references,
    ``original_json``/``interpreted_json`` (what was uploaded and how it was read: the audit
    trail and the source of results files), and its last answer, the
    :class:`~sodtrack.bulkload.outcomes.RowResult` whole: ``outcome``, ``failed_step``, its
    explanation (``error_code``, ``error_kind``, ``message``, ``suggested_fix``,
    ``error_fields_json``), the Sodtrack ids of its steps, ``steps_json``, ``retry_on_rerun``,
    ``warnings_json``.
``load_steps``
    One per write, keyed ``(upload_id, kind, key)``; ``kind`` is ``project|booking|stage|
    payment|cancel`` and ``key`` the external reference (``project_ref#sequence`` for stages).
    ``state`` is ``pending|in_flight|done|failed_transient|rejected|skipped``; ``sodtrack_id``,
    ``created`` (this upload created it, as opposed to finding it existing: only those are
    cancelled), ``done_run`` (the run that completed it: a row is ``created`` in that run,
    ``already_existed`` in later ones), its explanation (the same five columns), ``attempts``,
    ``data_json`` (e.g. the booking ids a stage holds, a booking's price;
    ``existing``/``update``/``updated_run`` for a correction applied to a record the upload
    found), ``updated_at``. Steps with a
    ``sodtrack_id`` are also the ledger's memory across uploads (:meth:`Ledger.known_ids`).

Records and rows
----------------
The records (:class:`UploadRecord`, :class:`StepRecord`, :class:`RowRecord` holding the
row's :class:`~sodtrack.bulkload.outcomes.RowResult` and that result's
:class:`~sodtrack.bulkload.outcomes.Explanation`) go to their tables and back through one
generic mapper, :class:`RecordColumns` (an attribute in the column of its name, ``<name>_json``
as JSON, a nested record flattened into the same row), never hand-written per table. A column
added later is a :data:`MIGRATIONS` entry; a row written before it reads back with the
attribute's default.

Step protocol
-------------
A step is marked ``in_flight`` (committed) *before* its request and ``done`` with the id
(committed) *after* the answer. A step found ``in_flight`` when a run starts was interrupted
between the two: its write may or may not exist, and the engine resolves it by reconciliation
(the same ``external_reference`` answers ``409`` with ``existing_id``; a stage by
``(project, sequence)``) — never by a blind second create.

Upload identity
---------------
``upload_id`` is derived from ``(file sha256, country)`` (and the sheet, when one other than
the first is named): the same file uploaded again resumes the same upload (and creates
nothing new). A re-run that reads the file into a different number of rows (another mapping)
is refused rather than mixed with the stored rows. ``salt`` forces a fresh upload of the same bytes
(``--new-upload``); a dry run has its own id (suffix ``-dry``) so it never touches the real
upload's steps.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
import socket
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Final, Generic, Literal, TypeVar, cast, get_origin, get_type_hints

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from sodtrack.bulkload.outcomes import Explanation, RowResult
from sodtrack.db import AddColumn, engine_for, ensure_schema, use_wal
from sodtrack.errors import LeaseHeld, UploadMismatch

DEFAULT_LEDGER_URL: Final = "sqlite:///data/state/ledger.db"

StepKind = Literal["project", "booking", "stage", "payment", "cancel"]
StepState = Literal["pending", "in_flight", "done", "failed_transient", "rejected", "skipped"]

STEP_KINDS: Final[tuple[StepKind, ...]] = ("project", "booking", "stage", "payment", "cancel")
TERMINAL_STATES: Final = frozenset({"done", "rejected"})
"""States a new run does not revisit: ``rejected`` is never retried automatically."""

metadata = sa.MetaData()

uploads_table = sa.Table(
    "load_uploads",
    metadata,
    sa.Column("upload_id", sa.String(80), primary_key=True),
    sa.Column("file_sha256", sa.String(64), nullable=False),
    sa.Column("file_name", sa.Text, nullable=False),
    sa.Column("country", sa.String(2), nullable=False),
    sa.Column("uploaded_by", sa.Text, nullable=False),
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("updated_at", sa.String(32), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("dry_run", sa.Boolean, nullable=False),
    sa.Column("runs", sa.Integer, nullable=False, default=0),
    sa.Column("row_count", sa.Integer, nullable=False, default=0),
    sa.Column("summary_json", sa.Text, nullable=True),
    sa.Column("lease_owner", sa.Text, nullable=True),
    sa.Column("lease_until", sa.String(32), nullable=True),
)

rows_table = sa.Table(
    "load_rows",
    metadata,
    sa.Column("upload_id", sa.String(80), primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("sheet", sa.Text, nullable=True),
    sa.Column("row_number", sa.Integer, nullable=False),
    sa.Column("external_reference", sa.Text, nullable=True),
    sa.Column("project_reference", sa.Text, nullable=True),
    sa.Column("stage_sequence", sa.Integer, nullable=True),
    sa.Column("payment_reference", sa.Text, nullable=True),
    sa.Column("outcome", sa.String(32), nullable=True),
    sa.Column("failed_step", sa.String(16), nullable=True),
    sa.Column("error_code", sa.Text, nullable=True),
    sa.Column("error_kind", sa.String(16), nullable=True),
    sa.Column("message", sa.Text, nullable=True),
    sa.Column("suggested_fix", sa.Text, nullable=True),
    sa.Column("project_id", sa.Text, nullable=True),
    sa.Column("booking_id", sa.Text, nullable=True),
    sa.Column("stage_id", sa.Text, nullable=True),
    sa.Column("payment_id", sa.Text, nullable=True),
    sa.Column("original_json", sa.Text, nullable=True),
    sa.Column("interpreted_json", sa.Text, nullable=True),
    sa.Column("updated_at", sa.String(32), nullable=False),
    sa.Column("error_fields_json", sa.Text, nullable=True),
    sa.Column("steps_json", sa.Text, nullable=True),
    sa.Column("retry_on_rerun", sa.Boolean, nullable=True),
    sa.Column("warnings_json", sa.Text, nullable=True),
)

steps_table = sa.Table(
    "load_steps",
    metadata,
    sa.Column("upload_id", sa.String(80), primary_key=True),
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("sodtrack_id", sa.Text, nullable=True),
    sa.Column("created", sa.Boolean, nullable=False, default=False),
    sa.Column("done_run", sa.Integer, nullable=True),
    sa.Column("error_code", sa.Text, nullable=True),
    sa.Column("error_kind", sa.String(16), nullable=True),
    sa.Column("message", sa.Text, nullable=True),
    sa.Column("suggested_fix", sa.Text, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("data_json", sa.Text, nullable=True),
    sa.Column("updated_at", sa.String(32), nullable=False),
    sa.Column("error_fields_json", sa.Text, nullable=True),
)

sa.Index("ix_load_steps_state", steps_table.c.upload_id, steps_table.c.state)

MIGRATIONS: tuple[AddColumn, ...] = (
    # The whole row answer (:class:`~sodtrack.bulkload.outcomes.RowResult`) is stored.
    AddColumn("load_rows", "error_fields_json", sa.Text()),
    AddColumn("load_rows", "steps_json", sa.Text()),
    AddColumn("load_rows", "retry_on_rerun", sa.Boolean()),
    AddColumn("load_rows", "warnings_json", sa.Text()),
    AddColumn("load_steps", "error_fields_json", sa.Text()),
)
"""Columns added to these tables since databases exist in the field (:mod:`sodtrack.db`)."""


R = TypeVar("R")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def upload_id_for(
    file_sha256: str,
    country: str,
    *,
    dry_run: bool = False,
    salt: str | None = None,
    sheet: str | None = None,
) -> str:
    """The upload id of a file: stable for (content, country), so a re-run resumes it.

    ``sheet`` (an XLSX sheet other than the default) is part of it: another sheet of the same
    workbook is another upload. ``salt`` (any text, e.g. a timestamp) makes a new upload of
    the same bytes; a dry run gets its own id so its records never mix with the real
    upload's.
    """
    material = f"{file_sha256.lower()}:{country.lower()}"
    if sheet:
        material += f":sheet={sheet}"
    if salt:
        material += f":{salt}"
    digest = hashlib.sha256(material.encode()).hexdigest()[:20]
    return f"upl_{country.lower()}_{digest}" + ("-dry" if dry_run else "")


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True, slots=True)
class UploadRecord:
    upload_id: str
    file_sha256: str
    file_name: str
    country: str
    uploaded_by: str
    created_at: str
    updated_at: str
    status: str
    dry_run: bool
    runs: int
    row_count: int
    summary: dict[str, int]
    lease_owner: str | None


@dataclass(frozen=True, slots=True)
class StepRecord:
    upload_id: str
    kind: StepKind
    key: str
    state: StepState
    sodtrack_id: str | None = None
    created: bool = False
    done_run: int | None = None
    why: Explanation | None = None
    """Why the step failed (None unless ``failed_transient``, ``rejected`` or ``skipped``)."""
    attempts: int = 0
    data: dict[str, Any] = field(default_factory=dict)
    updated_at: str = ""


@dataclass(frozen=True, slots=True)
class RowRecord:
    """One input row as the ledger keeps it: its identity and values, and its last answer
    (the :class:`~sodtrack.bulkload.outcomes.RowResult` itself, not a copy of its fields)."""

    position: int
    sheet: str | None
    row_number: int
    external_reference: str | None = None
    project_reference: str | None = None
    stage_sequence: int | None = None
    payment_reference: str | None = None
    original: dict[str, Any] = field(default_factory=dict)
    interpreted: dict[str, Any] = field(default_factory=dict)
    result: RowResult | None = None
    """The row's answer in the last run that finished (None before one has)."""


@dataclass(frozen=True, slots=True)
class UploadRun:
    """What :meth:`Ledger.begin_upload` hands back: the upload and this run's number."""

    upload_id: str
    run_no: int
    resumed: bool
    """The upload existed before (a re-run of the same file)."""
    owner: str


def _lease_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}"


def _owner_is_dead(owner: str) -> bool:
    """True when the lease owner is a process of this host that no longer exists."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False  # this very process (an earlier run in it, e.g. a test): not dead
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class Ledger:
    """The ledger on one SQLAlchemy engine. Every method is one short transaction.

    Methods are synchronous: each is a few milliseconds of local I/O, far below an API call,
    and keeping them synchronous keeps the commit order exactly the order of the engine's
    decisions (which the crash-safety argument relies on).
    """

    def __init__(self, url: str | Engine = DEFAULT_LEDGER_URL, *, lease_s: float = 60.0) -> None:
        if isinstance(url, Engine):
            self.engine = url
        else:
            self.engine = engine_for(url)
            use_wal(self.engine)
        self.lease_s = lease_s
        ensure_schema(metadata, self.engine, MIGRATIONS)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    # ------------------------------------------------------------------ uploads

    def begin_upload(
        self,
        *,
        upload_id: str,
        file_sha256: str,
        file_name: str,
        country: str,
        uploaded_by: str,
        dry_run: bool,
        row_count: int,
        take_over: bool = False,
    ) -> UploadRun:
        """Create the upload or resume it; take its lease; count the run.

        The lease is refused (:class:`LeaseHeld`) while another worker holds it, unless it
        expired, its owner is a dead process of this host (the ``kill -9`` case), or
        ``take_over`` is set.
        """
        owner = _lease_owner()
        now = datetime.now(UTC)
        until = (now + timedelta(seconds=self.lease_s)).isoformat(timespec="microseconds")
        with self._tx() as conn:
            existing = _locked_upload(conn, upload_id)
            if existing is None:
                conn.execute(
                    sa.insert(uploads_table).values(
                        upload_id=upload_id,
                        file_sha256=file_sha256,
                        file_name=file_name,
                        country=country,
                        uploaded_by=uploaded_by,
                        created_at=now.isoformat(timespec="microseconds"),
                        updated_at=now.isoformat(timespec="microseconds"),
                        status="running",
                        dry_run=dry_run,
                        runs=1,
                        row_count=row_count,
                        lease_owner=owner,
                        lease_until=until,
                    )
                )
                return UploadRun(upload_id, 1, False, owner)
            self._check_lease(existing, now, take_over)
            if existing.file_sha256 != file_sha256:
                raise UploadMismatch(f"upload {upload_id} belongs to another file")
            if int(existing.row_count) != row_count:
                raise UploadMismatch(
                    f"upload {upload_id} was read as {existing.row_count} rows, now as "
                    f"{row_count} (another mapping or sheet?): start a new upload instead"
                )
            run_no = int(existing.runs) + 1
            conn.execute(
                sa.update(uploads_table)
                .where(uploads_table.c.upload_id == upload_id)
                .values(
                    runs=run_no,
                    status="running",
                    updated_at=now.isoformat(timespec="microseconds"),
                    lease_owner=owner,
                    lease_until=until,
                )
            )
            return UploadRun(upload_id, run_no, True, owner)

    def renew_lease(self, upload_id: str, owner: str) -> None:
        until = (datetime.now(UTC) + timedelta(seconds=self.lease_s)).isoformat(
            timespec="microseconds"
        )
        with self._tx() as conn:
            conn.execute(
                sa.update(uploads_table)
                .where(uploads_table.c.upload_id == upload_id, uploads_table.c.lease_owner == owner)
                .values(lease_until=until)
            )

    def finish_upload(
        self, upload_id: str, *, status: str, summary: Mapping[str, int], owner: str | None
    ) -> None:
        """Record the run's end: status, counts by outcome, and release the lease."""
        with self._tx() as conn:
            stmt = sa.update(uploads_table).where(uploads_table.c.upload_id == upload_id)
            conn.execute(
                stmt.values(
                    status=status,
                    summary_json=json.dumps(dict(summary), sort_keys=True),
                    updated_at=_now(),
                    lease_owner=None,
                    lease_until=None,
                )
            )

    def set_upload_status(self, upload_id: str, status: str) -> None:
        with self._tx() as conn:
            conn.execute(
                sa.update(uploads_table)
                .where(uploads_table.c.upload_id == upload_id)
                .values(status=status, updated_at=_now())
            )

    def get_upload(self, upload_id: str) -> UploadRecord | None:
        with self._tx() as conn:
            row = conn.execute(
                sa.select(uploads_table).where(uploads_table.c.upload_id == upload_id)
            ).first()
        return None if row is None else _UPLOAD.must_load(row._mapping)

    def list_uploads(self) -> list[UploadRecord]:
        with self._tx() as conn:
            result = conn.execute(sa.select(uploads_table).order_by(uploads_table.c.created_at))
            return [_UPLOAD.must_load(r._mapping) for r in result]

    # ------------------------------------------------------------------ rows

    def record_rows(self, upload_id: str, records: Sequence[RowRecord]) -> None:
        """Insert the upload's rows once; a re-run keeps the stored ones (same file)."""
        with self._tx() as conn:
            present = {
                int(p)
                for (p,) in conn.execute(
                    sa.select(rows_table.c.position).where(rows_table.c.upload_id == upload_id)
                )
            }
            now = _now()
            fresh = [
                {**_ROW.dump(r), "upload_id": upload_id, "updated_at": now}
                for r in records
                if r.position not in present
            ]
            if fresh:
                conn.execute(sa.insert(rows_table), fresh)

    def save_row_outcomes(self, upload_id: str, results: Sequence[RowResult]) -> None:
        """Overwrite each row's answer (outcome, explanation, ids, steps) with this run's."""
        now = _now()
        columns = [c for c in _RESULT.dump(None) if c not in _ROW_KEY]
        with self._tx() as conn:
            stmt = (
                sa.update(rows_table)
                .where(
                    rows_table.c.upload_id == sa.bindparam("b_upload_id"),
                    rows_table.c.position == sa.bindparam("b_position"),
                )
                .values({c: sa.bindparam(f"v_{c}") for c in [*columns, "updated_at"]})
            )
            params = [
                {
                    "b_upload_id": upload_id,
                    "b_position": r.position,
                    "v_updated_at": now,
                    **{f"v_{c}": v for c, v in _RESULT.dump(r).items() if c not in _ROW_KEY},
                }
                for r in results
            ]
            if params:
                conn.execute(stmt, params)

    def rows(self, upload_id: str) -> list[RowRecord]:
        with self._tx() as conn:
            result = conn.execute(
                sa.select(rows_table)
                .where(rows_table.c.upload_id == upload_id)
                .order_by(rows_table.c.position)
            )
            return [_ROW.must_load(r._mapping) for r in result]

    # ------------------------------------------------------------------ steps

    def ensure_steps(self, upload_id: str, keys: Iterable[tuple[StepKind, str]]) -> None:
        """Insert ``pending`` steps for keys the ledger does not hold yet."""
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return
        with self._tx() as conn:
            present = {
                (k, key)
                for k, key in conn.execute(
                    sa.select(steps_table.c.kind, steps_table.c.key).where(
                        steps_table.c.upload_id == upload_id
                    )
                )
            }
            now = _now()
            fresh = [
                {
                    "upload_id": upload_id,
                    "kind": kind,
                    "key": key,
                    "state": "pending",
                    "created": False,
                    "attempts": 0,
                    "updated_at": now,
                }
                for kind, key in wanted
                if (kind, key) not in present
            ]
            if fresh:
                conn.execute(sa.insert(steps_table), fresh)

    def steps(
        self, upload_id: str, kind: StepKind | None = None
    ) -> dict[tuple[StepKind, str], StepRecord]:
        with self._tx() as conn:
            stmt = sa.select(steps_table).where(steps_table.c.upload_id == upload_id)
            if kind is not None:
                stmt = stmt.where(steps_table.c.kind == kind)
            records = [_STEP.must_load(r._mapping) for r in conn.execute(stmt)]
        return {(rec.kind, rec.key): rec for rec in records}

    def get_step(self, upload_id: str, kind: StepKind, key: str) -> StepRecord | None:
        with self._tx() as conn:
            row = conn.execute(
                sa.select(steps_table).where(
                    steps_table.c.upload_id == upload_id,
                    steps_table.c.kind == kind,
                    steps_table.c.key == key,
                )
            ).first()
        return None if row is None else _STEP.must_load(row._mapping)

    def _update_step(self, upload_id: str, kind: StepKind, key: str, **values: Any) -> None:
        values["updated_at"] = _now()
        with self._tx() as conn:
            result = conn.execute(
                sa.update(steps_table)
                .where(
                    steps_table.c.upload_id == upload_id,
                    steps_table.c.kind == kind,
                    steps_table.c.key == key,
                )
                .values(**values)
            )
            if result.rowcount == 0:
                conn.execute(
                    sa.insert(steps_table).values(
                        upload_id=upload_id,
                        kind=kind,
                        key=key,
                        **{"state": "pending", "created": False, "attempts": 0, **values},
                    )
                )

    def mark_in_flight(
        self,
        upload_id: str,
        kind: StepKind,
        key: str,
        *,
        sodtrack_id: str | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        """Committed before the request: a crash from here on leaves a step to reconcile.

        ``sodtrack_id`` and ``data`` are given for an *update* of an existing record (a
        correction): the record's id, and ``{"existing": True, ...}`` so that the next run
        knows the record is not this upload's creation."""
        extra: dict[str, Any] = {}
        if sodtrack_id is not None:
            extra["sodtrack_id"] = sodtrack_id
        if data is not None:
            extra["data_json"] = json.dumps(dict(data), sort_keys=True)
        with self._tx() as conn:
            result = conn.execute(
                sa.update(steps_table)
                .where(
                    steps_table.c.upload_id == upload_id,
                    steps_table.c.kind == kind,
                    steps_table.c.key == key,
                )
                .values(
                    state="in_flight",
                    attempts=steps_table.c.attempts + 1,
                    updated_at=_now(),
                    **extra,
                )
            )
            if result.rowcount == 0:
                conn.execute(
                    sa.insert(steps_table).values(
                        upload_id=upload_id,
                        kind=kind,
                        key=key,
                        state="in_flight",
                        created=False,
                        attempts=1,
                        updated_at=_now(),
                        **extra,
                    )
                )

    def known_ids(self, country: str, kind: StepKind, keys: Iterable[str]) -> dict[str, str]:
        """Reference → Sodtrack id of the records of ``kind`` any (real) upload of
        ``country`` created or found: the ledger's memory across uploads, used to compare a
        re-uploaded row with Sodtrack's current record before writing."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, str] = {}
        if not wanted:
            return found
        with self._tx() as conn:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                stmt = (
                    sa.select(steps_table.c.key, steps_table.c.sodtrack_id)
                    .join(uploads_table, uploads_table.c.upload_id == steps_table.c.upload_id)
                    .where(
                        uploads_table.c.country == country,
                        uploads_table.c.dry_run.is_(False),
                        steps_table.c.kind == kind,
                        steps_table.c.key.in_(chunk),
                        steps_table.c.sodtrack_id.is_not(None),
                    )
                    .order_by(steps_table.c.updated_at)
                )
                for key, sodtrack_id in conn.execute(stmt):
                    found[str(key)] = str(sodtrack_id)
        return found

    def mark_done(
        self,
        upload_id: str,
        kind: StepKind,
        key: str,
        *,
        sodtrack_id: str,
        created: bool,
        run_no: int,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        """Committed after the answer: the id is known, the step never runs again."""
        self._update_step(
            upload_id,
            kind,
            key,
            state="done",
            sodtrack_id=sodtrack_id,
            created=created,
            done_run=run_no,
            **_EXPLANATION.dump(None),
            data_json=json.dumps(dict(data), sort_keys=True) if data else None,
        )

    def update_step_data(
        self, upload_id: str, kind: StepKind, key: str, data: Mapping[str, Any]
    ) -> None:
        """Replace a done step's data (e.g. the stage's booking ids after a PATCH)."""
        self._update_step(upload_id, kind, key, data_json=json.dumps(dict(data), sort_keys=True))

    def mark_failed(
        self,
        upload_id: str,
        kind: StepKind,
        key: str,
        *,
        state: Literal["failed_transient", "rejected", "skipped"],
        why: Explanation,
        sodtrack_id: str | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        """Record a failure; ``sodtrack_id`` keeps what is known to exist (a stage created
        but not completed), ``data`` the engine's notes (e.g. whether a re-run helps)."""
        values: dict[str, Any] = {"state": state, **_EXPLANATION.dump(why)}
        if sodtrack_id is not None:
            values["sodtrack_id"] = sodtrack_id
        if data is not None:
            values["data_json"] = json.dumps(dict(data), sort_keys=True)
        self._update_step(upload_id, kind, key, **values)

    def take_lease(self, upload_id: str, *, take_over: bool = False) -> str:
        """Hold an existing upload's lease without starting a run (e.g. to cancel it)."""
        owner = _lease_owner()
        now = datetime.now(UTC)
        until = (now + timedelta(seconds=self.lease_s)).isoformat(timespec="microseconds")
        with self._tx() as conn:
            existing = _locked_upload(conn, upload_id)
            if existing is None:
                raise KeyError(f"no upload {upload_id} in the ledger")
            self._check_lease(existing, now, take_over)
            conn.execute(
                sa.update(uploads_table)
                .where(uploads_table.c.upload_id == upload_id)
                .values(lease_owner=owner, lease_until=until)
            )
        return owner

    def release_lease(self, upload_id: str, owner: str) -> None:
        with self._tx() as conn:
            conn.execute(
                sa.update(uploads_table)
                .where(uploads_table.c.upload_id == upload_id, uploads_table.c.lease_owner == owner)
                .values(lease_owner=None, lease_until=None)
            )

    @staticmethod
    def _check_lease(existing: sa.Row[Any], now: datetime, take_over: bool) -> None:
        held_by = existing.lease_owner
        if (
            held_by is not None
            and not take_over
            and existing.lease_until is not None
            and existing.lease_until > now.isoformat(timespec="microseconds")
            and not _owner_is_dead(held_by)
        ):
            raise LeaseHeld(
                f"upload {existing.upload_id} is being loaded by {held_by} "
                f"(lease until {existing.lease_until}); wait, or take it over"
            )


class RecordColumns(Generic[R]):
    """The one mapper between a record type (a frozen dataclass) and a table's row.

    Every attribute is stored in the column of its name (or the one ``renamed`` gives it);
    one whose column is ``<name>_json`` is stored as JSON; a ``nested`` record (a row's
    answer, an answer's explanation) is flattened into the same row through its own mapper.
    Reading back, a ``NULL`` (a row written before the column existed, see ``MIGRATIONS``)
    gives the attribute's default, ``defaults`` or else ``None``; a nested record whose
    ``required`` column is ``NULL`` is absent (``None``).
    """

    def __init__(
        self,
        cls: type[R],
        table: sa.Table,
        *,
        renamed: Mapping[str, str] | None = None,
        nested: Mapping[str, RecordColumns[Any]] | None = None,
        required: str | None = None,
        defaults: Mapping[str, Any] | None = None,
    ) -> None:
        self.cls = cls
        self.nested = dict(nested or {})
        self.required = required
        hints = get_type_hints(cls)
        self._plain: list[tuple[str, str, bool, bool]] = []  # attr, column, json, tuple
        self._defaults: dict[str, Callable[[], Any]] = {
            k: partial(copy.copy, v) for k, v in (defaults or {}).items()
        }
        for f in dataclasses.fields(cast(Any, cls)):
            if f.default is not dataclasses.MISSING:
                self._defaults[f.name] = partial(copy.copy, f.default)
            elif f.default_factory is not dataclasses.MISSING:
                self._defaults[f.name] = f.default_factory
            if f.name in self.nested:
                continue
            column = (renamed or {}).get(f.name, f.name)
            if column not in table.c:
                column = f"{column}_json"
            as_json = column.endswith("_json")
            if column not in table.c:
                raise TypeError(f"{cls.__name__}.{f.name} has no column in {table.name}")
            is_tuple = get_origin(hints[f.name]) is tuple
            self._plain.append((f.name, column, as_json, is_tuple))

    def dump(self, obj: R | None) -> dict[str, Any]:
        """The columns of ``obj`` (all ``None`` for no record)."""
        out: dict[str, Any] = {}
        for attr, column, as_json, _ in self._plain:
            value = None if obj is None else getattr(obj, attr)
            if as_json and value is not None:
                value = json.dumps(
                    list(value) if isinstance(value, tuple) else dict(value),
                    ensure_ascii=False,
                    default=str,
                    sort_keys=True,
                )
            out[column] = value
        for attr, mapper in self.nested.items():
            for column, value in mapper.dump(None if obj is None else getattr(obj, attr)).items():
                out.setdefault(column, value)  # a column both own (the row's position) once
        return out

    def load(self, m: Mapping[Any, Any]) -> R | None:
        """The record a row holds (``None`` when its ``required`` column is ``NULL``)."""
        if self.required is not None and m.get(self.required) is None:
            return None
        values: dict[str, Any] = {}
        for attr, column, as_json, is_tuple in self._plain:
            value = m.get(column)
            if value is None:
                default = self._defaults.get(attr)
                value = None if default is None else default()
            elif as_json:
                value = json.loads(value)
                value = tuple(value) if is_tuple else value
            values[attr] = value
        for attr, mapper in self.nested.items():
            values[attr] = mapper.load(m)
        return self.cls(**values)

    def must_load(self, m: Mapping[Any, Any]) -> R:
        record = self.load(m)
        assert record is not None
        return record


_EXPLANATION: Final = RecordColumns(
    Explanation,
    steps_table,
    renamed={"code": "error_code", "kind": "error_kind", "fields": "error_fields_json"},
    required="message",
    defaults={"code": "", "kind": "invalid", "suggested_fix": ""},
)
_ROW_EXPLANATION: Final = RecordColumns(
    Explanation,
    rows_table,
    renamed={"code": "error_code", "kind": "error_kind", "fields": "error_fields_json"},
    required="message",
    defaults={"code": "", "kind": "invalid", "suggested_fix": ""},
)
_UPLOAD: Final = RecordColumns(UploadRecord, uploads_table, defaults={"summary": {}})
_STEP: Final = RecordColumns(StepRecord, steps_table, nested={"why": _EXPLANATION})
_RESULT: Final = RecordColumns(
    RowResult, rows_table, nested={"why": _ROW_EXPLANATION}, required="outcome"
)
_ROW: Final = RecordColumns(RowRecord, rows_table, nested={"result": _RESULT})
_ROW_KEY: Final = frozenset({"position", "sheet", "row_number"})


def _locked_upload(conn: sa.Connection, upload_id: str) -> sa.Row[Any] | None:
    """The upload's row, locked for the rest of the transaction (``FOR UPDATE`` where the
    database has it)."""
    return conn.execute(
        sa.select(uploads_table).where(uploads_table.c.upload_id == upload_id).with_for_update()
    ).first()
