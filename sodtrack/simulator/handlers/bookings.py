"""Bookings: create (rules 1→6 in the contract's order), list (cursor), get, update, cancel."""

from __future__ import annotations

from typing import Any

from sodtrack.contract import models as m
from sodtrack.contract.errors import ErrorCode, Issue
from sodtrack.contract.limits import PARAM_CURSOR
from sodtrack.contract.models import BOOKING_TRANSITIONS, BookingStatus, ProjectStatus
from sodtrack.simulator import world
from sodtrack.simulator.clock import US, parse_rfc3339, to_us
from sodtrack.simulator.errors import ApiError, Detail, not_found, validation_error
from sodtrack.simulator.handlers.common import (
    Ctx,
    Handler,
    Reply,
    bookable_offer,
    contact_issues,
    cursor_reply,
    duplicate,
    flagged_fields,
    json_object,
    slot_check,
)
from sodtrack.simulator.store import BookingRec, ClientState, pack
from sodtrack.simulator.validation import check_shape, decode_cursor, parse_body


def _rule1_issues(ctx: Ctx, body: dict[str, Any], shape: list[Detail]) -> list[Detail]:
    """Rule 1 beyond the model's shape: contact and postal-code formats, unknown service or
    project, a closed project, a project-only service without a project."""
    flagged = flagged_fields(shape)
    details = contact_issues(ctx, body, flagged)
    shared = ctx.state.shared
    service_id = body.get("service_id")
    service = None
    if isinstance(service_id, str) and "service_id" not in flagged:
        service = shared.services.get(service_id)
        if service is None:
            details.append(("service_id", Issue.NOT_FOUND))
    project_id = body.get("project_id")
    if isinstance(project_id, str) and "project_id" not in flagged:
        project = ctx.client.projects.get(project_id)
        if project is None:
            details.append(("project_id", Issue.NOT_FOUND))
        elif project.status == ProjectStatus.CLOSED:
            details.append(("project_id", Issue.PROJECT_CLOSED))
    elif project_id is None and service is not None and service.requires_project:
        details.append(("project_id", Issue.REQUIRED))
    return details


async def create_booking(ctx: Ctx) -> Reply:
    body = json_object(ctx.json)
    # 1. shape, types, formats, references: every issue at once
    parsed, details = check_shape(m.BookingCreate, ctx.raw)
    details += _rule1_issues(ctx, body, details)
    if details or parsed is None:
        raise validation_error(details)
    b = parsed
    client = ctx.client
    shared = ctx.state.shared
    # 2. external_reference unique per client, whatever the rest says
    existing = client.booking_refs.get(b.external_reference)
    if existing is not None:
        raise duplicate("booking", existing)
    # 3. service active; variant exists, belongs, active
    offer = bookable_offer(shared, b.service_id, b.variant_id)
    duration, price = offer.duration_min, offer.price_minor
    # 4. the address is in the API's (and the token's) country
    if b.address.country.lower() != ctx.country.code:
        raise ApiError(
            ErrorCode.COUNTRY_MISMATCH,
            f"address.country must be {ctx.country.code!r}",
            [("address.country", Issue.OUT_OF_RANGE)],
        )
    # 5. covered
    zone = shared.serving_zone(b.address.postal_code, b.service_id)
    if zone is None:
        raise ApiError(
            ErrorCode.POSTAL_CODE_NOT_COVERED,
            "No active zone offers the service at this postal code",
            [("address.postal_code", Issue.NOT_FOUND)],
        )
    # 6. a slot start in the window, with capacity
    start_us = to_us(b.scheduled_start)
    start_s, contractor = slot_check(ctx, zone, start_us)
    stamp = ctx.stamp()
    bid = ctx.state.new_id("bkg")
    wire = {
        "id": bid,
        "external_reference": b.external_reference,
        "status": BookingStatus.SCHEDULED,
        "service_id": b.service_id,
        "variant_id": b.variant_id,
        "zone_id": zone.id,
        "contractor_id": zone.contractor_id(contractor),
        "scheduled_start": ctx.sim.format_us(start_s * US),
        "scheduled_end": ctx.sim.format_us((start_s + duration * 60) * US),
        "customer": b.customer.model_dump(mode="json"),
        "address": b.address.model_dump(mode="json"),
        "notes": b.notes,
        "price": ctx.sim.money(price),
        "currency": ctx.country.currency,
        "project_id": b.project_id,
        "stage_id": None,
        "created_at": ctx.sim.format_us(stamp),
        "updated_at": ctx.sim.format_us(stamp),
        "cancelled_reason": None,
    }
    rec = BookingRec(
        bid,
        b.external_reference,
        BookingStatus.SCHEDULED,
        zone.idx,
        contractor,
        start_s,
        price,
        b.project_id,
        None,
        stamp,
        pack(wire),
    )
    ctx.state.add_booking(client, rec)
    if b.project_id is not None:
        ctx.state.touch_project(client, client.projects[b.project_id], ctx.now_us)
    ctx.committed("booking")
    return ctx.reply(rec.wire)


def _booking_filters(q: m.BookingListQuery) -> dict[str, Any]:
    filters: dict[str, Any] = {}
    if q.updated_since is not None:
        filters["updated_since"] = to_us(q.updated_since)
    for name in ("status", "external_reference", "project_id"):
        value = getattr(q, name)
        if value is not None:
            filters[name] = str(value)
    return filters


