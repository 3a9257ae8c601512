"""The OpenAPI 3.1 document of the whole contract, generated from the route table and models.

Nothing here re-types a path, a field or a limit: paths, methods, scopes, paging and status
codes come from ``operations.OPERATIONS``, schemas from the pydantic models in ``models``
(``models_json_schema``), numbers from ``limits``, countries from ``countries``, error codes
from ``errors``. The committed ``schemas/openapi.json`` is this module's output, and a golden
test keeps the two equal::

    uv run python -m sodtrack.contract.openapi            # print the document
    uv run python -m sodtrack.contract.openapi --write    # refresh schemas/openapi.json
    uv run python -m sodtrack.contract.openapi --check    # exit 1 if the file is stale
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

from pydantic import BaseModel, create_model
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from sodtrack.contract import limits
from sodtrack.contract import models as m
from sodtrack.contract.countries import COUNTRIES
from sodtrack.contract.environments import BASE_URLS
from sodtrack.contract.errors import STATUS_OF, ErrorCode
from sodtrack.contract.operations import OPERATIONS, Operation, Paging

OPENAPI_VERSION: Final = "3.1.0"
API_TITLE: Final = "Sodtrack Integration API"
API_VERSION: Final = "1.0.0"
SIMULATOR_URL: Final = "http://127.0.0.1:8765"
"""Where ``sodtrack-sim serve`` listens by default (``SimConfig.host``/``port``; a test keeps
them equal without the contract importing the simulator)."""

DOCUMENT_PATH: Final = Path(__file__).resolve().parents[2] / "schemas" / "openapi.json"
REF_TEMPLATE: Final = "#/components/schemas/{model}"

OAUTH2_SCHEME: Final = "oauth2"
BEARER_SCHEME: Final = "bearerAuth"

JSON: Final = "application/json"
MULTIPART: Final = "multipart/form-data"

MULTIPART_FORMS: Final[dict[str, type[BaseModel]]] = {"upload_document": m.DocumentUpload}
"""The form fields (beside the binary ``file`` part) of each multipart operation."""
FILE_PART: Final = limits.DOCUMENT_FILE_FIELD
DOCUMENT_MEDIA_TYPES: Final = ("application/pdf", "image/png", "image/jpeg")

CONFLICT_FIELDS: Final[dict[str, ErrorCode]] = {
    "external_reference": ErrorCode.DUPLICATE_EXTERNAL_REFERENCE,
    "sequence": ErrorCode.DUPLICATE_STAGE,
    "booking_ids": ErrorCode.BOOKING_ALREADY_STAGED,
}
"""Request fields whose value can collide with an existing record (the contract's 409s)."""

_STATUS_NAMES: Final[dict[int, str]] = {
    400: "MalformedRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    413: "PayloadTooLarge",
    422: "ValidationError",
    429: "RateLimited",
    500: "InternalError",
    503: "Unavailable",
}

_STATUS_MEANING: Final[dict[int, str]] = {
    400: "The body is not JSON, or the content type is wrong: a bug, do not retry.",
    401: "Get a new token (once), then retry.",
    403: "Permanent.",
    404: "Permanent.",
    409: "The thing already exists: `existing_id` names it.",
    413: "Permanent (a document over the size limit).",
    422: "Permanent for this input; `details` lists field issues.",
    429: "Wait `Retry-After` seconds, then retry.",
    500: "Transient: retry with backoff. A write may or may not have been committed.",
    503: "Transient: retry with backoff (after `Retry-After` when present).",
}


# ---------------------------------------------------------------- schemas


def _envelope(op: Operation) -> type[BaseModel] | None:
    """The model of the success body: the item wrapped in its page envelope where paged."""
    item = op.response
    if item is None or op.paging is Paging.NONE:
        return item
    if op.paging is Paging.PAGE:
        return create_model(f"{item.__name__}Page", __base__=m.Page[item])  # type: ignore[valid-type]
    return create_model(f"{item.__name__}CursorPage", __base__=m.CursorPage[item])  # type: ignore[valid-type]


def _schema_inputs() -> tuple[
    list[tuple[type[BaseModel], JsonSchemaMode]], dict[str, type[BaseModel] | None]
]:
    """Every (model, mode) the document needs, and each operation's success-body model."""
    inputs: dict[tuple[str, JsonSchemaMode], tuple[type[BaseModel], JsonSchemaMode]] = {}

    def add(model: type[BaseModel] | None, mode: JsonSchemaMode) -> None:
        if model is not None:
            inputs.setdefault((model.__name__, mode), (model, mode))

    envelopes: dict[str, type[BaseModel] | None] = {}
    add(m.ErrorEnvelope, "serialization")
    for op in OPERATIONS.values():
        envelope = _envelope(op)
        envelopes[op.id] = envelope
        add(envelope, "serialization")
        add(op.body, "validation")
        add(op.query, "validation")
        add(MULTIPART_FORMS.get(op.id), "validation")
    return list(inputs.values()), envelopes


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF_TEMPLATE.format(model=model.__name__)}


