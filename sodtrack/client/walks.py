"""Walks: async iterators of pages that drive a paginator through the request engine.

``async for page in client.list_categories(active=True)`` yields :class:`PageResult` s one
page at a time (memory stays flat: a page is the unit, as dlt advises). Each page is one
engine call, so the retry loop, the token refresh and the rate limiter apply per page; a
walk can outlive any number of tokens.

After the last page a :class:`PageNumberWalk` exposes ``completeness`` and ``warning`` (also
appended to the client's stats and logged); a :class:`CursorWalk` exposes ``superseded`` and
``duplicates_dropped`` (see :class:`~sodtrack.client.pagination.LatestById`). An
:class:`ArrowCursorWalk` (bulk reads) yields :class:`BatchPage` s: the page as an Arrow batch,
read from the JSON bytes by an :class:`~sodtrack.client.bulk.ArrowPageDecoder`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import httpx
import pyarrow as pa
from pydantic import BaseModel

from sodtrack.client.bulk import ArrowPageDecoder, DecodedPage
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


class _CursorPageLike(Protocol):
    @property
    def data(self) -> Any: ...

    @property
    def next_cursor(self) -> str | None: ...


P = TypeVar("P", bound=_CursorPageLike)


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


class _CursorCore(Generic[P]):
    """The machinery cursor walks share: paginator, one page fetched ahead, stats."""

    def __init__(
        self,
        engine: Engine,
        op_id: str,
        paginator: CursorPaginator,
        parse: Callable[[httpx.Response], P],
        *,
        prefetch: bool,
    ) -> None:
        self.engine = engine
        self.op_id = op_id
        self.paginator = paginator
        self.prefetch = prefetch
        self._parse = parse
        self._ahead: asyncio.Task[P] | None = None

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.op_id}, pages={self.paginator.pages}, "
            f"received={self.paginator.received}, done={self.paginator.done})"
        )

    async def aclose(self) -> None:
        """Cancel a page fetched ahead that nobody will read."""
        task, self._ahead = self._ahead, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _fetch(self, params: dict[str, Any]) -> P:
        step = ApiRequest.of(self.op_id, params=params)
        return await self.engine.run(SinglePlan(step, self._parse))

    async def _next_page(self) -> P:
        """The next page (``StopAsyncIteration`` after the last), the next one sent ahead."""
        if self._ahead is not None:
            task, self._ahead = self._ahead, None
            page = await task
        else:
            params = self.paginator.next_params()
            if params is None:
                raise StopAsyncIteration
            page = await self._fetch(params)
        received = len(page.data)
        self.paginator.update(received, page.next_cursor)
        if self.prefetch:
            params = self.paginator.next_params()
            if params is not None:
                self._ahead = asyncio.get_running_loop().create_task(self._fetch(params))
                self._ahead.add_done_callback(_retrieve)
        stats = self.engine.stats
        stats.pages[self.op_id] += 1
        stats.records[self.op_id] += received
        return page

    @property
    def received(self) -> int:
        return self.paginator.received

    @property
    def pages(self) -> int:
        return self.paginator.pages


class CursorWalk(_CursorCore[CursorPage[Any]], Generic[R]):
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
        self.page_model: type[CursorPage[Any]] = CursorPage[model]  # type: ignore[valid-type]
        super().__init__(
            engine,
            op_id,
            paginator,
            lambda r: parse_model(r, self.page_model, op_id),
            prefetch=prefetch,
        )
        self.dedupe: LatestById | None = LatestById() if dedupe else None

    def __aiter__(self) -> CursorWalk[R]:
        return self

    async def __aenter__(self) -> CursorWalk[R]:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def __anext__(self) -> PageResult[R]:
        page = await self._next_page()
        data: list[R] = page.data
        items = data
        if self.dedupe is not None:
            stats = self.engine.stats
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


@dataclass(frozen=True, slots=True)
class BatchPage:
    """One page of a bulk walk: its records as an Arrow batch (not de-duplicated)."""

    batch: pa.RecordBatch
    next_cursor: str | None

    @property
    def received(self) -> int:
        return int(self.batch.num_rows)


class ArrowCursorWalk(_CursorCore[DecodedPage]):
    """A cursor list read in bulk: each page's JSON goes straight to an Arrow batch through
    an :class:`~sodtrack.client.bulk.ArrowPageDecoder` (same checks and errors as the model
    walk, see there). No de-duplication: its consumers (the extraction) de-duplicate out of
    core. Prefetch and ``aclose`` as in :class:`CursorWalk`."""

    def __init__(
        self,
        engine: Engine,
        op_id: str,
        decoder: ArrowPageDecoder[Any],
        paginator: CursorPaginator,
        *,
        prefetch: bool = True,
    ) -> None:
        super().__init__(
            engine, op_id, paginator, lambda r: decoder.decode(r, op_id), prefetch=prefetch
        )
        self.decoder = decoder

    def __aiter__(self) -> ArrowCursorWalk:
        return self

    async def __aenter__(self) -> ArrowCursorWalk:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def __anext__(self) -> BatchPage:
        page = await self._next_page()
        return BatchPage(page.data, page.next_cursor)


def _retrieve(task: asyncio.Task[Any]) -> None:
    """Mark a prefetch's exception as retrieved (the consumer re-raises it when it reads)."""
    if not task.cancelled():
        task.exception()
