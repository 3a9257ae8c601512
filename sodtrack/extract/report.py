"""The run report: one JSON document per run that says what happened and whether to trust it.

It reconciles what is otherwise spread over logs: requests, retries, 429s and wait time,
pages, records per dataset (expected, received, de-duplicated, written), watermarks before
and after, validation results, where the data was published or quarantined, and duration.
It also sets the duration against the run's **API floor**, the time its requests need at
the API's rate limit alone (``client.api_floor_s`` = requests ÷ the rate the client paced
by, per country, summed): ``api_floor_ratio`` (1.0 = bound by the rate limit alone). A run
whose requests fit in the API's burst has no meaningful floor: ``api_floor_s`` is ``None``
and ``client.api_floor_note`` says why.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any


@dataclass(slots=True)
class DatasetRun:
    """One dataset of one country in one run."""

    dataset: str
    country: str
    pages: int = 0
    received: int = 0
    """Records the API sent (repeats included)."""
    expected: int | None = None
    """What the API said there was (``total_items`` of page-numbered walks), if it says."""
    deduplicated: int = 0
    """Records received that did not become a row (repeats, superseded versions)."""
    written: int = 0
    """Rows staged by this run."""
    rows_total: int | None = None
    """Rows of the dataset (for this country) once published."""
    completeness: str = "unchecked"
    """``complete`` when received == expected, ``incomplete`` (a critical failure) else."""
    status: str = "staged"
    """staged → published | quarantined | failed."""
    version: str | None = None
    validation: dict[str, Any] | None = None
    quarantine_path: str | None = None
    seconds: float = 0.0
    """Seconds of its staging (the walk)."""
    reason: str | None = None
    """Why its status is what it is, when that needs saying: ``unchanged, validated in run
    X`` for a snapshot the gate did not validate again (:mod:`sodtrack.extract.unchanged`)."""
    validated_in: str | None = None
    """The run whose validation vouches for this content (this run's, or an earlier one's
    when unchanged); snapshots only."""
    content_hash: str | None = None
    inputs_hash: str | None = None
    """Digests of a snapshot's content and of its check's inputs (recorded in the commit)."""

    @property
    def complete(self) -> bool:
        return self.completeness != "incomplete"


@dataclass(slots=True)
class FamilyRun:
    family: str
    country: str
    datasets: list[DatasetRun] = field(default_factory=list)
    status: str = "pending"
    """published | quarantined | failed | pending."""
    error: str | None = None
    watermark_before: str | None = None
    watermark_after: str | None = None
    full: bool = False
    """Whether the family was read in full (bookings: asked, or forced by the warehouse)."""
    notes: list[str] = field(default_factory=list)
    """Decisions a person should know about, e.g. a state-store watermark not used."""
    critical_failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    docs_path: str | None = None
    """Data Docs of this family's validations, when built per family (Prefect tasks)."""
    client: dict[str, Any] = field(default_factory=dict)
    """The client's counters, when the family ran with its own client (Prefect tasks)."""


