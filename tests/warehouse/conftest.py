from __future__ import annotations

from pathlib import Path

import pytest

from sodtrack.warehouse import Warehouse


@pytest.fixture
def wh(tmp_path: Path) -> Warehouse:
    # durable=False skips fsyncs: same protocol, faster tests (one test keeps them on).
    return Warehouse(tmp_path / "wh", durable=False)
