"""Loader test fixtures: LibreOffice (see ``tests/libreoffice.py``)."""

from __future__ import annotations

import pytest
from libreoffice import require_soffice


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "libreoffice: needs LibreOffice's soffice (skips without it, fails without it when "
        "SODTRACK_REQUIRE_LIBREOFFICE=1)",
    )


@pytest.fixture(scope="session")
def soffice() -> str:
    """Path of ``soffice``; skips (or fails, under SODTRACK_REQUIRE_LIBREOFFICE=1) without."""
    return require_soffice()
