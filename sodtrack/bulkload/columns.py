"""The columns of a bookings sheet, declared once as data: ``schemas/bulkload/columns.yaml``.

Every column's name, type, required-ness, template help and format, example and aliases per
language live in that reviewed file; this module loads it, validates it (a :mod:`pydantic`
model per entry, plus the rules across entries: unique names, an alias meaning one column
only) and derives the tables the bulk load uses::

    SPEC = load_column_spec()              # at import, from schemas/bulkload/columns.yaml
    SPEC.names                             # the canonical columns, in the file's order
    SPEC.aliases                           # {column: (alias, ...)}, en then es then pt
    SPEC.required("always")                # the columns every row needs
    SPEC["postal_code"].template.help      # the template's comment for the column

Consumers: :mod:`.reading.headers` (canonical columns, aliases, required columns),
:mod:`.reading.rows` (the interpreted fields), :mod:`.template` (columns, help, formats,
drop-down lists) and :mod:`.synth` (the columns a synthetic file fills). ``BookingRow`` and the
plan's ``PlanRow`` stay typed Python (mypy checks them); ``tests/bulkload/test_columns.py``
checks they agree with the spec, and pins the derived tables in
``tests/bulkload/columns.golden.json``.

A malformed spec is refused at load with :class:`ColumnSpecError` naming the entry
(``columns[3] (scheduled_start): ...``).

The header *key* (:func:`header_key`) lives here too: it is what "an alias means one column"
is checked with. :mod:`.reading.headers` uses it to match a sheet's headers.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Iterator, Mapping
from functools import cached_property
from pathlib import Path
from typing import Annotated, Final, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sodtrack.errors import ConfigurationError

SPEC_PATH: Final = Path(__file__).resolve().parents[2] / "schemas" / "bulkload" / "columns.yaml"
"""Where the spec is read from: the repository's ``schemas/`` (the wheel carries it at the same
place relative to the package: see ``[tool.hatch.build.targets.wheel.force-include]``)."""

ColumnType = Literal[
    "text",
    "reference",
    "email",
    "phone",
    "document_id",
    "postal_code",
    "datetime",
    "date",
    "time",
    "booking_status",
    "integer",
    "amount",
    "currency",
    "payment_method",
]
"""What a cell holds once read (see the comment at the top of the YAML)."""

Required = Literal["always", "schedule", "contact", "payment", "optional"]
TemplateFormat = Literal["text", "date", "time", "amount", "integer"]
TemplateList = Literal[
    "services", "variants", "booking_statuses", "payment_methods", "currency", "whole_number"
]
Language = Literal["en", "es", "pt"]
LANGUAGES: Final[tuple[Language, ...]] = ("en", "es", "pt")

HELP_PLACEHOLDERS: Final = frozenset(
    {
        "country_name",
        "time_zone",
        "phone_prefix",
        "postal_code_example",
        "currency",
        "minor_units",
        "slot_first_hour",
        "slot_last_hour",
        "booking_statuses",
        "payment_methods",
    }
)
"""The ``{names}`` a template help text may use (filled per country by :mod:`.template`)."""

ROW_TIME_PARTS: Final = frozenset({"date", "time"})
"""Column types read into another field (``scheduled_start``), not a row field of their own."""


class ColumnSpecError(ConfigurationError):
    """``schemas/bulkload/columns.yaml`` cannot be used: ``entry`` names the column (or the
    file, when the whole file is wrong)."""

    entry: str

    def __init__(self, message: str, *, entry: str) -> None:
        super().__init__(f"{entry}: {message}", setting=str(SPEC_PATH))
        self.entry = entry


_NonEmpty = Annotated[str, Field(min_length=1)]


class TemplateColumn(BaseModel):
    """How the template presents a column."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    help: _NonEmpty
    """The header's comment; ``{placeholders}`` from :data:`HELP_PLACEHOLDERS`."""
    format: TemplateFormat | None = None
    list: TemplateList | None = None
    """The drop-down list (or whole-number check) on the column's cells."""

    def help_for(self, values: Mapping[str, object]) -> str:
        return self.help.format_map(values)