def _non_null(schema: dict[str, Any]) -> dict[str, Any]:
    """``X | None`` as a query or form value: absent is how "none" is said, never ``null``."""
    schema = {k: v for k, v in schema.items() if k not in ("title", "default")} | (
        {"default": schema["default"]} if schema.get("default") is not None else {}
    )
    branches = schema.get("anyOf")
    if isinstance(branches, list):
        kept = [b for b in branches if b != {"type": "null"}]
        if len(kept) == 1:
            rest = {k: v for k, v in schema.items() if k != "anyOf"}
            merged: dict[str, Any] = {**kept[0], **rest}
            return merged
        schema["anyOf"] = kept
    return schema


# ---------------------------------------------------------------- parameters and bodies

_PATH_PARAM: Final = re.compile(r"\{([^{}]+)\}")


def _path_parameters(op: Operation) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "in": "path",
            "required": True,
            "description": "An opaque id: clients must not parse it.",
            "schema": {"type": "string", "minLength": 1},
        }
        for name in _PATH_PARAM.findall(op.path)
    ]


def _query_parameters(op: Operation, schemas: dict[str, Any]) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = []
    if op.paging is Paging.PAGE:
        names = [limits.PARAM_PAGE, limits.PARAM_PAGE_SIZE]
    elif op.paging is Paging.CURSOR:
        names = [limits.PARAM_LIMIT, limits.PARAM_CURSOR]
    else:
        names = []
    params += [{"$ref": f"#/components/parameters/{name}"} for name in names]
    if op.query is not None:
        query_schema = schemas[op.query.__name__]
        required = set(query_schema.get("required", ()))
        for name, prop in query_schema["properties"].items():
            params.append(
                {
                    "name": name,
                    "in": "query",
                    "required": name in required,
                    "schema": _non_null(prop),
                }
            )
    return params


def _page_param(name: str, description: str, *, maximum: int, default: int) -> dict[str, Any]:
    """A paging query parameter: an optional whole number from 1 to ``maximum``."""
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": "integer", "minimum": 1, "maximum": maximum, "default": default},
    }


_PER_PAGE = "Items per page (out of range is a 422, never silently capped)."


def _component_parameters() -> dict[str, Any]:
    return {
        limits.PARAM_PAGE: _page_param(
            limits.PARAM_PAGE,
            "1-based page number; a page past the end returns `data: []`.",
            maximum=limits.PAGE_NUMBER_MAX,
            default=1,
        ),
        limits.PARAM_PAGE_SIZE: _page_param(
            limits.PARAM_PAGE_SIZE,
            _PER_PAGE,
            maximum=limits.PAGE_SIZE_MAX,
            default=limits.PAGE_SIZE_DEFAULT,
        ),
        limits.PARAM_LIMIT: _page_param(
            limits.PARAM_LIMIT,
            _PER_PAGE,
            maximum=limits.CURSOR_LIMIT_MAX,
            default=limits.CURSOR_LIMIT_DEFAULT,
        ),
        limits.PARAM_CURSOR: {
            "name": limits.PARAM_CURSOR,
            "in": "query",
            "required": False,
            "description": (
                "Opaque `next_cursor` of the previous page. It carries the walk's filters: send "
                "it with the same filters or none (different ones are a 422). It does not expire."
            ),
            "schema": {"type": "string"},
        },
    }


