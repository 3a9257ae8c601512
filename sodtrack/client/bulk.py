"""Bulk reads: a cursor page's JSON bytes straight to an Arrow record batch.

The model path (``CursorPage[Booking].model_validate_json`` then one Python list per column)
costs most of a page's time on a big walk: a ``Booking`` per record, four timestamps and a
money value through Python validators, then the columns built back from the objects.
:class:`ArrowPageDecoder` reads the page with Arrow's JSON reader (C++, columnar) against an
explicit schema derived from the response model, checks the columns as the model would, and
casts them to the dataset's declared types. Writes keep their pydantic models; only walks
that land in the warehouse read this way (``SodtrackClient.list_bookings_arrow``).

**Same verdict as the model, by construction.** The fast path only accepts a page when every
check below passes; anything it cannot vouch for (including pages the model would accept,
e.g. an extra field after an additive API change, a ``+03:00`` offset with seven fractional
digits, money written ``1e3``) goes to the model path: ``parse_model`` with the page model,
which raises the very :class:`~sodtrack.client.errors.UnreadableResponse` (same reason, same
detail) the model walk raises, or returns models that the caller's ``fallback`` converts (so a
money value Arrow cannot hold exactly fails as it always did). ``fallbacks`` counts those pages.

What the fast path checks, per page:

* the body is one JSON object (first non-blank byte ``{``, exactly one row), UTF-8, no field
  the model does not declare (Arrow's ``unexpected_field_behavior="error"``), no key twice
  in an object (Arrow refuses that), every value of the JSON type of its field (a number
  where a string is declared is refused, as the model refuses it);
* required fields (every field of a response model is required; a field with a default is
  refused when the decoder is built): a field that cannot be null has no null, and a field
  that may be null (``variant_id: str | None``) must still be *present*. Arrow reads a
  missing key as null, so the nulls it read are matched against the ``null`` s written in
  the body: the bytes ``":null`` not preceded by a backslash are exactly the compact
  explicit nulls of known keys (a JSON string escapes every quote; an unknown key, whose
  ``null`` would be counted without being read, is refused), and the two totals agree only
  when no key is missing (``"key": null`` with a blank also differs: model path);
* timestamps: RFC 3339 with an offset (the models' ``Timestamp`` rule), cast by Arrow to
  UTC microseconds (an impossible date fails the cast), year 1 or later;
* money: a decimal string ``-?digits[.digits]`` cast exactly to the declared decimal
  (Arrow refuses a cast that would lose digits);
* enums: every value is a member.

Error messages never carry a value of the body: Arrow's own messages (which quote values)
are not surfaced; the model path words the error.
"""

from __future__ import annotations

import io
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Generic, TypeVar

import httpx
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj
from pydantic import BaseModel

from sodtrack.client.core import parse_model
from sodtrack.contract.models import CursorPage

M = TypeVar("M", bound=BaseModel)

RFC3339_WITH_OFFSET = r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
"""The models' timestamp rule with the offset required (``AwareDatetime`` refuses naive)."""
MONEY_WIRE = r"^-?\d+(\.\d+)?$"
"""The contract's money pattern (the model also takes other decimal spellings: model path)."""

_MIN_BLOCK = 1 << 16


class _OffFastPath(Exception):
    """Internal: the fast path cannot vouch for this page (the model path decides)."""


@dataclass(frozen=True, slots=True)
class DecodedPage:
    """A cursor page read in bulk: the records as one batch, and the next cursor."""

    data: pa.RecordBatch
    next_cursor: str | None

    def __len__(self) -> int:
        return int(self.data.num_rows)


@dataclass(frozen=True, slots=True)
class _Leaf:
    column: str
    path: tuple[str, ...]
    target: pa.DataType
    nullable: bool
    enum_values: pa.Array | None


def _optional(annotation: Any) -> tuple[Any, bool]:
    """``X | None`` → ``(X, True)``; anything else → ``(annotation, False)``."""
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1 and len(args) != len(typing.get_args(annotation)):
            return args[0], True
    return annotation, False


def _json_type(target: pa.DataType) -> pa.DataType:
    """The type Arrow reads from the JSON text for a target column type."""
    if pa.types.is_timestamp(target) or pa.types.is_decimal(target):
        return pa.string()
    if pa.types.is_string(target) or pa.types.is_boolean(target) or pa.types.is_integer(target):
        return target
    raise TypeError(f"no bulk reading for a column of type {target}")


