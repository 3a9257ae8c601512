"""The local scratch filesystem: stagings and the bookings merge's work files.

The tables themselves are written by delta-rs (``publish``), locally or on object storage;
what goes through ``LocalFS`` is a run's own scratch space before its commit. Parquet files
are written through ``arrow`` (a ``pyarrow.fs.FileSystem``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pyarrow.fs as pafs


class LocalFS:
    """Scratch files on a local POSIX filesystem.

    ``durable=True`` fsyncs staged files and ``_stage.json``, so that a power loss cannot leave
    a staging that claims complete with bytes that never reached the disk. Tests turn it off.
    """

    def __init__(self, durable: bool = True) -> None:
        self.arrow: pafs.FileSystem = pafs.LocalFileSystem()
        self.durable = durable

    def join(self, *parts: str) -> str:
        return os.path.join(*parts)

    def exists(self, path: str) -> bool:
        return os.path.lexists(path)

    def list_dir(self, path: str) -> list[str]:
        try:
            return sorted(os.listdir(path))
        except FileNotFoundError:
            return []

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

    def walk_files(self, path: str) -> Iterator[str]:
        """Relative paths of every file under ``path``, sorted per directory."""
        for dirpath, dirnames, filenames in os.walk(path):
            dirnames.sort()
            rel = os.path.relpath(dirpath, path)
            for name in sorted(filenames):
                yield name if rel == "." else os.path.join(rel, name)
