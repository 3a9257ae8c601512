"""``sodtrack-etl sample``: a realistic upload built from whatever API is configured.

The demo's sample (:func:`sodtrack.demo.write_sample`) and this one are the same generator,
:func:`sodtrack.bulkload.synth.synthesize_upload`, which reads the live catalog (active services
and variants) and coverage (active zones, their postal codes and contractors) through the
client and places every booking on a covered postal code, in a slot its zone can serve, from
30 to 170 days ahead in the country's own time: nothing in it is the simulator's, so it fits
the simulator under any seed, UAT or production alike (it writes nothing to the API).

``errors=True`` makes three rows wrong on purpose (an unknown SKU, a postal code outside the
service's coverage, a payment above its project's total), so a load of the file shows the
rejects file and the "Rows rejected" state; the rest should load.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from sodtrack.bulkload.engine.catalog import CatalogClient
from sodtrack.contract.countries import get_country
from sodtrack.errors import InvalidSetting

SUFFIXES = (".xlsx", ".csv")


@dataclass(frozen=True, slots=True)
class SampleFile:
    path: Path
    country: str
    rows: int
    projects: int
    bad: dict[str, str] = field(default_factory=dict)
    """external_reference → what is wrong with it on purpose (``errors=True``)."""

    def __str__(self) -> str:
        lines = [
            f"{self.path}: {self.rows} rows ({self.projects} projects) for "
            f"{self.country}, from the live catalog and coverage"
        ]
        lines += [f"  wrong on purpose: {ref}: {why}" for ref, why in self.bad.items()]
        return "\n".join(lines)


async def write_sample_file(
    client: CatalogClient,
    path: Path,
    *,
    country: str,
    rows: int = 40,
    projects: int = 4,
    errors: bool = False,
    seed: int = 11,
    today: date | None = None,
) -> SampleFile:
    """Write the sample to ``path`` (``.xlsx``, or ``.csv`` without ``errors``)."""
    from sodtrack.bulkload.synth import synthesize_upload
    from sodtrack.demo import write_sample

    code = get_country(country).code
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES or (errors and suffix != ".xlsx"):
        allowed = ".xlsx" if errors else " or ".join(SUFFIXES)
        raise InvalidSetting(f"FILE: {path.name!r} must end in {allowed}", setting="FILE")
    path.parent.mkdir(parents=True, exist_ok=True)
    if errors:
        made = await write_sample(
            client, path, country=code, rows=rows, projects=projects, today=today, seed=seed
        )
        return SampleFile(path, code, made.rows, made.projects, dict(made.bad))
    summary = await synthesize_upload(
        client,
        path,
        country=code,
        rows=rows,
        projects=projects,
        seed=seed,
        prefix="SAMPLE",
        today=today,
    )
    return SampleFile(path, code, summary.rows, summary.projects)
