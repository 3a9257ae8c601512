"""``SodtrackClient``: one async method per operation of the contract's route table.

Method names are the operation ids of ``sodtrack.contract.operations`` (``issue_token`` is
internal). Paths, query and body field names, status codes and limits all come from the
contract module: the methods build contract query/body models and hand a :class:`ApiRequest` to the
engine (``core``), which owns auth, rate limiting, concurrency and the one retry loop.

* Reads return contract models.
* Paged lists return walks (async iterators of :class:`PageResult`) with a ``collect()``;
  the ``collect_*`` methods are shorthands. ``collect_bookings`` returns exactly one record
  per id, the newest.
* Creates return :class:`WriteResult` and are safe to repeat (``writes``).
* Updates (``PATCH`` with absolute values) and ``cancel_booking`` are idempotent by the
  contract and retried as they are.

The client never imports Prefect and never reads the environment: :meth:`from_settings` takes
a resolved :class:`~sodtrack.settings.Settings`.
"""

from __future__ import annotations

import asyncio
import time
from datetime import date, datetime
from types import TracebackType
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel

from sodtrack.client.auth import Credentials
from sodtrack.client.baseurl import check_base_url
from sodtrack.client.bulk import ArrowPageDecoder
from sodtrack.client.clock import MonotonicClock, ServerClock, Sleep
from sodtrack.client.core import ApiRequest, Engine, SinglePlan, parse_model
from sodtrack.client.pagination import CursorPaginator, PageNumberPaginator
from sodtrack.client.ratelimit import RateLimiter
from sodtrack.client.results import WriteResult
from sodtrack.client.retry import RetryPolicy
from sodtrack.client.stats import ClientStats
from sodtrack.client.walks import ArrowCursorWalk, CursorWalk, PageNumberWalk
from sodtrack.client.writes import (
    BookingByReference,
    CreatePlan,
    GetFinder,
    PagedFinder,
    StageOfProject,
)
from sodtrack.contract import models as m
from sodtrack.contract.countries import Country, get_country
from sodtrack.contract.errors import ErrorCode
from sodtrack.contract.limits import (
    CURSOR_LIMIT_MAX,
    DOCUMENT_FILE_FIELD,
    PAGE_SIZE_MAX,
)
from sodtrack.contract.operations import operation
from sodtrack.settings import Settings

M = TypeVar("M", bound=BaseModel)


def _query(model: BaseModel) -> dict[str, Any]:
    """A contract query model as query parameters (JSON forms: ``true``, ``...Z``, dates)."""
    return model.model_dump(mode="json", exclude_none=True)


