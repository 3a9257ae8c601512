"""Header matching: which column of the operator's sheet holds which canonical field.

A header is compared by its *key*: accents removed (NFKD), case folded, every run of
punctuation, spaces and underscores dropped, and a few linking words ("de", "del", "da", "do",
"the", "of"...) left out. So ``Código Postal``, ``codigo_postal``, ``CÓDIGO-POSTAL`` and
``código de postal`` are one key, ``codigopostal``. The key is looked up in:

1. the upload's mapping (``{"Their Header": "canonical_name"}``, e.g. from a YAML file read by
   :func:`load_mapping_file`); a mapping to ``None`` marks a column as deliberately ignored;
2. the canonical names themselves (``postal_code``);
3. the English, Spanish and Portuguese aliases in :data:`ALIASES`;
4. the same, once more, after dropping words that only say whose field it is
   (``Teléfono cliente``, ``Customer e-mail``).

The columns, their aliases and which of them are required are declared once, as data, in
``schemas/bulkload/columns.yaml`` (:mod:`sodtrack.bulkload.columns`); the tables here are
derived from it. The rules that combine columns (date and time or a start, e-mail or phone,
all payment columns or none, a project for stages and payments) are below.

Whatever is left is *reported* as an unknown column (an upload-level warning, its values kept in
each row's ``original``), never silently dropped; except the answer columns a rejects file
leads with (:data:`ANSWER_COLUMNS`): a fixed rejects file uploaded again is read as the sheet
it was, those columns ignored (``ignored_columns``) without a warning. Two columns landing on
one field, a missing required column, or contradictory date columns are upload-level errors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sodtrack.bulkload.columns import SPEC
from sodtrack.bulkload.columns import header_key as header_key
from sodtrack.bulkload.columns import header_tokens as header_tokens
from sodtrack.bulkload.issues import IssueCode, UploadIssue
from sodtrack.errors import InputFileError

CANONICAL_COLUMNS: tuple[str, ...] = SPEC.names
"""Every field a sheet may carry. ``scheduled_start`` or ``scheduled_date`` + ``scheduled_time``."""

ANSWER_COLUMNS: tuple[str, ...] = (
    "sodtrack_outcome",
    "sodtrack_message",
    "sodtrack_suggested_fix",
    "sodtrack_row",
    "sodtrack_error_code",
)
"""The columns a rejects file leads with (the answer for the row, written by
:mod:`sodtrack.bulkload.answers.results`): ignored when the file is uploaded again."""

PAYMENT_COLUMNS: tuple[str, ...] = SPEC.required("payment")
"""A payment needs all of these (``payment_currency`` defaults to the country's currency)."""

_ALWAYS_REQUIRED: tuple[str, ...] = SPEC.required("always")

_IN_PROJECT: tuple[str, ...] = SPEC.in_project
"""Columns that belong to a project: a file with one of them needs ``project_reference``."""

ALIASES: dict[str, tuple[str, ...]] = SPEC.aliases
"""Aliases per canonical column (matched by key, so accents/case/spacing do not matter)."""

# Words that only say whose field it is: dropped on a second attempt only, so they never turn
# a specific header ("nombre proyecto") into a generic one.
_OWNER_WORDS = frozenset(
    {"cliente", "client", "customer", "comprador", "consumidor", "titular", "contacto", "contato"}
)


def _build_alias_index() -> dict[str, str]:
    index: dict[str, str] = {}
    for canonical in CANONICAL_COLUMNS:
        index[header_key(canonical)] = canonical
    for canonical, aliases in ALIASES.items():
        for alias in aliases:
            key = header_key(alias)
            index.setdefault(key, canonical)  # one column per key: checked by the spec's loader
    return index


ALIAS_INDEX: dict[str, str] = _build_alias_index()
"""Header key -> canonical column, from the canonical names and :data:`ALIASES`."""


class MappingFileError(InputFileError, ValueError):
    """A mapping file that cannot be used, with a message fit for an operator."""


def _canonical_name(value: str) -> str | None:
    key = header_key(value)
    for canonical in CANONICAL_COLUMNS:
        if header_key(canonical) == key:
            return canonical
    return None


def load_mapping_file(path: Path) -> dict[str, str | None]:
    """Read a YAML header mapping ``{"Their Header": canonical_name}``.

    A value may also be ``null`` (or ``ignore``) to say the column is known and deliberately
    not loaded; it is then not reported as unknown. Canonical names are matched leniently
    (``Postal Code`` means ``postal_code``). Raises :class:`MappingFileError` for anything else.
    """
    import yaml  # only mapping files need it; keeps the loader's import light

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8-sig"))
    except yaml.YAMLError as exc:
        raise MappingFileError(f"mapping file {path} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise MappingFileError(
            f"mapping file {path} must be a mapping of 'Their Header: canonical_name' lines"
        )
    mapping: dict[str, str | None] = {}
    for header, target in data.items():
        if target is None or (isinstance(target, str) and header_key(target) == "ignore"):
            mapping[str(header)] = None
            continue
        if not isinstance(target, str):
            raise MappingFileError(f"mapping for {header!r} must be a column name, not {target!r}")
        canonical = _canonical_name(target)
        if canonical is None:
            raise MappingFileError(
                f"mapping for {header!r} names {target!r}, which is not a column the loader "
                f"knows; use one of: {', '.join(CANONICAL_COLUMNS)} (or null to ignore it)"
            )
        mapping[str(header)] = canonical
    return mapping


@dataclass(frozen=True, slots=True)
class HeaderMatch:
    """How a header row maps onto canonical columns."""

    headers: tuple[str, ...]
    """Display name of every column position (``(column J)`` where the header cell is empty)."""
    positions: dict[str, int]
    """Canonical column -> 0-based column position, for the columns that were matched once."""
    columns: dict[str, str]
    """Original header -> canonical column."""
    unknown_columns: list[str]
    ignored_columns: list[str]
    unnamed_positions: tuple[int, ...]
    """Positions whose header cell is empty (their values are reported if any row fills them)."""
    issues: list[UploadIssue] = field(default_factory=list)

    @property
    def has_errors(self) -> bool:
        return any(issue.severity == "error" for issue in self.issues)


def column_label(position: int, *, letters: bool) -> str:
    """``J`` for position 9 in a spreadsheet, ``10`` in a CSV (both 1-based for people)."""
    if not letters:
        return str(position + 1)
    label = ""
    n = position + 1
    while n:
        n, rem = divmod(n - 1, 26)
        label = chr(ord("A") + rem) + label
    return label


def match_headers(
    header_cells: Sequence[object],
    mapping: Mapping[str, str | None] | None = None,
    *,
    first_column: int = 0,
    spreadsheet_letters: bool = True,
) -> HeaderMatch:
    """Map a header row to canonical columns and report every problem at upload level.

    ``first_column`` is the sheet column of ``header_cells[0]`` (0-based), so messages can name
    real column letters.
    """
    issues: list[UploadIssue] = []
    user_index: dict[str, str | None] = {}
    for their_header, target in (mapping or {}).items():
        resolved = target if target is None else (_canonical_name(target) or target)
        if resolved is not None and resolved not in CANONICAL_COLUMNS:
            raise MappingFileError(f"mapping for {their_header!r} names unknown column {target!r}")
        user_index[header_key(their_header)] = resolved
    used_mapping_keys: set[str] = set()

    headers: list[str] = []
    found: dict[str, list[int]] = {}
    unknown: list[str] = []
    ignored: list[str] = []
    unnamed: list[int] = []
    for position, cell in enumerate(header_cells):
        text = "" if cell is None else str(cell).strip()
        if not text:
            label = column_label(first_column + position, letters=spreadsheet_letters)
            headers.append(f"(column {label})")
            unnamed.append(position)
            continue
        headers.append(text)
        key = header_key(text)
        if key in user_index:
            used_mapping_keys.add(key)
            target = user_index[key]
            if target is None:
                ignored.append(text)
                continue
            found.setdefault(target, []).append(position)
            continue
        if text in ANSWER_COLUMNS:  # a rejects file's answer, uploaded again
            ignored.append(text)
            continue
        canonical = _lookup(key, text)
        if canonical is None:
            unknown.append(text)
            issues.append(
                UploadIssue(
                    IssueCode.UNKNOWN_COLUMN,
                    f"Column '{text}' is not one the loader knows, so its values will not be "
                    "loaded (they are kept in the results file).",
                    "Rename the column to one of the expected names, add it to the mapping "
                    "file, or map it to null to ignore it on purpose.",
                    "warning",
                    column=text,
                )
            )
            continue
        found.setdefault(canonical, []).append(position)

    # Make header display names unique so each row's ``original`` keeps every cell.
    seen: dict[str, int] = {}
    for i, name in enumerate(headers):
        count = seen.get(name, 0)
        seen[name] = count + 1
        if count:
            headers[i] = f"{name} ({column_label(first_column + i, letters=spreadsheet_letters)})"

    positions: dict[str, int] = {}
    columns: dict[str, str] = {}
    for canonical, where in found.items():
        if len(where) > 1:
            names = ", ".join(f"'{headers[p]}'" for p in where)
            issues.append(
                UploadIssue(
                    IssueCode.DUPLICATE_COLUMN,
                    f"Columns {names} all mean '{canonical}'; the loader cannot tell which "
                    "one to use.",
                    "Keep one of them, or rename/remap the others (a mapping to null "
                    "ignores a column).",
                    column=headers[where[1]],
                )
            )
            continue
        positions[canonical] = where[0]
        columns[headers[where[0]]] = canonical

    for their_header, target in (mapping or {}).items():
        if header_key(their_header) not in used_mapping_keys:
            issues.append(
                UploadIssue(
                    IssueCode.MAPPING_UNUSED,
                    f"The mapping entry '{their_header}' -> {target} matched no column of "
                    "this file.",
                    "Check the spelling of the header in the mapping file, or remove the entry.",
                    "warning",
                    column=their_header,
                )
            )

    issues.extend(_required_column_issues(set(found)))
    return HeaderMatch(
        headers=tuple(headers),
        positions=positions,
        columns=columns,
        unknown_columns=unknown,
        ignored_columns=ignored,
        unnamed_positions=tuple(unnamed),
        issues=issues,
    )


HEADER_MIN_COLUMNS = 3
"""A row is taken for the header row when it names at least this many columns the loader
knows (by canonical name, alias or the upload's mapping): a title or an instructions line
names none, a real header (nine columns are required) names many."""


def known_column_count(
    cells: Sequence[object], mapping: Mapping[str, str | None] | None = None
) -> int:
    """How many distinct columns the loader knows ``cells`` name (mapping entries included,
    those mapped to ``None`` too: the operator knows them)."""
    user_index = {header_key(k): v for k, v in (mapping or {}).items()}
    known: set[str] = set()
    for position, cell in enumerate(cells):
        text = "" if cell is None else str(cell).strip()
        if not text or len(text) > 200:  # a sentence is not a header
            continue
        key = header_key(text)
        if key in user_index:
            target = user_index[key]
            known.add(f"(ignored {position})" if target is None else target)
            continue
        canonical = _lookup(key, text)
        if canonical is not None:
            known.add(canonical)
    return len(known)


def looks_like_header(
    cells: Sequence[object], mapping: Mapping[str, str | None] | None = None
) -> bool:
    """Whether a row is a header row (see :data:`HEADER_MIN_COLUMNS`)."""
    return known_column_count(cells, mapping) >= HEADER_MIN_COLUMNS


def _lookup(key: str, text: str) -> str | None:
    canonical = ALIAS_INDEX.get(key)
    if canonical is not None:
        return canonical
    tokens = header_tokens(text)
    trimmed = [t for t in tokens if t not in _OWNER_WORDS]
    if trimmed and len(trimmed) < len(tokens):
        return ALIAS_INDEX.get("".join(trimmed))
    return None


def _missing(column: str, why: str, fix: str) -> UploadIssue:
    return UploadIssue(IssueCode.MISSING_COLUMN, why, fix, column=column)


def _required_column_issues(present: set[str]) -> list[UploadIssue]:
    issues: list[UploadIssue] = []
    for column in _ALWAYS_REQUIRED:
        if column not in present:
            issues.append(
                _missing(
                    column,
                    f"The file has no '{column}' column, which every booking needs.",
                    f"Add a '{column}' column (or map your header to it in the mapping file).",
                )
            )
    if "customer_email" not in present and "customer_phone" not in present:
        issues.append(
            _missing(
                "customer_email",
                "The file has neither a 'customer_email' nor a 'customer_phone' column; each "
                "booking needs at least one way to contact the customer.",
                "Add a 'customer_email' or 'customer_phone' column.",
            )
        )
    has_start = "scheduled_start" in present
    has_date = "scheduled_date" in present
    has_time = "scheduled_time" in present
    if has_start and (has_date or has_time):
        issues.append(
            UploadIssue(
                IssueCode.CONFLICTING_COLUMNS,
                "The file has both a 'scheduled_start' column and separate date/time columns; "
                "the loader cannot tell which one to trust.",
                "Keep either 'scheduled_start' (date and time together) or 'scheduled_date' "
                "plus 'scheduled_time'.",
                column="scheduled_start",
            )
        )
    elif not has_start and not has_date:
        issues.append(
            _missing(
                "scheduled_start",
                "The file has no column with the booking's date and time.",
                "Add a 'scheduled_start' column (e.g. 03/12/2026 10:00), or 'scheduled_date' "
                "and 'scheduled_time' columns.",
            )
        )
    payment = [c for c in PAYMENT_COLUMNS if c in present]
    if payment and len(payment) < len(PAYMENT_COLUMNS):
        absent = ", ".join(c for c in PAYMENT_COLUMNS if c not in present)
        issues.append(
            _missing(
                absent.split(", ")[0],
                f"The file has payment columns but not all of them: missing {absent}.",
                "Payments need payment_reference, payment_amount, payment_method and paid_at; "
                "add the missing columns, or remove the payment columns.",
            )
        )
    if "project_reference" not in present:
        dependent = [c for c in _IN_PROJECT if c in present]
        if dependent:
            issues.append(
                _missing(
                    "project_reference",
                    f"The file has {', '.join(dependent)} but no 'project_reference' column; "
                    "stages and payments belong to a project.",
                    "Add a 'project_reference' column naming each row's project.",
                )
            )
    if "stage_name" in present and "stage_sequence" not in present:
        issues.append(
            _missing(
                "stage_sequence",
                "The file has 'stage_name' but no 'stage_sequence' column; stages are "
                "identified by their number within the project.",
                "Add a 'stage_sequence' column (1, 2, 3...).",
            )
        )
    return issues
