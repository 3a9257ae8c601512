"""``sodtrack-etl prefect secret --from-env`` and ``prefect schedules`` on a real Prefect API
(``prefect_test_harness``): the block holds the value and nothing printed does; the nightly
schedules of the countries served here are on, every other one off."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from prefectharness import open_harness
from typer.testing import CliRunner

from sodtrack import cli
from sodtrack.cli import app
from sodtrack.contract.countries import COUNTRIES

pytestmark = [pytest.mark.prefect, pytest.mark.slow, pytest.mark.xdist_group("admin-prefect")]

SECRET = "s3cr3t-Value-never-printed"


@pytest.fixture(scope="module")
def prefect_harness() -> Iterator[None]:
    with open_harness():
        yield


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("SODTRACK_CLIENT_SECRET", "SODTRACK_CLIENT_SECRET_BLOCK", "SODTRACK_COUNTRIES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SODTRACK_ENV_FILE", "none")
    monkeypatch.setenv("SODTRACK_COUNTRY", "cl")
    return tmp_path


def test_the_secret_block_from_the_environment(
    prefect_harness: None, env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.blocks.system import Secret

    refused = CliRunner().invoke(app, ["prefect", "secret", "--from-env"])
    assert refused.exit_code == cli.EXIT_CONFIGURATION
    assert "SODTRACK_CLIENT_SECRET is not set" in refused.output

    monkeypatch.setenv("SODTRACK_CLIENT_SECRET", SECRET)
    monkeypatch.setenv("SODTRACK_CLIENT_SECRET_BLOCK", "ops-secret")
    saved = CliRunner().invoke(app, ["prefect", "secret", "--from-env"])
    assert saved.exit_code == 0, saved.output
    assert saved.output.strip() == (
        "Secret block 'ops-secret' saved from SODTRACK_CLIENT_SECRET "
        "(environment variable SODTRACK_CLIENT_SECRET)"
    )
    block: Secret[str] = Secret.load("ops-secret", _sync=True)  # type: ignore[call-arg,assignment]
    assert block.get() == SECRET

    (env / "ops.env").write_text(f"SODTRACK_CLIENT_SECRET={SECRET}-2\n")
    monkeypatch.delenv("SODTRACK_CLIENT_SECRET")
    monkeypatch.setenv("SODTRACK_ENV_FILE", str(env / "ops.env"))
    again = CliRunner().invoke(app, ["prefect", "secret", "--from-env", "--name", "other"])
    assert again.exit_code == 0, again.output
    assert f".env file at {env / 'ops.env'}" in again.output
    assert "SODTRACK_CLIENT_SECRET_BLOCK=other" in again.output
    assert SECRET not in again.output + saved.output + refused.output
    other: Secret[str] = Secret.load("other", _sync=True)  # type: ignore[call-arg,assignment]
    assert other.get() == f"{SECRET}-2"


async def _nightly_with_every_schedule_off() -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import DeploymentScheduleCreate
    from prefect.client.schemas.schedules import CronSchedule

    async with get_client() as client:
        flow_id = await client.create_flow_from_name("nightly-extract")
        await client.create_deployment(
            flow_id=flow_id,
            name="nightly-extract",
            schedules=[
                DeploymentScheduleCreate(
                    schedule=CronSchedule(cron="0 2 * * *", timezone=c.time_zone),
                    active=False,
                    slug=f"nightly-{c.code}",
                    parameters={"countries": [c.code]},
                )
                for c in COUNTRIES.values()
            ],
        )


async def _active() -> dict[str, bool]:
    """Each schedule's state; its parameters (its country) must have survived the switch."""
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        found = await client.read_deployment_by_name("nightly-extract/nightly-extract")
        schedules = await client.read_deployment_schedules(found.id)
    for s in schedules:
        assert s.parameters == {"countries": [(s.slug or "").removeprefix("nightly-")]}, s
    return {s.slug or "": s.active for s in schedules}


def test_schedules_on_for_the_countries_served_here(
    prefect_harness: None, env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asyncio.run(_nightly_with_every_schedule_off())
    monkeypatch.setenv("SODTRACK_COUNTRIES", "cl,pe")
    done = CliRunner().invoke(app, ["prefect", "schedules"])
    assert done.exit_code == 0, done.output
    assert asyncio.run(_active()) == {f"nightly-{c}": c in ("cl", "pe") for c in COUNTRIES}
    assert "nightly-pe: on (changed)" in done.output
    assert "nightly-uy: off\n" in done.output

    monkeypatch.delenv("SODTRACK_COUNTRIES")  # SODTRACK_COUNTRY alone: Chile
    again = CliRunner().invoke(app, ["prefect", "schedules"])
    assert again.exit_code == 0, again.output
    assert asyncio.run(_active()) == {f"nightly-{c}": c == "cl" for c in COUNTRIES}
    assert "nightly-cl: on\n" in again.output
    assert "nightly-pe: off (changed)" in again.output
