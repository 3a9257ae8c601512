"""The checks every command and flow entry runs before it writes anything.

::

    settings, origin = resolve_settings(...)     # InvalidSetting: a value that does not validate
    report = await preflight(settings, origin, countries=["cl"], state=True, outputs=[...])
    for line in report.notice(): print(line, file=sys.stderr)

In this order, stopping at the first problem with one
:class:`~sodtrack.errors.ConfigurationError` (exit 2 at the CLI, a failed flow without
retries on Prefect), so that a wrong setting never reaches the point where bookings are
created or files written:

1. **the base URL** of each country, without sending anything
   (:func:`sodtrack.client.baseurl.check_base_url`, which the client runs too): a
   scheme (``http``/``https``) and a host; plain ``http`` only to a loopback host unless
   ``SODTRACK_ALLOW_INSECURE_HTTP=true`` (:class:`InsecureTransport`: the client secret
   would travel unencrypted);
2. **the API and the credentials** (:func:`check_api`): one token request per country. A
   ``401`` is :class:`CredentialsRejected` ("SODTRACK_CLIENT_ID/SODTRACK_CLIENT_SECRET
   rejected by <host>"); a ``404`` (or any other refusal, or a body that is not a token) is
   :class:`UnusableBaseUrl` ("... does not serve the Sodtrack API (token endpoint answered
   404)"); a host that cannot be connected to (DNS, refused) after a few quick attempts is
   :class:`UnusableBaseUrl` too; a token for another country is the client's
   :class:`~sodtrack.client.errors.TokenCountryMismatch`. A server that answers 5xx/429 is
   *not* a configuration error: the check passes with a warning and the run's own retries
   decide;
3. **the state database** (:func:`check_state`): its URL parses and a connection answers
   ``SELECT 1`` (:class:`StateStoreUnavailable`); a SQLite file that does not exist yet is
   not created here, nor its folder: the nearest existing ancestor must be a folder that
   takes a (removed) probe file;
4. **the output folders** (:func:`check_output`): created (owner-only) and written with a
   probe file that is removed (:class:`OutputNotWritable`).

The report (:class:`Preflight`) also says what the run talks to, for the notice every
command prints on stderr: environment, country, base URL and host, where the client id and
secret came from (never the secret), and the ``.env`` file read, if any.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from sodtrack.client.baseurl import Target, check_base_url, url_setting
from sodtrack.client.clock import Sleep
from sodtrack.contract.countries import get_country
from sodtrack.contract.limits import API_PREFIX
from sodtrack.errors import (
    ConfigurationError,
    CredentialsRejected,
    InvalidSetting,
    OutputNotWritable,
    StateStoreUnavailable,
    UnusableBaseUrl,
)
from sodtrack.objstore import filesystem, is_remote
from sodtrack.settings import Origin, Settings, mask_url

CONNECT_ATTEMPTS = 3
"""Token requests tried before a host that cannot be connected to is a configuration error."""
CONNECT_BACKOFF_S = 0.5
PROBE_NAME = ".sodtrack-write-probe"


@dataclass(frozen=True, slots=True)
class Preflight:
    """What the checks found: the targets, and the notice lines to print."""

    settings: Settings
    origin: Origin
    targets: tuple[Target, ...] = ()
    state_url: str | None = None
    outputs: tuple[Path, ...] = field(default_factory=tuple)

    def notice(self) -> list[str]:
        """Lines for stderr / the run log: environment, hosts, credentials' origin."""
        s, o = self.settings, self.origin
        lines: list[str] = []
        if o.env_file is not None:
            supplied = ", ".join(o.env_file_variables) or "no SODTRACK_* variable"
            lines.append(f"settings: read .env file at {o.env_file} ({supplied})")
        if s.base_url:
            how = f"SODTRACK_BASE_URL from {o.source('base_url')}"
        else:
            how = f"built from SODTRACK_ENV ({o.source('env')}) and the country"
        for t in self.targets:
            lines.append(
                f"target: environment {s.env.value}, country {t.country}, host {t.host} "
                f"({t.base_url}; {how})"
            )
            if t.warning:
                lines.append(f"warning: {t.warning}")
        lines.append(
            f"credentials: client id {s.client_id!r} from {o.source('client_id')}; secret "
            f"from {o.source('client_secret')}"
        )
        if self.state_url:
            lines.append(f"state: {mask_url(self.state_url)}")
        return lines


# ------------------------------------------- 1. the base URL: sodtrack.client.baseurl


# ---------------------------------------------------------------- 2. the API and the credentials


