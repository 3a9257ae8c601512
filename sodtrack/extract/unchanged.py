"""Unchanged snapshots are not validated again (issue #12).

A snapshot dataset (``categories``, ``services``, ``variants``, ``coverage_zones``,
``coverage_postal_codes``) is read in full every night, and most nights it is what it was.
When a staged snapshot's **content** and the **inputs of its check** are those of the
country's published version, validating it again can only give the same verdict: the gate
skips it and reports "unchanged, validated in run X".

What is compared (both recorded in the Delta commit's metadata, under ``validation``, by
every publish of a snapshot dataset: ``content_hash``, ``inputs_hash``, ``validated_in``):

* ``content_hash``: every row of the staging **except** ``extracted_at`` (when we read it,
  not what it says) and ``snapshot_date`` (the partition: which night, not what): an
  order-free digest (DuckDB: row count, sum and xor of each row's 64-bit hash; the walk's
  order varies from night to night). The run that wrote a file lives in the file's metadata,
  not in a column, so nothing else is run-specific. The DuckDB version is part of the
  digest's name, so a DuckDB whose hash differs compares unequal (validates), never equal.
* ``inputs_hash``: the suite file, the country, and the suite's parameters except the row
  count bounds (reference ids, sorted). A catalog that lost a service changes the
  parameters of coverage, which is then validated again, unchanged or not. The row-count
  bounds are left out on purpose: they compare the staging with the published version,
  which holds the same rows here, so they pass whatever their values.

Skipped only when the published commit of the country (the newest commit that carries the
country) names both digests equal, its validation had no critical failure and **no
warning** (a warning is worth reporting each night: such a dataset is validated again), and
names the run that validated it. Anything missing, malformed or different: validate.

Today's partition **is still published** (a commit per dataset, as on any night): analysts
query snapshots by ``snapshot_date``, and a missing date would read as a missing snapshot.
Its commit carries the digests and the run that actually validated that content.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb

from sodtrack.validation import ValidationSession, published_row_count_parameters
from sodtrack.validation.parameters import row_count_parameters
from sodtrack.validation.suites import load_suite_dict
from sodtrack.warehouse import Warehouse
from sodtrack.warehouse.schemas import DatasetKind, get_spec

EXCLUDED_COLUMNS = frozenset({"extracted_at", "snapshot_date"})
"""Columns left out of a snapshot's content digest: when it was read, and which night."""

HASH_ALGORITHM = f"duckdb{duckdb.__version__}-rowhash-sum-xor-v1"


@dataclass(frozen=True, slots=True)
class Validated:
    """What the published commit of a country says about the check of its content."""

    content_hash: str
    inputs_hash: str
    validated_in: str


def is_snapshot(dataset: str) -> bool:
    return get_spec(dataset).kind is DatasetKind.SNAPSHOT


def content_hash(warehouse: Warehouse, dataset: str, run_id: str) -> str:
    """The order-free digest of a staged snapshot (see the module's docstring)."""
    data = warehouse.staged_dataset(dataset, run_id)
    columns = [n for n in data.schema.names if n not in EXCLUDED_COLUMNS]
    quoted = ", ".join('"' + c.replace('"', '""') + '"' for c in columns)
    con = duckdb.connect(config={"threads": 1})
    try:
        con.register("staged", data)
        row = con.execute(
            f"SELECT count(*), coalesce(sum(h), 0)::HUGEINT, coalesce(bit_xor(h), 0) "  # noqa: S608
            f"FROM (SELECT hash({quoted}) AS h FROM staged)"
        ).fetchone()
    finally:
        con.close()
    assert row is not None
    count, total, xor = row
    return f"{HASH_ALGORITHM}:{','.join(columns)}:{count}:{total}:{xor}"


def inputs_hash(
    session: ValidationSession, dataset: str, country: str, parameters: Mapping[str, Any]
) -> str:
    """The digest of what the check of ``dataset`` is given besides the data."""
    params = session.parameters_for(dataset, country=country, parameters=parameters)
    bounds = {
        *row_count_parameters(dataset, 1, None),
        *published_row_count_parameters(1),
    }
    kept = {k: _canonical(v) for k, v in params.items() if k not in bounds}
    document = {
        "suite": load_suite_dict(dataset, session.suites_dir),
        "country": country,
        "parameters": kept,
    }
    text = json.dumps(document, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _canonical(value: Any) -> Any:
    if isinstance(value, (list, tuple, set, frozenset)):
        return sorted((_canonical(v) for v in value), key=repr)
    return value


def published_validation(history: Sequence[Mapping[str, Any]], country: str) -> Validated | None:
    """From a table's commits (newest first, as :meth:`Warehouse.history` gives them): what
    the country's newest commit says about the check of its content, or ``None`` when it
    says nothing usable (missing, malformed, failed, warned)."""
    for commit in history:
        if commit.get("country") != country:
            continue
        summary = commit.get("validation")
        if not isinstance(summary, Mapping):
            return None
        found = [summary.get(k) for k in ("content_hash", "inputs_hash", "validated_in")]
        texts = [v for v in found if isinstance(v, str) and v]
        if len(texts) != len(found):
            return None
        if summary.get("critical_failures") or summary.get("warnings"):
            return None
        if summary.get("success") is not True:
            return None
        return Validated(*texts)
    return None
