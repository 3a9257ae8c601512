"""Links that open: with ``SODTRACK_WEB_PUBLIC_URL`` set, the ``bulk-load`` flow's link
artifacts (results, rejects, the watcher's ``receipt.json``) and the nightly run report's
summary (report, Data Docs) point at the upload page, and the page serves those very URLs
behind its sign-in. Under ``prefect_test_harness`` against a loopback simulator."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from sodtrack.bulkload.engine.ledger import file_sha256, upload_id_for
from sodtrack.extract.report import RunReport
from sodtrack.links import PublicLinks
from sodtrack.settings import Settings
from sodtrack.web.accounts import Accounts
from sodtrack.web.app import create_web_app
from tasks.load import RECEIPT_LINK_KEY, REJECTS_LINK_KEY, RESULTS_LINK_KEY

from .conftest import Sim, file_with_rejects

PUBLIC = "https://sodtrack.example.org"


def _text(key: str) -> str:
    from prefect.artifacts import Artifact
    from prefect.client.schemas.objects import Artifact as ArtifactResponse

    artifact = Artifact.get(key)
    assert isinstance(artifact, ArtifactResponse), key
    return str(artifact.data)


def _url(markdown_link: str) -> str:
    """``[name](url)`` -> ``url``."""
    assert markdown_link.startswith("[")
    assert markdown_link.endswith(")")
    return markdown_link[markdown_link.index("](") + 2 : -1]


def _fetch_as(settings: Settings, name: str, countries: list[str], urls: list[str]) -> list[Any]:
    """GET each public URL from the page (in-process), signed in as a fresh account."""
    accounts = Accounts(settings.state_url)
    accounts.add(name, "correct horse battery", countries)
    token = accounts.new_token(name)
    accounts.close()
    with TestClient(create_web_app(settings)) as client:
        return [
            client.get(
                url.removeprefix(PUBLIC),
                headers={"authorization": f"Bearer {token}"},
                follow_redirects=False,
            )
            for url in urls
        ]


@pytest.mark.prefect
@pytest.mark.slow
@pytest.mark.xdist_group("load-shell-prefect")  # one worker, one harness (--dist loadgroup)
def test_load_artifacts_link_the_public_page(
    prefect_harness: None, sim: Sim, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.bulk_load import bulk_load

    monkeypatch.setenv("SODTRACK_WEB_PUBLIC_URL", PUBLIC + "/")
    sample = file_with_rejects(sim.root / "inbox" / "sample.xlsx")
    upload_id = upload_id_for(file_sha256(sample.path), "cl")
    receipt = sim.outbox / upload_id / "receipt.json"  # as the inbox watcher leaves it
    receipt.parent.mkdir(parents=True)
    receipt.write_text(json.dumps({"upload_id": upload_id, "country": "cl"}))

    state: Any = asyncio.run(
        bulk_load(  # type: ignore[call-overload,arg-type]
            path=str(sample.path), country="cl", upload_id=upload_id, return_state=True
        )
    )
    assert state.is_completed(), state.message
    data = state.result(raise_on_failure=False)
    assert data["upload_id"] == upload_id
    files = {k: Path(v) for k, v in data["files"].items()}
    expected = {
        RESULTS_LINK_KEY: files["results_xlsx"],
        REJECTS_LINK_KEY: files["rejects_xlsx"],
        RECEIPT_LINK_KEY: receipt,
    }
    urls = {key: _url(_text(key)) for key in expected}
    for key, path in expected.items():
        assert urls[key] == f"{PUBLIC}/uploads/{upload_id}/files/{path.name}", key

    settings = Settings()
    answers = _fetch_as(settings, "ana", ["cl"], list(urls.values()))
    for answer, path in zip(answers, expected.values(), strict=True):
        assert answer.status_code == 200, answer.url
        assert answer.content == path.read_bytes()
    refused = _fetch_as(settings, "pedro", ["pe"], list(urls.values()))
    assert [a.status_code for a in refused] == [403, 403, 403]


def _report(root: Path, run_id: str) -> tuple[RunReport, Path]:
    docs = Settings().data_dir("docs") / f"{run_id}-cl-bookings" / "index.html"
    docs.parent.mkdir(parents=True)
    docs.write_text("<html><body>docs</body></html>")
    report = RunReport(
        run_id=run_id,
        started_at="2026-12-03T02:00:00+00:00",
        countries=["cl"],
        full_refresh=False,
        warehouse=str(root / "warehouse"),
        docs_path=str(docs),
    )
    return report, docs


def _publish_report(report: RunReport, links: PublicLinks) -> dict[str, Any]:
    from prefect import flow

    from tasks.extract import report_task

    @flow(name="report-links-test")
    async def publish() -> dict[str, Any]:
        return await report_task(report, str(Settings().data_dir("reports")), links)

    return asyncio.run(publish())


@pytest.mark.prefect
@pytest.mark.slow
@pytest.mark.xdist_group("load-shell-prefect")  # one worker, one harness (--dist loadgroup)
def test_run_report_summary_links_the_public_page(
    prefect_harness: None, sim: Sim, monkeypatch: pytest.MonkeyPatch
) -> None:
    report, docs = _report(sim.root, "nightly-links-unset")
    result = _publish_report(report, PublicLinks.from_settings(Settings()))
    summary = _text("nightly-summary")  # unset: the paths on the worker, as before
    assert f"Run report: `{result['report_path']}`" in summary
    assert f"Data Docs: `{docs}`" in summary

    monkeypatch.setenv("SODTRACK_WEB_PUBLIC_URL", PUBLIC)
    settings = Settings()
    report, docs = _report(sim.root, "nightly-links-set")
    result = _publish_report(report, PublicLinks.from_settings(settings))
    summary = _text("nightly-summary")
    report_url = f"{PUBLIC}/reports/nightly-links-set.json"
    docs_url = f"{PUBLIC}/docs/nightly-links-set-cl-bookings/index.html"
    assert f"Run report: [nightly-links-set.json]({report_url})" in summary
    assert f"Data Docs: [index.html]({docs_url})" in summary
    assert "file://" not in summary

    answers = _fetch_as(settings, "ana", ["pe"], [report_url, docs_url])  # any country
    assert [a.status_code for a in answers] == [200, 200]
    assert answers[0].json()["run_id"] == "nightly-links-set"
    assert answers[1].content == docs.read_bytes()
    assert Path(result["report_path"]).read_bytes() == answers[0].content
