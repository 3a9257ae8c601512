"""Run reports, Data Docs and an upload's outbox files served by the page: behind the sign-in,
per country for uploads, path traversal impossible, content types and security headers."""

from __future__ import annotations

import asyncio
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from bulkload.objstore_helpers import Store, make_store
from starlette.applications import Starlette
from starlette.testclient import TestClient

from sodtrack.bulkload.engine.ledger import Ledger
from sodtrack.bulkload.inbox.events import Received
from sodtrack.bulkload.inbox.registry import Registry
from sodtrack.links import PublicLinks
from sodtrack.settings import Settings
from sodtrack.web.accounts import Accounts
from sodtrack.web.app import CSP, create_web_app
from sodtrack.web.files import DOCS_CSP, file_under

PASSWORD = "correct horse battery"
CL_UPLOAD = "upl_cl_0123456789abcdef"
PE_UPLOAD = "upl_pe_0123456789abcdef"
INBOX_UPLOAD = "upl_cl_fedcba9876543210"
SECRET = "outside-the-folder"
DOCS_HTML = (
    "<html><head><style>p{color:red}</style>"
    '<link href="https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css" '
    'rel="stylesheet"></head><body><p>Validation results</p>'
    "<script>document.body.dataset.ran = 'yes';</script></body></html>"
)


@dataclass
class Served:
    settings: Settings
    root: Path
    tokens: dict[str, str]


@pytest.fixture
def served(tmp_path: Path) -> Served:
    root = tmp_path / "site"
    settings = Settings(
        base_url="http://127.0.0.1:9",
        country="cl",
        client_id="c",
        client_secret="s",  # type: ignore[arg-type]
        state_url=f"sqlite:///{root / 'state' / 'state.db'}",
        uploads=str(root / "uploads"),
        outbox=str(root / "outbox"),
        warehouse=str(root / "data" / "warehouse"),
        web_public_url="https://sodtrack.example.org",
    )
    (root / "state").mkdir(parents=True)
    reports, docs = settings.data_dir("reports"), settings.data_dir("docs")
    (reports).mkdir(parents=True)
    (reports / "nightly-2026-12-03.json").write_text(json.dumps({"run_id": "nightly-2026-12-03"}))
    (reports / "nightly-2026-12-03.json.tmp").write_text("{}")
    site = docs / "nightly-2026-12-03-cl-bookings"
    (site / "validations" / "x").mkdir(parents=True)
    (site / "static" / "styles").mkdir(parents=True)
    (site / "index.html").write_text(DOCS_HTML)
    (site / "validations" / "x" / "run.html").write_text(DOCS_HTML)
    (site / "static" / "styles" / "custom.css").write_text("body{margin:0}")
    (tmp_path / "secret.txt").write_text(SECRET)
    (reports / "escape.json").symlink_to(tmp_path / "secret.txt")
    (site / "escape.html").symlink_to(tmp_path / "secret.txt")
    (site / "inside.html").symlink_to(site / "index.html")
    (docs / ".hidden.html").write_text(SECRET)
    for upload in (CL_UPLOAD, PE_UPLOAD, INBOX_UPLOAD):
        folder = Path(settings.outbox) / upload
        folder.mkdir(parents=True)
        (folder / f"bookings.{upload}.run-1.results.csv").write_text("outcome\ncreated\n")
        (folder / "receipt.json").write_text(json.dumps({"upload_id": upload}))
    (Path(settings.outbox) / CL_UPLOAD / "escape.csv").symlink_to(tmp_path / "secret.txt")
    ledger = Ledger(settings.state_url)
    for upload, country in ((CL_UPLOAD, "cl"), (PE_UPLOAD, "pe")):
        ledger.begin_upload(
            upload_id=upload,
            file_sha256="0" * 64,
            file_name="bookings.csv",
            country=country,
            uploaded_by="test",
            dry_run=False,
            row_count=1,
        )
    ledger.close()
    registry = Registry(settings.state_url)  # received by the inbox, not loaded yet
    assert registry.claim(
        Received(
            upload_id=INBOX_UPLOAD,
            country="cl",
            file_name="bookings.csv",
            path=str(root / "uploads" / "x.csv"),
            sha256="1" * 64,
            size=10,
            outbox=settings.outbox,
            source="inbox/cl/bookings.csv",
            received_at="2026-12-03T10:00:00+00:00",
        )
    )
    registry.close()
    accounts = Accounts(settings.state_url)
    accounts.add("ana", PASSWORD, ["cl"])
    accounts.add("pedro", PASSWORD, ["pe"])
    tokens = {name: accounts.new_token(name) for name in ("ana", "pedro")}
    accounts.close()
    return Served(settings, root, tokens)


