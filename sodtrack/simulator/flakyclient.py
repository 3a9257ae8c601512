"""The client side of a flaky network, for the acceptance test and the benchmark that put
:class:`~sodtrack.simulator.flakyproxy.FlakyProxy` in front of the simulator
(``tests/bulkload/engine/test_flaky_network.py``, ``bench/bench_flaky.py``).

* :func:`flaky_client`: a real :class:`~sodtrack.client.SodtrackClient` with short timeouts
  and backoffs, so that a run through the proxy's stalls and retries takes seconds.
* :data:`PRE_CHECK_FAULTS`: the faults scripted on the checks before writing (the services and
  zones lists), as in issue #10's reproduction; give the proxy a fresh copy per run.

The one module of the simulator package that imports the client: the server never imports it.
"""

from __future__ import annotations

import httpx
from pydantic import SecretStr

from sodtrack.client import Credentials, RateLimiter, RetryPolicy, SodtrackClient
from sodtrack.contract.limits import API_PREFIX

PRE_CHECK_FAULTS: dict[str, tuple[str, ...]] = {
    f"GET {API_PREFIX}/catalog/services": ("cut_200", "empty_200"),
    f"GET {API_PREFIX}/coverage/zones": ("5xx_html", "cut_200"),
}
"""``FlakyProxy.script`` cue -> the fault kinds its next requests get, in order."""


def flaky_client(base_url: str, *, read_timeout_s: float, concurrency: int) -> SodtrackClient:
    """A client of the simulator's test credentials (Chile) through ``base_url``: a read
    timeout of ``read_timeout_s``, ``concurrency`` requests in flight (and connections) at
    most, six attempts with 0.02-0.25 s backoffs, no rate limit to speak of."""
    http = httpx.AsyncClient(
        timeout=httpx.Timeout(5.0, read=read_timeout_s),
        limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
    )
    return SodtrackClient(
        http,
        base_url=base_url,
        country="cl",
        credentials=Credentials("sim-client", SecretStr("sim-secret")),
        retry=RetryPolicy(
            max_attempts=6, base_delay_s=0.02, max_delay_s=0.25, rate_limited_default_s=0.05
        ),
        rate_limiter=RateLimiter(1000.0),
        max_concurrency=concurrency,
        owns_http=True,
    )
