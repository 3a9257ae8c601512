"""Creates that are safe to repeat: the create, reconcile-by-reference and 409 plans.

A create can fail *ambiguously* (5xx, connection dropped after sending, read timeout, a
``2xx`` whose body is empty, cut short, not JSON or off the model: ``UnreadableResponse``):
the server may or may not have committed it; it is never assumed either way.
:class:`CreatePlan` is the state machine that the engine's single retry loop drives for every
create::

    CREATE ──201──────────────────────────────► done (created=True)
      │ ──409 duplicate (existing_id)──► FETCH ──found──► done (created=False)
      │                                    └─not found──► ConflictError (e.g. a payment
      │                                                   whose reference another project holds)
      └─ambiguous failure, wait ──► LOOKUP by external_reference
                                     ├─found──────► done (created=False, reconciled=True)
                                     └─not found──► CREATE again (no extra wait)

How each resource is reconciled (contract gaps are in ``docs/api-decisions.md``):

============  ====================================  ====================================
resource      LOOKUP after an ambiguous failure     FETCH after a 409
============  ====================================  ====================================
booking       ``GET /bookings?external_reference=``  ``GET /bookings/{existing_id}``
project       none: re-POST, the 409 tells          ``GET /projects/{existing_id}``
stage         none: re-POST, ``(project, sequence)``  ``GET /projects/{id}``, its stage
              is unique (409 ``duplicate_stage``)   (``booking_ids`` compared)
payment       ``GET /projects/{id}/payments`` pages  same pages, by id
document      ``GET /projects/{id}/documents`` pages same pages, by id
lead          none: re-POST, the 409 tells          none (no ``GET`` for leads): the
                                                    result has ``resource=None``
============  ====================================  ====================================

A document or lead *without* ``external_reference`` cannot be reconciled: a non-ambiguous
failure (429, connection refused) is retried, an ambiguous one gives up at once with
``RetryExhausted(may_have_committed=True)``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import httpx
from pydantic import BaseModel

from sodtrack.client.core import ApiRequest, Done, Plan, parse_model
from sodtrack.client.errors import ConflictError, _EnvelopeError, _Transient
from sodtrack.client.pagination import PageNumberPaginator
from sodtrack.client.results import WriteResult
from sodtrack.client.stats import ClientStats
from sodtrack.contract.errors import ErrorCode
from sodtrack.contract.limits import PAGE_SIZE_MAX, PARAM_LIMIT
from sodtrack.contract.models import (
    Booking,
    BookingListQuery,
    CursorPage,
    Page,
    ProjectDetail,
    Stage,
)

log = logging.getLogger("sodtrack.client")

M = TypeVar("M", bound=BaseModel)


class Finder(Generic[M]):
    """Finds one record by a sequence of GETs (one step at a time)."""

    def next_step(self) -> ApiRequest:
        raise NotImplementedError

    def on_response(self, response: httpx.Response) -> tuple[M | None, bool]:
        """(the record if found, whether more steps may find it)."""
        raise NotImplementedError

    def on_not_found(self) -> bool:
        """A 404 on a step: True if that means "not there" (else the error is raised)."""
        return False


class GetFinder(Finder[M]):
    """One ``GET`` by id; a ``404`` means not found."""

    def __init__(self, step: ApiRequest, model: type[M]) -> None:
        self.step = step
        self.model = model

    def next_step(self) -> ApiRequest:
        return self.step

    def on_response(self, response: httpx.Response) -> tuple[M | None, bool]:
        return parse_model(response, self.model, self.step.op.id), False

    def on_not_found(self) -> bool:
        return True


class BookingByReference(Finder[Booking]):
    """``GET /bookings?external_reference=&limit=1`` (the reference is unique per client)."""

    def __init__(self, external_reference: str) -> None:
        params = BookingListQuery(external_reference=external_reference).model_dump(
            mode="json", exclude_none=True
        )
        params[PARAM_LIMIT] = 1
        self.step = ApiRequest.of("list_bookings", params=params)
        self.external_reference = external_reference

    def next_step(self) -> ApiRequest:
        return self.step

    def on_response(self, response: httpx.Response) -> tuple[Booking | None, bool]:
        page = parse_model(response, CursorPage[Booking], self.step.op.id)
        for booking in page.data:
            if booking.external_reference == self.external_reference:
                return booking, False
        return None, False


class PagedFinder(Finder[M]):
    """Walks a page-numbered list until ``match`` accepts an item (payments, documents)."""

    def __init__(
        self,
        op_id: str,
        path_params: dict[str, str],
        model: type[M],
        match: Callable[[M], bool],
    ) -> None:
        self.op_id = op_id
        self.path_params = path_params
        self.page_model: type[Page[M]] = Page[model]  # type: ignore[valid-type]
        self.match = match
        self.paginator = PageNumberPaginator(PAGE_SIZE_MAX, operation=op_id)

    def next_step(self) -> ApiRequest:
        params = self.paginator.next_params()
        assert params is not None, "next_step() after the list was exhausted"
        return ApiRequest.of(self.op_id, self.path_params, params=params)

    def on_response(self, response: httpx.Response) -> tuple[M | None, bool]:
        page = parse_model(response, self.page_model, self.op_id)
        self.paginator.update(len(page.data), page.meta)
        for item in page.data:
            if self.match(item):
                return item, False
        return None, not self.paginator.done


class StageOfProject(Finder[Stage]):
    """``GET /projects/{id}`` and pick the stage by id."""

    def __init__(self, project_id: str, stage_id: str) -> None:
        self.step = ApiRequest.of("get_project", {"project_id": project_id})
        self.stage_id = stage_id

    def next_step(self) -> ApiRequest:
        return self.step

    def on_response(self, response: httpx.Response) -> tuple[Stage | None, bool]:
        project = parse_model(response, ProjectDetail, self.step.op.id)
        for stage in project.stages:
            if stage.id == self.stage_id:
                return stage, False
        return None, False


class CreatePlan(Plan[WriteResult[Any]]):
    """The create/reconcile state machine (see the module docstring)."""

    def __init__(
        self,
        create: ApiRequest,
        model: type[BaseModel],
        *,
        stats: ClientStats,
        conflict_code: ErrorCode = ErrorCode.DUPLICATE_EXTERNAL_REFERENCE,
        lookup: Callable[[], Finder[Any]] | None = None,
        fetch_existing: Callable[[str], Finder[Any]] | None = None,
        repost_is_safe: bool = False,
        compare: Callable[[Any], tuple[str, ...]] | None = None,
    ) -> None:
        self.create = create
        self.model = model
        self.stats = stats
        self.conflict_code = conflict_code
        self.lookup = lookup
        self.fetch_existing = fetch_existing
        self.repost_is_safe = repost_is_safe or lookup is not None
        self.compare = compare
        self.label = create.op.id
        self.state = "create"
        self.finder: Finder[Any] | None = None
        self.conflict: _EnvelopeError | None = None
        self.ambiguous_seen = False
        self.unresolved = False
        """An ambiguous failure happened and no lookup has shown it uncommitted since."""

    # -------------------------------------------------------------- Plan

    def next_step(self) -> ApiRequest:
        if self.state == "create":
            return self.create
        assert self.finder is not None
        return self.finder.next_step()

    def on_response(
        self, step: ApiRequest, response: httpx.Response
    ) -> Done[WriteResult[Any]] | None:
        if self.state == "create":
            resource = parse_model(response, self.model, step.op.id)
            return Done(self._result(resource, created=True))
        assert self.finder is not None
        found, more = self.finder.on_response(response)
        return self._after_find(found, more)

    def on_error(self, step: ApiRequest, error: _EnvelopeError) -> Done[WriteResult[Any]] | None:
        if self.state == "create":
            if error.code == self.conflict_code and error.existing_id:
                return self._on_conflict(error)
            raise error
        assert self.finder is not None
        if error.status == 404 and self.finder.on_not_found():
            return self._after_find(None, False)
        raise error

    def on_transient(self, step: ApiRequest, failure: _Transient) -> None:
        if self.state != "create":
            return  # a lookup step failed: repeat it after the wait
        if failure.ambiguous:
            self.ambiguous_seen = True
            self.unresolved = True
            if self.lookup is not None:
                self.state = "lookup"
                self.finder = self.lookup()

    def may_retry(self, step: ApiRequest, failure: _Transient) -> bool:
        return not (self.state == "create" and failure.ambiguous and not self.repost_is_safe)

    @property
    def may_have_committed(self) -> bool:
        return self.unresolved

    # -------------------------------------------------------------- transitions

    def _on_conflict(self, error: _EnvelopeError) -> Done[WriteResult[Any]] | None:
        existing_id = error.existing_id
        assert existing_id is not None
        if self.fetch_existing is None:
            self.stats.reconciliations[f"{self.label}:conflict_unreadable"] += 1
            log.info("%s: exists as %s (the contract cannot read it back)", self.label, existing_id)
            return Done(
                WriteResult(
                    id=existing_id,
                    resource=None,
                    created=False,
                    reconciled=self.ambiguous_seen,
                )
            )
        self.conflict = error
        self.state = "fetch"
        self.finder = self.fetch_existing(existing_id)
        return None

    def _after_find(self, found: Any, more: bool) -> Done[WriteResult[Any]] | None:
        if found is not None:
            outcome = "found" if self.state == "lookup" else "conflict_fetched"
            self.stats.reconciliations[f"{self.label}:{outcome}"] += 1
            log.info("%s: %s existing %s", self.label, outcome.replace("_", " "), found.id)
            return Done(self._result(found, created=False))
        if more:
            return None
        if self.state == "fetch":
            assert self.conflict is not None
            self.stats.reconciliations[f"{self.label}:conflict_unresolved"] += 1
            raise ConflictError(
                status=self.conflict.status,
                code=self.conflict.code,
                message=self.conflict.api_message + " (not readable through this resource)",
                details=self.conflict.details,
                request_id=self.conflict.request_id,
                existing_id=self.conflict.existing_id,
                operation=self.label,
            )
        self.stats.reconciliations[f"{self.label}:not_found"] += 1
        log.info("%s: not committed, creating again", self.label)
        self.state = "create"
        self.finder = None
        self.unresolved = False
        return None

    def _result(self, resource: Any, *, created: bool) -> WriteResult[Any]:
        mismatches: tuple[str, ...] = ()
        if not created and self.compare is not None:
            mismatches = self.compare(resource)
            if mismatches:
                self.stats.reconciliations[f"{self.label}:mismatch"] += 1
                log.warning(
                    "%s: existing %s differs from the request: %s",
                    self.label,
                    resource.id,
                    "; ".join(mismatches),
                )
        return WriteResult(
            id=resource.id,
            resource=resource,
            created=created,
            reconciled=self.ambiguous_seen,
            mismatches=mismatches,
        )
