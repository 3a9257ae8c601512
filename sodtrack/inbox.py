"""The upload inbox: spreadsheets dropped by operations become one bulk load each.

``sodtrack-etl watch`` runs :class:`InboxWatcher` in a loop. Each poll lists the inbox (a
folder by default; any fsspec URL, e.g. ``s3://bucket/inbox``, works the same) and takes the
files that are complete:

* **complete** = all of:

  1. a spreadsheet name (``.xlsx``, ``.xlsm``, ``.csv``; not a dotfile, not an Office lock
     file ``~$x.xlsx``, not ``.part``/``.tmp``/``.crdownload``…): a writer that writes
     under such a name and renames into place at the end is never seen half-way;
  2. **stable**: its size and modification stamp were the same at two consecutive polls at
     least ``settle_s`` apart (a file still being written changes between polls);
  3. **whole by its content** (:func:`incomplete_reason`), because a copy can pause longer
     than any settle time: an XLSX/XLSM must be a zip whose end-of-central-directory
     record and central directory are present and whose members start where the directory
     says (a zip is written front to back and its directory last, so a cut or a
     pre-allocated, not yet filled file has none); a CSV must end with a line end (in its
     encoding: UTF-8/CP-1252, or UTF-16/32 by their BOM), as every spreadsheet program
     writes it. Parsing stays the reader's job: this is a check of the last bytes.

  A stable file that does not look whole **waits** (it is not rejected; logged once) until
  it has been unchanged for ``max_wait_s`` (by this watcher's clock, or by its modification
  time, so ``--once`` under cron works too): then it is taken, and the reader answers for it
  (a cut CSV record is refused as ``file_truncated``, a cut zip as an unreadable file).
  A writer may also say "done" itself: ``<name>.done`` beside the file (any content) makes
  it complete once stable, whatever its content; the marker is removed with the file.

  Limit: a CSV copy that pauses exactly after a line end, for longer than the settle time,
  looks whole; writers that can pause should rename into place or write a ``.done`` marker.
* **country** = the sub-folder: ``<inbox>/cl/bookings.xlsx`` is for Chile; a file at the top
  of the inbox is for the default country (``SODTRACK_COUNTRY``). A file in a folder that is
  not a country code is left where it is (logged once).
* **check only** = a ``check/`` folder: ``<inbox>/cl/check/bookings.xlsx`` (or
  ``<inbox>/check/x.xlsx`` for the default country) is announced with ``check_only: true``
  and the ``bulk-load`` run is a dry run (every check, the same results file, nothing
  created). Its upload id is the dry run's (``upl_cl_…-dry``), so checking a file never
  stops the same file from being loaded for real later.

A complete file is copied to ``<uploads>/<upload_id>/<name>`` while its SHA-256 is computed,
registered, removed from the inbox, and announced by ``emit`` (the ``sodtrack-etl watch``
command posts a Prefect event ``sodtrack.upload.received``; a deployment trigger starts the
``bulk-load`` flow with the stored path). ``upload_id`` is the load ledger's id of
``(sha256, country)``: the id operations see in the results file is the one of the upload
folder. The load's results and rejects land in ``<outbox>/<upload_id>/``, beside the inbox.

Once only. The registry (table ``sodtrack_inbox`` in the state store's database: SQLite by
default, PostgreSQL for several watchers or machines) holds one row per upload id: the same
bytes dropped again for the same country are recognised, removed from the inbox and not
loaded again (the row counts the drops; ``receipt.json`` in the outbox says so). The event id
is a UUID5 of the upload id, so an event re-sent after a crash between "sent" and "recorded"
is de-duplicated by the Prefect server, and even a second run would resume the same upload in
the load ledger and create nothing twice.

What the watcher says. It logs each event Prefect accepted, then the flow run it started
(found by its name, :func:`bulk_load_run_name`, through ``lookup``: the ``sodtrack-etl watch``
command asks the Prefect API; a run takes that name when it starts on a worker) with its
link, and that run's final state; ``receipt.json`` gets the same (``flow_run``: id, name, url,
state, message) as soon as each is known. Only uploads announced since the watcher started
are followed.

Owner-only: stored uploads, their folders and ``receipt.json`` hold customers' personal
data and are created ``0600``/``0700`` on a local filesystem (:mod:`sodtrack.private`); file
names are logged through :func:`sodtrack.textsafe.printable` (a newline in a file name cannot
forge a log line).

Crash safety: every step is redone by the next poll until the file has left the inbox; an
upload registered but not announced is announced again by the next poll (``pending``).

This module has no Prefect import: the emitter is a plain callable taking the event as JSON.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import posixpath
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import fsspec
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from sodtrack.contract.countries import COUNTRIES, get_country
from sodtrack.db import AddColumn, engine_for, ensure_schema
from sodtrack.loader.ledger import upload_id_for
from sodtrack.private import private_dir, touch_private
from sodtrack.textsafe import printable

log = logging.getLogger("sodtrack.inbox")

EVENT_NAME = "sodtrack.upload.received"
"""The Prefect event a received upload emits; ``prefect.yaml``'s trigger expects it."""
RESOURCE_PREFIX = "sodtrack.upload."
"""Resource ids are ``sodtrack.upload.<upload_id>``; the trigger matches ``sodtrack.upload.*``."""
EVENT_NAMESPACE = uuid.UUID("6f1c1e9e-3b0f-5d55-9a53-50d7a1ac0a11")
"""UUID5 namespace of the event ids (fixed forever: changing it would re-trigger loads)."""

