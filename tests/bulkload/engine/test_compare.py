"""The comparison of a row with Sodtrack's record (``bulkload.engine.compare``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from sodtrack.bulkload.engine.compare import (
    FIELDS,
    compare,
    describe,
    normalise,
    patchable_fields,
    rules_for,
)

SANTIAGO = ZoneInfo("America/Santiago")
START = datetime(2026, 12, 3, 10, 0, tzinfo=SANTIAGO)

BOOKING: dict[str, object] = {
    "service_sku": "INST-AC-12000",
    "variant_sku": None,
    "scheduled_start": START,
    "customer_first_name": "Ana",
    "customer_last_name": "Rojas",
    "customer_email": "ana@example.com",
    "customer_phone": "+56912345678",
    "customer_document_id": None,
    "address_line1": "Av. Providencia 1234",
    "address_line2": None,
    "city": "Santiago",
    "region": "RM",
    "postal_code": "7500000",
    "notes": None,
    "project_reference": None,
}


def test_the_table_says_what_the_contract_lets_us_change() -> None:
    # booking_status: along the contract's graph only (the difference says whether it can)
    assert patchable_fields("booking") == ("scheduled_start", "notes", "booking_status")
    assert patchable_fields("project") == ("project_name",)
    assert patchable_fields("stage") == ("stage_name",)
    assert patchable_fields("payment") == ()
    assert {r.field for r in rules_for("booking")} == set(BOOKING) | {
        "booking_status",
        "cancellation_reason",
    }
    assert len({(r.resource, r.field) for r in FIELDS}) == len(FIELDS)


def test_identical_under_the_loaders_normalisation() -> None:
    have = dict(BOOKING)
    # Sodtrack answers in UTC with microseconds; empty text equals null; blanks around text
    have["scheduled_start"] = "2026-12-03T13:00:00.000000Z"
    have["notes"] = ""
    have["customer_first_name"] = "Ana "
    c = compare("booking", BOOKING, have)
    assert c.verdict == "identical", c.differences
    assert c.patch_body() == {}


def test_money_compares_as_decimal_and_instants_as_instants() -> None:
    assert normalise("money", "45990") == normalise("money", Decimal("45990.00"))
    assert normalise("money", "149.90") != normalise("money", "149.91")
    plus = datetime(2026, 6, 1, 0, 0, tzinfo=timezone(timedelta(hours=-4)))
    assert normalise("instant", plus) == normalise("instant", "2026-06-01T04:00:00Z")
    assert normalise("text", "  ") is None
    assert normalise("id", "") is None


def test_patchable_differences_make_an_update_with_absolute_values() -> None:
    want = dict(BOOKING, notes="Call first", scheduled_start=START + timedelta(days=1))
    c = compare("booking", want, BOOKING)
    assert c.verdict == "update"
    assert c.changed_fields == ("scheduled_start", "notes")
    body = c.patch_body()
    assert body == {
        "scheduled_start": (START + timedelta(days=1)).astimezone(UTC),
        "notes": "Call first",
    }


def test_clearing_notes_is_a_patch_to_null() -> None:
    c = compare("booking", dict(BOOKING, notes=None), dict(BOOKING, notes="old"))
    assert c.verdict == "update"
    assert c.patch_body() == {"notes": None}


def test_any_unpatchable_difference_refuses_the_row_and_names_every_field() -> None:
    want = dict(BOOKING, customer_first_name="Anna", city="Providencia", notes="x")
    c = compare("booking", want, BOOKING)
    assert c.verdict == "refuse"
    assert c.patch_body() == {}
    assert [d.field for d in c.refused] == ["customer_first_name", "city"]
    text = describe(c.differences, SANTIAGO)
    assert text == (
        "customer_first_name ('Ana' there, 'Anna' here), city ('Santiago' there, "
        "'Providencia' here) and notes ('empty' there, 'x' here)"
    )


def test_a_cancelled_booking_is_refused_even_when_identical() -> None:
    c = compare("booking", BOOKING, dict(BOOKING, booking_status="cancelled"))
    assert c.cancelled
    assert c.verdict == "refuse"


def test_a_row_saying_cancelled_matches_a_cancelled_booking_reason_included() -> None:
    have = dict(BOOKING, booking_status="cancelled", cancellation_reason="lluvia")
    same = dict(BOOKING, booking_status="cancelled", cancellation_reason=" lluvia")
    assert compare("booking", same, have).verdict == "identical"
    other = compare("booking", dict(same, cancellation_reason="otra"), have)
    assert other.verdict == "refuse"
    assert other.changed_fields == ("cancellation_reason",)
    assert not other.cancelled


def test_status_differences_follow_the_contracts_graph() -> None:
    have = dict(BOOKING, booking_status="scheduled", cancellation_reason=None)
    forward = compare("booking", dict(BOOKING, booking_status="completed", notes="x"), have)
    assert forward.verdict == "update"
    assert forward.patch_body() == {"notes": "x"}  # the status is walked, not PATCHed whole
    assert forward.status_move == ("scheduled", "completed")
    cancel = compare(
        "booking", dict(BOOKING, booking_status="cancelled", cancellation_reason="r"), have
    )
    assert cancel.status_move == ("scheduled", "cancelled")
    back = compare(
        "booking",
        dict(BOOKING, booking_status="scheduled"),
        dict(have, booking_status="confirmed"),
    )
    assert back.verdict == "refuse"
    assert back.status_refused is not None
    assert back.status_move is None
    assert describe(back.differences) == "booking_status ('confirmed' there, 'scheduled' here)"
    # No status in the row: not compared, whatever Sodtrack says (it moves bookings on).
    assert compare("booking", BOOKING, dict(have, booking_status="completed")).verdict == (
        "identical"
    )


def test_starts_are_shown_in_local_time() -> None:
    c = compare("booking", dict(BOOKING, scheduled_start=START + timedelta(hours=1)), BOOKING)
    assert describe(c.differences, SANTIAGO) == (
        "scheduled_start ('2026-12-03 10:00' there, '2026-12-03 11:00' here)"
    )


def test_fields_the_row_does_not_carry_are_not_compared() -> None:
    want = {k: v for k, v in BOOKING.items() if k != "customer_document_id"}
    c = compare("booking", want, dict(BOOKING, customer_document_id="12.345.678-5"))
    assert c.verdict == "identical"


# ---------------------------------------------------------------- generated corpus

_TEXT = st.one_of(st.none(), st.text(max_size=12))
_CHANGES = st.dictionaries(
    st.sampled_from(sorted(BOOKING)),
    st.one_of(_TEXT, st.integers(1, 400).map(lambda h: START + timedelta(hours=h))),
    max_size=6,
)


def _expected(changes: dict[str, object]) -> str:
    rules = {r.field: r for r in rules_for("booking")}
    differing = [
        f
        for f, v in changes.items()
        if normalise(rules[f].kind, v) != normalise(rules[f].kind, BOOKING[f])
    ]
    if any(not rules[f].patchable for f in differing):
        return "refuse"
    return "update" if differing else "identical"


@settings(max_examples=300, deadline=None)
@given(_CHANGES)
def test_generated_changes_get_the_verdict_of_their_field_set(changes: dict[str, object]) -> None:
    """Random changes over a booking: the verdict follows from the set of fields that really
    differ (after normalisation), the PATCH carries exactly the patchable ones, and applying
    the PATCH to Sodtrack's record makes the two identical (idempotent: a second comparison
    finds nothing to do)."""
    want = {**BOOKING, **changes}
    c = compare("booking", want, BOOKING)
    assert c.verdict == _expected(changes)
    if c.verdict == "update":
        body = c.patch_body()
        assert set(body) == {d.patch for d in c.differences}
        fields = {d.patch: d.field for d in c.differences}
        patched = dict(BOOKING)
        for key, value in body.items():
            assert key is not None
            patched[fields[key]] = value
        assert compare("booking", want, patched).verdict == "identical"
    if c.verdict == "refuse":
        text = describe(c.differences)
        for d in c.refused:
            assert d.field in text
