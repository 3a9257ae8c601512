"""The simulator's token signing key and malformed claims (issue #10, item 11).

* The key is random per process unless one is configured (``SimConfig.signing_key``,
  ``sodtrack-sim serve --signing-key``): a token cannot be forged from the public seed.
* A token whose ``exp`` (or another required claim) is missing or malformed is
  ``401 invalid_token``, never a 500: a generated corpus of claim values.
"""

from __future__ import annotations

import hashlib
import math
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sodtrack.contract.limits import ALL_SCOPES
from sodtrack.simulator.app import create_app
from sodtrack.simulator.auth import Auth
from sodtrack.simulator.clock import Clock
from sodtrack.simulator.sim import Simulator
from sodtrack.simulator.testing import SimulatorTransport, small_config

from .helpers import error_of, url

SCOPES = " ".join(ALL_SCOPES)


def _seed_derived_key(seed: int) -> bytes:
    """The key main derived from the public seed (what an attacker would compute)."""
    return hashlib.sha256(f"sodtrack-simulator:{seed}".encode()).digest()


async def _status(http: httpx.AsyncClient, token: str) -> tuple[int, str]:
    response = await http.get(url("list_services"), headers={"Authorization": f"Bearer {token}"})
    return response.status_code, error_of(response)["code"] if response.status_code >= 400 else ""


async def test_a_token_forged_with_the_seed_derived_key_is_refused(
    http: httpx.AsyncClient, sim: Simulator
) -> None:
    now = int(sim.clock.now().timestamp())
    claims = {"sub": "sim-client", "country": "cl", "scope": SCOPES, "iat": now, "exp": now + 900}
    forged = jwt.encode(claims, _seed_derived_key(small_config().seed), algorithm="HS256")
    assert await _status(http, forged) == (401, "invalid_token")
    assert await _status(http, sim.auth.sign(claims)) == (200, "")


def test_the_key_is_random_per_process_unless_configured() -> None:
    clock = Clock.manual(datetime(2026, 6, 10, tzinfo=UTC))
    a, b = Auth(small_config(), clock), Auth(small_config(seed=1), clock)
    claims = {"sub": "x", "country": "cl", "scope": SCOPES, "iat": 0, "exp": 1}
    # One key per process: two simulators of this process verify each other's tokens (the
    # multi-country app, restarts in tests) whatever their seed...
    assert a.sign(claims) == b.sign(claims)
    # ...and it is not the seed-derived one, for any seed.
    for seed in (0, 1, 42, 7, 2**31):
        assert a.sign(claims) != jwt.encode(claims, _seed_derived_key(seed), algorithm="HS256")
    # A configured key is stable: equal configs, equal tokens, in any process.
    c = Auth(small_config(signing_key="a-stable-key-for-tests"), clock)
    d = Auth(small_config(signing_key="a-stable-key-for-tests"), clock)
    assert c.sign(claims) == d.sign(claims) != a.sign(claims)


def test_two_processes_draw_different_keys() -> None:
    code = "from sodtrack.simulator.auth import signing_key; print(signing_key(None).hex())"
    keys = {
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.strip()
        for _ in range(2)
    }
    assert len(keys) == 2
    assert all(len(k) == 64 for k in keys)


def test_the_configured_key_is_never_shown() -> None:
    config = small_config(signing_key="a-stable-key-for-tests")
    assert "a-stable-key-for-tests" not in repr(config)


def test_the_serve_command_takes_a_signing_key() -> None:
    from typer.testing import CliRunner

    from sodtrack.simulator.cli import app

    result = CliRunner().invoke(app, ["serve", "--help"])
    assert "--signing-key" in result.output


_ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)
_NOT_A_NUMBER = _ANY_JSON.filter(lambda v: isinstance(v, bool) or not isinstance(v, int | float))


@pytest.fixture(scope="module")
def module_app() -> Any:
    return create_app(small_config())


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    exp=_NOT_A_NUMBER | st.just(math.inf) | st.just(-math.inf) | st.just(math.nan),
    missing=st.sampled_from([None, "exp", "sub", "country", "scope"]),
)
async def test_malformed_claims_are_401_invalid_token(
    module_app: Any, exp: object, missing: str | None
) -> None:
    sim: Simulator = module_app.state.sim
    claims: dict[str, Any] = {"sub": "sim-client", "country": "cl", "scope": SCOPES, "iat": 0}
    claims["exp"] = exp
    if missing is not None:
        claims.pop(missing)
    token = jwt.encode(claims, sim.auth._key, algorithm="HS256")  # the simulator's own key
    async with httpx.AsyncClient(
        transport=SimulatorTransport(module_app), base_url="http://sim"
    ) as http:
        assert await _status(http, token) == (401, "invalid_token")


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    exp=st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
)
async def test_numeric_exp_is_checked_never_a_500(module_app: Any, exp: float) -> None:
    sim: Simulator = module_app.state.sim
    claims = {"sub": "sim-client", "country": "cl", "scope": SCOPES, "iat": 0, "exp": exp}
    token = jwt.encode(claims, sim.auth._key, algorithm="HS256")
    now = sim.clock.now().timestamp()
    async with httpx.AsyncClient(
        transport=SimulatorTransport(module_app), base_url="http://sim"
    ) as http:
        status, code = await _status(http, token)
    if exp > now + 1:
        assert (status, code) == (200, "")
    elif exp <= now - 1:
        assert (status, code) == (401, "token_expired")
    else:  # within the second of now: either, but an answer of the contract
        assert (status, code) in ((200, ""), (401, "token_expired"))
