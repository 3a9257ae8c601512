"""One settings object, resolved once at the edge (CLI, flow entry) and passed down.

Every variable is listed in ``.env.example``. Library modules never read ``os.environ``: the
edges call :func:`resolve_settings`, the one place that does, and get the settings together
with their :class:`Origin` (which variable came from where, for the notice every command
prints) or one :class:`~sodtrack.errors.InvalidSetting` naming the variable.

The ``.env`` file
-----------------
``Settings()`` reads the environment only. :func:`resolve_settings` also reads one dotenv
file: ``SODTRACK_ENV_FILE`` when set (a path; empty or ``none`` reads no file), else a
``.env`` in the working directory if there is one. The environment wins over the file.
Whichever file was read is named, with the variables it supplied, by every command
(``settings: read .env file at /abs/path (SODTRACK_CLIENT_ID, ...)``): a stray ``.env``
can no longer send the credentials to another host without a word.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import (
    ByteSize,
    Field,
    PositiveFloat,
    PositiveInt,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from sodtrack.contract.countries import get_country
from sodtrack.contract.environments import BASE_URLS
from sodtrack.errors import InvalidSetting


class Environment(StrEnum):
    DEV = "dev"
    UAT = "uat"
    PROD = "prod"


LOOPBACK_PROXIES: Final = ("127.0.0.1", "::1")
"""Whom the upload page believes about the client's address by default: a proxy on the same
machine (uvicorn's own default, ``127.0.0.1,::1``)."""

TRUST_EVERY_PROXY: Final = "*"


def parse_forwarded_allow_ips(value: object) -> list[str]:
    """``SODTRACK_WEB_FORWARDED_ALLOW_IPS`` as the list uvicorn's ``forwarded_allow_ips``
    takes: each entry an IP address or network, written canonically, or ``["*"]``.

    Checked here because uvicorn is silent about a bad entry: its proxy middleware keeps
    what is not an address or a network (a host name, ``10.0.0.1/8`` with host bits set,
    ``10.0.0.0/33``) as a literal no connecting address ever equals, so the proxy would not
    be trusted and every user would share its address, without a word. ``*`` must stand
    alone: uvicorn trusts everyone only for exactly ``"*"``/``["*"]``, and a ``*`` among
    other entries would be one more such literal. Empty entries (a trailing comma) are
    skipped; a list naming nothing is refused (the variable unset means loopback).
    """
    items: Any = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        raise ValueError(f"{value!r} is not a comma-separated list of addresses")
    entries = [str(item).strip() for item in items if str(item).strip()]
    if not entries:
        raise ValueError(
            "names no proxy: give addresses or networks (10.0.0.5, 10.0.0.0/24), "
            "or leave it unset for loopback"
        )
    if TRUST_EVERY_PROXY in entries:
        if len(entries) > 1:
            raise ValueError(f"{TRUST_EVERY_PROXY!r} trusts every address and must stand alone")
        return [TRUST_EVERY_PROXY]
    return [_proxy_entry(entry) for entry in entries]


def _proxy_entry(entry: str) -> str:
    """One trusted proxy: an address, or a network without host bits (canonical text)."""
    if "/" in entry:
        try:
            return str(ipaddress.ip_network(entry))
        except ValueError:
            pass
        try:
            loose = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ValueError(f"{entry!r} is not an IP network (address/prefix)") from None
        raise ValueError(f"{entry!r} has host bits set: write the network, {str(loose)!r}")
    try:
        return str(ipaddress.ip_address(entry))
    except ValueError:
        raise ValueError(
            f"{entry!r} is not an IP address or network (host names are not looked up)"
        ) from None


class Settings(BaseSettings):
    """Everything a run needs to know about where Sodtrack is and who we are.

    ``SODTRACK_ENV`` and ``SODTRACK_COUNTRY`` build the base URL; ``SODTRACK_BASE_URL``
    overrides it (the simulator, a proxy). The secret is a ``SecretStr``: it prints as
    ``**********`` in reprs, logs and tracebacks.
    """

    model_config = SettingsConfigDict(
        env_prefix="SODTRACK_",
        env_file=None,  # resolve_settings() picks the file and says which
        env_file_encoding="utf-8",
        env_ignore_empty=True,
        extra="ignore",
    )

    env: Environment = Environment.DEV
    country: str = "cl"
    base_url: str | None = Field(
        default=None, description="Overrides the URL built from env and country."
    )
    client_id: str = "sim-client"
    client_secret: SecretStr = SecretStr("sim-secret")
    warehouse: str = Field(
        default="data/warehouse",
        description="Warehouse root: a folder or an s3:// URL (never with credentials in it).",
    )
    warehouse_scratch: str = Field(
        default="data/work/warehouse",
        description="Local scratch folder for stagings when the warehouse is on object storage.",
    )
    warehouse_retention_days: PositiveInt = Field(
        default=7, description="Days old versions stay readable by time travel before vacuum."
    )
    s3_endpoint_url: str | None = Field(
        default=None,
        description="An S3-compatible server (MinIO, moto); credentials come from AWS_* variables.",
    )
    s3_allow_http: bool = Field(
        default=False, description="Allow plain http to the S3 endpoint (loopback tests)."
    )
    state_url: str = Field(
        default="sqlite:///data/state/state.db",
        description="SQLAlchemy URL of the run state (locks, run history) and load ledger.",
    )
    client_secret_block: str | None = Field(
        default=None,
        description="Name of a Prefect Secret block holding the client secret (flow runs).",
    )
    inbox: str = Field(
        default="data/inbox",
        description="Where operations drop spreadsheets (path or fsspec URL); <inbox>/<country>/.",
    )
    uploads: str = Field(
        default="data/uploads",
        description="Where the watcher keeps each received file, <uploads>/<upload_id>/<name>.",
    )
    outbox: str = Field(
        default="data/outbox",
        description="Where a load's results and rejects files land, <outbox>/<upload_id>/.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO",
        description="Level of the sodtrack.* log lines a flow run sends to its Prefect logs.",
    )
    notify_block: str = Field(
        default="custom-webhook/sodtrack-alerts",
        description="The Prefect notification block the automations notify through "
        "(<block-type-slug>/<name>; a bare name is a custom-webhook block).",
    )
    notify_webhook_url: SecretStr | None = Field(
        default=None,
        description="`sodtrack-etl prefect apply` creates or updates the notify block as a "
        "custom webhook posting to this URL (a secret: webhook URLs often carry a token).",
    )
    request_timeout_s: float = Field(default=30.0, gt=0, allow_inf_nan=False)
    max_concurrency: int = Field(default=8, ge=1)
    retry_budget_s: float = Field(default=300.0, ge=0, allow_inf_nan=False)
    rate_limit_per_s: float | None = Field(
        default=None,
        gt=0,
        allow_inf_nan=False,
        description="Client-side limit; learned from X-RateLimit-* when unset.",
    )
    allow_insecure_http: bool = Field(
        default=False,
        description="Allow sending credentials over plain http to a host outside loopback.",
    )
    countries: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Countries this installation serves (its nightly schedules are the active "
        "ones); empty = SODTRACK_COUNTRY alone. Comma-separated: cl,pe.",
    )
    flow_timeout_s: float = Field(
        default=8 * 3600.0,
        gt=0,
        allow_inf_nan=False,
        description="A flow run (nightly or bulk load) longer than this ends TimedOut.",
    )
    task_timeout_s: float = Field(
        default=4 * 3600.0,
        gt=0,
        allow_inf_nan=False,
        description="A country's extraction, or the load of an upload, longer than this "
        "ends TimedOut.",
    )

    validation_batch_memory: ByteSize = Field(
        default=ByteSize(96 << 20),
        ge=16 << 20,
        description="Memory budget of one Great Expectations batch; batches are sized from it "
        "(sodtrack.validation.batching).",
    )

    duckdb_memory_limit: ByteSize = Field(
        default=ByteSize(64 << 20),
        ge=32 << 20,
        description="Memory limit of the bookings merge's DuckDB connection; past it DuckDB "
        "spills to a temporary folder.",
    )
    validation_duckdb_memory_limit: ByteSize = Field(
        default=ByteSize(64 << 20),
        ge=32 << 20,
        description="Memory limit of the validation's whole-dataset checks' DuckDB connection "
        "(order-free queries on the key columns: they spill past it).",
    )
    duckdb_threads: PositiveInt = Field(
        default=2, description="Threads of each DuckDB connection (DuckDB's default: every core)."
    )

    # Upload limits, checked before a file is parsed (bulkload/reading/limits.py has the defaults).
    upload_max_file_bytes: ByteSize = Field(default=ByteSize(50 << 20), gt=0)
    upload_max_rows: PositiveInt = 100_000
    upload_max_columns: PositiveInt = 200
    upload_max_cells: PositiveInt = 3_000_000
    upload_max_cell_chars: PositiveInt = 32_767
    upload_max_uncompressed_bytes: ByteSize = Field(default=ByteSize(200 << 20), gt=0)
    upload_max_compression_ratio: PositiveFloat = 100.0
    upload_max_zip_members: PositiveInt = 1_000

    # The upload page (``sodtrack-etl serve``, sodtrack/web/).
    web_host: str = Field(default="127.0.0.1", description="Address the upload page listens on.")
    web_port: int = Field(default=8080, ge=1, le=65535)
    web_secret_key: SecretStr | None = Field(
        default=None,
        description="Signs session cookies; unset: a key made once and kept in the state database.",
    )
    web_session_hours: PositiveFloat = 12.0
    web_login_max_failures: PositiveInt = 5
    web_login_window_s: PositiveFloat = 900.0
    web_trusted_user_header: str | None = Field(
        default=None,
        description="Trust this header (set by a single-sign-on proxy) as the signed-in account "
        "name. Only behind a proxy that always sets it and strips it from clients.",
    )
    web_forwarded_allow_ips: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(LOOPBACK_PROXIES),
        description="Proxies whose X-Forwarded-For (and X-Forwarded-Proto) the upload page "
        "believes: comma-separated addresses and networks (10.0.0.5, 10.0.0.0/24, fd00::/8); "
        "default loopback alone. `*` believes anyone: never when the page is reachable directly.",
    )
    web_public_https: bool = Field(
        default=False,
        description="The page is served over https (behind a TLS proxy): cookies are Secure.",
    )
    web_public_url: str | None = Field(
        default=None,
        description="The upload page's external base URL (https://sodtrack.example.org). Set: "
        "artifacts link run reports, Data Docs and results files to the page; unset: file://.",
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("web_public_url")
    @classmethod
    def _check_public_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().rstrip("/")
        if not value.startswith(("https://", "http://")) or "?" in value or "#" in value:
            raise ValueError(f"{value!r} is not an http(s) base URL")
        return value

    @field_validator("web_forwarded_allow_ips", mode="before")
    @classmethod
    def _check_forwarded_allow_ips(cls, value: object) -> list[str]:
        return parse_forwarded_allow_ips(value)

    @field_validator("country")
    @classmethod
    def _check_country(cls, value: str) -> str:
        return get_country(value).code

    @field_validator("countries", mode="before")
    @classmethod
    def _check_countries(cls, value: object) -> list[str]:
        items: Any = value.split(",") if isinstance(value, str) else (value or [])
        return [get_country(str(c).strip()).code for c in items if str(c).strip()]

    @property
    def served_countries(self) -> list[str]:
        """``SODTRACK_COUNTRIES``, else ``SODTRACK_COUNTRY`` alone: the countries this
        installation has credentials for (their nightly schedules are the active ones)."""
        return list(dict.fromkeys(self.countries)) or [self.country]

    def base_url_for(self, country: str | None = None) -> str:
        """The API root (without ``/api/v1``) for a country, honouring the override.

        The override may hold a ``{country}`` placeholder (the embedded simulator serves
        several countries as ``http://127.0.0.1:8765/{country}``).
        """
        code = get_country(country or self.country).code
        if self.base_url:
            return self.base_url.rstrip("/").replace("{country}", code)
        return BASE_URLS[self.env].format(country=code)

    def output_location(self, name: Literal["reports", "docs"]) -> str | Path:
        """Where the run reports (``reports``) or the Data Docs (``docs``) are kept: beside a
        local warehouse, :meth:`data_dir`; with a warehouse on object storage, on the same
        store, ``<warehouse>/_reports`` and ``<warehouse>/_docs`` (every worker writes them
        there, and ``sodtrack-etl serve`` reads them from there: no disk is shared)."""
        from sodtrack.objstore import is_remote

        if is_remote(self.warehouse):
            return f"{self.warehouse.rstrip('/')}/_{name}"
        return self.data_dir(name)

    def data_dir(self, name: str) -> Path:
        """A folder beside the warehouse (``reports``, ``docs``): ``<root>/../<name>`` when the
        warehouse folder is called ``warehouse``, else ``<root>/<name>``. A warehouse on object
        storage (``s3://…``) keeps its reports and docs on the store (:meth:`output_location`);
        this is then ``data/<name>`` (a URL read as a path would make a local folder ``s3:``)."""
        from sodtrack.objstore import is_remote

        if is_remote(self.warehouse):
            return Path("data") / name
        root = Path(self.warehouse)
        return (root.parent if root.name == "warehouse" else root) / name


# ---------------------------------------------------------------- resolving at the edge

ENV_FILE_VARIABLE: Final = "SODTRACK_ENV_FILE"
"""Names the dotenv file to read (empty or ``none``: none); default ``./.env`` if present."""

SECRET_FIELDS: Final = frozenset({"client_secret", "notify_webhook_url", "web_secret_key"})
"""Fields whose value is never shown, not even in an error about it."""

OPTION_NAMES: Final[Mapping[str, str]] = {
    "country": "--country",
    "warehouse": "--warehouse",
    "inbox": "--inbox",
    "uploads": "--uploads",
    "outbox": "--outbox",
}
"""How a command-line override of a field is named in messages."""


def variable(name: str) -> str:
    """The environment variable of a field: ``client_id`` → ``SODTRACK_CLIENT_ID``."""
    return f"SODTRACK_{name.upper()}"


@dataclass(frozen=True, slots=True)
class Origin:
    """Where each setting came from: ``sources[field]`` is ``"environment variable
    SODTRACK_X"``, ``".env file at /abs/.env"``, ``"command line (--country)"``,
    ``"Prefect Secret block 'name'"`` or ``"default"``."""

    env_file: Path | None = None
    env_file_variables: tuple[str, ...] = ()
    """The ``SODTRACK_*`` variables the file supplied (the environment did not override)."""
    sources: Mapping[str, str] = field(default_factory=dict)

    def source(self, name: str) -> str:
        return self.sources.get(name, "default")

    def label(self, name: str) -> str:
        """How a message names the setting: the option if the command line set it."""
        where = self.sources.get(name, "")
        return (
            OPTION_NAMES.get(name, variable(name))
            if where.startswith("command")
            else (variable(name))
        )

    def with_source(self, name: str, source: str) -> Origin:
        return Origin(self.env_file, self.env_file_variables, {**self.sources, name: source})


def _env_file(environ: Mapping[str, str], cwd: Path) -> Path | None:
    configured = environ.get(ENV_FILE_VARIABLE)
    if configured is not None:
        if configured.strip().lower() in ("", "none"):
            return None
        path = (cwd / configured).resolve()
        if not path.is_file():
            raise InvalidSetting(
                f"{ENV_FILE_VARIABLE}: no such file {str(path)!r}", setting=ENV_FILE_VARIABLE
            )
        return path
    default = cwd / ".env"
    return default.resolve() if default.is_file() else None


def _dotenv_variables(path: Path) -> dict[str, str]:
    from dotenv import dotenv_values

    values = dotenv_values(path, encoding="utf-8")
    return {k.upper(): v for k, v in values.items() if v not in (None, "")}


_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@/\s]*@")


