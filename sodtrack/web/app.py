"""The upload page: a Starlette application, server-rendered (Jinja2 templates in
``sodtrack/web/templates``, autoescaped: a cell holding ``<script>`` is shown as text), no
script at all (a page that waits for a background job refreshes itself with a
``<meta http-equiv=refresh>``), and a JSON twin under ``/api/`` for every action, described by
``/api/openapi.json``. It also serves the pipeline's own files behind the same sign-in
(:mod:`sodtrack.web.files`: no way out of their folders): run reports (``/reports/``) and
Data Docs (``/docs/``, under a policy of their own) to any account, and an upload's outbox
files (``/uploads/{id}/files/{name}``) to the accounts holding its country; Prefect
artifacts link there when ``SODTRACK_WEB_PUBLIC_URL`` is set (:mod:`sodtrack.links`).

Who is signed in, in this order: the trusted single-sign-on header
(``SODTRACK_WEB_TRUSTED_USER_HEADER``, when set), an API token (``Authorization: Bearer
sdt_…``, from ``sodtrack-etl users token NAME``), the signed session cookie. The account must
exist and be enabled, on every request. An account loads only into its countries: others are
not offered, and refused (403) by every route that takes or shows an upload.

CSRF: every form carries the session's token (``csrf`` field; the sign-in form a token of its
own, double-submitted in a cookie); a JSON call authenticated by the session cookie sends it as
``X-CSRF-Token``. Headers on every answer: a ``Content-Security-Policy`` without inline script
and with ``frame-ancestors 'none'``, ``X-Content-Type-Options: nosniff``, ``X-Frame-Options:
DENY``, ``Referrer-Policy: no-referrer``, ``Cache-Control: no-store``.

The client's address (what the sign-in throttle counts per client, :mod:`sodtrack.web.throttle`)
is the connection's peer, or, when that peer is a proxy named in
``SODTRACK_WEB_FORWARDED_ALLOW_IPS``, the address the proxy forwarded (``X-Forwarded-For``; the
server rewrites it before this application sees the request: :func:`proxy_options`). Behind a
proxy that is not named, every user has the proxy's address and shares one count.

Nothing here reads the environment: :func:`create_web_app` takes the settings (and, for tests,
a clock). No Prefect import: an emitter (plain HTTP) is passed in when a Prefect API is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import secrets
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import iterate_in_threadpool
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sodtrack.bulkload.inbox.events import Emitter
from sodtrack.contract.countries import COUNTRIES
from sodtrack.errors import (
    AccountError,
    FileRefused,
    FileTooLarge,
    LeaseHeld,
    ObjectStoreError,
)
from sodtrack.objstore import read_object
from sodtrack.settings import TRUST_EVERY_PROXY, Settings
from sodtrack.textsafe import printable
from sodtrack.web.accounts import Account, Accounts
from sodtrack.web.files import DOCS_CSP, file_under, object_under
from sodtrack.web.openapi import OPENAPI
from sodtrack.web.security import (
    CSRF_FIELD,
    CSRF_HEADER,
    SESSION_COOKIE,
    Session,
    SessionSigner,
    csrf_matches,
)
from sodtrack.web.service import DOWNLOADS, UploadService, WebUpload
from sodtrack.web.storage import StoredFile
from sodtrack.web.throttle import LoginThrottle

LOGIN_CSRF_COOKIE: Final = "sodtrack_login_csrf"
CSP: Final = (
    "default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
CSP_HEADER: Final = "content-security-policy"
SECURITY_HEADERS: Final = {
    CSP_HEADER: CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}
MEDIA_TYPES: Final = {
    ".html": "text/html",
    ".htm": "text/html",
    ".css": "text/css",
    ".js": "text/javascript",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".ico": "image/x-icon",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".txt": "text/plain",
}
"""Content types of the files served from folders (fixed, not the machine's mimetypes)."""
REFRESH_S: Final = 2
OUTCOME_WORDS: Final = {
    "would_create": "would be created",
    "would_update": "would be updated",
    "already_existed": "already exists",
    "rejected": "rejected",
    "skipped_dependency": "skipped (behind a rejected row)",
    "failed_transient": "failed (temporary: load again)",
    "created": "created",
    "updated": "updated",
}


class SecurityHeaders:
    """Adds :data:`SECURITY_HEADERS` to every answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                own = message.get("headers", [])
                # A route may set a policy of its own (Data Docs: files.DOCS_CSP); every
                # other header is always ours.
                keep = {CSP_HEADER} & {k.decode().lower() for k, _ in own}
                headers = [
                    (k, v)
                    for k, v in own
                    if k.decode().lower() not in SECURITY_HEADERS or k.decode().lower() in keep
                ]
                headers += [
                    (k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items() if k not in keep
                ]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class Denied(AccountError):
    """Nobody (valid) is signed in: answered 401 (JSON) or a redirect to the sign-in page."""


class Forbidden(AccountError):
    """Signed in, but not allowed (another country's upload, a missing CSRF token): 403."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


class Web:
    """The application's state and its route handlers."""

    def __init__(
        self,
        settings: Settings,
        *,
        emit: Emitter | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.accounts = Accounts(settings.state_url)
        key = (
            settings.web_secret_key.get_secret_value().encode()
            if settings.web_secret_key is not None
            else self.accounts.signing_key()
        )
        self.signer = SessionSigner(key, max_age_s=settings.web_session_hours * 3600, clock=clock)
        self.throttle = LoginThrottle(
            self.accounts.engine,
            max_failures=settings.web_login_max_failures,
            window_s=settings.web_login_window_s,
            clock=clock,
        )
        self.service = UploadService(settings, emit=emit)
        self.templates = Environment(
            loader=PackageLoader("sodtrack.web", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
        )
        self.templates.globals["outcome_words"] = OUTCOME_WORDS

    # ------------------------------------------------------------ who is it

    def _account(self, request: Request) -> tuple[Account, Session | None]:
        """The signed-in account and its session (``None`` for an API token: no CSRF token is
        needed, a browser never sends that header by itself)."""
        header = self.settings.web_trusted_user_header
        if header:
            name = request.headers.get(header)
            if name:
                account = self.accounts.get(name.strip().lower())
                if account is None or account.disabled:
                    raise Denied()
                return account, self.signer.proxy_session(account.name)
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            account = self.accounts.by_token(auth[7:].strip())
            if account is None:
                raise Denied()
            return account, None
        session = self.signer.read(request.cookies.get(SESSION_COOKIE))
        if session is None:
            raise Denied()
        account = self.accounts.get(session.user)
        if account is None or account.disabled:
            raise Denied()
        return account, session

    def _csrf_ok(self, session: Session | None, sent: str | None) -> bool:
        return session is None or csrf_matches(session, sent)

    def _upload_for(self, account: Account, upload_id: str) -> WebUpload:
        record = self.service.get(upload_id)
        if record is None or record.country not in account.countries:
            # Another country's upload is answered as missing: its id tells nothing.
            raise Forbidden("no such upload among your countries")
        return record

    def render(self, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        page = self.templates.get_template(name).render(**context)
        return HTMLResponse(page, status_code=status_code)

    def _secure(self, request: Request) -> bool:
        return self.settings.web_public_https or request.url.scheme == "https"

    # ------------------------------------------------------------ sign-in

    async def login_page(self, request: Request) -> Response:
        return self._login_form(request, None, 200)

    async def login(self, request: Request) -> Response:
        form = await request.form(max_files=0, max_fields=10)
        name = str(form.get("name", "")).strip().lower()
        password = str(form.get("password", ""))
        sent = str(form.get(CSRF_FIELD, ""))
        cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        address = request.client.host if request.client else "-"
        if not cookie or not secrets.compare_digest(cookie.encode(), sent.encode()):
            return self._login_again(request, "The form expired: sign in again.", 400)
        # Counted before the password is checked (the database's count: every process's).
        wait, ticket = await asyncio.to_thread(self.throttle.reserve, name, address)
        if wait > 0:
            return self._login_again(
                request, f"Too many failed sign-ins: try again in {int(wait) + 1} s.", 429
            )
        account = await asyncio.to_thread(self.accounts.verify, name, password)
        if account is None:
            return self._login_again(request, "Wrong name or password.", 401)
        await asyncio.to_thread(self.throttle.succeeded, name, ticket)
        cookie_value, _ = self.signer.issue(account.name)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            cookie_value,
            max_age=int(self.signer.max_age_s),
            httponly=True,
            samesite="lax",
            secure=self._secure(request),
            path="/",
        )
        response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
        return response

    def _login_again(self, request: Request, error: str, status: int) -> Response:
        return self._login_form(request, error, status)

    def _login_form(self, request: Request, error: str | None, status: int) -> Response:
        """The sign-in form with a fresh CSRF token (its cookie scoped to ``/login``)."""
        token = secrets.token_urlsafe(24)
        response = self.render("login.html", status, csrf=token, error=error, sso=False)
        response.set_cookie(
            LOGIN_CSRF_COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=self._secure(request),
            path="/login",
        )
        return response

    async def logout(self, request: Request) -> Response:
        _, session = self._account(request)
        form = await request.form(max_files=0, max_fields=5)
        if not self._csrf_ok(session, str(form.get(CSRF_FIELD, ""))):
            raise Forbidden("the form expired: reload the page")
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    # ------------------------------------------------------------ pages

    def _page(self, request: Request, name: str, status: int = 200, **context: Any) -> Response:
        account, session = self._account(request)
        return self.render(
            name,
            status,
            account=account,
            csrf=session.csrf if session else "",
            countries=[COUNTRIES[c] for c in account.countries],
            **context,
        )

    async def home(self, request: Request) -> Response:
        account, _ = self._account(request)
        return self._page(request, "home.html", history=self._history(account), error=None)

    def _history(self, account: Account) -> list[dict[str, Any]]:
        return [self.service.status(u.upload_id) for u in self.service.history(account.countries)]

    async def upload_form(self, request: Request) -> Response:
        account, session = self._account(request)

        def check_csrf(fields: dict[str, str]) -> None:
            # The body is streamed: the token is checked once the form is in, before
            # anything is kept (a forged upload is read, refused and removed).
            if not self._csrf_ok(session, fields.get(CSRF_FIELD)):
                raise Forbidden("the form expired: reload the page")

        try:
            record, _ = await self.service.receive(
                request.stream(),
                request.headers.get("content-type", ""),
                account,
                check_fields=check_csrf,
            )
        except FileRefused as exc:
            response = self._page(
                request,
                "home.html",
                _refusal_status(exc),
                history=self._history(account),
                error=str(exc),
            )
            if isinstance(exc, FileTooLarge):
                response.headers["connection"] = "close"
            return response
        self.service.start_preview(record.upload_id)
        return RedirectResponse(f"/uploads/{record.upload_id}", status_code=303)

    async def upload_page(self, request: Request) -> Response:
        account, _ = self._account(request)
        record = self._upload_for(account, request.path_params["upload_id"])
        if record.preview_status in ("pending", "failed") and not self.service.tasks.get(
            f"preview:{record.upload_id}"
        ):
            self.service.start_preview(record.upload_id)
        status = self.service.status(record.upload_id)
        preview = self.service.preview(record.upload_id)
        busy = status["preview_status"] in ("pending", "running") or status["load_status"] in (
            "running",
            "announced",
        )
        return self._page(
            request,
            "upload.html",
            upload=status,
            preview=preview,
            refresh=REFRESH_S if busy else None,
        )

    async def load(self, request: Request) -> Response:
        account, session = self._account(request)
        record = self._upload_for(account, request.path_params["upload_id"])
        form = await request.form(max_files=0, max_fields=5)
        if not self._csrf_ok(session, str(form.get(CSRF_FIELD, ""))):
            raise Forbidden("the form expired: reload the page")
        self.service.start_load(record.upload_id, account)
        return RedirectResponse(f"/uploads/{record.upload_id}", status_code=303)

    async def cancel_page(self, request: Request) -> Response:
        account, _ = self._account(request)
        record = self._upload_for(account, request.path_params["upload_id"])
        return self._page(request, "cancel.html", upload=self.service.status(record.upload_id))

    async def cancel(self, request: Request) -> Response:
        account, session = self._account(request)
        record = self._upload_for(account, request.path_params["upload_id"])
        form = await request.form(max_files=0, max_fields=5)
        if not self._csrf_ok(session, str(form.get(CSRF_FIELD, ""))):
            raise Forbidden("the form expired: reload the page")
        if form.get("confirm") != "yes":
            return RedirectResponse(f"/uploads/{record.upload_id}/cancel", status_code=303)
        try:
            result = await self.service.cancel(record.upload_id, account)
        except LeaseHeld:
            return self.render(
                "error.html", 409, message="The upload is being loaded right now: try later."
            )
        except KeyError:
            return self.render("error.html", 409, message="This upload was never loaded.")
        return self._page(
            request, "cancelled.html", upload=self.service.status(record.upload_id), result=result
        )

    async def download(self, request: Request) -> Response:
        """An upload's file: ``results.xlsx`` … (the latest of a page upload, named after the
        file as uploaded), or any file of its outbox folder by its own name (what artifacts
        and ``receipt.json`` link, for uploads from the inbox, a flow run or the command line
        too). Only for accounts holding the upload's country."""
        account, _ = self._account(request)
        upload_id = request.path_params["upload_id"]
        name = request.path_params["name"]
        record = self.service.get(upload_id)
        country = record.country if record is not None else self.service.country_of(upload_id)
        if country is None or country not in account.countries:
            # Another country's upload is answered as missing: its id tells nothing.
            raise Forbidden("no such upload among your countries")
        if record is not None and name in DOWNLOADS:
            found = await asyncio.to_thread(self.service.download, record.upload_id, name)
            filename = f"{Path(record.file_name).stem}.{name}"
        else:
            found = await asyncio.to_thread(self.service.outbox_file, upload_id, name)
            filename = found.name if found is not None else ""
        if found is None:
            return JSONResponse({"error": "no such file (yet)"}, status_code=404)
        return self._stored(found, filename)

    def _stored(self, found: StoredFile, filename: str) -> Response:
        """A stored file as an attachment: from the disk, or streamed from object storage a
        chunk at a time (never whole in memory)."""
        media_type = _media_type(filename)
        if not self.service.outbox.remote:
            return FileResponse(found.location, filename=filename, media_type=media_type)
        quoted = quote(filename)
        disposition = (
            f"attachment; filename*=utf-8''{quoted}"
            if quoted != filename
            else f'attachment; filename="{filename}"'
        )
        return StreamingResponse(
            iterate_in_threadpool(self.service.outbox.chunks(found)),
            media_type=media_type,
            headers={"content-disposition": disposition, "content-length": str(found.size)},
        )

    async def _stored_object(self, root: str, relative: str) -> bytes | None:
        """An object below ``root`` on object storage (reports, Data Docs of a warehouse on
        S3); ``None`` when it is not there or ``relative`` would leave ``root``."""
        url = object_under(root, relative)
        if url is None:
            return None
        return await asyncio.to_thread(read_object, url, endpoint_url=self.settings.s3_endpoint_url)

    async def report(self, request: Request) -> Response:
        """A nightly run's report, ``<reports>/<run_id>.json``: any signed-in account. With
        the warehouse on object storage, read from ``<warehouse>/_reports``."""
        self._account(request)
        name = request.path_params["name"]
        remote = self.settings.output_location("reports")
        if isinstance(remote, str):
            data = await self._stored_object(remote, name) if name.endswith(".json") else None
            if data is None or "/" in name:
                return _not_found()
            return Response(data, media_type="application/json")
        found = file_under(self.settings.data_dir("reports"), name)
        if found is None or found.suffix != ".json":
            return _not_found()
        return FileResponse(found, media_type="application/json")

    async def docs(self, request: Request) -> Response:
        """Data Docs, ``<docs>/<run_id>/…`` (a folder: its ``index.html``): any signed-in
        account; HTML under :data:`~sodtrack.web.files.DOCS_CSP`."""
        self._account(request)
        relative = request.path_params["path"]
        if relative == "" or relative.endswith("/"):
            relative += "index.html"
        remote = self.settings.output_location("docs")
        if isinstance(remote, str):
            return await self._stored_docs(request, remote, relative)
        root = self.settings.data_dir("docs")
        found = file_under(root, relative)
        if found is None and file_under(root, f"{relative}/index.html") is not None:
            return RedirectResponse(f"{request.url.path}/", status_code=307)
        if found is None:
            return _not_found()
        media = _media_type(found.name)
        headers = {CSP_HEADER: DOCS_CSP} if media.startswith("text/html") else None
        return FileResponse(found, media_type=media, headers=headers)

    async def _stored_docs(self, request: Request, root: str, relative: str) -> Response:
        """:meth:`docs` from ``<warehouse>/_docs`` on object storage."""
        data = await self._stored_object(root, relative)
        if data is None and await self._stored_object(root, f"{relative}/index.html") is not None:
            return RedirectResponse(f"{request.url.path}/", status_code=307)
        if data is None:
            return _not_found()
        media = _media_type(relative.rsplit("/", 1)[-1])
        headers = {CSP_HEADER: DOCS_CSP} if media.startswith("text/html") else None
        return Response(data, media_type=media, headers=headers)

    async def template(self, request: Request) -> Response:
        account, _ = self._account(request)
        country = (
            request.path_params.get("country") or request.query_params.get("country") or ""
        ).lower()
        if country not in account.countries:
            raise Forbidden(f"your account does not hold country {country!r}")
        from sodtrack.bulkload.template import catalog_from_api, write_template
        from sodtrack.client import country_client

        async with country_client(self.settings, country) as client:
            catalog = await catalog_from_api(client, country)
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"template-{country}.xlsx"
            await asyncio.to_thread(write_template, path, country, catalog)
            data = path.read_bytes()
        return Response(
            data,
            media_type=_media_type("x.xlsx"),
            headers={
                "content-disposition": f'attachment; filename="sodtrack-template-{country}.xlsx"'
            },
        )

    # ------------------------------------------------------------ JSON twin

    async def api_me(self, request: Request) -> Response:
        account, _ = self._account(request)
        return JSONResponse({"name": account.name, "countries": list(account.countries)})

    async def api_upload(self, request: Request) -> Response:
        account, session = self._account(request)
        if not self._csrf_ok(session, request.headers.get(CSRF_HEADER)):
            raise Forbidden("missing or wrong X-CSRF-Token")
        try:
            record, created = await self.service.receive(
                request.stream(), request.headers.get("content-type", ""), account
            )
        except FileRefused as exc:
            return _refused(exc, api=True)
        self.service.start_preview(record.upload_id)
        body = {**self.service.status(record.upload_id), "created": created}
        return JSONResponse(body, status_code=201 if created else 200)

    async def api_uploads(self, request: Request) -> Response:
        account, _ = self._account(request)
        return JSONResponse(
            [self.service.status(u.upload_id) for u in self.service.history(account.countries)]
        )

    async def api_upload_status(self, request: Request) -> Response:
        account, _ = self._account(request)
        record = self._upload_for(account, request.path_params["upload_id"])
        return JSONResponse(self.service.status(record.upload_id))

    async def api_preview(self, request: Request) -> Response:
        account, _ = self._account(request)
        record = self._upload_for(account, request.path_params["upload_id"])
        preview = self.service.preview(record.upload_id)
        if preview is None:
            if record.preview_status in ("pending", "failed"):
                self.service.start_preview(record.upload_id)
            return JSONResponse(self.service.status(record.upload_id), status_code=202)
        return JSONResponse(preview)

    async def api_load(self, request: Request) -> Response:
        account, session = self._account(request)
        if not self._csrf_ok(session, request.headers.get(CSRF_HEADER)):
            raise Forbidden("missing or wrong X-CSRF-Token")
        record = self._upload_for(account, request.path_params["upload_id"])
        started = self.service.start_load(record.upload_id, account)
        body = {**self.service.status(record.upload_id), "started": started}
        return JSONResponse(body, status_code=202)

    async def api_cancel(self, request: Request) -> Response:
        account, session = self._account(request)
        if not self._csrf_ok(session, request.headers.get(CSRF_HEADER)):
            raise Forbidden("missing or wrong X-CSRF-Token")
        record = self._upload_for(account, request.path_params["upload_id"])
        try:
            result = await self.service.cancel(record.upload_id, account)
        except LeaseHeld as exc:
            return JSONResponse({"error": str(exc)}, status_code=409)
        except KeyError:
            return JSONResponse({"error": "this upload was never loaded"}, status_code=409)
        return JSONResponse(
            {
                "upload_id": record.upload_id,
                "cancelled": result.cancelled,
                "already_cancelled": result.already_cancelled,
                "failed": [{"reference": r, "message": m} for r, m in result.failed],
                "note": result.note,
            }
        )

    async def api_openapi(self, request: Request) -> Response:
        return JSONResponse(OPENAPI)

    async def stylesheet(self, request: Request) -> Response:
        css = (Path(__file__).parent / "static" / "page.css").read_text(encoding="utf-8")
        return Response(css, media_type="text/css")


def _media_type(name: str) -> str:
    if name.endswith(".csv"):
        return "text/csv; charset=utf-8"
    if name.endswith(".xlsx"):
        return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    guessed = MEDIA_TYPES.get(Path(name).suffix.lower(), "application/octet-stream")
    return f"{guessed}; charset=utf-8" if guessed.startswith("text/") else guessed


def _not_found() -> Response:
    return HTMLResponse("Not found", status_code=404)


def _refusal_status(exc: FileRefused) -> int:
    return 413 if isinstance(exc, FileTooLarge) else 400


def _refused(
    exc: FileRefused, *, api: bool, page: Callable[..., HTMLResponse] | None = None
) -> Response:
    """The answer to a refused file. Too large: ``Connection: close`` as well, so the server
    drops the connection instead of reading (and discarding) the rest of the body."""
    status = _refusal_status(exc)
    if api or page is None:
        response: Response = JSONResponse({"error": str(exc)}, status_code=status)
    else:
        response = page("error.html", status, message=str(exc))
    if isinstance(exc, FileTooLarge):
        response.headers["connection"] = "close"
    return response


def proxy_options(settings: Settings) -> dict[str, Any]:
    """The keyword arguments of ``uvicorn.run``/``uvicorn.Config`` that decide whose
    ``X-Forwarded-For`` and ``X-Forwarded-Proto`` are believed: those of a connection from
    ``SODTRACK_WEB_FORWARDED_ALLOW_IPS`` (uvicorn's proxy middleware then takes the client as
    the last address in the header that is not itself a trusted proxy); anyone else's are
    ignored, so a client cannot pick the address it is counted under.

    Always passed explicitly: uvicorn would otherwise read ``FORWARDED_ALLOW_IPS`` from the
    environment, outside our settings. Each IPv4 entry is also given as its IPv4-mapped IPv6
    form (and the other way round): a server listening on ``::`` sees an IPv4 proxy as
    ``::ffff:10.0.0.5``, which uvicorn would not match against ``10.0.0.5``."""
    entries = settings.web_forwarded_allow_ips
    if entries == [TRUST_EVERY_PROXY]:
        return {"proxy_headers": True, "forwarded_allow_ips": TRUST_EVERY_PROXY}
    trusted: list[str] = []
    for entry in entries:
        trusted += [entry, *_mapped_twin(entry)]
    return {"proxy_headers": True, "forwarded_allow_ips": list(dict.fromkeys(trusted))}


def _mapped_twin(entry: str) -> list[str]:
    """The other spelling of an IPv4 address or network: ``10.0.0.5`` ↔ ``::ffff:10.0.0.5``,
    ``10.0.0.0/24`` ↔ ``::ffff:a00:0/120``; nothing for other IPv6 entries."""
    network = ipaddress.ip_network(entry)
    if isinstance(network, ipaddress.IPv4Network):
        mapped = ipaddress.IPv6Network(
            (
                int(ipaddress.IPv6Address(f"::ffff:{network.network_address}")),
                network.prefixlen + 96,
            )
        )
        twin = str(mapped) if "/" in entry else str(mapped.network_address)
        return [twin]
    if network.prefixlen >= 96 and network.network_address.ipv4_mapped is not None:
        v4 = ipaddress.IPv4Network((network.network_address.ipv4_mapped, network.prefixlen - 96))
        return [str(v4) if "/" in entry else str(v4.network_address)]
    return []


def create_web_app(
    settings: Settings,
    *,
    emit: Emitter | None = None,
    clock: Callable[[], float] = time.time,
) -> Starlette:
    """The upload page for ``settings``; ``emit`` announces loads to Prefect (none: loads run
    in this process)."""
    web = Web(settings, emit=emit, clock=clock)

    def guarded(
        handler: Callable[[Request], Awaitable[Response]], *, api: bool
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)
            except Denied:
                if api:
                    return JSONResponse(
                        {"error": "sign in, or send an API token"},
                        status_code=401,
                        headers={"www-authenticate": "Bearer"},
                    )
                return RedirectResponse("/login", status_code=303)
            except Forbidden as exc:
                if api:
                    return JSONResponse({"error": exc.why}, status_code=403)
                return web.render("error.html", 403, message=exc.why)
            except AccountError as exc:  # e.g. a country the account does not hold
                if api:
                    return JSONResponse({"error": str(exc)}, status_code=403)
                return web.render("error.html", 403, message=str(exc))
            except FileRefused as exc:
                if api:
                    return _refused(exc, api=True)
                return _refused(exc, api=False, page=web.render)
            except ObjectStoreError as exc:  # a stored file did not arrive whole: transient
                why = f"object storage did not answer whole ({printable(str(exc))}): try again"
                logging.getLogger("sodtrack.web").warning("%s: %s", request.url.path, why)
                if api:
                    return JSONResponse({"error": why}, status_code=503)
                return web.render("error.html", 503, message=why)

        return endpoint

    def page(path: str, handler: Any, methods: tuple[str, ...] = ("GET",)) -> Route:
        return Route(path, guarded(handler, api=False), methods=list(methods))

    def api(path: str, handler: Any, methods: tuple[str, ...] = ("GET",)) -> Route:
        return Route(path, guarded(handler, api=True), methods=list(methods))

    routes = [
        Route("/login", web.login_page, methods=["GET"]),
        Route("/login", web.login, methods=["POST"]),
        Route("/static/page.css", web.stylesheet, methods=["GET"]),
        page("/logout", web.logout, ("POST",)),
        page("/", web.home),
        page("/uploads", web.upload_form, ("POST",)),
        page("/uploads/{upload_id}", web.upload_page),
        page("/uploads/{upload_id}/load", web.load, ("POST",)),
        page("/uploads/{upload_id}/cancel", web.cancel_page),
        page("/uploads/{upload_id}/cancel", web.cancel, ("POST",)),
        page("/uploads/{upload_id}/files/{name}", web.download),
        page("/template", web.template),
        page("/reports/{name}", web.report),
        page("/docs/{path:path}", web.docs),
        Route("/api/openapi.json", web.api_openapi, methods=["GET"]),
        api("/api/me", web.api_me),
        api("/api/uploads", web.api_uploads),
        api("/api/uploads", web.api_upload, ("POST",)),
        api("/api/uploads/{upload_id}", web.api_upload_status),
        api("/api/uploads/{upload_id}/preview", web.api_preview),
        api("/api/uploads/{upload_id}/load", web.api_load, ("POST",)),
        api("/api/uploads/{upload_id}/cancel", web.api_cancel, ("POST",)),
        api("/api/uploads/{upload_id}/files/{name}", web.download),
        api("/api/template/{country}", web.template),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        web.service.resume()
        try:
            yield
        finally:
            await web.service.shutdown()
            web.service.close()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.web = web
    app.add_middleware(SecurityHeaders)
    return app
