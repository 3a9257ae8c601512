"""Projects, stages, payments, documents and tasks (``projects:*`` scopes)."""

from __future__ import annotations

import hashlib
from typing import Any

from starlette.datastructures import UploadFile

from sodtrack.contract import models as m
from sodtrack.contract.errors import ErrorCode, Issue
from sodtrack.contract.limits import (
    DOCUMENT_FILE_FIELD,
    DOCUMENT_MAX_BYTES,
    STAGE_CHECKLIST,
)
from sodtrack.contract.models import (
    BookingStatus,
    ProjectStatus,
    StageStatus,
    TaskStatus,
)
from sodtrack.simulator.clock import to_us
from sodtrack.simulator.errors import ApiError, Detail, not_found, validation_error
from sodtrack.simulator.handlers.common import (
    MONEY_RE,
    Ctx,
    Handler,
    Reply,
    contact_issues,
    cursor_reply,
    duplicate,
    flagged_fields,
    json_object,
    page_reply,
)
from sodtrack.simulator.store import (
    ClientState,
    DocumentRec,
    PaymentRec,
    ProjectRec,
    StageRec,
    TaskRec,
)
from sodtrack.simulator.validation import check_query, check_shape

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
)


def _project(ctx: Ctx) -> tuple[ClientState, ProjectRec]:
    client = ctx.client
    project = client.projects.get(ctx.path["project_id"])
    if project is None:
        raise not_found("Project")
    return client, project


def _empty_body(body: dict[str, Any], details: list[Detail], nullable: tuple[str, ...]) -> None:
    """PATCH bodies: at least one field; ``null`` only where the field may be cleared."""
    if not body and not details:
        details.append(("body", Issue.REQUIRED))
    for name, value in body.items():
        if value is None and name not in nullable and (name, Issue.UNKNOWN_FIELD) not in details:
            details.append((name, Issue.INVALID_TYPE))


# ---------------------------------------------------------------- projects


async def create_project(ctx: Ctx) -> Reply:
    """Shape (with the bookings' contact checks) → 409 → address country (403)."""
    body = json_object(ctx.json)
    parsed, details = check_shape(m.ProjectCreate, ctx.raw)
    details += contact_issues(ctx, body, flagged_fields(details))
    if details or parsed is None:
        raise validation_error(details)
    client = ctx.client
    existing = client.project_refs.get(parsed.external_reference)
    if existing is not None:
        raise duplicate("project", existing)
    if parsed.address.country.lower() != ctx.country.code:
        raise ApiError(
            ErrorCode.COUNTRY_MISMATCH,
            f"address.country must be {ctx.country.code!r}",
            [("address.country", Issue.OUT_OF_RANGE)],
        )
    stamp = ctx.stamp()
    project = ProjectRec(
        id=ctx.state.new_id("prj"),
        external_reference=parsed.external_reference,
        name=parsed.name,
        customer=parsed.customer.model_dump(mode="json"),
        address=parsed.address.model_dump(mode="json"),
        status=ProjectStatus.OPEN,
        total_minor=0,
        paid_minor=0,
        created_us=stamp,
        updated_us=stamp,
    )
    ctx.state.add_project(client, project)
    ctx.committed("project")
    return ctx.reply(project.wire(ctx.country))


async def list_projects(ctx: Ctx) -> Reply:
    q = ctx.query(m.UpdatedSinceQuery)
    client = ctx.client
    filters: dict[str, Any] = {}
    if q.updated_since is not None:
        filters["updated_since"] = to_us(q.updated_since)
    country = ctx.country
    return cursor_reply(
        ctx,
        client.project_index,
        filters,
        lambda pid: ctx.sim.pack(client.projects[pid].wire(country)),
    )


def _detail(ctx: Ctx, client: ClientState, project: ProjectRec) -> dict[str, Any]:
    stages = sorted((client.stages[s] for s in project.stage_ids), key=lambda s: s.sequence)
    return {**project.wire(ctx.country), "stages": [s.wire() for s in stages]}


async def get_project(ctx: Ctx) -> Reply:
    client, project = _project(ctx)
    return ctx.reply(_detail(ctx, client, project))


async def update_project(ctx: Ctx) -> Reply:
    client, project = _project(ctx)
    body = json_object(ctx.json)
    parsed, details = check_shape(m.ProjectUpdate, ctx.raw)
    _empty_body(body, details, ())
    if details or parsed is None:
        raise validation_error(details)
    changed = False
    if parsed.name is not None and parsed.name != project.name:
        project.name, changed = parsed.name, True
    if parsed.status is not None and parsed.status != project.status:
        project.status, changed = str(parsed.status), True
    if changed:
        ctx.state.touch_project(client, project, ctx.now_us)
        ctx.committed("project")
    return ctx.reply(project.wire(ctx.country))


