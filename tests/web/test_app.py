"""The upload page in-process against a loopback simulator: sign-in, CSRF, per-country
permissions, limits, escaping, headers, and every JSON endpoint through a whole upload."""

from __future__ import annotations

import asyncio
import csv
import io
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from starlette.routing import Route
from starlette.testclient import TestClient

from sodtrack.bulkload.inbox import Registry
from sodtrack.bulkload.run import run_load
from sodtrack.bulkload.synth import COLUMNS
from sodtrack.bulkload.template import BOOKINGS_SHEET
from sodtrack.client import country_client
from sodtrack.demo import Sample, write_sample
from sodtrack.web.app import CSP
from sodtrack.web.openapi import OPENAPI
from sodtrack.web.service import web_uploads_table

from .conftest import PASSWORD, SIM_TODAY, Site, csrf_of, make_site, sign_in, wait_for

pytestmark = pytest.mark.slow
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def sample(site: Site, path: Path, rows: int = 24) -> Sample:
    async def build() -> Sample:
        async with country_client(site.settings, "cl") as client:
            return await write_sample(
                client, path, country="cl", rows=rows, projects=3, today=SIM_TODAY
            )

    return asyncio.run(build())


def demo_bookings(site: Site) -> list[Any]:
    """The sample's bookings the simulator holds."""
    return [
        b
        for b in site.sim.state.sim.client("sim-client").bookings.values()
        if b.external_reference.startswith("DEMO")
    ]


def bearer(site: Site, name: str = "ana") -> dict[str, str]:
    return {"authorization": f"Bearer {site.accounts.new_token(name)}"}


def upload(client: TestClient, path: Path, country: str = "cl", **kwargs: Any) -> Any:
    with path.open("rb") as fh:
        return client.post(
            "/api/uploads",
            data={"country": country},
            files={"file": (path.name, fh, XLSX)},
            **kwargs,
        )


def preview_of(client: TestClient, upload_id: str, headers: dict[str, str]) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        answer = client.get(f"/api/uploads/{upload_id}/preview", headers=headers)
        if answer.status_code == 200:
            body: dict[str, Any] = answer.json()
            return body
        assert answer.status_code == 202, answer.text
        assert answer.json()["preview_status"] != "failed", answer.json()
        return None

    result: dict[str, Any] = wait_for(ready, what="the dry run")
    return result


def test_signed_out_is_sent_to_sign_in(site: Site) -> None:
    with TestClient(site.app()) as client:
        page = client.get("/", follow_redirects=False)
        assert page.status_code == 303
        assert page.headers["location"] == "/login"
        assert client.get("/api/uploads").status_code == 401
        assert (
            client.get("/api/me", headers={"authorization": "Bearer sdt_nope"}).status_code == 401
        )
        login = client.get("/login")
        for name, value in {
            "content-security-policy": CSP,
            "x-content-type-options": "nosniff",
            "x-frame-options": "DENY",
        }.items():
            assert login.headers[name] == value
        assert "frame-ancestors 'none'" in CSP


def test_sign_in_needs_the_form_token_and_is_throttled(site: Site) -> None:
    settings = site.settings.model_copy(update={"web_login_max_failures": 2})
    with TestClient(site.app(settings=settings) if False else _app(site, settings)) as client:
        no_token = client.post("/login", data={"name": "ana", "password": PASSWORD})
        assert no_token.status_code == 400
        for _ in range(2):
            token = csrf_of(client.get("/login").text)
            wrong = client.post("/login", data={"name": "ana", "password": "nope", "csrf": token})
            assert wrong.status_code == 401
        token = csrf_of(client.get("/login").text)
        right = client.post(
            "/login",
            data={"name": "ana", "password": PASSWORD, "csrf": token},
            follow_redirects=False,
        )
        assert right.status_code == 429, "the right password is not even checked when throttled"
        assert "sodtrack_session" not in client.cookies


def _app(site: Site, settings: Any) -> Any:
    from sodtrack.web.app import create_web_app

    return create_web_app(settings)


def spooled(client: TestClient) -> list[Path]:
    """Files left in the page's spool folder (where uploads stream in)."""
    spool: Path = client.app.state.web.service.spool  # type: ignore[attr-defined]
    return [p for p in spool.rglob("*") if p.is_file()] if spool.exists() else []


