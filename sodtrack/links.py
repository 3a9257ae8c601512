"""Links that open: the URL an artifact, a report or a receipt gives for a file the pipeline
wrote (pure: no I/O beyond resolving paths, no Prefect).

With ``SODTRACK_WEB_PUBLIC_URL`` set (the upload page's external base URL, as people reach
``sodtrack-etl serve``), a file under one of the served folders links to the page, which
serves it behind its sign-in (:mod:`sodtrack.web.app`):

======================================  ========================================================
``<reports>/<run_id>.json``             ``<public>/reports/<run_id>.json`` (any signed-in account)
``<docs>/<run_id>/…`` (Data Docs)       ``<public>/docs/<run_id>/…`` (any signed-in account)
``<outbox>/<upload_id>/<name>``         ``<public>/uploads/<upload_id>/files/<name>`` (accounts
                                        holding the upload's country: the page's download route)
======================================  ========================================================

Unset, or a file outside those folders: the ``file://`` URI of the path on this machine, as
before. With the warehouse on object storage, the reports and Data Docs are there too
(``<warehouse>/_reports``, ``<warehouse>/_docs``: :meth:`Settings.output_location`) and link
the same way; any other object (``s3://…``) links to its own URL. Each path segment is
percent-encoded (a file name with spaces or ``#`` stays one segment); the folders are compared
after resolving symbolic links, so ``data/../data/docs`` is the docs folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from sodtrack.objstore import is_remote

if TYPE_CHECKING:
    from sodtrack.settings import Settings

REPORTS_PREFIX = "reports"
DOCS_PREFIX = "docs"
UPLOADS_PREFIX = "uploads"


def _inside(path: Path, root: Path) -> tuple[str, ...] | None:
    """The parts of ``path`` below ``root`` (both resolved), or ``None`` when outside."""
    try:
        rel = path.resolve().relative_to(root.resolve())
    except ValueError:
        return None
    return rel.parts or None


def _below(url: str, root: str | Path) -> tuple[str, ...] | None:
    """The segments of the object ``url`` below the object-storage folder ``root``, or
    ``None`` when outside (or ``root`` is a local folder); ``.``/``..`` segments are outside."""
    if not is_remote(root):
        return None
    prefix = str(root).rstrip("/") + "/"
    if not url.startswith(prefix):
        return None
    parts = tuple(url[len(prefix) :].split("/"))
    if any(p in ("", ".", "..") for p in parts):
        return None
    return parts


def _join(base: str, *segments: str) -> str:
    return base + "/" + "/".join(quote(s, safe="") for s in segments)


@dataclass(frozen=True, slots=True)
class PublicLinks:
    """Makes links for files under ``reports``, ``docs`` and ``outbox``; ``public_url`` (no
    trailing slash needed) ``None``: ``file://`` links."""

    public_url: str | None
    reports: Path | str
    docs: Path | str
    outbox: Path

    @classmethod
    def from_settings(cls, settings: Settings) -> PublicLinks:
        return cls(
            settings.web_public_url,
            reports=settings.output_location("reports"),
            docs=settings.output_location("docs"),
            outbox=Path(settings.outbox),
        )

    @property
    def public(self) -> bool:
        return bool(self.public_url)

    def to(self, path: str | Path) -> str:
        """The link for ``path``: the page's URL when public and served, else ``file://``; an
        object on object storage (``s3://…``) is linked by its own URL."""
        if is_remote(path):
            return self._remote(str(path))
        target = Path(path)
        if self.public_url:
            base = self.public_url.rstrip("/")
            parts = _inside(target, self.reports) if isinstance(self.reports, Path) else None
            if parts is not None and len(parts) == 1:
                return _join(base, REPORTS_PREFIX, *parts)
            parts = _inside(target, self.docs) if isinstance(self.docs, Path) else None
            if parts is not None:
                return _join(base, DOCS_PREFIX, *parts)
            parts = _inside(target, self.outbox)
            if parts is not None and len(parts) == 2:
                return _join(base, UPLOADS_PREFIX, parts[0], "files", parts[1])
        return target.resolve().as_uri()

    def _remote(self, url: str) -> str:
        """A run report or Data Docs page on object storage links to the page that serves
        it (``<public>/reports/…``, ``<public>/docs/…``); any other object, to its own URL."""
        if self.public_url:
            base = self.public_url.rstrip("/")
            parts = _below(url, self.reports)
            if parts is not None and len(parts) == 1:
                return _join(base, REPORTS_PREFIX, *parts)
            parts = _below(url, self.docs)
            if parts is not None:
                return _join(base, DOCS_PREFIX, *parts)
        return url

    def markdown(self, path: str | Path, text: str | None = None) -> str:
        """``[text](link)``; ``text`` defaults to the file's name (``]`` and ``[`` escaped)."""
        shown = text if text is not None else Path(path).name
        shown = shown.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]")
        return f"[{shown}]({self.to(path)})"
