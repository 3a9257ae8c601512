"""``tasks.runtime.load_settings``: the client secret from a Prefect Secret block."""

from __future__ import annotations

from typing import Any

import pytest
from prefect.blocks.system import Secret

from sodtrack.errors import InvalidSetting
from tasks.runtime import load_settings, resolve


class _Block:
    def __init__(self, value: Any) -> None:
        self.value = value

    def get(self) -> Any:
        return self.value


def test_the_environment_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SODTRACK_CLIENT_SECRET_BLOCK", raising=False)
    monkeypatch.setenv("SODTRACK_CLIENT_SECRET", "from-env")
    assert load_settings().client_secret.get_secret_value() == "from-env"


def test_the_block_wins_when_named(monkeypatch: pytest.MonkeyPatch) -> None:
    loaded: list[tuple[str, Any]] = []

    def fake_load(name: str, **kwargs: Any) -> _Block:
        loaded.append((name, kwargs.get("_sync")))
        return _Block("from-block")

    monkeypatch.setattr(Secret, "load", fake_load)
    monkeypatch.setenv("SODTRACK_CLIENT_SECRET", "from-env")
    monkeypatch.setenv("SODTRACK_CLIENT_SECRET_BLOCK", "sodtrack-client-secret")
    settings = load_settings(warehouse="/tmp/wh")
    assert settings.client_secret.get_secret_value() == "from-block"
    assert "from-block" not in repr(settings)
    assert settings.warehouse == "/tmp/wh"
    assert loaded == [("sodtrack-client-secret", True)]
    _, origin = resolve()
    assert origin.source("client_secret") == "Prefect Secret block 'sodtrack-client-secret'"


def test_an_empty_block_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Secret, "load", lambda name, **kw: _Block(""))
    monkeypatch.setenv("SODTRACK_CLIENT_SECRET_BLOCK", "empty")
    with pytest.raises(InvalidSetting, match=r"SODTRACK_CLIENT_SECRET_BLOCK: .*non-empty string"):
        load_settings()
