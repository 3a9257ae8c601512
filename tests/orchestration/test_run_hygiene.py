"""Flow-level timeouts come from ``SODTRACK_FLOW_TIMEOUT_S`` when a flow's module is imported
(a process worker imports it afresh for each run); a wrong value falls back to the default and
is reported by the run's ``check-configuration`` task."""

from __future__ import annotations

import importlib

import pytest

from sodtrack.settings import Settings
from tasks.runtime import flow_timeout_s


def test_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SODTRACK_ENV_FILE", "none")
    monkeypatch.setenv("SODTRACK_FLOW_TIMEOUT_S", "5400")
    assert flow_timeout_s() == 5400.0
    monkeypatch.setenv("SODTRACK_FLOW_TIMEOUT_S", "-1")
    assert flow_timeout_s() == Settings.model_fields["flow_timeout_s"].default == 8 * 3600.0
    monkeypatch.delenv("SODTRACK_FLOW_TIMEOUT_S")
    assert flow_timeout_s() == 8 * 3600.0


@pytest.mark.parametrize(
    ("module", "name"), [("flows.nightly", "nightly"), ("flows.bulk_load", "bulk_load")]
)
def test_each_flow_takes_it_when_imported(
    monkeypatch: pytest.MonkeyPatch, module: str, name: str
) -> None:
    monkeypatch.setenv("SODTRACK_ENV_FILE", "none")
    monkeypatch.setenv("SODTRACK_FLOW_TIMEOUT_S", "1234")
    try:
        flow = getattr(importlib.reload(importlib.import_module(module)), name)
        assert flow.timeout_seconds == 1234.0
    finally:
        monkeypatch.delenv("SODTRACK_FLOW_TIMEOUT_S")
        importlib.reload(importlib.import_module(module))


def test_the_task_timeout_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from sodtrack.errors import InvalidSetting
    from sodtrack.settings import resolve_settings

    monkeypatch.setenv("SODTRACK_ENV_FILE", "none")
    monkeypatch.setenv("SODTRACK_TASK_TIMEOUT_S", "60")
    assert resolve_settings()[0].task_timeout_s == 60.0
    monkeypatch.setenv("SODTRACK_TASK_TIMEOUT_S", "0")
    with pytest.raises(InvalidSetting, match="SODTRACK_TASK_TIMEOUT_S"):
        resolve_settings()


def test_the_countries_served(monkeypatch: pytest.MonkeyPatch) -> None:
    from sodtrack.errors import InvalidSetting
    from sodtrack.settings import resolve_settings

    monkeypatch.setenv("SODTRACK_ENV_FILE", "none")
    monkeypatch.setenv("SODTRACK_COUNTRY", "pe")
    monkeypatch.delenv("SODTRACK_COUNTRIES", raising=False)
    assert resolve_settings()[0].served_countries == ["pe"]
    monkeypatch.setenv("SODTRACK_COUNTRIES", " CL, pe ,cl")
    assert resolve_settings()[0].served_countries == ["cl", "pe"]
    monkeypatch.setenv("SODTRACK_COUNTRIES", "cl,xx")
    with pytest.raises(InvalidSetting, match="SODTRACK_COUNTRIES"):
        resolve_settings()
