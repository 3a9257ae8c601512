"""Schemathesis conformance: the simulator against the generated OpenAPI document.

Every operation of ``schemas/openapi.json`` (as ``build_openapi()`` makes it) is exercised
in-process (ASGI) against a small, seeded simulator with a fixed clock and rate limiting off,
with schemathesis's default phases (examples, coverage, fuzzing), both generation modes
(positive and negative) and **all of its default checks**: server errors, status codes,
content types, response headers, response schemas, negative data rejected, positive data
accepted, missing required headers, unsupported methods, ``Allow`` headers, ignored auth.

Authentication: a token is obtained from ``POST /auth/token`` with the simulator's configured
credentials and sent as ``Authorization: Bearer``; ``ignored_auth`` then checks that each
operation refuses the request without it and with a wrong one.

Path parameters are pinned to records that exist (an open project created here, its stage and
task, a seeded booking, form and service), so that the handlers behind the 404 are exercised,
not just the lookup.

429 and 503 never occur there (rate limiting and faults are off), so two more simulators
(one request allowed, then 429s; every request a 503) answer one request per operation, and the
answers are checked against the document (status, error envelope, X-Request-Id, X-RateLimit-*,
Retry-After).

Not run: the stateful phase (schemathesis's links between operations), and
``object_level_authorization`` needs a second identity configured; both are outside the
default per-operation run.

One explicit, minimal adjustment (``POSITIVE_422``), and why
------------------------------------------------------------
``positive_data_acceptance`` expects any schema-valid request to be answered 2xx (or 401, 403,
404, 409, 429, 5xx). The contract deliberately answers ``422`` to requests that a JSON Schema
cannot rule out, because the rule depends on data or on the server's country, not on shape:

* an unknown ``service_id``/``project_id``/``variant_id`` in a body or query (``422
  validation_error``, issue ``not_found``; not a 404, since the URL names an existing
  collection), a closed project, a booking not in the project;
* postal-code format of the API's country (one document serves seven countries), ``currency``
  being the project's, an amount with the currency's minor units, ``overpayment``;
* at least one of ``customer.email``/``customer.phone``; a lead form's own fields;
* ``slot_unavailable``, ``service_inactive``, ``variant_mismatch``, ``range_too_wide``,
  ``postal_code_not_covered``, ``invalid_transition``: the state of the world;
* a ``cursor`` that is not one the server issued (it is opaque: any string is schema-valid).

For exactly the operations whose contract has such rules, ``422`` is added to this one check's
expected statuses. Nothing is excluded: every check (this one included) runs on every
operation, and the operations not listed (plain lists, gets) must accept every schema-valid
request. (The token endpoint needs no entry: schemathesis itself lets the operation at the
security scheme's ``tokenUrl`` refuse credentials that do not exist with 400/422.)
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any, cast

import schemathesis
from schemathesis.core.result import Ok
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from sodtrack.contract.countries import get_country
from sodtrack.contract.limits import API_PREFIX, DOCUMENT_FILE_FIELD, HEADER_RETRY_AFTER
from sodtrack.contract.openapi import build_openapi
from sodtrack.contract.operations import OPERATIONS, Operation
from sodtrack.simulator.app import create_app
from sodtrack.simulator.config import SimConfig

SIM = SimConfig(
    now="2026-06-01T12:00:00+00:00",
    rate_limit=0,
    seed=7,
    bookings=40,
    categories=6,
    services=12,
    variants=24,
    zones=6,
    postal_codes=60,
)
APP = create_app(SIM)
MAX_EXAMPLES = 15
SEED = 20261203

POSITIVE_422 = (
    "check_coverage",  # unknown service, postal-code format of the API's country
    "get_availability",  # same, plus range_too_wide, postal_code_not_covered
    "list_bookings",  # a cursor the server did not issue
    "list_projects",  # same
    "create_booking",  # ids, formats, email-or-phone, coverage, slots (rules 1-6)
    "update_booking",  # invalid_transition, slot_unavailable
    "cancel_booking",  # a completed booking: invalid_transition
    "create_project",  # postal-code format, email-or-phone
    "create_stage",  # not_in_project, booking_cancelled
    "update_stage",  # same
    "create_payment",  # currency_mismatch, minor units, stage not the project's, overpayment
    "upload_document",  # not a PDF, PNG or JPEG (judged by its bytes)
    "submit_lead",  # the form's own fields
)
"""Operations whose contract rejects some schema-valid requests with 422 (see the docstring)."""


def _url(op_id: str, **path: str) -> str:
    return API_PREFIX + OPERATIONS[op_id].url(**path)


def _client() -> asgi.ASGIClient:
    """An in-process client sharing the app's lifespan with schemathesis's own calls."""
    return asgi.get_client(cast("Any", APP))


def _token(client: asgi.ASGIClient) -> str:
    response = client.post(
        _url("issue_token"),
        json={"client_id": SIM.client_id, "client_secret": SIM.client_secret},
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def _existing_records() -> dict[str, str]:
    """Ids of records that exist, for the path parameters: an open project with a stage and
    its tasks (the seeded projects may all be closed), a scheduled booking, a form, a service
    with variants."""
    with _client() as client:
        auth = {"Authorization": f"Bearer {_token(client)}"}

        def call(method: str, url: str, **kwargs: Any) -> Any:
            response = client.request(method, url, headers=auth, **kwargs)
            assert response.ok, (method, url, response.status_code, response.text)
            return response.json()

        zones = call("GET", _url("list_coverage_zones"))["data"]
        country = get_country(SIM.country)
        project = call(
            "POST",
            _url("create_project"),
            json={
                "external_reference": "CONFORMANCE-PRJ-1",
                "name": "Conformance project",
                "customer": {"first_name": "Ana", "last_name": "Rojas", "phone": "+56912345678"},
                "address": {
                    "line1": "Av. Providencia 1234",
                    "city": "Santiago",
                    "region": "RM",
                    "postal_code": zones[0]["postal_codes"][0],
                    "country": country.code,
                },
            },
        )
        stage = call(
            "POST",
            _url("create_stage", project_id=project["id"]),
            json={"name": "Demolition", "sequence": 1},
        )
        tasks = call("GET", _url("list_tasks", project_id=project["id"]))["data"]
        bookings = call("GET", _url("list_bookings"), params={"status": "scheduled"})["data"]
        forms = call("GET", _url("list_forms"))["data"]
        services = call("GET", _url("list_services"))["data"]
        with_variants = [
            s
            for s in services
            if call("GET", _url("list_variants", service_id=s["id"]))["meta"]["total_items"]
        ]
    return {
        "path.project_id": project["id"],
        "path.stage_id": stage["id"],
        "path.task_id": tasks[0]["id"],
        "path.booking_id": bookings[0]["id"],
        "path.form_id": forms[0]["id"],
        "path.service_id": with_variants[0]["id"],
    }


CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "generation": {
            "max-examples": MAX_EXAMPLES,
            "deterministic": True,
            "database": "none",
        },
        "parameters": _existing_records(),
        "operations": [
            {
                "include-operation-id": list(POSITIVE_422),
                "checks": {
                    "positive_data_acceptance": {
                        "expected-statuses": [
                            "2xx",
                            "3xx",
                            "401",
                            "403",
                            "404",
                            "409",
                            "422",
                            "429",
                            "5xx",
                        ]
                    }
                },
            }
        ],
    }
)
schema = schemathesis.openapi.from_dict(build_openapi(), config=CONFIG)
schema.app = APP


@schema.auth()
class SimulatorToken:
    """A real token from the simulator's token endpoint, sent as ``Authorization: Bearer``."""

    def get(self, case: schemathesis.Case[Any], context: schemathesis.AuthContext) -> str:
        with _client() as client:
            return _token(client)

    def set(
        self, case: schemathesis.Case[Any], data: str, context: schemathesis.AuthContext
    ) -> None:
        case.headers["Authorization"] = f"Bearer {data}"


