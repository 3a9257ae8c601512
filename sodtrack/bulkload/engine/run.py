"""The load engine: a parsed upload in, every row created in Sodtrack (or explained) out.

:func:`run_upload` runs in three phases:

1. **Validate before any write** (:mod:`.checks`): the reader's errors; then the records
   Sodtrack already holds under the rows' references (:mod:`.existing`: the ledger's memory
   of other uploads, and in a dry run a lookup by reference), which are *compared* with their
   rows (:mod:`.compare`) instead of being checked as creates; then for the others SKUs,
   coverage, slot shape and (optionally) capacity against Sodtrack; a new booking asking for
   a status other than scheduled is refused (a real run first looks it up by reference: found,
   it is a correction); then payments against each project's total. A dry run stops here,
   writes nothing, and answers ``would_create`` / ``would_update`` / ``rejected`` (a
   correction the API cannot apply), with the notice that availability can change before the
   real run.
2. **Load** the plan (:mod:`.plan`): per project, in order, project → its bookings
   (concurrently) → its stages (holding the bookings created) → its payments (file order);
   projects concurrently with each other and with the plain bookings. Concurrency is
   bounded twice: ``concurrency`` units of work (a project, a plain booking) at a time, and
   the client's own request concurrency and rate limiter underneath.
3. **Answer** every row (:mod:`.verdicts`) from the step states, save the answers, release
   the upload. Every input row ends in exactly one outcome: asserted.

The ledger's steps are read once, at the start; every write after that goes to the ledger and
to the loader's mirror of it together (:class:`~.load.Loader`: the pre-write rejections too),
so the answers are read from the mirror, not from a second copy. What the run knows about each
row on the way (the reader's refusal, its booking's step, whether Sodtrack holds it, its
price) is one :class:`RowState` per row.

The writes themselves, the in-flight protocol and how errors are classified are in
:mod:`.load`; the answer for each row in :mod:`.verdicts` and :mod:`.answers`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from sodtrack.bulkload.engine.assemble import (
    dry_answers,
    real_answers,
    row_record,
    unchecked,
)
from sodtrack.bulkload.engine.catalog import Catalog, CoverageMode
from sodtrack.bulkload.engine.checks import (
    check_moves,
    check_payments,
    check_rows,
    reader_rejection,
    unchecked_explanation,
)
from sodtrack.bulkload.engine.compare import compare
from sodtrack.bulkload.engine.existing import (
    Found,
    booking_have,
    booking_want,
    compare_found,
    find_existing,
)
from sodtrack.bulkload.engine.ledger import Ledger, StepRecord, upload_id_for
from sodtrack.bulkload.engine.load import Loader, LoaderClient, PhaseProgress, explain_exception
from sodtrack.bulkload.engine.plan import StepRef, build_plan
from sodtrack.bulkload.messages import explain_new_booking_status
from sodtrack.bulkload.outcomes import Explanation, RowResult, UploadResult
from sodtrack.bulkload.reading.rows import BookingRow
from sodtrack.bulkload.reading.upload import ParsedUpload
from sodtrack.client.errors import ApiError
from sodtrack.contract.countries import get_country
from sodtrack.contract.models import BookingStatus
from sodtrack.errors import ConfigurationError

DRY_RUN_NOTICE: Final = (
    "Dry run: nothing was created. Catalog and coverage were checked live{avail}; "
    "availability can change before the real run, so a slot free now may be taken by then."
)

UPLOAD_ERROR: Final = Explanation(
    "upload_error",
    "invalid",
    "The file as a whole cannot be loaded (see the upload errors).",
    "Fix the file-level problems first.",
)
"""Every row's answer when the file as a whole cannot be loaded."""


def _requests_of(client: object) -> int:
    stats = getattr(client, "stats", None)
    return int(getattr(stats, "total_requests", 0)) if stats is not None else 0


