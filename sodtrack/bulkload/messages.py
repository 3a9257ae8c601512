"""Plain-language messages and suggested fixes for every way a row can fail.

An operator reads these in the results file. Each entry says what happened in the sheet's
terms (the SKU, the postal code, the local time), not the API's, and a fix they can act on.
One table for API error codes (:data:`API_MESSAGES`), one for the loader's own pre-write
checks (:data:`CHECK_MESSAGES`), one for field issues inside a ``validation_error``
(:data:`ISSUE_PHRASES`, :data:`FIELD_LABELS`).

Every explanation carries a *kind*:

``invalid``     permanent for this input: fix the row and upload it again;
``conflict``    not wrong input but the world (a slot got taken): a person decides;
``transient``   Sodtrack did not answer in time: re-run the same file, nothing is created twice;
``dependency``  a parent write (the project, the stage, the row's booking) failed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from sodtrack.bulkload.outcomes import ErrorKind, Explanation

STEP_LABELS: Final[Mapping[str, str]] = {
    "project": "project",
    "booking": "booking",
    "stage": "stage",
    "payment": "payment",
    "cancel": "cancellation",
    "validation": "checks before writing (catalog, coverage, slots)",
}


class _Defaulting(dict[str, Any]):
    """Template values; a missing one prints as ``?`` rather than failing the report."""

    def __missing__(self, key: str) -> str:
        return "?"


def _render(template: str, ctx: Mapping[str, Any]) -> str:
    return template.format_map(_Defaulting({k: v for k, v in ctx.items() if v is not None}))


# (kind, message, suggested fix); placeholders come from the row's context (see ``explain_*``):
# service, variant, postal_code, start (local time as the sheet gave it), amount, currency,
# project, stage, reference, country_currency, existing_id, details (field issues, phrased).
_API: dict[str, tuple[ErrorKind, str, str]] = {
    "validation_error": (
        "invalid",
        "Sodtrack refused the {step}: {details}.",
        "Correct the values named above and upload the row again.",
    ),
    "postal_code_not_covered": (
        "invalid",
        "Sodtrack has no active contractor zone for service {service} at postal code "
        "{postal_code}.",
        "Check the postal code, or choose a service that is offered there.",
    ),
    "slot_unavailable": (
        "conflict",
        "No contractor is free for service {service} at {start} in postal code {postal_code} "
        "(the slot is taken, or it is not a bookable start).",
        "Choose another time (slots start on the hour, 08:00 to 17:00, Monday to Saturday, at "
        "least 1 hour and at most 180 days ahead) or ask operations to add capacity.",
    ),
    "variant_mismatch": (
        "invalid",
        "Variant {variant} is not a variant of service {service}.",
        "Use a variant SKU of that service, or leave the variant empty.",
    ),
    "service_inactive": (
        "invalid",
        "Service {service} (variant {variant}) is not active in Sodtrack's catalog.",
        "Choose an active service or variant, or ask the catalog team to re-activate it.",
    ),
    "currency_mismatch": (
        "invalid",
        "The payment is in {currency} but project {project} is in {country_currency}.",
        "Write the payment in {country_currency}.",
    ),
    "overpayment": (
        "invalid",
        "Payment {reference} of {amount} {currency} is more than what is still owed on "
        "project {project}.",
        "Check the amount; if a booking of the project was rejected, fix that row first, then "
        "upload the payment again.",
    ),
    "country_mismatch": (
        "invalid",
        "The address is in another country than this upload's ({country}).",
        "Upload rows of each country in that country's file.",
    ),
    "not_found": (
        "invalid",
        "The {step} refers to something Sodtrack does not have ({api_message}).",
        "Check the references in the row.",
    ),
    "duplicate_stage": (
        "invalid",
        "Project {project} already has a stage {stage} that could not be used.",
        "Check stage_sequence for the project's rows.",
    ),
    "booking_already_staged": (
        "conflict",
        "Booking {reference} is already in another stage of project {project} ({existing_id}).",
        "Move it in Sodtrack, or give the row that stage's sequence.",
    ),
    "duplicate_external_reference": (
        "invalid",
        "The reference {reference} is already used in Sodtrack by another record.",
        "Give the row a new, unused reference.",
    ),
    "invalid_transition": (
        "invalid",
        "The booking cannot change that way ({api_message}).",
        "Check the booking's status in Sodtrack: a completed booking cannot be cancelled.",
    ),
    "insufficient_scope": (
        "invalid",
        "The integration credential is not allowed to create this {step}.",
        "Ask Sodtrack for the bookings:write and projects:write scopes, then re-run the file.",
    ),
    "invalid_credentials": (
        "invalid",
        "Sodtrack refused the integration credentials.",
        "Check SODTRACK_CLIENT_ID and SODTRACK_CLIENT_SECRET, then re-run the file.",
    ),
    "invalid_token": (
        "invalid",
        "Sodtrack refused the loader's access token, even a fresh one.",
        "Check the credentials and the environment (URL, country), then re-run the file.",
    ),
    "range_too_wide": (
        "invalid",
        "An availability check asked for too long a range.",
        "This is a loader bug: report it with the upload id.",
    ),
}

_BUG: Final[tuple[ErrorKind, str, str]] = (
    "invalid",
    "The loader sent a request Sodtrack could not read ({api_message}).",
    "This is a loader bug, not a problem with the row: report it with the upload id.",
)
for _code in ("malformed_request", "method_not_allowed", "payload_too_large"):
    _API[_code] = _BUG
API_MESSAGES: Final[Mapping[str, tuple[ErrorKind, str, str]]] = _API

TRANSIENT: Final[tuple[ErrorKind, str, str]] = (
    "transient",
    "Sodtrack did not answer the {step} in time ({api_message}).",
    "Nothing to fix: re-run the same file; what was created is not created again.",
)

CHECK_MESSAGES: Final[Mapping[str, tuple[ErrorKind, str, str]]] = {
    "unknown_service_sku": (
        "invalid",
        "Service SKU {service} does not exist in Sodtrack's catalog for this country.",
        "Check the SKU against the catalog (upper and lower case matter).",
    ),
    "unknown_variant_sku": (
        "invalid",
        "Variant SKU {variant} does not exist for service {service}.",
        "Check the variant SKU, or leave it empty to book the service itself.",
    ),
    "service_inactive": API_MESSAGES["service_inactive"],
    "variant_inactive": (
        "invalid",
        "Variant {variant} of service {service} is not active in Sodtrack's catalog.",
        "Choose an active variant, or leave the variant empty.",
    ),
    "variant_mismatch": API_MESSAGES["variant_mismatch"],
    "project_required": (
        "invalid",
        "Service {service} is a multi-stage service: it can only be booked inside a project.",
        "Give the row a project_reference and project_name.",
    ),
    "postal_code_not_covered": API_MESSAGES["postal_code_not_covered"],
    "not_a_slot_start": (
        "invalid",
        "{start} is not a slot start: bookings start on the hour, 08:00 to 17:00, Monday to "
        "Saturday, local time.",
        "Change the start to a full hour between 08:00 and 17:00, Monday to Saturday.",
    ),
    "outside_booking_window": (
        "invalid",
        "{start} is too soon or too far ahead: bookings start at least 1 hour and at most "
        "180 days from now.",
        "Choose a start within the next 180 days, at least 1 hour from now.",
    ),
    "no_capacity": (
        "conflict",
        "No contractor is free for service {service} at {start} in postal code {postal_code}: "
        "{demand} row(s) of this file ask for that slot in zone {zone} and {capacity} "
        "contractor(s) are free.",
        "Move some of these bookings to another time, or ask operations to add capacity.",
    ),
    "overpayment_in_file": (
        "invalid",
        "Payment {reference} of {amount} {currency} takes project {project}'s payments to "
        "{paid}, more than its total of {total} (the sum of its bookings' prices).",
        "Check the amount; the payment was not registered (the booking was).",
    ),
    "payment_without_project": (
        "invalid",
        "Payment {reference} has no project: payments are registered against a project.",
        "Give the row a project_reference, or remove the payment columns.",
    ),
}

ISSUE_PHRASES: Final[Mapping[str, str]] = {
    "required": "is missing",
    "invalid_format": "is not in a valid format",
    "invalid_type": "has the wrong type",
    "out_of_range": "is out of range",
    "unknown_field": "is not a field Sodtrack knows",
    "not_found": "does not exist in Sodtrack",
    "project_closed": "is a closed project (no booking can join it)",
    "not_in_project": "does not belong to the project",
    "booking_cancelled": "is cancelled",
    "no_capacity": "has no free contractor",
}

FIELD_LABELS: Final[Mapping[str, str]] = {
    "external_reference": "the reference (external_reference)",
    "service_id": "the service (service_sku)",
    "variant_id": "the variant (variant_sku)",
    "scheduled_start": "the start (scheduled_start)",
    "customer.first_name": "the customer's first name (customer_first_name)",
    "customer.last_name": "the customer's last name (customer_last_name)",
    "customer.email": "the customer's e-mail (customer_email)",
    "customer.phone": "the customer's phone (customer_phone)",
    "customer.document_id": "the customer's document id (customer_document_id)",
    "customer": "the customer's e-mail or phone (one is needed)",
    "address.line1": "the address (address_line1)",
    "address.line2": "the address's second line (address_line2)",
    "address.city": "the city (city)",
    "address.region": "the region (region)",
    "address.postal_code": "the postal code (postal_code)",
    "address.country": "the address's country",
    "project_id": "the project (project_reference)",
    "name": "the name (project_name / stage_name)",
    "sequence": "the stage (stage_sequence)",
    "booking_ids": "the stage's bookings",
    "amount": "the payment amount (payment_amount)",
    "currency": "the payment currency (payment_currency)",
    "method": "the payment method (payment_method)",
    "paid_at": "the payment date (paid_at)",
    "stage_id": "the payment's stage (stage_sequence)",
}


CELLS_AT_FAULT: Final[Mapping[str, tuple[str, ...]]] = {
    "postal_code_not_covered": ("postal_code",),
    "slot_unavailable": ("scheduled_start",),
    "no_capacity": ("scheduled_start",),
    "not_a_slot_start": ("scheduled_start",),
    "outside_booking_window": ("scheduled_start",),
    "unknown_service_sku": ("service_sku",),
    "service_inactive": ("service_sku",),
    "unknown_variant_sku": ("variant_sku",),
    "variant_inactive": ("variant_sku",),
    "variant_mismatch": ("variant_sku",),
    "project_required": ("project_reference",),
    "payment_without_project": ("project_reference",),
    "currency_mismatch": ("payment_currency",),
    "overpayment": ("payment_amount",),
    "overpayment_in_file": ("payment_amount",),
    "duplicate_external_reference": ("external_reference",),
    "status_of_new_booking": ("booking_status",),
    "invalid_transition": ("booking_status",),
}
"""The sheet's columns an error code is about (the cells the results files mark)."""