def test_every_operation_is_tested() -> None:
    results = list(schema.get_all_operations())
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) == len(results) == len(OPERATIONS)
    assert {op.definition.raw["operationId"] for op in operations} == set(OPERATIONS)
    assert set(POSITIVE_422) <= set(OPERATIONS)


@schema.parametrize()
def test_simulator_conforms(case: schemathesis.Case[Any]) -> None:
    case.call_and_validate()


# ---------------------------------------------------------------- transient errors
# The generated cases never meet a 429 or a 503 (rate limiting and faults are off above). Two
# more simulators produce them on every operation, and the document's declaration of those
# responses (status, error envelope, X-Request-Id, X-RateLimit-*, Retry-After) is checked.

RESPONSE_CHECKS = [
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def _fixed_case(app: Any, op: Operation, token: str | None) -> schemathesis.Case[Any]:
    """The same request to ``op`` on ``app``: its route, an empty body; the answer comes
    before routing or validation (rate limit, fault)."""
    transient = schemathesis.openapi.from_dict(build_openapi(), config=CONFIG)
    transient.app = app
    operation = transient.find_operation_by_id(op.id)
    kwargs: dict[str, Any] = {
        "path_parameters": dict.fromkeys(re.findall(r"\{(\w+)\}", op.path), "x"),
        "headers": {"Authorization": f"Bearer {token}"} if token else {},
    }
    if op.multipart:
        kwargs |= {"body": {DOCUMENT_FILE_FIELD: b"%PDF-1.4"}, "media_type": "multipart/form-data"}
    elif op.body is not None:
        kwargs |= {"body": {}, "media_type": "application/json"}
    return operation.Case(**kwargs)


def test_rate_limited_answers_conform() -> None:
    app = create_app(replace(SIM, rate_limit=0.001, burst=1))  # one request, then 429s
    with asgi.get_client(cast("Any", app)) as client:
        token = _token(client)
    for op in OPERATIONS.values():
        case = _fixed_case(app, op, token)
        response = case.call()
        assert response.status_code == 429, (op.id, response.status_code, response.text)
        assert int(response.headers[HEADER_RETRY_AFTER.lower()][0]) >= 1
        case.validate_response(response, checks=RESPONSE_CHECKS)


def test_unavailable_answers_conform() -> None:
    app = create_app(replace(SIM, fault_rate=1.0))  # every API request: 503
    for op in OPERATIONS.values():
        case = _fixed_case(app, op, None)
        response = case.call()
        assert response.status_code == 503, (op.id, response.status_code, response.text)
        case.validate_response(response, checks=RESPONSE_CHECKS)
