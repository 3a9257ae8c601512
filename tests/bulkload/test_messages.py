"""Plain-language messages: every API error code has one, in the sheet's terms."""

from __future__ import annotations

from sodtrack.bulkload.messages import (
    API_MESSAGES,
    CHECK_MESSAGES,
    explain_api_error,
    explain_check,
    explain_dependency,
    explain_transient,
    phrase_details,
)
from sodtrack.contract.errors import ErrorCode

CTX = {
    "service": "INST-AC-12000",
    "variant": "(none)",
    "postal_code": "7500000",
    "start": "2026-12-03 10:00 (America/Santiago)",
    "amount": "45990",
    "currency": "CLP",
    "country_currency": "CLP",
    "project": "PRJ-1",
    "reference": "PAY-1",
}

RETRIED_BY_CLIENT = {"rate_limited", "internal_error", "unavailable", "token_expired"}


def test_every_permanent_api_code_has_a_message() -> None:
    for code in ErrorCode:
        if code.value in RETRIED_BY_CLIENT:
            continue
        assert code.value in API_MESSAGES, code


def test_not_covered_names_service_and_postal_code() -> None:
    e = explain_api_error("postal_code_not_covered", step="booking", context=CTX)
    assert e.kind == "invalid"
    assert e.message == (
        "Sodtrack has no active contractor zone for service INST-AC-12000 at postal code 7500000."
    )
    assert e.suggested_fix == "Check the postal code, or choose a service that is offered there."


def test_slot_taken_is_a_conflict_for_a_person() -> None:
    e = explain_api_error("slot_unavailable", step="booking", context=CTX)
    assert e.kind == "conflict"
    assert "2026-12-03 10:00 (America/Santiago)" in e.message


def test_validation_details_are_phrased_with_column_names() -> None:
    e = explain_api_error(
        "validation_error",
        step="booking",
        details=[("customer.email", "invalid_format"), ("address.postal_code", "required")],
    )
    assert "the customer's e-mail (customer_email) is not in a valid format" in e.message
    assert "the postal code (postal_code) is missing" in e.message
    assert phrase_details([]) == "the values were not accepted"
    assert "(weird_issue)" in phrase_details([("x", "weird_issue")])


def test_unknown_code_and_missing_values_never_fail() -> None:
    e = explain_api_error("brand_new_code", step="payment", api_message="something")
    assert "something" in e.message
    e = explain_api_error("postal_code_not_covered", step="booking", context={})
    assert "service ? at postal code ?" in e.message


def test_checks_and_dependencies() -> None:
    e = explain_check("unknown_service_sku", CTX)
    assert e.message.startswith("Service SKU INST-AC-12000 does not exist")
    assert set(CHECK_MESSAGES) >= {"no_capacity", "overpayment_in_file", "not_a_slot_start"}
    transient = explain_transient(step="project", reason="503 five times")
    dep = explain_dependency(
        parent_step="project", parent_key="PRJ-1", parent=transient, own_step="booking"
    )
    assert dep.kind == "dependency"
    assert "project PRJ-1 failed" in dep.message
    assert "re-run the same file" in dep.suggested_fix
    rejected = explain_api_error("validation_error", step="project", details=[("name", "required")])
    dep = explain_dependency(
        parent_step="project", parent_key="PRJ-1", parent=rejected, own_step="payment"
    )
    assert dep.suggested_fix.startswith("Fix the project first")
