"""Uploads, stored uploads and results on object storage: the same code for a folder and a URL.

``SODTRACK_INBOX``, ``SODTRACK_UPLOADS`` and ``SODTRACK_OUTBOX`` take a path (``data/outbox``)
or an fsspec URL (``s3://bucket/outbox``; ``gs://``, ``az://`` with their fsspec packages), as
``SODTRACK_WAREHOUSE`` does. So the inbox watcher, the upload page and the workers share
nothing but object storage and the state database: the watcher stores a received file at
``<uploads>/<upload_id>/<name>``, a worker's ``bulk-load`` run reads it from there and writes
its results, rejects and summary into ``<outbox>/<upload_id>/``, beside the ``receipt.json``.

    fs, path = filesystem("s3://bucket/outbox", endpoint_url=settings.s3_endpoint_url)
    with local_copy("s3://bucket/uploads/upl_cl_x/bookings.xlsx", max_bytes=50 << 20) as p:
        parsed = read_upload(p, "cl")           # a local file, removed afterwards
    failed = put_files(tmp_dir, ["a.csv"], "s3://bucket/outbox/upl_cl_x")

Credentials never come from the URL (``s3://key:secret@bucket`` is refused, and the refusal
does not repeat it): s3fs reads the usual variables (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_PROFILE``, instance roles);
``SODTRACK_S3_ENDPOINT_URL`` names an S3-compatible server (MinIO, Ceph, moto). Objects are
written with no ACL of their own, so they are as private as the bucket (never public-read);
on a local disk, files are ``0600`` and folders ``0700`` (:mod:`sodtrack.private`).

Remote files are read through a local copy in a private temporary folder (the readers need a
seekable local file: calamine, openpyxl, the zip checks), and written locally first and then
uploaded one by one (each object appears whole: a PUT is atomic).

A copy is exact or it fails
---------------------------
A read from object storage can end early without an error: a proxy or a flaky network cuts an
answer short, or answers a well-framed ``200``/``206`` whose body is shorter than asked or
empty; fsspec reads by ranges and an empty answer ends the read as if the object ended there.
A CSV copied that way is a *shorter file* that parses: rows lost while the load reports
success. So :func:`local_copy` and :func:`read_object` take the object's size once (the
store's HEAD, ``fs.info``), copy until they hold that many bytes (or the caller's limit), and
when a read ends short (an empty read, or a transport error the store client gave up on) open
the object again and resume at the offset reached, :data:`READ_ATTEMPTS` reads in all; still
short, they raise :class:`~sodtrack.errors.IncompleteObject` (an ``ObjectStoreError``,
classified ``retry``): the caller reports a failure to retry later, never a shorter file. A
missing object, a folder or a refusal (``FileNotFoundError``, ``PermissionError``) is not
transient and passes through as it is. The checks are on lengths and types only, never on an
error's message.
"""

from __future__ import annotations

import contextlib
import io
import os
import posixpath
import shutil
import tempfile
from collections.abc import Generator, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, Final
from urllib.parse import urlparse

import fsspec

from sodtrack.errors import ConfigurationError, IncompleteObject, ObjectStoreError, SodtrackError
from sodtrack.private import atomic_text
from sodtrack.textsafe import printable

COPY_CHUNK: Final = 1 << 20
READ_ATTEMPTS: Final = 4
"""Reads of one object before a copy still short is refused: the first read and up to three
re-reads, each resuming at the offset reached. No wait between them: the store client
(s3fs) already backs off and retries on transport errors; a well-framed short answer is read
again at once."""

_NOT_TRANSIENT: Final = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)


def is_remote(location: str | os.PathLike[str]) -> bool:
    """A URL of some object store (``s3://…``), not a local path or ``file://`` URL."""
    text = str(location)
    return "://" in text and not text.startswith("file://")


def check_url(url: str, setting: str) -> None:
    """Refuse a URL that carries credentials (never repeated in the message)."""
    parsed = urlparse(url)
    if parsed.username or parsed.password or "@" in parsed.netloc:
        raise ConfigurationError(
            f"{setting}: the URL must not carry credentials ({parsed.scheme}://…@…): set "
            "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or the cloud's usual variables) instead",
            setting=setting,
        )


def storage_options(url: str, *, endpoint_url: str | None = None) -> dict[str, Any]:
    """What fsspec needs beyond the environment: the S3-compatible endpoint, if any."""
    if urlparse(url).scheme in ("s3", "s3a") and endpoint_url:
        return {"client_kwargs": {"endpoint_url": endpoint_url}}
    return {}


