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

Owner-only: stored uploads, their folders and ``receipt.json`` hold customers' personal
data and are created ``0600``/``0700`` on a local filesystem (:mod:`sodtrack.private`); file
names are logged through :func:`sodtrack.textsafe.printable` (a newline in a file name cannot
forge a log line).

Crash safety: every step is redone by the next poll until the file has left the inbox; an
upload registered but not announced is announced again by the next poll (``pending``).

No Prefect import here: the emitter is a plain callable taking the event as JSON.

Modules: :mod:`.completeness` (rules 1-3 above, pure), :mod:`.events` (the event and its
emitter), :mod:`.registry` (once only), :mod:`.watcher` (the poll loop).
"""

from sodtrack.bulkload.inbox.completeness import (
    DEFAULT_MAX_WAIT_S,
    DONE_SUFFIX,
    Fingerprint,
    Stability,
    country_of,
    csv_incomplete_reason,
    incomplete_reason,
    is_candidate,
    zip_incomplete_reason,
)
from sodtrack.bulkload.inbox.events import (
    EVENT_NAME,
    RESOURCE_PREFIX,
    Emitter,
    PrefectEventsEmitter,
    Received,
    event_id_for,
    upload_event,
)
from sodtrack.bulkload.inbox.registry import Registry, inbox_table
from sodtrack.bulkload.inbox.watcher import InboxWatcher

__all__ = [
    "DEFAULT_MAX_WAIT_S",
    "DONE_SUFFIX",
    "EVENT_NAME",
    "RESOURCE_PREFIX",
    "Emitter",
    "Fingerprint",
    "InboxWatcher",
    "PrefectEventsEmitter",
    "Received",
    "Registry",
    "Stability",
    "country_of",
    "csv_incomplete_reason",
    "event_id_for",
    "inbox_table",
    "incomplete_reason",
    "is_candidate",
    "upload_event",
    "zip_incomplete_reason",
]
