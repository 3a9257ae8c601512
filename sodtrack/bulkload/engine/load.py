"""Executing the load plan: one write at a time under the in-flight protocol.

Every write goes through :meth:`Loader.attempt`: the ledger says ``in_flight`` (committed)
before the request and ``done`` with the Sodtrack id (committed) after. A step found
``in_flight`` at the start of a run was interrupted (``kill -9``) between the two; it is
*reconciled*, never blindly repeated: the client's creates look the record up by
``external_reference`` (bookings, payments) or re-POST, which the contract answers with a
``409`` naming the existing record (projects; stages by ``(project, sequence)``). A record
found existing when this upload had already sent it (in flight at a kill, or failed
transiently after an ambiguous last attempt) is counted as *created by this upload*: its only
plausible author is that earlier request (a record that existed before the first attempt
answers that attempt with a ``409``, and the step is then done as ``already_existed``). So
``cancel`` undoes it too, and the run that completes it reports it ``created``.

Errors, from the client's classification:

* ``RetryExhausted`` / ``RetryableError`` → ``failed_transient``: the client already retried
  with backoff; the step is retried by the next run of the same file;
* ``RejectedError`` → ``rejected`` with the API's code and a plain-language message and fix
  (:mod:`.messages`); never retried automatically. ``NeedsAPerson`` (``slot_unavailable``)
  is a rejection of kind ``conflict``: not wrong input, a person decides;
* ``ConflictError`` (a 409 the client could not resolve, e.g. ``booking_already_staged``,
  or a payment reference held by another project) → ``rejected``;
* ``AuthError`` → ``failed_transient`` for that step and *halt*: no further write is sent
  (they would all fail the same way); fix the credentials and re-run;
* anything else is a bug: it propagates, and the ledger still knows what was sent.

Corrections: a record that already exists (known before the run, or answered by a ``409`` /
found by reference) is compared with its row (:mod:`.compare`, :meth:`Loader.settle`):
identical → ``done``; only fields the API can change differ (a booking's start and notes, a
project's or stage's name; a booking's status, walked one ``PATCH`` per step of the
contract's graph after the fields, or cancelled with the row's reason, see
:meth:`Loader._correct_booking`) → ``PATCH`` with absolute values under the same in-flight
protocol
(the step is marked ``in_flight`` with the record's id and ``{"existing": true, "update":
[...]}`` first, so a lost answer is settled by the next run reading the record, and the record
is never taken for one this upload created), then ``done`` with ``updated_run``: the row is
``updated``; a refused PATCH (``slot_unavailable`` for a new start) rejects the row with the
API's reason; any other difference → ``rejected`` (``correction_not_allowed``) naming every
differing field with both values, nothing applied.

A write not attempted because a parent failed is ``skipped`` in the ledger, naming the parent
and its cause; it is re-evaluated on the next run (and then succeeds if the cause was
transient).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Literal, Protocol

from sodtrack.bulkload.engine.catalog import CatalogClient
from sodtrack.bulkload.engine.checks import Checked, row_context
from sodtrack.bulkload.engine.compare import Comparison, compare, describe
from sodtrack.bulkload.engine.existing import (
    ExistingClient,
    Found,
    booking_have,
    booking_want,
    payment_have,
    payment_want,
    project_have,
    project_want,
)
from sodtrack.bulkload.engine.ledger import Ledger, StepRecord
from sodtrack.bulkload.engine.plan import (
    BookingLoad,
    LoadPlan,
    PaymentLoad,
    ProjectLoad,
    StageLoad,
    StepRef,
)
from sodtrack.bulkload.engine.verdicts import explanation_of, retries
from sodtrack.bulkload.messages import (
    explain_api_error,
    explain_check,
    explain_correction_failed,
    explain_correction_refused,
    explain_dependency,
    explain_transient,
)
from sodtrack.bulkload.outcomes import ErrorKind, Explanation
from sodtrack.bulkload.reading.rows import BookingRow
from sodtrack.client.errors import (
    ApiError,
    AuthError,
    ConflictError,
    ContractViolation,
    NeedsAPerson,
    RejectedError,
    RetryableError,
)
from sodtrack.client.results import WriteResult
from sodtrack.contract import models as m
from sodtrack.contract.countries import Country
from sodtrack.contract.models import booking_status_path

PhaseProgress = Callable[[str, int, int], None]
"""``progress(phase, done, total)``; phases ``validate`` and ``load``."""


class LoaderClient(CatalogClient, ExistingClient, Protocol):
    """What the engine needs of :class:`~sodtrack.client.SodtrackClient`."""

    async def update_booking(self, booking_id: str, body: m.BookingUpdate) -> m.Booking: ...
    async def update_project(self, project_id: str, body: m.ProjectUpdate) -> m.Project: ...
    async def create_project(self, body: m.ProjectCreate) -> WriteResult[m.Project]: ...
    async def create_booking(self, body: m.BookingCreate) -> WriteResult[m.Booking]: ...
    async def create_stage(self, project_id: str, body: m.StageCreate) -> WriteResult[m.Stage]: ...
    async def update_stage(
        self, project_id: str, stage_id: str, body: m.StageUpdate
    ) -> m.Stage: ...
    async def create_payment(
        self, project_id: str, body: m.PaymentCreate
    ) -> WriteResult[m.Payment]: ...
    async def cancel_booking(self, booking_id: str, reason: str) -> m.Booking: ...


def explain_exception(exc: ApiError, step: str, ctx: Mapping[str, Any]) -> Explanation:
    """A client error as the results file tells it."""
    if isinstance(exc, RetryableError | ContractViolation):
        return explain_transient(step=step, reason=exc.message, context=ctx)
    if isinstance(exc, RejectedError | ConflictError | AuthError):
        return explain_api_error(
            exc.code,
            step=step,
            api_message=exc.api_message,
            details=[(d.field, d.issue) for d in exc.details],
            existing_id=exc.existing_id,
            context=ctx,
        )
    return explain_transient(step=step, reason=str(exc), context=ctx)


FailState = Literal["failed_transient", "rejected", "skipped"]


def state_for(exc: ApiError) -> FailState:
    """Ledger state of a step that raised: only rejections are final."""
    if isinstance(exc, RejectedError | ConflictError):
        return "rejected"
    return "failed_transient"


@dataclass
class _Halt:
    why: Explanation


@dataclass(frozen=True, slots=True)
class Correction:
    """How a step compares an existing record with its row, and applies a difference."""

    compare: Callable[[Any], Comparison]
    patch: Callable[[str, Comparison], Awaitable[Any]] | None = None


class Loader:
    """One run's writes. Keeps an in-memory mirror of the ledger's steps for decisions; the
    ledger itself is written through at every transition."""

    def __init__(
        self,
        *,
        rows: list[BookingRow],
        country: Country,
        client: LoaderClient,
        ledger: Ledger,
        upload_id: str,
        run_no: int,
        plan: LoadPlan,
        checked: Checked,
        states: dict[StepRef, StepRecord],
        concurrency: int,
        progress: PhaseProgress | None,
        found: Found | None = None,
    ) -> None:
        self.found = found or Found()
        self.rows = rows
        self.country = country
        self.client = client
        self.ledger = ledger
        self.upload_id = upload_id
        self.run_no = run_no
        self.plan = plan
        self.checked = checked
        self.states = states
        self.units = asyncio.Semaphore(concurrency)
        self.progress = progress
        self.halted: _Halt | None = None
        self.done_units = 0
        self.total_units = len(plan.projects) + len(plan.plain)

    # ----------------------------------------------------------- ledger, mirrored

    def _rec(self, ref: StepRef) -> StepRecord:
        rec = self.states.get(ref)
        if rec is None:
            rec = StepRecord(self.upload_id, ref[0], ref[1], "pending")
            self.states[ref] = rec
        return rec

    def _set(self, ref: StepRef, **changes: Any) -> StepRecord:
        rec = replace(self._rec(ref), **changes)
        self.states[ref] = rec
        return rec

    def done(self, ref: StepRef, sodtrack_id: str, created: bool, data: Mapping[str, Any]) -> None:
        kind, key = ref
        self.ledger.mark_done(
            self.upload_id,
            kind,
            key,
            sodtrack_id=sodtrack_id,
            created=created,
            run_no=self.run_no,
            data=data,
        )
        self._set(
            ref,
            state="done",
            sodtrack_id=sodtrack_id,
            created=created,
            done_run=self.run_no,
            data=dict(data),
            why=None,
        )

    def fail(
        self,
        ref: StepRef,
        state: FailState,
        why: Explanation,
        *,
        kind: ErrorKind | None = None,
        sodtrack_id: str | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        k, key = ref
        if kind is not None:
            why = replace(why, kind=kind)
        self.ledger.mark_failed(
            self.upload_id, k, key, state=state, why=why, sodtrack_id=sodtrack_id, data=data
        )
        changes: dict[str, Any] = {"state": state, "why": why}
        if sodtrack_id is not None:
            changes["sodtrack_id"] = sodtrack_id
        if data is not None:
            changes["data"] = dict(data)
        self._set(ref, **changes)

    def skip(self, ref: StepRef, parent: StepRef) -> None:
        """Not attempted: ``parent`` is not done. The cause is recorded with the parent's."""
        prec = self._rec(parent)
        why = explain_dependency(
            parent_step=parent[0],
            parent_key=parent[1],
            parent=explanation_of(prec),
            own_step=ref[0],
        )
        self.fail(ref, "skipped", why, kind="dependency", data={"retry": retries(prec)})

    # ----------------------------------------------------------- one write

    async def attempt(
        self,
        ref: StepRef,
        call: Callable[[], Awaitable[WriteResult[Any]]],
        ctx: Mapping[str, Any],
        data: Callable[[Any], dict[str, Any]] = lambda _r: {},
        correct: Correction | None = None,
    ) -> str | None:
        """Run one create under the in-flight protocol; the Sodtrack id, or None if failed.

        A record found existing (``409``, or found by reference) is compared with the row
        through ``correct`` (:meth:`settle`): identical, updated, or refused."""
        rec = self._rec(ref)
        if rec.state == "done":
            return rec.sodtrack_id
        if rec.state == "rejected":
            return None
        if self.halted is not None:
            self.fail(ref, "failed_transient", self.halted.why)
            return None
        # An update of an existing record left in flight is not a create of ours.
        sent_before = rec.attempts > 0 and not rec.data.get("existing")
        self.ledger.mark_in_flight(self.upload_id, ref[0], ref[1])
        self._set(ref, state="in_flight", attempts=rec.attempts + 1)
        try:
            result = await call()
        except ApiError as exc:
            why = explain_exception(exc, ref[0], ctx)
            if isinstance(exc, NeedsAPerson):
                why = replace(why, kind="conflict")
            self.fail(ref, state_for(exc), why)
            if isinstance(exc, AuthError):
                self.halted = _Halt(why)
            return None
        # Ours: seen created, or reconciled after our own ambiguous attempt, or found existing
        # after an earlier run of this upload had sent it (see the module docstring).
        created = result.created or result.reconciled or sent_before
        if not result.created and correct is not None and result.resource is not None:
            return await self.settle(ref, result.id, result.resource, correct, ctx, data, created)
        self.done(ref, result.id, created, data(result.resource))
        return result.id

    async def settle(
        self,
        ref: StepRef,
        sodtrack_id: str,
        record: Any,
        correct: Correction,
        ctx: Mapping[str, Any],
        data: Callable[[Any], dict[str, Any]],
        created: bool = False,
    ) -> str | None:
        """An existing record against the row: identical → done; patchable differences →
        ``PATCH`` under the in-flight protocol (absolute values: repeating it is harmless),
        done and marked updated by this run; anything else → rejected naming the fields."""
        comparison = correct.compare(record)
        verdict = comparison.verdict
        if verdict == "identical":
            pending = self._rec(ref).data.get("update")
            if pending:
                # An earlier run sent this update and lost the answer: it was applied, and
                # the run that completes the step reports it (as with a create).
                update = {"updated_run": self.run_no, "updated": pending}
                self.done(ref, sodtrack_id, False, {**data(record), **update})
            else:
                self.done(ref, sodtrack_id, created, data(record))
            return sodtrack_id
        differing = describe(comparison.differences, self.country.tz)
        if verdict == "refuse":
            why = explain_correction_refused(
                resource=comparison.resource,
                reference=ref[1] if ref[0] != "stage" else str(ctx.get("stage")),
                sodtrack_id=sodtrack_id,
                differences=differing,
                cancelled=comparison.cancelled,
                status_refused=comparison.status_refused is not None,
                fields=comparison.changed_fields,
            )
            self.fail(ref, "rejected", why, sodtrack_id=sodtrack_id, data={"existing": True})
            return None
        if self.halted is not None:
            self.fail(ref, "failed_transient", self.halted.why, sodtrack_id=sodtrack_id)
            return None
        fields = list(comparison.changed_fields)
        note = {"existing": True, "update": fields}
        self.ledger.mark_in_flight(
            self.upload_id, ref[0], ref[1], sodtrack_id=sodtrack_id, data=note
        )
        self._set(ref, state="in_flight", sodtrack_id=sodtrack_id, data=note)
        assert correct.patch is not None, "a patchable difference without a PATCH"
        try:
            updated = await correct.patch(sodtrack_id, comparison)
        except ApiError as exc:
            why = explain_exception(exc, ref[0], ctx)
            if isinstance(exc, NeedsAPerson):
                why = replace(why, kind="conflict")
            why = explain_correction_failed(
                resource=comparison.resource,
                reference=ref[1],
                fields=" and ".join(fields),
                why=why,
            )
            self.fail(ref, state_for(exc), why, sodtrack_id=sodtrack_id, data=note)
            if isinstance(exc, AuthError):
                self.halted = _Halt(why)
            return None
        self.done(
            ref,
            sodtrack_id,
            False,
            {**data(updated), "updated_run": self.run_no, "updated": fields},
        )
        return sodtrack_id

    # ----------------------------------------------------------- units of work

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            for p in self.plan.projects:
                tg.create_task(self._unit(partial(self._project, p)))
            for b in self.plan.plain:
                tg.create_task(self._unit(partial(self._booking, b, None)))

    async def _unit(self, work: Callable[[], Awaitable[None]]) -> None:
        # The coroutine is made inside the gate: a unit cancelled while waiting (a sibling
        # raised) leaves no never-awaited coroutine behind.
        async with self.units:
            await work()
        self.done_units += 1
        if self.progress is not None:
            self.progress("load", self.done_units, self.total_units)

    async def _project(self, p: ProjectLoad) -> None:
        src = self.rows[p.source_position]
        ctx = row_context(src, self.country)
        body = m.ProjectCreate(
            external_reference=p.reference,
            name=p.name,
            customer=self._customer(src),
            address=self._address(src),
        )
        want = project_want(src, p.name)
        correct = Correction(
            lambda project: compare("project", want, project_have(project)),
            lambda pid, c: self.client.update_project(pid, m.ProjectUpdate(**c.patch_body())),
        )
        known = self.found.projects.get(p.reference)
        project_id: str | None
        if known is not None and self._rec(p.step.ref).state not in ("done", "rejected"):
            project_id = await self.settle(p.step.ref, known.id, known, correct, ctx, lambda _r: {})
        else:
            project_id = await self.attempt(
                p.step.ref, lambda: self.client.create_project(body), ctx, correct=correct
            )
        if project_id is None:
            for b in p.bookings:
                self._skip_if_open(b.step.ref, p.step.ref)
            for s in p.stages:
                self._skip_if_open(s.step.ref, p.step.ref)
            for y in p.payments:
                self._skip_if_open(y.step.ref, p.step.ref)
            return
        await asyncio.gather(*(self._booking(b, project_id) for b in p.bookings))
        for s in p.stages:
            await self._stage(s, project_id)
        for y in p.payments:
            await self._payment(y, project_id)

    def _skip_if_open(self, ref: StepRef, parent: StepRef) -> None:
        if self._rec(ref).state not in ("done", "rejected"):
            self.skip(ref, parent)

    async def _booking(self, b: BookingLoad, project_id: str | None) -> None:
        row = self.rows[b.position]
        resolved = self.checked.resolved.get(b.position)
        rec = self._rec(b.step.ref)
        if rec.state in ("done", "rejected"):
            return
        unchecked = self.checked.unchecked.get(b.position)
        if unchecked is not None:
            # Its checks could not be read in this run: not sent, retried by the next run.
            self.fail(
                b.step.ref,
                "failed_transient",
                unchecked,
                kind="transient",
                data={"phase": "validation"},
            )
            return
        if rec.data.get("phase") == "validation":
            # Held back by its checks in an earlier run; checked now, so a failure from here
            # on is the booking's own.
            self.ledger.update_step_data(self.upload_id, b.step.ref[0], b.step.ref[1], {})
            self._set(b.step.ref, data={})
        ctx = row_context(row, self.country)
        want = booking_want(row)
        projects = {project_id: row.project_reference or ""} if project_id else {}
        correct = Correction(
            lambda bk: compare("booking", want, booking_have(bk, self.checked.catalog, projects)),
            partial(self._correct_booking, reason=row.cancellation_reason),
        )

        def price(bk: m.Booking) -> dict[str, Any]:
            return {"price": f"{bk.price:f}", "currency": bk.currency}

        known = self.found.bookings.get(row.external_reference)
        if known is not None:
            await self.settle(b.step.ref, known.id, known, correct, ctx, price)
            return
        if resolved is None:
            # Sent by an earlier run, and its SKU no longer resolves: the booking may exist,
            # so this is not final; a person should look (the message says what changed).
            why = explain_check("unknown_service_sku", row_context(row, self.country))
            self.fail(b.step.ref, "failed_transient", why, kind="transient")
            return
        body = m.BookingCreate(
            external_reference=row.external_reference,
            service_id=resolved.service.id,
            variant_id=resolved.variant.id if resolved.variant else None,
            scheduled_start=row.scheduled_start,  # type: ignore[arg-type]  # valid rows have one
            customer=self._customer(row),
            address=self._address(row),
            notes=row.notes,
            project_id=project_id,
        )
        await self.attempt(
            b.step.ref, lambda: self.client.create_booking(body), ctx, price, correct
        )

    async def _correct_booking(
        self, booking_id: str, c: Comparison, *, reason: str | None
    ) -> m.Booking:
        """Apply a booking's correction: the fields first (a new start needs a status that
        may still be rescheduled), then the status one step of the contract's graph at a
        time, each an absolute value (a step repeated after a lost answer is a no-op; the next
        run reads where it was left and walks on from there)."""
        record: m.Booking | None = None
        body = c.patch_body()
        if body:
            record = await self.client.update_booking(booking_id, m.BookingUpdate(**body))
        move = c.status_move
        if move is not None:
            here, there = move
            if record is not None:
                here = record.status
            steps = booking_status_path(here, there)
            for step in steps if steps is not None else (there,):  # refused by the API
                if step == m.BookingStatus.CANCELLED:
                    assert reason, "a row saying cancelled always has its reason (a row check)"
                    record = await self.client.cancel_booking(booking_id, reason)
                else:
                    update = m.BookingUpdate(status=step)
                    record = await self.client.update_booking(booking_id, update)
        assert record is not None, "an update verdict without a change"
        return record

    async def _stage(self, s: StageLoad, project_id: str) -> None:
        ref = s.step.ref
        rec = self._rec(ref)
        if rec.state == "rejected":
            return
        members = [self._rec(w) for w in s.step.waits_for]
        unsettled = next((w for w in members if w.state not in ("done", "rejected")), None)
        want = [w.sodtrack_id for w in members if w.state == "done" and w.sodtrack_id]
        if not want:
            if rec.state != "done":
                cause = unsettled or members[0]
                self.skip(ref, (cause.kind, cause.key))
            return
        ctx = {
            **row_context(self.rows[s.positions[0]], self.country),
            "stage": s.sequence,
            "project": s.project_reference,
        }
        if rec.state == "done":
            have = [str(x) for x in rec.data.get("booking_ids", [])]
            if set(want) <= set(have):
                return
            await self._extend_stage(ref, project_id, rec.sodtrack_id or "", have, want, ctx, rec)
            return
        body = m.StageCreate(name=s.name, sequence=s.sequence, booking_ids=want)
        stage_holder: dict[str, list[str]] = {}

        def note(stage: m.Stage) -> dict[str, Any]:
            stage_holder["have"] = list(stage.booking_ids)
            return {"booking_ids": sorted(stage.booking_ids)}

        correct = Correction(
            lambda st: compare("stage", {"stage_name": s.name}, {"stage_name": st.name}),
            lambda sid, c: self.client.update_stage(
                project_id, sid, m.StageUpdate(**c.patch_body())
            ),
        )
        stage_id = await self.attempt(
            ref, lambda: self.client.create_stage(project_id, body), ctx, note, correct
        )
        if stage_id is None:
            return
        have = stage_holder.get("have", want)
        if not set(want) <= set(have):
            # An existing stage (an earlier upload, or an earlier partial run) without some of
            # our bookings: add them, keeping what it holds.
            await self._extend_stage(ref, project_id, stage_id, have, want, ctx, self._rec(ref))

    async def _extend_stage(
        self,
        ref: StepRef,
        project_id: str,
        stage_id: str,
        have: list[str],
        want: list[str],
        ctx: Mapping[str, Any],
        rec: StepRecord,
    ) -> None:
        ids = sorted(set(have) | set(want))
        try:
            stage = await self.client.update_stage(
                project_id, stage_id, m.StageUpdate(booking_ids=ids)
            )
        except ApiError as exc:
            why = explain_exception(exc, "stage", ctx)
            self.fail(ref, state_for(exc), why, sodtrack_id=stage_id, data=rec.data)
            return
        data = {"booking_ids": sorted(stage.booking_ids)}
        if rec.state == "done":
            # Still the run that created it, as far as the rows already in it are concerned.
            self.ledger.update_step_data(self.upload_id, ref[0], ref[1], data)
            self._set(ref, data=data)
        else:
            self.done(ref, stage_id, rec.created, data)

    async def _payment(self, y: PaymentLoad, project_id: str) -> None:
        ref = y.step.ref
        rec = self._rec(ref)
        if rec.state in ("done", "rejected"):
            return
        for need in y.step.requires:
            if self._rec(need).state != "done":
                self.skip(ref, need)
                return
        for wait in y.step.waits_for:
            if self._rec(wait).state not in ("done", "rejected"):
                self.skip(ref, wait)
                return
        stage_id = None
        if y.stage_sequence is not None:
            stage_id = self._rec(y.step.requires[2]).sodtrack_id
        body = m.PaymentCreate(
            external_reference=y.payment_reference,
            amount=y.amount,
            currency=y.currency or self.country.currency,
            method=m.PaymentMethod(y.method),
            paid_at=y.paid_at,
            stage_id=stage_id,
        )
        want = payment_want(y.amount, body.currency, y.method, y.paid_at, stage_id)
        await self.attempt(
            ref,
            lambda: self.client.create_payment(project_id, body),
            row_context(self.rows[y.position], self.country),
            correct=Correction(lambda pay: compare("payment", want, payment_have(pay))),
        )

    # ----------------------------------------------------------- bodies

    @staticmethod
    def _customer(row: BookingRow) -> m.CustomerIn:
        return m.CustomerIn(
            first_name=row.customer_first_name,
            last_name=row.customer_last_name,
            email=row.customer_email,
            phone=row.customer_phone,
            document_id=row.customer_document_id,
        )

    def _address(self, row: BookingRow) -> m.AddressIn:
        return m.AddressIn(
            line1=row.address_line1,
            line2=row.address_line2,
            city=row.city,
            region=row.region,
            postal_code=row.postal_code,
            country=self.country.code,
        )
