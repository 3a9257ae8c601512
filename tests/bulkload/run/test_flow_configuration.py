"""The flows' entry task checks the configuration (issue #10, items 7 and 10): a
``ConfigurationError`` fails the run at once with its one line as the message, before
anything is extracted, loaded or written; the check task is never retried.

Under ``prefect_test_harness`` against a loopback simulator of Chile.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tasks.runtime import check_configuration_task

from .conftest import Sim, clean_file

pytestmark = [
    pytest.mark.prefect,
    pytest.mark.slow,
    pytest.mark.xdist_group("load-shell-prefect"),  # one worker, one harness
]


def _nightly(**params: Any) -> Any:
    from flows.nightly import nightly

    return asyncio.run(nightly(return_state=True, **params))  # type: ignore[call-overload,arg-type]


def _bulk_load(**params: Any) -> Any:
    from flows.bulk_load import bulk_load

    return asyncio.run(bulk_load(return_state=True, **params))  # type: ignore[call-overload,arg-type]


def test_the_check_task_is_never_retried() -> None:
    assert check_configuration_task.retries == 0


def test_a_nightly_run_for_peru_on_chile_s_server_publishes_nothing(
    prefect_harness: None, sim: Sim
) -> None:
    host = sim.url.removeprefix("http://")
    state = _nightly(countries=["pe"])
    assert state.is_failed()
    assert state.message.startswith("configuration error: ")
    assert f"the server at {host} issued a token for 'cl', not 'pe'" in state.message
    warehouse = sim.root / "warehouse"
    assert not warehouse.exists() or not any(warehouse.rglob("*.parquet"))
    assert not (sim.root / "reports").exists()


def test_a_bad_setting_fails_the_bulk_load_before_reading_the_file(
    prefect_harness: None, sim: Sim, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = clean_file(sim.root / "inbox" / "bookings.xlsx", rows=4, projects=1)
    monkeypatch.setenv("SODTRACK_ENV", "staging")
    state = _bulk_load(path=str(path), country="cl")
    assert state.is_failed()
    assert state.message == (
        "configuration error: SODTRACK_ENV: 'staging' is not one of dev, uat, prod"
    )
    assert sim.writes() == {}
    assert not sim.outbox.exists()


def test_an_unwritable_outbox_fails_the_bulk_load_before_any_booking(
    prefect_harness: None, sim: Sim
) -> None:
    path = clean_file(sim.root / "inbox" / "bookings.xlsx", rows=4, projects=1)
    seeded = set(sim.bookings())
    blocker = sim.root / "a-file"
    blocker.write_text("not a folder")
    state = _bulk_load(path=str(path), country="cl", outbox=str(blocker / "outbox"))
    assert state.is_failed()
    assert state.message.startswith("configuration error: outbox: cannot write into")
    assert sim.writes() == {}
    assert set(sim.bookings()) == seeded
    assert not any(Path(sim.root).rglob("results*"))