async def check_api(
    settings: Settings,
    target: Target,
    *,
    credentials_from: str = "",
    http: httpx.AsyncClient | None = None,
    sleep: Sleep = asyncio.sleep,
    attempts: int = CONNECT_ATTEMPTS,
) -> Target:
    """One token request for ``target.country`` (see the module docstring)."""
    from sodtrack.client import (
        ApiError,
        AuthError,
        ConflictError,
        ContractViolation,
        RejectedError,
        SodtrackClient,
        TokenCountryMismatch,
        TokenUnavailable,
    )

    setting = url_setting(settings)
    client = SodtrackClient.from_settings(
        settings.model_copy(update={"country": target.country}), http=http
    )
    last = ""
    async with client:
        for attempt in range(max(1, attempts)):
            if attempt:
                await sleep(CONNECT_BACKOFF_S * attempt)
            problem: str | None = None
            try:
                await client.authenticate()
                return Target(target.country, target.base_url, target.host, checked=True)
            except TokenCountryMismatch:
                raise
            except AuthError as exc:
                if exc.status == 401:
                    where = f"; they came from {credentials_from}" if credentials_from else ""
                    raise CredentialsRejected(
                        f"SODTRACK_CLIENT_ID/SODTRACK_CLIENT_SECRET rejected by {target.host} "
                        f"({exc.status} {exc.code}{where})",
                        setting="SODTRACK_CLIENT_ID/SODTRACK_CLIENT_SECRET",
                    ) from None
                problem = f"{exc.status} {exc.code}"
            except (RejectedError, ConflictError) as exc:
                problem = str(exc.status)
            except ContractViolation:
                problem = "with something that is not a token"
            except TokenUnavailable as exc:
                last = exc.what
                if exc.cause == "not_connected":
                    continue
                if exc.cause == "unreadable":
                    problem = "with something that is not a token"
                else:
                    warning = (
                        f"the token endpoint of {target.host} answered {last}: going on, the "
                        "run's own retries decide"
                    )
                    return Target(target.country, target.base_url, target.host, warning=warning)
            except ApiError as exc:  # a transport no retry cures (a bad URL)
                problem = f"with {exc.message.removeprefix('issue_token: ')}"
            answered = problem if problem.startswith("with") else f"answered {problem}"
            hint = ""
            if target.base_url.rstrip("/").endswith(API_PREFIX):
                hint = f"; leave {API_PREFIX} out, the client adds it"
            raise UnusableBaseUrl(
                f"{setting} {target.base_url} does not serve the Sodtrack API (token "
                f"endpoint {answered}{hint})",
                setting=setting,
            )
    raise UnusableBaseUrl(
        f"{setting} {target.base_url}: cannot connect to {target.host} ({last}, "
        f"{attempts} attempts)",
        setting=setting,
    )


# ---------------------------------------------------------------- 3. the state database