SPREADSHEET_SUFFIXES = frozenset({".xlsx", ".xlsm", ".csv"})
TEMP_SUFFIXES = frozenset(
    {".part", ".partial", ".tmp", ".temp", ".crdownload", ".download", ".filepart", ".swp"}
)
READ_CHUNK = 1 << 20
CHECK_FOLDER = "check"
"""``<inbox>[/<country>]/check/<name>``: load nothing, check every row (a dry run)."""
DONE_SUFFIX = ".done"
"""``<name>.done`` beside a file: its writer says the file is complete."""
DEFAULT_MAX_WAIT_S = 900.0
"""How long a stable file that does not look whole waits before it is taken anyway."""
ANNOUNCE_LEASE_S = 60.0
"""How long a watcher has to announce an upload it took before another may do it."""

Emitter = Callable[[dict[str, Any]], None]
"""Sends one event (Prefect's JSON shape); raises when it was not accepted."""
RunLookup = Callable[[str], "RunInfo | None"]
"""Finds the newest flow run of a name (:func:`bulk_load_run_name`); ``None`` while none."""
FINAL_STATES = frozenset({"COMPLETED", "FAILED", "CRASHED", "CANCELLED"})
"""Prefect state types after which a run changes no more."""


def bulk_load_run_name(country: str, upload: str, *, dry_run: bool = False) -> str:
    """The ``bulk-load`` flow run's name: ``bulk-load-cl-upl_cl_8934f77a0dceb5cf2062`` (the
    upload id, or the file's name for a run by hand), ``-dry`` added for a dry run whose id
    does not say so already."""
    suffix = "-dry" if dry_run and not upload.endswith("-dry") else ""
    return f"bulk-load-{country}-{upload}{suffix}"


@dataclass(frozen=True, slots=True)
class RunInfo:
    """A flow run as the watcher reports it."""

    id: str
    name: str
    state: str
    """The state's type (``COMPLETED``, ``FAILED``…)."""
    state_name: str
    """The state's name (``Completed``, ``Rows rejected``, ``TimedOut``…)."""
    message: str | None
    url: str | None

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES


# ---------------------------------------------------------------- pure core


def is_candidate(name: str) -> bool:
    """Whether a file name can be an upload (not hidden, not a lock or partial file)."""
    base = posixpath.basename(name)
    lower = base.lower()
    if not base or base.startswith((".", "~")) or lower.endswith("~"):
        return False
    suffix = posixpath.splitext(lower)[1]
    if suffix in TEMP_SUFFIXES or any(lower.endswith(s + ".tmp") for s in SPREADSHEET_SUFFIXES):
        return False
    return suffix in SPREADSHEET_SUFFIXES


def country_of(relative: str, default: str) -> str | None:
    """The country of a file from its place in the inbox (``cl/x.xlsx`` → ``cl``); a file at
    the top is for ``default``; ``None`` for any other place (unknown folder, too deep)."""
    place = place_of(relative, default)
    return place[0] if place is not None else None


