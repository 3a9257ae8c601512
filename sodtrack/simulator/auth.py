"""Client credentials and signed JWTs (HS256), checked against the simulator's clock.

Tokens carry ``sub`` (client id), ``country``, ``scope`` (space-separated), ``iat`` and
``exp`` in whole seconds. Expiry is checked here, not by PyJWT, because the server's now is
the injectable ``Clock`` (no leeway: a token is expired from its ``exp`` second on).

The signing key is random, drawn once per process (:data:`_PROCESS_KEY`), unless
``SimConfig.signing_key`` (``sodtrack-sim serve --signing-key``) configures one: a token can
then not be forged by anyone who knows the public default seed. One key per process means the
several countries of a multi-country app, and simulators re-created by a test, verify each
other's signatures (a foreign country's token is then ``403 country_mismatch``, as on the real
API); a configured key is for tests that need tokens to outlive a restart of the process.

A token is read only if its signature is ours and its claims have their types: ``sub``,
``country`` and ``scope`` strings, ``exp`` a finite number (not a bool). Anything else,
``exp`` missing, ``"tomorrow"``, ``null``, ``true`` or ``Infinity`` included, is
``401 invalid_token``, never a 500.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from dataclasses import dataclass
from typing import Any

import jwt

from sodtrack.contract.errors import ErrorCode, Issue
from sodtrack.contract.limits import ALL_SCOPES
from sodtrack.simulator.clock import US, Clock
from sodtrack.simulator.config import SimConfig
from sodtrack.simulator.errors import ApiError, validation_error

_ALGORITHM = "HS256"
_BEARER = "bearer "
_PROCESS_KEY = secrets.token_bytes(32)
"""This process's signing key when none is configured (never derived from the seed)."""


def signing_key(configured: str | None) -> bytes:
    """The HS256 key: the configured secret's SHA-256, else this process's random key."""
    if configured:
        return hashlib.sha256(f"sodtrack-simulator:{configured}".encode()).digest()
    return _PROCESS_KEY


def _well_formed(claims: dict[str, Any]) -> bool:
    """The required claims are present with their types (``exp`` a finite number)."""
    if not all(isinstance(claims.get(k), str) for k in ("sub", "country", "scope")):
        return False
    exp = claims.get("exp")
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        return False
    return isinstance(exp, int) or math.isfinite(exp)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a verified token speaks for."""

    client_id: str
    scopes: frozenset[str]


class Auth:
    def __init__(self, config: SimConfig, clock: Clock) -> None:
        self._credentials = config.credentials
        self._country = config.country
        self._ttl = config.token_ttl
        self._clock = clock
        self._key = signing_key(config.signing_key)
        self._cache: dict[str, dict[str, Any]] = {}

    # ------------------------------------------------------------ issuing

    def issue(self, client_id: str, client_secret: str, scope: str | None) -> dict[str, Any]:
        """``POST /auth/token``: the token response, or 422 (unknown scope) / 401."""
        scopes = self.parse_scope(scope)
        known = self._credentials.get(client_id)
        if known is None or not hmac.compare_digest(known.encode(), client_secret.encode()):
            raise ApiError(ErrorCode.INVALID_CREDENTIALS, "Unknown client or wrong secret")
        iat = self._clock.now_us() // US
        scope_text = " ".join(scopes)
        claims = {
            "sub": client_id,
            "country": self._country,
            "scope": scope_text,
            "iat": iat,
            "exp": iat + self._ttl,
        }
        token = jwt.encode(claims, self._key, algorithm=_ALGORITHM)
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": self._ttl,
            "scope": scope_text,
        }

    @staticmethod
    def parse_scope(scope: str | None) -> list[str]:
        """The granted scopes, in the contract's order; None means all of them."""
        if scope is None:
            return list(ALL_SCOPES)
        asked = scope.split()
        if not asked or any(s not in ALL_SCOPES for s in asked):
            raise validation_error([("scope", Issue.INVALID_FORMAT)], "Unknown scope")
        return [s for s in ALL_SCOPES if s in asked]

    # ------------------------------------------------------------ verifying

    def _claims(self, authorization: str | None) -> dict[str, Any] | None:
        """The token's claims if its signature is ours (expiry not checked), else None."""
        if not authorization or authorization[: len(_BEARER)].lower() != _BEARER:
            return None
        token = authorization[len(_BEARER) :].strip()
        cached = self._cache.get(token)
        if cached is not None:
            return cached
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._key,
                algorithms=[_ALGORITHM],
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
            )
        except jwt.PyJWTError:
            return None
        if not _well_formed(claims):
            return None
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[token] = claims
        return claims

    def subject(self, authorization: str | None) -> str | None:
        """The client a request authentically comes from (expired tokens included): the
        rate limiter's key."""
        claims = self._claims(authorization)
        return str(claims["sub"]) if claims else None

    def verify(self, authorization: str | None, scope: str) -> Principal:
        """401 invalid_token / token_expired, 403 country_mismatch / insufficient_scope."""
        claims = self._claims(authorization)
        if claims is None:
            raise ApiError(ErrorCode.INVALID_TOKEN, "Missing or unreadable bearer token")
        if self._clock.now_us() >= math.floor(claims["exp"]) * US:
            raise ApiError(ErrorCode.TOKEN_EXPIRED, "The token has expired")
        if claims["country"] != self._country:
            raise ApiError(
                ErrorCode.COUNTRY_MISMATCH,
                f"Token issued for {claims['country']!r}, this API serves {self._country!r}",
            )
        scopes = frozenset(str(claims["scope"]).split())
        if scope not in scopes:
            raise ApiError(ErrorCode.INSUFFICIENT_SCOPE, f"This call needs scope {scope!r}")
        return Principal(str(claims["sub"]), scopes)

    def sign(self, claims: dict[str, Any]) -> str:
        """A token with arbitrary claims, signed with this simulator's key (tests)."""
        return jwt.encode(claims, self._key, algorithm=_ALGORITHM)
