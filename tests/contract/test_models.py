"""The wire conventions the contract models carry (``sodtrack-api.md`` § Conventions)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from sodtrack.contract import models as m

NOW = datetime(2026, 12, 3, 13, 0, tzinfo=UTC)
SANTIAGO = timezone(timedelta(hours=-3))


def _payment(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "external_reference": "PAY-2026-0001",
        "amount": "149.90",
        "currency": "PEN",
        "method": "card",
        "paid_at": "2026-12-03T10:00:00-03:00",
    }
    return body | overrides


def _booking(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "external_reference": "OPS-2026-11-000123",
        "service_id": "svc_001",
        "scheduled_start": "2026-12-03T10:00:00-03:00",
        "customer": {"first_name": "Ana", "last_name": "Rojas", "phone": "+56912345678"},
        "address": {
            "line1": "Av. Providencia 1234",
            "city": "Santiago",
            "region": "RM",
            "postal_code": "7500000",
            "country": "cl",
        },
    }
    return body | overrides


def _error_types(exc: ValidationError) -> set[str]:
    return {str(e["type"]) for e in exc.errors()}


# ---------------------------------------------------------------- money


def test_money_is_parsed_from_a_string_exactly() -> None:
    payment = m.PaymentCreate.model_validate(_payment(amount="149.90"))
    assert payment.amount == Decimal("149.90")
    assert str(payment.amount) == "149.90"  # the scale survives: no float on the way


@pytest.mark.parametrize("amount", [149.9, 45990, 0.1])
def test_money_refuses_json_numbers(amount: float) -> None:
    with pytest.raises(ValidationError, match="never a number"):
        m.PaymentCreate.model_validate(_payment(amount=amount))


def test_money_refuses_a_json_number_on_the_wire() -> None:
    with pytest.raises(ValidationError, match="never a number"):
        m.PaymentCreate.model_validate_json(
            '{"external_reference": "P1", "amount": 149.9, "currency": "PEN", '
            '"method": "card", "paid_at": "2026-12-03T10:00:00Z"}'
        )


@pytest.mark.parametrize("amount", ["abc", "", "NaN", "Infinity", "-inf"])
def test_money_refuses_non_decimal_and_non_finite_strings(amount: str) -> None:
    with pytest.raises(ValidationError):
        m.PaymentCreate.model_validate(_payment(amount=amount))


def test_money_is_written_as_a_string_with_its_scale() -> None:
    payment = m.Payment(
        id="pay_1",
        external_reference="P1",
        project_id="prj_1",
        stage_id=None,
        amount=Decimal("45990"),
        currency="CLP",
        method=m.PaymentMethod.CARD,
        paid_at=NOW,
        created_at=NOW,
    )
    wire = payment.model_dump(mode="json")
    assert wire["amount"] == "45990"
    assert isinstance(wire["amount"], str)
    pen = payment.model_copy(update={"amount": Decimal("149.90")}).model_dump(mode="json")
    assert pen["amount"] == "149.90"


# ---------------------------------------------------------------- timestamps


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (datetime(2026, 12, 3, 10, 0, tzinfo=SANTIAGO), "2026-12-03T13:00:00.000000Z"),
        (datetime(2026, 12, 3, 13, 0, 0, 123, tzinfo=UTC), "2026-12-03T13:00:00.000123Z"),
        (
            datetime(2027, 1, 1, 1, 30, tzinfo=timezone(timedelta(hours=5))),
            "2026-12-31T20:30:00.000000Z",
        ),
    ],
)
def test_format_timestamp_is_utc_z_with_six_digits(value: datetime, expected: str) -> None:
    assert m.format_timestamp(value) == expected
    assert re.fullmatch(m.TIMESTAMP_RESPONSE_PATTERN, expected)


def test_responses_write_timestamps_in_utc_with_six_digits() -> None:
    slot = m.Slot(
        start=datetime(2026, 12, 3, 10, 0, tzinfo=SANTIAGO),
        end=datetime(2026, 12, 3, 11, 0, tzinfo=SANTIAGO),
        capacity=2,
    )
    assert slot.model_dump(mode="json") == {
        "start": "2026-12-03T13:00:00.000000Z",
        "end": "2026-12-03T14:00:00.000000Z",
        "capacity": 2,
    }
    assert '"2026-12-03T13:00:00.000000Z"' in slot.model_dump_json()


@pytest.mark.parametrize(
    "value",
    ["2026-12-03T10:00:00-03:00", "2026-12-03T13:00:00Z", "2026-12-03T13:00:00.5+00:00"],
)
def test_requests_accept_any_offset(value: str) -> None:
    booking = m.BookingCreate.model_validate(_booking(scheduled_start=value))
    assert booking.scheduled_start.utcoffset() is not None
    assert booking.scheduled_start.astimezone(UTC).hour == 13


@pytest.mark.parametrize("value", ["2026-12-03T10:00:00", "2026-12-03T10:00:00.123456"])
def test_timestamps_refuse_naive_values(value: str) -> None:
    with pytest.raises(ValidationError) as info:
        m.BookingCreate.model_validate(_booking(scheduled_start=value))
    assert _error_types(info.value) == {"timezone_aware"}


def test_timestamps_refuse_naive_datetime_objects() -> None:
    with pytest.raises(ValidationError):
        m.UpdatedSinceQuery(updated_since=datetime(2026, 12, 3, 10, 0))


# ---------------------------------------------------------------- unknown fields

_REQUESTS: list[tuple[type[BaseModel], dict[str, Any]]] = [
    (m.TokenRequest, {"client_id": "c", "client_secret": "s"}),
    (m.BookingCreate, _booking()),
    (m.BookingUpdate, {"notes": "x"}),
    (m.BookingCancel, {"reason": "customer asked"}),
    (
        m.ProjectCreate,
        {k: v for k, v in _booking().items() if k in ("customer", "address")}
        | {"external_reference": "PRJ-1", "name": "Kitchen"},
    ),
    (m.ProjectUpdate, {"name": "Kitchen"}),
    (m.StageCreate, {"name": "Demolition", "sequence": 1}),
    (m.StageUpdate, {"status": "active"}),
    (m.PaymentCreate, _payment()),
    (m.TaskUpdate, {"status": "done"}),
    (m.LeadSubmission, {"fields": {"name": "Ana"}}),
    (m.DocumentUpload, {"kind": "invoice"}),
    (m.ActiveQuery, {"active": True}),
    (m.BookingListQuery, {"status": "scheduled"}),
    (
        m.AvailabilityQuery,
        {
            "service_id": "s",
            "postal_code": "7500000",
            "date_from": "2026-12-03",
            "date_to": "2026-12-04",
        },
    ),
]


@pytest.mark.parametrize(("model", "valid"), _REQUESTS, ids=lambda x: getattr(x, "__name__", ""))
def test_requests_and_queries_forbid_unknown_fields(
    model: type[BaseModel], valid: dict[str, Any]
) -> None:
    model.model_validate(valid)
    with pytest.raises(ValidationError) as info:
        model.model_validate(valid | {"surprise": 1})
    assert _error_types(info.value) == {"extra_forbidden"}


def test_nested_request_objects_forbid_unknown_fields() -> None:
    body = _booking()
    body["address"] = body["address"] | {"floor": "5"}
    with pytest.raises(ValidationError) as info:
        m.BookingCreate.model_validate(body)
    assert _error_types(info.value) == {"extra_forbidden"}


def test_responses_ignore_unknown_fields() -> None:
    lead = m.Lead.model_validate(
        {
            "id": "lead_1",
            "form_id": "frm_1",
            "external_reference": None,
            "status": "new",
            "created_at": "2026-12-03T13:00:00.000000Z",
            "added_by_a_later_api_version": True,
        }
    )
    assert lead.id == "lead_1"
    assert "added_by_a_later_api_version" not in lead.model_dump()


# ---------------------------------------------------------------- other request rules


@pytest.mark.parametrize("ref", ["", "a" * 65, "has space", "ñandú", "a/b"])
def test_external_reference_pattern(ref: str) -> None:
    with pytest.raises(ValidationError):
        m.BookingCreate.model_validate(_booking(external_reference=ref))


def test_external_reference_accepts_its_alphabet() -> None:
    m.BookingCreate.model_validate(_booking(external_reference="Ops-2026.11_000123"))
    m.BookingCreate.model_validate(_booking(external_reference="a" * 64))


def test_document_upload_kind_defaults_to_other() -> None:
    assert m.DocumentUpload().kind is m.DocumentKind.OTHER


def test_error_envelope_always_has_details_and_existing_id() -> None:
    wire = m.ErrorEnvelope(
        error=m.ErrorBody(code="not_found", message="no such booking", request_id="req_1")
    ).model_dump(mode="json")
    assert wire["error"]["details"] == []
    assert wire["error"]["existing_id"] is None


# ---------------------------------------------------------------- RFC 3339 only


@pytest.mark.parametrize("value", ["0.5", "1733230800", "2026-12-03", "2026-12-03T10:00Z", "x"])
def test_timestamps_refuse_text_that_is_not_rfc_3339(value: str) -> None:
    """Pydantic alone reads ``"0.5"`` and ``"1733230800"`` as Unix time; the contract does not."""
    with pytest.raises(ValidationError):
        m.UpdatedSinceQuery.model_validate({"updated_since": value})
    with pytest.raises(ValidationError):
        m.BookingUpdate.model_validate_json(f'{{"scheduled_start": "{value}"}}', strict=True)


@pytest.mark.parametrize("value", [0, 1733230800, 0.5])
def test_timestamps_refuse_numbers(value: float) -> None:
    with pytest.raises(ValidationError):
        m.BookingCreate.model_validate(_booking(scheduled_start=value))


@pytest.mark.parametrize("value", ["0", "86400", "2026-12-03T00:00:00", "20261203", "2026-1-3"])
def test_calendar_dates_are_yyyy_mm_dd_only(value: str) -> None:
    query = {"service_id": "s", "postal_code": "7500000", "date_to": "2026-12-04"}
    with pytest.raises(ValidationError):
        m.AvailabilityQuery.model_validate(query | {"date_from": value})
    parsed = m.AvailabilityQuery.model_validate(query | {"date_from": "2026-12-03"})
    assert parsed.date_from.isoformat() == "2026-12-03"


# ---------------------------------------------------------------- PATCH bodies

_PATCHES: list[tuple[type[BaseModel], set[str]]] = [
    (m.BookingUpdate, {"notes"}),
    (m.ProjectUpdate, set()),
    (m.StageUpdate, set()),
    (m.TaskUpdate, {"notes"}),
]


@pytest.mark.parametrize(("model", "clearable"), _PATCHES, ids=lambda x: getattr(x, "__name__", ""))
def test_patch_schemas_need_a_field_and_allow_null_only_where_clearable(
    model: type[BaseModel], clearable: set[str]
) -> None:
    schema = model.model_json_schema()
    assert schema["minProperties"] == 1
    nullable = {
        name
        for name, prop in schema["properties"].items()
        if {"type": "null"} in prop.get("anyOf", [])
    }
    assert nullable == clearable
    for name in set(schema["properties"]) - clearable:
        # null still parses (the API answers it with a 422 of its own, never a crash)
        assert getattr(model.model_validate({name: None}), name) is None


def test_patch_text_fields_keep_their_minimum_length() -> None:
    with pytest.raises(ValidationError) as info:
        m.ProjectUpdate.model_validate_json('{"name": ""}', strict=True)
    assert _error_types(info.value) == {"string_too_short"}
    assert m.StageUpdate.model_validate_json('{"name": null}', strict=True).name is None