API_FIELD_COLUMNS: Final[Mapping[str, str]] = {
    "external_reference": "external_reference",
    "service_id": "service_sku",
    "variant_id": "variant_sku",
    "scheduled_start": "scheduled_start",
    "customer.first_name": "customer_first_name",
    "customer.last_name": "customer_last_name",
    "customer.email": "customer_email",
    "customer.phone": "customer_phone",
    "customer.document_id": "customer_document_id",
    "address.line1": "address_line1",
    "address.line2": "address_line2",
    "address.city": "city",
    "address.region": "region",
    "address.postal_code": "postal_code",
    "project_id": "project_reference",
    "sequence": "stage_sequence",
    "amount": "payment_amount",
    "currency": "payment_currency",
    "method": "payment_method",
    "paid_at": "paid_at",
    "stage_id": "stage_sequence",
}
"""An API field named in a ``validation_error``'s details → the sheet's column."""


def phrase_details(details: Sequence[tuple[str, str]]) -> str:
    """``[("customer.email", "invalid_format")]`` → "the customer's e-mail … is not in …"."""
    parts = [
        f"{FIELD_LABELS.get(f, f)} {ISSUE_PHRASES.get(i, 'is not accepted (' + i + ')')}"
        for f, i in details
    ]
    return "; ".join(parts) if parts else "the values were not accepted"