# ---------------------------------------------------------------- stages


def _stage_bookings(
    client: ClientState, project: ProjectRec, booking_ids: list[str], stage_id: str | None
) -> list[str]:
    """The stage checks on a booking set, in the contract's order: every booking in the
    project and not cancelled (422, all issues), then none held by another stage (409)."""
    unique = list(dict.fromkeys(booking_ids))
    details: list[Detail] = []
    for i, bid in enumerate(booking_ids):
        rec = client.bookings.get(bid)
        if rec is None or rec.project_id != project.id:
            details.append((f"booking_ids[{i}]", Issue.NOT_IN_PROJECT))
        elif rec.status == BookingStatus.CANCELLED:
            details.append((f"booking_ids[{i}]", Issue.BOOKING_CANCELLED))
    if details:
        raise validation_error(details, "Some bookings cannot join this stage")
    for bid in unique:
        holder = client.bookings[bid].stage_id
        if holder is not None and holder != stage_id:
            raise ApiError(
                ErrorCode.BOOKING_ALREADY_STAGED,
                f"Booking {bid} is already in another stage",
                existing_id=holder,
            )
    return unique


def _restage(ctx: Ctx, client: ClientState, booking_ids: list[str], stage_id: str | None) -> None:
    for bid in booking_ids:
        rec = client.bookings[bid]
        if rec.stage_id != stage_id:
            ctx.state.change_booking(client, rec, ctx.now_us, stage_id=stage_id)


async def create_stage(ctx: Ctx) -> Reply:
    """404 → shape → 409 duplicate_stage → bookings (422, then 409 booking_already_staged);
    creates the stage's task checklist; the bookings' ``stage_id`` follows."""
    client, project = _project(ctx)
    parsed, details = check_shape(m.StageCreate, ctx.raw)
    if details or parsed is None:
        raise validation_error(details)
    existing = client.stage_by_sequence.get((project.id, parsed.sequence))
    if existing is not None:
        raise ApiError(
            ErrorCode.DUPLICATE_STAGE,
            f"The project already has a stage with sequence {parsed.sequence}",
            existing_id=existing,
        )
    members = _stage_bookings(client, project, parsed.booking_ids, None)
    stamp = ctx.stamp()
    stage = StageRec(
        id=ctx.state.new_id("stg"),
        project_id=project.id,
        name=parsed.name,
        sequence=parsed.sequence,
        status=StageStatus.PENDING,
        booking_ids=members,
        created_us=stamp,
        updated_us=stamp,
    )
    client.stages[stage.id] = stage
    client.stage_by_sequence[(project.id, stage.sequence)] = stage.id
    project.stage_ids.append(stage.id)
    _restage(ctx, client, members, stage.id)
    for title in STAGE_CHECKLIST:
        task = TaskRec(
            id=ctx.state.new_id("tsk"),
            project_id=project.id,
            stage_id=stage.id,
            title=title,
            status=TaskStatus.TODO,
            notes=None,
            updated_us=ctx.stamp(),
        )
        client.tasks[task.id] = task
        project.task_ids.append(task.id)
    ctx.state.touch_project(client, project, ctx.now_us)
    ctx.committed("stage")
    return ctx.reply(stage.wire())


async def update_stage(ctx: Ctx) -> Reply:
    client, project = _project(ctx)
    stage = client.stages.get(ctx.path["stage_id"])
    if stage is None or stage.project_id != project.id:
        raise not_found("Stage")
    body = json_object(ctx.json)
    parsed, details = check_shape(m.StageUpdate, ctx.raw)
    _empty_body(body, details, ())
    if details or parsed is None:
        raise validation_error(details)
    changed = False
    if parsed.booking_ids is not None:
        members = _stage_bookings(client, project, parsed.booking_ids, stage.id)
        if members != stage.booking_ids:
            removed = [b for b in stage.booking_ids if b not in members]
            _restage(ctx, client, removed, None)
            _restage(ctx, client, members, stage.id)
            stage.booking_ids, changed = members, True
    if parsed.name is not None and parsed.name != stage.name:
        stage.name, changed = parsed.name, True
    if parsed.status is not None and parsed.status != stage.status:
        stage.status, changed = str(parsed.status), True
    if changed:
        stage.updated_us = ctx.stamp()
        ctx.state.touch_project(client, project, ctx.now_us)
        ctx.committed("stage")
    return ctx.reply(stage.wire())


