"""Files the page serves from a folder (run reports, Data Docs, an upload's outbox folder),
with path traversal impossible (pure: resolves paths, reads nothing).

:func:`file_under` takes the path as the router decoded it (``%2e%2e`` is ``..`` by then) and
answers ``None`` (served as 404) for: an empty, absolute or backslashed path, a NUL, any
segment that is empty, ``.`` or ``..``, a hidden segment (``.git``, dotfiles), a path
that once symbolic links are resolved lies outside the folder, and anything not a regular file.

The Data Docs' own policy (:data:`DOCS_CSP`): GX 1.x pages load Bootstrap, jQuery,
bootstrap-table, Font Awesome and Vega from five CDNs and carry inline ``<script>`` and
``style`` attributes, so their pages get ``'unsafe-inline'`` and those hosts, and nothing
else: no ``connect-src`` (a script cannot call the page's API), no forms, no frames, no
plugins, and ``sandbox``: a Data Docs page runs in an opaque origin of its own, so even a
script that got into one (a hostile value GX failed to escape) cannot read the upload page's
other windows, its CSRF tokens or send its cookies along. GX's logo (an image on its S3
bucket) stays blocked on purpose: opening a report does not tell a third party who reads it.
Checked in Chromium on real Data Docs (``tests/web/test_docs_browser.py``). Everything else
the page serves keeps its script-free policy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

_CDNS: Final = (
    "https://cdn.jsdelivr.net https://cdnjs.cloudflare.com https://unpkg.com "
    "https://maxcdn.bootstrapcdn.com https://stackpath.bootstrapcdn.com https://code.jquery.com"
)
DOCS_CSP: Final = (
    "default-src 'none'; "
    f"script-src 'self' 'unsafe-inline' {_CDNS}; "
    f"style-src 'self' 'unsafe-inline' {_CDNS}; "
    f"font-src 'self' data: {_CDNS}; "
    "img-src 'self' data:; connect-src 'none'; form-action 'none'; frame-ancestors 'none'; "
    "base-uri 'none'; object-src 'none'; sandbox allow-scripts allow-popups "
    "allow-popups-to-escape-sandbox"
)
"""The policy of a Data Docs page (GX's inline scripts and CDN assets; nothing more)."""


def safe_parts(relative: str) -> list[str] | None:
    """The segments of a path named by a request, or ``None`` for an empty, absolute or
    backslashed path, a NUL, or a segment that is empty, ``.``, ``..`` or hidden (pure: the
    check for keys on object storage, where no symbolic link exists, and the first half of
    :func:`file_under`)."""
    if not relative or "\x00" in relative or "\\" in relative or relative.startswith("/"):
        return None
    parts = relative.split("/")
    if any(p in ("", ".", "..") or p.startswith(".") for p in parts):
        return None
    return parts


def object_under(root: str, relative: str) -> str | None:
    """The URL of the object ``root/relative`` on object storage (reports and Data Docs of a
    warehouse on S3), or ``None`` when ``relative`` could leave ``root`` (the same rules as
    :func:`file_under`; an object store has no symbolic links to resolve)."""
    parts = safe_parts(relative)
    return None if parts is None else "/".join([root.rstrip("/"), *parts])


def file_under(root: Path, relative: str) -> Path | None:
    """The regular file ``root/relative``, or ``None`` when that would leave ``root`` (see
    the module docstring) or is not a file."""
    parts = safe_parts(relative)
    if parts is None:
        return None
    try:
        base = root.resolve(strict=True)
        target = base.joinpath(*parts).resolve(strict=True)
    except (OSError, RuntimeError):  # missing, a symlink loop
        return None
    if not target.is_relative_to(base) or not target.is_file():
        return None
    return target
