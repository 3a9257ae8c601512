"""The page's files on a local folder or on object storage, one interface for both.

``SODTRACK_UPLOADS`` and ``SODTRACK_OUTBOX`` are a path (``data/uploads``) or an fsspec URL
(``s3://bucket/uploads``, with ``SODTRACK_S3_ENDPOINT_URL``: :mod:`sodtrack.objstore`). The
page stores an upload at ``<uploads>/<upload_id>/upload.<ext>`` and its dry run's answer
beside it (``preview.json``), and reads a load's results, rejects and receipt from
``<outbox>/<upload_id>/``, wherever a worker wrote them: the page, the inbox watcher and the
workers share nothing but object storage and the state database.

Locally, folders are ``0700`` and files ``0600`` from the start (:mod:`sodtrack.private`); a
file is moved into place whole (``os.replace``) and ``preview.json`` written atomically. On
object storage an object appears whole (a PUT is atomic) with no ACL of its own, as private
as the bucket. An upload reaches the store from the spool file :mod:`sodtrack.web.receive`
wrote while streaming (bounded by the size limit): never held in memory.

Reading a file by a name from a request goes through :func:`sodtrack.web.files.safe_parts`
(no ``..``, no hidden segment, no absolute path …) and, locally, through
:func:`~sodtrack.web.files.file_under` (no symbolic link out of the folder).
"""

from __future__ import annotations

import contextlib
import os
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from sodtrack import objstore
from sodtrack.private import private_dir
from sodtrack.web.files import file_under, safe_parts

CHUNK: Final = 1 << 20


@dataclass(frozen=True, slots=True)
class StoredFile:
    """A file found in a :class:`Place`: its location (a local path or a URL) and size."""

    location: str
    name: str
    size: int


class Place:
    """A folder (``SODTRACK_UPLOADS``, ``SODTRACK_OUTBOX``): local, or on object storage."""

    def __init__(self, root: str, *, setting: str, endpoint_url: str | None = None) -> None:
        self.remote = objstore.is_remote(root)
        self.root = root.rstrip("/") if self.remote else str(Path(root))
        self._fs: Any = None
        self._base = ""
        if self.remote:
            self._fs, base = objstore.filesystem(
                self.root, endpoint_url=endpoint_url, setting=setting
            )
            self._base = base.rstrip("/")

    def location(self, *parts: str) -> str:
        """``root/parts`` as a path or a URL (what a flow run or the ledger is given)."""
        return str(objstore.join(self.root, *parts))

    def _key(self, *parts: str) -> str:
        return posixpath.join(self._base, *parts)

    def _key_of(self, location: str) -> str:
        prefix = self.root + "/"
        if not location.startswith(prefix):
            raise ValueError("not a location of this place")
        return self._key(location[len(prefix) :])

    # ------------------------------------------------------------ writing

    def put_new(self, local: Path, *parts: str) -> str:
        """Store ``local`` (a spool file, consumed) at ``parts`` unless a file is there
        already (the same upload: same hash, same bytes); returns its location."""
        target = self.location(*parts)
        if not self.remote:
            path = Path(target)
            private_dir(path.parent)
            if not path.exists():
                os.replace(local, path)
            return target
        key = self._key(*parts)
        if not self._fs.exists(key):
            self._fs.put_file(str(local), key)
        return target

    def write_text(self, text: str, *parts: str) -> None:
        """Write (replace) a small text file at ``parts``, whole."""
        if not self.remote:
            objstore.replace_text(self.location(*parts), text)
            return
        objstore.replace_text(self._key(*parts), text, fs=self._fs)

    # ------------------------------------------------------------ reading

    def read_text(self, *parts: str) -> str | None:
        """The text file at ``parts``, or ``None`` when there is none."""
        if not self.remote:
            path = Path(self.location(*parts))
            return path.read_text(encoding="utf-8") if path.is_file() else None
        # Exactly the object's bytes (resumed where an answer was cut short), or
        # IncompleteObject: never a shorter text taken for the whole.
        data = objstore.read_exact(self._fs, self._key(*parts))
        return None if data is None else data.decode("utf-8")

    def names(self, *parts: str) -> set[str]:
        """The names of the files in the folder ``parts`` (none when there is no folder),
        listed afresh (another process writes there)."""
        if not self.remote:
            folder = Path(self.location(*parts))
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                return {p.name for p in folder.iterdir() if p.is_file()}
            return set()
        key = self._key(*parts)
        self._fs.invalidate_cache(key)
        try:
            found = self._fs.ls(key, detail=True)
        except FileNotFoundError:
            return set()
        return {posixpath.basename(i["name"].rstrip("/")) for i in found if i["type"] == "file"}

    def file(self, relative: str) -> StoredFile | None:
        """The regular file ``root/relative`` named by a request, or ``None`` when the name
        would leave the folder (:func:`~sodtrack.web.files.safe_parts`) or there is none."""
        parts = safe_parts(relative)
        if parts is None:
            return None
        if not self.remote:
            found = file_under(Path(self.root), relative)
            if found is None:
                return None
            return StoredFile(str(found), found.name, found.stat().st_size)
        key = self._key(*parts)
        self._fs.invalidate_cache(posixpath.dirname(key))
        try:
            info = self._fs.info(key)
        except FileNotFoundError:
            return None
        if info.get("type") != "file":
            return None
        return StoredFile(self.location(*parts), parts[-1], int(info.get("size") or 0))

    def chunks(self, found: StoredFile) -> Iterator[bytes]:
        """The bytes of a file :meth:`file` found, a chunk at a time (blocking: a response
        iterates it in a thread). From object storage, exactly the ``size`` :meth:`file`
        found and the response declared (``Content-Length``): an answer cut short is resumed
        where it stopped, and one that stays short raises
        :class:`~sodtrack.errors.IncompleteObject` mid-stream, so the browser sees a broken
        download, never a complete-looking shorter file."""
        if not self.remote:
            with open(found.location, "rb") as fh:
                while chunk := fh.read(CHUNK):
                    yield chunk
            return
        yield from objstore.iter_exact(self._fs, self._key_of(found.location), found.size)