# ---------------------------------------------------------------- payments


async def create_payment(ctx: Ctx) -> Reply:
    """404 → shape → 409 → currency_mismatch → minor units and > 0 → stage is the
    project's → overpayment (amount above total − paid)."""
    client, project = _project(ctx)
    body = json_object(ctx.json)
    parsed, details = check_shape(m.PaymentCreate, ctx.raw)
    amount_text = body.get("amount")
    flagged = flagged_fields(details)
    if isinstance(amount_text, str) and "amount" not in flagged and not MONEY_RE.match(amount_text):
        details.append(("amount", Issue.INVALID_FORMAT))
    if details or parsed is None:
        raise validation_error(details)
    existing = client.payment_refs.get(parsed.external_reference)
    if existing is not None:
        raise duplicate("payment", existing)
    country = ctx.country
    if parsed.currency != country.currency:
        raise ApiError(
            ErrorCode.CURRENCY_MISMATCH,
            f"The project's currency is {country.currency}",
            [("currency", Issue.INVALID_FORMAT)],
        )
    assert isinstance(amount_text, str)
    if not country.has_exact_minor_units(amount_text):
        raise validation_error(
            [("amount", Issue.INVALID_FORMAT)],
            f"{country.currency} amounts carry exactly {country.minor_units} decimals",
        )
    amount_minor = int(parsed.amount.scaleb(country.minor_units))
    if amount_minor <= 0:
        raise validation_error([("amount", Issue.OUT_OF_RANGE)], "The amount must be positive")
    if parsed.stage_id is not None:
        stage = client.stages.get(parsed.stage_id)
        if stage is None or stage.project_id != project.id:
            raise validation_error([("stage_id", Issue.NOT_FOUND)], "Unknown stage")
    if amount_minor > project.total_minor - project.paid_minor:
        raise ApiError(
            ErrorCode.OVERPAYMENT,
            "The amount exceeds the project's balance",
            [("amount", Issue.OUT_OF_RANGE)],
        )
    try:
        paid_at = ctx.sim.format_us(to_us(parsed.paid_at))
    except (OverflowError, ValueError):  # e.g. year 1 with a positive offset: before year 1 UTC
        raise validation_error([("paid_at", Issue.OUT_OF_RANGE)]) from None
    stamp = ctx.stamp()
    pid = ctx.state.new_id("pay")
    wire = {
        "id": pid,
        "external_reference": parsed.external_reference,
        "project_id": project.id,
        "stage_id": parsed.stage_id,
        "amount": ctx.sim.money(amount_minor),
        "currency": country.currency,
        "method": str(parsed.method),
        "paid_at": paid_at,
        "created_at": ctx.sim.format_us(stamp),
    }
    client.payments[pid] = PaymentRec(
        pid, parsed.external_reference, project.id, amount_minor, wire
    )
    client.payment_refs[parsed.external_reference] = pid
    project.payment_ids.append(pid)
    project.paid_minor += amount_minor
    ctx.state.touch_project(client, project, ctx.now_us)
    ctx.committed("payment")
    return ctx.reply(wire)


async def list_payments(ctx: Ctx) -> Reply:
    client, project = _project(ctx)
    return page_reply(ctx, [client.payments[p].wire for p in sorted(project.payment_ids)])


# ---------------------------------------------------------------- documents


