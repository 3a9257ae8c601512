"""The filesystem seam: every byte the warehouse reads or writes goes through ``WarehouseFS``.

Only a local implementation exists today. The operations are the few the publish protocol
needs, named for what they guarantee rather than how POSIX does it, so that an object-store
implementation can come later without touching ``publish``:

============================  ===========================  =================================
operation                     local (now)                  object store (later)
============================  ===========================  =================================
``set_pointer``               temp symlink + ``os.replace``  ``current.json`` object (readers
                                                           then need the pointer: document)
``share``                     ``os.link`` (copy fallback)  server-side copy
``rename_dir``                ``os.rename`` (atomic)       not atomic: write under the final
                                                           prefix, pointer makes it visible
``lock``                      ``fcntl.flock``              conditional put / external lock
============================  ===========================  =================================

Parquet files are written through ``arrow`` (a ``pyarrow.fs.FileSystem``), so writers already
work on any filesystem pyarrow knows.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol
from urllib.parse import urlparse

import pyarrow.fs as pafs

from sodtrack.errors import LockTimeout


class WarehouseFS(Protocol):
    """What the warehouse needs from a filesystem. Paths are plain strings with ``/``."""

    arrow: pafs.FileSystem

    def join(self, *parts: str) -> str: ...
    def exists(self, path: str) -> bool: ...
    def is_dir(self, path: str) -> bool: ...
    def list_dir(self, path: str) -> list[str]: ...
    def walk_files(self, path: str) -> Iterator[str]: ...
    def make_dirs(self, path: str) -> None: ...
    def remove_tree(self, path: str) -> None: ...
    def remove_file(self, path: str) -> None: ...
    def rename_dir(self, src: str, dst: str) -> None: ...
    def share(self, src: str, dst: str) -> None: ...
    def read_bytes(self, path: str) -> bytes: ...
    def write_bytes_atomic(self, path: str, data: bytes) -> None: ...
    def sync_file(self, path: str) -> None: ...
    def sync_dir(self, path: str) -> None: ...
    def read_pointer(self, path: str) -> str | None: ...
    def set_pointer(self, path: str, target: str) -> None: ...
    def lock(self, path: str, timeout_s: float) -> contextlib.AbstractContextManager[None]: ...


class LocalFS:
    """``WarehouseFS`` on a local POSIX filesystem.

    ``durable=True`` fsyncs files and directories at the commit points, so that a power loss
    (not only a killed process, which the page cache survives) cannot leave a pointer to a
    version whose bytes never reached the disk. Tests turn it off for speed.
    """

    def __init__(self, durable: bool = True) -> None:
        self.arrow: pafs.FileSystem = pafs.LocalFileSystem()
        self.durable = durable

    def join(self, *parts: str) -> str:
        return os.path.join(*parts)

    def exists(self, path: str) -> bool:
        return os.path.lexists(path)

    def is_dir(self, path: str) -> bool:
        return os.path.isdir(path)

    def list_dir(self, path: str) -> list[str]:
        try:
            return sorted(os.listdir(path))
        except FileNotFoundError:
            return []

    def walk_files(self, path: str) -> Iterator[str]:
        """Relative paths of every file under ``path``, sorted per directory."""
        for dirpath, dirnames, filenames in os.walk(path):
            dirnames.sort()
            rel = os.path.relpath(dirpath, path)
            for name in sorted(filenames):
                yield name if rel == "." else os.path.join(rel, name)

    def make_dirs(self, path: str) -> None:
        os.makedirs(path, exist_ok=True)

    def remove_tree(self, path: str) -> None:
        if os.path.islink(path) or os.path.isfile(path):
            os.unlink(path)
        elif os.path.isdir(path):
            shutil.rmtree(path)

    def remove_file(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)

    def rename_dir(self, src: str, dst: str) -> None:
        # os.rename onto a missing name is atomic on POSIX; refuse to clobber a directory.
        if os.path.lexists(dst):
            raise FileExistsError(errno.EEXIST, "destination exists", dst)
        os.rename(src, dst)

    def share(self, src: str, dst: str) -> None:
        """Make ``dst`` show the bytes of the immutable file ``src``: a hard link, else a copy.

        Published files are never modified in place (writers always create new names), so
        sharing the inode between versions is safe and costs nothing.
        """
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        try:
            os.link(src, dst)
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                raise
            shutil.copy2(src, dst)

    def read_bytes(self, path: str) -> bytes:
        return Path(path).read_bytes()

    def write_bytes_atomic(self, path: str, data: bytes) -> None:
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            if self.durable:
                os.fsync(fh.fileno())
        os.replace(tmp, path)

    def sync_file(self, path: str) -> None:
        if not self.durable:
            return
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def sync_dir(self, path: str) -> None:
        if not self.durable:
            return
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def read_pointer(self, path: str) -> str | None:
        try:
            return os.readlink(path)
        except FileNotFoundError:
            return None

    def set_pointer(self, path: str, target: str) -> None:
        """Point the symlink ``path`` at ``target`` (relative) in one atomic step.

        A temp symlink beside it is renamed over it: readers see the old target or the new
        one, never a missing ``current``.
        """
        parent = os.path.dirname(path)
        tmp = os.path.join(parent, f".{os.path.basename(path)}-{os.getpid()}-{time.time_ns()}")
        os.symlink(target, tmp)
        try:
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        self.sync_dir(parent)

    @contextlib.contextmanager
    def lock(self, path: str, timeout_s: float) -> Iterator[None]:
        """An exclusive ``flock`` on ``path``, released by the kernel if the process dies."""
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise LockTimeout(f"lock {path} still held after {timeout_s}s") from None
                    time.sleep(0.05)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def open_fs(root: str, *, durable: bool = True) -> tuple[WarehouseFS, str]:
    """The filesystem and normalised root for a warehouse location (path or URL).

    Plain paths and ``file://`` URLs are supported. Other schemes (``s3://``) need an
    object-store ``WarehouseFS`` (see the table above) and are refused clearly for now.
    """
    parsed = urlparse(root)
    if parsed.scheme in ("", "file") or (len(parsed.scheme) == 1 and os.name == "nt"):
        path = parsed.path if parsed.scheme == "file" else root
        return LocalFS(durable=durable), os.path.abspath(path)
    raise NotImplementedError(
        f"warehouse root {root!r}: only local paths are implemented; an object store needs a "
        "WarehouseFS with pointer objects instead of symlinks (see sodtrack.warehouse.fs)"
    )
