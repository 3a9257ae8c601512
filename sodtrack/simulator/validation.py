"""Request parsing and the mapping of shape problems to the contract's field issues.

* Bodies: a JSON endpoint needs ``Content-Type: application/json`` and a JSON document, else
  ``400 malformed_request``. The document is then checked against the contract's request
  model (``sodtrack.contract.models``) in pydantic's *strict* JSON mode (no ``"3"`` for 3, no
  ``1`` for ``"1"``), and every problem becomes one ``details`` entry.
* Queries: only the operation's declared parameters (its query model's fields, plus the
  paging ones) are accepted, each at most once; values are checked with the same model.
* Field names in ``details`` are dotted paths (``customer.email``), list items with an index
  (``booking_ids[2]``); a problem with the body as a whole has field ``body``.
"""

from __future__ import annotations

import base64
import binascii
from datetime import date, datetime
from types import UnionType
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

import orjson
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from sodtrack.contract.errors import ErrorCode, Issue
from sodtrack.contract.limits import (
    CURSOR_LIMIT_DEFAULT,
    CURSOR_LIMIT_MAX,
    PAGE_NUMBER_MAX,
    PAGE_SIZE_DEFAULT,
    PAGE_SIZE_MAX,
    PARAM_CURSOR,
    PARAM_LIMIT,
    PARAM_PAGE,
    PARAM_PAGE_SIZE,
)
from sodtrack.contract.operations import Operation, Paging
from sodtrack.simulator.errors import ApiError, Detail, validation_error

M = TypeVar("M", bound=BaseModel)

_TYPE_ERRORS_AS_FORMAT = {
    "string_pattern_mismatch",
    "enum",
    "literal_error",
    "timezone_aware",
    "datetime_parsing",
    "datetime_from_date_parsing",
    "datetime_type",
    "date_parsing",
    "date_from_datetime_parsing",
    "date_from_datetime_inexact",
    "string_too_long",
    "decimal_parsing",
    "bool_parsing",
    "int_parsing",
    "int_from_float",
    "url_parsing",
}
_RANGE_ERRORS = {
    "greater_than",
    "greater_than_equal",
    "less_than",
    "less_than_equal",
    "too_short",
    "too_long",
}


_MEMBER_TAGS = frozenset(
    {"str", "int", "float", "bool", "datetime", "date", "decimal", "list", "dict"}
)


def _is_member_tag(part: str) -> bool:
    """pydantic names the member of a union (or a validator wrapper) inside ``loc``:
    ``str-enum[TaskStatus]``, ``function-before[...]``, ``none``... not a field."""
    return "[" in part or part in _MEMBER_TAGS or part == "none"


def field_name(loc: tuple[int | str, ...]) -> str:
    loc = tuple(p for p in loc if isinstance(p, int) or not _is_member_tag(p))
    if not loc:
        return "body"
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def issue_of(error: ErrorDetails) -> Issue:
    kind = error["type"]
    if kind == "missing":
        return Issue.REQUIRED
    if kind == "extra_forbidden":
        return Issue.UNKNOWN_FIELD
    if kind == "string_too_short":
        # An empty string where text is required counts as missing.
        return (
            Issue.REQUIRED if error.get("ctx", {}).get("min_length") == 1 else Issue.INVALID_FORMAT
        )
    if kind in _RANGE_ERRORS:
        return Issue.OUT_OF_RANGE
    if kind in _TYPE_ERRORS_AS_FORMAT:
        return Issue.INVALID_FORMAT
    if kind == "value_error":  # Money: a JSON number where a string is due
        return Issue.INVALID_TYPE
    if kind.endswith("_type") and error.get("input", ...) is None:
        return Issue.REQUIRED  # null for a required field
    return Issue.INVALID_TYPE


def details_of(exc: ValidationError) -> list[Detail]:
    seen: set[Detail] = set()
    result: list[Detail] = []
    for error in exc.errors():
        if "none" in error["loc"]:
            continue  # the ``None`` member of an optional field's union: noise
        detail = (field_name(tuple(error["loc"])), str(issue_of(error)))
        if detail not in seen:
            seen.add(detail)
            result.append(detail)
    return result


# ---------------------------------------------------------------- bodies