def bearer(served: Served, name: str) -> dict[str, str]:
    return {"authorization": f"Bearer {served.tokens[name]}"}


# ---------------------------------------------------------------- the pure resolver


def test_file_under_refuses_every_way_out(served: Served) -> None:
    docs = served.settings.data_dir("docs")
    site = "nightly-2026-12-03-cl-bookings"
    assert file_under(docs, f"{site}/index.html") == (docs / site / "index.html").resolve()
    assert file_under(docs, f"{site}/inside.html") == (docs / site / "index.html").resolve()
    for bad in [
        "",
        "..",
        "../secret.txt",
        f"{site}/../../secret.txt",
        f"{site}/./index.html",
        f"{site}//index.html",
        "/etc/passwd",
        str(served.root.parent / "secret.txt"),
        f"{site}\\..\\..\\secret.txt",
        f"{site}/index.html\x00.png",
        f"{site}/escape.html",  # a symlink out of the folder
        ".hidden.html",
        site,  # a folder, not a file
        f"{site}/missing.html",
    ]:
        assert file_under(docs, bad) is None, bad


# ---------------------------------------------------------------- over HTTP


def asgi_get(app: Starlette, raw_path: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    """One GET with exactly ``raw_path`` as a server would hand it over (``path`` decoded
    from it, as uvicorn does: ``%2e%2e`` is ``..`` by then), no client-side normalising."""
    from urllib.parse import unquote

    path = unquote(raw_path.decode("latin-1"))
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": raw_path,
        "root_path": "",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }
    sent: list[dict[str, Any]] = []
    done = False

    async def receive() -> dict[str, Any]:
        nonlocal done
        if done:
            await asyncio.sleep(3600)
        done = True
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, body


TRAVERSALS = [
    b"/docs/../secret.txt",
    b"/docs/%2e%2e/secret.txt",
    b"/docs/%2E%2E/%2e%2e/secret.txt",
    b"/docs/nightly-2026-12-03-cl-bookings/%2e%2e%2f%2e%2e%2fsecret.txt",
    b"/docs/..%2f..%2fsecret.txt",
    b"/docs/..%5c..%5csecret.txt",
    b"/docs//etc/passwd",
    b"/docs/%2fetc%2fpasswd",
    b"/docs/nightly-2026-12-03-cl-bookings/escape.html",
    b"/docs/.hidden.html",
    b"/docs/nightly-2026-12-03-cl-bookings/index.html%00.css",
    b"/reports/..%2fsecret.txt",
    b"/reports/%2e%2e",
    b"/reports/escape.json",
    b"/reports/nightly-2026-12-03.json.tmp",
    b"/uploads/" + CL_UPLOAD.encode() + b"/files/..%2f..%2fsecret.txt",
    b"/uploads/" + CL_UPLOAD.encode() + b"/files/%2e%2e",
    b"/uploads/" + CL_UPLOAD.encode() + b"/files/escape.csv",
    b"/uploads/%2e%2e/files/secret.txt",
    b"/uploads/..%2f..%2f/files/secret.txt",
]


def test_traversal_corpus_never_leaves_the_folders(served: Served) -> None:
    app = create_web_app(served.settings)
    with TestClient(app):  # the lifespan: the app's stores are open
        for raw in TRAVERSALS:
            status, body = asgi_get(app, raw, bearer(served, "ana"))
            assert SECRET.encode() not in body, raw
            assert status in (403, 404), (raw, status)
        ok_status, ok_body = asgi_get(
            app, b"/docs/nightly-2026-12-03-cl-bookings/index.html", bearer(served, "ana")
        )
        assert (ok_status, ok_body) == (200, DOCS_HTML.encode())  # the harness does reach files


def test_reports_and_docs_need_a_signed_in_account(served: Served) -> None:
    with TestClient(create_web_app(served.settings)) as client:
        for path in (
            "/reports/nightly-2026-12-03.json",
            "/docs/nightly-2026-12-03-cl-bookings/index.html",
            f"/uploads/{CL_UPLOAD}/files/receipt.json",
        ):
            answer = client.get(path, follow_redirects=False)
            assert answer.status_code == 303, path
            assert answer.headers["location"] == "/login", path
        client.headers["authorization"] = "Bearer sdt_not-a-token"
        answer = client.get("/reports/nightly-2026-12-03.json", follow_redirects=False)
        assert answer.status_code == 303