class ArrowPageDecoder(Generic[M]):
    """Reads ``CursorPage[model]`` bodies into batches of ``schema`` (see the module doc).

    ``schema`` holds the model's fields flattened (a nested model's field ``customer.email``
    is column ``customer_email``), in the order wanted; every column maps to a field and
    every field to a column. ``fallback`` turns the models of a page the fast path could not
    vouch for into a batch of the same schema (and raises whatever the model converter
    raises on values it cannot store).
    """

    def __init__(
        self,
        model: type[M],
        schema: pa.Schema,
        fallback: Callable[[Sequence[M]], pa.RecordBatch],
    ) -> None:
        self.model = model
        self.schema = schema
        self.fallback = fallback
        self.page_model: type[CursorPage[Any]] = CursorPage[model]  # type: ignore[valid-type]
        self.fallbacks = 0
        """Pages the fast path handed to the model path (read correctly, only slower)."""
        self.pages = 0
        targets = {f.name: f.type for f in schema}
        self._leaves: list[_Leaf] = []
        record_type = self._struct(model, (), "", targets)
        unused = set(targets) - {leaf.column for leaf in self._leaves}
        if unused:
            raise TypeError(f"columns {sorted(unused)} are not fields of {model.__name__}")
        by_column = {leaf.column: leaf for leaf in self._leaves}
        self._leaves = [by_column[name] for name in schema.names]
        self._json_schema = pa.schema(
            [
                pa.field("data", pa.list_(record_type)),
                pa.field("next_cursor", pa.string()),
            ]
        )
        self._parse_options = pj.ParseOptions(
            explicit_schema=self._json_schema, unexpected_field_behavior="error"
        )

    def _struct(
        self, model: type[BaseModel], path: tuple[str, ...], prefix: str, targets: dict[str, Any]
    ) -> pa.StructType:
        fields: list[pa.Field] = []
        for name, info in model.model_fields.items():
            key = info.alias or name
            inner, nullable = _optional(info.annotation)
            if not info.is_required():
                raise TypeError(f"{model.__name__}.{name}: a field with a default")
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                if nullable:
                    raise TypeError(f"{model.__name__}.{name}: an optional nested model")
                sub = self._struct(inner, (*path, key), f"{prefix}{name}_", targets)
                fields.append(pa.field(key, sub))
                continue
            column = prefix + name
            if column not in targets:
                raise TypeError(f"{model.__name__}.{name}: no column {column!r} in the schema")
            enum_values = None
            if isinstance(inner, type) and issubclass(inner, Enum):
                enum_values = pa.array([str(m.value) for m in inner])
            elif inner is str and info.metadata:
                raise TypeError(f"{model.__name__}.{name}: constrained strings are not mirrored")
            target = targets[column]
            self._leaves.append(_Leaf(column, (*path, key), target, nullable, enum_values))
            fields.append(pa.field(key, _json_type(target)))
        return pa.struct(fields)

    # ------------------------------------------------------------------ decoding

    def decode(self, response: httpx.Response, operation: str) -> DecodedPage:
        """The page as a batch, or :class:`UnreadableResponse` exactly as the model says."""
        self.pages += 1
        try:
            return self._fast(response.content)
        except _OffFastPath:
            pass
        self.fallbacks += 1
        page = parse_model(response, self.page_model, operation)
        batch = self.fallback(page.data)
        return DecodedPage(batch, page.next_cursor)

    def _fast(self, content: bytes) -> DecodedPage:
        if content.lstrip()[:1] != b"{":
            raise _OffFastPath
        try:
            table = pj.read_json(
                io.BytesIO(content),
                read_options=pj.ReadOptions(
                    use_threads=False, block_size=max(len(content) + 1, _MIN_BLOCK)
                ),
                parse_options=self._parse_options,
            )
        except (pa.ArrowException, ValueError):
            raise _OffFastPath from None
        if table.num_rows != 1:
            raise _OffFastPath
        data = table.column("data").combine_chunks()
        if data.null_count:
            raise _OffFastPath
        cursor = table.column("next_cursor")[0].as_py()
        records: pa.StructArray = data.flatten()
        n = len(records)
        columns = [self._column(records, leaf, n) for leaf in self._leaves]
        self._check_present(content, columns, cursor)
        batch = pa.RecordBatch.from_arrays(columns, schema=self.schema)
        try:
            batch.validate(full=True)  # UTF-8 of every string, among others
        except pa.ArrowInvalid:
            raise _OffFastPath from None
        return DecodedPage(batch, cursor)

    def _check_present(self, content: bytes, columns: list[pa.Array], cursor: str | None) -> None:
        """Every null Arrow read is a ``null`` written in the body, none a missing key.

        ``"<key>":null`` (written compactly) is counted as the bytes ``":null`` not preceded
        by a backslash: inside a JSON string a quote is always escaped (``\\"``), and a real
        key ending in a backslash is not a field of the model (refused above). Each such
        occurrence is one explicit null of one column, so the total equals the nulls Arrow
        read exactly when no key is missing (a ``null`` written ``"key": null`` makes the
        counts differ too: the model path then reads the page).
        """
        written = content.count(b'":null') - content.count(b'\\":null')
        read = sum(column.null_count for column in columns) + (cursor is None)
        if written != read:
            raise _OffFastPath

    def _column(self, records: pa.StructArray, leaf: _Leaf, n: int) -> pa.Array:
        array: pa.Array = records
        for key in leaf.path:
            if not leaf.nullable and array.null_count:
                raise _OffFastPath
            array = array.field(key)
        if not leaf.nullable and array.null_count:
            raise _OffFastPath
        if n == 0 or array.null_count == n:
            return array.cast(leaf.target)
        target = leaf.target
        if leaf.enum_values is not None and not _all(pc.is_in(array, value_set=leaf.enum_values)):
            raise _OffFastPath
        if pa.types.is_timestamp(target):
            if not _all(pc.match_substring_regex(array, RFC3339_WITH_OFFSET)):
                raise _OffFastPath
            array = _cast(array, target)
            if pc.min(pc.year(array)).as_py() < 1:
                raise _OffFastPath
            return array
        if pa.types.is_decimal(target):
            if not _all(pc.match_substring_regex(array, MONEY_WIRE)):
                raise _OffFastPath
            return _cast(array, target)
        return array


def _all(mask: pa.Array) -> bool:
    return pc.all(mask, skip_nulls=True, min_count=0).as_py() is True


def _cast(array: pa.Array, target: pa.DataType) -> pa.Array:
    try:
        return array.cast(target, safe=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise _OffFastPath from None
