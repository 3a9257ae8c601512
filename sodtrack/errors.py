"""The project's one exception tree: every error Sodtrack raises on purpose is a
:class:`SodtrackError`, and its kind says what a caller does about it::

    SodtrackError                   root: ``except SodtrackError`` catches every deliberate error
    ├── ConfigurationError          a setting is wrong: exit 2, one line naming the setting,
    │   │                           never retried (raised by settings, preflight, the client)
    │   ├── InvalidSetting          a value that does not validate (SODTRACK_ENV=staging)
    │   ├── UnusableBaseUrl         no scheme or host, not the Sodtrack API (token endpoint
    │   │                           answered 404), or unreachable
    │   ├── InsecureTransport       credentials would go over plain http to a remote host
    │   ├── CredentialsRejected     401 on the token endpoint
    │   ├── StateStoreUnavailable   SODTRACK_STATE_URL cannot be connected to
    │   ├── OutputNotWritable       an output folder cannot be created or written
    │   ├── MemoryLimitTooLow       a DuckDB step ran out of the memory limit a setting gave
    │   │                           it (names the setting: raise it)
    │   ├── ColumnSpecError         ``schemas/bulkload/columns.yaml`` is malformed (names the
    │   │                           entry; ``sodtrack.bulkload.columns``)
    │   └── TokenCountryMismatch    (``sodtrack.client.errors``; also an ``AuthError``)
    ├── ApiError                    the API client's tree (``sodtrack.client.errors``): each
    │                               error's ``classification`` is the loader's reaction
    │                               (retry, reconcile, reject)
    ├── InputFileError              an uploaded file cannot be used as it is: ``UnreadableFile``
    │                               (``bulkload.reading.reader``, with ``LimitExceeded`` and
    │                               ``HostileFile``), ``NotACompoundFile``, ``MappingFileError``;
    │                               ``InvalidValue``: one cell cannot be used (a row's issue);
    │                               ``FileRefused`` (``FileTooLarge``): the upload page
    │                               refuses a file unread
    ├── UploadRefused               the ledger refuses this run of an upload: ``LeaseHeld``
    │   │                           (another live worker drives it: try later)
    │   └── UploadMismatch          the upload id names another file or another reading of it
    ├── AccountError                an upload-page account command or sign-in cannot be done
    ├── WarehouseError              ``PublishError`` (``PublishConflict``), ``SchemaMismatch``,
    │                               ``ConversionError`` (``sodtrack.warehouse``)
    ├── ObjectStoreError            object storage did not give what was asked; transient
    │   │                           (``classification`` ``retry``): try the run again later
    │   └── IncompleteObject        an object read back shorter than its size, even after
    │                               re-reads from where it stopped (``sodtrack.objstore``):
    │                               never used as a shorter file
    └── LockTimeout                 a named lock (state store) or the warehouse's publish lock
                                    was not taken in time (also a ``TimeoutError``)

Where an error also had a built-in meaning (``ValueError``, ``RuntimeError``, ``TimeoutError``,
``OSError``)
it keeps it as a second base, so older ``except`` clauses keep catching it. ``str(error)`` is
for people; programs decide by type (and typed attributes such as ``setting``, ``cause``,
``classification``), never by the message's text. No error carries a secret: see
:mod:`sodtrack.client.errors` for how the client keeps credentials out of its exceptions.
"""

from __future__ import annotations

from typing import ClassVar, Literal

Classification = Literal["retry", "reconcile", "reject"]
"""What the loader does with a row an API error stopped."""


class SodtrackError(Exception):
    """Root of every error the project raises on purpose (see the module docstring)."""


class ConfigurationError(SodtrackError):
    """A setting is wrong (see the module docstring); ``str()`` is one line."""

    setting: str
    """The variable(s) to fix, e.g. ``SODTRACK_ENV``."""

    def __init__(self, message: str, *, setting: str = "") -> None:
        super().__init__(message)
        self.setting = setting

    @property
    def line(self) -> str:
        """The message on one line (control characters shown escaped)."""
        text = str(self)
        return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class InvalidSetting(ConfigurationError):
    """A value that does not validate: wrong type, out of range, unknown choice."""