def test_reports_and_docs_for_any_account_with_types_and_headers(served: Served) -> None:
    with TestClient(create_web_app(served.settings)) as client:
        for name in ("ana", "pedro"):  # any country
            report = client.get("/reports/nightly-2026-12-03.json", headers=bearer(served, name))
            assert report.status_code == 200
            assert report.headers["content-type"] == "application/json"
            assert report.json() == {"run_id": "nightly-2026-12-03"}
            assert report.headers["content-security-policy"] == CSP
            assert report.headers["x-content-type-options"] == "nosniff"
        auth = bearer(served, "pedro")
        page = client.get("/docs/nightly-2026-12-03-cl-bookings/index.html", headers=auth)
        assert page.status_code == 200
        assert page.text == DOCS_HTML
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert page.headers["content-security-policy"] == DOCS_CSP
        assert "frame-ancestors 'none'" in DOCS_CSP
        assert "connect-src 'none'" in DOCS_CSP
        for header in ("x-content-type-options", "x-frame-options", "cache-control"):
            assert header in page.headers
        folder = client.get(
            "/docs/nightly-2026-12-03-cl-bookings", headers=auth, follow_redirects=False
        )
        assert folder.status_code == 307
        assert folder.headers["location"].endswith("/docs/nightly-2026-12-03-cl-bookings/")
        index = client.get("/docs/nightly-2026-12-03-cl-bookings/", headers=auth)
        assert index.text == DOCS_HTML
        css = client.get(
            "/docs/nightly-2026-12-03-cl-bookings/static/styles/custom.css", headers=auth
        )
        assert css.headers["content-type"] == "text/css; charset=utf-8"
        assert css.headers["content-security-policy"] == CSP  # only HTML gets the docs' policy
        # A session cookie works as well as a token (the browser's way in).
        page = client.get("/login")
        import re

        found = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert found
        client.post(
            "/login",
            data={"name": "ana", "password": PASSWORD, "csrf": found.group(1)},
            follow_redirects=False,
        )
        assert client.get("/reports/nightly-2026-12-03.json").status_code == 200


def test_an_uploads_files_only_for_its_country(served: Served) -> None:
    with TestClient(create_web_app(served.settings)) as client:
        name = f"bookings.{CL_UPLOAD}.run-1.results.csv"
        got = client.get(f"/uploads/{CL_UPLOAD}/files/{name}", headers=bearer(served, "ana"))
        assert got.status_code == 200
        assert got.text == "outcome\ncreated\n"
        assert got.headers["content-type"] == "text/csv; charset=utf-8"
        assert got.headers["content-disposition"].startswith("attachment")
        api = client.get(f"/api/uploads/{CL_UPLOAD}/files/{name}", headers=bearer(served, "ana"))
        assert api.status_code == 200
        receipt = client.get(
            f"/uploads/{INBOX_UPLOAD}/files/receipt.json", headers=bearer(served, "ana")
        )
        assert receipt.status_code == 200  # received by the inbox, known by the registry
        assert receipt.headers["content-type"] == "application/json"
        for path in (
            f"/uploads/{CL_UPLOAD}/files/{name}",
            f"/uploads/{INBOX_UPLOAD}/files/receipt.json",
        ):
            refused = client.get(path, headers=bearer(served, "pedro"))
            assert refused.status_code == 403
            assert "created" not in refused.text
        api = client.get(f"/api/uploads/{CL_UPLOAD}/files/{name}", headers=bearer(served, "pedro"))
        assert api.status_code == 403
        own = client.get(
            f"/uploads/{PE_UPLOAD}/files/receipt.json", headers=bearer(served, "pedro")
        )
        assert own.status_code == 200
        unknown = client.get(
            "/uploads/upl_cl_ffffffffffffffff/files/receipt.json", headers=bearer(served, "ana")
        )
        assert unknown.status_code == 403  # answered as another country's: ids tell nothing
        missing = client.get(f"/uploads/{CL_UPLOAD}/files/nope.csv", headers=bearer(served, "ana"))
        assert missing.status_code == 404


