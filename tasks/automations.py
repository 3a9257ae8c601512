"""Alerts as code: the automations under ``automations/`` applied to a Prefect server.

Each ``automations/*.yaml`` is one automation in Prefect's own schema
(:class:`prefect.events.schemas.automations.AutomationCore`, what ``prefect automation create
--from-file`` reads), with two things filled in here:

* ``"{notify_block}"``: the id of the notification block named by ``SODTRACK_NOTIFY_BLOCK``
  (``<block-type-slug>/<name>``, a bare name being a ``custom-webhook`` block). When
  ``SODTRACK_NOTIFY_WEBHOOK_URL`` is set, that block is created, or updated, as a custom
  webhook posting ``{"subject": ..., "body": ...}`` to the URL (no prompt; the URL is one of
  the block's secrets, not shown by the UI or the API); otherwise it must
  exist (created in the UI: Slack, email, ...), and its absence is an
  :class:`~sodtrack.errors.InvalidSetting`.
* files with an ``x-sodtrack: {per_country: true}`` section become one automation per country
  (``{country}``, ``{within}``, ``{within_hours}`` replaced; the window from its
  ``countries`` map, else ``default_within``).

:func:`apply` is idempotent: an automation is created when no automation of that name exists,
updated (same id) when one does; one with the ``sodtrack`` tag whose name no file declares
any more is deleted only with ``prune``. :func:`render` writes the resolved automations, one
YAML file each, for ``prefect automation create --from-file``.

This is the Prefect shell: the CLI (``sodtrack-etl prefect apply``) imports it inside the
command only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from uuid import UUID

import yaml

from sodtrack.contract.countries import COUNTRIES, get_country
from sodtrack.errors import InvalidSetting
from sodtrack.settings import Settings
from tasks.deploy import CHECKOUT

AUTOMATIONS_DIR: Final = CHECKOUT / "automations"
BLOCK_PLACEHOLDER: Final = "{notify_block}"
EXTENSION_KEY: Final = "x-sodtrack"
MANAGED_TAG: Final = "sodtrack"
DEFAULT_BLOCK_TYPE: Final = "custom-webhook"


@dataclass(frozen=True)
class Declared:
    """One automation as declared (placeholders for the block still in it), and its file."""

    source: Path
    data: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.data["name"])


@dataclass(frozen=True)
class Applied:
    name: str
    action: str  # created | updated | deleted
    id: UUID


def _replace(value: Any, replacements: Mapping[str, Any]) -> Any:
    """Tokens replaced in every string; a string that is exactly a token takes the
    replacement as is (``within: "{within}"`` becomes a number)."""
    if isinstance(value, str):
        if value in replacements:
            return replacements[value]
        for token, text in replacements.items():
            value = value.replace(token, str(text))
        return value
    if isinstance(value, list):
        return [_replace(v, replacements) for v in value]
    if isinstance(value, dict):
        return {k: _replace(v, replacements) for k, v in value.items()}
    return value


def declarations(
    directory: Path = AUTOMATIONS_DIR, countries: Iterable[str] | None = None
) -> list[Declared]:
    """The automations the files of ``directory`` declare (sorted by file name), the
    per-country ones expanded for ``countries`` (default: every country of the contract)."""
    codes = [get_country(c).code for c in countries] if countries else list(COUNTRIES)
    found: list[Declared] = []
    for path in sorted(directory.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or "name" not in data:
            raise InvalidSetting(
                f"{path}: not an automation (a mapping with a name)", setting=str(path)
            )
        extension = data.pop(EXTENSION_KEY, None) or {}
        if not extension.get("per_country"):
            found.append(Declared(path, data))
            continue
        windows = extension.get("countries") or {}
        for code in codes:
            within = int(windows.get(code, extension.get("default_within", 93600)))
            within_hours = f"{within / 3600:g}"
            expanded = _replace(
                data, {"{country}": code, "{within_hours}": within_hours, "{within}": within}
            )
            found.append(Declared(path, expanded))
    names = [d.name for d in found]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InvalidSetting(f"automation names declared twice: {duplicates}", setting="name")
    return found


def resolve(declared: Declared, block_id: UUID) -> Any:
    """The automation with the block's id filled in, validated by Prefect's schema."""
    from prefect.events.schemas.automations import AutomationCore

    data = _replace(declared.data, {BLOCK_PLACEHOLDER: str(block_id)})
    try:
        return AutomationCore.model_validate(data)
    except ValueError as exc:
        raise InvalidSetting(
            f"{declared.source.name} ({declared.name}): {exc}", setting=str(declared.source)
        ) from None


def block_reference(settings: Settings) -> tuple[str, str]:
    """``SODTRACK_NOTIFY_BLOCK`` as (block type slug, block name)."""
    slug, _, name = settings.notify_block.rpartition("/")
    slug = slug or DEFAULT_BLOCK_TYPE
    if not name or not re.fullmatch(r"[a-z0-9-]+", slug):
        raise InvalidSetting(
            f"SODTRACK_NOTIFY_BLOCK: {settings.notify_block!r} is not <block-type-slug>/<name>",
            setting="SODTRACK_NOTIFY_BLOCK",
        )
    return slug, name


async def ensure_notify_block(client: Any, settings: Settings) -> tuple[UUID, str]:
    """The id of the notify block, creating or updating it from
    ``SODTRACK_NOTIFY_WEBHOOK_URL`` when set; returns (id, what was done)."""
    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    from prefect.exceptions import ObjectNotFound
    from prefect.types import SecretDict

    slug, name = block_reference(settings)
    if settings.notify_webhook_url is not None:
        if slug != DEFAULT_BLOCK_TYPE:
            raise InvalidSetting(
                f"SODTRACK_NOTIFY_WEBHOOK_URL creates a {DEFAULT_BLOCK_TYPE} block, but "
                f"SODTRACK_NOTIFY_BLOCK names a {slug} block",
                setting="SODTRACK_NOTIFY_BLOCK",
            )
        # The URL (often carrying a token) is kept as one of the block's secrets, so the
        # block's page in the UI and the API show "{{webhook_url}}" rather than the URL.
        block = CustomWebhookNotificationBlock(
            name="sodtrack",
            url="{{webhook_url}}",
            json_data={"subject": "{{subject}}", "body": "{{body}}"},
            secrets=SecretDict({"webhook_url": settings.notify_webhook_url.get_secret_value()}),
        )
        block_id: UUID = await block.asave(name, overwrite=True, client=client)
        return block_id, f"{slug}/{name} saved (webhook from SODTRACK_NOTIFY_WEBHOOK_URL)"
    try:
        document = await client.read_block_document_by_name(name, block_type_slug=slug)
    except ObjectNotFound:
        raise InvalidSetting(
            f"SODTRACK_NOTIFY_BLOCK: no {slug} block named {name!r} on the Prefect server "
            "(create it in the UI, or set SODTRACK_NOTIFY_WEBHOOK_URL to have it created)",
            setting="SODTRACK_NOTIFY_BLOCK",
        ) from None
    found: UUID = document.id
    return found, f"{slug}/{name} found"


async def apply(
    settings: Settings,
    directory: Path = AUTOMATIONS_DIR,
    countries: Iterable[str] | None = None,
    *,
    prune: bool = False,
    render_to: Path | None = None,
) -> tuple[list[Applied], str]:
    """Create or update (by name) every declared automation on the Prefect server of the
    current profile; returns what was done and a line about the notify block."""
    from prefect.client.orchestration import get_client

    declared = declarations(directory, countries)
    done: list[Applied] = []
    async with get_client() as client:
        block_id, block_note = await ensure_notify_block(client, settings)
        resolved = [(d, resolve(d, block_id)) for d in declared]  # all valid before any write
        if render_to is not None:
            render(resolved, render_to)
        for _, automation in resolved:
            existing = await _by_name_oldest_first(client, automation.name)
            if existing:
                await client.update_automation(existing[0].id, automation)
                done.append(Applied(automation.name, "updated", existing[0].id))
                for extra in existing[1:]:  # one name, one automation
                    await client.delete_automation(extra.id)
                    done.append(Applied(automation.name, "deleted", extra.id))
            else:
                new_id = await client.create_automation(automation)
                done.append(Applied(automation.name, "created", new_id))
        if prune:
            names = {a.name for _, a in resolved}
            for automation in await client.read_automations():
                if MANAGED_TAG in automation.tags and automation.name not in names:
                    await client.delete_automation(automation.id)
                    done.append(Applied(automation.name, "deleted", automation.id))
    return done, block_note


async def _by_name_oldest_first(client: Any, name: str) -> list[Any]:
    """The automations named ``name``, the first one created first: it keeps its id."""
    from prefect.events.schemas.automations import Automation

    response = await client.request(
        "POST",
        "/automations/filter",
        json={"sort": "CREATED_DESC", "automations": {"name": {"any_": [name]}}},
    )
    response.raise_for_status()
    return list(reversed(Automation.model_validate_list(response.json())))


def render(resolved: Iterable[tuple[Declared, Any]], directory: Path) -> list[Path]:
    """One YAML file per resolved automation, for ``prefect automation create --from-file``."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for _, automation in resolved:
        slug = re.sub(r"[^a-z0-9]+", "-", automation.name.lower()).strip("-")
        path = directory / f"{slug}.yaml"
        data = automation.model_dump(mode="json", exclude_none=True)
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        written.append(path)
    return written
