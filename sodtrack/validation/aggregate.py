"""Per-batch Great Expectations results summed into one result per expectation.

Only the suite's per-row expectations run batch by batch (a row is judged alone, so summing
the counts of the batches is exact); the whole-dataset ones (uniqueness, row counts, sibling
ids) are evaluated once over the whole dataset by :mod:`sodtrack.validation.wholeset`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from sodtrack.validation.context import ExpectationSpec
from sodtrack.validation.outcome import PARTIAL_LIMIT, ExpectationOutcome, jsonable
from sodtrack.validation.wholeset import WholeResult

_SUMMED: Final = ("element_count", "unexpected_count", "missing_count")


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

    def finish(self) -> None:
        """Percentages recomputed from the summed counts (a batch's own are per batch)."""
        if self.batches <= 1:
            return
        for acc in self.acc.values():
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

    def outcomes(self) -> list[tuple[int, ExpectationOutcome]]:
        """Each per-row expectation's outcome with its index in the suite file."""
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
        return outcomes


def whole_outcome(spec: ExpectationSpec, answer: WholeResult) -> ExpectationOutcome:
    """A whole-dataset expectation's answer as an outcome of the suite."""
    details = answer.result
    return ExpectationOutcome(
        type=spec.type,
        severity=spec.severity,
        success=answer.success and answer.exception is None,
        column=spec.column,
        columns=spec.columns,
        parameters=spec.parameters,
        element_count=details.get("element_count"),
        unexpected_count=details.get("unexpected_count"),
        unexpected_percent=details.get("unexpected_percent"),
        partial_unexpected_list=jsonable(details.get("partial_unexpected_list") or []),
        observed_value=jsonable(details.get("observed_value")),
        exception=answer.exception,
    )
