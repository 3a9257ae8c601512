"""What an upload answers for every row: the outcome vocabulary and the result types.

Outcomes
--------
``created``             this run created the row's writes (its booking, or a step it was
                        still missing: stage, payment)
``updated``             Sodtrack had the row under the same references with different values
                        the API can change (a booking's start, notes or status, a
                        project's or a stage's name): this run changed them (counts like
                        ``created``)
``already_existed``     everything the row needs exists already, identical (an earlier run of
                        the same upload created it, or Sodtrack had it under the same
                        references with the same values)
``rejected``            permanent for this input (``error_kind`` ``invalid``) or a conflict a
                        person must decide (``conflict``, e.g. the slot is taken); never
                        retried automatically; ``failed_step`` names the step
``skipped_dependency``  not attempted because a parent failed; the message names it and its
                        cause (retried on the next run if that cause was transient)
``failed_transient``    Sodtrack did not answer in time even after the client's retries;
                        re-running the same file retries it
``would_create``        dry run only: every check passed, a real run would create it
``would_update``        dry run only: Sodtrack has the row with values a real run would change

Every input row ends in exactly one of these (the engine asserts it).

Counts
------
Every figure reported about a run has ONE definition here, a pure function of the row
results (:func:`tally`), and every report uses it: ``summary.json``, the results file's
``needs_a_person``/``retry_on_rerun`` columns (the per-row predicates the counts sum), the
CLI's printed counts, the flow's artifacts and final state.

``needs_a_person``  a person must fix or decide the row: ``rejected`` (invalid data or a
                    conflict), or ``skipped_dependency`` behind a permanent failure. Exactly
                    the rows of the rejects file; exit code 4.
``retry_on_rerun``  re-running the same file retries the row (a transient cause: the row
                    ``failed_transient`` or was skipped behind one); exit code 5.
``conflicts``       the subset of ``needs_a_person`` rejected for a conflict (the world
                    changed, e.g. a slot was taken), not for the data.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

Outcome = Literal[
    "created",
    "updated",
    "already_existed",
    "rejected",
    "skipped_dependency",
    "failed_transient",
    "would_create",
    "would_update",
]
OUTCOMES: Final[tuple[Outcome, ...]] = (
    "created",
    "updated",
    "already_existed",
    "rejected",
    "skipped_dependency",
    "failed_transient",
    "would_create",
    "would_update",
)
DRY_ONLY: Final = frozenset({"would_create", "would_update"})
SUCCESS: Final = frozenset(
    {"created", "updated", "already_existed", "would_create", "would_update"}
)

ErrorKind = Literal["invalid", "conflict", "transient", "dependency"]
"""``invalid``: permanent for this input; ``conflict``: the world changed (a slot was taken),
a person decides; ``transient``: retried on the next run; ``dependency``: a parent failed."""


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why a row did not succeed, in the sheet's terms: the one shape every part of the bulk
    load hands an error around in (the checks, the loader, the verdicts, the ledger, the
    results files).

    ``fields`` names the canonical columns at fault when that is known (a reader error, a
    postal code Sodtrack does not cover): the results files mark those cells
    (:func:`sodtrack.bulkload.answers.highlight.highlights`)."""

    code: str
    kind: ErrorKind
    message: str
    suggested_fix: str
    fields: tuple[str, ...] = ()


StepStatus = Literal[
    "created",
    "updated",
    "existing",
    "rejected",
    "failed_transient",
    "skipped",
    "not_attempted",
    "ok",
    "would_update",
]
"""Per-step status in the results file; ``ok`` is a dry run's "would be created",
``would_update`` its "would be changed"."""