def test_session_cookie_flags_and_csrf_on_posts(stored_site: Site, tmp_path: Path) -> None:
    site = stored_site
    with TestClient(site.app()) as client:
        page = client.get("/login")
        answer = client.post(
            "/login",
            data={"name": "ana", "password": PASSWORD, "csrf": csrf_of(page.text)},
            follow_redirects=False,
        )
        cookie = answer.headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=lax" in cookie
        assert "Secure" not in cookie  # plain http on loopback
        csrf = csrf_of(client.get("/").text)
        path = tmp_path / "one.csv"
        path.write_text("external_reference\nX1\n", encoding="utf-8")
        with path.open("rb") as fh:
            forged = client.post(
                "/uploads", data={"country": "cl"}, files={"file": ("one.csv", fh, "text/csv")}
            )
        assert forged.status_code == 403, "a form without the session's token is refused"
        assert site.stored("uploads") == [], "a forged upload is not kept"
        assert spooled(client) == [], "nor its spool file"
        with path.open("rb") as fh:
            api_forged = client.post(
                "/api/uploads", data={"country": "cl"}, files={"file": ("one.csv", fh, "text/csv")}
            )
        assert api_forged.status_code == 403
        with path.open("rb") as fh:
            ok = client.post(
                "/api/uploads",
                data={"country": "cl"},
                files={"file": ("one.csv", fh, "text/csv")},
                headers={"x-csrf-token": csrf},
            )
        assert ok.status_code == 201, ok.text
        upload_id = ok.json()["upload_id"]
        no_token = client.post(f"/uploads/{upload_id}/load", data={}, follow_redirects=False)
        assert no_token.status_code == 403
        out = client.post("/logout", data={"csrf": csrf}, follow_redirects=False)
        assert out.status_code == 303
        assert client.get("/api/me").status_code == 401


def test_https_cookie_is_secure(site: Site) -> None:
    settings = site.settings.model_copy(update={"web_public_https": True})
    with TestClient(_app(site, settings)) as client:
        page = client.get("/login")
        answer = client.post(
            "/login",
            data={"name": "ana", "password": PASSWORD, "csrf": csrf_of(page.text)},
            follow_redirects=False,
        )
        assert "Secure" in answer.headers["set-cookie"]


def test_trusted_sso_header(site: Site) -> None:
    settings = site.settings.model_copy(update={"web_trusted_user_header": "X-Forwarded-User"})
    with TestClient(_app(site, settings)) as client:
        me = client.get("/api/me", headers={"x-forwarded-user": "ana"})
        assert me.json() == {"name": "ana", "countries": ["cl"]}
        assert client.get("/api/me", headers={"x-forwarded-user": "ghost"}).status_code == 401
        sso = {"x-forwarded-user": "ana"}
        forged = client.post("/api/uploads/upl_cl_x/load", headers=sso)
        assert forged.status_code == 403, "the proxy's header alone does not make a POST"
        csrf = csrf_of(client.get("/", headers=sso).text)
        missing = client.post("/api/uploads/upl_cl_x/load", headers={**sso, "x-csrf-token": csrf})
        assert missing.json() == {"error": "no such upload among your countries"}
        assert client.get("/api/me").status_code == 401
    with TestClient(site.app()) as client:  # not configured: the header means nothing
        assert client.get("/api/me", headers={"x-forwarded-user": "ana"}).status_code == 401