def test_the_links_made_for_these_files_open(served: Served) -> None:
    """What :class:`PublicLinks` gives for each served file is a path the page answers."""
    links = PublicLinks.from_settings(served.settings)
    docs = served.settings.data_dir("docs") / "nightly-2026-12-03-cl-bookings" / "index.html"
    report = served.settings.data_dir("reports") / "nightly-2026-12-03.json"
    result = Path(served.settings.outbox) / CL_UPLOAD / f"bookings.{CL_UPLOAD}.run-1.results.csv"
    base = "https://sodtrack.example.org"
    with TestClient(create_web_app(served.settings)) as client:
        for path in (docs, report, result):
            url = links.to(path)
            assert url.startswith(base + "/"), url
            answer = client.get(url[len(base) :], headers=bearer(served, "ana"))
            assert answer.status_code == 200, url
            assert answer.content == path.read_bytes()


# ---------------------------------------------------------------- an outbox on object storage


@pytest.fixture(params=["local", "s3"])
def outbox_store(
    request: pytest.FixtureRequest,
    served: Served,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[Settings, Store]:
    """``served``'s site with its outbox in a store (a folder, or a bucket on the loopback S3
    server), holding the same files, a hidden one, and a secret just outside the outbox."""
    store = make_store(request.param, tmp_path, monkeypatch, request)
    with tempfile.TemporaryDirectory() as scratch:
        for upload in (CL_UPLOAD, PE_UPLOAD, INBOX_UPLOAD):
            for name in (f"bookings.{upload}.run-1.results.csv", "receipt.json"):
                source = Path(served.settings.outbox) / upload / name
                store.put(source, "outbox", upload, name)
        hidden = Path(scratch) / "hidden"
        hidden.write_text(SECRET)
        store.put(hidden, "outbox", CL_UPLOAD, ".hidden.csv")
        store.put(hidden, "secret.txt")
        store.put(hidden, "outbox", "secret.txt")
    settings = served.settings.model_copy(
        update={"outbox": store.url("outbox"), "s3_endpoint_url": store.endpoint}
    )
    return settings, store


STORE_TRAVERSALS = [
    b"/uploads/" + CL_UPLOAD.encode() + b"/files/..%2fsecret.txt",
    b"/uploads/" + CL_UPLOAD.encode() + b"/files/..%2f..%2fsecret.txt",
    b"/uploads/" + CL_UPLOAD.encode() + b"/files/%2e%2e%2fsecret.txt",
    b"/uploads/" + CL_UPLOAD.encode() + b"/files/.hidden.csv",
    b"/uploads/" + CL_UPLOAD.encode() + b"/files/%2fsecret.txt",
    b"/uploads/" + CL_UPLOAD.encode() + b"/files/..%5csecret.txt",
    b"/uploads/" + CL_UPLOAD.encode() + b"/files/.",
    b"/uploads/" + CL_UPLOAD.encode() + b"/files/secret.txt%00.csv",
    b"/api/uploads/" + CL_UPLOAD.encode() + b"/files/..%2f..%2fsecret.txt",
]


def test_an_outbox_on_object_storage_serves_its_files_and_nothing_else(
    served: Served, outbox_store: tuple[Settings, Store]
) -> None:
    settings, store = outbox_store
    app = create_web_app(settings)
    name = f"bookings.{CL_UPLOAD}.run-1.results.csv"
    with TestClient(app) as client:
        got = client.get(f"/uploads/{CL_UPLOAD}/files/{name}", headers=bearer(served, "ana"))
        assert got.status_code == 200
        assert got.text == "outcome\ncreated\n"
        assert got.headers["content-type"] == "text/csv; charset=utf-8"
        assert got.headers["content-disposition"] == f'attachment; filename="{name}"'
        receipt = client.get(
            f"/uploads/{INBOX_UPLOAD}/files/receipt.json", headers=bearer(served, "ana")
        )
        assert receipt.json() == {"upload_id": INBOX_UPLOAD}
        refused = client.get(f"/uploads/{CL_UPLOAD}/files/{name}", headers=bearer(served, "pedro"))
        assert refused.status_code == 403
        own = client.get(
            f"/uploads/{PE_UPLOAD}/files/receipt.json", headers=bearer(served, "pedro")
        )
        assert own.json() == {"upload_id": PE_UPLOAD}
        missing = client.get(f"/uploads/{CL_UPLOAD}/files/nope.csv", headers=bearer(served, "ana"))
        assert missing.status_code == 404
        folder = client.get(f"/uploads/{CL_UPLOAD}/files/", headers=bearer(served, "ana"))
        assert folder.status_code == 404
        for raw in STORE_TRAVERSALS:
            status, body = asgi_get(app, raw, bearer(served, "ana"))
            assert SECRET.encode() not in body, raw
            assert status in (403, 404), (raw, status)
    assert store.read(store.url("secret.txt")) == SECRET.encode()  # it was there to be found