class Column(BaseModel):
    """One column of the sheet (see the comment at the top of the YAML)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")]
    type: ColumnType
    required: Required
    in_project: bool = False
    example: _NonEmpty
    template: TemplateColumn | None = None
    synth: bool
    aliases: dict[Language, tuple[_NonEmpty, ...]]

    @property
    def all_aliases(self) -> tuple[str, ...]:
        """Every alias, English then Spanish then Portuguese."""
        return tuple(a for lang in LANGUAGES for a in self.aliases.get(lang, ()))

    @property
    def is_row_field(self) -> bool:
        """Whether ``BookingRow`` has a field of this name (a date and a time do not: they are
        read into ``scheduled_start``)."""
        return self.type not in ROW_TIME_PARTS


class ColumnSpec:
    """The validated spec and the tables derived from it (read-only)."""

    def __init__(self, columns: tuple[Column, ...]) -> None:
        self.columns = columns
        self._by_name = {c.name: c for c in columns}

    def __getitem__(self, name: str) -> Column:
        return self._by_name[name]

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[Column]:
        return iter(self.columns)

    @cached_property
    def names(self) -> tuple[str, ...]:
        """The canonical columns, in the spec's order."""
        return tuple(c.name for c in self.columns)

    @cached_property
    def aliases(self) -> dict[str, tuple[str, ...]]:
        """Column -> its aliases (en, es, pt), for the columns that have any."""
        return {c.name: c.all_aliases for c in self.columns if c.all_aliases}

    def required(self, kind: Required) -> tuple[str, ...]:
        """The columns of one kind of required-ness, in order."""
        return tuple(c.name for c in self.columns if c.required == kind)

    @cached_property
    def in_project(self) -> tuple[str, ...]:
        """The columns that belong to a project (a file with one needs ``project_reference``)."""
        return tuple(c.name for c in self.columns if c.in_project)

    @cached_property
    def row_fields(self) -> tuple[str, ...]:
        """``BookingRow``'s interpreted fields, in order (see :attr:`Column.is_row_field`)."""
        return tuple(c.name for c in self.columns if c.is_row_field)

    @cached_property
    def template_columns(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.template is not None)

    @cached_property
    def synth_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.synth)


# --- header keys -------------------------------------------------------------------------

_LINKING_WORDS = frozenset(
    {"de", "del", "la", "el", "los", "las", "do", "da", "dos", "das", "o", "e", "y", "the", "of"}
)
_TOKEN = re.compile(r"[a-z0-9]+")


def header_tokens(text: object) -> list[str]:
    """A header's words: accents stripped, case folded, split on anything not a letter/digit,
    linking words ("de", "del", "the", "of"...) left out."""
    decomposed = unicodedata.normalize("NFKD", str(text))
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()
    return [t for t in _TOKEN.findall(plain) if t not in _LINKING_WORDS]


def header_key(text: object) -> str:
    """The comparison key of a header: ``Código de Postal`` -> ``codigopostal``."""
    return "".join(header_tokens(text))


# --- loading -----------------------------------------------------------------------------


def _entry(index: int, raw: object) -> str:
    name = raw.get("name") if isinstance(raw, dict) else None
    return f"columns[{index}]" + (f" ({name})" if isinstance(name, str) else "")


