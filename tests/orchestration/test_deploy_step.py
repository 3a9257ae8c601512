"""The pull step finds the checkout on the worker, when the run starts (no path is stored)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

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


def test_an_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "flows").mkdir()
    monkeypatch.setenv("SODTRACK_PROJECT_DIR", str(tmp_path))
    assert set_project_directory() == {"directory": str(tmp_path)}
    assert Path.cwd() == tmp_path
    with pytest.raises(FileNotFoundError, match="not a checkout"):
        set_project_directory(str(tmp_path / "elsewhere"))