async def list_bookings(ctx: Ctx) -> Reply:
    q = ctx.query(m.BookingListQuery)
    client = ctx.client
    filters = _booking_filters(q)
    # A cursor alone carries the filters: resolve them before choosing the index to walk.
    walk = filters
    cursor = ctx.params.get(PARAM_CURSOR)
    if cursor is not None and not filters:
        decoded = decode_cursor(cursor)
        walk = decoded[1] if decoded is not None else {}
    bookings = client.bookings
    index: Any = client.booking_index
    ref = walk.get("external_reference")
    project_id = walk.get("project_id")
    if isinstance(ref, str):
        found = bookings.get(client.booking_refs.get(ref, ""))
        index = [(found.updated_us, found.id)] if found else []
    elif isinstance(project_id, str):
        project = client.projects.get(project_id)
        members = [bookings[b] for b in project.booking_ids] if project else []
        index = sorted((b.updated_us, b.id) for b in members)
    status = walk.get("status")
    match = None
    if isinstance(status, str) or isinstance(project_id, str):

        def match(bid: str) -> bool:
            rec = bookings[bid]
            return (status is None or rec.status == status) and (
                project_id is None or rec.project_id == project_id
            )

    return cursor_reply(ctx, index, filters, lambda bid: bookings[bid].wire, match)


def _lookup(ctx: Ctx) -> tuple[ClientState, BookingRec]:
    client = ctx.client
    rec = client.bookings.get(ctx.path["booking_id"])
    if rec is None:
        raise not_found("Booking")
    return client, rec


async def get_booking(ctx: Ctx) -> Reply:
    _, rec = _lookup(ctx)
    return ctx.reply(rec.wire)


def _transition_error(current: str, wanted: str) -> ApiError:
    return ApiError(
        ErrorCode.INVALID_TRANSITION,
        f"A booking cannot go from {current} to {wanted}",
        [("status", Issue.INVALID_FORMAT)],
    )


async def update_booking(ctx: Ctx) -> Reply:
    """Rules: 404 → shape (an empty body is a 422; ``null`` for status or scheduled_start
    is an invalid type) → reschedule allowed (scheduled/confirmed) and rule 6 again (own
    place not counted) → status one step on, or cancelled from anything but completed."""
    client, rec = _lookup(ctx)
    body = json_object(ctx.json)
    parsed, details = check_shape(m.BookingUpdate, ctx.raw)
    if parsed is not None and not body:
        details = [("body", Issue.REQUIRED)]
    for name in ("status", "scheduled_start"):
        if name in body and body[name] is None:
            details.append((name, Issue.INVALID_TYPE))
    if details or parsed is None:
        raise validation_error(details)
    changes: dict[str, Any] = {}
    if parsed.scheduled_start is not None:
        start_us = to_us(parsed.scheduled_start)
        if start_us != rec.start_s * US:
            if rec.status not in (BookingStatus.SCHEDULED, BookingStatus.CONFIRMED):
                raise ApiError(
                    ErrorCode.INVALID_TRANSITION,
                    f"A {rec.status} booking cannot be rescheduled",
                    [("scheduled_start", Issue.INVALID_FORMAT)],
                )
            zone = ctx.state.shared.zones[rec.zone]
            start_s, contractor = slot_check(
                ctx, zone, start_us, (rec.zone, rec.start_s, rec.contractor)
            )
            data = rec.to_dict()
            duration_us = _us(data["scheduled_end"]) - _us(data["scheduled_start"])
            changes.update(
                scheduled_start=ctx.sim.format_us(start_s * US),
                scheduled_end=ctx.sim.format_us(start_s * US + duration_us),
                _start_s=start_s,
                _contractor=contractor,
            )
    if parsed.status is not None and parsed.status != rec.status:
        wanted = parsed.status
        if wanted not in BOOKING_TRANSITIONS[BookingStatus(rec.status)]:
            raise _transition_error(rec.status, wanted)
        changes["status"] = str(wanted)
    if "notes" in body and body["notes"] != rec.to_dict()["notes"]:
        changes["notes"] = parsed.notes
    if changes:
        world.release(ctx.state, rec.id)
        ctx.state.change_booking(client, rec, ctx.now_us, **changes)
        ctx.committed("booking")
    return ctx.reply(rec.wire)


def _us(text: str) -> int:
    return to_us(parse_rfc3339(text))


async def cancel_booking(ctx: Ctx) -> Reply:
    """404 → shape (``reason`` required) → cancelled: no-op → completed: invalid_transition."""
    client, rec = _lookup(ctx)
    body = parse_body(m.BookingCancel, ctx.raw)
    if rec.status == BookingStatus.CANCELLED:
        return ctx.reply(rec.wire)
    if BookingStatus.CANCELLED not in BOOKING_TRANSITIONS[BookingStatus(rec.status)]:
        raise _transition_error(rec.status, BookingStatus.CANCELLED)
    world.release(ctx.state, rec.id)
    ctx.state.change_booking(
        client, rec, ctx.now_us, status=str(BookingStatus.CANCELLED), cancelled_reason=body.reason
    )
    ctx.committed("booking")
    return ctx.reply(rec.wire)


HANDLERS: dict[str, Handler] = {
    "create_booking": create_booking,
    "list_bookings": list_bookings,
    "get_booking": get_booking,
    "update_booking": update_booking,
    "cancel_booking": cancel_booking,
}
