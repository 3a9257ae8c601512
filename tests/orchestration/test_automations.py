"""The automation files (``automations/*.yaml``) against Prefect's own schema, without a
server: every file validates once the block id is filled in, per-country files expand, a
broken file or block setting is one ``InvalidSetting``. End to end: ``tests/e2e/test_alerts.py``."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from uuid import uuid4

import pytest

from sodtrack.errors import InvalidSetting
from sodtrack.settings import Settings
from tasks.automations import AUTOMATIONS_DIR, block_reference, declarations, resolve


def test_every_file_is_a_valid_prefect_automation() -> None:
    block = uuid4()
    resolved = [resolve(d, block) for d in declarations(countries=["cl", "pe"])]
    assert sorted(a.name for a in resolved) == [
        "sodtrack: dataset quarantined",
        "sodtrack: nightly cl not completed",
        "sodtrack: nightly pe not completed",
        "sodtrack: run failed",
        "sodtrack: upload with rejected rows",
    ]
    for automation in resolved:
        assert "sodtrack" in automation.tags
        assert [a.type for a in automation.actions] == ["send-notification"]
        assert automation.actions[0].block_document_id == block
    by_name = {a.name: a for a in resolved}
    deadline = by_name["sodtrack: nightly pe not completed"].trigger
    assert deadline.posture == "Proactive"
    assert deadline.within == timedelta(hours=26)
    assert deadline.match.model_dump() == {"prefect.resource.id": "sodtrack.nightly.pe"}
    failed = by_name["sodtrack: run failed"].trigger
    assert failed.expect == {
        "prefect.flow-run.Failed",
        "prefect.flow-run.Crashed",
        "prefect.flow-run.TimedOut",
    }


def test_every_country_by_default() -> None:
    names = [d.name for d in declarations()]
    assert len([n for n in names if n.startswith("sodtrack: nightly ")]) == 7


def test_a_broken_file_is_one_invalid_setting(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(
        (AUTOMATIONS_DIR / "run-failed.yaml")
        .read_text()
        .replace("posture: Reactive", "posture: Sideways")
    )
    (declared,) = declarations(tmp_path)
    with pytest.raises(InvalidSetting, match=r"bad\.yaml \(sodtrack: run failed\)"):
        resolve(declared, uuid4())
    (tmp_path / "bad.yaml").write_text("- just a list\n")
    with pytest.raises(InvalidSetting, match="not an automation"):
        declarations(tmp_path)


def test_the_notify_block_setting() -> None:
    assert block_reference(Settings()) == ("custom-webhook", "sodtrack-alerts")
    assert block_reference(Settings(notify_block="ops")) == ("custom-webhook", "ops")
    assert block_reference(Settings(notify_block="slack-webhook/ops")) == ("slack-webhook", "ops")
    with pytest.raises(InvalidSetting, match="SODTRACK_NOTIFY_BLOCK"):
        block_reference(Settings(notify_block="slack-webhook/"))