class SodtrackClient:
    """Async client of the Sodtrack Integration API (see the package docstring)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        country: str,
        credentials: Credentials,
        retry: RetryPolicy | None = None,
        rate_limiter: RateLimiter | None = None,
        clock: MonotonicClock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        max_concurrency: int = 8,
        token_margin_s: float = 60.0,
        stats: ClientStats | None = None,
        owns_http: bool = False,
    ) -> None:
        self.country: Country = get_country(country)
        self.base_url = base_url.rstrip("/")
        self.stats = stats if stats is not None else ClientStats()
        self._http = http
        self._owns_http = owns_http
        self._engine = Engine(
            http,
            base_url=self.base_url,
            credentials=credentials,
            retry=retry if retry is not None else RetryPolicy(),
            limiter=rate_limiter
            if rate_limiter is not None
            else RateLimiter(clock=clock, sleep=sleep),
            clock=clock,
            sleep=sleep,
            max_concurrency=max_concurrency,
            token_margin_s=token_margin_s,
            stats=self.stats,
            country=self.country.code,
        )
        self.client_id = credentials.client_id

    @property
    def server_clock(self) -> ServerClock:
        """The server's time from its answers' ``Date`` headers (see :class:`ServerClock`)."""
        return self._engine.server_clock

    def now(self) -> datetime:
        """Now (UTC), never behind the server's clock as last seen: the time to stamp data
        extracted through this client with (``extracted_at``)."""
        return self._engine.server_clock.now()

    @classmethod
    def from_settings(
        cls, settings: Settings, http: httpx.AsyncClient | None = None
    ) -> SodtrackClient:
        """A client for ``settings`` (base URL, credentials, timeout, budget, limits).

        Without ``http`` the client creates (and on close, closes) its own ``AsyncClient``.
        The base URL is checked first (:func:`sodtrack.client.baseurl.check_base_url`): a URL
        without scheme or host, or plain ``http`` to a host outside loopback without
        ``SODTRACK_ALLOW_INSECURE_HTTP``, raises a ``ConfigurationError`` and nothing is sent.
        """
        check_base_url(settings)
        owns = http is None
        if http is None:
            http = httpx.AsyncClient(
                timeout=httpx.Timeout(settings.request_timeout_s),
                limits=httpx.Limits(
                    max_connections=settings.max_concurrency,
                    max_keepalive_connections=settings.max_concurrency,
                ),
            )
        return cls(
            http,
            base_url=settings.base_url_for(),
            country=settings.country,
            credentials=Credentials(settings.client_id, settings.client_secret),
            retry=RetryPolicy(budget_s=settings.retry_budget_s),
            rate_limiter=RateLimiter(settings.rate_limit_per_s),
            max_concurrency=settings.max_concurrency,
            owns_http=owns,
        )

    def __repr__(self) -> str:
        return (
            f"SodtrackClient(base_url={self.base_url!r}, country={self.country.code!r}, "
            f"client_id={self.client_id!r})"
        )

    async def __aenter__(self) -> SodtrackClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client if this client created it (an injected one stays open)."""
        if self._owns_http:
            await self._http.aclose()

    async def authenticate(self) -> None:
        """Fetch a token now (one attempt): raises what a bad base URL, bad credentials or
        another country's server cause (see :meth:`Engine.authenticate`)."""
        await self._engine.authenticate()

    @property
    def rate_limiter(self) -> RateLimiter:
        return self._engine.limiter

    @property
    def retry_policy(self) -> RetryPolicy:
        return self._engine.retry

    # ------------------------------------------------------------------ plumbing

    async def _call(
        self,
        op_id: str,
        model: type[M],
        path_params: dict[str, str] | None = None,
        *,
        params: dict[str, Any] | None = None,
        body: BaseModel | None = None,
        patch: bool = False,
    ) -> M:
        step = ApiRequest.of(op_id, path_params, params=params, body=body, exclude_unset=patch)
        return await self._engine.run(SinglePlan(step, lambda r: parse_model(r, model, op_id)))

    def _pages(
        self,
        op_id: str,
        model: type[M],
        filters: BaseModel | None = None,
        path_params: dict[str, str] | None = None,
        page_size: int = PAGE_SIZE_MAX,
    ) -> PageNumberWalk[M]:
        paginator = PageNumberPaginator(
            page_size, _query(filters) if filters is not None else None, operation=op_id
        )
        return PageNumberWalk(self._engine, op_id, model, paginator, path_params)

    async def _create(self, plan: CreatePlan) -> WriteResult[Any]:
        return await self._engine.run(plan)

    # ------------------------------------------------------------------ catalog

    def list_categories(
        self, active: bool | None = None, *, page_size: int = PAGE_SIZE_MAX
    ) -> PageNumberWalk[m.Category]:
        return self._pages(
            "list_categories", m.Category, m.ActiveQuery(active=active), page_size=page_size
        )

    async def collect_categories(self, active: bool | None = None) -> list[m.Category]:
        return await self.list_categories(active).collect()

    def list_services(
        self,
        category_id: str | None = None,
        active: bool | None = None,
        *,
        page_size: int = PAGE_SIZE_MAX,
    ) -> PageNumberWalk[m.Service]:
        query = m.ServiceQuery(category_id=category_id, active=active)
        return self._pages("list_services", m.Service, query, page_size=page_size)

    async def collect_services(
        self, category_id: str | None = None, active: bool | None = None
    ) -> list[m.Service]:
        return await self.list_services(category_id, active).collect()

    def list_variants(
        self, service_id: str, active: bool | None = None, *, page_size: int = PAGE_SIZE_MAX
    ) -> PageNumberWalk[m.Variant]:
        return self._pages(
            "list_variants",
            m.Variant,
            m.ActiveQuery(active=active),
            {"service_id": service_id},
            page_size,
        )

    async def collect_variants(
        self, service_id: str, active: bool | None = None
    ) -> list[m.Variant]:
        return await self.list_variants(service_id, active).collect()

    # ------------------------------------------------------------------ coverage, availability

    def list_coverage_zones(
        self, active: bool | None = None, *, page_size: int = PAGE_SIZE_MAX
    ) -> PageNumberWalk[m.CoverageZone]:
        return self._pages(
            "list_coverage_zones", m.CoverageZone, m.ActiveQuery(active=active), page_size=page_size
        )

    async def collect_coverage_zones(self, active: bool | None = None) -> list[m.CoverageZone]:
        return await self.list_coverage_zones(active).collect()

    async def check_coverage(self, postal_code: str, service_id: str) -> m.CoverageCheck:
        query = m.CoverageCheckQuery(postal_code=postal_code, service_id=service_id)
        return await self._call("check_coverage", m.CoverageCheck, params=_query(query))

    async def get_availability(
        self,
        service_id: str,
        postal_code: str,
        date_from: date,
        date_to: date,
        variant_id: str | None = None,
    ) -> m.Availability:
        query = m.AvailabilityQuery(
            service_id=service_id,
            postal_code=postal_code,
            date_from=date_from,
            date_to=date_to,
            variant_id=variant_id,
        )
        return await self._call("get_availability", m.Availability, params=_query(query))

    # ------------------------------------------------------------------ bookings

    async def create_booking(self, body: m.BookingCreate) -> WriteResult[m.Booking]:
        """Create a booking; safe to repeat (reconciled by ``external_reference``)."""
        ref = body.external_reference
        plan = CreatePlan(
            ApiRequest.of("create_booking", body=body),
            m.Booking,
            stats=self.stats,
            lookup=lambda: BookingByReference(ref),
            fetch_existing=lambda existing: GetFinder(
                ApiRequest.of("get_booking", {"booking_id": existing}), m.Booking
            ),
        )
        return await self._create(plan)

    def list_bookings(
        self,
        updated_since: datetime | None = None,
        status: m.BookingStatus | None = None,
        external_reference: str | None = None,
        project_id: str | None = None,
        *,
        limit: int = CURSOR_LIMIT_MAX,
        dedupe: bool = True,
        prefetch: bool = True,
    ) -> CursorWalk[m.Booking]:
        """Bookings by ``(updated_at, id)``; ``dedupe=False`` leaves duplicates to the consumer,
        ``prefetch`` fetches one page ahead (see :class:`CursorWalk`)."""
        query = m.BookingListQuery(
            updated_since=updated_since,
            status=status,
            external_reference=external_reference,
            project_id=project_id,
        )
        paginator = CursorPaginator(limit, _query(query), operation="list_bookings")
        return CursorWalk(
            self._engine, "list_bookings", m.Booking, paginator, dedupe=dedupe, prefetch=prefetch
        )

    def list_bookings_arrow(
        self,
        decoder: ArrowPageDecoder[m.Booking],
        updated_since: datetime | None = None,
        status: m.BookingStatus | None = None,
        *,
        limit: int = CURSOR_LIMIT_MAX,
        prefetch: bool = True,
    ) -> ArrowCursorWalk:
        """Bookings by ``(updated_at, id)`` read in bulk: each page an Arrow batch of the
        ``decoder``'s schema (same checks and errors as :meth:`list_bookings`, no
        de-duplication: see :class:`~sodtrack.client.bulk.ArrowPageDecoder`)."""
        if decoder.model is not m.Booking:
            raise TypeError(f"a decoder of Booking is needed, not of {decoder.model.__name__}")
        query = m.BookingListQuery(updated_since=updated_since, status=status)
        paginator = CursorPaginator(limit, _query(query), operation="list_bookings")
        return ArrowCursorWalk(self._engine, "list_bookings", decoder, paginator, prefetch=prefetch)

    async def collect_bookings(
        self,
        updated_since: datetime | None = None,
        status: m.BookingStatus | None = None,
        external_reference: str | None = None,
        project_id: str | None = None,
        *,
        limit: int = CURSOR_LIMIT_MAX,
    ) -> list[m.Booking]:
        """Exactly one booking per id: the newest the walk saw."""
        walk = self.list_bookings(
            updated_since, status, external_reference, project_id, limit=limit
        )
        return await walk.collect()

    async def get_booking(self, booking_id: str) -> m.Booking:
        return await self._call("get_booking", m.Booking, {"booking_id": booking_id})

    async def update_booking(self, booking_id: str, body: m.BookingUpdate) -> m.Booking:
        """``PATCH``: only the fields set on ``body`` are sent (``None`` set explicitly clears)."""
        return await self._call(
            "update_booking", m.Booking, {"booking_id": booking_id}, body=body, patch=True
        )

    async def cancel_booking(self, booking_id: str, reason: str) -> m.Booking:
        """Cancel (a no-op on a cancelled booking, so safe to repeat)."""
        return await self._call(
            "cancel_booking",
            m.Booking,
            {"booking_id": booking_id},
            body=m.BookingCancel(reason=reason),
        )

    # ------------------------------------------------------------------ projects

    async def create_project(self, body: m.ProjectCreate) -> WriteResult[m.Project]:
        """Create a project; safe to repeat (re-POST, the ``409`` names the existing one)."""
        plan = CreatePlan(
            ApiRequest.of("create_project", body=body),
            m.Project,
            stats=self.stats,
            repost_is_safe=True,
            fetch_existing=lambda existing: GetFinder(
                ApiRequest.of("get_project", {"project_id": existing}), m.ProjectDetail
            ),
        )
        return await self._create(plan)

    def list_projects(
        self,
        updated_since: datetime | None = None,
        *,
        limit: int = CURSOR_LIMIT_MAX,
        dedupe: bool = True,
        prefetch: bool = True,
    ) -> CursorWalk[m.Project]:
        query = m.UpdatedSinceQuery(updated_since=updated_since)
        paginator = CursorPaginator(limit, _query(query), operation="list_projects")
        return CursorWalk(
            self._engine, "list_projects", m.Project, paginator, dedupe=dedupe, prefetch=prefetch
        )

    async def collect_projects(self, updated_since: datetime | None = None) -> list[m.Project]:
        return await self.list_projects(updated_since).collect()

    async def get_project(self, project_id: str) -> m.ProjectDetail:
        return await self._call("get_project", m.ProjectDetail, {"project_id": project_id})

    async def update_project(self, project_id: str, body: m.ProjectUpdate) -> m.Project:
        return await self._call(
            "update_project", m.Project, {"project_id": project_id}, body=body, patch=True
        )

    async def create_stage(self, project_id: str, body: m.StageCreate) -> WriteResult[m.Stage]:
        """Create a stage; on ``409 duplicate_stage`` return the existing one (created=False)
        with any ``booking_ids`` difference in ``mismatches`` (also logged and counted)."""
        wanted = sorted(body.booking_ids)

        def compare(stage: m.Stage) -> tuple[str, ...]:
            have = sorted(stage.booking_ids)
            if have == wanted:
                return ()
            return (f"booking_ids: requested {wanted}, existing stage has {have}",)

        plan = CreatePlan(
            ApiRequest.of("create_stage", {"project_id": project_id}, body=body),
            m.Stage,
            stats=self.stats,
            conflict_code=ErrorCode.DUPLICATE_STAGE,
            repost_is_safe=True,
            fetch_existing=lambda existing: StageOfProject(project_id, existing),
            compare=compare,
        )
        return await self._create(plan)

    async def update_stage(self, project_id: str, stage_id: str, body: m.StageUpdate) -> m.Stage:
        return await self._call(
            "update_stage",
            m.Stage,
            {"project_id": project_id, "stage_id": stage_id},
            body=body,
            patch=True,
        )

    async def create_payment(
        self, project_id: str, body: m.PaymentCreate
    ) -> WriteResult[m.Payment]:
        """Record a payment; safe to repeat (reconciled in the project's payments list)."""
        ref = body.external_reference
        path = {"project_id": project_id}
        plan = CreatePlan(
            ApiRequest.of("create_payment", path, body=body),
            m.Payment,
            stats=self.stats,
            lookup=lambda: PagedFinder(
                "list_payments", path, m.Payment, lambda p: p.external_reference == ref
            ),
            fetch_existing=lambda existing: PagedFinder(
                "list_payments", path, m.Payment, lambda p: p.id == existing
            ),
        )
        return await self._create(plan)

    def list_payments(
        self, project_id: str, *, page_size: int = PAGE_SIZE_MAX
    ) -> PageNumberWalk[m.Payment]:
        return self._pages("list_payments", m.Payment, None, {"project_id": project_id}, page_size)

    async def collect_payments(self, project_id: str) -> list[m.Payment]:
        return await self.list_payments(project_id).collect()

    async def upload_document(
        self,
        project_id: str,
        content: bytes,
        filename: str,
        form: m.DocumentUpload | None = None,
        *,
        content_type: str = "application/octet-stream",
    ) -> WriteResult[m.Document]:
        """Upload a document (multipart). With ``form.external_reference`` it is safe to
        repeat (reconciled in the project's documents list); without one, an ambiguous
        failure is not repeated (``RetryExhausted(may_have_committed=True)``)."""
        form = form if form is not None else m.DocumentUpload()
        fields = {k: str(v) for k, v in _query(form).items()}
        path = {"project_id": project_id}
        step = ApiRequest(
            operation("upload_document"),
            path,
            files={DOCUMENT_FILE_FIELD: (filename, content, content_type)},
            data=fields,
        )
        ref = form.external_reference
        plan = CreatePlan(
            step,
            m.Document,
            stats=self.stats,
            lookup=(
                (
                    lambda: PagedFinder(
                        "list_documents", path, m.Document, lambda d: d.external_reference == ref
                    )
                )
                if ref is not None
                else None
            ),
            fetch_existing=lambda existing: PagedFinder(
                "list_documents", path, m.Document, lambda d: d.id == existing
            ),
        )
        return await self._create(plan)

    def list_documents(
        self, project_id: str, *, page_size: int = PAGE_SIZE_MAX
    ) -> PageNumberWalk[m.Document]:
        return self._pages(
            "list_documents", m.Document, None, {"project_id": project_id}, page_size
        )

    async def collect_documents(self, project_id: str) -> list[m.Document]:
        return await self.list_documents(project_id).collect()

    def list_tasks(
        self,
        project_id: str,
        stage_id: str | None = None,
        updated_since: datetime | None = None,
        *,
        page_size: int = PAGE_SIZE_MAX,
    ) -> PageNumberWalk[m.Task]:
        query = m.TaskQuery(stage_id=stage_id, updated_since=updated_since)
        return self._pages("list_tasks", m.Task, query, {"project_id": project_id}, page_size)

    async def collect_tasks(
        self, project_id: str, stage_id: str | None = None, updated_since: datetime | None = None
    ) -> list[m.Task]:
        return await self.list_tasks(project_id, stage_id, updated_since).collect()

    async def update_task(self, project_id: str, task_id: str, body: m.TaskUpdate) -> m.Task:
        return await self._call(
            "update_task",
            m.Task,
            {"project_id": project_id, "task_id": task_id},
            body=body,
            patch=True,
        )

    # ------------------------------------------------------------------ leads

    def list_forms(self, *, page_size: int = PAGE_SIZE_MAX) -> PageNumberWalk[m.LeadForm]:
        return self._pages("list_forms", m.LeadForm, page_size=page_size)

    async def collect_forms(self) -> list[m.LeadForm]:
        return await self.list_forms().collect()

    async def get_form(self, form_id: str) -> m.LeadForm:
        return await self._call("get_form", m.LeadForm, {"form_id": form_id})

    async def submit_lead(self, form_id: str, body: m.LeadSubmission) -> WriteResult[m.Lead | None]:
        """Submit a lead. With ``external_reference`` it is safe to repeat: a ``409`` gives
        ``WriteResult(id=existing_id, resource=None, created=False)`` (the contract has no
        ``GET`` for leads); without one an ambiguous failure is not repeated."""
        plan = CreatePlan(
            ApiRequest.of("submit_lead", {"form_id": form_id}, body=body),
            m.Lead,
            stats=self.stats,
            repost_is_safe=body.external_reference is not None,
        )
        return await self._create(plan)


def country_client(settings: Settings, country: str) -> SodtrackClient:
    """A client for one country's API (its own token, limiter and stats), for ``async with``:
    ``settings`` with ``country`` in place of its own (any code or name :func:`get_country`
    knows)."""
    return SodtrackClient.from_settings(
        settings.model_copy(update={"country": get_country(country).code})
    )