def explain_api_error(
    code: str,
    *,
    step: str,
    api_message: str = "",
    details: Sequence[tuple[str, str]] = (),
    existing_id: str | None = None,
    context: Mapping[str, Any] | None = None,
) -> Explanation:
    """The explanation of an API error answered for a ``step`` of a row."""
    ctx: dict[str, Any] = dict(context or {})
    ctx.update(
        step=STEP_LABELS.get(step, step),
        api_message=api_message or code,
        existing_id=existing_id,
        details=phrase_details(details),
    )
    kind, message, fix = API_MESSAGES.get(
        code,
        (
            "invalid",
            "Sodtrack refused the {step} ({api_message}).",
            "Check the row's values; if they look right, report it with the upload id.",
        ),
    )
    fields = tuple(
        dict.fromkeys(API_FIELD_COLUMNS[f] for f, _ in details if f in API_FIELD_COLUMNS)
    )
    return Explanation(
        code, kind, _render(message, ctx), _render(fix, ctx), fields or CELLS_AT_FAULT.get(code, ())
    )


def explain_transient(
    *, step: str, reason: str, context: Mapping[str, Any] | None = None
) -> Explanation:
    kind, message, fix = TRANSIENT
    ctx = {**(context or {}), "step": STEP_LABELS.get(step, step), "api_message": reason}
    return Explanation("transient", kind, _render(message, ctx), _render(fix, ctx))


