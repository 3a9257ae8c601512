"""``sodtrack-etl sample``: a sample built from whatever API is configured loads there.

The simulator here is seeded unlike the demo's (another seed, another catalog and coverage
scale, the wall clock): a sample that only fitted the demo's simulator would be rejected.
Each file is checked by a dry run of ``sodtrack-etl load`` against the same API (every
check, live; nothing created)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from sodtrack import cli
from sodtrack.cli import app
from sodtrack.simulator.app import create_app
from sodtrack.simulator.testing import serve_in_thread, small_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def api() -> Iterator[str]:
    config = small_config(seed=9001, now=None, services=55, zones=13, postal_codes=900)
    with serve_in_thread(create_app(config)) as url:
        yield url


@pytest.fixture
def env(api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("SODTRACK_CLIENT_SECRET_BLOCK", "SODTRACK_ENV", "SODTRACK_COUNTRIES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SODTRACK_ENV_FILE", "none")
    monkeypatch.setenv("SODTRACK_BASE_URL", api)
    monkeypatch.setenv("SODTRACK_COUNTRY", "pe")  # the sample's --country wins
    monkeypatch.setenv("SODTRACK_CLIENT_ID", "sim-client")
    monkeypatch.setenv("SODTRACK_CLIENT_SECRET", "sim-secret")
    monkeypatch.setenv("SODTRACK_STATE_URL", f"sqlite:///{tmp_path / 'state.db'}")
    monkeypatch.setenv("SODTRACK_OUTBOX", str(tmp_path / "outbox"))
    monkeypatch.setenv("SODTRACK_WAREHOUSE", str(tmp_path / "warehouse"))
    return tmp_path


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def test_a_sample_of_the_configured_api_loads_there(env: Path) -> None:
    path = env / "sample.xlsx"
    made = invoke("sample", "--country", "cl", path, "--rows", "30", "--projects", "3")
    assert made.exit_code == 0, made.output
    assert f"{path}: 30 rows (3 projects) for cl" in made.stdout
    checked = invoke("load", path, "--country", "cl", "--dry-run")
    assert checked.exit_code == cli.EXIT_OK, checked.output

    csv_path = env / "sample.csv"
    assert invoke("sample", "-c", "cl", csv_path, "--rows", "12", "--seed", "3").exit_code == 0
    assert invoke("load", csv_path, "--country", "cl", "--dry-run").exit_code == cli.EXIT_OK


def test_errors_on_purpose_are_the_only_rejected_rows(env: Path) -> None:
    path = env / "with-errors.xlsx"
    made = invoke("sample", "--country", "cl", path, "--errors")
    assert made.exit_code == 0, made.output
    assert made.stdout.count("wrong on purpose") == 3
    checked = invoke("load", path, "--country", "cl", "--dry-run")
    assert checked.exit_code == cli.EXIT_REJECTED, checked.output
    [summary] = (env / "outbox").glob("*/with-errors.*-dry.summary.json")
    counts = json.loads(summary.read_text())["outcomes"]
    assert counts["rejected"] == 3, counts
    assert counts["would_create"] == 37, counts


def test_a_file_it_cannot_write_is_refused_before_anything(env: Path) -> None:
    refused = invoke("sample", "--country", "cl", env / "sample.txt")
    assert refused.exit_code == cli.EXIT_CONFIGURATION
    assert "must end in .xlsx or .csv" in refused.output
    assert not (env / "sample.txt").exists()
    csv_errors = invoke("sample", "--country", "cl", env / "x.csv", "--errors")
    assert csv_errors.exit_code == cli.EXIT_CONFIGURATION