class UnusableBaseUrl(ConfigurationError):
    """The API's base URL is malformed, does not serve the API, or cannot be reached."""


class InsecureTransport(ConfigurationError):
    """Credentials would travel over plain http to a host outside loopback."""


class CredentialsRejected(ConfigurationError):
    """The token endpoint refused the client id and secret (401)."""


class StateStoreUnavailable(ConfigurationError):
    """The state database (watermarks, ledger, locks) cannot be connected to."""


class MemoryLimitTooLow(ConfigurationError):
    """A DuckDB step (the bookings merge, the whole-dataset checks) ran out of the memory
    limit its setting gave it: DuckDB spills what it can, and some operators still need a
    minimum (the checks' grouping of 2.74M compound keys fails at 32 MiB). ``setting`` names
    the variable to raise."""


class OutputNotWritable(ConfigurationError):
    """A folder the command writes into cannot be created or written."""


class ApiError(SodtrackError):
    """Base of every error the API client raises (the tree: :mod:`sodtrack.client.errors`)."""

    default_classification: ClassVar[Classification] = "reject"

    def __init__(self, message: str, *, operation: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.operation = operation

    @property
    def classification(self) -> Classification:
        """What the loader does with the row: ``retry`` later, ``reconcile``, or ``reject``."""
        return self.default_classification

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class InputFileError(SodtrackError):
    """An uploaded file (or its mapping file) cannot be used as it is."""


class UploadRefused(SodtrackError):
    """The ledger refuses to run this upload now (see the subclasses)."""


class LeaseHeld(UploadRefused, RuntimeError):
    """Another live worker is driving this upload."""


class UploadMismatch(UploadRefused, ValueError):
    """The upload id names another file, or the file now reads as another number of rows
    (another mapping or sheet): start a new upload instead."""


class AccountError(SodtrackError):
    """An upload-page account command or sign-in that cannot be done (unknown name, invalid
    name or password, disabled account)."""


class FileRefused(InputFileError):
    """The upload page refuses a file before reading it: too large (counted while it streams
    in), not a CSV/XLSX, or for a country the account does not hold."""


class FileTooLarge(FileRefused):
    """The file passed the size limit while it streamed in (answered 413)."""


class WarehouseError(SodtrackError):
    """The warehouse refuses a write or cannot read what it holds."""


class LockTimeout(SodtrackError, TimeoutError):
    """A lock (a state store's named lock, the warehouse's publish lock) was not taken in time."""


class ObjectStoreError(SodtrackError, OSError):
    """Object storage (an ``s3://`` inbox, uploads, outbox) did not give what was asked.

    Transient by classification: the store, the network or a proxy may answer whole on a
    later try, so a run that meets one fails *to be retried later* (the bulk load: nothing
    loaded, exit ``5``, the flow ``Failed``), never as a loaded file. Also an ``OSError``:
    older ``except OSError`` clauses around reads keep catching it."""

    classification: ClassVar[Classification] = "retry"


class IncompleteObject(ObjectStoreError):
    """An object read back shorter than its size (from the store's HEAD), after ``attempts``
    reads, each resumed at the offset reached: answers cut short, empty or a shorter range
    than asked. ``name`` is the object's last path part (never the whole URL); ``cause`` the
    type name of the last transport failure, if any."""

    def __init__(
        self, name: str, *, size: int, copied: int, attempts: int, cause: str | None = None
    ) -> None:
        self.name = name
        self.size = size
        self.copied = copied
        self.attempts = attempts
        self.cause = cause
        why = f" (last failure: {cause})" if cause else ""
        super().__init__(
            f"{name}: object storage gave {copied} of its {size} bytes after {attempts} "
            f"read(s){why}; nothing was used: try again later"
        )
