"""Typed models of every resource and request of the Sodtrack Integration API.

These are the wire shapes of ``sodtrack-api.md``; the OpenAPI document under ``schemas/`` is
generated from them (``sodtrack.contract.openapi``) and a golden test keeps the two equal.

Conventions carried by the types:

* ``Timestamp``: an aware datetime, RFC 3339 text on the wire (never Unix time). Requests may
  carry any offset (a naive one is rejected); responses are written in UTC as
  ``2026-12-03T13:00:00.000000Z``. ``CalendarDate``: ``YYYY-MM-DD`` only.
* ``Money``: a ``Decimal`` on our side, a JSON *string* on the wire (``"45990"``,
  ``"149.90"``); a JSON number is refused so that floats never creep in.
* Requests forbid unknown fields (the API answers ``422 unknown_field``); responses ignore
  them, so that an additive change of the real API does not break extraction.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Annotated, Any, Generic, TypeVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from sodtrack.contract.limits import EXTERNAL_REFERENCE_PATTERN


def format_timestamp(value: datetime) -> str:
    """RFC 3339 in UTC with ``Z`` and exactly six fractional digits, as the API responds."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _money_from_wire(value: Any) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, str):
        try:
            parsed = Decimal(value)
        except InvalidOperation:
            raise ValueError("money must be a decimal string") from None
        if not parsed.is_finite():
            raise ValueError("money must be a finite decimal string")
        return parsed
    raise ValueError("money must be a JSON string, never a number")


_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})?")
_CALENDAR_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _timestamp_from_wire(value: Any) -> Any:
    """Only RFC 3339 text (or a ``datetime``): pydantic alone would take ``"0.5"`` or
    ``1733230800`` as Unix time. A missing offset is left to ``AwareDatetime`` to refuse."""
    if isinstance(value, str) and _RFC3339.fullmatch(value) is None:
        raise PydanticCustomError(
            "datetime_parsing", "a timestamp is RFC 3339, e.g. 2026-12-03T10:00:00-03:00"
        )
    if isinstance(value, int | float):
        raise PydanticCustomError("datetime_type", "a timestamp is an RFC 3339 string")
    return value


def _date_from_wire(value: Any) -> Any:
    """Only ``YYYY-MM-DD`` text (or a ``date``): no Unix time, no date-time."""
    if isinstance(value, str) and _CALENDAR_DATE.fullmatch(value) is None:
        raise PydanticCustomError("date_parsing", "a date is YYYY-MM-DD")
    if isinstance(value, int | float):
        raise PydanticCustomError("date_type", "a date is a YYYY-MM-DD string")
    return value


TIMESTAMP_RESPONSE_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$"
"""What ``format_timestamp`` writes: the only shape a response timestamp takes."""

