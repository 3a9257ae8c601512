"""The ``sodtrack.upload.received`` event: its id, its JSON shape, and the emitter that posts
it to Prefect's events API over plain HTTP (no Prefect import)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger("sodtrack.bulkload.inbox")


EVENT_NAME = "sodtrack.upload.received"
"""The Prefect event a received upload emits; ``prefect.yaml``'s trigger expects it."""
RESOURCE_PREFIX = "sodtrack.upload."
"""Resource ids are ``sodtrack.upload.<upload_id>``; the trigger matches ``sodtrack.upload.*``."""
EVENT_NAMESPACE = uuid.UUID("6f1c1e9e-3b0f-5d55-9a53-50d7a1ac0a11")
"""UUID5 namespace of the event ids (fixed forever: changing it would re-trigger loads)."""


Emitter = Callable[[dict[str, Any]], None]
"""Sends one event (Prefect's JSON shape); raises when it was not accepted."""
RunLookup = Callable[[str], "RunInfo | None"]
"""Finds the newest flow run of a name (:func:`bulk_load_run_name`); ``None`` while none."""
FINAL_STATES = frozenset({"COMPLETED", "FAILED", "CRASHED", "CANCELLED"})
"""Prefect state types after which a run changes no more."""


def bulk_load_run_name(country: str, upload: str, *, dry_run: bool = False) -> str:
    """The ``bulk-load`` flow run's name: ``bulk-load-cl-upl_cl_8934f77a0dceb5cf2062`` (the
    upload id, or the file's name for a run by hand), ``-dry`` added for a dry run whose id
    does not say so already."""
    suffix = "-dry" if dry_run and not upload.endswith("-dry") else ""
    return f"bulk-load-{country}-{upload}{suffix}"


@dataclass(frozen=True, slots=True)
class RunInfo:
    """A flow run as the watcher reports it."""

    id: str
    name: str
    state: str
    """The state's type (``COMPLETED``, ``FAILED``…)."""
    state_name: str
    """The state's name (``Completed``, ``Rows rejected``, ``TimedOut``…)."""
    message: str | None
    url: str | None

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES


def event_id_for(upload_id: str) -> str:
    """The event id of an upload: the same upload always announces itself with the same id."""
    return str(uuid.uuid5(EVENT_NAMESPACE, upload_id))


@dataclass(frozen=True, slots=True)
class Received:
    """An upload as the watcher registered it (and as the event's payload carries it)."""

    upload_id: str
    sha256: str
    country: str
    file_name: str
    size: int
    path: str
    """Where the file is kept (a path, or a URL for a remote upload store): the flow's input."""
    outbox: str
    """The outbox: its results and rejects files go to ``<outbox>/<upload_id>/``."""
    source: str
    received_at: str

    @property
    def check_only(self) -> bool:
        """Announced from a ``check/`` folder: the run is a dry run (its id says so)."""
        return self.upload_id.endswith("-dry")


def upload_event(received: Received, *, occurred: datetime | None = None) -> dict[str, Any]:
    """The ``sodtrack.upload.received`` event of an upload, as Prefect's events API takes it."""
    return {
        "id": event_id_for(received.upload_id),
        "occurred": (occurred or datetime.now(UTC)).isoformat(),
        "event": EVENT_NAME,
        "resource": {
            "prefect.resource.id": RESOURCE_PREFIX + received.upload_id,
            "prefect.resource.name": received.file_name,
            "sodtrack.country": received.country,
            "sodtrack.sha256": received.sha256,
        },
        "related": [],
        "payload": {**asdict(received), "check_only": received.check_only},
    }


class PrefectEventsEmitter:
    """Posts events to a Prefect server's ``POST {api_url}/events`` (plain HTTP, no Prefect
    import). ``api_key`` is sent as a bearer token, ``auth_string`` (``user:password``, the
    OSS server's basic auth) as basic auth. Raises unless the server accepted the event."""

    def __init__(
        self,
        api_url: str,
        *,
        api_key: str | None = None,
        auth_string: str | None = None,
        timeout_s: float = 10.0,
        transport: Any = None,
    ) -> None:
        import httpx

        headers: dict[str, str] = {}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        elif auth_string:
            import base64

            headers["Authorization"] = "Basic " + base64.b64encode(auth_string.encode()).decode()
        self.url = api_url.rstrip("/") + "/events"
        self._http = httpx.Client(headers=headers, timeout=timeout_s, transport=transport)

    def __call__(self, event: dict[str, Any]) -> None:
        response = self._http.post(self.url, json=[event])
        response.raise_for_status()

    def close(self) -> None:
        self._http.close()


class PrefectRunLookup:
    """Finds a flow run by name through ``POST {api_url}/flow_runs/filter`` (plain HTTP, the
    same authentication as :class:`PrefectEventsEmitter`); ``ui_url`` makes its link."""

    def __init__(
        self,
        api_url: str,
        *,
        ui_url: str | None = None,
        api_key: str | None = None,
        auth_string: str | None = None,
        timeout_s: float = 10.0,
        transport: Any = None,
    ) -> None:
        import httpx

        self.url = api_url.rstrip("/") + "/flow_runs/filter"
        self.ui_url = ui_url.rstrip("/") if ui_url else None
        self._http = httpx.Client(
            headers=_auth_headers(api_key, auth_string), timeout=timeout_s, transport=transport
        )

    def __call__(self, name: str) -> RunInfo | None:
        body = {
            "flow_runs": {"name": {"any_": [name]}},
            "sort": "EXPECTED_START_TIME_DESC",
            "limit": 1,
        }
        response = self._http.post(self.url, json=body)
        response.raise_for_status()
        runs = response.json()
        if not runs:
            return None
        run, state = runs[0], runs[0].get("state") or {}
        return RunInfo(
            id=str(run["id"]),
            name=str(run["name"]),
            state=str(state.get("type") or "PENDING"),
            state_name=str(state.get("name") or "Pending"),
            message=state.get("message"),
            url=f"{self.ui_url}/runs/flow-run/{run['id']}" if self.ui_url else None,
        )

    def close(self) -> None:
        self._http.close()


def _auth_headers(api_key: str | None, auth_string: str | None) -> dict[str, str]:
    if api_key:
        return {"Authorization": f"Bearer {api_key}"}
    if auth_string:
        import base64

        return {"Authorization": "Basic " + base64.b64encode(auth_string.encode()).decode()}
    return {}