def check_state(url: str) -> None:
    """The state database answers (see the module docstring)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

    from sodtrack.db import normalise_url

    setting = "SODTRACK_STATE_URL"
    shown = mask_url(url)
    try:
        parsed = make_url(normalise_url(url))
    except ArgumentError:
        raise InvalidSetting(
            f"{setting}: {shown!r} is not a database URL", setting=setting
        ) from None
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            path = Path(database)
            if not path.exists():
                _creatable_folder(path.parent, setting, f"the folder of {shown}")
                return
    try:
        args = {"connect_timeout": 5} if parsed.get_backend_name() == "postgresql" else {}
        engine = create_engine(parsed, connect_args=args)
    except (NoSuchModuleError, ArgumentError, ImportError) as exc:
        raise InvalidSetting(
            f"{setting}: {shown!r} names a database this install cannot use ({type(exc).__name__})",
            setting=setting,
        ) from None
    reason = ""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError) as exc:
        cause = getattr(exc, "orig", None) or exc
        first = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
        reason = (
            f"{type(cause).__name__}: {mask_url(first)[:160]}" if first else type(cause).__name__
        )
    finally:
        engine.dispose()
    if reason:
        raise StateStoreUnavailable(
            f"{setting}: cannot connect to {shown} ({reason})", setting=setting
        )


# ---------------------------------------------------------------- 4. output folders


def _writable_folder(folder: Path, setting: str, what: str) -> None:
    reason = ""
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        probe = folder / f"{PROBE_NAME}-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
    if reason:
        raise OutputNotWritable(f"{setting}: cannot write into {what} ({reason})", setting=setting)


def _creatable_folder(folder: Path, setting: str, what: str) -> None:
    """``folder`` could be created and written, checked without creating it: its nearest
    existing ancestor is a folder that takes a probe file (removed at once)."""
    existing = folder.absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    reason = "" if existing.is_dir() else f"{existing} is not a folder"
    if not reason:
        probe = existing / f"{PROBE_NAME}-{os.getpid()}"
        try:
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
    if reason:
        raise StateStoreUnavailable(
            f"{setting}: cannot write into {what} ({reason})", setting=setting
        )


def _writable_store(url: str, setting: str, endpoint_url: str | None) -> None:
    """An object-store location takes an object: a probe is written and removed at once (a
    missing bucket, a wrong endpoint or missing rights fail here, before any work)."""
    reason = ""
    try:
        fs, root = filesystem(url, endpoint_url=endpoint_url, setting=setting)
        probe = f"{root.rstrip('/')}/{PROBE_NAME}-{os.getpid()}"
        fs.pipe_file(probe, b"")
        fs.rm_file(probe)
    except ConfigurationError:
        raise
    except Exception as exc:  # botocore/s3fs raise their own types; the kind is the reason
        reason = type(exc).__name__
    if reason:
        raise OutputNotWritable(f"{setting}: cannot write into {url} ({reason})", setting=setting)


def check_output(
    folder: str | Path, setting: str, *, endpoint_url: str | None = None
) -> Path | None:
    """The folder exists (created if not, owner-only) and takes a file; on object storage
    (``s3://``) the URL carries no credentials and the location takes an object
    (``endpoint_url``: ``SODTRACK_S3_ENDPOINT_URL``). Returns the local folder checked."""
    text = str(folder)
    if is_remote(text):
        _writable_store(text, setting, endpoint_url)
        return None
    path = Path(text.removeprefix("file://"))
    _writable_folder(path, setting, str(path))
    return path


# ---------------------------------------------------------------- all of it


def _credentials_from(origin: Origin) -> str:
    sources = {origin.source("client_id"), origin.source("client_secret")}
    return " and ".join(sorted(sources))


def _shown_target(settings: Settings, code: str) -> Target:
    url = mask_url(settings.base_url_for(code)).rstrip("/")
    try:
        host = urlsplit(url).netloc.rsplit("@", 1)[-1] or url
    except ValueError:
        host = url
    return Target(code, url, host)


async def preflight(
    settings: Settings,
    origin: Origin,
    *,
    countries: Iterable[str] = (),
    api: bool = True,
    url: bool | None = None,
    state: bool = True,
    outputs: Sequence[tuple[str | Path, str]] = (),
    http: httpx.AsyncClient | None = None,
    sleep: Sleep = asyncio.sleep,
) -> Preflight:
    """Every check a command needs, in the order of the module docstring.

    ``countries``: the countries it talks to (default ``settings.country``); ``api=False``
    for a command that does not (or not yet: ``cancel`` learns the country from the ledger),
    ``url`` (default: ``api``) whether the base URL is still checked without a request;
    ``outputs``: ``(folder, setting or option that names it)`` pairs.
    """
    codes: list[str] = []
    for given in countries:
        try:
            codes.append(get_country(given).code)
        except ValueError as exc:
            raise InvalidSetting(f"--country: {exc}", setting="--country") from None
    codes = list(dict.fromkeys(codes)) or [settings.country]
    if api or url:
        targets = [check_base_url(settings, code) for code in codes]
    if api:
        credentials_from = _credentials_from(origin)
        targets = [
            await check_api(settings, t, credentials_from=credentials_from, http=http, sleep=sleep)
            for t in targets
        ]
    elif not url:  # not talking to the API: shown, not checked
        targets = [_shown_target(settings, code) for code in codes]
    if state:
        await asyncio.to_thread(check_state, settings.state_url)
    checked: list[Path] = []
    for folder, setting in outputs:
        local = await asyncio.to_thread(
            check_output, folder, setting, endpoint_url=settings.s3_endpoint_url
        )
        if local is not None:
            checked.append(local)
    return Preflight(
        settings,
        origin,
        tuple(targets),
        settings.state_url if state else None,
        tuple(checked),
    )


def run_preflight(settings: Settings, origin: Origin, **kwargs: object) -> Preflight:
    """:func:`preflight` from synchronous code (the CLI)."""
    return asyncio.run(preflight(settings, origin, **kwargs))  # type: ignore[arg-type]


__all__ = [
    "ConfigurationError",
    "Preflight",
    "Target",
    "check_api",
    "check_base_url",
    "check_output",
    "check_state",
    "preflight",
    "run_preflight",
]
