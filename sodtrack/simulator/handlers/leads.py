"""Lead forms (shared) and submissions (per client)."""

from __future__ import annotations

from typing import Any

from sodtrack.contract import models as m
from sodtrack.contract.errors import Issue
from sodtrack.contract.models import FieldType
from sodtrack.simulator.errors import Detail, not_found, validation_error
from sodtrack.simulator.handlers.common import (
    EMAIL_RE,
    PHONE_RE,
    Ctx,
    Handler,
    Reply,
    duplicate,
    page_reply,
)
from sodtrack.simulator.store import FormRec, LeadRec
from sodtrack.simulator.validation import check_shape


async def list_forms(ctx: Ctx) -> Reply:
    return page_reply(ctx, [f.wire for f in ctx.state.shared.forms.values()])


def _form(ctx: Ctx) -> FormRec:
    form = ctx.state.shared.forms.get(ctx.path["form_id"])
    if form is None:
        raise not_found("Form")
    return form


async def get_form(ctx: Ctx) -> Reply:
    return ctx.reply(_form(ctx).wire)


def _field_issues(ctx: Ctx, form: FormRec, values: dict[str, Any]) -> list[Detail]:
    """Each value against its form field: ``""`` and ``null`` count as missing; a number is
    a JSON number (not a string, not a boolean); a select is one of its options; a postal
    code fits the API country's format (no coverage check)."""
    details: list[Detail] = []
    known = {f["name"]: f for f in form.fields}
    for name in values:
        if name not in known:
            details.append((f"fields.{name}", Issue.UNKNOWN_FIELD))
    for name, spec in known.items():
        where = f"fields.{name}"
        value = values.get(name)
        if value is None or value == "":
            if spec["required"]:
                details.append((where, Issue.REQUIRED))
            continue
        kind = spec["type"]
        if kind == FieldType.NUMBER:
            if isinstance(value, bool) or not isinstance(value, int | float):
                details.append((where, Issue.INVALID_TYPE))
            continue
        if not isinstance(value, str):
            details.append((where, Issue.INVALID_TYPE))
        elif (
            (kind == FieldType.EMAIL and not EMAIL_RE.match(value))
            or (kind == FieldType.PHONE and not PHONE_RE.match(value))
            or (kind == FieldType.POSTAL_CODE and not ctx.country.is_valid_postal_code(value))
            or (kind == FieldType.SELECT and value not in (spec["options"] or ()))
        ):
            details.append((where, Issue.INVALID_FORMAT))
    return details


async def submit_lead(ctx: Ctx) -> Reply:
    """404 → shape and fields (422, all issues) → 409 on a repeated external_reference."""
    form = _form(ctx)
    parsed, details = check_shape(m.LeadSubmission, ctx.raw)
    if parsed is not None:
        details = _field_issues(ctx, form, parsed.fields)
    if details or parsed is None:
        raise validation_error(details)
    client = ctx.client
    ext = parsed.external_reference
    if ext is not None:
        existing = client.lead_refs.get(ext)
        if existing is not None:
            raise duplicate("lead", existing)
    stamp = ctx.stamp()
    lid = ctx.state.new_id("lead")
    wire = {
        "id": lid,
        "form_id": form.id,
        "external_reference": ext,
        "status": "new",
        "created_at": ctx.sim.format_us(stamp),
    }
    client.leads[lid] = LeadRec(lid, ext, form.id, dict(parsed.fields), parsed.source, wire)
    if ext is not None:
        client.lead_refs[ext] = lid
    ctx.committed("lead")
    return ctx.reply(wire)


HANDLERS: dict[str, Handler] = {
    "list_forms": list_forms,
    "get_form": get_form,
    "submit_lead": submit_lead,
}
