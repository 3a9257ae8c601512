"""Where a run's Data Docs are built and where they are kept.

Great Expectations builds a site in a local folder. Beside a local warehouse that folder is
where the site stays (``data/docs``); with a warehouse on object storage the site is built in
a private temporary folder and put on the store (``<warehouse>/_docs/<run>/…``), where every
worker writes and ``sodtrack-etl serve`` reads: no disk is shared. The command line, the demo
and the Prefect tasks all go through :class:`DocsSite`.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from types import TracebackType

from sodtrack import objstore
from sodtrack.errors import OutputNotWritable


class DocsSite:
    """``with DocsSite(location) as site``: build into ``site.build_dir``, then
    ``site.keep(index)`` returns where the site's ``index.html`` is kept."""

    def __init__(self, location: str | Path | None, *, endpoint_url: str | None = None) -> None:
        self.location = location
        self.endpoint_url = endpoint_url
        self.remote = location is not None and objstore.is_remote(location)
        self._tmp: str | None = None
        self.build_dir: Path | None = None
        if self.remote:
            self._tmp = tempfile.mkdtemp(prefix="sodtrack-docs-")
            self.build_dir = Path(self._tmp)
        elif location is not None:
            self.build_dir = Path(location)

    def keep(self, index: Path | None) -> str | None:
        """The kept site's ``index.html`` (a path, or a URL on object storage) for the site
        whose ``index.html`` was built at ``index`` (``<build_dir>/<run>/index.html``). A file
        that does not go up raises :class:`OutputNotWritable` (the data is published already;
        the report says where the docs are not)."""
        if index is None:
            return None
        if not self.remote:
            return str(index)
        site = index.parent
        target = str(objstore.join(str(self.location), site.name))
        failed = objstore.put_tree(site, target, endpoint_url=self.endpoint_url)
        if failed:
            name, why = next(iter(failed.items()))
            raise OutputNotWritable(
                f"Data Docs not written to {target}: {len(failed)} file(s), e.g. {name}: {why}",
                setting="SODTRACK_WAREHOUSE",
            )
        return f"{target}/index.html"

    def close(self) -> None:
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __enter__(self) -> DocsSite:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