def _multipart_schema(form: type[BaseModel], schemas: dict[str, Any]) -> dict[str, Any]:
    form_schema = schemas[form.__name__]
    properties: dict[str, Any] = {
        FILE_PART: {
            "type": "string",
            "format": "binary",
            "description": (
                f"{', '.join(DOCUMENT_MEDIA_TYPES)} (judged by its bytes), at most "
                f"{limits.DOCUMENT_MAX_BYTES} bytes, else 413."
            ),
        }
    }
    properties |= {name: _non_null(prop) for name, prop in form_schema["properties"].items()}
    return {
        "type": "object",
        "properties": properties,
        "required": [FILE_PART, *form_schema.get("required", ())],
        "additionalProperties": False,
    }


def _request_body(op: Operation, schemas: dict[str, Any]) -> dict[str, Any] | None:
    if op.multipart:
        form = MULTIPART_FORMS[op.id]
        return {
            "required": True,
            "content": {
                MULTIPART: {
                    "schema": _multipart_schema(form, schemas),
                    "encoding": {FILE_PART: {"contentType": ", ".join(DOCUMENT_MEDIA_TYPES)}},
                }
            },
        }
    if op.body is not None:
        return {"required": True, "content": {JSON: {"schema": _ref(op.body)}}}
    return None


# ---------------------------------------------------------------- responses


def _request_fields(op: Operation) -> set[str]:
    fields: set[str] = set()
    for model in (op.body, MULTIPART_FORMS.get(op.id)):
        if model is not None:
            fields |= set(model.model_fields)
    return fields


def error_statuses(op: Operation) -> list[int]:
    """Every error status ``op`` can answer, per the contract (``sodtrack-api.md``)."""
    statuses = {
        STATUS_OF[ErrorCode.INVALID_TOKEN],  # 401: bad credentials, or a missing/expired token
        STATUS_OF[ErrorCode.VALIDATION_ERROR],  # 422: unknown query parameters, at the least
        STATUS_OF[ErrorCode.RATE_LIMITED],  # every request counts, the token endpoint too
        STATUS_OF[ErrorCode.INTERNAL_ERROR],
        STATUS_OF[ErrorCode.UNAVAILABLE],
    }
    if op.scope is not None:
        statuses.add(STATUS_OF[ErrorCode.INSUFFICIENT_SCOPE])  # and country_mismatch
    if op.body is not None or op.multipart:
        statuses.add(STATUS_OF[ErrorCode.MALFORMED_REQUEST])
    if _PATH_PARAM.search(op.path):
        statuses.add(STATUS_OF[ErrorCode.NOT_FOUND])
    if _request_fields(op) & set(CONFLICT_FIELDS):
        statuses.add(STATUS_OF[ErrorCode.DUPLICATE_EXTERNAL_REFERENCE])
    if op.multipart:
        statuses.add(STATUS_OF[ErrorCode.PAYLOAD_TOO_LARGE])
    return sorted(statuses)


def _codes_for(status: int) -> list[str]:
    return [code.value for code, s in STATUS_OF.items() if s == status]


def _rate_headers() -> dict[str, Any]:
    return {
        limits.HEADER_REQUEST_ID: {"$ref": f"#/components/headers/{limits.HEADER_REQUEST_ID}"},
        limits.HEADER_RATE_LIMIT: {"$ref": f"#/components/headers/{limits.HEADER_RATE_LIMIT}"},
        limits.HEADER_RATE_REMAINING: {
            "$ref": f"#/components/headers/{limits.HEADER_RATE_REMAINING}"
        },
        limits.HEADER_RATE_RESET: {"$ref": f"#/components/headers/{limits.HEADER_RATE_RESET}"},
    }


