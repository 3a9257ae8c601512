"""What every handler gets (``Ctx``) and the shared pieces of answers: pages, cursor walks,
contact checks, slot checks.

Rule order inside a handler, where the contract does not fix it otherwise: path resources
(404) → shape and values (422 ``validation_error``, all issues at once) → uniqueness (409) →
business rules (422 with their own codes), in the order the contract lists them.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
from pydantic import BaseModel
from starlette.requests import Request

from sodtrack.contract.countries import Country
from sodtrack.contract.errors import ErrorCode, Issue
from sodtrack.contract.limits import (
    EMAIL_PATTERN,
    MAX_HORIZON_DAYS,
    MIN_LEAD_TIME_S,
    PARAM_CURSOR,
    PHONE_PATTERN,
)
from sodtrack.contract.operations import Operation
from sodtrack.simulator.auth import Principal
from sodtrack.simulator.clock import US, to_us
from sodtrack.simulator.errors import ApiError, Detail, validation_error
from sodtrack.simulator.state import State
from sodtrack.simulator.store import (
    ClientState,
    ServiceRec,
    Shared,
    SortedIndex,
    VariantRec,
    ZoneRec,
    pack,
)
from sodtrack.simulator.validation import (
    check_query,
    decode_cursor,
    encode_cursor,
    limit_param,
    page_params,
)

if TYPE_CHECKING:
    from sodtrack.simulator.sim import Simulator

M = TypeVar("M", bound=BaseModel)

EMAIL_RE = re.compile(EMAIL_PATTERN)
PHONE_RE = re.compile(PHONE_PATTERN)
MONEY_RE = re.compile(r"^-?\d+(\.\d+)?$")


@dataclass(slots=True)
class Reply:
    status: int
    body: bytes


Handler = Callable[["Ctx"], Awaitable[Reply]]


@dataclass(slots=True)
class Ctx:
    sim: Simulator
    op: Operation
    request: Request
    principal: Principal | None
    path: dict[str, str]
    params: dict[str, str]
    raw: bytes
    json: Any
    now_us: int

    @property
    def state(self) -> State:
        return self.sim.state

    @property
    def country(self) -> Country:
        return self.sim.state.country

    @property
    def client(self) -> ClientState:
        assert self.principal is not None
        return self.sim.state.clients[self.principal.client_id]

    def stamp(self) -> int:
        return self.sim.state.stamp(self.now_us)

    def committed(self, resource: str) -> None:
        self.sim.counters.commit(resource)

    def query(self, model: type[M], extra: Sequence[Detail] = ()) -> M:
        parsed, details = check_query(model, self.params)
        details = [*extra, *details]
        if details or parsed is None:
            raise validation_error(details)
        return parsed

    def reply(self, body: Any, status: int | None = None) -> Reply:
        return Reply(status or self.op.status, body if isinstance(body, bytes) else pack(body))


def json_object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


# ---------------------------------------------------------------- lists


def page_reply(ctx: Ctx, items: Sequence[bytes | dict[str, Any]]) -> Reply:
    """A page-numbered list of items already ordered by id; validates page/page_size."""
    (page, size), details = page_params(ctx.params)
    if details:
        raise validation_error(details)
    total = len(items)
    chosen = items[(page - 1) * size : page * size]
    data = b",".join(i if isinstance(i, bytes) else orjson.dumps(i) for i in chosen)
    meta = orjson.dumps(
        {"page": page, "page_size": size, "total_items": total, "total_pages": -(-total // size)}
    )
    return Reply(200, b'{"data":[' + data + b'],"meta":' + meta + b"}")


def cursor_reply(
    ctx: Ctx,
    index: SortedIndex | list[tuple[int, str]],
    filters: dict[str, Any],
    render: Callable[[str], bytes | None],
    match: Callable[[str], bool] | None = None,
) -> Reply:
    """A cursor page over ``(updated_at, id)`` keys.

    ``filters`` are the walk's (only those sent); a cursor carries them, and a request that
    sends a cursor with filters must send the same ones (else 422). ``updated_since`` (in
    ``filters`` as microseconds) is inclusive.
    """
    keys = index.keys if isinstance(index, SortedIndex) else index
    limit, details = limit_param(ctx.params)
    if details:
        raise validation_error(details)
    position: tuple[int, str] | None = None
    cursor = ctx.params.get(PARAM_CURSOR)
    if cursor is not None:
        decoded = decode_cursor(cursor)
        if decoded is None:
            raise validation_error([(PARAM_CURSOR, Issue.INVALID_FORMAT)], "Unreadable cursor")
        position, carried = decoded
        if filters and filters != carried:
            raise validation_error(
                [(PARAM_CURSOR, Issue.INVALID_FORMAT)],
                "The cursor belongs to a walk with other filters",
            )
        filters = carried
    start = 0
    since = filters.get("updated_since")
    if isinstance(since, int):
        start = bisect.bisect_left(keys, (since, ""))
    if position is not None:
        start = max(start, bisect.bisect_right(keys, position))
    chosen: list[bytes] = []
    last: tuple[int, str] | None = None
    more = False
    for i in range(start, len(keys)):
        key = keys[i]
        if match is not None and not match(key[1]):
            continue
        if len(chosen) == limit:
            more = True
            break
        wire = render(key[1])
        if wire is None:
            continue
        chosen.append(wire)
        last = key
    next_cursor = orjson.dumps(encode_cursor(last, filters) if more and last else None)
    return Reply(200, b'{"data":[' + b",".join(chosen) + b'],"next_cursor":' + next_cursor + b"}")


# ---------------------------------------------------------------- shared checks


def contact_issues(ctx: Ctx, body: dict[str, Any], flagged: set[str]) -> list[Detail]:
    """Rule-1 checks on ``customer`` and ``address`` beyond their shape: at least one of
    e-mail and phone, their formats, and the postal code in the API country's format."""
    details: list[Detail] = []
    customer = body.get("customer")
    if isinstance(customer, dict):
        email, phone = customer.get("email"), customer.get("phone")
        if email is None and phone is None:
            for name in ("customer.email", "customer.phone"):
                if name not in flagged:
                    details.append((name, Issue.REQUIRED))
        if isinstance(email, str) and "customer.email" not in flagged and not EMAIL_RE.match(email):
            details.append(("customer.email", Issue.INVALID_FORMAT))
        if isinstance(phone, str) and "customer.phone" not in flagged and not PHONE_RE.match(phone):
            details.append(("customer.phone", Issue.INVALID_FORMAT))
    address = body.get("address")
    if isinstance(address, dict):
        code = address.get("postal_code")
        if (
            isinstance(code, str)
            and code
            and "address.postal_code" not in flagged
            and not ctx.country.is_valid_postal_code(code)
        ):
            details.append(("address.postal_code", Issue.INVALID_FORMAT))
    return details


