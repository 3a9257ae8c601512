"""Owner-only files and folders for what holds customers' personal data.

Results, rejects and summary files, stored uploads, receipts, the ledger and the state
database (SQLite, with its ``-wal``/``-shm``) are created readable by their owner only:
files ``0600``, folders ``0700``. Created so from the start (``os.open``/``mkstemp`` with the
mode, ``mkdir`` with the mode), never by a ``chmod`` after the fact, which would leave a window
where another user could open the file. The umask can only take permissions away, so it
cannot widen these. Existing files and folders are left as they are (an operator's own
``--out`` folder keeps its mode); SQLite creates ``-wal``/``-shm`` with the database file's
mode, so creating the database file ``0600`` before the first connection covers them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Final, TextIO

FILE_MODE: Final = 0o600
DIR_MODE: Final = 0o700


def private_dir(path: str | os.PathLike[str]) -> Path:
    """``path`` and any missing parent, each created ``0700`` (existing ones untouched)."""
    target = Path(path)
    missing: list[Path] = []
    probe = target
    while not probe.exists():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):  # created meanwhile by someone else
            folder.mkdir(mode=DIR_MODE)
    return target


def touch_private(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` empty and ``0600`` if it does not exist (its folders ``0700``)."""
    target = Path(path)
    private_dir(target.parent)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    return target


def private_sqlite(url_database: str | None) -> None:
    """Before the first connection to a SQLite file: its folders ``0700``, the file ``0600``
    (``:memory:`` and ``file:`` URIs are left to SQLite)."""
    if url_database and url_database != ":memory:" and not url_database.startswith("file:"):
        touch_private(Path(url_database).expanduser())


@contextlib.contextmanager
def _replacing(path: str | os.PathLike[str]) -> Iterator[tuple[int, Path]]:
    """A ``0600`` temporary file beside ``path`` (``mkstemp``), renamed over ``path`` when the
    block ends; on an error it is removed and ``path`` is left as it was."""
    target = Path(path)
    private_dir(target.parent)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        yield fd, target
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_binary(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Write ``path`` atomically and ``0600``: a reader never sees half a file."""
    with _replacing(path) as (fd, _), os.fdopen(fd, "wb") as fh:
        yield fh


@contextlib.contextmanager
def atomic_text(
    path: str | os.PathLike[str], *, encoding: str = "utf-8", newline: str | None = None
) -> Iterator[TextIO]:
    """:func:`atomic_binary` for text."""
    with _replacing(path) as (fd, _), os.fdopen(fd, "w", encoding=encoding, newline=newline) as fh:
        yield fh


def copy_private(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """Copy ``source`` over ``target`` atomically, the copy ``0600``."""
    with open(source, "rb") as src, atomic_binary(target) as dst:
        shutil.copyfileobj(src, dst)
