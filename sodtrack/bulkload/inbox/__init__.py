"""The upload inbox: spreadsheets dropped by operations become one bulk load each.

``sodtrack-etl watch`` runs :class:`InboxWatcher` in a loop. Each poll lists the inbox (a
folder by default; any fsspec URL, e.g. ``s3://bucket/inbox``, works the same) and takes the
files that are complete:

* **complete** = all of:

  1. a spreadsheet name (``.xlsx``, ``.xlsm``, ``.csv``; not a dotfile, not an Office lock
     file ``~$x.xlsx``, not ``.part``/``.tmp``/``.crdownload``…): a writer that writes
     under such a name and renames into place at the end is never seen half-way;
  2. **stable**: its size and modification stamp were the same at two consecutive polls at
     least ``settle_s`` apart (a file still being written changes between polls);
  3. **whole by its content** (:func:`incomplete_reason`), because a copy can pause longer
     than any settle time: an XLSX/XLSM must be a zip whose end-of-central-directory
     record and central directory are present and whose members start where the directory
     says (a zip is written front to back and its directory last, so a cut or a
     pre-allocated, not yet filled file has none); a CSV must end with a line end (in its
     encoding: UTF-8/CP-1252, or UTF-16/32 by their BOM), as every spreadsheet program
     writes it. Parsing stays the reader's job: this is a check of the last bytes.

  A stable file that does not look whole **waits** (it is not rejected; logged once) until
  it has been unchanged for ``max_wait_s`` (by this watcher's clock, or by its modification
  time, so ``--once`` under cron works too): then it is taken, and the reader answers for it
  (a cut CSV record is refused as ``file_truncated``, a cut zip as an unreadable file).
  A writer may also say "done" itself: ``<name>.done`` beside the file (any content) makes
  it complete once stable, whatever its content; the marker is removed with the file.

  Limit: a CSV copy that pauses exactly after a line end, for longer than the settle time,
  looks whole; writers that can pause should rename into place or write a ``.done`` marker.
* **country** = the sub-folder: ``<inbox>/cl/bookings.xlsx`` is for Chile; a file at the top
  of the inbox is for the default country (``SODTRACK_COUNTRY``). A file in a folder that is
  not a country code is left where it is (logged once).
* **check only** = a ``check/`` folder: ``<inbox>/cl/check/bookings.xlsx`` (or
  ``<inbox>/check/x.xlsx`` for the default country) is announced with ``check_only: true``
  and the ``bulk-load`` run is a dry run (every check, the same results file, nothing
  created). Its upload id is the dry run's (``upl_cl_…-dry``), so checking a file never
  stops the same file from being loaded for real later.

A complete file is copied to ``<uploads>/<upload_id>/<name>`` while its SHA-256 is computed,
registered, removed from the inbox, and announced by ``emit`` (the ``sodtrack-etl watch``
command posts a Prefect event ``sodtrack.upload.received``; a deployment trigger starts the
``bulk-load`` flow with the stored path). ``upload_id`` is the load ledger's id of
``(sha256, country)``: the id operations see in the results file is the one of the upload
folder. The load's results and rejects land in ``<outbox>/<upload_id>/``, beside the inbox.

Once only. The registry (table ``sodtrack_inbox`` in the state store's database: SQLite by
default, PostgreSQL for several watchers or machines) holds one row per upload id: the same
bytes dropped again for the same country are recognised, removed from the inbox and not
loaded again (the row counts the drops; ``receipt.json`` in the outbox says so). The event id
is a UUID5 of the upload id, so an event re-sent after a crash between "sent" and "recorded"
is de-duplicated by the Prefect server, and even a second run would resume the same upload in
the load ledger and create nothing twice.

What the watcher says. It logs each event Prefect accepted, then the flow run it started
(found by its name, :func:`bulk_load_run_name`, through ``lookup``: the ``sodtrack-etl watch``
command asks the Prefect API; a run takes that name when it starts on a worker) with its
link, and that run's final state; ``receipt.json`` gets the same (``flow_run``: id, name, url,
state, message) as soon as each is known. Only uploads announced since the watcher started
are followed.

Owner-only: stored uploads, their folders and ``receipt.json`` hold customers' personal
data and are created ``0600``/``0700`` on a local filesystem (:mod:`sodtrack.private`); on
object storage they carry no ACL of their own (as private as the bucket; the endpoint of an
S3-compatible server is ``SODTRACK_S3_ENDPOINT_URL``, credentials never in a URL:
:mod:`sodtrack.objstore`); file
names are logged through :func:`sodtrack.textsafe.printable` (a newline in a file name cannot
forge a log line).

Crash safety: every step is redone by the next poll until the file has left the inbox; an
upload registered but not announced is announced again by the next poll (``pending``).

No Prefect import here: the emitter is a plain callable taking the event as JSON.

Modules: :mod:`.completeness` (rules 1-3 above, pure), :mod:`.events` (the event and its
emitter), :mod:`.registry` (once only), :mod:`.watcher` (the poll loop).
"""

from sodtrack.bulkload.inbox.completeness import (
    CHECK_FOLDER,
    DEFAULT_MAX_WAIT_S,
    DONE_SUFFIX,
    Fingerprint,
    Stability,
    country_of,
    csv_incomplete_reason,
    incomplete_reason,
    is_candidate,
    place_of,
    zip_incomplete_reason,
)
from sodtrack.bulkload.inbox.events import (
    EVENT_NAME,
    FINAL_STATES,
    RESOURCE_PREFIX,
    Emitter,
    PrefectEventsEmitter,
    PrefectRunLookup,
    Received,
    RunInfo,
    RunLookup,
    bulk_load_run_name,
    event_id_for,
    upload_event,
)
from sodtrack.bulkload.inbox.registry import Registry, inbox_table
from sodtrack.bulkload.inbox.watcher import InboxWatcher

__all__ = [
    "CHECK_FOLDER",
    "DEFAULT_MAX_WAIT_S",
    "DONE_SUFFIX",
    "EVENT_NAME",
    "FINAL_STATES",
    "RESOURCE_PREFIX",
    "Emitter",
    "Fingerprint",
    "InboxWatcher",
    "PrefectEventsEmitter",
    "PrefectRunLookup",
    "Received",
    "Registry",
    "RunInfo",
    "RunLookup",
    "Stability",
    "bulk_load_run_name",
    "country_of",
    "csv_incomplete_reason",
    "event_id_for",
    "inbox_table",
    "incomplete_reason",
    "is_candidate",
    "place_of",
    "upload_event",
    "zip_incomplete_reason",
]
