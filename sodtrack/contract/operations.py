"""The route table: every operation of the contract, its path, scope, paging style and types.

The simulator registers its handlers by these operation ids, the client builds its requests
from them, and the OpenAPI document is generated from them. Adapting to Sodtrack's real
collection means editing this table (and ``models``), nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel

from sodtrack.contract import models as m


class Paging(StrEnum):
    NONE = "none"
    PAGE = "page"
    """``?page=&page_size=`` → ``{"data", "meta"}``"""
    CURSOR = "cursor"
    """``?limit=&cursor=`` → ``{"data", "next_cursor"}``"""


@dataclass(frozen=True, slots=True)
class Operation:
    id: str
    method: str
    path: str
    """Relative to ``API_PREFIX``, with ``{name}`` placeholders."""
    scope: str | None
    """Scope the token needs; None for the token endpoint."""
    response: type[BaseModel] | None
    """The item model for paged lists; the body model otherwise (None for no body)."""
    status: int = 200
    paging: Paging = Paging.NONE
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    multipart: bool = False
    summary: str = ""

    def url(self, **path_params: str) -> str:
        from urllib.parse import quote

        return self.path.format(**{k: quote(v, safe="") for k, v in path_params.items()})


_OPS: tuple[Operation, ...] = (
    Operation(
        "issue_token",
        "POST",
        "/auth/token",
        None,
        m.TokenResponse,
        body=m.TokenRequest,
        summary="Exchange client credentials for a JWT.",
    ),
    Operation(
        "list_categories",
        "GET",
        "/catalog/categories",
        "catalog:read",
        m.Category,
        paging=Paging.PAGE,
        query=m.ActiveQuery,
    ),
    Operation(
        "list_services",
        "GET",
        "/catalog/services",
        "catalog:read",
        m.Service,
        paging=Paging.PAGE,
        query=m.ServiceQuery,
    ),
    Operation(
        "list_variants",
        "GET",
        "/catalog/services/{service_id}/variants",
        "catalog:read",
        m.Variant,
        paging=Paging.PAGE,
        query=m.ActiveQuery,
    ),
    Operation(
        "list_coverage_zones",
        "GET",
        "/coverage/zones",
        "coverage:read",
        m.CoverageZone,
        paging=Paging.PAGE,
        query=m.ActiveQuery,
    ),
    Operation(
        "check_coverage",
        "GET",
        "/coverage/check",
        "coverage:read",
        m.CoverageCheck,
        query=m.CoverageCheckQuery,
    ),
    Operation(
        "get_availability",
        "GET",
        "/availability",
        "availability:read",
        m.Availability,
        query=m.AvailabilityQuery,
    ),
    Operation(
        "create_booking",
        "POST",
        "/bookings",
        "bookings:write",
        m.Booking,
        status=201,
        body=m.BookingCreate,
    ),
    Operation(
        "list_bookings",
        "GET",
        "/bookings",
        "bookings:read",
        m.Booking,
        paging=Paging.CURSOR,
        query=m.BookingListQuery,
    ),
    Operation("get_booking", "GET", "/bookings/{booking_id}", "bookings:read", m.Booking),
    Operation(
        "update_booking",
        "PATCH",
        "/bookings/{booking_id}",
        "bookings:write",
        m.Booking,
        body=m.BookingUpdate,
    ),
    Operation(
        "cancel_booking",
        "POST",
        "/bookings/{booking_id}/cancel",
        "bookings:write",
        m.Booking,
        body=m.BookingCancel,
    ),
    Operation(
        "create_project",
        "POST",
        "/projects",
        "projects:write",
        m.Project,
        status=201,
        body=m.ProjectCreate,
    ),
    Operation(
        "list_projects",
        "GET",
        "/projects",
        "projects:read",
        m.Project,
        paging=Paging.CURSOR,
        query=m.UpdatedSinceQuery,
    ),
    Operation("get_project", "GET", "/projects/{project_id}", "projects:read", m.ProjectDetail),
    Operation(
        "update_project",
        "PATCH",
        "/projects/{project_id}",
        "projects:write",
        m.Project,
        body=m.ProjectUpdate,
    ),
    Operation(
        "create_stage",
        "POST",
        "/projects/{project_id}/stages",
        "projects:write",
        m.Stage,
        status=201,
        body=m.StageCreate,
    ),
    Operation(
        "update_stage",
        "PATCH",
        "/projects/{project_id}/stages/{stage_id}",
        "projects:write",
        m.Stage,
        body=m.StageUpdate,
    ),
    Operation(
        "create_payment",
        "POST",
        "/projects/{project_id}/payments",
        "projects:write",
        m.Payment,
        status=201,
        body=m.PaymentCreate,
    ),
    Operation(
        "list_payments",
        "GET",
        "/projects/{project_id}/payments",
        "projects:read",
        m.Payment,
        paging=Paging.PAGE,
    ),
    Operation(
        "upload_document",
        "POST",
        "/projects/{project_id}/documents",
        "projects:write",
        m.Document,
        status=201,
        multipart=True,
    ),
    Operation(
        "list_documents",
        "GET",
        "/projects/{project_id}/documents",
        "projects:read",
        m.Document,
        paging=Paging.PAGE,
    ),
    Operation(
        "list_tasks",
        "GET",
        "/projects/{project_id}/tasks",
        "projects:read",
        m.Task,
        paging=Paging.PAGE,
        query=m.TaskQuery,
    ),
    Operation(
        "update_task",
        "PATCH",
        "/projects/{project_id}/tasks/{task_id}",
        "projects:write",
        m.Task,
        body=m.TaskUpdate,
    ),
    Operation("list_forms", "GET", "/leads/forms", "leads:read", m.LeadForm, paging=Paging.PAGE),
    Operation("get_form", "GET", "/leads/forms/{form_id}", "leads:read", m.LeadForm),
    Operation(
        "submit_lead",
        "POST",
        "/leads/forms/{form_id}/submissions",
        "leads:write",
        m.Lead,
        status=201,
        body=m.LeadSubmission,
    ),
)

OPERATIONS: dict[str, Operation] = {op.id: op for op in _OPS}


def operation(op_id: str) -> Operation:
    return OPERATIONS[op_id]