async def run_upload(
    parsed: ParsedUpload,
    client: LoaderClient,
    ledger: Ledger,
    *,
    dry_run: bool = False,
    check_availability: bool = False,
    uploaded_by: str,
    progress: PhaseProgress | None = None,
    concurrency: int = 32,
    coverage_mode: CoverageMode = "auto",
    new_upload: str | None = None,
    take_over: bool = False,
) -> UploadResult:
    """Validate, then (unless ``dry_run``) load ``parsed``; answer every row.

    The upload id comes from the file's SHA-256 and country, so running the same file again
    resumes the same upload: what is done is not redone, what failed transiently is retried,
    what was rejected stays rejected. ``new_upload`` (any text) starts a separate upload of the
    same bytes. ``take_over`` ignores another worker's lease on the upload.
    """
    started = time.monotonic()
    requests_before = _requests_of(client)
    country = get_country(parsed.country)
    rows = parsed.rows
    sheet = parsed.sheet if parsed.sheet_names and parsed.sheet != parsed.sheet_names[0] else None
    upload_id = upload_id_for(
        parsed.file_sha256, country.code, dry_run=dry_run, salt=new_upload, sheet=sheet
    )
    run = ledger.begin_upload(
        upload_id=upload_id,
        file_sha256=parsed.file_sha256,
        file_name=parsed.source_path.name,
        country=country.code,
        uploaded_by=uploaded_by,
        dry_run=dry_run,
        row_count=len(rows),
        take_over=take_over,
    )
    renew = asyncio.create_task(_renew_lease(ledger, upload_id, run.owner))
    results: list[RowResult] = []
    notices: list[str] = []
    try:
        ledger.record_rows(upload_id, [row_record(i, r) for i, r in enumerate(rows)])
        if parsed.has_upload_errors:
            results = [
                RowResult(
                    i,
                    r.sheet,
                    r.row_number,
                    "rejected",
                    failed_step="validation",
                    why=UPLOAD_ERROR,
                )
                for i, r in enumerate(rows)
            ]
        else:
            results, notices = await _validate_and_load(
                parsed,
                client,
                ledger,
                upload_id=upload_id,
                run_no=run.run_no,
                dry_run=dry_run,
                check_availability=check_availability,
                progress=progress,
                concurrency=concurrency,
                coverage_mode=coverage_mode,
                real_upload_id=upload_id_for(
                    parsed.file_sha256, country.code, salt=new_upload, sheet=sheet
                ),
            )
        # The invariant the whole design serves: one answer per input row, in order.
        assert [r.position for r in results] == list(range(len(rows))), "a row lost its answer"
        result = UploadResult(
            upload_id=upload_id,
            file_name=parsed.source_path.name,
            country=country.code,
            dry_run=dry_run,
            run_no=run.run_no,
            rows=results,
            notices=tuple(notices),
            upload_errors=tuple(i.message for i in parsed.upload_issues if i.severity == "error"),
            requests=_requests_of(client) - requests_before,
            elapsed_s=time.monotonic() - started,
            client_stats=_stats_of(client),
        )
        ledger.save_row_outcomes(upload_id, results)
        ledger.finish_upload(
            upload_id, status=result.status, summary=result.counts, owner=run.owner
        )
        return result
    except BaseException:
        # Leave the steps as they are (the next run reconciles); free the upload.
        ledger.release_lease(upload_id, run.owner)
        raise
    finally:
        renew.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renew


async def _renew_lease(ledger: Ledger, upload_id: str, owner: str) -> None:
    while True:
        await asyncio.sleep(ledger.lease_s / 3)
        ledger.renew_lease(upload_id, owner)


def _stats_of(client: object) -> dict[str, Any]:
    stats = getattr(client, "stats", None)
    as_dict = getattr(stats, "as_dict", None)
    return dict(as_dict()) if callable(as_dict) else {}


@dataclass
class RowState:
    """What the engine knows about one input row between reading it and answering it: the
    one per-row record :func:`_validate_and_load` keeps (instead of maps keyed by position)."""

    position: int
    row: BookingRow
    reader_rejection: Explanation | None
    """The reader refused the row (it is answered ``rejected`` at step ``validation``)."""
    booking: StepRecord | None = None
    """Its booking's step as the run found it in the real upload's ledger (None: not there
    yet, or the reader refused the row)."""
    existing: bool = False
    """Sodtrack holds its booking already: compared with the row (a correction), not created."""
    price: Decimal | None = None
    """Its booking's price, when known (its SKUs resolved, Sodtrack's record, or the ledger)."""

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(w.message for w in self.row.warnings)

    @property
    def finished(self) -> bool:
        """An earlier run settled its booking for good (``done`` or ``rejected``)."""
        return self.booking is not None and self.booking.state in ("done", "rejected")

    @property
    def open(self) -> bool:
        """Read fine and its booking not settled: it is looked up and checked."""
        return self.reader_rejection is None and not self.finished

    @property
    def prior_rejected(self) -> bool:
        return self.booking is not None and self.booking.state == "rejected"

    @property
    def never_sent(self) -> bool:
        """A new booking no run has sent: checked against Sodtrack (see :mod:`.checks`)."""
        return (
            self.open and not self.existing and (self.booking is None or self.booking.attempts == 0)
        )

    @property
    def sent_before(self) -> bool:
        """A new booking an earlier run sent but did not finish: only its SKUs are needed."""
        return (
            self.open
            and not self.existing
            and self.booking is not None
            and self.booking.attempts > 0
        )


