"""Run reports and Data Docs of a warehouse on object storage live on that store
(``<warehouse>/_reports``, ``<warehouse>/_docs``), so a second worker and ``sodtrack-etl
serve`` see them; a local warehouse keeps them beside it on disk, as before. Every test runs
against a local folder and a bucket on the loopback moto S3 server."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from s3server import S3Server
from starlette.testclient import TestClient

from sodtrack.extract.docsite import DocsSite
from sodtrack.extract.report import RunReport
from sodtrack.links import PublicLinks
from sodtrack.objstore import filesystem, read_object
from sodtrack.settings import Settings
from sodtrack.web.accounts import Accounts
from sodtrack.web.app import create_web_app
from sodtrack.web.files import DOCS_CSP

PUBLIC = "https://sodtrack.example.org"
RUN = "nightly-20261203T020000Z-abc123"
SITE = f"{RUN}-cl-bookings"
PASSWORD = "correct horse battery"
SECRET = "outside-the-folder"


@dataclass(frozen=True)
class Place:
    settings: Settings
    endpoint: str | None

    @property
    def remote(self) -> bool:
        return self.endpoint is not None

    def read(self, location: str | Path) -> bytes | None:
        if isinstance(location, Path):
            return location.read_bytes() if location.is_file() else None
        return read_object(location, endpoint_url=self.endpoint)

    def put(self, location: str | Path, data: bytes) -> None:
        fs, path = filesystem(str(location), endpoint_url=self.endpoint)
        if not self.remote:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        fs.pipe_file(path, data)


@pytest.fixture(params=["local", "s3"])
def place(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Place:
    common = {
        "base_url": "http://127.0.0.1:9",
        "client_secret": "s",
        "state_url": f"sqlite:///{tmp_path / 'state.db'}",
        "outbox": str(tmp_path / "outbox"),
        "web_public_url": PUBLIC,
    }
    if request.param == "local":
        settings = Settings(warehouse=str(tmp_path / "data" / "warehouse"), **common)  # type: ignore[arg-type]
        return Place(settings, None)
    server: S3Server = request.getfixturevalue("s3_server")
    for key, value in server.env().items():
        if key != "AWS_ENDPOINT_URL":
            monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    settings = Settings(
        warehouse=f"s3://{server.new_bucket()}/warehouse",
        s3_endpoint_url=server.endpoint,
        **common,  # type: ignore[arg-type]
    )
    return Place(settings, server.endpoint)


def _report() -> RunReport:
    from datetime import UTC, datetime

    from sodtrack.extract.runner import start_report

    return start_report(
        RUN, datetime(2026, 12, 3, 2, tzinfo=UTC), ["cl"], full_refresh=False, warehouse="x"
    )


def _site(built: Path) -> Path:
    """A Data Docs site as Great Expectations builds it into ``built``."""
    site = built / SITE
    (site / "validations" / "x").mkdir(parents=True)
    (site / "index.html").write_text("<html><body>index</body></html>")
    (site / "validations" / "x" / "run.html").write_text("<html><body>run</body></html>")
    return site


def test_where_reports_and_docs_go(place: Place, tmp_path: Path) -> None:
    reports = place.settings.output_location("reports")
    docs = place.settings.output_location("docs")
    if place.remote:
        assert reports == f"{place.settings.warehouse}/_reports"
        assert docs == f"{place.settings.warehouse}/_docs"
    else:  # beside the warehouse folder, as before
        assert reports == tmp_path / "data" / "reports"
        assert docs == tmp_path / "data" / "docs"
    assert not (Path.cwd() / "s3:").exists()


def test_the_run_report_is_written_where_every_worker_sees_it(place: Place) -> None:
    report = _report()
    location = place.settings.output_location("reports")
    where = report.write_to(location, endpoint_url=place.settings.s3_endpoint_url)
    assert where == str(
        f"{location}/{RUN}.json" if place.remote else Path(location) / f"{RUN}.json"
    )
    assert report.report_path == where
    data = place.read(where if place.remote else Path(where))
    assert data is not None
    assert json.loads(data)["run_id"] == RUN


def test_a_data_docs_site_goes_up_whole(place: Place, tmp_path: Path) -> None:
    docs = place.settings.output_location("docs")
    with DocsSite(docs, endpoint_url=place.settings.s3_endpoint_url) as where:
        assert where.build_dir is not None
        # on object storage the site is built in a private temporary folder, not in ``docs``
        assert (where.build_dir != Path(docs)) is place.remote
        index = where.keep(_site(where.build_dir) / "index.html")
        built = where.build_dir
    assert index == f"{docs}/{SITE}/index.html"
    assert built.exists() is not place.remote  # the temporary folder is gone after the run
    read = place.read if place.remote else (lambda p: place.read(Path(p)))
    assert read(index) == b"<html><body>index</body></html>"
    assert read(f"{docs}/{SITE}/validations/x/run.html") == b"<html><body>run</body></html>"


def test_an_unreachable_store_fails_the_report_saying_where(tmp_path: Path) -> None:
    from sodtrack.errors import OutputNotWritable

    with pytest.raises(OutputNotWritable, match=r"s3://no-such-bucket-here/warehouse/_reports"):
        _report().write_to(
            "s3://no-such-bucket-here/warehouse/_reports", endpoint_url="http://127.0.0.1:9"
        )


def test_links_to_reports_and_docs_open_the_page(place: Place) -> None:
    links = PublicLinks.from_settings(place.settings)
    reports = place.settings.output_location("reports")
    docs = place.settings.output_location("docs")
    report = f"{reports}/{RUN}.json" if place.remote else Path(reports) / f"{RUN}.json"
    page = f"{docs}/{SITE}/index.html" if place.remote else Path(docs) / SITE / "index.html"
    assert links.to(report) == f"{PUBLIC}/reports/{RUN}.json"
    assert links.to(page) == f"{PUBLIC}/docs/{SITE}/index.html"
    if place.remote:  # any other object: its own URL; a look-alike prefix is not the folder
        other = f"{place.settings.warehouse}/bookings/_delta_log/0.json"
        assert links.to(other) == other
        assert links.to(f"{reports}x/{RUN}.json") == f"{reports}x/{RUN}.json"
        assert links.to(f"{reports}/../{RUN}.json") == f"{reports}/../{RUN}.json"
        unlinked = PublicLinks(None, reports=reports, docs=docs, outbox=Path("o"))
        assert unlinked.to(report) == report


# ---------------------------------------------------------------- served by the page

TRAVERSALS = [
    "/reports/..%2fsecret.json",
    "/reports/%2e%2e%2fsecret.json",
    "/reports/.hidden.json",
    "/reports/nested%2f..%2f..%2fsecret.json",
    "/docs/..%2fsecret.json",
    "/docs/%2e%2e/secret.json",
    f"/docs/{SITE}/..%2f..%2fsecret.json",
    f"/docs/{SITE}/.hidden.html",
]


@pytest.fixture
def page(place: Place, tmp_path: Path) -> tuple[TestClient, dict[str, str]]:
    reports = place.settings.output_location("reports")
    docs = place.settings.output_location("docs")
    _report().write_to(reports, endpoint_url=place.settings.s3_endpoint_url)
    site = _site(tmp_path / "built")
    if place.remote:
        assert isinstance(docs, str)
        DocsSite(docs, endpoint_url=place.settings.s3_endpoint_url).keep(site / "index.html")
        place.put(f"{place.settings.warehouse}/secret.json", SECRET.encode())
        place.put(f"{reports}/.hidden.json", SECRET.encode())
        place.put(f"{docs}/{SITE}/.hidden.html", SECRET.encode())
    else:
        import shutil

        shutil.copytree(site, Path(docs) / SITE)
    accounts = Accounts(place.settings.state_url)
    accounts.add("ana", PASSWORD, ["cl"])
    token = accounts.new_token("ana")
    accounts.close()
    return TestClient(create_web_app(place.settings)), {"authorization": f"Bearer {token}"}


def test_the_page_serves_reports_and_docs_from_where_they_are(
    page: tuple[TestClient, dict[str, str]],
) -> None:
    client, auth = page
    with client:
        report = client.get(f"/reports/{RUN}.json", headers=auth)
        assert report.status_code == 200, report.text
        assert report.headers["content-type"] == "application/json"
        assert report.json()["run_id"] == RUN
        index = client.get(f"/docs/{SITE}/", headers=auth)
        assert index.status_code == 200
        assert index.text == "<html><body>index</body></html>"
        assert index.headers["content-security-policy"] == DOCS_CSP
        folder = client.get(f"/docs/{SITE}", headers=auth, follow_redirects=False)
        assert folder.status_code == 307
        assert folder.headers["location"].endswith(f"/docs/{SITE}/")
        assert client.get(f"/docs/{SITE}/validations/x/run.html", headers=auth).status_code == 200
        assert client.get("/reports/nightly-none.json", headers=auth).status_code == 404
        assert client.get(f"/reports/{RUN}.json", follow_redirects=False).status_code == 303
        for raw in TRAVERSALS:
            got = client.get(raw, headers=auth)
            assert got.status_code in (403, 404), raw
            assert SECRET not in got.text, raw