def explain_check(code: str, context: Mapping[str, Any] | None = None) -> Explanation:
    """A pre-write check's finding (no request was made for the row)."""
    kind, message, fix = CHECK_MESSAGES[code]
    ctx = dict(context or {})
    return Explanation(
        code, kind, _render(message, ctx), _render(fix, ctx), CELLS_AT_FAULT.get(code, ())
    )


def explain_dependency(
    *, parent_step: str, parent_key: str, parent: Explanation | None, own_step: str
) -> Explanation:
    """A write not attempted because a parent failed; names the parent and its cause.

    The fix depends on the cause: a transient parent is retried by re-running the file; a
    rejected one must be fixed first.
    """
    label = STEP_LABELS.get(parent_step, parent_step)
    own = STEP_LABELS.get(own_step, own_step)
    if parent is None:
        return Explanation(
            "dependency",
            "dependency",
            f"The {own} was not attempted: {label} {parent_key} was not created.",
            "Fix the row that failed first, then upload this one again.",
        )
    if parent.kind == "transient":
        fix = "Nothing to fix: re-run the same file once Sodtrack answers again."
    else:
        fix = f"Fix the {label} first ({parent.suggested_fix.rstrip('.')}), then upload again."
    return Explanation(
        parent.code,
        "dependency",
        f"The {own} was not attempted because {label} {parent_key} failed: {parent.message}",
        fix,
    )


_RESOURCE_LABELS: Final[Mapping[str, str]] = {
    "booking": "booking",
    "project": "project",
    "stage": "stage",
    "payment": "payment",
}
CHANGEABLE: Final = (
    "the API can change only a booking's start, notes and status (forward, or to cancelled "
    "before it is completed), a project's name and a stage's name"
)
STATUS_RULE: Final = (
    "a booking's status only moves forward (scheduled → confirmed → in_progress → "
    "completed) or to cancelled before it is completed, never back nor out of completed or "
    "cancelled"
)


def explain_new_booking_status(*, reference: str, status: str) -> Explanation:
    """A row for a booking Sodtrack does not have, asking for a status other than scheduled.

    Refused, not applied after the create: a new booking starts scheduled, and a visit
    created only to be marked done or cancelled at once would take a slot it never uses and
    claim work nobody recorded in Sodtrack."""
    return Explanation(
        "status_of_new_booking",
        "invalid",
        f"Booking {reference} is not in Sodtrack yet, and the row asks for it {status}; a "
        "new booking always starts scheduled, and the loader does not create a booking only "
        "to move it on.",
        "Clear booking_status (or write scheduled) to create it; once it is in Sodtrack, "
        "upload the row again with its status."
        if status != "cancelled"
        else "Remove the row: there is nothing to cancel in Sodtrack.",
        CELLS_AT_FAULT["status_of_new_booking"],
    )


def explain_correction_refused(
    *,
    resource: str,
    reference: str,
    sodtrack_id: str,
    differences: str,
    cancelled: bool = False,
    status_refused: bool = False,
    fields: tuple[str, ...] = (),
) -> Explanation:
    """A re-uploaded row that differs from Sodtrack's record in what the API cannot change.

    ``differences`` is :func:`sodtrack.bulkload.engine.compare.describe` of *every* differing field;
    ``fields`` names those fields (the cells the results files mark).
    """
    label = _RESOURCE_LABELS.get(resource, resource)
    if cancelled:
        return Explanation(
            "correction_not_allowed",
            "invalid",
            f"Sodtrack already has {label} {reference} ({sodtrack_id}), cancelled; a reference "
            "is never used again, not even after a cancellation"
            + (f" (it also differs in {differences})" if differences else "")
            + ".",
            f"Give the row a new reference if the {label} is still wanted, or remove the row.",
            ("external_reference",),
        )
    rule = f"{STATUS_RULE}; {CHANGEABLE}" if status_refused else CHANGEABLE
    return Explanation(
        "correction_not_allowed",
        "invalid",
        f"Sodtrack already has {label} {reference} ({sodtrack_id}) with a different "
        f"{differences}; {rule}, so nothing was changed.",
        f"If Sodtrack is right, copy its values into the row and upload it again; if the row "
        f"is right, cancel {reference} in Sodtrack and upload the row under a new reference "
        "(references are never reused).",
        fields,
    )


def explain_correction_failed(
    *, resource: str, reference: str, fields: str, why: Explanation
) -> Explanation:
    """Sodtrack refused (or did not answer) the PATCH that applies a correction."""
    label = _RESOURCE_LABELS.get(resource, resource)
    return Explanation(
        why.code,
        why.kind,
        f"Sodtrack has {label} {reference}; changing its {fields} was refused: {why.message}",
        why.suggested_fix,
        why.fields,
    )
