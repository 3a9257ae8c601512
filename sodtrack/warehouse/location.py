"""Where the warehouse lives: a local folder or an object-store URL, and how to reach it.

``SODTRACK_WAREHOUSE`` is a path (``data/warehouse``, ``file:///srv/wh``) or a URL
(``s3://bucket/prefix``; ``gs://`` and ``az://`` are handed to delta-rs as they are).
Credentials never come from the URL (``s3://key:secret@bucket`` is refused): delta-rs and
pyarrow read the usual variables (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_SESSION_TOKEN``, ``AWS_REGION``, ``AWS_PROFILE``, instance roles). The settings add
only what is not a secret: ``SODTRACK_S3_ENDPOINT_URL`` (an S3-compatible server: MinIO,
Ceph, moto) and ``SODTRACK_S3_ALLOW_HTTP`` (plain http, loopback tests only).

Concurrent writers on S3: delta-rs 1.x commits with conditional puts (``If-None-Match: *``
on the next ``_delta_log/<version>.json``), so two processes committing at once never both
win the same version; the loser re-reads the log and retries (or fails on a real conflict).
``conditional_put=etag`` is set for every S3 location; servers without conditional writes
are not safe for two writers at once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from urllib.parse import urlparse

import pyarrow.fs as pafs

from sodtrack.errors import ConfigurationError
from sodtrack.objstore import check_url

REMOTE_SCHEMES = ("s3", "s3a", "gs", "gcs", "az", "abfs", "abfss")


@dataclass(frozen=True, slots=True)
class Location:
    """A warehouse root: ``uri`` (absolute local path or URL) and delta-rs storage options."""

    uri: str
    storage_options: dict[str, str] = field(default_factory=dict)

    @property
    def is_local(self) -> bool:
        return "://" not in self.uri

    def join(self, *parts: str) -> str:
        if self.is_local:
            return os.path.join(self.uri, *parts)
        return "/".join([self.uri.rstrip("/"), *parts])

    def arrow_fs(self) -> tuple[pafs.FileSystem, str]:
        """A pyarrow filesystem and the root path inside it (quarantine uploads, downloads)."""
        if self.is_local:
            return pafs.LocalFileSystem(), self.uri
        parsed = urlparse(self.uri)
        if parsed.scheme in ("s3", "s3a"):
            opts = self.storage_options
            endpoint = opts.get("AWS_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL")
            kwargs: dict[str, object] = {}
            if endpoint:
                ep = urlparse(endpoint)
                kwargs["endpoint_override"] = ep.netloc
                kwargs["scheme"] = ep.scheme or "https"
            region = opts.get("AWS_REGION") or os.environ.get("AWS_REGION")
            if region:
                kwargs["region"] = region
            return pafs.S3FileSystem(**kwargs), f"{parsed.netloc}{parsed.path}".rstrip("/")
        fs, path = pafs.FileSystem.from_uri(self.uri)
        return fs, path


def parse_location(
    root: str,
    *,
    s3_endpoint_url: str | None = None,
    s3_allow_http: bool = False,
    storage_options: dict[str, str] | None = None,
) -> Location:
    """The ``Location`` of a warehouse setting (see the module docstring)."""
    parsed = urlparse(root)
    if parsed.scheme in ("", "file") or (len(parsed.scheme) == 1 and os.name == "nt"):
        path = parsed.path if parsed.scheme == "file" else root
        return Location(os.path.abspath(path), dict(storage_options or {}))
    if parsed.scheme not in REMOTE_SCHEMES:
        raise ConfigurationError(
            f"warehouse {root!r}: unsupported scheme {parsed.scheme!r} "
            f"(a path, or one of {', '.join(s + '://' for s in REMOTE_SCHEMES)})",
            setting="SODTRACK_WAREHOUSE",
        )
    check_url(root, "SODTRACK_WAREHOUSE")
    if not parsed.netloc:
        raise ConfigurationError(
            f"warehouse {root!r}: no bucket in the URL", setting="SODTRACK_WAREHOUSE"
        )
    opts: dict[str, str] = {}
    if parsed.scheme in ("s3", "s3a"):
        opts["conditional_put"] = "etag"
        if s3_endpoint_url:
            opts["AWS_ENDPOINT_URL"] = s3_endpoint_url
        if s3_allow_http:
            opts["AWS_ALLOW_HTTP"] = "true"
    opts.update(storage_options or {})
    return Location(root.rstrip("/"), opts)
