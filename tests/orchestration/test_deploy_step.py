"""The pull step picks the run's working directory on the worker, when the run starts (no path
is stored): ``SODTRACK_PROJECT_DIR`` (a directory of the worker's own), else the checkout."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tasks.deploy import CHECKOUT, set_project_directory


@pytest.fixture(autouse=True)
def _restore_cwd() -> Iterator[None]:
    here = Path.cwd()
    yield
    os.chdir(here)


def test_the_checkout_of_this_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SODTRACK_PROJECT_DIR", raising=False)
    monkeypatch.chdir(tmp_path)  # a process worker starts runs in a temporary directory
    assert set_project_directory() == {"directory": str(CHECKOUT)}
    assert Path.cwd() == CHECKOUT
    assert (CHECKOUT / "prefect.yaml").exists()


def test_a_directory_of_the_workers_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not a checkout (no flows/ in it): the code is imported as modules, read only."""
    monkeypatch.setenv("SODTRACK_PROJECT_DIR", str(tmp_path))
    assert set_project_directory() == {"directory": str(tmp_path)}
    assert Path.cwd() == tmp_path
    with pytest.raises(FileNotFoundError, match="not a directory"):
        set_project_directory(str(tmp_path / "elsewhere"))


def test_a_module_path_entrypoint_loads_outside_the_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What Prefect does after the pull step: import the entrypoint, from the run's directory."""
    import yaml
    from prefect.flows import load_flow_from_entrypoint

    monkeypatch.setenv("SODTRACK_PROJECT_DIR", str(tmp_path))
    set_project_directory()
    config = yaml.safe_load((CHECKOUT / "prefect.yaml").read_text())
    for d in config["deployments"]:
        flow: Any = load_flow_from_entrypoint(d["entrypoint"], use_placeholder_flow=False)
        assert flow.name == d["name"]
    assert list(tmp_path.iterdir()) == []


def _git(repo: Path, *args: str) -> str:
    import subprocess

    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    done = subprocess.run(
        ["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_the_revision_is_the_checkouts_commit(tmp_path: Path) -> None:
    from tasks.deploy import checkout_revision

    repo = tmp_path / "checkout"
    (repo / "flows").mkdir(parents=True)
    _git(repo, "init", "-q")
    (repo / "flows" / "x.py").write_text("x = 1\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "one")
    _git(repo, "tag", "v1")  # a tag does not hide the commit
    commit = _git(repo, "rev-parse", "--short=12", "HEAD")
    assert checkout_revision(repo) == commit
    (repo / "flows" / "x.py").write_text("x = 2\n")
    assert checkout_revision(repo) == f"{commit}-dirty"


def test_outside_git_the_package_version(tmp_path: Path) -> None:
    from importlib.metadata import version

    from tasks.deploy import checkout_revision

    assert checkout_revision(tmp_path) == f"sodtrack-{version('sodtrack-pipeline')}"


def test_a_worker_at_another_revision_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from tasks.deploy import checkout_revision

    monkeypatch.delenv("SODTRACK_PROJECT_DIR", raising=False)
    here = checkout_revision()
    with caplog.at_level("WARNING", logger="sodtrack.deploy"):
        set_project_directory(expected_revision=here)
        assert caplog.records == []
        set_project_directory(expected_revision="0123456789ab")
    [record] = caplog.records
    assert f"is at {here}, the deployment was made from 0123456789ab" in record.getMessage()
