"""Where the Sodtrack API is, per environment (sodtrack-api.md § Environments): the one place
base URLs are built. :mod:`sodtrack.settings` builds a run's base URL from it and
:mod:`sodtrack.contract.openapi` lists it as the document's servers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

BASE_URLS: Final[Mapping[str, str]] = {
    "dev": "https://dev.integration.{country}.sodtrack-shared.sodtrack.com",
    "uat": "https://uat.integration.{country}.sodtrack-shared.sodtrack.com",
    "prod": "https://integration.{country}.sodtrack-shared.sodtrack.com",
}
"""Environment name (``SODTRACK_ENV``) → base URL template with ``{country}``."""
