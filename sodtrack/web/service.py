"""The upload page's work, without HTTP: take a file, dry-run it in the background, load it
(announced to Prefect, or run here), report progress, cancel. Library code: no Prefect import.

Uploads (table ``sodtrack_web_uploads`` in the state database) are keyed by the load ledger's
upload id of ``(sha256, country)``: two people dropping the same file for the same country get
the same row, the same stored file (``<uploads>/<upload_id>/upload.<ext>``, owner-only: never
the file's own name) and one load (the load is started by a conditional update only one caller
wins). The dry run's answer is kept beside it as ``preview.json``. ``<uploads>`` and
``<outbox>`` are folders or object storage (``s3://…``, :mod:`sodtrack.web.storage`): the
page, the inbox watcher and the workers share nothing but the store and the state database.
A file is streamed into a bounded owner-only spool file (:mod:`sodtrack.web.receive`), checked,
then moved or uploaded into place: never held in memory.

Loads. With an emitter (a Prefect API is configured) the upload is registered in the inbox
registry and announced with ``sodtrack.upload.received`` exactly as the inbox watcher does, and
the ``bulk-load`` deployment runs it on a worker. Without one (the embedded default) the load
runs here as a background task. Either way the results land in ``<outbox>/<upload_id>/`` and
progress is read from the load ledger. Dry runs and loads run as jobs (:class:`Job`), each in
its own thread and event loop: the page answers while they work. A restart loses nothing:
:meth:`UploadService.resume` (called at start-up) starts again every embedded load and dry
run that was running; the ledger makes the resumed load create nothing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import tempfile
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from sodtrack.bulkload.answers.results import result_file_names
from sodtrack.bulkload.engine.cancel import CancelResult, cancel_upload
from sodtrack.bulkload.engine.ledger import Ledger, upload_id_for
from sodtrack.bulkload.inbox.events import Emitter, Received, upload_event
from sodtrack.bulkload.inbox.registry import Registry
from sodtrack.bulkload.outcomes import UploadResult
from sodtrack.bulkload.reading.upload import ParsedUpload
from sodtrack.bulkload.run import load, read, run_load, upload_limits
from sodtrack.db import AddColumn, engine_for, ensure_schema
from sodtrack.errors import AccountError, FileRefused, SodtrackError
from sodtrack.objstore import name_of
from sodtrack.settings import Settings
from sodtrack.textsafe import printable
from sodtrack.web.accounts import Account
from sodtrack.web.preview import build_preview
from sodtrack.web.receive import check_type, receive_multipart
from sodtrack.web.storage import Place, StoredFile

log = logging.getLogger("sodtrack.web")

STORED_STEM: Final = "upload"
"""Stored uploads are ``upload.<ext>``: results files are ``upload.<upload_id>.<kind>``."""
DOWNLOADS: Final = {
    "results.xlsx": "results_xlsx",
    "results.csv": "results_csv",
    "rejects.xlsx": "rejects_xlsx",
    "rejects.csv": "rejects_csv",
}

_metadata = sa.MetaData()
web_uploads_table = sa.Table(
    "sodtrack_web_uploads",
    _metadata,
    sa.Column("upload_id", sa.String(64), primary_key=True),
    sa.Column("country", sa.String(8), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("file_name", sa.String(512), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("uploaded_by", sa.String(64), nullable=False),
    sa.Column("received_at", sa.String(40), nullable=False),
    sa.Column("drops", sa.Integer, nullable=False, default=1),
    sa.Column("preview_status", sa.String(16), nullable=False, default="pending"),
    sa.Column("load_status", sa.String(16), nullable=False, default="none"),
    sa.Column("load_by", sa.String(64), nullable=True),
    sa.Column("load_at", sa.String(40), nullable=True),
    sa.Column("error", sa.Text, nullable=True),
)
MIGRATIONS: tuple[AddColumn, ...] = ()

PREVIEW_STATES: Final = ("pending", "running", "done", "failed")
LOAD_STATES: Final = ("none", "running", "announced", "done", "failed", "cancelled")
PREVIEW_FILE: Final = "preview.json"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True)
class WebUpload:
    upload_id: str
    country: str
    sha256: str
    file_name: str
    size: int
    path: str
    uploaded_by: str
    received_at: str
    drops: int
    preview_status: str
    load_status: str
    load_by: str | None
    load_at: str | None
    error: str | None


class Job:
    """A background job (a dry run, a load) in its own thread and event loop, so its CPU work
    (reading, planning, assembling 10,000 answers, the ledger's writes) never stalls the
    page's loop. :meth:`cancel` cancels it as a task (it stops at its next ``await``)."""

    def __init__(self, work: Coroutine[Any, Any, None], *, name: str) -> None:
        self._work = work
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[Any] | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"sodtrack-web {name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._task = asyncio.current_task()
            self._started.set()
            await self._work

        try:
            asyncio.run(main())
        except asyncio.CancelledError:
            pass
        except Exception:  # the job records its own failure; this is a last resort
            log.exception("background job failed")
        finally:
            self._started.set()

    def done(self) -> bool:
        return not self._thread.is_alive()

    def cancel(self) -> None:
        self._started.wait(5)
        loop, task = self._loop, self._task
        if loop is not None and task is not None and not self.done():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(task.cancel)

    def join(self, timeout_s: float) -> None:
        self._thread.join(timeout_s)


class UploadService:
    """Uploads, their dry runs and loads, for one deployment's settings."""

    def __init__(self, settings: Settings, *, emit: Emitter | None = None) -> None:
        self.settings = settings
        self.emit = emit
        self.engine = engine_for(settings.state_url)
        ensure_schema(_metadata, self.engine, MIGRATIONS)
        self.ledger = Ledger(settings.state_url)
        endpoint = settings.s3_endpoint_url
        self.uploads = Place(settings.uploads, setting="SODTRACK_UPLOADS", endpoint_url=endpoint)
        self.outbox = Place(settings.outbox, setting="SODTRACK_OUTBOX", endpoint_url=endpoint)
        # Where an upload is spooled while it streams in: beside the stored uploads on a
        # local disk (one rename into place), a private temporary folder for a remote store.
        self._spool_tmp = tempfile.mkdtemp(prefix="sodtrack-web-") if self.uploads.remote else None
        self.spool = (
            Path(self._spool_tmp)
            if self._spool_tmp is not None
            else Path(self.uploads.root) / ".incoming"
        )
        self.tasks: dict[str, Job] = {}
        self.progress: dict[str, dict[str, Any]] = {}

    def close(self) -> None:
        self.ledger.close()
        if self._spool_tmp is not None:
            shutil.rmtree(self._spool_tmp, ignore_errors=True)

    # ------------------------------------------------------------ records

    def get(self, upload_id: str) -> WebUpload | None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(
                    sa.select(web_uploads_table).where(web_uploads_table.c.upload_id == upload_id)
                )
                .mappings()
                .first()
            )
        return WebUpload(**dict(row)) if row is not None else None

    def country_of(self, upload_id: str) -> str | None:
        """The country of any upload this installation knows: one of the page's, one the
        load ledger holds (a load from the inbox, the command line or a flow run), or one the
        inbox received and has not loaded yet; ``None``: unknown."""
        record = self.get(upload_id)
        if record is not None:
            return record.country
        loaded = self.ledger.get_upload(upload_id)
        if loaded is not None:
            return loaded.country
        received = Registry(self.settings.state_url).get(upload_id)
        return str(received["country"]) if received is not None else None

    def history(self, countries: tuple[str, ...]) -> list[WebUpload]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(web_uploads_table)
                .where(web_uploads_table.c.country.in_(countries))
                .order_by(web_uploads_table.c.received_at.desc())
            ).mappings()
            return [WebUpload(**dict(r)) for r in rows]

    def _set(self, upload_id: str, **values: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(web_uploads_table)
                .where(web_uploads_table.c.upload_id == upload_id)
                .values(**values)
            )

    # ------------------------------------------------------------ taking a file

    async def receive(
        self,
        body: AsyncIterator[bytes],
        content_type: str,
        account: Account,
        *,
        check_fields: Callable[[dict[str, str]], None] | None = None,
    ) -> tuple[WebUpload, bool]:
        """Store an uploaded file (streamed, size-limited) under its upload id; ``True`` when
        it is new, ``False`` when the same file was uploaded for the same country before.
        ``check_fields`` sees the form's fields before anything is kept (the page's CSRF
        check: it raises to refuse, and the received file is removed)."""
        incoming = await receive_multipart(
            body,
            content_type,
            max_file_bytes=int(self.settings.upload_max_file_bytes),
            tmp_dir=self.spool,
        )
        try:
            if check_fields is not None:
                check_fields(incoming.fields)
            country = incoming.fields.get("country", "").strip().lower()
            if not account.may_load(country):
                raise AccountError(f"your account may not load into country {country!r}")
            if incoming.path is None or incoming.file_name is None:
                raise FileRefused("choose a file to upload")
            if incoming.size == 0:
                raise FileRefused("the file is empty")
            suffix = check_type(incoming.file_name, incoming.head)
            upload_id = upload_id_for(incoming.sha256, country)
            target = await asyncio.to_thread(
                self.uploads.put_new, incoming.path, upload_id, f"{STORED_STEM}{suffix}"
            )
        finally:
            incoming.discard()
        values = {
            "upload_id": upload_id,
            "country": country,
            "sha256": incoming.sha256,
            "file_name": incoming.file_name,
            "size": incoming.size,
            "path": target,
            "uploaded_by": account.name,
            "received_at": _now(),
            "drops": 1,
            "preview_status": "pending",
            "load_status": "none",
        }
        try:
            with self.engine.begin() as conn:
                conn.execute(sa.insert(web_uploads_table).values(**values))
            created = True
        except IntegrityError:
            with self.engine.begin() as conn:
                conn.execute(
                    sa.update(web_uploads_table)
                    .where(web_uploads_table.c.upload_id == upload_id)
                    .values(drops=web_uploads_table.c.drops + 1)
                )
            created = False
        record = self.get(upload_id)
        assert record is not None
        log.info(
            "upload %s (%s, %s) from %s%s",
            upload_id,
            printable(incoming.file_name),
            country,
            account.name,
            "" if created else " again",
        )
        return record, created

    # ------------------------------------------------------------ dry run

    def start_preview(self, upload_id: str) -> None:
        record = self.get(upload_id)
        if record is None or record.preview_status == "done":
            return
        self._spawn(f"preview:{upload_id}", self._preview(record))

    def _spawn(self, key: str, work: Coroutine[Any, Any, None]) -> None:
        job = self.tasks.get(key)
        if job is not None and not job.done():
            work.close()
            return
        self.tasks[key] = Job(work, name=key)

    def _progress_cb(self, upload_id: str, what: str) -> Callable[[str, int, int], None]:
        def report(phase: str, done: int, total: int) -> None:
            self.progress[upload_id] = {"of": what, "phase": phase, "done": done, "total": total}

        return report

    async def _preview(self, record: WebUpload) -> None:
        upload_id = record.upload_id
        self._set(upload_id, preview_status="running", error=None)
        self.progress[upload_id] = {"of": "preview", "phase": "read", "done": 0, "total": 0}
        try:
            parsed = await asyncio.to_thread(
                read,
                record.path,
                record.country,
                limits=upload_limits(self.settings),
                endpoint_url=self.settings.s3_endpoint_url,
            )
            result = await load(
                self.settings,
                parsed,
                uploaded_by=record.uploaded_by,
                dry_run=True,
                progress=self._progress_cb(upload_id, "preview"),
            )
            # Building and writing the preview of a large file takes a while: off the loop.
            total = len(parsed.rows)
            self.progress[upload_id] = {
                "of": "preview",
                "phase": "save",
                "done": total,
                "total": total,
            }
            await asyncio.to_thread(self._save_preview, record, parsed, result)
            self._set(upload_id, preview_status="done")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the page shows it; the next start tries again
            log.exception("dry run of %s failed", upload_id)
            self._set(upload_id, preview_status="failed", error=_why(exc))
        finally:
            self.progress.pop(upload_id, None)

    def _save_preview(self, record: WebUpload, parsed: ParsedUpload, result: UploadResult) -> None:
        preview = build_preview(parsed, result)
        preview["file_name"] = record.file_name
        self.uploads.write_text(json.dumps(preview, default=str), record.upload_id, PREVIEW_FILE)

    def preview(self, upload_id: str) -> dict[str, Any] | None:
        text = self.uploads.read_text(upload_id, PREVIEW_FILE)
        if text is None:
            return None
        data: dict[str, Any] = json.loads(text)
        return data

    # ------------------------------------------------------------ load

    def start_load(self, upload_id: str, account: Account) -> bool:
        """Start the load once: ``False`` when it was started before (by anyone)."""
        with self.engine.begin() as conn:
            won = conn.execute(
                sa.update(web_uploads_table)
                .where(
                    web_uploads_table.c.upload_id == upload_id,
                    web_uploads_table.c.load_status.in_(("none", "failed")),
                )
                .values(
                    load_status="announced" if self.emit else "running",
                    load_by=account.name,
                    load_at=_now(),
                    error=None,
                )
            ).rowcount
        if not won:
            return False
        record = self.get(upload_id)
        assert record is not None
        if self.emit is not None:
            self._announce(record)
        else:
            self._spawn(f"load:{upload_id}", self._load(record))
        return True

    def _announce(self, record: WebUpload) -> None:
        """Register and announce the upload as the inbox watcher does (same registry, same
        event): the ``bulk-load`` deployment's trigger runs it on a worker."""
        assert self.emit is not None
        received = Received(
            upload_id=record.upload_id,
            sha256=record.sha256,
            country=record.country,
            file_name=name_of(record.path),
            size=record.size,
            path=record.path,
            outbox=self.outbox.root,
            source=f"web:{record.load_by}",
            received_at=record.load_at or _now(),
        )
        registry = Registry(self.settings.state_url)
        try:
            registry.claim(received)
            try:
                self.emit(upload_event(received))
            except Exception as exc:
                registry.release(record.upload_id)
                self._set(record.upload_id, load_status="failed", error=_why(exc))
                log.warning("could not announce %s: %s", record.upload_id, _why(exc))
                return
            registry.mark_emitted(record.upload_id)
        finally:
            registry.close()

    async def _load(self, record: WebUpload) -> None:
        upload_id = record.upload_id
        try:
            await run_load(
                self.settings,
                record.path,
                country=record.country,
                uploaded_by=record.load_by or record.uploaded_by,
                outbox=self.outbox.root,
                progress=self._progress_cb(upload_id, "load"),
            )
            self._set(upload_id, load_status="done")
        except asyncio.CancelledError:
            raise  # shutting down: status stays "running", resumed on the next start
        except Exception as exc:
            log.exception("load of %s failed", upload_id)
            self._set(upload_id, load_status="failed", error=_why(exc))
        finally:
            self.progress.pop(upload_id, None)

    def resume(self) -> list[str]:
        """Start again what a stopped process left running (call once at start-up)."""
        resumed = []
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(web_uploads_table.c.upload_id).where(
                    sa.or_(
                        web_uploads_table.c.preview_status == "running",
                        web_uploads_table.c.load_status == "running",
                    )
                )
            ).scalars()
            ids = list(rows)
        for upload_id in ids:
            record = self.get(upload_id)
            assert record is not None
            if record.preview_status == "running":
                self._spawn(f"preview:{upload_id}", self._preview(record))
            if record.load_status == "running" and self.emit is None:
                self._spawn(f"load:{upload_id}", self._load(record))
            resumed.append(upload_id)
        return resumed

    async def shutdown(self, timeout_s: float = 30.0) -> None:
        """Cancel the jobs and wait for them (their state stays ``running``: resumed on the
        next start)."""
        for job in self.tasks.values():
            job.cancel()
        for job in self.tasks.values():
            await asyncio.to_thread(job.join, timeout_s)

    def status(self, upload_id: str) -> dict[str, Any]:
        """Everything the page polls: statuses, progress (the ledger's, and this process's
        phase), counts of the load."""
        record = self.get(upload_id)
        assert record is not None
        ledger_record = self.ledger.get_upload(upload_id)
        steps = self.ledger.steps(upload_id) if ledger_record is not None else {}
        settled = sum(1 for s in steps.values() if s.state not in ("pending", "in_flight"))
        load_status = record.load_status
        if (
            record.load_status == "announced"  # a worker runs it: the ledger says when done
            and ledger_record is not None
            and ledger_record.status != "running"
            and ledger_record.lease_owner is None
            and ledger_record.summary
        ):
            load_status = "done"
            self._set(upload_id, load_status="done")
        return {
            "upload_id": upload_id,
            "country": record.country,
            "file_name": record.file_name,
            "uploaded_by": record.uploaded_by,
            "received_at": record.received_at,
            "drops": record.drops,
            "preview_status": record.preview_status,
            "load_status": load_status,
            "load_by": record.load_by,
            "error": record.error,
            "progress": self.progress.get(upload_id),
            "ledger": None
            if ledger_record is None
            else {
                "status": ledger_record.status,
                "runs": ledger_record.runs,
                "rows": ledger_record.row_count,
                "counts": ledger_record.summary,
                "steps_settled": settled,
                "steps_total": len(steps),
            },
            # Results exist once a load has begun (one listing of the outbox folder).
            "downloads": sorted(self.download_names(upload_id)) if ledger_record else [],
        }

    def download_names(self, upload_id: str) -> dict[str, str]:
        """The latest results and rejects files of the upload's load: download name → the
        file's name in ``<outbox>/<upload_id>/``."""
        _, latest = result_file_names(STORED_STEM, upload_id, 1)
        present = self.outbox.names(upload_id)
        return {name: latest[kind] for name, kind in DOWNLOADS.items() if latest[kind] in present}

    def outbox_file(self, upload_id: str, name: str) -> StoredFile | None:
        """A file of ``<outbox>/<upload_id>/`` by a name from a request (no way out)."""
        return self.outbox.file(f"{upload_id}/{name}")

    def download(self, upload_id: str, name: str) -> StoredFile | None:
        """The latest results or rejects file by its download name (``results.xlsx`` …)."""
        stored = self.download_names(upload_id).get(name)
        return self.outbox_file(upload_id, stored) if stored is not None else None

    # ------------------------------------------------------------ cancel

    async def cancel(self, upload_id: str, account: Account) -> CancelResult:
        from sodtrack.client import country_client

        record = self.get(upload_id)
        assert record is not None
        async with country_client(self.settings, record.country) as client:
            result = await cancel_upload(
                upload_id,
                client,
                self.ledger,
                reason=f"Cancelled from the upload page by {account.name} ({upload_id})",
            )
        self._set(upload_id, load_status="cancelled")
        return result


def _why(exc: BaseException) -> str:
    """A failure in words for the page: our errors say what happened; anything else is named
    by its type only (its text could hold anything)."""
    if isinstance(exc, SodtrackError):
        return printable(str(exc))[:500]
    return f"unexpected error ({type(exc).__name__}); see the server log"
