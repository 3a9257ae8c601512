"""``sodtrack-etl watch``: the long-running inbox watcher (see :mod:`sodtrack.inbox`).

Registered on the ``sodtrack-etl`` app by ``sodtrack/cli.py``. It needs a Prefect server to
announce uploads to: ``PREFECT_API_URL`` (environment or the active Prefect profile), with
``PREFECT_API_KEY`` or ``PREFECT_API_AUTH_STRING`` when the server wants them.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Annotated, Any

import typer

EXIT_NO_API = 2


def _prefect_api() -> tuple[str | None, str | None, str | None]:
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


def watch(
    inbox: Annotated[
        str | None, typer.Option(help="Inbox folder or fsspec URL (default SODTRACK_INBOX).")
    ] = None,
    uploads: Annotated[
        str | None, typer.Option(help="Where uploads are kept (default SODTRACK_UPLOADS).")
    ] = None,
    outbox: Annotated[
        str | None, typer.Option(help="Where results land (default SODTRACK_OUTBOX).")
    ] = None,
    interval: Annotated[float, typer.Option(help="Seconds between polls.")] = 2.0,
    settle: Annotated[
        float, typer.Option(help="Seconds a file must stay unchanged before it is taken.")
    ] = 1.0,
    max_wait: Annotated[
        float,
        typer.Option(
            help="Seconds a stable file that does not look whole (a zip without its "
            "directory, a CSV without a final line end) waits before it is taken anyway."
        ),
    ] = 900.0,
    once: Annotated[
        bool, typer.Option("--once", help="Poll twice (settle apart) and exit: for cron.")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Watch the upload inbox: each new spreadsheet is stored under an upload id and a
    ``sodtrack.upload.received`` event starts the ``bulk-load`` deployment on Prefect."""
    from sodtrack.cli import _configure
    from sodtrack.inbox import InboxWatcher, PrefectEventsEmitter, Registry
    from sodtrack.textsafe import printable

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    overrides: dict[str, Any] = {
        k: v for k, v in (("inbox", inbox), ("uploads", uploads), ("outbox", outbox)) if v
    }
    # Settings, state database and the three folders checked up front (exit 2, one line);
    # the watcher never talks to the Sodtrack API itself, the flows it starts do.
    settings, _ = _configure(
        overrides=overrides,
        api=False,
        outputs_of=lambda s: [
            (s.inbox, "--inbox" if inbox else "SODTRACK_INBOX"),
            (s.uploads, "--uploads" if uploads else "SODTRACK_UPLOADS"),
            (s.outbox, "--outbox" if outbox else "SODTRACK_OUTBOX"),
        ],
    )
    api_url, api_key, auth_string = _prefect_api()
    if not api_url:
        typer.echo(
            "PREFECT_API_URL is not set: the watcher announces uploads to a Prefect server "
            "(e.g. export PREFECT_API_URL=http://127.0.0.1:4200/api)",
            err=True,
        )
        raise typer.Exit(EXIT_NO_API)
    emitter = PrefectEventsEmitter(api_url, api_key=api_key, auth_string=auth_string)
    registry = Registry(settings.state_url)
    watcher = InboxWatcher(
        inbox=settings.inbox,
        uploads=settings.uploads,
        outbox=settings.outbox,
        default_country=settings.country,
        registry=registry,
        emit=emitter,
        settle_s=settle,
        max_wait_s=max_wait,
    )
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        if once:
            watcher.poll()
            stop.wait(settle)
            for received in watcher.poll():
                name = printable(received.file_name)  # a newline in a name forges no line
                typer.echo(f"{received.upload_id}\t{received.country}\t{name}")
        else:
            watcher.run(interval_s=interval, stop=stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        emitter.close()
        registry.close()