def test_a_whole_upload_through_the_json_twin(stored_site: Site, tmp_path: Path) -> None:
    site = stored_site
    s = sample(site, tmp_path / "demo bookings.xlsx")
    ana = bearer(site)
    with TestClient(site.app()) as client:
        assert client.get("/api/me", headers=ana).json()["countries"] == ["cl"]
        first = upload(client, s.path, headers=ana)
        assert first.status_code == 201, first.text
        upload_id = first.json()["upload_id"]
        assert upload_id.startswith("upl_cl_")
        assert site.stored("uploads") == [f"{upload_id}/upload.xlsx"], "never its own name"
        stored = f"{site.settings.uploads}/{upload_id}/upload.xlsx"
        assert site.read(stored) == s.path.read_bytes()
        if not site.remote:
            assert (Path(stored).stat().st_mode & 0o777) == 0o600
            assert (Path(stored).parent.stat().st_mode & 0o777) == 0o700
        assert spooled(client) == []

        preview = preview_of(client, upload_id, ana)
        assert f"{upload_id}/preview.json" in site.stored("uploads"), "kept beside the upload"
        rejected = [r for r in preview["rows"] if r["outcome"] == "rejected"]
        assert len(rejected) == 3
        assert all(r["message"] and r["suggested_fix"] for r in rejected)
        assert all(r["marks"] for r in rejected), "the cell at fault is marked"
        assert preview["counts"]["rejected"] == 3
        assert preview["would_load"] == s.rows - 3
        assert preview["headers"][0] == "external_reference"
        assert preview["rows"][0]["row_number"] == 2
        assert any(r["interpreted"] for r in preview["rows"]), "interpreted values shown"
        assert site.writes() == {}, "the dry run writes nothing"

        started = client.post(f"/api/uploads/{upload_id}/load", headers=ana)
        assert started.status_code == 202
        assert started.json()["started"] is True

        def done() -> dict[str, Any] | None:
            status: dict[str, Any] = client.get(f"/api/uploads/{upload_id}", headers=ana).json()
            assert status["load_status"] != "failed", status
            return status if status["load_status"] == "done" else None

        status = wait_for(done, what="the load")
        assert status["ledger"]["counts"]["rejected"] == 3
        created = status["ledger"]["counts"]["created"]
        assert created == s.rows - 3
        assert set(status["downloads"]) == {
            "results.xlsx",
            "results.csv",
            "rejects.xlsx",
            "rejects.csv",
        }
        results = client.get(f"/api/uploads/{upload_id}/files/results.xlsx", headers=ana)
        assert results.status_code == 200
        assert "demo%20bookings.results.xlsx" in results.headers["content-disposition"]
        assert results.headers["content-type"] == XLSX
        in_outbox = [n for n in site.stored("outbox") if n.endswith(".results.xlsx")]
        assert len(in_outbox) == 2, in_outbox  # this run's file and the latest
        assert results.content == site.read(f"{site.settings.outbox}/{in_outbox[0]}")
        sheet = load_workbook(io.BytesIO(results.content)).worksheets[0]
        assert sheet.max_row == s.rows + 1
        rejects = client.get(f"/api/uploads/{upload_id}/files/rejects.csv", headers=ana)
        refs = {
            r["external_reference"]
            for r in csv.DictReader(io.StringIO(rejects.text.lstrip("\ufeff")))
        }
        assert refs == set(s.bad)
        writes = site.writes()

        # Someone else of the same country uploads the same file: same upload, one load.
        site.accounts.add("bea", PASSWORD, ["cl"])
        bea = bearer(site, "bea")
        again = upload(client, s.path, headers=bea)
        assert again.status_code == 200
        assert again.json()["upload_id"] == upload_id
        assert again.json()["created"] is False
        assert again.json()["drops"] == 2
        second = client.post(f"/api/uploads/{upload_id}/load", headers=bea)
        assert second.json()["started"] is False
        assert site.writes() == writes, "nothing new created"

        history = client.get("/api/uploads", headers=ana).json()
        assert [h["upload_id"] for h in history] == [upload_id]
        assert history[0]["uploaded_by"] == "ana"

        cancelled = client.post(f"/api/uploads/{upload_id}/cancel", headers=ana)
        assert cancelled.status_code == 200, cancelled.text
        booked = {
            b.external_reference: b
            for b in site.sim.state.sim.client("sim-client").bookings.values()
            if b.external_reference.startswith("DEMO")
        }
        assert len(booked) == s.rows - 2, "the overpaid row's booking exists, its payment not"
        assert cancelled.json()["cancelled"] == len(booked)
        assert {str(b.status) for b in booked.values()} == {"cancelled"}
        assert (
            client.get(f"/api/uploads/{upload_id}", headers=ana).json()["load_status"]
            == "cancelled"
        )


