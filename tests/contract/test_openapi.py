"""The committed OpenAPI document is the generator's output, valid OpenAPI 3.1, and complete."""

from __future__ import annotations

import copy
import re
from typing import Any

import jsonschema_rs
import pytest
import schemathesis
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.definitions import OPENAPI_31

from sodtrack.contract import limits
from sodtrack.contract.countries import COUNTRIES
from sodtrack.contract.openapi import (
    DOCUMENT_PATH,
    SIMULATOR_URL,
    build_openapi,
    error_statuses,
    main,
    render,
)
from sodtrack.contract.operations import OPERATIONS, Operation, Paging
from sodtrack.simulator.config import SimConfig

REGENERATE = "uv run python -m sodtrack.contract.openapi --write"
JSON_SCHEMA_2020_12 = "https://json-schema.org/draft/2020-12/schema"


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return build_openapi()


def _resolve(doc: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = doc
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _spec(doc: dict[str, Any], op: Operation) -> dict[str, Any]:
    spec: dict[str, Any] = doc["paths"][op.path][op.method.lower()]
    return spec


# ---------------------------------------------------------------- golden file


def test_committed_document_is_up_to_date(doc: dict[str, Any]) -> None:
    assert DOCUMENT_PATH.exists(), f"{DOCUMENT_PATH} is missing: run `{REGENERATE}`"
    committed = DOCUMENT_PATH.read_text(encoding="utf-8")
    assert committed == render(doc), (
        f"{DOCUMENT_PATH.name} is stale (the contract module changed): run `{REGENERATE}` "
        "and commit the result"
    )


def test_generation_is_deterministic() -> None:
    assert render(build_openapi()) == render(build_openapi())


def test_cli_check_agrees(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--check"]) == 0
    assert main([]) == 0
    assert capsys.readouterr().out == DOCUMENT_PATH.read_text(encoding="utf-8")


# ---------------------------------------------------------------- validity


def _oas31_meta_schema() -> dict[str, Any]:
    """The official OAS 3.1 schema (2022-10-07, as bundled by schemathesis), with one fix.

    That iteration types ``tokenUrl`` (and the other OAuth2 flow URLs) as ``format: uri``,
    i.e. absolute, although the specification lets every URL be a relative reference resolved
    against the Server Object (OAS 3.1 § Relative References in URLs). The schema's maintainers
    agree it is a bug of the schema (OAI/OpenAPI-Specification#4327); later iterations use
    ``uri-reference``. Our ``tokenUrl`` is relative on purpose: the token endpoint is on each
    server (three environments times seven countries, plus the simulator).
    """
    meta = copy.deepcopy(OPENAPI_31)
    patched = 0

    def walk(node: Any) -> None:
        nonlocal patched
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("tokenUrl", "authorizationUrl", "refreshUrl") and value == {
                    "type": "string",
                    "format": "uri",
                }:
                    value["format"] = "uri-reference"
                    patched += 1
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(meta)
    assert patched, "the bundled OAS 3.1 schema changed shape: revisit this fix"
    return meta


def test_document_is_valid_openapi_3_1(doc: dict[str, Any]) -> None:
    assert doc["openapi"].startswith("3.1.")
    validator = jsonschema_rs.validator_for(_oas31_meta_schema(), validate_formats=True)
    errors = [f"{e.instance_path}: {e.message}" for e in validator.iter_errors(doc)]
    assert not errors, "\n".join(errors)


def test_only_the_token_url_needs_the_meta_schema_fix(doc: dict[str, Any]) -> None:
    """Against the unpatched bundled schema, the relative ``tokenUrl`` is the only complaint."""
    validator = jsonschema_rs.validator_for(OPENAPI_31, validate_formats=True)
    token_url = "components/securitySchemes/oauth2/flows/clientCredentials/tokenUrl"
    paths = {"/".join(map(str, e.instance_path)) for e in validator.iter_errors(doc)}
    assert token_url in paths
    assert all(token_url.startswith(path) for path in paths), paths


def test_every_schema_is_valid_json_schema_2020_12(doc: dict[str, Any]) -> None:
    for name, schema in doc["components"]["schemas"].items():
        try:
            jsonschema_rs.meta.validate(schema | {"$schema": JSON_SCHEMA_2020_12})
        except jsonschema_rs.ValidationError as exc:  # pragma: no cover - message only
            pytest.fail(f"components.schemas.{name}: {exc.message}")


def test_every_local_reference_resolves(doc: dict[str, Any]) -> None:
    refs: set[str] = set()

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.add(node["$ref"])
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    collect(doc)
    assert refs
    for ref in sorted(refs):
        assert ref.startswith("#/components/"), ref
        _resolve(doc, {"$ref": ref})  # KeyError names the dangling one


def test_schemathesis_loads_every_operation(doc: dict[str, Any]) -> None:
    schema = schemathesis.openapi.from_dict(copy.deepcopy(doc))
    results = list(schema.get_all_operations())
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) == len(results), "schemathesis could not read every operation"
    loaded = {(operation.method.upper(), operation.path) for operation in operations}
    assert loaded == {(op.method, op.path) for op in OPERATIONS.values()}
    assert schema.base_path == limits.API_PREFIX + "/"


# ---------------------------------------------------------------- contents


@pytest.mark.parametrize("op", OPERATIONS.values(), ids=lambda op: op.id)
def test_operation_is_in_the_document(doc: dict[str, Any], op: Operation) -> None:
    assert op.path in doc["paths"], f"{op.path} missing"
    assert op.method.lower() in doc["paths"][op.path], f"{op.method} {op.path} missing"
    spec = _spec(doc, op)
    assert spec["operationId"] == op.id
    assert str(op.status) in spec["responses"]
    statuses = {int(s) for s in spec["responses"]}
    assert statuses == {op.status, *error_statuses(op)}
    assert {int(s) for s in spec["responses"] if s.startswith("2")} == {op.status}


def test_operation_ids_are_unique_and_nothing_extra(doc: dict[str, Any]) -> None:
    ids = [
        spec["operationId"]
        for item in doc["paths"].values()
        for spec in item.values()
        if isinstance(spec, dict)
    ]
    assert sorted(ids) == sorted(OPERATIONS)


def test_servers_cover_every_environment_and_country(doc: dict[str, Any]) -> None:
    servers = doc["servers"]
    urls = [s["url"] for s in servers]
    assert all(url.endswith(limits.API_PREFIX) for url in urls)
    sim = SimConfig()
    assert f"http://{sim.host}:{sim.port}{limits.API_PREFIX}" == urls[-1]
    assert urls[-1] == SIMULATOR_URL + limits.API_PREFIX
    templated = [s for s in servers if "{country}" in s["url"]]
    assert len(templated) == 3
    for server in templated:
        assert server["variables"]["country"]["enum"] == sorted(COUNTRIES)
    assert any(s["url"].startswith("https://integration.{country}.") for s in templated)


def test_security_declares_each_operation_scope(doc: dict[str, Any]) -> None:
    schemes = doc["components"]["securitySchemes"]
    flow = schemes["oauth2"]["flows"]["clientCredentials"]
    assert flow["tokenUrl"] == limits.API_PREFIX + OPERATIONS["issue_token"].path
    assert set(flow["scopes"]) == set(limits.ALL_SCOPES)
    assert schemes["bearerAuth"] == schemes["bearerAuth"] | {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }
    for op in OPERATIONS.values():
        security = _spec(doc, op)["security"]
        if op.scope is None:
            assert security == []
        else:
            assert security == [{"oauth2": [op.scope]}, {"bearerAuth": [op.scope]}]
            assert op.scope in limits.ALL_SCOPES


def _params(doc: dict[str, Any], op: Operation) -> dict[str, dict[str, Any]]:
    params = [_resolve(doc, p) for p in _spec(doc, op).get("parameters", [])]
    return {p["name"]: p for p in params}


@pytest.mark.parametrize("op", OPERATIONS.values(), ids=lambda op: op.id)
def test_parameters(doc: dict[str, Any], op: Operation) -> None:
    params = _params(doc, op)
    path_names = re.findall(r"\{([^}]+)\}", op.path)
    for name in path_names:
        assert params[name]["in"] == "path"
        assert params[name]["required"] is True
    query = {n for n, p in params.items() if p["in"] == "query"}
    expected = set(op.query.model_fields) if op.query is not None else set()
    if op.paging is Paging.PAGE:
        expected |= {"page", "page_size"}
        size = params["page_size"]["schema"]
        assert (size["minimum"], size["maximum"], size["default"]) == (
            1,
            limits.PAGE_SIZE_MAX,
            limits.PAGE_SIZE_DEFAULT,
        )
        assert params["page"]["schema"]["minimum"] == 1
    elif op.paging is Paging.CURSOR:
        expected |= {"limit", "cursor"}
        lim = params["limit"]["schema"]
        assert (lim["minimum"], lim["maximum"], lim["default"]) == (
            1,
            limits.CURSOR_LIMIT_MAX,
            limits.CURSOR_LIMIT_DEFAULT,
        )
    assert query == expected
    if op.query is not None:
        for name, field in op.query.model_fields.items():
            assert params[name]["required"] is field.is_required()
            assert "null" not in str(params[name]["schema"]), "query values are never null"


@pytest.mark.parametrize("op", OPERATIONS.values(), ids=lambda op: op.id)
def test_request_bodies(doc: dict[str, Any], op: Operation) -> None:
    spec = _spec(doc, op)
    if op.multipart:
        content = spec["requestBody"]["content"]
        assert set(content) == {"multipart/form-data"}
        form = content["multipart/form-data"]["schema"]
        assert form["properties"]["file"] == form["properties"]["file"] | {
            "type": "string",
            "format": "binary",
        }
        assert set(form["properties"]) == {"file", "stage_id", "kind", "external_reference"}
        assert form["required"] == ["file"]
    elif op.body is not None:
        content = spec["requestBody"]["content"]
        assert content == {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{op.body.__name__}"}}
        }
        body = _resolve(doc, content["application/json"]["schema"])
        assert body["additionalProperties"] is False
    else:
        assert "requestBody" not in spec


@pytest.mark.parametrize("op", OPERATIONS.values(), ids=lambda op: op.id)
def test_success_envelopes(doc: dict[str, Any], op: Operation) -> None:
    response = _resolve(doc, _spec(doc, op)["responses"][str(op.status)])
    schema = _resolve(doc, response["content"]["application/json"]["schema"])
    assert op.response is not None
    item = f"#/components/schemas/{op.response.__name__}"
    if op.paging is Paging.PAGE:
        assert set(schema["required"]) == {"data", "meta"}
        assert schema["properties"]["data"]["items"] == {"$ref": item}
        assert schema["properties"]["meta"] == {"$ref": "#/components/schemas/PageMeta"}
    elif op.paging is Paging.CURSOR:
        assert set(schema["required"]) == {"data", "next_cursor"}
        assert schema["properties"]["data"]["items"] == {"$ref": item}
        assert {"type": "null"} in schema["properties"]["next_cursor"]["anyOf"]
    else:
        assert response["content"]["application/json"]["schema"] == {"$ref": item}


def test_error_statuses_follow_the_contract() -> None:
    ops = OPERATIONS
    assert 413 in error_statuses(ops["upload_document"])
    assert [o.id for o in ops.values() if 413 in error_statuses(o)] == ["upload_document"]
    conflicts = {o.id for o in ops.values() if 409 in error_statuses(o)}
    assert conflicts == {
        "create_booking",
        "create_project",
        "create_stage",
        "update_stage",
        "create_payment",
        "upload_document",
        "submit_lead",
    }
    assert 403 not in error_statuses(ops["issue_token"])
    assert 404 not in error_statuses(ops["list_bookings"])
    assert 404 in error_statuses(ops["get_booking"])
    assert 400 not in error_statuses(ops["get_booking"])
    for op in ops.values():
        assert {401, 422, 429, 500, 503} <= set(error_statuses(op))


def test_errors_use_the_envelope_and_every_response_has_the_headers(
    doc: dict[str, Any],
) -> None:
    rate_headers = {
        limits.HEADER_REQUEST_ID,
        limits.HEADER_RATE_LIMIT,
        limits.HEADER_RATE_REMAINING,
        limits.HEADER_RATE_RESET,
    }
    for op in OPERATIONS.values():
        for status, ref in _spec(doc, op)["responses"].items():
            response = _resolve(doc, ref)
            headers = {n: _resolve(doc, h) for n, h in response["headers"].items()}
            assert rate_headers <= set(headers), (op.id, status)
            assert all(headers[n]["required"] for n in rate_headers)
            if status.startswith(("4", "5")):
                assert response["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/ErrorEnvelope"
                }
            if status == "429":
                assert headers[limits.HEADER_RETRY_AFTER]["required"] is True
            elif status == "503":
                assert headers[limits.HEADER_RETRY_AFTER]["required"] is False
            else:
                assert limits.HEADER_RETRY_AFTER not in headers


def test_error_body_fields_are_always_present(doc: dict[str, Any]) -> None:
    body = doc["components"]["schemas"]["ErrorBody"]
    assert set(body["required"]) == {"code", "message", "details", "existing_id", "request_id"}


def test_timestamps_and_money(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    updated_at = schemas["Booking"]["properties"]["updated_at"]
    assert updated_at["format"] == "date-time"
    assert re.fullmatch(updated_at["pattern"], "2026-12-03T13:00:00.000000Z")
    assert not re.fullmatch(updated_at["pattern"], "2026-12-03T13:00:00Z")
    assert schemas["BookingCreate"]["properties"]["scheduled_start"] == {
        "format": "date-time",
        "title": "Scheduled Start",
        "type": "string",
    }
    assert schemas["Payment"]["properties"]["amount"]["type"] == "string"
    assert schemas["PaymentCreate"]["properties"]["amount"]["type"] == "string"
