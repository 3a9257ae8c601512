"""``cancel_upload``: undo an upload by cancelling the bookings it created.

Only bookings this upload *created* (ledger ``created=True``) are cancelled: a booking the
upload found already existing belongs to someone else's work. Each cancellation is a ledger
step (``kind=cancel``, key = the booking's external reference) under the same in-flight
protocol as the load, and ``POST /bookings/{id}/cancel`` is a no-op on a cancelled booking,
so running the cancel again (after a crash, or to finish failures) is safe and cancels
nothing twice.

What cannot be undone through the API is said, not hidden: Sodtrack has no delete for
projects, stages or payments. Cancelling a project's bookings lowers its total; its
payments stay recorded (refunds are not part of the API).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Final, Literal, Protocol

from sodtrack.bulkload.engine.ledger import Ledger, StepRecord
from sodtrack.bulkload.messages import explain_api_error, explain_transient
from sodtrack.client.errors import ApiError, RejectedError
from sodtrack.contract import models as m

CANCEL_NOTE: Final = (
    "Projects, stages and payments cannot be deleted through the Sodtrack API: cancelling "
    "the bookings lowers each project's total; its payments stay recorded."
)


class CancelClient(Protocol):
    async def cancel_booking(self, booking_id: str, reason: str) -> m.Booking: ...


@dataclass(frozen=True, slots=True)
class CancelResult:
    upload_id: str
    cancelled: int
    """Bookings cancelled by this call."""
    already_cancelled: int
    """Bookings an earlier cancel of this upload had cancelled."""
    failed: list[tuple[str, str]] = field(default_factory=list)
    """``(external_reference, message)`` of bookings that could not be cancelled."""
    note: str = CANCEL_NOTE

    @property
    def complete(self) -> bool:
        return not self.failed


async def cancel_upload(
    upload_id: str,
    client: CancelClient,
    ledger: Ledger,
    *,
    reason: str | None = None,
    concurrency: int = 16,
    take_over: bool = False,
) -> CancelResult:
    """Cancel every booking ``upload_id`` created; idempotent (see the module docstring)."""
    upload = ledger.get_upload(upload_id)
    if upload is None:
        raise KeyError(f"no upload {upload_id} in the ledger")
    reason = reason or f"Cancelled with upload {upload_id} ({upload.file_name})"
    owner = ledger.take_lease(upload_id, take_over=take_over)
    try:
        steps = ledger.steps(upload_id)
        targets = [
            rec
            for (kind, _), rec in sorted(steps.items())
            if kind == "booking" and rec.state == "done" and rec.created and rec.sodtrack_id
        ]
        gate = asyncio.Semaphore(concurrency)
        already = sum(
            1
            for t in targets
            if (c := steps.get(("cancel", t.key))) is not None and c.state == "done"
        )
        failed: list[tuple[str, str]] = []

        async def one(booking: StepRecord) -> bool:
            done = steps.get(("cancel", booking.key))
            if done is not None and done.state == "done":
                return False
            assert booking.sodtrack_id is not None
            async with gate:
                ledger.mark_in_flight(upload_id, "cancel", booking.key)
                try:
                    await client.cancel_booking(booking.sodtrack_id, reason)
                except ApiError as exc:
                    state: Literal["rejected", "failed_transient"]
                    if isinstance(exc, RejectedError):
                        why = explain_api_error(
                            exc.code, step="cancel", api_message=exc.api_message
                        )
                        state = "rejected"
                    else:
                        why = explain_transient(step="cancel", reason=exc.message)
                        state = "failed_transient"
                    ledger.mark_failed(
                        upload_id,
                        "cancel",
                        booking.key,
                        state=state,
                        why=why,
                    )
                    failed.append((booking.key, why.message))
                    return False
                ledger.mark_done(
                    upload_id,
                    "cancel",
                    booking.key,
                    sodtrack_id=booking.sodtrack_id,
                    created=True,
                    run_no=0,
                )
                return True

        results = await asyncio.gather(*(one(t) for t in targets))
        ledger.set_upload_status(upload_id, "cancel_incomplete" if failed else "cancelled")
        return CancelResult(upload_id, sum(results), already, sorted(failed))
    finally:
        ledger.release_lease(upload_id, owner)