def _component_headers() -> dict[str, Any]:
    retry_after = {
        "description": "Whole seconds to wait before retrying (at least 1).",
        "schema": {"type": "integer", "minimum": 1},
    }
    return {
        limits.HEADER_REQUEST_ID: {
            "description": "Identifies the request (also `error.request_id` on errors).",
            "required": True,
            "schema": {"type": "string", "minLength": 1},
        },
        **{
            name: {
                "description": text,
                "required": True,
                "schema": {"type": "integer", "minimum": 0},
            }
            for name, text in (
                (limits.HEADER_RATE_LIMIT, "The client's token-bucket size."),
                (limits.HEADER_RATE_REMAINING, "Whole tokens left in the client's bucket."),
                (
                    limits.HEADER_RATE_RESET,
                    "Whole seconds until the bucket is full again, rounded up.",
                ),
            )
        },
        limits.HEADER_RETRY_AFTER: retry_after | {"required": False},
        f"{limits.HEADER_RETRY_AFTER}Required": retry_after | {"required": True},
    }


def _component_responses() -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, name in _STATUS_NAMES.items():
        headers = _rate_headers()
        if status == STATUS_OF[ErrorCode.RATE_LIMITED]:
            headers[limits.HEADER_RETRY_AFTER] = {
                "$ref": f"#/components/headers/{limits.HEADER_RETRY_AFTER}Required"
            }
        elif status == STATUS_OF[ErrorCode.UNAVAILABLE]:
            headers[limits.HEADER_RETRY_AFTER] = {
                "$ref": f"#/components/headers/{limits.HEADER_RETRY_AFTER}"
            }
        codes = ", ".join(f"`{code}`" for code in _codes_for(status))
        responses[name] = {
            "description": f"{codes}. {_STATUS_MEANING[status]}",
            "headers": headers,
            "content": {JSON: {"schema": _ref(m.ErrorEnvelope)}},
        }
    return responses


def _success_response(op: Operation, envelope: type[BaseModel] | None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": "Created." if op.status == 201 else "OK.",
        "headers": _rate_headers(),
    }
    if envelope is not None:
        response["content"] = {JSON: {"schema": _ref(envelope)}}
    return response


# ---------------------------------------------------------------- operations


def _security(op: Operation) -> list[dict[str, list[str]]]:
    if op.scope is None:
        return []
    return [{OAUTH2_SCHEME: [op.scope]}, {BEARER_SCHEME: [op.scope]}]


def _tag(op: Operation) -> str:
    return op.path.strip("/").split("/", 1)[0]


def _summary(op: Operation) -> str:
    if op.summary:
        return op.summary
    return op.id.replace("_", " ").capitalize() + "."


def _operation(
    op: Operation, envelope: type[BaseModel] | None, schemas: dict[str, Any]
) -> dict[str, Any]:
    responses: dict[str, Any] = {str(op.status): _success_response(op, envelope)}
    for status in error_statuses(op):
        responses[str(status)] = {"$ref": f"#/components/responses/{_STATUS_NAMES[status]}"}
    spec: dict[str, Any] = {
        "operationId": op.id,
        "summary": _summary(op),
        "tags": [_tag(op)],
        "security": _security(op),
        "responses": responses,
    }
    if op.scope is not None:
        spec["description"] = f"Needs the `{op.scope}` scope."
    params = _path_parameters(op) + _query_parameters(op, schemas)
    if params:
        spec["parameters"] = params
    body = _request_body(op, schemas)
    if body is not None:
        spec["requestBody"] = body
    return spec


def _servers() -> list[dict[str, Any]]:
    countries = sorted(COUNTRIES)
    servers: list[dict[str, Any]] = [
        {
            "url": template + limits.API_PREFIX,
            "description": f"Sodtrack {env}",
            "variables": {
                "country": {
                    "enum": countries,
                    "default": countries[0],
                    "description": "Lower-case ISO 3166 alpha-2 code of the country served.",
                }
            },
        }
        for env, template in BASE_URLS.items()
    ]
    servers.append(
        {"url": SIMULATOR_URL + limits.API_PREFIX, "description": "Local simulator (sodtrack-sim)"}
    )
    return servers