def mask_url(url: str) -> str:
    """A URL with any password replaced by ``***`` (database URLs, base URLs)."""
    return _PASSWORD.sub(r"\1***@", url)


def _shown(name: str, value: object) -> str:
    if name in SECRET_FIELDS:
        return "the value given"
    text = mask_url(value) if isinstance(value, str) else value
    return repr(text)


def _problem(name: str, error: Mapping[str, Any]) -> str:
    """One pydantic error as plain words (the value shown unless it is a secret)."""
    kind = str(error.get("type", ""))
    value = _shown(name, error.get("input"))
    ctx = error.get("ctx") or {}
    if kind == "enum":
        choices = ", ".join(e.value for e in Environment)
        return f"{value} is not one of {choices}"
    if kind in ("float_parsing", "float_type", "finite_number"):
        return f"{value} is not a number"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return f"{value} is not a whole number"
    if kind in ("bool_parsing", "bool_type"):
        return f"{value} is not true or false"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        words = {
            "greater_than": "greater than",
            "greater_than_equal": "at least",
            "less_than": "less than",
            "less_than_equal": "at most",
        }[kind]
        bound = next(iter(ctx.values()), "?")
        return f"{value} must be {words} {bound}"
    message = str(error.get("msg", "invalid"))
    if kind == "value_error":  # our validators' messages name the value themselves
        return message.removeprefix("Value error, ")
    return f"{value}: {message}" if name not in SECRET_FIELDS else message


