"""What a validation returns: plain dataclasses, JSON-ready for the run report, the manifest
and the quarantine report (no Great Expectations object leaks out)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

PARTIAL_LIMIT: Final = 20
"""Most unexpected values kept per expectation (the report stays small)."""
_MAX_TEXT: Final = 200
_MAX_ITEMS: Final = 50


def jsonable(value: Any, *, depth: int = 0) -> Any:
    """A JSON-safe, bounded copy of a GX result value (Decimals, numpy/pandas scalars, NaN/NaT,
    tuples, long lists and strings are all normalised)."""
    if value is None or isinstance(value, bool | int):
        return value
    type_name = type(value).__name__
    if type_name in {"NaTType", "NAType"}:  # pandas' NaT is a datetime subclass
        return None
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, str):
        return value if len(value) <= _MAX_TEXT else value[:_MAX_TEXT] + "…"
    if isinstance(value, Decimal):
        return str(value) if value.is_finite() else None
    if isinstance(value, datetime | date):
        return value.isoformat()
    if depth > 4:
        return repr(value)[:_MAX_TEXT]
    if isinstance(value, Mapping):
        return {str(k): jsonable(v, depth=depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = list(value)
        out = [jsonable(v, depth=depth + 1) for v in items[:_MAX_ITEMS]]
        if len(items) > _MAX_ITEMS:
            out.append(f"… {len(items) - _MAX_ITEMS} more")
        return out
    # numpy / pandas scalars without importing either here
    if hasattr(value, "isoformat"):  # pandas Timestamp
        return str(value.isoformat())
    if type_name.startswith("datetime64"):
        text = str(value)
        return None if text == "NaT" else text
    if hasattr(value, "item"):  # numpy scalar
        return jsonable(value.item(), depth=depth + 1)
    return repr(value)[:_MAX_TEXT]


@dataclass(frozen=True, slots=True)
class ExpectationOutcome:
    """The result of one expectation of a suite (over all chunks)."""

    type: str
    severity: str
    """``critical`` (blocks publishing) or ``warning`` (reported only)."""
    success: bool
    column: str | None = None
    columns: list[str] | None = None
    """For pair/compound expectations: the columns involved."""
    parameters: list[str] = field(default_factory=list)
    """Names of the suite parameters the expectation reads."""
    element_count: int | None = None
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    partial_unexpected_list: list[Any] = field(default_factory=list)
    observed_value: Any = None
    exception: str | None = None
    """GX could not evaluate the expectation (e.g. a missing column): counts as a failure."""

    @property
    def label(self) -> str:
        """Short human-readable name: ``expect_column_values_to_be_unique(id)``; a table-level
        check names its parameters: ``expect_table_row_count_to_be_between(row_count_min)``."""
        target = self.column or ",".join(self.columns or self.parameters or ())
        return f"{self.type}({target})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "severity": self.severity,
            "success": self.success,
            "column": self.column,
            "columns": self.columns,
            "parameters": self.parameters,
            "element_count": self.element_count,
            "unexpected_count": self.unexpected_count,
            "unexpected_percent": self.unexpected_percent,
            "partial_unexpected_list": jsonable(self.partial_unexpected_list),
            "observed_value": jsonable(self.observed_value),
            "exception": self.exception,
        }


@dataclass(frozen=True, slots=True)
class ValidationOutcome:
    """One dataset's validation: whether it may be published, and why not."""

    dataset: str
    country: str
    run_id: str
    results: list[ExpectationOutcome]
    """In suite order (GX returns them in another order; the runner maps them back by id)."""
    row_count: int
    chunks: int
    """Chunks received (0 for an empty iterable)."""
    batches: int
    """GX runs: chunks re-cut to at most ``batch_rows`` rows each (1 for a small table)."""
    seconds: float
    parameters: dict[str, Any] = field(default_factory=dict)
    """The parameters used, id lists summarised as counts."""
    gx_seconds: float = 0.0
    """Of ``seconds``: the GX runs of the per-row expectations (pandas conversion included)."""
    whole_dataset_seconds: float = 0.0
    """Of ``seconds``: the DuckDB queries of the whole-dataset expectations (the columns they
    need are collected while the chunks stream past, counted in neither)."""
    docs_path: Path | None = None

    @property
    def critical_failures(self) -> list[ExpectationOutcome]:
        return [r for r in self.results if not r.success and r.severity == "critical"]

    @property
    def warnings(self) -> list[ExpectationOutcome]:
        """Failed expectations of any non-critical severity."""
        return [r for r in self.results if not r.success and r.severity != "critical"]

    @property
    def success(self) -> bool:
        """No critical failure: the dataset may be published (warnings are only reported)."""
        return not self.critical_failures

    @property
    def statistics(self) -> dict[str, Any]:
        evaluated = len(self.results)
        successful = sum(r.success for r in self.results)
        return {
            "evaluated_expectations": evaluated,
            "successful_expectations": successful,
            "unsuccessful_expectations": evaluated - successful,
            "success_percent": round(100.0 * successful / evaluated, 2) if evaluated else 100.0,
            "critical_failures": len(self.critical_failures),
            "warnings": len(self.warnings),
            "row_count": self.row_count,
            "chunks": self.chunks,
            "batches": self.batches,
            "seconds": round(self.seconds, 3),
            "gx_seconds": round(self.gx_seconds, 3),
            "whole_dataset_seconds": round(self.whole_dataset_seconds, 3),
        }

    def summary(self) -> str:
        """One line for logs: ``bookings/cl: FAILED (2 critical, 1 warning) in 1.2 s``."""
        state = "ok" if self.success else "FAILED"
        return (
            f"{self.dataset}/{self.country}: {state} ({len(self.critical_failures)} critical, "
            f"{len(self.warnings)} warning) on {self.row_count} rows in {self.seconds:.2f} s"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "country": self.country,
            "run_id": self.run_id,
            "success": self.success,
            "statistics": self.statistics,
            "critical_failures": [r.to_dict() for r in self.critical_failures],
            "warnings": [r.to_dict() for r in self.warnings],
            "results": [r.to_dict() for r in self.results],
            "parameters": jsonable(self.parameters),
            "docs_path": str(self.docs_path) if self.docs_path else None,
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)