async def _validate_and_load(
    parsed: ParsedUpload,
    client: LoaderClient,
    ledger: Ledger,
    *,
    upload_id: str,
    run_no: int,
    dry_run: bool,
    check_availability: bool,
    progress: PhaseProgress | None,
    concurrency: int,
    coverage_mode: CoverageMode,
    real_upload_id: str,
) -> tuple[list[RowResult], list[str]]:
    country = get_country(parsed.country)
    rows = parsed.rows
    # The ledger is read once: the real upload's steps (a dry run reads them, never writes
    # them: rows already loaded are answered ``already_existed`` and not checked again). From
    # here on the loader's mirror of them is the state (every write goes to both).
    states: dict[StepRef, StepRecord] = ledger.steps(real_upload_id)
    if progress is not None:
        progress("validate", 0, len(rows))

    per_row: list[RowState] = []
    for i, r in enumerate(rows):
        rejection = None if r.is_valid else reader_rejection(r)
        booking = states.get(("booking", r.external_reference)) if rejection is None else None
        per_row.append(RowState(i, r, rejection, booking))
    reader_rejected = {s.position: s.reader_rejection for s in per_row if s.reader_rejection}
    warnings = {s.position: s.warnings for s in per_row}
    open_rows = [s.position for s in per_row if s.open]
    found = Found()
    try:
        # Rows whose reference Sodtrack already holds (the ledger knows it from another
        # upload; a dry run also asks by reference) are compared with Sodtrack's record
        # (:mod:`.compare`), not checked as creates.
        found = await find_existing(
            rows,
            open_rows,
            country=country.code,
            ledger=ledger,
            client=client,
            by_reference=dry_run,
        )
        for i in open_rows:
            per_row[i].existing = rows[i].external_reference in found.bookings
        # Only bookings never sent are checked against Sodtrack (module docstring of .checks);
        # bookings an earlier run sent but did not finish only need their SKUs for the body.
        never_sent = [s.position for s in per_row if s.never_sent]
        late = [s.position for s in per_row if s.sent_before]
        existing = [s.position for s in per_row if s.existing]
        wanted = {
            (rows[i].service_sku, rows[i].variant_sku) for i in (*never_sent, *late, *existing)
        }
        variants_of = {b.service_id for b in found.bookings.values() if b.variant_id}
        catalog = await Catalog.load(client, wanted, variants_of) if wanted else None
        checked = await check_rows(
            rows,
            never_sent,
            country,
            client,
            availability=check_availability,
            coverage_mode=coverage_mode,
            catalog=catalog,
        )
        # A new booking starts scheduled: a row for one Sodtrack does not have (as far as
        # is known here) asking for another status is refused, not created and moved on
        # (:func:`~sodtrack.bulkload.messages.explain_new_booking_status`). A real run looks
        # these up by reference below: found, they are corrections like any other.
        for i in never_sent:
            status = rows[i].booking_status
            if status not in (None, BookingStatus.SCHEDULED) and i not in checked.rejected:
                checked.rejected[i] = explain_new_booking_status(
                    reference=rows[i].external_reference, status=str(status)
                )
        # Corrections that move a booking: the new start is checked like a new one's.
        project_refs = {p.id: ref for ref, p in found.projects.items()}
        moves = {}
        for i in existing:
            record = found.bookings[rows[i].external_reference]
            have = booking_have(record, checked.catalog, project_refs)
            c = compare("booking", booking_want(rows[i]), have)
            if c.verdict == "update" and "scheduled_start" in c.changed_fields:
                moves[i] = record
        checked.rejected.update(
            await check_moves(rows, moves, country, client, availability=check_availability)
        )
        refused_as_new = sorted(i for i in checked.rejected if not per_row[i].existing)
        if not dry_run and refused_as_new:
            # A row the create checks refuse may be a correction of a record Sodtrack has
            # (a new SKU, or its own booking filling its slot): look those few up by
            # reference, and compare the ones found instead.
            more = await find_existing(
                rows,
                refused_as_new,
                country=country.code,
                ledger=ledger,
                client=client,
                by_reference=True,
            )
            found.merge(more)
            for i in refused_as_new:
                if rows[i].external_reference in more.bookings:
                    del checked.rejected[i]
                    per_row[i].existing = True
    except ConfigurationError:
        # A setting is wrong (e.g. the token is for another country): nothing was written,
        # and no re-run fixes it; the caller says so in one line (exit 2).
        raise
    except ApiError as exc:
        # Checks every row needs (the services list) or an error not about rows (credentials,
        # a contract violation) could not complete: nothing is written; every row still gets
        # its answer. A check that fails for some rows only leaves those rows unchecked.
        why = explain_exception(exc, "validation", {})
        plan = build_plan(
            rows, frozenset(s.position for s in per_row if s.reader_rejection or s.prior_rejected)
        )
        known = real_answers(rows, plan, reader_rejected, states, run_no, warnings)
        return [unchecked(r, why) for r in known], [
            f"The checks before writing could not complete ({why.message}); nothing was "
            "written in this run. Re-run the same file."
        ]
    if catalog is not None:
        for i in late:
            unreadable = catalog.unreadable(rows[i].service_sku, rows[i].variant_sku)
            if unreadable is not None:
                checked.unchecked[i] = unchecked_explanation(
                    f"the variants of service {rows[i].service_sku} could not be read",
                    unreadable,
                )
                continue
            resolved = catalog.resolve(rows[i].service_sku, rows[i].variant_sku)
            if not isinstance(resolved, str):
                checked.resolved[i] = resolved
    excluded = {
        s.position
        for s in per_row
        if s.reader_rejection or s.prior_rejected or s.position in checked.rejected
    }

    for i, resolved_sku in checked.resolved.items():
        per_row[i].price = resolved_sku.price
    for s in per_row:
        if s.existing:
            s.price = found.bookings[s.row.external_reference].price
        elif s.price is None and s.booking is not None and "price" in s.booking.data:
            s.price = Decimal(str(s.booking.data["price"]))
    settled = {
        i: rec.state
        for i, r in enumerate(rows)
        if r.payment_reference
        and (rec := states.get(("payment", r.payment_reference))) is not None
        and rec.state in ("done", "rejected")
    }
    payment_refused = check_payments(
        rows,
        country,
        excluded=excluded,
        price_of={s.position: s.price for s in per_row if s.price is not None},
        settled=settled,
    )
    if progress is not None:
        progress("validate", len(rows), len(rows))

    # Unchecked rows stay in the plan (their project, stage and the other rows go on); the
    # loader answers their booking failed_transient without sending it.
    plan = build_plan(rows, frozenset(excluded))

    if dry_run:
        avail = (
            " and so was slot availability"
            if check_availability
            else " (slot availability was not)"
        )
        results = dry_answers(
            rows,
            plan,
            reader_rejected,
            checked,
            states,
            payment_refused,
            warnings,
            found=compare_found(rows, plan, found, checked.catalog),
            known_payments=found.payments,
            tz=country.tz,
        )
        notices = [DRY_RUN_NOTICE.format(avail=avail)]
        if found.unread:
            notices.append(
                f"{len(found.unread)} reference(s) could not be looked up in Sodtrack (it did "
                "not answer in time): those rows may exist already; the real run compares "
                "them with Sodtrack's records before changing anything."
            )
        return results, notices

    load = Loader(
        rows=rows,
        country=country,
        client=client,
        ledger=ledger,
        upload_id=upload_id,
        run_no=run_no,
        plan=plan,
        checked=checked,
        states=states,
        concurrency=concurrency,
        progress=progress,
        found=found,
    )
    # Persist the pre-write rejections: rejected is final for this upload, never retried.
    for i, why in checked.rejected.items():
        load.fail(
            ("booking", rows[i].external_reference), "rejected", why, data={"phase": "validation"}
        )
    for i, why in payment_refused.items():
        ref = rows[i].payment_reference
        assert ref is not None
        load.fail(("payment", ref), "rejected", why, data={"phase": "validation"})
    ledger.ensure_steps(upload_id, [s.ref for s in plan.all_steps()])
    await load.run()

    results = real_answers(rows, plan, reader_rejected, load.states, run_no, warnings)
    notices = []
    if load.halted is not None:
        notices.append(f"The load stopped sending writes: {load.halted.why.message}")
    return results, notices
