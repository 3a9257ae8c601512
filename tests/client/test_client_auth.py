"""TokenManager: single flight, early refresh with a clamped margin, invalidation."""

from __future__ import annotations

import asyncio

import pytest
from client_fakes import FakeClock
from pydantic import SecretStr

from sodtrack.client.auth import BearerToken, Credentials, IssuedToken, TokenManager


class Issuer:
    def __init__(self, clock: FakeClock, ttl: float, fail: int = 0) -> None:
        self.clock, self.ttl, self.calls, self.fail = clock, ttl, 0, fail

    async def __call__(self) -> IssuedToken:
        self.calls += 1
        requested = self.clock()
        await asyncio.sleep(0)  # let the other callers pile up
        await asyncio.sleep(0)
        if self.fail:
            self.fail -= 1
            raise RuntimeError("token endpoint down")
        return IssuedToken(SecretStr(f"jwt-{self.calls}"), self.ttl, requested)


async def test_concurrent_callers_share_one_fetch() -> None:
    clock = FakeClock()
    issuer = Issuer(clock, 900)
    manager = TokenManager(issuer, clock=clock)
    tokens = await asyncio.gather(*(manager.get() for _ in range(50)))
    assert issuer.calls == 1
    assert len({id(t) for t in tokens}) == 1


async def test_a_failed_fetch_fails_every_waiter_then_the_next_call_fetches_again() -> None:
    clock = FakeClock()
    issuer = Issuer(clock, 900, fail=1)
    manager = TokenManager(issuer, clock=clock)
    results = await asyncio.gather(*(manager.get() for _ in range(5)), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    assert issuer.calls == 1
    assert isinstance(await manager.get(), BearerToken)
    assert issuer.calls == 2


@pytest.mark.parametrize(
    ("ttl", "margin", "refresh_after"),
    [
        (900.0, 60.0, 899 - 60),  # the default margin for 15-minute tokens
        (2.0, 60.0, 0.75),  # life 1 s (whole-second exp), margin clamped to a quarter
        (10.0, 1.0, 8.0),  # a small configured margin is kept
    ],
)
async def test_refresh_happens_before_expiry(
    ttl: float, margin: float, refresh_after: float
) -> None:
    clock = FakeClock()
    issuer = Issuer(clock, ttl)
    manager = TokenManager(issuer, clock=clock, margin_s=margin)
    first = await manager.get()
    clock.advance(refresh_after - 0.01)
    assert await manager.get() is first
    clock.advance(0.02)
    second = await manager.get()
    assert second is not first
    assert issuer.calls == 2


async def test_invalidate_only_forgets_the_refused_token() -> None:
    clock = FakeClock()
    manager = TokenManager(Issuer(clock, 900), clock=clock)
    first = await manager.get()
    assert manager.invalidate(first)
    second = await manager.get()
    assert not manager.invalidate(first)  # someone already replaced it
    assert manager.current is second


def test_tokens_and_credentials_never_print() -> None:
    token = BearerToken("eyJ.secret.jwt", issued_at=0, expires_in=900, margin_s=60, generation=3)
    creds = Credentials("acme-cl", SecretStr("hunter2-secret"))
    for text in (repr(token), str(token), repr(creds), str(creds)):
        assert "eyJ.secret.jwt" not in text
        assert "hunter2-secret" not in text
    assert token.authorization() == "Bearer eyJ.secret.jwt"
    with pytest.raises(TypeError):
        Credentials("acme-cl", "plain-secret")  # type: ignore[arg-type]
