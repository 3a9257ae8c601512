"""``prefect.yaml`` pinned: deployments, entrypoints, schedules, triggers, versions, and that
every parameter it passes exists on the flow it names.

``golden/deployments.json`` is the deployment list as ``prefect deploy --all`` creates it
(names, entrypoints, tags, schedules with their slugs and ``active``, triggers, version
template); a change to ``prefect.yaml`` that changes it shows up as a diff of that file.
Regenerate it on purpose with ``SODTRACK_UPDATE_GOLDEN=1``.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from sodtrack.bulkload.inbox import EVENT_NAME, RESOURCE_PREFIX
from sodtrack.contract.countries import COUNTRIES

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden" / "deployments.json"


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    return data


def _deployment(config: dict[str, Any], name: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [d for d in config["deployments"] if d["name"] == name]
    assert len(found) == 1, name
    return found[0]


def _flow_parameters(entrypoint: str) -> set[str]:
    """The parameters of the flow a module-path entrypoint (``flows.nightly.nightly``) names."""
    assert ":" not in entrypoint, f"{entrypoint}: a file path ties runs to the checkout's folder"
    path, _, name = entrypoint.rpartition(".")
    module = importlib.import_module(path)
    assert (ROOT / (path.replace(".", "/") + ".py")).is_file(), f"{path} is not in this checkout"
    fn = getattr(module, name).fn
    return set(inspect.signature(fn).parameters)


def test_the_deployments(config: dict[str, Any]) -> None:
    assert [(d["name"], d["entrypoint"]) for d in config["deployments"]] == [
        ("nightly-extract", "flows.nightly.nightly"),
        ("bulk-load", "flows.bulk_load.bulk_load"),
    ]
    for d in config["deployments"]:
        assert d["work_pool"]["name"] == "sodtrack"


def deployment_list(config: dict[str, Any]) -> list[dict[str, Any]]:
    """What ``prefect deploy --all`` creates from the file, in a stable shape."""
    return [
        {
            "name": f"{_flow_name(d['entrypoint'])}/{d['name']}",
            "entrypoint": d["entrypoint"],
            "version": d.get("version"),
            "tags": d.get("tags", []),
            "work_pool": d["work_pool"]["name"],
            "schedules": [
                {k: s.get(k) for k in ("slug", "cron", "timezone", "active", "parameters")}
                for s in d.get("schedules") or []
            ],
            "triggers": d.get("triggers") or [],
        }
        for d in config["deployments"]
    ]


def _flow_name(entrypoint: str) -> str:
    path, _, name = entrypoint.rpartition(".")
    return str(getattr(importlib.import_module(path), name).name)


def test_the_deployment_list_is_the_golden_one(config: dict[str, Any]) -> None:
    current = json.dumps(deployment_list(config), indent=2, ensure_ascii=False) + "\n"
    if os.environ.get("SODTRACK_UPDATE_GOLDEN") == "1":
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(current)
    assert current == GOLDEN.read_text(), (
        "prefect.yaml changed the deployments: review, then SODTRACK_UPDATE_GOLDEN=1"
    )


def test_the_pull_step_works_from_any_checkout(config: dict[str, Any]) -> None:
    assert config["pull"] == [
        {"tasks.deploy.set_project_directory": {"expected_revision": "{{ revision.version }}"}}
    ]
    assert config["push"] is None


def test_deployments_are_versioned_by_the_git_revision(config: dict[str, Any]) -> None:
    assert config["build"] == [{"tasks.deploy.revision": {"id": "revision"}}]
    for d in config["deployments"]:
        assert d["version"] == "{{ revision.version }}", d["name"]


def test_nightly_runs_each_country_at_two_in_its_own_time_zone(config: dict[str, Any]) -> None:
    nightly = _deployment(config, "nightly-extract")
    schedules = {
        (s["slug"], s["cron"], s["timezone"], tuple(s["parameters"]["countries"]), s["active"])
        for s in nightly["schedules"]
    }
    assert schedules == {
        (f"nightly-{c.code}", "0 2 * * *", c.time_zone, (c.code,), False)
        for c in COUNTRIES.values()
    }, "a country was added or changed: give it its schedule in prefect.yaml (off)"
    assert not nightly.get("triggers")


def test_bulk_load_runs_on_the_upload_event_only(config: dict[str, Any]) -> None:
    load = _deployment(config, "bulk-load")
    assert load["schedules"] == []
    assert load["triggers"] == [
        {
            "type": "event",
            "enabled": True,
            "match": {"prefect.resource.id": RESOURCE_PREFIX + "*"},
            "expect": [EVENT_NAME],
            "parameters": {
                "path": "{{ event.payload.path }}",
                "country": "{{ event.payload.country }}",
                "outbox": "{{ event.payload.outbox }}",
                "upload_id": "{{ event.payload.upload_id }}",
                "dry_run": "{{ event.payload.check_only }}",
            },
        }
    ]


def test_no_credentials_in_the_deployment_file() -> None:
    text = (ROOT / "prefect.yaml").read_text().lower()
    for word in ("client_secret:", "password", "sim-secret", "api_key"):
        assert word not in text


@pytest.mark.parametrize("name", ["nightly-extract", "bulk-load"])
def test_every_parameter_passed_exists_on_the_flow(config: dict[str, Any], name: str) -> None:
    d = _deployment(config, name)
    accepted = _flow_parameters(d["entrypoint"])
    passed = set(d.get("parameters") or {})
    for s in d.get("schedules") or []:
        passed |= set(s.get("parameters") or {})
    for t in d.get("triggers") or []:
        passed |= set(t.get("parameters") or {})
    assert passed <= accepted, f"{name}: {sorted(passed - accepted)} not parameters of the flow"
