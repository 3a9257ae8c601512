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
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlparse

import fsspec

from sodtrack.errors import ConfigurationError
from sodtrack.textsafe import printable

COPY_CHUNK: Final = 1 << 20


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
    whole object being downloaded."""
    fs, path = filesystem(url, endpoint_url=endpoint_url, setting="path")
    folder = tempfile.mkdtemp(prefix="sodtrack-upload-")  # 0700
    try:
        target = Path(folder) / posixpath.basename(path)
        left = None if max_bytes is None else max_bytes + 1
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with fs.open(path, "rb") as src, os.fdopen(fd, "wb") as dst:
            while left is None or left > 0:
                chunk = src.read(COPY_CHUNK if left is None else min(COPY_CHUNK, left))
                if not chunk:
                    break
                dst.write(chunk)
                if left is not None:
                    left -= len(chunk)
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
    at most ``max_bytes`` (a longer object is refused with :class:`ValueError`)."""
    fs, path = filesystem(url, endpoint_url=endpoint_url, setting="path")
    try:
        if fs.info(path).get("type") != "file":  # s3fs opens a "folder" as an empty file
            return None
        with fs.open(path, "rb") as src:
            data: bytes = src.read(max_bytes + 1)
    except (FileNotFoundError, IsADirectoryError):
        return None
    if len(data) > max_bytes:
        raise ValueError(f"{name_of(url)}: larger than {max_bytes} bytes")
    return data


def _why(exc: BaseException) -> str:
    return printable(f"{type(exc).__name__}: {exc}")
