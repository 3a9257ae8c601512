"""Credentials and the bearer token: fetched on demand, refreshed early, single-flight.

* :class:`Credentials` keeps the secret in a ``SecretStr``: its ``repr``/``str`` print
  ``**********``.
* :class:`BearerToken` holds the JWT in a slot that no ``repr``, ``str`` or log line shows.
  The client trusts ``expires_in`` from the token response and its own monotonic clock, not
  the ``exp`` claim (which would need synchronised wall clocks).
* **The token's country.** The one claim the client reads (:func:`token_country`: the JWT
  payload decoded *without* verifying the signature; the token is the server's to verify) is
  ``country``: a token for another country than the client's, or without a readable
  ``country``, raises :class:`~sodtrack.client.errors.TokenCountryMismatch` and no request
  is sent with it. A base URL that does not vary by country can otherwise point a ``pe``
  run at Chile's server, whose answers (prices in CLP) would be published as Peru's.
* :class:`TokenManager` hands out the current token and fetches a new one when there is none
  or when it is within ``margin`` of expiring, where ``margin = min(token_margin_s,
  life / 4)``: the default 60 s for 15-minute tokens, a quarter of the life for the
  2-second tokens of the tests. ``life`` is ``expires_in`` less one second, because the
  ``exp`` claim is in whole seconds (a token issued at 10.9 s with ``expires_in=2`` dies at
  12 s), and it is counted from the moment the token request was *sent*: both err early.
* **Single flight**: N concurrent callers that find the token stale share one fetch (an
  ``asyncio`` task they all await, shielded so a cancelled caller does not cancel it for the
  others). A failed fetch fails every waiter with the same exception; each caller's retry
  loop then decides (the fetch itself is one HTTP attempt, never retried here: the client
  has a single retry layer).
* After a ``401 invalid_token``/``token_expired`` the request engine calls
  :meth:`TokenManager.invalidate` with the token that was refused (a no-op if another caller
  already replaced it) and retries once.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pydantic import SecretStr

from sodtrack.client.clock import MonotonicClock
from sodtrack.client.errors import TokenCountryMismatch
from sodtrack.contract.limits import TOKEN_TTL_S


@dataclass(frozen=True, slots=True)
class Credentials:
    """A client credential: ``client_id`` (not secret) and ``client_secret``."""

    client_id: str
    client_secret: SecretStr

    def __post_init__(self) -> None:
        if not isinstance(self.client_secret, SecretStr):  # a plain str would print in reprs
            raise TypeError("client_secret must be a pydantic SecretStr")


class BearerToken:
    """An access token and when to stop using it; never printed."""

    __slots__ = ("_value", "expires_in", "generation", "issued_at", "refresh_at")

    def __init__(
        self, value: str, *, issued_at: float, expires_in: float, margin_s: float, generation: int
    ) -> None:
        self._value = value
        self.issued_at = issued_at
        self.expires_in = expires_in
        # ``exp`` is in whole seconds: the token may die up to 1 s before issued + expires_in.
        life = expires_in - 1.0 if expires_in >= 2.0 else expires_in / 2
        self.refresh_at = issued_at + life - min(margin_s, life / 4)
        self.generation = generation

    def authorization(self) -> str:
        """The ``Authorization`` header value."""
        return f"Bearer {self._value}"

    def reveal(self) -> str:
        """The raw token (for the secret-redaction filter only)."""
        return self._value

    def is_fresh(self, now: float) -> bool:
        return now < self.refresh_at

    def __repr__(self) -> str:
        return f"BearerToken(generation={self.generation}, expires_in={self.expires_in:g})"

    __str__ = __repr__


def token_country(token: str) -> str | None:
    """The JWT's ``country`` claim, read without verifying the signature; None when the token
    is not a JWT or carries no string ``country``."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error):
        return None
    country = claims.get("country") if isinstance(claims, dict) else None
    return country if isinstance(country, str) else None


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """What one token request returned (the fetch callback's result)."""

    access_token: SecretStr
    expires_in: float
    requested_at: float
    """MonotonicClock reading taken just before the request was sent."""


class TokenManager:
    """Hands out a fresh :class:`BearerToken`, fetching at most one at a time."""

    def __init__(
        self,
        fetch: Callable[[], Awaitable[IssuedToken]],
        *,
        clock: MonotonicClock = time.monotonic,
        margin_s: float = 60.0,
        country: str | None = None,
        issuer: str = "",
    ) -> None:
        """``country``: the country every token must be for (None: not checked, for unit
        tests of the refresh logic); ``issuer``: the host named when one is not."""
        self._fetch = fetch
        self._country = country
        self._issuer = issuer
        self._clock = clock
        self._margin_s = max(margin_s, 0.0)
        self._token: BearerToken | None = None
        self._inflight: asyncio.Task[BearerToken] | None = None
        self._generation = 0
        self.fetches = 0

    def __repr__(self) -> str:
        return f"TokenManager(generation={self._generation}, has_token={self._token is not None})"

    @property
    def current(self) -> BearerToken | None:
        return self._token

    async def get(self) -> BearerToken:
        """The current token if fresh, else the result of the (shared) fetch."""
        token = self._token
        if token is not None and token.is_fresh(self._clock()):
            return token
        if self._inflight is None:
            self._inflight = asyncio.get_running_loop().create_task(self._refresh())
            self._inflight.add_done_callback(self._clear_inflight)
        return await asyncio.shield(self._inflight)

    def _clear_inflight(self, task: asyncio.Task[BearerToken]) -> None:
        if self._inflight is task:
            self._inflight = None
        if not task.cancelled():
            task.exception()  # mark retrieved: every waiter got it already

    async def _refresh(self) -> BearerToken:
        self.fetches += 1
        issued = await self._fetch()
        if self._country is not None:
            found = token_country(issued.access_token.get_secret_value())
            if found != self._country:
                raise TokenCountryMismatch(host=self._issuer, found=found, expected=self._country)
        self._generation += 1
        token = BearerToken(
            issued.access_token.get_secret_value(),
            issued_at=issued.requested_at,
            expires_in=issued.expires_in if issued.expires_in > 0 else float(TOKEN_TTL_S),
            margin_s=self._margin_s,
            generation=self._generation,
        )
        self._token = token
        return token

    def invalidate(self, token: BearerToken) -> bool:
        """Forget ``token`` after the server refused it; False if it was already replaced."""
        if self._token is token:
            self._token = None
            return True
        return False
