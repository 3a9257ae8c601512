"""One way into ``prefect_test_harness`` for every test module that runs flows in-process.

Prefect keeps one events worker and one log worker per process, keyed by the client's type
and not by the server it talks to, and it connects them (and their API client) to the server
of the moment they start. A harness opened while another is still open on the same pytest
worker (a session-scoped one of ``tests/bulkload/run`` and a module-scoped one of
``tests/orchestration``, whatever ``--dist loadgroup`` puts together) would keep sending
to the first server: every event "failed to process" and the second module's events never
arrived (reproduced: ``tests/bulkload/run/test_flow.py`` then
``tests/orchestration/test_run_signals.py`` in one process, 2 failed). So the workers are
drained on the way in, and again on the way out so an enclosing harness gets fresh ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


def _drain_prefect_workers() -> None:
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    EventsWorker.drain_all()
    APILogWorker.drain_all()


@contextmanager
def open_harness() -> Iterator[None]:
    """``prefect_test_harness`` (180 s to start: CI's two cores are busy), its events and
    logs going to its own server even when another harness is open."""
    from prefect.testing.utilities import prefect_test_harness

    _drain_prefect_workers()
    try:
        with prefect_test_harness(server_startup_timeout=180):
            yield
    finally:
        _drain_prefect_workers()
