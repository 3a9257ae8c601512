"""Whether a country's base URL is usable and safe to send credentials to, checked without
sending anything: a scheme (``http``/``https``) and a host, no query, fragment or user
information; plain ``http`` only to a loopback host unless ``SODTRACK_ALLOW_INSECURE_HTTP=true``
(:class:`~sodtrack.errors.InsecureTransport`: the client secret would travel unencrypted).

The client runs it before its first request (``SodtrackClient.from_settings``) and the
preflight (:mod:`sodtrack.preflight`) as its first check; it lives with the client so that the
client never imports the preflight, which itself uses the client.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from sodtrack.contract.countries import get_country
from sodtrack.errors import InsecureTransport, UnusableBaseUrl
from sodtrack.settings import Settings, mask_url


@dataclass(frozen=True, slots=True)
class Target:
    """One country's API as a run talks to it."""

    country: str
    base_url: str
    host: str
    checked: bool = False
    """A token was issued for this country (False: not checked, or a transient answer)."""
    warning: str | None = None


def _is_loopback(host: str) -> bool:
    name = host.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def url_setting(settings: Settings) -> str:
    return "SODTRACK_BASE_URL" if settings.base_url else "SODTRACK_ENV/SODTRACK_COUNTRY"


def check_base_url(settings: Settings, country: str | None = None) -> Target:
    """The base URL of ``country`` is usable and safe to send credentials to (no request)."""
    setting = url_setting(settings)
    code = get_country(country or settings.country).code
    url = settings.base_url_for(code)
    shown = mask_url(url)
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError as exc:  # a port that is not a number, a bad IPv6 literal
        raise UnusableBaseUrl(
            f"{setting}: {shown!r} is not a URL ({exc})", setting=setting
        ) from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UnusableBaseUrl(
            f"{setting}: {shown!r} does not start with http:// or https://", setting=setting
        )
    if not host:
        raise UnusableBaseUrl(f"{setting}: {shown!r} has no host", setting=setting)
    if parts.query or parts.fragment:
        raise UnusableBaseUrl(
            f"{setting}: {shown!r} must not carry a query or a fragment", setting=setting
        )
    if parts.username or parts.password:
        raise UnusableBaseUrl(
            f"{setting}: {shown!r} must not carry a user name or password", setting=setting
        )
    netloc = host if port is None else f"{host}:{port}"
    if scheme == "http" and not _is_loopback(host) and not settings.allow_insecure_http:
        raise InsecureTransport(
            f"{setting}: {shown} would send the client secret unencrypted to {host}: use "
            "https, or set SODTRACK_ALLOW_INSECURE_HTTP=true if this network is trusted",
            setting=setting,
        )
    return Target(code, url.rstrip("/"), netloc)
