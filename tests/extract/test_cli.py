"""``sodtrack-etl extract`` and ``validate`` against a loopback simulator, configured the way
a user configures them: ``SODTRACK_*`` environment variables."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

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


@pytest.fixture(autouse=True)
def _logging_restored() -> Iterator[None]:
    """``sodtrack-etl`` configures logging once per process (``basicConfig``) on the stream
    of its first invocation; under ``CliRunner`` that stream is closed afterwards."""
    handlers = list(logging.root.handlers)
    yield
    logging.root.handlers[:] = handlers


def _environment(mp: pytest.MonkeyPatch, workdir: Path, base_url: str) -> None:
    mp.setenv("SODTRACK_BASE_URL", base_url)
    mp.setenv("SODTRACK_WAREHOUSE", str(workdir / "warehouse"))
    mp.setenv("SODTRACK_STATE_URL", f"sqlite:///{workdir / 'state.db'}")
    mp.setenv("SODTRACK_COUNTRY", "cl")
    mp.delenv("SODTRACK_CLIENT_SECRET", raising=False)


@pytest.fixture(scope="module")
def first_extract(
    servers: tuple[str, str], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Result]:
    """``sodtrack-etl extract`` once into a fresh warehouse (every test starts from it)."""
    workdir = tmp_path_factory.mktemp("cli")
    handlers = list(logging.root.handlers)
    with pytest.MonkeyPatch.context() as mp:
        _environment(mp, workdir, servers[0])
        result = CliRunner().invoke(app, ["extract"])
    logging.root.handlers[:] = handlers
    return workdir, result


@pytest.fixture
def cli_env(
    monkeypatch: pytest.MonkeyPatch, servers: tuple[str, str], first_extract: tuple[Path, Result]
) -> Path:
    workdir = first_extract[0]
    _environment(monkeypatch, workdir, servers[0])
    return workdir


def test_extract_publishes_and_prints_the_counts(first_extract: tuple[Path, Result]) -> None:
    workdir, result = first_extract
    assert result.exit_code == 0, result.output
    assert "all datasets published" in result.output
    assert "records per dataset" in result.output
    for dataset in DATASET_NAMES:
        assert dataset in result.output
    root = workdir / "warehouse"
    for dataset in DATASET_NAMES:
        assert count(root, dataset) > 0
    reports = [json.loads(p.read_text()) for p in (workdir / "reports").glob("*.json")]
    assert any(r["success"] and r["countries"] == ["cl"] for r in reports)


def test_validate_the_published_bookings(cli_env: Path) -> None:
    result = CliRunner().invoke(app, ["validate", "bookings"])
    assert result.exit_code == 0, result.output
    assert "bookings/cl: ok (0 critical" in result.output
    assert "Logging error" not in result.output


def test_extract_exits_3_when_a_family_is_quarantined(
    servers: tuple[str, str], cli_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wh = Warehouse(cli_env / "warehouse")
    before = wh.current_version("services")  # published by the first extract
    assert before is not None
    monkeypatch.setenv("SODTRACK_BASE_URL", servers[1])
    result = CliRunner().invoke(app, ["extract", "--dataset", "services"])
    assert result.exit_code == EXIT_NOT_PUBLISHED, result.output
    assert "quarantined" in result.output
    assert "row_count" in result.output
    assert wh.current_version("services") == before
    assert list((cli_env / "warehouse" / "_quarantine" / "services").iterdir())
