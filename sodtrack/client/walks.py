"""Walks: async iterators of pages that drive a paginator through the request engine.

``async for page in client.list_categories(active=True)`` yields :class:`PageResult` s one
page at a time (memory stays flat: a page is the unit, as dlt advises). Each page is one
engine call, so the retry loop, the token refresh and the rate limiter apply per page; a
walk can outlive any number of tokens.

After the last page a :class:`PageNumberWalk` exposes ``completeness`` and ``warning`` (also
appended to the client's stats and logged); a :class:`CursorWalk` exposes ``superseded`` and
``duplicates_dropped`` (see :class:`~sodtrack.client.pagination.LatestById`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from sodtrack.client.core import ApiRequest, Engine, SinglePlan, parse_model
from sodtrack.client.pagination import (
    Completeness,
    CompletenessWarning,
    CursorPaginator,
    HasIdAndUpdatedAt,
    LatestById,
    PageNumberPaginator,
)
from sodtrack.client.results import PageResult
from sodtrack.contract.models import CursorPage, Page

log = logging.getLogger("sodtrack.client")

M = TypeVar("M", bound=BaseModel)
R = TypeVar("R", bound=HasIdAndUpdatedAt)


class PageNumberWalk(Generic[M]):
    """A page-numbered list, page by page, with completeness accounting at the end."""

    def __init__(
        self,
        engine: Engine,
        op_id: str,
        model: type[M],
        paginator: PageNumberPaginator,
        path_params: Mapping[str, str] | None = None,
    ) -> None:
        self.engine = engine
        self.op_id = op_id
        self.page_model: type[Page[M]] = Page[model]  # type: ignore[valid-type]
        self.paginator = paginator
        self.path_params = dict(path_params or {})
        self._finished = False

    def __repr__(self) -> str:
        return (
            f"PageNumberWalk({self.op_id}, pages={self.paginator.pages}, "
            f"received={self.paginator.received}, done={self.paginator.done})"
        )

    def __aiter__(self) -> PageNumberWalk[M]:
        return self

    async def __anext__(self) -> PageResult[M]:
        params = self.paginator.next_params()
        if params is None:
            self._finish()
            raise StopAsyncIteration
        step = ApiRequest.of(self.op_id, self.path_params, params=params)
        page = await self.engine.run(
            SinglePlan(step, lambda r: parse_model(r, self.page_model, self.op_id))
        )
        self.paginator.update(len(page.data), page.meta)
        stats = self.engine.stats
        stats.pages[self.op_id] += 1
        stats.records[self.op_id] += len(page.data)
        if self.paginator.done:
            self._finish()
        return PageResult(page.data, len(page.data), meta=page.meta)

    def _finish(self) -> None:
        if self._finished:
            return
        self._finished = True
        warning = self.paginator.warning()
        if warning is not None:
            self.engine.stats.completeness_warnings.append(warning)
            log.warning("incomplete walk: %s", warning)

    @property
    def completeness(self) -> Completeness | None:
        """Expected (``total_items``) vs received; ``None`` until the walk has ended."""
        return self.paginator.completeness

    @property
    def warning(self) -> CompletenessWarning | None:
        return self.paginator.warning()

    async def collect(self) -> list[M]:
        """Every item of the walk, in order."""
        return [item async for page in self for item in page.items]


class CursorWalk(Generic[R]):
    """A cursor list, page by page, optionally de-duplicated by id (newest ``updated_at``).

    With ``prefetch`` (the default) the request for page N+1 is sent as soon as page N's
    cursor is known, before page N is handed to the consumer: the consumer's work (writing
    a batch) overlaps the next round trip. At most one page is fetched ahead; a walk left
    early cancels it with :meth:`aclose` (``async with`` does that too).
    """

    def __init__(
        self,
        engine: Engine,
        op_id: str,
        model: type[Any],
        paginator: CursorPaginator,
        *,
        dedupe: bool = True,
        prefetch: bool = True,
    ) -> None:
        self.engine = engine
        self.op_id = op_id
        self.page_model: type[CursorPage[Any]] = CursorPage[model]  # type: ignore[valid-type]
        self.paginator = paginator
        self.dedupe: LatestById | None = LatestById() if dedupe else None
        self.prefetch = prefetch
        self._ahead: asyncio.Task[CursorPage[Any]] | None = None

    def __repr__(self) -> str:
        return (
            f"CursorWalk({self.op_id}, pages={self.paginator.pages}, "
            f"received={self.paginator.received}, done={self.paginator.done})"
        )

    def __aiter__(self) -> CursorWalk[R]:
        return self

    async def __aenter__(self) -> CursorWalk[R]:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Cancel a page fetched ahead that nobody will read."""
        task, self._ahead = self._ahead, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _fetch(self, params: dict[str, Any]) -> CursorPage[Any]:
        step = ApiRequest.of(self.op_id, params=params)
        return await self.engine.run(
            SinglePlan(step, lambda r: parse_model(r, self.page_model, self.op_id))
        )

    async def __anext__(self) -> PageResult[R]:
        if self._ahead is not None:
            task, self._ahead = self._ahead, None
            page = await task
        else:
            params = self.paginator.next_params()
            if params is None:
                raise StopAsyncIteration
            page = await self._fetch(params)
        data: list[R] = page.data
        self.paginator.update(len(data), page.next_cursor)
        if self.prefetch:
            params = self.paginator.next_params()
            if params is not None:
                self._ahead = asyncio.get_running_loop().create_task(self._fetch(params))
                self._ahead.add_done_callback(_retrieve)
        stats = self.engine.stats
        stats.pages[self.op_id] += 1
        stats.records[self.op_id] += len(data)
        items = data
        if self.dedupe is not None:
            before = (self.dedupe.superseded, self.dedupe.duplicates_dropped)
            items = self.dedupe.filter(data)
            stats.superseded += self.dedupe.superseded - before[0]
            stats.duplicates_dropped += self.dedupe.duplicates_dropped - before[1]
        return PageResult(items, len(data), next_cursor=page.next_cursor)

    @property
    def superseded(self) -> int:
        return self.dedupe.superseded if self.dedupe is not None else 0

    @property
    def duplicates_dropped(self) -> int:
        return self.dedupe.duplicates_dropped if self.dedupe is not None else 0

    @property
    def received(self) -> int:
        return self.paginator.received

    @property
    def pages(self) -> int:
        return self.paginator.pages

    async def collect(self) -> list[R]:
        """One record per id, the newest (``updated_at``) of those the walk received."""
        latest: dict[str, R] = {}
        async with self:
            async for page in self:
                for item in page.items:
                    previous = latest.get(item.id)
                    if previous is None or item.updated_at > previous.updated_at:
                        latest.pop(item.id, None)
                        latest[item.id] = item
        return list(latest.values())


def _retrieve(task: asyncio.Task[Any]) -> None:
    """Mark a prefetch's exception as retrieved (the consumer re-raises it when it reads)."""
    if not task.cancelled():
        task.exception()
