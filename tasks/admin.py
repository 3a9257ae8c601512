"""The Prefect side of ``sodtrack-etl prefect …``: set-up an operator runs once, non-interactive.

* :func:`save_secret` — the client secret into a Prefect ``Secret`` block (``prefect secret
  --from-env``): the value comes from the settings (environment or ``.env``), is sent to the
  Prefect API, and is never printed; the command says where it was read from.
* :func:`apply_schedules` — the nightly schedules of the countries this installation serves
  (``SODTRACK_COUNTRIES``, else ``SODTRACK_COUNTRY``) switched on, every other one off.
  ``prefect.yaml`` ships them all off, so ``prefect deploy --all`` alone never starts
  extractions for countries without credentials here.
* :func:`deploy` — ``prefect --no-prompt deploy --all`` from the checkout, then
  :func:`apply_schedules` (a redeploy resets every schedule to the file's ``active: false``).

The CLI imports this module inside its ``prefect`` commands only (the library never imports
Prefect).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tasks.deploy import CHECKOUT

NIGHTLY_DEPLOYMENT = "nightly-extract/nightly-extract"
"""``<flow name>/<deployment name>`` of the nightly extraction (``prefect.yaml``)."""
SCHEDULE_SLUG_PREFIX = "nightly-"
"""Each country's schedule has the slug ``nightly-<country>``."""


def save_secret(name: str, value: str) -> None:
    """Create or overwrite the ``Secret`` block ``name`` with ``value``."""
    from prefect.blocks.system import Secret

    Secret(value=value).save(name, overwrite=True, _sync=True)  # type: ignore[call-arg]


@dataclass(frozen=True, slots=True)
class ScheduleChange:
    slug: str
    active: bool
    changed: bool


async def _apply_schedules(countries: list[str], deployment: str) -> list[ScheduleChange]:
    from prefect.client.orchestration import get_client

    wanted = {SCHEDULE_SLUG_PREFIX + c for c in countries}
    changes: list[ScheduleChange] = []
    async with get_client() as client:
        found = await client.read_deployment_by_name(deployment)
        for schedule in await client.read_deployment_schedules(found.id):
            slug = schedule.slug or ""
            active = slug in wanted
            if schedule.active != active:
                # The schedule's parameters (its countries) are sent back with it: Prefect's
                # server (3.9) stores a PATCH's omitted `parameters` as {} (its model's
                # default), which would turn `nightly-cl` into a run of SODTRACK_COUNTRY.
                await client.update_deployment_schedule(
                    found.id, schedule.id, active=active, parameters=dict(schedule.parameters)
                )
            changes.append(ScheduleChange(slug, active, schedule.active != active))
    return sorted(changes, key=lambda c: c.slug)


def apply_schedules(
    countries: list[str], *, deployment: str = NIGHTLY_DEPLOYMENT
) -> list[ScheduleChange]:
    """Each nightly schedule on when its country is in ``countries``, off otherwise."""
    return asyncio.run(_apply_schedules(countries, deployment))


def deploy(checkout: Path = CHECKOUT) -> int:
    """``prefect --no-prompt deploy --all`` in the checkout (its exit code)."""
    command = [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all"]
    return subprocess.run(command, cwd=checkout, check=False).returncode  # noqa: S603 (fixed argv)