async def upload_document(ctx: Ctx) -> Reply:
    """404 → form shape (422) → size (413) → file type by its bytes (422) → 409 →
    stage is the project's (422). Only the metadata is kept."""
    client, project = _project(ctx)
    try:
        form = await ctx.request.form(max_files=4, max_fields=16)
    except Exception:  # python-multipart's and starlette's parse errors alike
        raise ApiError(ErrorCode.MALFORMED_REQUEST, "Unreadable multipart body") from None
    details: list[Detail] = []
    values: dict[str, Any] = {}
    for key, value in form.multi_items():
        if key in values:
            details.append((key, Issue.INVALID_FORMAT))
        else:
            values[key] = value
    upload = values.pop(DOCUMENT_FILE_FIELD, None)
    if upload is None:
        details.append((DOCUMENT_FILE_FIELD, Issue.REQUIRED))
    elif not isinstance(upload, UploadFile):
        details.append((DOCUMENT_FILE_FIELD, Issue.INVALID_TYPE))
    fields: dict[str, str] = {}
    for key, value in values.items():
        if isinstance(value, str):
            fields[key] = value
        elif key in m.DocumentUpload.model_fields:
            details.append((key, Issue.INVALID_TYPE))
        else:
            details.append((key, Issue.UNKNOWN_FIELD))
    meta, shape = check_query(m.DocumentUpload, fields)
    details += shape
    extra = sorted(set(fields) - set(m.DocumentUpload.model_fields))
    details += [(key, Issue.UNKNOWN_FIELD) for key in extra]
    if details or meta is None or not isinstance(upload, UploadFile):
        await form.close()
        raise validation_error(details)
    content = await upload.read(DOCUMENT_MAX_BYTES + 1)
    filename = (upload.filename or "document").replace("\\", "/").rsplit("/", 1)[-1]
    await form.close()
    if len(content) > DOCUMENT_MAX_BYTES:
        raise ApiError(
            ErrorCode.PAYLOAD_TOO_LARGE,
            f"Documents are at most {DOCUMENT_MAX_BYTES} bytes",
            [(DOCUMENT_FILE_FIELD, Issue.OUT_OF_RANGE)],
        )
    if not any(content.startswith(magic) for magic, _ in _MAGIC):
        raise validation_error(
            [(DOCUMENT_FILE_FIELD, Issue.INVALID_FORMAT)], "Only PDF, PNG or JPEG"
        )
    ext = meta.external_reference
    if ext is not None:
        existing = client.document_refs.get(ext)
        if existing is not None:
            raise duplicate("document", existing)
    stage_id = meta.stage_id
    if stage_id is not None:
        stage = client.stages.get(stage_id)
        if stage is None or stage.project_id != project.id:
            raise validation_error([("stage_id", Issue.NOT_FOUND)], "Unknown stage")
    stamp = ctx.stamp()
    did = ctx.state.new_id("doc")
    wire = {
        "id": did,
        "external_reference": ext,
        "project_id": project.id,
        "stage_id": stage_id,
        "kind": str(meta.kind),
        "filename": filename,
        "size_bytes": len(content),
        "sha256": hashlib.sha256(content).hexdigest(),
        "created_at": ctx.sim.format_us(stamp),
    }
    client.documents[did] = DocumentRec(
        did, ext if isinstance(ext, str) else None, project.id, wire
    )
    if isinstance(ext, str):
        client.document_refs[ext] = did
    project.document_ids.append(did)
    ctx.committed("document")
    return ctx.reply(wire)


async def list_documents(ctx: Ctx) -> Reply:
    client, project = _project(ctx)
    return page_reply(ctx, [client.documents[d].wire for d in sorted(project.document_ids)])


# ---------------------------------------------------------------- tasks


async def list_tasks(ctx: Ctx) -> Reply:
    client, project = _project(ctx)
    q = ctx.query(m.TaskQuery)
    since = to_us(q.updated_since) if q.updated_since is not None else None
    items = []
    for tid in sorted(project.task_ids):
        task = client.tasks[tid]
        if q.stage_id is not None and task.stage_id != q.stage_id:
            continue
        if since is not None and task.updated_us < since:
            continue
        items.append(task.wire())
    return page_reply(ctx, items)


async def update_task(ctx: Ctx) -> Reply:
    client, project = _project(ctx)
    task = client.tasks.get(ctx.path["task_id"])
    if task is None or task.project_id != project.id:
        raise not_found("Task")
    body = json_object(ctx.json)
    parsed, details = check_shape(m.TaskUpdate, ctx.raw)
    _empty_body(body, details, ("notes",))
    if details or parsed is None:
        raise validation_error(details)
    changed = False
    if parsed.status is not None and parsed.status != task.status:
        task.status, changed = str(parsed.status), True
    if "notes" in body and parsed.notes != task.notes:
        task.notes, changed = parsed.notes, True
    if changed:
        task.updated_us = ctx.stamp()
        ctx.committed("task")
    return ctx.reply(task.wire())


HANDLERS: dict[str, Handler] = {
    "create_project": create_project,
    "list_projects": list_projects,
    "get_project": get_project,
    "update_project": update_project,
    "create_stage": create_stage,
    "update_stage": update_stage,
    "create_payment": create_payment,
    "list_payments": list_payments,
    "upload_document": upload_document,
    "list_documents": list_documents,
    "list_tasks": list_tasks,
    "update_task": update_task,
}
