"""The suite's own machinery: tests that share an expensive fixture (a Prefect server, a
published warehouse) rely on ``--dist loadgroup`` keeping their ``xdist_group`` together.

pytest 9.2 silently broke that (pytest-dev/pytest-xdist#1386): the groups were spread over
every worker, each starting its own Prefect server, and nothing failed. This check fails
instead, whenever the suite runs under ``--dist loadgroup``.
"""

from __future__ import annotations

import os

import pytest


@pytest.mark.xdist_group("grouping-check")
def test_xdist_groups_keep_their_tests_together(request: pytest.FixtureRequest) -> None:
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        pytest.skip("not running on an xdist worker")
    if not request.config.getvalue("loadgroup"):
        pytest.skip("not running under --dist loadgroup")
    assert request.node.nodeid.endswith("@grouping-check"), request.node.nodeid