@dataclass(frozen=True, slots=True)
class RowResult:
    """The exact answer for one input row."""

    position: int
    """0-based index of the row in the upload's row order."""
    sheet: str | None
    row_number: int
    outcome: Outcome
    failed_step: str | None = None
    """``validation``, ``project``, ``booking``, ``stage`` or ``payment``."""
    why: Explanation | None = None
    """Why the row did not succeed (None for a success)."""
    project_id: str | None = None
    booking_id: str | None = None
    stage_id: str | None = None
    payment_id: str | None = None
    steps: Mapping[str, StepStatus] = field(default_factory=dict)
    """Each of the row's steps and its status in this run."""
    retry_on_rerun: bool = False
    """Re-running the same file will retry this row (transient causes only)."""
    warnings: tuple[str, ...] = ()
    """The reader's warnings for the row (values it changed and that deserve a look)."""

    @property
    def needs_a_person(self) -> bool:
        """A person must fix or decide this row (see the module's *Counts*)."""
        return needs_a_person(self)

    # Read-only views of :attr:`why` (the answer holds one explanation, never copies of it).
    @property
    def error_code(self) -> str | None:
        return None if self.why is None else self.why.code

    @property
    def error_kind(self) -> ErrorKind | None:
        """``invalid``, ``conflict`` (needs a person), ``transient`` or ``dependency``."""
        return None if self.why is None else self.why.kind

    @property
    def message(self) -> str | None:
        return None if self.why is None else self.why.message

    @property
    def suggested_fix(self) -> str | None:
        return None if self.why is None else self.why.suggested_fix


def needs_a_person(row: RowResult) -> bool:
    """``rejected``, or ``skipped_dependency`` behind a permanent failure: the rows of the
    rejects file, the rows behind exit code 4."""
    return row.outcome == "rejected" or (
        row.outcome == "skipped_dependency" and not row.retry_on_rerun
    )


@dataclass(frozen=True, slots=True)
class Tally:
    """The counts of one run, every one defined once (see the module's *Counts*)."""

    rows: int
    outcomes: Mapping[str, int]
    """Rows by outcome, every outcome listed (zeros included; ``would_create`` on a dry run
    only)."""
    needs_a_person: int
    retry_on_rerun: int
    conflicts: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "outcomes": dict(self.outcomes),
            "needs_a_person": self.needs_a_person,
            "retry_on_rerun": self.retry_on_rerun,
            "conflicts": self.conflicts,
        }


def tally(rows: Sequence[RowResult], *, dry_run: bool) -> Tally:
    """The counts of a run from its row results (a pure function)."""
    c = Counter(r.outcome for r in rows)
    return Tally(
        rows=len(rows),
        outcomes={o: c.get(o, 0) for o in OUTCOMES if o not in DRY_ONLY or dry_run},
        needs_a_person=sum(1 for r in rows if needs_a_person(r)),
        retry_on_rerun=sum(1 for r in rows if r.retry_on_rerun),
        conflicts=sum(1 for r in rows if r.outcome == "rejected" and r.error_kind == "conflict"),
    )


@dataclass(frozen=True, slots=True)
class UploadResult:
    """The answer for a whole upload (one run of it)."""

    upload_id: str
    file_name: str
    country: str
    dry_run: bool
    run_no: int
    rows: Sequence[RowResult]
    """One per input row, in the original row order."""
    notices: tuple[str, ...] = ()
    """Things the operator must know about the run as a whole (e.g. a dry run's caveat)."""
    upload_errors: tuple[str, ...] = ()
    """File-level errors (nothing was loaded)."""
    requests: int = 0
    elapsed_s: float = 0.0
    client_stats: Mapping[str, Any] = field(default_factory=dict)

    @property
    def counts(self) -> dict[str, int]:
        """Rows by outcome (every outcome listed, zeros included)."""
        return dict(self.tally.outcomes)

    @property
    def tally(self) -> Tally:
        """Every count of the run (one definition: :func:`tally`)."""
        return tally(self.rows, dry_run=self.dry_run)

    @property
    def complete(self) -> bool:
        """No row is waiting for a re-run (nothing transient left)."""
        return not any(r.retry_on_rerun for r in self.rows)

    @property
    def status(self) -> str:
        if self.upload_errors:
            return "failed"
        if any(r.retry_on_rerun for r in self.rows):
            return "incomplete"
        if any(r.outcome not in SUCCESS for r in self.rows):
            return "completed_with_errors"
        return "completed"
