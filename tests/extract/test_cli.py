"""``sodtrack-etl extract`` and ``validate`` against a loopback simulator, configured the way
a user configures them: ``SODTRACK_*`` environment variables."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sodtrack.cli import EXIT_NOT_PUBLISHED, app
from sodtrack.simulator.app import create_app
from sodtrack.simulator.testing import serve_in_thread
from sodtrack.warehouse import Warehouse

from .helpers import DATASET_NAMES, count, extract_config

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("extract-cli")]


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[str, str]]:
    """The simulator, and a second one whose catalog has a fifth of the services (the API
    suddenly serving far fewer: a drop beyond the row-count bound)."""
    full = create_app(extract_config())
    shrunk = create_app(extract_config(services=6, variants=12))
    with serve_in_thread(full) as url, serve_in_thread(shrunk) as shrunk_url:
        yield url, shrunk_url


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cli")


@pytest.fixture(autouse=True)
def _logging_restored() -> Iterator[None]:
    """``sodtrack-etl`` configures logging once per process (``basicConfig``) on the stream
    of its first invocation; under ``CliRunner`` that stream is closed afterwards."""
    handlers = list(logging.root.handlers)
    yield
    logging.root.handlers[:] = handlers


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, workdir: Path) -> Path:
    monkeypatch.setenv("SODTRACK_WAREHOUSE", str(workdir / "warehouse"))
    monkeypatch.setenv("SODTRACK_STATE_URL", f"sqlite:///{workdir / 'state.db'}")
    monkeypatch.setenv("SODTRACK_COUNTRY", "cl")
    monkeypatch.delenv("SODTRACK_CLIENT_SECRET", raising=False)
    return workdir


def test_extract_publishes_and_prints_the_counts(
    servers: tuple[str, str], cli_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SODTRACK_BASE_URL", servers[0])
    result = CliRunner().invoke(app, ["extract"])
    assert result.exit_code == 0, result.output
    assert "all datasets published" in result.output
    assert "records per dataset" in result.output
    for dataset in DATASET_NAMES:
        assert dataset in result.output
    root = cli_env / "warehouse"
    for dataset in DATASET_NAMES:
        assert count(root, dataset) > 0
    reports = list((cli_env / "reports").glob("*.json"))
    assert len(reports) == 1


def test_validate_the_published_bookings(
    servers: tuple[str, str], cli_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if Warehouse(cli_env / "warehouse").current_version("bookings") is None:  # any test order
        monkeypatch.setenv("SODTRACK_BASE_URL", servers[0])
        first = CliRunner().invoke(app, ["extract"])
        assert first.exit_code == 0, first.output
    result = CliRunner().invoke(app, ["validate", "bookings"])
    assert result.exit_code == 0, result.output
    assert "bookings/cl: ok (0 critical" in result.output
    assert "Logging error" not in result.output


def test_extract_exits_3_when_a_family_is_quarantined(
    servers: tuple[str, str], cli_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wh = Warehouse(cli_env / "warehouse")
    if wh.current_version("services") is None:
        # Self-contained whatever the order xdist runs this module's tests in: a full
        # catalog is published first, so the shrunk one is a drop beyond the bound.
        monkeypatch.setenv("SODTRACK_BASE_URL", servers[0])
        first = CliRunner().invoke(app, ["extract", "--dataset", "catalog"])
        assert first.exit_code == 0, first.output
    before = wh.current_version("services")
    assert before is not None
    monkeypatch.setenv("SODTRACK_BASE_URL", servers[1])
    result = CliRunner().invoke(app, ["extract", "--dataset", "services"])
    assert result.exit_code == EXIT_NOT_PUBLISHED, result.output
    assert "quarantined" in result.output
    assert "row_count" in result.output
    assert wh.current_version("services") == before
    assert list((cli_env / "warehouse" / "_quarantine" / "services").iterdir())