def _check_entries(columns: tuple[Column, ...]) -> None:
    """The rules across entries (each entry alone is checked by its model)."""
    owner: dict[str, str] = {}
    for i, column in enumerate(columns):
        entry = f"columns[{i}] ({column.name})"
        if column.name in owner.values():
            raise ColumnSpecError("the column is declared twice", entry=entry)
        key = header_key(column.name)
        if owner.get(key, column.name) != column.name:
            raise ColumnSpecError(f"its name means the column {owner[key]!r} already", entry=entry)
        owner[key] = column.name
    for i, column in enumerate(columns):
        entry = f"columns[{i}] ({column.name})"
        seen: set[str] = set()
        for alias in column.all_aliases:
            key = header_key(alias)
            if not key:
                raise ColumnSpecError(f"the alias {alias!r} has no letters or digits", entry=entry)
            # Spellings of one key ("teléfono", "telefono") may both be listed, for readers.
            if alias.casefold() in seen:
                raise ColumnSpecError(f"the alias {alias!r} is listed twice", entry=entry)
            seen.add(alias.casefold())
            other = owner.setdefault(key, column.name)
            if other != column.name:
                raise ColumnSpecError(
                    f"the alias {alias!r} already means the column {other!r}", entry=entry
                )
        if column.template is not None:
            for _, field, _, _ in string.Formatter().parse(column.template.help):
                if field is not None and field not in HELP_PLACEHOLDERS:
                    raise ColumnSpecError(
                        f"the template help uses {{{field}}}, which is not one of "
                        f"{', '.join(sorted(HELP_PLACEHOLDERS))}",
                        entry=entry,
                    )


def load_column_spec(path: Path = SPEC_PATH) -> ColumnSpec:
    """Read and validate the spec at ``path``; :class:`ColumnSpecError` names what is wrong."""
    import yaml

    source = str(path)
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ColumnSpecError(f"cannot be read: {exc.strerror}", entry=source) from None
    except yaml.YAMLError as exc:
        raise ColumnSpecError(f"is not valid YAML: {exc}", entry=source) from None
    if not isinstance(data, dict) or set(data) != {"columns"} or not data["columns"]:
        raise ColumnSpecError(
            "must be a mapping with one key, a non-empty 'columns' list", entry=source
        )
    if not isinstance(data["columns"], list):
        raise ColumnSpecError("'columns' must be a list of column entries", entry=source)
    raw_columns: list[object] = data["columns"]
    columns: list[Column] = []
    for i, raw in enumerate(raw_columns):
        try:
            columns.append(Column.model_validate(raw))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'entry'}: {err['msg']}"
                for err in exc.errors()
            )
            raise ColumnSpecError(problems, entry=_entry(i, raw)) from None
    _check_entries(tuple(columns))
    return ColumnSpec(tuple(columns))


SPEC: Final = load_column_spec()
"""The bulk load's column spec, loaded once at import."""


def derived_tables(spec: ColumnSpec) -> dict[str, object]:
    """The tables the bulk load derives from ``spec``, JSON-ready: what
    ``tests/bulkload/columns.golden.json`` pins, so a change to the YAML is a reviewed diff
    (regenerate: ``python -m sodtrack.bulkload.columns tests/bulkload/columns.golden.json``)."""
    alias_index: dict[str, str] = {header_key(c.name): c.name for c in spec}
    for c in spec:
        for alias in c.all_aliases:
            alias_index.setdefault(header_key(alias), c.name)
    return {
        "canonical_columns": list(spec.names),
        "row_fields": list(spec.row_fields),
        "types": {c.name: c.type for c in spec},
        "required": {kind: list(spec.required(kind)) for kind in get_args(Required)},
        "in_project": list(spec.in_project),
        "template": {
            c.name: {"format": c.template.format, "list": c.template.list, "help": c.template.help}
            for c in spec
            if c.template is not None
        },
        "synth_columns": list(spec.synth_columns),
        "examples": {c.name: c.example for c in spec},
        "aliases": {
            c.name: {lang: list(c.aliases.get(lang, ())) for lang in LANGUAGES} for c in spec
        },
        "alias_index": dict(sorted(alias_index.items())),
    }


def write_golden(path: Path, spec: ColumnSpec | None = None) -> Path:
    import json

    tables = derived_tables(spec or SPEC)
    path.write_text(json.dumps(tables, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


if __name__ == "__main__":  # pragma: no cover - a maintainer's command
    import sys

    print(write_golden(Path(sys.argv[1] if len(sys.argv) > 1 else "columns.golden.json")))
