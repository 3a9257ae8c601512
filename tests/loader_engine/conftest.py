"""Loader engine test fixtures: LibreOffice (see ``tests/libreoffice.py``)."""

from __future__ import annotations

import pytest
from libreoffice import register_marker, soffice

__all__ = ["soffice"]


def pytest_configure(config: pytest.Config) -> None:
    register_marker(config)
