"""Sessions and CSRF tokens for the upload page (pure: no I/O).

Session cookie: ``base64url(json{"u": name, "c": csrf, "e": expiry}) . base64url(hmac)``,
HMAC-SHA256 with the deployment's signing key (:meth:`Accounts.signing_key` or
``SODTRACK_WEB_SECRET_KEY``). The server keeps no session table: a cookie is valid while its
signature is right and its expiry ahead, and the account it names still exists and is enabled
(checked on every request, so ``users disable`` ends its sessions at once). The cookie is
``HttpOnly``, ``SameSite=Lax``, and ``Secure`` when the page is served over https.

CSRF: each session carries a random token; every form posts it back (hidden field
``csrf``) and every state-changing JSON call made with a session sends it as the
``X-CSRF-Token`` header. A user signed in by the single-sign-on proxy's header has a session
without a cookie (:meth:`SessionSigner.proxy_session`) and a CSRF token all the same. Calls
authenticated by an API token (``Authorization: Bearer``) need none: a browser never sends
that header on its own.

Failed sign-ins are throttled in the state database (:mod:`sodtrack.web.throttle`), so every
process of a deployment shares the count.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

SESSION_COOKIE: Final = "sodtrack_session"
CSRF_FIELD: Final = "csrf"
CSRF_HEADER: Final = "x-csrf-token"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class Session:
    user: str
    csrf: str
    expires: float


class SessionSigner:
    """Makes and checks session cookie values with ``key``."""

    def __init__(self, key: bytes, *, max_age_s: float, clock: Callable[[], float]) -> None:
        if len(key) < 16:
            raise ValueError("a session-signing key needs at least 16 bytes")
        self._key = key
        self.max_age_s = max_age_s
        self._clock = clock

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())

    def issue(self, user: str) -> tuple[str, Session]:
        session = Session(user, secrets.token_urlsafe(24), self._clock() + self.max_age_s)
        body = json.dumps({"u": session.user, "c": session.csrf, "e": session.expires})
        payload = _b64(body.encode())
        return f"{payload}.{self._mac(payload)}", session

    def proxy_session(self, user: str) -> Session:
        """The session of a user the single-sign-on proxy vouches for: no cookie, but a CSRF
        token all the same (derived from the key and the name), since the proxy adds its
        header to a forged cross-site request too."""
        csrf = _b64(hmac.new(self._key, b"csrf:" + user.encode(), hashlib.sha256).digest())
        return Session(user, csrf, float("inf"))

    def read(self, cookie: str | None) -> Session | None:
        if not cookie or cookie.count(".") != 1:
            return None
        payload, mac = cookie.split(".")
        if not hmac.compare_digest(mac, self._mac(payload)):
            return None
        try:
            data = json.loads(_unb64(payload))
            session = Session(str(data["u"]), str(data["c"]), float(data["e"]))
        except (ValueError, KeyError, TypeError):
            return None
        return session if session.expires > self._clock() else None


def csrf_matches(session: Session, sent: str | None) -> bool:
    return sent is not None and hmac.compare_digest(session.csrf.encode(), sent.encode())