def require_json(content_type: str | None, raw: bytes) -> Any:
    """The JSON document of a request body, or ``400 malformed_request``."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media != "application/json":
        raise ApiError(ErrorCode.MALFORMED_REQUEST, "Content-Type must be application/json")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ApiError(ErrorCode.MALFORMED_REQUEST, "The body is not valid JSON") from None


def check_shape(model: type[M], raw: bytes) -> tuple[M | None, list[Detail]]:
    """The body as the contract's request model, or the list of field issues.

    JSON types are held strictly (``_type_issues``: no ``"3"`` for an int, no number for a
    timestamp) before pydantic validates values in its lax JSON mode (strict mode would also
    refuse the contract's own before-validators' outputs)."""
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError:
        document = None
    typed = _type_issues(model, document, ()) if isinstance(document, dict) else []
    try:
        parsed = model.model_validate_json(raw)
    except ValidationError as exc:
        flagged = {f for f, _ in typed}
        return None, typed + [d for d in details_of(exc) if d[0] not in flagged]
    return (None, typed) if typed else (parsed, [])


def _kinds(annotation: Any) -> set[Any]:
    args = get_args(annotation)
    if get_origin(annotation) in (Union, UnionType):
        return {k for a in args for k in _kinds(a)}
    if get_origin(annotation) is Annotated:
        return _kinds(args[0])
    return {annotation}


def _type_issues(
    model: type[BaseModel], document: dict[str, Any], at: tuple[str, ...]
) -> list[Detail]:
    """JSON-type mismatches pydantic's lax mode would coerce away."""
    details: list[Detail] = []
    for name, info in model.model_fields.items():
        if name not in document or document[name] is None:
            continue
        value = document[name]
        kinds = _kinds(info.annotation)
        where = field_name((*at, name))
        if int in kinds and bool not in kinds:
            if isinstance(value, bool) or not isinstance(value, int):
                details.append((where, Issue.INVALID_TYPE))
        elif bool in kinds:
            if not isinstance(value, bool):
                details.append((where, Issue.INVALID_TYPE))
        elif kinds & {datetime, date}:
            if not isinstance(value, str):
                details.append((where, Issue.INVALID_TYPE))
        else:
            nested = [k for k in kinds if isinstance(k, type) and issubclass(k, BaseModel)]
            if nested and isinstance(value, dict):
                details += _type_issues(nested[0], value, (*at, name))
    return details


def parse_body(model: type[M], raw: bytes) -> M:
    parsed, details = check_shape(model, raw)
    if parsed is None:
        raise validation_error(details)
    return parsed


# ---------------------------------------------------------------- queries

PAGE_PARAMS = (PARAM_PAGE, PARAM_PAGE_SIZE)
CURSOR_PARAMS = (PARAM_LIMIT, PARAM_CURSOR)


def query_params(op: Operation, items: list[tuple[str, str]]) -> dict[str, str]:
    """The query as a dict, after refusing unknown and repeated parameters."""
    allowed = set(op.query.model_fields) if op.query is not None else set()
    if op.paging is Paging.PAGE:
        allowed.update(PAGE_PARAMS)
    elif op.paging is Paging.CURSOR:
        allowed.update(CURSOR_PARAMS)
    result: dict[str, str] = {}
    details: list[Detail] = []
    for key, value in items:
        if key not in allowed:
            details.append((key, Issue.UNKNOWN_FIELD))
        elif key in result:
            details.append((key, Issue.INVALID_FORMAT))
        else:
            result[key] = value
    if details:
        raise validation_error(details, "Unknown or repeated query parameters")
    return result


def check_query(model: type[M], params: dict[str, str]) -> tuple[M | None, list[Detail]]:
    """The filters as the contract's query model. Booleans must be ``true`` or ``false``
    exactly (not pydantic's lax ``yes``/``1``)."""
    details: list[Detail] = []
    values: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        if name not in params:
            continue
        value = params[name]
        if info.annotation in (bool, bool | None):
            if value not in ("true", "false"):
                details.append((name, Issue.INVALID_FORMAT))
                continue
            values[name] = value == "true"
        else:
            values[name] = value
    try:
        parsed = model.model_validate(values)
    except ValidationError as exc:
        return None, details + details_of(exc)
    if details:
        return None, details
    return parsed, []


def int_param(
    params: dict[str, str], name: str, default: int, low: int, high: int
) -> tuple[int, list[Detail]]:
    text = params.get(name)
    if text is None:
        return default, []
    if not text.isascii() or not text.lstrip("-").isdigit():
        return default, [(name, Issue.INVALID_FORMAT)]
    value = int(text)
    if not low <= value <= high:
        return default, [(name, Issue.OUT_OF_RANGE)]
    return value, []


def page_params(params: dict[str, str]) -> tuple[tuple[int, int], list[Detail]]:
    page, d1 = int_param(params, "page", 1, 1, PAGE_NUMBER_MAX)
    size, d2 = int_param(params, "page_size", PAGE_SIZE_DEFAULT, 1, PAGE_SIZE_MAX)
    return (page, size), d1 + d2


def limit_param(params: dict[str, str]) -> tuple[int, list[Detail]]:
    return int_param(params, PARAM_LIMIT, CURSOR_LIMIT_DEFAULT, 1, CURSOR_LIMIT_MAX)


# ---------------------------------------------------------------- cursors


def encode_cursor(position: tuple[int, str], filters: dict[str, Any]) -> str:
    """An opaque cursor: the last position returned and the walk's filters."""
    payload = orjson.dumps({"p": list(position), "f": filters}, option=orjson.OPT_SORT_KEYS)
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


def decode_cursor(text: str) -> tuple[tuple[int, str], dict[str, Any]] | None:
    try:
        payload = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        position = payload["p"]
        filters = payload["f"]
        if (
            isinstance(position, list)
            and len(position) == 2
            and isinstance(position[0], int)
            and isinstance(position[1], str)
            and isinstance(filters, dict)
        ):
            return (position[0], position[1]), filters
    except (binascii.Error, ValueError, KeyError, TypeError):
        pass
    return None