def test_another_countrys_account_is_refused(stored_site: Site, tmp_path: Path) -> None:
    site = stored_site
    s = sample(site, tmp_path / "bookings.xlsx")
    with TestClient(site.app()) as client:
        pedro = bearer(site, "pedro")
        refused = upload(client, s.path, headers=pedro)
        assert refused.status_code == 403
        assert site.stored("uploads") == [], "nothing stored"
        assert spooled(client) == []
        ana = bearer(site)
        upload_id = upload(client, s.path, headers=ana).json()["upload_id"]
        for path in (
            f"/api/uploads/{upload_id}",
            f"/api/uploads/{upload_id}/preview",
            f"/api/uploads/{upload_id}/files/results.xlsx",
            "/api/template/cl",
        ):
            assert client.get(path, headers=pedro).status_code == 403, path
        assert client.post(f"/api/uploads/{upload_id}/load", headers=pedro).status_code == 403
        assert client.post(f"/api/uploads/{upload_id}/cancel", headers=pedro).status_code == 403
        assert client.get("/api/uploads", headers=pedro).json() == []
        sign_in(client, "pedro")
        home = client.get("/").text
        assert 'value="pe"' in home
        assert 'value="cl"' not in home, "a country the account does not hold is not offered"
        preview_of(client, upload_id, ana)  # let the dry run end before the app stops