def bookable_offer(
    shared: Shared, service_id: str, variant_id: str | None
) -> ServiceRec | VariantRec:
    """Rule 3: the service is active; a variant exists, belongs to it and is active. Returns
    what is booked (the variant, else the service): its duration and price apply."""
    service = shared.services[service_id]
    if not service.active:
        raise ApiError(ErrorCode.SERVICE_INACTIVE, "The service is not active")
    if variant_id is None:
        return service
    variant = shared.variants.get(variant_id)
    if variant is None or variant.service_id != service.id:
        raise ApiError(
            ErrorCode.VARIANT_MISMATCH,
            "The variant does not belong to the service",
            [("variant_id", Issue.NOT_FOUND)],
        )
    if not variant.active:
        raise ApiError(ErrorCode.SERVICE_INACTIVE, "The variant is not active")
    return variant


def flagged_fields(details: Iterable[Detail]) -> set[str]:
    return {field for field, _ in details}


def slot_check(
    ctx: Ctx, zone: ZoneRec, start_us: int, own: tuple[int, int, int] | None = None
) -> tuple[int, int]:
    """Rule 6: a slot start at least ``MIN_LEAD_TIME_S`` ahead and at most
    ``MAX_HORIZON_DAYS`` ahead, with capacity in the zone (``own``: the (zone, start,
    contractor) of the booking being moved, whose place does not count). Returns
    (start_s, contractor)."""
    field = "scheduled_start"
    if start_us < ctx.now_us + MIN_LEAD_TIME_S * US or start_us > (
        ctx.now_us + MAX_HORIZON_DAYS * 86_400 * US
    ):
        raise ApiError(
            ErrorCode.SLOT_UNAVAILABLE,
            "scheduled_start is outside the bookable window",
            [(field, Issue.OUT_OF_RANGE)],
        )
    start_s = start_us // US
    if start_us % US or not ctx.sim.calendar.is_slot_start(start_s):
        raise ApiError(
            ErrorCode.SLOT_UNAVAILABLE,
            "scheduled_start is not a slot start",
            [(field, Issue.OUT_OF_RANGE)],
        )
    capacity = ctx.state.capacity
    if own is not None:
        capacity.release(*own)
    try:
        contractor = capacity.free_contractor(zone, start_s)
    finally:
        if own is not None:
            capacity.take(*own)
    if contractor is None:
        raise ApiError(
            ErrorCode.SLOT_UNAVAILABLE,
            f"No contractor capacity at {ctx.sim.format_us(start_us)}",
            [(field, Issue.NO_CAPACITY)],
        )
    return start_s, contractor


def duplicate(kind: str, existing_id: str) -> ApiError:
    return ApiError(
        ErrorCode.DUPLICATE_EXTERNAL_REFERENCE,
        f"A {kind} with this external_reference already exists",
        existing_id=existing_id,
    )


__all__ = ["Ctx", "Handler", "Reply", "to_us"]