def settings_error(exc: ValidationError, origin: Origin) -> InvalidSetting:
    """The first problem of a settings validation as one line naming the variable."""
    errors = exc.errors(include_url=False)
    first = errors[0] if errors else {"loc": (), "msg": str(exc), "type": ""}
    loc = first.get("loc") or ()
    name = str(loc[0]) if loc else "settings"
    label = origin.label(name) if loc else "settings"
    where = origin.source(name)
    line = f"{label}: {_problem(name, first)}"
    if where.startswith(".env"):
        line += f" (set in the {where})"
    more = len(errors) - 1
    if more > 0:
        line += f"; and {more} more problem(s)"
    return InvalidSetting(line, setting=label)


def resolve_settings(
    overrides: Mapping[str, object] | None = None, *, cwd: Path | None = None
) -> tuple[Settings, Origin]:
    """The settings of this run and where each came from, or one :class:`InvalidSetting`.

    Order: ``overrides`` (the command line), the environment, the dotenv file (see the
    module docstring), the defaults. ``cwd`` (where ``.env`` is looked for) is injectable.
    """
    environ = os.environ
    cwd = Path.cwd() if cwd is None else cwd
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    env_file = _env_file(environ, cwd)
    from_file = _dotenv_variables(env_file) if env_file is not None else {}
    upper_env = {k.upper(): v for k, v in environ.items() if v != ""}
    sources: dict[str, str] = {}
    supplied: list[str] = []
    for name in Settings.model_fields:
        var = variable(name)
        if name in given:
            sources[name] = f"command line ({OPTION_NAMES.get(name, name)})"
        elif var in upper_env:
            sources[name] = f"environment variable {var}"
        elif var in from_file:
            sources[name] = f".env file at {env_file}"
            supplied.append(var)
        else:
            sources[name] = "default"
    origin = Origin(env_file, tuple(supplied), sources)
    try:
        settings = Settings(_env_file=env_file, **given)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise settings_error(exc, origin) from None
    return settings, origin
