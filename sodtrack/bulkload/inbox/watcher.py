"""The watcher: each poll lists the inbox, takes the complete files, stores, registers,
removes and announces them (see the package docstring)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import posixpath
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from sodtrack.bulkload.engine.ledger import upload_id_for
from sodtrack.bulkload.inbox.completeness import (
    DEFAULT_MAX_WAIT_S,
    DONE_SUFFIX,
    READ_CHUNK,
    Fingerprint,
    Stability,
    incomplete_reason,
    is_candidate,
    place_of,
)
from sodtrack.bulkload.inbox.events import (
    EVENT_NAME,
    Emitter,
    Received,
    RunInfo,
    RunLookup,
    bulk_load_run_name,
    upload_event,
)
from sodtrack.bulkload.inbox.registry import Registry, iso_timestamp
from sodtrack.contract.countries import COUNTRIES, get_country
from sodtrack.errors import ObjectStoreError
from sodtrack.objstore import filesystem, iter_exact, replace_text
from sodtrack.private import private_dir, touch_private
from sodtrack.textsafe import printable

log = logging.getLogger("sodtrack.bulkload.inbox")


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

    def __init__(self, url: str, setting: str, endpoint_url: str | None = None) -> None:
        self.url = url
        fs, root = filesystem(url, endpoint_url=endpoint_url, setting=setting)
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

    def replace_text(self, path: str, text: str) -> None:
        """Write ``path`` whole: a reader sees the old or the new text, never a cut one."""
        replace_text(path, text, fs=None if self.local else self.fs)

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
        s3_endpoint_url: str | None = None,
    ) -> None:
        self.inbox = _Location(inbox, "SODTRACK_INBOX", s3_endpoint_url)
        self.uploads = _Location(uploads, "SODTRACK_UPLOADS", s3_endpoint_url)
        self.outbox = _Location(outbox, "SODTRACK_OUTBOX", s3_endpoint_url)
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
            try:
                sha256, size = self._copy(path, staging, fp.size)
            except ObjectStoreError as exc:  # the store kept cutting its answers short
                log.warning("%s: object storage did not give it whole (%s): read again at "
                            "the next poll", printable(relative), printable(str(exc)))  # fmt: skip
                self.stability.forget(path)
                return None
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
            received_at=iso_timestamp(datetime.now(UTC)),
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

    def _copy(self, source: str, target: str, size: int) -> tuple[str, int]:
        """Copy the inbox file ``source`` (``size`` bytes when listed) to ``target``: its
        sha256 and the bytes copied. A local file is read to its end (still being written,
        it may have grown: the caller compares). An object is read exactly: an answer cut
        short is resumed where it stopped (:func:`~sodtrack.objstore.iter_exact`), and one
        that stays short raises :class:`~sodtrack.errors.IncompleteObject`."""
        digest = hashlib.sha256()
        copied = 0
        with self.uploads.open_new(target, "wb") as dst:
            for chunk in self._read(source, size):
                digest.update(chunk)
                copied += len(chunk)
                dst.write(chunk)
        return digest.hexdigest(), copied

    def _read(self, source: str, size: int) -> Iterator[bytes]:
        if not self.inbox.local:
            yield from iter_exact(self.inbox.fs, source, size)
            return
        with self.inbox.fs.open(source, "rb") as src:
            while chunk := src.read(READ_CHUNK):
                yield chunk

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
        # Rewritten at each change of the run it follows, while operations poll it.
        self.outbox.replace_text(receipt, json.dumps(body, indent=2))

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
