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
before. Each path segment is percent-encoded (a file name with spaces or ``#`` stays one
segment); the folders are compared after resolving symbolic links, so ``data/../data/docs``
is the docs folder.
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


def _join(base: str, *segments: str) -> str:
    return base + "/" + "/".join(quote(s, safe="") for s in segments)


@dataclass(frozen=True, slots=True)
class PublicLinks:
    """Makes links for files under ``reports``, ``docs`` and ``outbox``; ``public_url`` (no
    trailing slash needed) ``None``: ``file://`` links."""

    public_url: str | None
    reports: Path
    docs: Path
    outbox: Path

    @classmethod
    def from_settings(cls, settings: Settings) -> PublicLinks:
        return cls(
            settings.web_public_url,
            reports=settings.data_dir("reports"),
            docs=settings.data_dir("docs"),
            outbox=Path(settings.outbox),
        )

    @property
    def public(self) -> bool:
        return bool(self.public_url)

    def to(self, path: str | Path) -> str:
        """The link for ``path``: the page's URL when public and served, else ``file://``; an
        object on object storage (``s3://…``) is linked by its own URL."""
        if is_remote(path):
            return str(path)
        target = Path(path)
        if self.public_url:
            base = self.public_url.rstrip("/")
            parts = _inside(target, self.reports)
            if parts is not None and len(parts) == 1:
                return _join(base, REPORTS_PREFIX, *parts)
            parts = _inside(target, self.docs)
            if parts is not None:
                return _join(base, DOCS_PREFIX, *parts)
            parts = _inside(target, self.outbox)
            if parts is not None and len(parts) == 2:
                return _join(base, UPLOADS_PREFIX, parts[0], "files", parts[1])
        return target.resolve().as_uri()

    def markdown(self, path: str | Path, text: str | None = None) -> str:
        """``[text](link)``; ``text`` defaults to the file's name (``]`` and ``[`` escaped)."""
        shown = text if text is not None else Path(path).name
        shown = shown.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]")
        return f"[{shown}]({self.to(path)})"
