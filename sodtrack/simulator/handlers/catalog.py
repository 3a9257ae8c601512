"""Catalog, coverage and availability: shared by every client, read-only."""

from __future__ import annotations

from datetime import timedelta

from sodtrack.contract import models as m
from sodtrack.contract.errors import ErrorCode, Issue
from sodtrack.contract.limits import AVAILABILITY_MAX_DAYS, MAX_HORIZON_DAYS, MIN_LEAD_TIME_S
from sodtrack.simulator.clock import US
from sodtrack.simulator.errors import ApiError, Detail, not_found, validation_error
from sodtrack.simulator.handlers.common import Ctx, Handler, Reply, bookable_offer, page_reply
from sodtrack.simulator.validation import check_query


async def list_categories(ctx: Ctx) -> Reply:
    q = ctx.query(m.ActiveQuery)
    items = [
        c.wire
        for c in ctx.state.shared.categories.values()
        if q.active is None or c.active == q.active
    ]
    return page_reply(ctx, items)


async def list_services(ctx: Ctx) -> Reply:
    q = ctx.query(m.ServiceQuery)
    items = [
        s.wire
        for s in ctx.state.shared.services.values()
        if (q.active is None or s.active == q.active)
        and (q.category_id is None or s.category_id == q.category_id)
    ]
    return page_reply(ctx, items)


async def list_variants(ctx: Ctx) -> Reply:
    shared = ctx.state.shared
    service = shared.services.get(ctx.path["service_id"])
    if service is None:
        raise not_found("Service")
    q = ctx.query(m.ActiveQuery)
    items = [
        shared.variants[v].wire
        for v in sorted(service.variant_ids)
        if q.active is None or shared.variants[v].active == q.active
    ]
    return page_reply(ctx, items)


async def list_coverage_zones(ctx: Ctx) -> Reply:
    q = ctx.query(m.ActiveQuery)
    items = [z.wire for z in ctx.state.shared.zones if q.active is None or z.active == q.active]
    return page_reply(ctx, items)


def _place_issues(ctx: Ctx, postal_code: str, service_id: str) -> list[Detail]:
    details: list[Detail] = []
    if not ctx.country.is_valid_postal_code(postal_code):
        details.append(("postal_code", Issue.INVALID_FORMAT))
    if service_id not in ctx.state.shared.services:
        details.append(("service_id", Issue.NOT_FOUND))
    return details


async def check_coverage(ctx: Ctx) -> Reply:
    q = ctx.query(m.CoverageCheckQuery)
    details = _place_issues(ctx, q.postal_code, q.service_id)
    if details:
        raise validation_error(details)
    zone = ctx.state.shared.serving_zone(q.postal_code, q.service_id)
    return ctx.reply(
        {
            "covered": zone is not None,
            "zone_id": zone.id if zone else None,
            "contractor_count": zone.contractor_count if zone else 0,
        }
    )


async def get_availability(ctx: Ctx) -> Reply:
    """Shape (all issues) → range (``range_too_wide``) → service and variant → coverage →
    the slots, each with the zone's capacity at that start (0 included)."""
    parsed, details = check_query(m.AvailabilityQuery, ctx.params)
    if parsed is not None:
        details = _place_issues(ctx, parsed.postal_code, parsed.service_id)
        if parsed.date_to < parsed.date_from:
            details.append(("date_to", Issue.OUT_OF_RANGE))
    if details or parsed is None:
        raise validation_error(details)
    q = parsed
    if (q.date_to - q.date_from).days + 1 > AVAILABILITY_MAX_DAYS:
        raise ApiError(
            ErrorCode.RANGE_TOO_WIDE,
            f"At most {AVAILABILITY_MAX_DAYS} days per request",
            [("date_to", Issue.OUT_OF_RANGE)],
        )
    shared = ctx.state.shared
    duration = bookable_offer(shared, q.service_id, q.variant_id).duration_min
    zone = shared.serving_zone(q.postal_code, q.service_id)
    if zone is None:
        raise ApiError(
            ErrorCode.POSTAL_CODE_NOT_COVERED,
            "No active zone offers the service at this postal code",
            [("postal_code", Issue.NOT_FOUND)],
        )
    earliest = ctx.now_us + MIN_LEAD_TIME_S * US
    latest = ctx.now_us + MAX_HORIZON_DAYS * 86_400 * US
    capacity = ctx.state.capacity
    slots = []
    horizon = ctx.sim.calendar.local_date(latest // US)
    day = q.date_from
    # Dates past the horizon hold no slot; stopping there also keeps far dates (year 9999)
    # from overflowing.
    while day <= min(q.date_to, horizon):
        for start in ctx.sim.calendar.starts_on(day):
            if earliest <= start * US <= latest:
                slots.append(
                    {
                        "start": ctx.sim.format_us(start * US),
                        "end": ctx.sim.format_us((start + duration * 60) * US),
                        "capacity": zone.contractor_count - capacity.used(zone.idx, start),
                    }
                )
        day += timedelta(days=1)
    return ctx.reply({"data": slots})


HANDLERS: dict[str, Handler] = {
    "list_categories": list_categories,
    "list_services": list_services,
    "list_variants": list_variants,
    "list_coverage_zones": list_coverage_zones,
    "check_coverage": check_coverage,
    "get_availability": get_availability,
}