@dataclass(slots=True)
class RunReport:
    run_id: str
    started_at: str
    countries: list[str]
    full_refresh: bool
    warehouse: str
    families: list[FamilyRun] = field(default_factory=list)
    finished_at: str | None = None
    duration_s: float | None = None
    client: dict[str, Any] = field(default_factory=dict)
    docs_path: str | None = None
    report_path: str | None = None

    @property
    def success(self) -> bool:
        return bool(self.families) and all(f.status == "published" for f in self.families)

    @property
    def warnings(self) -> list[str]:
        return [w for f in self.families for w in f.warnings]

    @property
    def api_floor_s(self) -> float | None:
        """Seconds the run's requests need at the API's rate limit alone (requests ÷ rate,
        both in ``client``); ``None`` when the API showed no limit."""
        floor = self.client.get("api_floor_s")
        return float(floor) if floor else None

    @property
    def api_floor_note(self) -> str | None:
        """Why there is no floor (``no rate limit``, or ``not meaningful (…)`` when the
        requests fit in the API's burst: see :func:`sodtrack.extract.runner.api_floor`)."""
        note = self.client.get("api_floor_note")
        return str(note) if note else None

    @property
    def api_floor_ratio(self) -> float | None:
        """The run's duration over its API floor: 1.0 would be a run bound by the rate
        limit alone (issue #12's goal for the demo's first run: at most 1.25)."""
        floor = self.api_floor_s
        if floor is None or self.duration_s is None:
            return None
        return self.duration_s / floor

    def datasets(self) -> list[DatasetRun]:
        return [d for f in self.families for d in f.datasets]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["success"] = self.success
        ratio = self.api_floor_ratio
        data["api_floor_ratio"] = round(ratio, 3) if ratio is not None else None
        return data

    def write(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{self.run_id}.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=False, default=str))
        tmp.replace(path)
        self.report_path = str(path)
        return path

    def write_to(self, location: str | Path, *, endpoint_url: str | None = None) -> str:
        """:meth:`write` into a folder, or onto object storage (``s3://…/_reports``: written
        in a private temporary folder, then put as one object); returns where it is."""
        from sodtrack import objstore
        from sodtrack.errors import OutputNotWritable

        if not objstore.is_remote(location):
            return str(self.write(Path(location)))
        with tempfile.TemporaryDirectory(prefix="sodtrack-report-") as folder:
            name = self.write(Path(folder)).name
            failed = objstore.put_files(
                Path(folder), [name], str(location), endpoint_url=endpoint_url
            )
        if failed:
            raise OutputNotWritable(
                f"run report {name} not written to {location}: {failed[name]}",
                setting="SODTRACK_WAREHOUSE",
            )
        self.report_path = str(objstore.join(location, name))
        return self.report_path

    def summary_markdown(self, link: Callable[[str], str] | None = None) -> str:
        """What an analyst reads first: trust it or not, what changed, where it is.
        ``link``: makes the URL of a file (run report, Data Docs) for a markdown link
        (:meth:`sodtrack.links.PublicLinks.to`); none: the paths are shown as code."""

        def where(path: str) -> str:
            return f"[{Path(path).name}]({link(path)})" if link else f"`{path}`"

        verdict = "✅ all datasets published" if self.success else "❌ not everything published"
        lines = [
            f"# Nightly extraction `{self.run_id}`",
            "",
            f"**{verdict}** — countries: {', '.join(self.countries)}; "
            f"full refresh: {'yes' if self.full_refresh else 'no'}; "
            f"duration: {self.duration_s or 0:.1f} s",
            "",
            "| country | family | status | watermark before → after | critical | warnings |",
            "|---|---|---|---|---|---|",
        ]
        for f in self.families:
            wm = (
                f"{f.watermark_before or '—'} → {f.watermark_after or '—'}"
                if f.family == "bookings"
                else ""
            )
            lines.append(
                f"| {f.country} | {f.family} | {f.status} | {wm} | "
                f"{len(f.critical_failures)} | {len(f.warnings)} |"
            )
        problems = [(f, c) for f in self.families for c in f.critical_failures]
        if problems:
            lines += ["", "## Critical failures (data quarantined, previous version kept)", ""]
            lines += [f"- {f.country}/{f.family}: {c}" for f, c in problems]
        if self.warnings:
            lines += ["", "## Warnings (published)", ""]
            lines += [f"- {w}" for w in self.warnings]
        unchanged = [d for d in self.datasets() if d.reason]
        if unchanged:
            lines += ["", "## Not validated again", ""]
            lines += [f"- {d.country}/{d.dataset}: {d.reason}" for d in unchanged]
        notes = [(f, n) for f in self.families for n in f.notes]
        if notes:
            lines += ["", "## Notes", ""]
            lines += [f"- {f.country}/{f.family}: {n}" for f, n in notes]
        errors = [f for f in self.families if f.error]
        if errors:
            lines += ["", "## Errors", ""]
            lines += [f"- {f.country}/{f.family}: {f.error}" for f in errors]
        c = self.client
        lines += [
            "",
            f"Requests: {c.get('requests', 0)}, retries: {c.get('retries', 0)}, "
            f"429s: {c.get('rate_limited', 0)}, retry wait: {c.get('retry_wait_s', 0):.1f} s, "
            f"limiter wait: {c.get('limiter_wait_s', 0):.1f} s.",
        ]
        ratio = self.api_floor_ratio
        if ratio is not None:
            rate = c.get("rate_limit_per_s")
            at = f" at {rate:g} req/s" if rate else ""
            lines.append(
                f"API floor: {c.get('requests', 0)} requests{at} = {self.api_floor_s:.1f} s; "
                f"this run took **{ratio:.2f}×** its API floor."
            )
        elif self.api_floor_note and self.api_floor_note.startswith("not meaningful"):
            lines.append(
                f"API floor: {self.api_floor_note}; no ratio for {c.get('requests', 0)} requests."
            )
        if self.docs_path:
            lines.append(f"Data Docs: {where(self.docs_path)}")
        for f in self.families:
            if f.docs_path:
                lines.append(f"Data Docs {f.country}/{f.family}: {where(f.docs_path)}")
        if self.report_path:
            lines.append(f"Run report: {where(self.report_path)}")
        return "\n".join(lines)

    def counts_table(self) -> list[dict[str, Any]]:
        return [
            {
                "country": d.country,
                "dataset": d.dataset,
                "status": d.status,
                "expected": d.expected,
                "received": d.received,
                "deduplicated": d.deduplicated,
                "written": d.written,
                "rows_total": d.rows_total,
                "completeness": d.completeness,
                "version": d.version,
                "reason": d.reason,
            }
            for d in self.datasets()
        ]


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