Timestamp = Annotated[
    AwareDatetime,
    PlainSerializer(format_timestamp, return_type=str, when_used="json"),
    WithJsonSchema(
        {"type": "string", "format": "date-time", "pattern": TIMESTAMP_RESPONSE_PATTERN},
        mode="serialization",
    ),
    BeforeValidator(_timestamp_from_wire),
]
CalendarDate = Annotated[date, BeforeValidator(_date_from_wire)]
"""A local calendar date, ``YYYY-MM-DD``."""
Money = Annotated[
    Decimal,
    BeforeValidator(_money_from_wire),
    PlainSerializer(lambda d: f"{d:f}", return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": r"^-?\d+(\.\d+)?$", "examples": ["149.90"]}),
]
ExternalReference = Annotated[str, Field(pattern=EXTERNAL_REFERENCE_PATTERN)]


class _Response(BaseModel):
    # A response field with a default is still always sent (``details``, ``existing_id``).
    model_config = ConfigDict(
        frozen=True, extra="ignore", json_schema_serialization_defaults_required=True
    )


class _Request(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# ---------------------------------------------------------------- enums


class BookingStatus(StrEnum):
    SCHEDULED = "scheduled"
    CONFIRMED = "confirmed"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


BOOKING_TRANSITIONS: dict[BookingStatus, frozenset[BookingStatus]] = {
    BookingStatus.SCHEDULED: frozenset({BookingStatus.CONFIRMED, BookingStatus.CANCELLED}),
    BookingStatus.CONFIRMED: frozenset({BookingStatus.IN_PROGRESS, BookingStatus.CANCELLED}),
    BookingStatus.IN_PROGRESS: frozenset({BookingStatus.COMPLETED, BookingStatus.CANCELLED}),
    BookingStatus.COMPLETED: frozenset(),
    BookingStatus.CANCELLED: frozenset(),
}
"""The contract's booking status graph, the one table: every status a booking may be moved
to by one request from each status (``PATCH /bookings/{id}`` with ``status`` one step on, or
to ``cancelled``; ``POST /bookings/{id}/cancel``). Setting the current status is a no-op, not
a transition. The simulator enforces it and the loader's corrections walk it."""


def _progression() -> tuple[BookingStatus, ...]:
    path = [BookingStatus.SCHEDULED]
    while after := sorted(BOOKING_TRANSITIONS[path[-1]] - {BookingStatus.CANCELLED}):
        path.append(after[0])
    return tuple(path)


BOOKING_PROGRESSION: tuple[BookingStatus, ...] = _progression()
"""The one-step-at-a-time path a booking's status follows (any but completed may cancel),
read off :data:`BOOKING_TRANSITIONS`: scheduled → confirmed → in_progress → completed."""


def booking_status_path(
    current: BookingStatus | str, wanted: BookingStatus | str
) -> tuple[BookingStatus, ...] | None:
    """The statuses to set one request at a time to take a booking from ``current`` to
    ``wanted`` (the shortest walk of :data:`BOOKING_TRANSITIONS`): ``()`` when they are equal,
    ``None`` when the graph has no way (backwards, or out of completed or cancelled)."""
    start, goal = BookingStatus(current), BookingStatus(wanted)
    paths: dict[BookingStatus, tuple[BookingStatus, ...]] = {start: ()}
    frontier = [start]
    while frontier:
        here = frontier.pop(0)
        if here == goal:
            return paths[here]
        for after in sorted(BOOKING_TRANSITIONS[here]):
            if after not in paths:
                paths[after] = (*paths[here], after)
                frontier.append(after)
    return None


class ProjectStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class StageStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    DONE = "done"


class PaymentMethod(StrEnum):
    CARD = "card"
    TRANSFER = "transfer"
    CASH = "cash"
    FINANCING = "financing"


class DocumentKind(StrEnum):
    QUOTE = "quote"
    INVOICE = "invoice"
    PHOTO = "photo"
    OTHER = "other"


class TaskStatus(StrEnum):
    TODO = "todo"
    DOING = "doing"
    DONE = "done"


class FieldType(StrEnum):
    TEXT = "text"
    EMAIL = "email"
    PHONE = "phone"
    POSTAL_CODE = "postal_code"
    SELECT = "select"
    NUMBER = "number"


# ---------------------------------------------------------------- errors and pages


class ErrorDetail(_Response):
    field: str
    issue: str


class ErrorBody(_Response):
    code: str
    message: str
    details: list[ErrorDetail] = Field(default_factory=list)
    existing_id: str | None = None
    request_id: str


class ErrorEnvelope(_Response):
    error: ErrorBody


class PageMeta(_Response):
    page: int
    page_size: int
    total_items: int
    total_pages: int


T = TypeVar("T", bound=BaseModel)


class Page(_Response, Generic[T]):
    """A page-numbered list: ``{"data": [...], "meta": {...}}``."""

    data: list[T]
    meta: PageMeta


class CursorPage(_Response, Generic[T]):
    """A cursor list: ``{"data": [...], "next_cursor": "..."}``; ``null`` on the last page."""

    data: list[T]
    next_cursor: str | None


# ---------------------------------------------------------------- auth


class TokenRequest(_Request):
    client_id: str = Field(min_length=1)
    client_secret: str = Field(min_length=1)
    scope: str | None = None


class TokenResponse(_Response):
    access_token: str
    token_type: str
    expires_in: int
    scope: str


# ---------------------------------------------------------------- catalog


class Category(_Response):
    id: str
    name: str
    description: str | None
    parent_id: str | None
    active: bool
    updated_at: Timestamp


class Service(_Response):
    id: str
    category_id: str
    sku: str
    name: str
    description: str | None
    duration_minutes: int
    base_price: Money
    currency: str
    requires_project: bool
    active: bool
    updated_at: Timestamp


class Variant(_Response):
    id: str
    service_id: str
    sku: str
    name: str
    price: Money
    currency: str
    duration_minutes: int
    active: bool
    updated_at: Timestamp


# ---------------------------------------------------------------- coverage and availability


class CoverageZone(_Response):
    id: str
    name: str
    region: str
    postal_codes: list[str]
    service_ids: list[str]
    contractor_count: int
    active: bool
    updated_at: Timestamp


class CoverageCheck(_Response):
    covered: bool
    zone_id: str | None
    contractor_count: int


class Slot(_Response):
    start: Timestamp
    end: Timestamp
    capacity: int


class Availability(_Response):
    data: list[Slot]


# ---------------------------------------------------------------- bookings


class Customer(_Response):
    first_name: str
    last_name: str
    email: str | None
    phone: str | None
    document_id: str | None


class Address(_Response):
    line1: str
    line2: str | None
    city: str
    region: str
    postal_code: str
    country: str


class CustomerIn(_Request):
    first_name: str = Field(min_length=1)
    last_name: str = Field(min_length=1)
    email: str | None = None
    phone: str | None = None
    document_id: str | None = None


class AddressIn(_Request):
    line1: str = Field(min_length=1)
    line2: str | None = None
    city: str = Field(min_length=1)
    region: str = Field(min_length=1)
    postal_code: str = Field(min_length=1)
    country: str = Field(min_length=2, max_length=2)


class Booking(_Response):
    id: str
    external_reference: str
    status: BookingStatus
    service_id: str
    variant_id: str | None
    zone_id: str
    contractor_id: str
    scheduled_start: Timestamp
    scheduled_end: Timestamp
    customer: Customer
    address: Address
    notes: str | None
    price: Money
    currency: str
    project_id: str | None
    stage_id: str | None
    created_at: Timestamp
    updated_at: Timestamp
    cancelled_reason: str | None


class BookingCreate(_Request):
    external_reference: ExternalReference
    service_id: str
    variant_id: str | None = None
    scheduled_start: Timestamp
    customer: CustomerIn
    address: AddressIn
    notes: str | None = None
    project_id: str | None = None


_PATCH = ConfigDict(json_schema_extra={"minProperties": 1})
"""PATCH bodies: at least one field (an empty body is a 422)."""


def _not_null_in_schema(schema: dict[str, Any]) -> None:
    branches = [b for b in schema.pop("anyOf", []) if b != {"type": "null"}]
    if len(branches) == 1:
        schema.update(branches[0])
    elif branches:
        schema["anyOf"] = branches
    schema.pop("default", None)


def _unset(**constraints: Any) -> Any:
    """A PATCH field that may be left out but not sent as ``null`` (the API answers a 422;
    only a clearable field, typed ``X | None = None`` plainly, takes ``null``). The type stays
    ``X | None`` so that validation errors name the field's own problem, not ``None``'s; only
    the JSON schema leaves ``null`` out."""
    return Field(default=None, json_schema_extra=_not_null_in_schema, **constraints)


class BookingUpdate(_Request):
    """``PATCH /bookings/{id}``: at least one field (an empty body is a 422)."""

    model_config = _PATCH

    scheduled_start: Timestamp | None = _unset()
    notes: str | None = None
    status: BookingStatus | None = _unset()


class BookingCancel(_Request):
    reason: str = Field(min_length=1)


# ---------------------------------------------------------------- projects, stages, payments


class Stage(_Response):
    id: str
    project_id: str
    name: str
    sequence: int
    status: StageStatus
    booking_ids: list[str]
    created_at: Timestamp
    updated_at: Timestamp


class Project(_Response):
    id: str
    external_reference: str
    name: str
    customer: Customer
    address: Address
    status: ProjectStatus
    currency: str
    total_amount: Money
    paid_amount: Money
    created_at: Timestamp
    updated_at: Timestamp


class ProjectDetail(Project):
    """``GET /projects/{id}``: the project with its stages."""

    stages: list[Stage]


class ProjectCreate(_Request):
    external_reference: ExternalReference
    name: str = Field(min_length=1)
    customer: CustomerIn
    address: AddressIn


class ProjectUpdate(_Request):
    model_config = _PATCH

    name: str | None = _unset(min_length=1)
    status: ProjectStatus | None = _unset()


class StageCreate(_Request):
    name: str = Field(min_length=1)
    sequence: int = Field(ge=1)
    booking_ids: list[str] = Field(default_factory=list)


class StageUpdate(_Request):
    model_config = _PATCH

    name: str | None = _unset(min_length=1)
    status: StageStatus | None = _unset()
    booking_ids: list[str] | None = _unset()


class Payment(_Response):
    id: str
    external_reference: str
    project_id: str
    stage_id: str | None
    amount: Money
    currency: str
    method: PaymentMethod
    paid_at: Timestamp
    created_at: Timestamp


class PaymentCreate(_Request):
    external_reference: ExternalReference
    amount: Money
    currency: str = Field(min_length=3, max_length=3)
    method: PaymentMethod
    paid_at: Timestamp
    stage_id: str | None = None


class Document(_Response):
    id: str
    external_reference: str | None
    project_id: str
    stage_id: str | None
    kind: DocumentKind
    filename: str
    size_bytes: int
    sha256: str
    created_at: Timestamp


class DocumentUpload(_Request):
    """``POST /projects/{id}/documents``: the form fields beside ``file`` (multipart/form-data).

    The file part itself (PDF, PNG or JPEG, judged by its bytes, at most
    ``limits.DOCUMENT_MAX_BYTES``) is not a model field: it travels as a binary part.
    """

    stage_id: str | None = None
    kind: DocumentKind = DocumentKind.OTHER
    external_reference: ExternalReference | None = None


class Task(_Response):
    id: str
    project_id: str
    stage_id: str
    title: str
    status: TaskStatus
    notes: str | None
    updated_at: Timestamp


class TaskUpdate(_Request):
    model_config = _PATCH

    status: TaskStatus | None = _unset()
    notes: str | None = None


# ---------------------------------------------------------------- leads


class FormField(_Response):
    name: str
    label: str
    type: FieldType
    required: bool
    options: list[str] | None


class LeadForm(_Response):
    id: str
    name: str
    fields: list[FormField]


class LeadSubmission(_Request):
    fields: dict[str, Any]
    source: str | None = None
    external_reference: ExternalReference | None = None


class Lead(_Response):
    id: str
    form_id: str
    external_reference: str | None
    status: str
    created_at: Timestamp


# ---------------------------------------------------------------- query parameters


class _Query(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ActiveQuery(_Query):
    active: bool | None = None


class ServiceQuery(_Query):
    category_id: str | None = None
    active: bool | None = None


class CoverageCheckQuery(_Query):
    postal_code: str
    service_id: str


class AvailabilityQuery(_Query):
    service_id: str
    postal_code: str
    date_from: CalendarDate
    date_to: CalendarDate
    variant_id: str | None = None


class BookingListQuery(_Query):
    updated_since: Timestamp | None = None
    status: BookingStatus | None = None
    external_reference: str | None = None
    project_id: str | None = None


class UpdatedSinceQuery(_Query):
    updated_since: Timestamp | None = None


class TaskQuery(_Query):
    stage_id: str | None = None
    updated_since: Timestamp | None = None
