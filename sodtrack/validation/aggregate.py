"""Per-batch Great Expectations results summed into one result per expectation.

Two checks need the whole dataset and are computed here across batches instead:

* the row count (the ``expect_table_row_count_to_be_between`` results are re-evaluated on the
  total number of rows);
* uniqueness of the dataset's key (:class:`KeyTracker`: one 64-bit hash per row's key, 8 bytes
  a row, counting rows of a batch whose key appeared in an earlier batch).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from sodtrack.validation.context import ExpectationSpec
from sodtrack.validation.outcome import PARTIAL_LIMIT, ExpectationOutcome, jsonable

if TYPE_CHECKING:
    import pandas as pd

_ROW_COUNT: Final = "expect_table_row_count_to_be_between"
_UNIQUE: Final = "expect_column_values_to_be_unique"
_COMPOUND_UNIQUE: Final = "expect_compound_columns_to_be_unique"
_SUMMED: Final = ("element_count", "unexpected_count", "missing_count")


class KeyTracker:
    """Counts rows whose key already appeared in an earlier chunk (64-bit hashes, sorted)."""

    def __init__(self, columns: tuple[str, ...]) -> None:
        self.columns = list(columns)
        self.seen: np.ndarray[Any, np.dtype[np.uint64]] = np.empty(0, dtype=np.uint64)
        self.duplicates = 0
        self.samples: list[Any] = []

    def add(self, df: pd.DataFrame) -> None:
        import pandas as pd

        if any(c not in df.columns for c in self.columns):
            return  # the column-set expectation reports it
        keys = df[self.columns].dropna()
        if keys.empty:
            return
        # Hash plain Python strings so that str/object/categorical chunks hash alike.
        hashes = pd.util.hash_pandas_object(keys.astype(object), index=False).to_numpy(
            dtype=np.uint64
        )
        if self.seen.size:
            repeated = np.isin(hashes, self.seen)
            count = int(repeated.sum())
            if count:
                self.duplicates += count
                room = PARTIAL_LIMIT - len(self.samples)
                if room > 0:
                    rows = keys[repeated].head(room)
                    if len(self.columns) == 1:
                        self.samples.extend(rows[self.columns[0]].tolist())
                    else:
                        self.samples.extend(list(t) for t in rows.itertuples(index=False))
        self.seen = np.union1d(self.seen, hashes)


@dataclass(slots=True)
class _Acc:
    success: bool = True
    counts: dict[str, int] = field(default_factory=dict)
    partial: list[Any] = field(default_factory=list)
    observed: Any = None
    percent: float | None = None
    exception: str | None = None


def _exception_message(result: Any) -> str | None:
    info = result.exception_info or {}
    if not isinstance(info, Mapping):
        return None
    if info.get("raised_exception"):
        return str(info.get("exception_message") or "exception")
    for value in info.values():  # keyed by metric when several metrics raised
        if isinstance(value, Mapping) and value.get("raised_exception"):
            return str(value.get("exception_message") or "exception")
    return None


class Aggregator:
    def __init__(self, specs: Mapping[str, ExpectationSpec]) -> None:
        self.specs = specs
        self.acc: dict[str, _Acc] = {spec_id: _Acc() for spec_id in specs}
        self.batches = 0

    def add(self, suite_result: Any) -> None:
        self.batches += 1
        for result in suite_result.results:
            spec_id = str(result.expectation_config.id)
            if spec_id not in self.acc:
                raise RuntimeError(f"result for an unknown expectation id {spec_id}")
            acc = self.acc[spec_id]
            acc.success = acc.success and bool(result.success)
            details = result.result or {}
            for key in _SUMMED:
                if details.get(key) is not None:
                    acc.counts[key] = acc.counts.get(key, 0) + int(details[key])
            room = PARTIAL_LIMIT - len(acc.partial)
            if room > 0:
                acc.partial.extend(list(details.get("partial_unexpected_list") or [])[:room])
            if "observed_value" in details and (acc.observed is None or not result.success):
                acc.observed = details["observed_value"]
            acc.percent = details.get("unexpected_percent")
            acc.exception = acc.exception or _exception_message(result)

    def finish(self, *, row_count: int, keys: KeyTracker, parameters: Mapping[str, Any]) -> None:
        """Whole-dataset checks when there were several batches: row count and key uniqueness."""
        if self.batches <= 1:
            return
        key = keys.columns
        for spec_id, spec in self.specs.items():
            acc = self.acc[spec_id]
            if spec.type == _ROW_COUNT:
                low = _resolve(spec.kwargs.get("min_value"), parameters)
                high = _resolve(spec.kwargs.get("max_value"), parameters)
                acc.success = (low is None or row_count >= low) and (
                    high is None or row_count <= high
                )
                acc.observed = row_count
            elif keys.duplicates and _is_key_check(spec, key):
                acc.success = False
                acc.counts["unexpected_count"] = (
                    acc.counts.get("unexpected_count", 0) + keys.duplicates
                )
                room = PARTIAL_LIMIT - len(acc.partial)
                acc.partial.extend(keys.samples[: max(room, 0)])
            counts = acc.counts
            if "unexpected_count" in counts and "element_count" in counts:
                nonmissing = counts["element_count"] - counts.get("missing_count", 0)
                acc.percent = 100.0 * counts["unexpected_count"] / nonmissing if nonmissing else 0.0

    def gx_result(self, acc: _Acc) -> dict[str, Any]:
        out: dict[str, Any] = dict(acc.counts)
        if acc.percent is not None:
            out["unexpected_percent"] = acc.percent
        if "unexpected_count" in acc.counts:
            out["partial_unexpected_list"] = list(acc.partial)
        if acc.observed is not None:
            out["observed_value"] = acc.observed
        return out

    def outcomes(self) -> list[ExpectationOutcome]:
        outcomes: list[tuple[int, ExpectationOutcome]] = []
        for spec_id, spec in self.specs.items():
            acc = self.acc[spec_id]
            outcomes.append(
                (
                    spec.index,
                    ExpectationOutcome(
                        type=spec.type,
                        severity=spec.severity,
                        success=acc.success and acc.exception is None,
                        column=spec.column,
                        columns=spec.columns,
                        parameters=spec.parameters,
                        element_count=acc.counts.get("element_count"),
                        unexpected_count=acc.counts.get("unexpected_count"),
                        unexpected_percent=acc.percent,
                        partial_unexpected_list=jsonable(acc.partial),
                        observed_value=jsonable(acc.observed),
                        exception=acc.exception,
                    ),
                )
            )
        return [outcome for _, outcome in sorted(outcomes, key=lambda pair: pair[0])]


def _is_key_check(spec: ExpectationSpec, key: list[str]) -> bool:
    """The uniqueness expectation of the dataset's key (its other unique checks are per chunk)."""
    if spec.type == _UNIQUE:
        return [spec.column] == key
    return spec.type == _COMPOUND_UNIQUE and spec.columns == key


def _resolve(value: Any, parameters: Mapping[str, Any]) -> Any:
    if isinstance(value, Mapping) and "$PARAMETER" in value:
        return parameters.get(str(value["$PARAMETER"]))
    return value
