"""The Prefect side of ``sodtrack-etl watch``: where the Prefect API is.

The watcher itself (:mod:`sodtrack.bulkload.inbox`) posts events over plain HTTP and never imports
Prefect; only this lookup reads Prefect's own settings (the active profile). The CLI, a shell
like ``flows/`` and ``tasks/``, imports this module inside the ``watch`` command only, so the
library (every other ``sodtrack`` module) never imports Prefect.
"""

from __future__ import annotations

import os


def prefect_api() -> tuple[str | None, str | None, str | None]:
    """The Prefect API URL, key and auth string: the active profile's, or the environment's."""
    try:
        from prefect.settings import get_current_settings

        api = get_current_settings().api
        key = api.key.get_secret_value() if api.key else None
        auth = api.auth_string.get_secret_value() if api.auth_string else None
        return api.url, key, auth
    except Exception:  # prefect not importable or no profile: the environment alone
        return (
            os.environ.get("PREFECT_API_URL"),
            os.environ.get("PREFECT_API_KEY"),
            os.environ.get("PREFECT_API_AUTH_STRING"),
        )


def prefect_ui_url() -> str | None:
    """Where the Prefect UI is (``PREFECT_UI_URL``, else derived from the API URL): the
    watcher links each flow run it started there."""
    try:
        from prefect.settings import get_current_settings

        url = get_current_settings().ui_url
        return str(url) if url else None
    except Exception:  # prefect not importable: the environment alone
        return os.environ.get("PREFECT_UI_URL")