def test_file_type_and_size_are_checked_first(stored_site: Site, tmp_path: Path) -> None:
    site = stored_site
    settings = site.settings.model_copy(update={"upload_max_file_bytes": 4096})
    with TestClient(_app(site, settings)) as client:
        ana = bearer(site)
        for name, content in (
            ("notes.txt", b"hello\n"),
            ("book.xlsx", b"not a zip at all\n"),
            ("old.xlsx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100),
            ("zip.csv", b"PK\x03\x04" + b"\0" * 100),
            ("empty.csv", b""),
        ):
            answer = client.post(
                "/api/uploads",
                data={"country": "cl"},
                files={"file": (name, content)},
                headers=ana,
            )
            assert answer.status_code == 400, (name, answer.text)
        big = client.post(
            "/api/uploads",
            data={"country": "cl"},
            files={"file": ("big.csv", b"a,b\n" * 2000)},
            headers=ana,
        )
        assert big.status_code == 413
        assert "SODTRACK_UPLOAD_MAX_FILE_BYTES" in big.json()["error"]
        assert site.stored("uploads") == [], "a refused file leaves nothing behind"
        assert spooled(client) == []


def test_cells_are_escaped_and_no_secret_is_shown(site: Site, tmp_path: Path) -> None:
    path = tmp_path / "evil.csv"
    evil = {
        "external_reference": "<script>alert(1)</script>",
        "customer_first_name": "<img src=x onerror=alert(2)>",
    }
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        writer.writerow([evil.get(c, "x") for c in COLUMNS])
    with TestClient(site.app()) as client:
        sign_in(client)
        csrf = csrf_of(client.get("/").text)
        with path.open("rb") as fh:
            answer = client.post(
                "/uploads",
                data={"country": "cl", "csrf": csrf},
                files={"file": ("<i>evil.csv", fh, "text/csv")},
            )
        assert answer.status_code == 200, answer.text  # followed to the upload page
        upload_id = answer.url.path.rsplit("/", 1)[1]
        page = wait_for(
            lambda: (p := client.get(f"/uploads/{upload_id}").text) and 'id="rows"' in p and p,
            what="the preview table",
        )
        assert "<script>" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        assert "<img" not in page
        assert "&lt;i&gt;evil.csv" in page
        every = page + client.get("/").text + client.get(f"/api/uploads/{upload_id}/preview").text
        assert "sim-secret" not in every
        assert site.accounts.engine.url.database not in every


def test_html_pages_through_a_load(site: Site, tmp_path: Path) -> None:
    s = sample(site, tmp_path / "sample.xlsx")
    with TestClient(site.app()) as client:
        csrf = sign_in(client)
        template = client.get("/template?country=cl")
        assert template.status_code == 200
        book = load_workbook(io.BytesIO(template.content))
        assert BOOKINGS_SHEET in book.sheetnames
        assert book[BOOKINGS_SHEET].data_validations.dataValidation, "its dropdowns"
        assert client.get("/template?country=pe").status_code == 403
        with s.path.open("rb") as fh:
            answer = client.post(
                "/uploads",
                data={"country": "cl", "csrf": csrf},
                files={"file": (s.path.name, fh, XLSX)},
                follow_redirects=False,
            )
        assert answer.status_code == 303
        url = answer.headers["location"]
        running = client.get(url).text
        page = wait_for(
            lambda: (p := client.get(url).text) and 'id="load"' in p and p, what="Load button"
        )
        assert 'http-equiv="refresh"' in running or 'id="load"' in running
        assert f"Load {s.rows - 3} rows" in page
        assert page.count('class="error"') >= 3, "the cells at fault are highlighted"
        never = client.post(url + "/cancel", data={"csrf": csrf, "confirm": "yes"})
        assert never.status_code == 409
        assert "never loaded" in never.text
        loaded = client.post(url + "/load", data={"csrf": csrf}, follow_redirects=False)
        assert loaded.status_code == 303
        done = wait_for(
            lambda: (p := client.get(url).text) and 'id="outcome"' in p and p, what="the outcome"
        )
        assert "fix the rows of the rejects file and upload it" in done.lower()
        assert 'id="download-rejects-xlsx"' in done
        confirm = client.get(url + "/cancel").text
        assert "cannot be undone" in confirm
        not_confirmed = client.post(url + "/cancel", data={"csrf": csrf}, follow_redirects=False)
        assert not_confirmed.status_code == 303, "no cancel without the confirmation"
        assert site.writes().get("booking_cancel", 0) == 0
        history = client.get("/").text
        assert s.path.name in history


def test_a_load_left_running_is_resumed_on_start(site: Site, tmp_path: Path) -> None:
    s = sample(site, tmp_path / "sample.xlsx")
    ana = bearer(site)
    with TestClient(site.app()) as client:
        upload_id = upload(client, s.path, headers=ana).json()["upload_id"]
        preview_of(client, upload_id, ana)
    # What a process killed during the load leaves: the load marked running, nothing written.
    engine = site.accounts.engine
    with engine.begin() as conn:
        conn.execute(
            web_uploads_table.update()
            .where(web_uploads_table.c.upload_id == upload_id)
            .values(load_status="running", load_by="ana")
        )
    assert site.writes() == {}
    with TestClient(site.app()) as client:
        status = wait_for(
            lambda: (
                (st := client.get(f"/api/uploads/{upload_id}", headers=ana).json())["load_status"]
                == "done"
                and st
            ),
            what="the resumed load",
        )
        assert status["ledger"]["counts"]["created"] == s.rows - 3


def test_with_a_prefect_api_the_load_is_announced(stored_site: Site, tmp_path: Path) -> None:
    site = stored_site
    s = sample(site, tmp_path / "sample.xlsx")
    events: list[dict[str, Any]] = []
    ana = bearer(site)
    with TestClient(site.app(emit=events.append)) as client:
        upload_id = upload(client, s.path, headers=ana).json()["upload_id"]
        preview_of(client, upload_id, ana)
        started = client.post(f"/api/uploads/{upload_id}/load", headers=ana).json()
        assert started["load_status"] == "announced"
        assert client.post(f"/api/uploads/{upload_id}/load", headers=ana).json()["started"] is False
    assert [e["event"] for e in events] == ["sodtrack.upload.received"]
    assert events[0]["payload"]["upload_id"] == upload_id
    assert events[0]["payload"]["path"] == f"{site.settings.uploads}/{upload_id}/upload.xlsx"
    assert events[0]["payload"]["outbox"] == site.settings.outbox
    registry = Registry(site.settings.state_url)
    row = registry.get(upload_id)
    assert row is not None
    assert row["emitted_at"] is not None
    assert site.writes() == {}, "the worker loads it, not the page"
    # The worker's part, as the bulk-load flow does it with the event's payload: the page
    # follows it in the ledger and offers its files.
    payload = events[0]["payload"]
    asyncio.run(
        run_load(
            site.settings,
            payload["path"],
            country=payload["country"],
            uploaded_by="worker",
            outbox=payload["outbox"],
        )
    )
    with TestClient(site.app(emit=events.append)) as client:
        status = client.get(f"/api/uploads/{upload_id}", headers=ana).json()
        assert status["load_status"] == "done"
        assert status["ledger"]["counts"]["rejected"] == 3
        assert "rejects.xlsx" in status["downloads"]
        rejects = client.get(f"/api/uploads/{upload_id}/files/rejects.csv", headers=ana)
        assert rejects.status_code == 200, "the worker's files, read from the store"
        rows = csv.DictReader(io.StringIO(rejects.text.lstrip("\ufeff")))
        assert {r["external_reference"] for r in rows} == set(s.bad)
    assert len(events) == 1, "a restart announces nothing again"


def test_openapi_lists_every_api_route(site: Site) -> None:
    app = site.app()
    routes = {
        (r.path, m.lower())
        for r in app.routes
        if isinstance(r, Route) and r.path.startswith("/api/")
        for m in (r.methods or ())
        if m != "HEAD"
    }
    documented = {(p, m) for p, ops in OPENAPI["paths"].items() for m in ops}
    assert routes == documented
    with TestClient(app) as client:
        assert client.get("/api/openapi.json").json()["openapi"].startswith("3.")


def test_a_load_interrupted_by_a_restart_is_resumed_and_creates_nothing_twice(
    tmp_path: Path,
) -> None:
    with make_site(tmp_path, rate_limit=8.0, burst=4) as slow:
        s = sample(slow, tmp_path / "sample.xlsx")
        ana = bearer(slow)
        with TestClient(slow.app()) as client:
            upload_id = upload(client, s.path, headers=ana).json()["upload_id"]
            preview_of(client, upload_id, ana)
            client.post(f"/api/uploads/{upload_id}/load", headers=ana)

            def underway() -> bool:
                st = client.get(f"/api/uploads/{upload_id}", headers=ana).json()
                assert st["load_status"] == "running", "the load ended before the restart"
                return bool(st["ledger"] and st["ledger"]["steps_settled"] > 0)

            wait_for(underway, what="the load to be under way")
        # The application stopped mid-load (its task cancelled, as on a restart).
        partial = len(demo_bookings(slow))
        assert partial < s.rows - 2, "stopped part-way"
        with TestClient(slow.app()) as client:
            status = wait_for(
                lambda: (
                    (st := client.get(f"/api/uploads/{upload_id}", headers=ana).json())[
                        "load_status"
                    ]
                    == "done"
                    and st
                ),
                what="the resumed load",
            )
        assert (
            status["ledger"]["counts"]["created"]
            + status["ledger"]["counts"].get("already_existed", 0)
            == s.rows - 3
        )
        booked = demo_bookings(slow)
        assert len(booked) == s.rows - 2, "every booking once, none twice"
        assert len({b.external_reference for b in booked}) == len(booked)


def test_a_stored_file_that_does_not_arrive_whole_is_a_503_to_try_again(
    site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When object storage keeps cutting a stored file short (the corpus in
    ``tests/bulkload/run/test_short_reads_corpus.py`` drives the real reads through a fault
    proxy), the page says so and asks to try again: a 503 naming the file, never a 500, and
    never a shorter preview shown as the whole."""
    from sodtrack.errors import IncompleteObject
    from sodtrack.web.storage import Place

    s = sample(site, tmp_path / "demo bookings.xlsx")
    ana = bearer(site)
    with TestClient(site.app()) as client:
        upload_id = upload(client, s.path, headers=ana).json()["upload_id"]
        preview_of(client, upload_id, ana)

        def cut(self: Place, *parts: str) -> str:
            raise IncompleteObject(parts[-1], size=5000, copied=1200, attempts=4)

        monkeypatch.setattr(Place, "read_text", cut)
        answer = client.get(f"/api/uploads/{upload_id}/preview", headers=ana)
        assert answer.status_code == 503, answer.text
        why = answer.json()["error"]
        assert "preview.json" in why
        assert "1200 of its 5000 bytes" in why
        assert why.endswith("try again")
        sign_in(client)
        page = client.get(f"/uploads/{upload_id}")
        assert page.status_code == 503
        assert "did not answer whole" in page.text