def _security_schemes() -> dict[str, Any]:
    scopes = {scope: f"{scope.replace(':', ' ')} access" for scope in limits.ALL_SCOPES}
    return {
        OAUTH2_SCHEME: {
            "type": "oauth2",
            "description": (
                "Client credentials exchanged at the token endpoint (a JSON body) for a JWT "
                f"that lives {limits.TOKEN_TTL_S} s, sent as `Authorization: Bearer <token>`. "
                "`projects:*` covers stages, payments, documents and tasks."
            ),
            "flows": {
                "clientCredentials": {
                    "tokenUrl": limits.API_PREFIX + OPERATIONS["issue_token"].path,
                    "scopes": scopes,
                }
            },
        },
        BEARER_SCHEME: {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": (
                "The same token as a plain bearer JWT (claims `sub`, `country`, `scope`, `iat`, "
                "`exp`); the listed roles are the scopes it must carry."
            ),
        },
    }


def _used_refs(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            found.add(ref.rsplit("/", 1)[1])
        for value in node.values():
            _used_refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _used_refs(value, found)


def _prune(schemas: dict[str, Any], roots: Iterable[Any]) -> dict[str, Any]:
    """Keep only the schemas reachable from the paths (query models become parameters)."""
    keep: set[str] = set()
    _used_refs(list(roots), keep)
    pending = list(keep)
    while pending:
        found: set[str] = set()
        _used_refs(schemas[pending.pop()], found)
        pending += sorted(found - keep)
        keep |= found
    return {name: schema for name, schema in schemas.items() if name in keep}


def build_openapi() -> dict[str, Any]:
    """The OpenAPI 3.1 document of every operation in the route table."""
    inputs, envelopes = _schema_inputs()
    _, top = models_json_schema(inputs, ref_template=REF_TEMPLATE)
    schemas: dict[str, Any] = top.get("$defs", {})
    clashes = sorted(n for n in schemas if n.endswith(("-Input", "-Output")))
    if clashes:  # a model whose request and response schemas differ: give each its own model
        raise RuntimeError(f"models used both ways with different schemas: {clashes}")

    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS.values():
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, envelopes[op.id], schemas)

    responses = _component_responses()
    tags = sorted({_tag(op) for op in OPERATIONS.values()})
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": API_TITLE,
            "version": API_VERSION,
            "description": (
                "Our model of the Sodtrack Integration API (see `sodtrack-api.md`): generated "
                "from `sodtrack.contract`, implemented by the bundled simulator. JSON in and "
                "out; unknown request fields and query parameters are a 422; timestamps in "
                "responses are UTC with `Z` and six fractional digits; money is a decimal "
                "string beside its `currency`."
            ),
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "servers": _servers(),
        "tags": [{"name": tag} for tag in tags],
        "paths": paths,
        "components": {
            "schemas": _prune(schemas, [paths, responses]),
            "parameters": _component_parameters(),
            "headers": _component_headers(),
            "responses": responses,
            "securitySchemes": _security_schemes(),
        },
    }


def render(document: dict[str, Any]) -> str:
    """The committed form: two-space indent, sorted keys, a final newline."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sodtrack.contract.openapi", description=__doc__.splitlines()[0]
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", action="store_true", help=f"write {DOCUMENT_PATH.name}")
    group.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args(argv)
    text = render(build_openapi())
    if args.write:
        DOCUMENT_PATH.parent.mkdir(parents=True, exist_ok=True)
        DOCUMENT_PATH.write_text(text, encoding="utf-8")
        print(f"wrote {DOCUMENT_PATH}", file=sys.stderr)
        return 0
    if args.check:
        current = DOCUMENT_PATH.read_text(encoding="utf-8") if DOCUMENT_PATH.exists() else ""
        if current != text:
            print(f"{DOCUMENT_PATH} is stale: run `{parser.prog} --write`", file=sys.stderr)
            return 1
        return 0
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