def filesystem(
    url: str, *, endpoint_url: str | None = None, setting: str = "location"
) -> tuple[Any, str]:
    """The fsspec filesystem of ``url`` and the path inside it."""
    if is_remote(url):
        check_url(url, setting)
    fs, path = fsspec.core.url_to_fs(url, **storage_options(url, endpoint_url=endpoint_url))
    return fs, str(path)


def join(root: str | os.PathLike[str], *parts: str) -> str | Path:
    """``root/parts``: a ``Path`` for a local root, a URL string for a remote one."""
    if is_remote(root):
        return "/".join([str(root).rstrip("/"), *parts])
    return Path(root).joinpath(*parts)


def name_of(location: str | os.PathLike[str]) -> str:
    """The last part of a path or URL."""
    return (
        posixpath.basename(str(location).rstrip("/"))
        if is_remote(location)
        else Path(location).name
    )


@contextlib.contextmanager
def local_copy(
    url: str, *, max_bytes: int | None = None, endpoint_url: str | None = None
) -> Iterator[Path]:
    """A local copy of the remote file ``url`` (same name) in a private temporary folder,
    removed when the block ends. At most ``max_bytes + 1`` bytes are copied: a longer file
    arrives cut just past the limit, so the reader's own size limit refuses it without the
    whole object being downloaded (on purpose: not a short read).

    Exact or nothing (the module docstring): the copy holds the object's size (from one
    ``fs.info`` before the copy) or ``max_bytes + 1`` bytes, else
    :class:`~sodtrack.errors.IncompleteObject` is raised and no copy is yielded."""
    fs, path = filesystem(url, endpoint_url=endpoint_url, setting="path")
    size = object_size(fs.info(path), path)
    folder = tempfile.mkdtemp(prefix="sodtrack-upload-")  # 0700
    try:
        target = Path(folder) / posixpath.basename(path)
        limit = None if max_bytes is None else max_bytes + 1
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as dst:
            copy_exact(fs, path, size, dst, limit=limit)
        yield target
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def put_files(
    folder: Path,
    names: Iterable[str],
    url: str,
    *,
    endpoint_url: str | None = None,
    setting: str = "outbox",
) -> dict[str, str]:
    """Upload ``folder/<name>`` to ``url/<name>`` for each name (a name may hold ``/``: its
    folders are made on a local target; an object store has none to make); returns
    name → why for the ones that failed (the others are still uploaded)."""
    names = list(names)
    failed: dict[str, str] = {}
    try:
        fs, root = filesystem(url, endpoint_url=endpoint_url, setting=setting)
    except ConfigurationError:
        raise
    except Exception as exc:  # an unreachable store: every file fails, saying why
        return {name: _why(exc) for name in names}
    for name in names:
        try:
            if not is_remote(url):
                fs.makedirs(posixpath.dirname(posixpath.join(root, name)), exist_ok=True)
            fs.put_file(str(folder / name), posixpath.join(root, name))
        except Exception as exc:  # one object failing must not cost the others
            failed[name] = _why(exc)
    return failed


def put_tree(folder: Path, url: str, *, endpoint_url: str | None = None) -> dict[str, str]:
    """Upload every file below ``folder`` to ``url/<relative path>`` (a Data Docs site built
    locally); returns relative path → why for the ones that failed."""
    names = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    return put_files(folder, names, url, endpoint_url=endpoint_url, setting="outputs")


def read_object(
    url: str, *, endpoint_url: str | None = None, max_bytes: int = 64 << 20
) -> bytes | None:
    """The bytes of the object ``url``, ``None`` when there is none (or it is a "folder");
    at most ``max_bytes`` (a longer object is refused with :class:`ValueError`). Exactly the
    object's bytes, or :class:`~sodtrack.errors.IncompleteObject` (never fewer bytes)."""
    fs, path = filesystem(url, endpoint_url=endpoint_url, setting="path")
    return read_exact(fs, path, max_bytes=max_bytes)


def read_exact(fs: Any, path: str, *, max_bytes: int | None = None) -> bytes | None:
    """:func:`read_object` on a filesystem already open (``path`` without its protocol):
    ``None`` when there is no such file, else exactly its bytes (:func:`copy_exact`), a longer
    one than ``max_bytes`` (when given) refused with :class:`ValueError`."""
    buffer = io.BytesIO()
    try:
        info = fs.info(path)
        if info.get("type") != "file":  # s3fs opens a "folder" as an empty file
            return None
        limit = None if max_bytes is None else max_bytes + 1
        copy_exact(fs, path, object_size(info, path), buffer, limit=limit)
    except (FileNotFoundError, IsADirectoryError):
        return None
    data = buffer.getvalue()
    if max_bytes is not None and len(data) > max_bytes:
        raise ValueError(f"{posixpath.basename(path)}: larger than {max_bytes} bytes")
    return data