def place_of(relative: str, default: str) -> tuple[str, bool] | None:
    """(country, check only) of a file from its place in the inbox: ``cl/x.xlsx`` → ``("cl",
    False)``, ``cl/check/x.xlsx`` → ``("cl", True)``, ``check/x.xlsx`` → ``(default, True)``;
    ``None`` for any other place."""
    parts = relative.strip("/").split("/")
    check = len(parts) >= 2 and parts[-2].lower() == CHECK_FOLDER
    if check:
        parts = parts[:-2] + parts[-1:]
    if len(parts) == 1:
        return get_country(default).code, check
    if len(parts) == 2 and parts[0].lower() in COUNTRIES:
        return parts[0].lower(), check
    return None


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What a listing says about a file: a change in either means it is still moving."""

    size: int
    stamp: str


class Stability:
    """Decides which listed files are complete: unchanged across two polls ``settle_s`` apart.

    Pure: feed it each poll's listing and the poll's (monotonic) time.
    """

    def __init__(self, settle_s: float = 1.0) -> None:
        self.settle_s = settle_s
        self._seen: dict[str, tuple[Fingerprint, float]] = {}

    def observe(self, listing: Mapping[str, Fingerprint], now: float) -> list[str]:
        ready: list[str] = []
        seen: dict[str, tuple[Fingerprint, float]] = {}
        for path, fp in listing.items():
            before = self._seen.get(path)
            if before is not None and before[0] == fp:
                seen[path] = before
                if fp.size > 0 and now - before[1] >= self.settle_s:
                    ready.append(path)
            else:
                seen[path] = (fp, now)
        self._seen = seen
        return sorted(ready)

    def forget(self, path: str) -> None:
        self._seen.pop(path, None)

    def stable_since(self, path: str) -> float | None:
        """When the file was first seen with its current fingerprint."""
        seen = self._seen.get(path)
        return seen[1] if seen is not None else None


_ZIP_SUFFIXES = frozenset({".xlsx", ".xlsm"})
_LINE_ENDS = (b"\n", b"\r")
_BOMS: tuple[tuple[bytes, int, bool], ...] = (
    # (BOM, code unit size, little endian): UTF-32 first (its LE BOM starts like UTF-16's)
    (b"\xff\xfe\x00\x00", 4, True),
    (b"\x00\x00\xfe\xff", 4, False),
    (b"\xff\xfe", 2, True),
    (b"\xfe\xff", 2, False),
)


def csv_incomplete_reason(head: bytes, tail: bytes, size: int) -> str | None:
    """Why a CSV does not look whole from its first and last bytes (``None``: it does).

    Whole = its last character is a line end, in the encoding its BOM names (UTF-16/32, LE
    or BE), else as a byte (UTF-8, CP-1252); a UTF-16/32 file is also a whole number of code
    units. An empty file is not whole.
    """
    if size == 0:
        return "the file is empty"
    for bom, unit, little in _BOMS:
        if head.startswith(bom):
            if size % unit:
                return f"it stops in the middle of a character ({size} bytes of UTF-{unit * 8})"
            ends = [
                (end + b"\x00" * (unit - 1)) if little else (b"\x00" * (unit - 1) + end)
                for end in _LINE_ENDS
            ]
            if any(tail.endswith(end) for end in ends):
                return None
            return "its last record does not end with a line end"
    if tail.endswith(_LINE_ENDS):
        return None
    return "its last record does not end with a line end"


def zip_incomplete_reason(fh: Any) -> str | None:
    """Why an XLSX/XLSM (a zip, open for binary reading and seekable) does not look whole:
    no end-of-central-directory record or central directory (a zip cut short), or a member
    that does not start where the directory says (a file not filled in yet). Reads the
    directory and four bytes per member: no decompression."""
    try:
        with zipfile.ZipFile(fh) as archive:
            members = archive.infolist()
            if not members:
                return "the zip holds no member"
            for info in members:
                fh.seek(info.header_offset)
                if fh.read(4) != b"PK\x03\x04":
                    return f"member {info.filename!r} is not where the zip's directory says"
    except (zipfile.BadZipFile, ValueError, EOFError, OSError) as exc:
        return f"not a whole zip ({type(exc).__name__}: no valid end of central directory)"
    return None


def incomplete_reason(name: str, fh: Any, size: int) -> str | None:
    """Why the file (``fh`` open for binary reading, seekable) does not look whole, from its
    content; ``None`` when it does (see the module docstring's rule 3)."""
    suffix = posixpath.splitext(name.lower())[1]
    if suffix in _ZIP_SUFFIXES:
        return zip_incomplete_reason(fh)
    if suffix == ".csv":
        head = fh.read(4)
        fh.seek(max(size - 4, 0))
        return csv_incomplete_reason(head, fh.read(4), size)
    return None


def event_id_for(upload_id: str) -> str:
    """The event id of an upload: the same upload always announces itself with the same id."""
    return str(uuid.uuid5(EVENT_NAMESPACE, upload_id))


@dataclass(frozen=True, slots=True)
class Received:
    """An upload as the watcher registered it (and as the event's payload carries it)."""

    upload_id: str
    sha256: str
    country: str
    file_name: str
    size: int
    path: str
    """Where the file is kept (a path, or a URL for a remote upload store): the flow's input."""
    outbox: str
    """The outbox: its results and rejects files go to ``<outbox>/<upload_id>/``."""
    source: str
    received_at: str

    @property
    def check_only(self) -> bool:
        """Announced from a ``check/`` folder: the run is a dry run (its id says so)."""
        return self.upload_id.endswith("-dry")


def upload_event(received: Received, *, occurred: datetime | None = None) -> dict[str, Any]:
    """The ``sodtrack.upload.received`` event of an upload, as Prefect's events API takes it."""
    return {
        "id": event_id_for(received.upload_id),
        "occurred": (occurred or datetime.now(UTC)).isoformat(),
        "event": EVENT_NAME,
        "resource": {
            "prefect.resource.id": RESOURCE_PREFIX + received.upload_id,
            "prefect.resource.name": received.file_name,
            "sodtrack.country": received.country,
            "sodtrack.sha256": received.sha256,
        },
        "related": [],
        "payload": {**asdict(received), "check_only": received.check_only},
    }


class PrefectEventsEmitter:
    """Posts events to a Prefect server's ``POST {api_url}/events`` (plain HTTP, no Prefect
    import). ``api_key`` is sent as a bearer token, ``auth_string`` (``user:password``, the
    OSS server's basic auth) as basic auth. Raises unless the server accepted the event."""

    def __init__(
        self,
        api_url: str,
        *,
        api_key: str | None = None,
        auth_string: str | None = None,
        timeout_s: float = 10.0,
        transport: Any = None,
    ) -> None:
        import httpx

        headers: dict[str, str] = {}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        elif auth_string:
            import base64

            headers["Authorization"] = "Basic " + base64.b64encode(auth_string.encode()).decode()
        self.url = api_url.rstrip("/") + "/events"
        self._http = httpx.Client(headers=headers, timeout=timeout_s, transport=transport)

    def __call__(self, event: dict[str, Any]) -> None:
        response = self._http.post(self.url, json=[event])
        response.raise_for_status()

    def close(self) -> None:
        self._http.close()


class PrefectRunLookup:
    """Finds a flow run by name through ``POST {api_url}/flow_runs/filter`` (plain HTTP, the
    same authentication as :class:`PrefectEventsEmitter`); ``ui_url`` makes its link."""

    def __init__(
        self,
        api_url: str,
        *,
        ui_url: str | None = None,
        api_key: str | None = None,
        auth_string: str | None = None,
        timeout_s: float = 10.0,
        transport: Any = None,
    ) -> None:
        import httpx

        self.url = api_url.rstrip("/") + "/flow_runs/filter"
        self.ui_url = ui_url.rstrip("/") if ui_url else None
        self._http = httpx.Client(
            headers=_auth_headers(api_key, auth_string), timeout=timeout_s, transport=transport
        )

    def __call__(self, name: str) -> RunInfo | None:
        body = {
            "flow_runs": {"name": {"any_": [name]}},
            "sort": "EXPECTED_START_TIME_DESC",
            "limit": 1,
        }
        response = self._http.post(self.url, json=body)
        response.raise_for_status()
        runs = response.json()
        if not runs:
            return None
        run, state = runs[0], runs[0].get("state") or {}
        return RunInfo(
            id=str(run["id"]),
            name=str(run["name"]),
            state=str(state.get("type") or "PENDING"),
            state_name=str(state.get("name") or "Pending"),
            message=state.get("message"),
            url=f"{self.ui_url}/runs/flow-run/{run['id']}" if self.ui_url else None,
        )

    def close(self) -> None:
        self._http.close()


def _auth_headers(api_key: str | None, auth_string: str | None) -> dict[str, str]:
    if api_key:
        return {"Authorization": f"Bearer {api_key}"}
    if auth_string:
        import base64

        return {"Authorization": "Basic " + base64.b64encode(auth_string.encode()).decode()}
    return {}


# ---------------------------------------------------------------- registry

_metadata = sa.MetaData()
inbox_table = sa.Table(
    "sodtrack_inbox",
    _metadata,
    sa.Column("upload_id", sa.String(64), primary_key=True),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("country", sa.String(8), nullable=False),
    sa.Column("file_name", sa.String(512), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("outbox", sa.Text, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("received_at", sa.String(40), nullable=False),
    sa.Column("drops", sa.Integer, nullable=False, default=1),
    sa.Column("last_drop_at", sa.String(40), nullable=False),
    sa.Column("event_id", sa.String(36), nullable=False),
    sa.Column("emitted_at", sa.String(40), nullable=True),
    sa.Column("announcing_until", sa.String(40), nullable=False),
)

MIGRATIONS: tuple[AddColumn, ...] = ()
"""Columns added to these tables since databases exist in the field (:mod:`sodtrack.db`)."""


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


class Registry:
    """Which uploads were received and announced, in the state store's database."""

    def __init__(self, url: str) -> None:
        self.engine = engine_for(url)
        ensure_schema(_metadata, self.engine, MIGRATIONS)

    def close(self) -> None:
        self.engine.dispose()

    def claim(self, received: Received, *, lease_s: float = ANNOUNCE_LEASE_S) -> bool:
        """Register a first drop (``True``): the caller holds the right to announce it for
        ``lease_s``. A known upload counts one more drop (``False``)."""
        values = {
            **asdict(received),
            "drops": 1,
            "last_drop_at": received.received_at,
            "event_id": event_id_for(received.upload_id),
            "announcing_until": _iso(datetime.now(UTC) + timedelta(seconds=lease_s)),
        }
        try:
            with self.engine.begin() as conn:
                conn.execute(sa.insert(inbox_table).values(**values))
            return True
        except IntegrityError:
            with self.engine.begin() as conn:
                conn.execute(
                    sa.update(inbox_table)
                    .where(inbox_table.c.upload_id == received.upload_id)
                    .values(drops=inbox_table.c.drops + 1, last_drop_at=received.received_at)
                )
            return False

    def mark_emitted(self, upload_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(inbox_table)
                .where(inbox_table.c.upload_id == upload_id)
                .values(emitted_at=_iso(datetime.now(UTC)))
            )

    def release(self, upload_id: str) -> None:
        """Give up announcing (the event was refused): anyone may try again at once."""
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(inbox_table)
                .where(inbox_table.c.upload_id == upload_id, inbox_table.c.emitted_at.is_(None))
                .values(announcing_until=_iso(datetime.now(UTC)))
            )

    def pending(self) -> list[Received]:
        """Registered uploads whose event was not (known to be) accepted yet."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(inbox_table)
                .where(inbox_table.c.emitted_at.is_(None))
                .order_by(inbox_table.c.received_at)
            ).mappings()
            return [_received(r) for r in rows]

    def take_pending(self, *, lease_s: float = ANNOUNCE_LEASE_S) -> list[Received]:
        """The pending uploads nobody is announcing now, each taken for ``lease_s`` (so two
        watchers on one registry never both announce an upload)."""
        now = datetime.now(UTC)
        mine: list[Received] = []
        for received in self.pending():
            with self.engine.begin() as conn:
                taken = conn.execute(
                    sa.update(inbox_table)
                    .where(
                        inbox_table.c.upload_id == received.upload_id,
                        inbox_table.c.emitted_at.is_(None),
                        inbox_table.c.announcing_until <= _iso(now),
                    )
                    .values(announcing_until=_iso(now + timedelta(seconds=lease_s)))
                ).rowcount
            if taken:
                mine.append(received)
        return mine

    def get(self, upload_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(sa.select(inbox_table).where(inbox_table.c.upload_id == upload_id))
                .mappings()
                .first()
            )
        return dict(row) if row is not None else None


def _received(row: sa.RowMapping) -> Received:
    return Received(**{k: row[k] for k in Received.__dataclass_fields__})


# ---------------------------------------------------------------- the watcher


def _modified_at(info: Mapping[str, Any]) -> float | None:
    """When the listed file last changed, as epoch seconds, if the listing says: the newest of
    its stamps (a copier may set an old ``mtime`` from the source; a local file's ``created``
    is its ctime on POSIX, which any write or ``utime`` moves on)."""
    stamps: list[float] = []
    for key in ("mtime", "created", "LastModified", "last_modified", "updated"):
        value = info.get(key)
        if isinstance(value, int | float):
            stamps.append(float(value))
        elif isinstance(value, datetime):
            stamps.append(value.timestamp())
    return max(stamps) if stamps else None


def _stamp(info: Mapping[str, Any]) -> str:
    for key in ("mtime", "LastModified", "last_modified", "updated", "ETag", "etag", "created"):
        value = info.get(key)
        if value is not None:
            return str(value)
    return ""


class _Location:
    """A folder on some fsspec filesystem; paths in and out as the user wrote them."""

    def __init__(self, url: str) -> None:
        self.url = url
        fs, root = fsspec.core.url_to_fs(url)
        self.fs = fs
        self.local = "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))
        self.root = root.rstrip("/") or "/"

    def join(self, *parts: str) -> str:
        return posixpath.join(self.root, *parts)

    def public(self, path: str) -> str:
        """A path the flow can be given: plain for local files, a URL for remote ones."""
        return path if self.local else str(self.fs.unstrip_protocol(path))

    def relative(self, path: str) -> str:
        return posixpath.relpath(path, self.root)

    def makedirs(self, path: str) -> None:
        """A folder (and its parents); local ones owner-only (``0700``)."""
        if self.local:
            private_dir(path)
        else:
            self.fs.makedirs(path, exist_ok=True)

    def open_new(self, path: str, mode: str) -> Any:
        """Open ``path`` for writing; a local file is created ``0600`` first (never chmod-ed
        afterwards: see :mod:`sodtrack.private`)."""
        if self.local:
            touch_private(path)
        return self.fs.open(path, mode)


class InboxWatcher:
    """Polls an inbox and turns each complete new file into an announced upload."""

    def __init__(
        self,
        *,
        inbox: str,
        uploads: str,
        outbox: str,
        default_country: str,
        registry: Registry,
        emit: Emitter,
        lookup: RunLookup | None = None,
        settle_s: float = 1.0,
        max_wait_s: float = DEFAULT_MAX_WAIT_S,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.inbox = _Location(inbox)
        self.uploads = _Location(uploads)
        self.outbox = _Location(outbox)
        self.default_country = get_country(default_country).code
        self.registry = registry
        self.emit = emit
        self.lookup = lookup
        self._following: dict[str, tuple[Received, RunInfo | None]] = {}
        self.clock = clock
        self.wall_clock = wall_clock
        self.max_wait_s = max_wait_s
        self.stability = Stability(settle_s)
        self._ignored: set[tuple[str, Fingerprint]] = set()
        self._waiting: set[tuple[str, Fingerprint]] = set()
        self._modified: dict[str, float] = {}
        self._markers: set[str] = set()
        if self.inbox.local:
            self.inbox.fs.makedirs(self.inbox.root, exist_ok=True)
            for code in COUNTRIES:  # where operations drop a country's files
                self.inbox.fs.makedirs(self.inbox.join(code), exist_ok=True)

    # one poll ---------------------------------------------------------

    def poll(self) -> list[Received]:
        """One pass: take every complete file, announce what is pending; returns new uploads."""
        listing = self._list()
        taken: list[Received] = []
        now = self.clock()
        for path in self.stability.observe(listing, now):
            marked = path in self._markers
            try:
                received = self._take(path, listing[path], now, marked=marked)
            except FileNotFoundError:  # another watcher took it first
                self.stability.forget(path)
                continue
            finally:
                if marked and not self.inbox.fs.exists(path):
                    with contextlib.suppress(FileNotFoundError):
                        self.inbox.fs.rm(path + DONE_SUFFIX)
            if received is not None:
                taken.append(received)
        self._announce_pending()
        self._follow_runs()
        return taken

    def run(self, *, interval_s: float = 2.0, stop: threading.Event | None = None) -> None:
        """Poll until ``stop`` is set (or forever). A failing poll is logged and retried."""
        stop = stop or threading.Event()
        log.info("watching %s (uploads %s, outbox %s)", printable(self.inbox.url),
                 printable(self.uploads.url), printable(self.outbox.url))  # fmt: skip
        while not stop.is_set():
            try:
                for r in self.poll():
                    log.info("upload %s: %s (%s, %d bytes)", r.upload_id,
                             printable(r.file_name), r.country, r.size)  # fmt: skip
            except Exception:
                log.exception("inbox poll failed; retrying")
            stop.wait(interval_s)

    # internals --------------------------------------------------------

    def _list(self) -> dict[str, Fingerprint]:
        fs = self.inbox.fs
        try:
            found = fs.find(self.inbox.root, maxdepth=3, withdirs=False, detail=True)
        except FileNotFoundError:
            return {}
        listing: dict[str, Fingerprint] = {}
        modified: dict[str, float] = {}
        markers: set[str] = set()
        for path, info in found.items():
            if info.get("type", "file") != "file":
                continue
            if path.endswith(DONE_SUFFIX) and is_candidate(path[: -len(DONE_SUFFIX)]):
                markers.add(path[: -len(DONE_SUFFIX)])
            if not is_candidate(path):
                continue
            listing[path] = Fingerprint(int(info.get("size") or 0), _stamp(info))
            at = _modified_at(info)
            if at is not None:
                modified[path] = at
        self._modified, self._markers = modified, markers & listing.keys()
        self._waiting = {(p, fp) for p, fp in self._waiting if listing.get(p) == fp}
        return listing

    def _whole(self, path: str, fp: Fingerprint, now: float) -> bool:
        """Rule 3 of the module docstring: whether a stable file is taken now."""
        with self.inbox.fs.open(path, "rb") as fh:
            reason = incomplete_reason(posixpath.basename(path), fh, fp.size)
        if reason is None:
            return True
        since = self.stability.stable_since(path)
        waited = now - since if since is not None else 0.0
        if path in self._modified:
            waited = max(waited, self.wall_clock() - self._modified[path])
        relative = self.inbox.relative(path)
        if waited >= self.max_wait_s:
            log.warning("%s does not look whole (%s) and has not changed for %.0f s: taken; "
                        "the load answers for it", relative, reason, waited)  # fmt: skip
            return True
        if (path, fp) not in self._waiting:
            self._waiting.add((path, fp))
            log.info("%s does not look whole yet (%s): waiting for the rest, at most %.0f s",
                     relative, reason, self.max_wait_s)  # fmt: skip
        return False

    def _take(self, path: str, fp: Fingerprint, now: float, *, marked: bool) -> Received | None:
        relative = self.inbox.relative(path)
        place = place_of(relative, self.default_country)
        name = posixpath.basename(path)
        if place is None:
            if (path, fp) not in self._ignored:
                self._ignored.add((path, fp))
                log.warning("%s: not in a country folder (<inbox>/<country>/%s): left there",
                            printable(relative), printable(name))  # fmt: skip
            return None
        country, check_only = place
        if not marked and not self._whole(path, fp, now):
            return None
        staging = self.uploads.join(".incoming", f"{uuid.uuid4().hex}-{name}")
        self.uploads.makedirs(posixpath.dirname(staging))
        try:
            sha256, size = self._copy(path, staging)
            if size != fp.size or self._fingerprint(path) != fp:
                log.info("%s changed while being read: waiting for it to settle",
                         printable(relative))  # fmt: skip
                self.stability.forget(path)
                return None
            upload_id = upload_id_for(sha256, country, dry_run=check_only)
            known = self.registry.get(upload_id)
            dest = self.uploads.join(upload_id, name)
            if known is None:
                self.uploads.makedirs(posixpath.dirname(dest))
                self.uploads.fs.mv(staging, dest)
        finally:
            if self.uploads.fs.exists(staging):
                self.uploads.fs.rm(staging)
        received = Received(
            upload_id=upload_id,
            sha256=sha256,
            country=country,
            file_name=name,
            size=size,
            path=self.uploads.public(dest),
            outbox=self.outbox.public(self.outbox.root),
            source=self.inbox.public(path),
            received_at=_iso(datetime.now(UTC)),
        )
        first = self.registry.claim(received)
        self._receipt(received)
        with contextlib.suppress(FileNotFoundError):  # another watcher's, at the same time
            self.inbox.fs.rm(path)
        self.stability.forget(path)
        if not first:
            log.warning("%s: the same file was already received as upload %s; not loaded again",
                        printable(relative), upload_id)  # fmt: skip
            return None
        self._announce(received)
        return received

    def _fingerprint(self, path: str) -> Fingerprint | None:
        """The file's fingerprint now, from a listing of its folder (as ``_list`` sees it)."""
        for info in self.inbox.fs.ls(posixpath.dirname(path), detail=True):
            if info["name"].rstrip("/") == path:
                return Fingerprint(int(info.get("size") or 0), _stamp(info))
        return None

    def _copy(self, source: str, target: str) -> tuple[str, int]:
        digest = hashlib.sha256()
        size = 0
        with self.inbox.fs.open(source, "rb") as src, self.uploads.open_new(target, "wb") as dst:
            while chunk := src.read(READ_CHUNK):
                digest.update(chunk)
                size += len(chunk)
                dst.write(chunk)
        return digest.hexdigest(), size

    def _receipt(self, received: Received, run: RunInfo | None = None) -> None:
        """``<outbox>/<upload_id>/receipt.json``: operations see the upload id at once, then
        the flow run it started (id, name, link) and that run's final state."""
        folder = self.outbox.join(received.upload_id)
        self.outbox.makedirs(folder)
        row = self.registry.get(received.upload_id) or {}
        body = {
            "upload_id": received.upload_id,
            "file_name": row.get("file_name", received.file_name),
            "country": received.country,
            "sha256": received.sha256,
            "size": received.size,
            "stored_as": row.get("path", received.path),
            "received_at": row.get("received_at", received.received_at),
            "drops": row.get("drops", 1),
            "last_drop_at": row.get("last_drop_at", received.received_at),
            "check_only": received.check_only,
            "note": (
                (
                    "received for a check: every row is checked, nothing is created"
                    if received.check_only
                    else "received; the bulk load starts on its own"
                )
                if row.get("drops", 1) == 1
                else "the same file was dropped again: it is loaded once (see the first run)"
            ),
        }
        receipt = posixpath.join(folder, "receipt.json")
        if run is None:  # a drop again: keep what is known of the first run
            with (
                contextlib.suppress(FileNotFoundError, ValueError, KeyError),
                self.outbox.fs.open(receipt, "r") as fh,
            ):
                body["flow_run"] = json.loads(fh.read())["flow_run"]
        else:
            body["flow_run"] = {
                "id": run.id,
                "name": run.name,
                "url": run.url,
                "state": run.state_name,
                "state_type": run.state,
                "message": run.message,
                "final": run.final,
            }
        with self.outbox.open_new(receipt, "w") as fh:
            fh.write(json.dumps(body, indent=2))

    def _announce(self, received: Received) -> None:
        try:
            self.emit(upload_event(received))
        except Exception:
            log.exception("upload %s: event not sent; retrying at the next poll",
                          received.upload_id)  # fmt: skip
            self.registry.release(received.upload_id)
            return
        self.registry.mark_emitted(received.upload_id)
        mode = ", check only" if received.check_only else ""
        log.info("upload %s: event %s accepted by Prefect (%s%s)", received.upload_id,
                 EVENT_NAME, received.country, mode)  # fmt: skip
        if self.lookup is not None:
            self._following[received.upload_id] = (received, None)

    def _follow_runs(self) -> None:
        """Log and record the run each announced upload started, then its final state."""
        if self.lookup is None:
            return
        for upload_id, (received, known) in list(self._following.items()):
            name = bulk_load_run_name(
                received.country, received.upload_id, dry_run=received.check_only
            )
            try:
                run = self.lookup(name)
            except Exception as exc:  # the Prefect API is down: try again at the next poll
                log.warning("upload %s: flow run not looked up (%s); retrying", upload_id,
                            type(exc).__name__)  # fmt: skip
                continue
            if run is None or run == known:
                continue
            if known is None or known.id != run.id:
                log.info("upload %s: started flow run %s (%s) %s", upload_id, run.name,
                         run.id, run.url or "")  # fmt: skip
            if run.final:
                log.info("upload %s: flow run %s ended %s: %s", upload_id, run.name,
                         run.state_name, printable(run.message or ""))  # fmt: skip
                del self._following[upload_id]
            else:
                self._following[upload_id] = (received, run)
            self._receipt(received, run)

    def _announce_pending(self) -> None:
        for received in self.registry.take_pending():
            self._announce(received)
