"""One settings object, resolved once at the edge (CLI, flow entry) and passed down.

Every variable is listed in ``.env.example``. Library modules never read ``os.environ``.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import ByteSize, Field, PositiveFloat, PositiveInt, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from sodtrack.contract.countries import get_country


class Environment(StrEnum):
    DEV = "dev"
    UAT = "uat"
    PROD = "prod"


# The one place base URLs are built (sodtrack-api.md § Environments).
_BASE_URLS: dict[Environment, str] = {
    Environment.DEV: "https://dev.integration.{country}.sodtrack-shared.sodtrack.com",
    Environment.UAT: "https://uat.integration.{country}.sodtrack-shared.sodtrack.com",
    Environment.PROD: "https://integration.{country}.sodtrack-shared.sodtrack.com",
}


class Settings(BaseSettings):
    """Everything a run needs to know about where Sodtrack is and who we are.

    ``SODTRACK_ENV`` and ``SODTRACK_COUNTRY`` build the base URL; ``SODTRACK_BASE_URL``
    overrides it (the simulator, a proxy). The secret is a ``SecretStr``: it prints as
    ``**********`` in reprs, logs and tracebacks.
    """

    model_config = SettingsConfigDict(
        env_prefix="SODTRACK_",
        env_file=".env",
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
    warehouse: str = Field(default="data/warehouse", description="Warehouse root (path or URL).")
    state_url: str = Field(
        default="sqlite:///data/state/state.db",
        description="SQLAlchemy URL of the watermark store and load ledger.",
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
    request_timeout_s: float = 30.0
    max_concurrency: int = 8
    retry_budget_s: float = 300.0
    rate_limit_per_s: float | None = Field(
        default=None, description="Client-side limit; learned from X-RateLimit-* when unset."
    )

    # Upload limits, checked before a file is parsed (sodtrack.loader.limits; defaults there).
    upload_max_file_bytes: ByteSize = Field(default=ByteSize(50 << 20), gt=0)
    upload_max_rows: PositiveInt = 100_000
    upload_max_columns: PositiveInt = 200
    upload_max_cells: PositiveInt = 3_000_000
    upload_max_cell_chars: PositiveInt = 32_767
    upload_max_uncompressed_bytes: ByteSize = Field(default=ByteSize(200 << 20), gt=0)
    upload_max_compression_ratio: PositiveFloat = 100.0
    upload_max_zip_members: PositiveInt = 1_000

    @model_validator(mode="after")
    def _check_country(self) -> Settings:
        self.country = get_country(self.country).code
        return self

    def base_url_for(self, country: str | None = None) -> str:
        """The API root (without ``/api/v1``) for a country, honouring the override.

        The override may hold a ``{country}`` placeholder (the embedded simulator serves
        several countries as ``http://127.0.0.1:8765/{country}``).
        """
        code = get_country(country or self.country).code
        if self.base_url:
            return self.base_url.rstrip("/").replace("{country}", code)
        return _BASE_URLS[self.env].format(country=code)

    @property
    def data_dir(self) -> Path:
        return Path("data")