def replace_text(path: str | os.PathLike[str], text: str, *, fs: Any | None = None) -> None:
    """Write the small text file ``path`` whole, replacing what was there: a reader sees the
    old or the new text, never a cut one. On the local disk (``fs`` ``None``) it is written
    beside and renamed over (``0600``: :func:`~sodtrack.private.atomic_text`); on object
    storage (``fs``, ``path`` without its protocol) one PUT, already whole."""
    if fs is None:
        with atomic_text(path) as fh:
            fh.write(text)
    else:
        fs.pipe_file(str(path), text.encode("utf-8"))


def object_size(info: dict[str, Any], path: str) -> int:
    """The object's size from ``fs.info``; a store that does not say is refused (a copy
    could not be checked)."""
    size = info.get("size")
    if not isinstance(size, int) or size < 0:
        raise ObjectStoreError(f"{posixpath.basename(path)}: the store does not give its size")
    return size


def copy_exact(fs: Any, path: str, size: int, dst: BinaryIO, *, limit: int | None = None) -> int:
    """Copy the object ``path`` of ``fs`` (``size`` bytes, from one ``fs.info``) into ``dst``:
    exactly ``min(size, limit)`` bytes, returned, or :class:`~sodtrack.errors.IncompleteObject`
    (the reads are :func:`iter_exact`'s)."""
    done = 0
    for chunk in iter_exact(fs, path, size, limit=limit):
        dst.write(chunk)  # a local write error is not the store's: it is not read again
        done += len(chunk)
    return done


def iter_exact(
    fs: Any, path: str, size: int, *, limit: int | None = None
) -> Generator[bytes, None, None]:
    """The bytes of the object ``path`` of ``fs`` (``size`` bytes, from one ``fs.info``), a
    chunk at a time: exactly ``min(size, limit)`` bytes in all, or
    :class:`~sodtrack.errors.IncompleteObject` once what was given falls short.

    Reads :data:`COPY_CHUNK` at a time until that many bytes are given. A read that ends early
    (a read giving fewer bytes than asked: a short or empty range answer, or a transport
    error the store client gave up on after its own retries) is resumed by opening the
    object again at the offset reached, :data:`READ_ATTEMPTS` opens in all. What was given
    stays given: each byte comes from the offset it belongs at, so a resumed read is the
    same as one read in one go (a consumer streaming it, such as a download, never sees a
    gap or a repeat). Not transient, and passed through as they are: a missing object, a
    folder, a refusal, and this project's own errors."""
    want = size if limit is None else min(size, limit)
    done = 0
    attempts = 0
    cause: str | None = None
    while done < want:
        if attempts == READ_ATTEMPTS:
            raise IncompleteObject(
                posixpath.basename(path), size=size, copied=done, attempts=attempts, cause=cause
            )
        attempts += 1
        chunks = _chunks(fs, path, done, want)
        try:
            while True:
                try:
                    chunk = next(chunks, None)
                except (*_NOT_TRANSIENT, SodtrackError):
                    raise
                except Exception as exc:  # a transport failure (aiohttp, botocore): read again
                    cause = type(exc).__name__
                    break
                if chunk is None:
                    break
                done += len(chunk)
                yield chunk
        finally:
            chunks.close()


def _chunks(fs: Any, path: str, offset: int, end: int) -> Generator[bytes, None, None]:
    """The object's bytes from ``offset`` up to ``end`` at most, :data:`COPY_CHUNK` at a time,
    until ``end`` or a read that gives fewer bytes than asked (its bytes included). A healthy
    store's file gives every read whole (fsspec's read-ahead asks for more than it is asked);
    fewer means a short or empty answer, and ending there bounds the requests a store that
    answers a byte at a time can cost: one short answer, one of :data:`READ_ATTEMPTS`."""
    with fs.open(path, "rb") as src:
        if offset:
            src.seek(offset)
        while offset < end:
            asked = min(COPY_CHUNK, end - offset)
            chunk: bytes = src.read(asked)
            if chunk:
                yield chunk
            if len(chunk) < asked:  # a short answer: its bytes are good, the rest re-read
                return
            offset += len(chunk)


def _why(exc: BaseException) -> str:
    return printable(f"{type(exc).__name__}: {exc}")
