"""Configuration errors: a setting is wrong, nothing can run until a person fixes it.

One tree, raised by :mod:`sodtrack.settings` (values), :mod:`sodtrack.preflight` (the checks
every command and flow entry runs before it writes anything) and the client (a token for the
wrong country)::

    ConfigurationError              exit 2, one line naming the setting; never retried
    ├── InvalidSetting              a value that does not validate (SODTRACK_ENV=staging)
    ├── UnusableBaseUrl             no scheme or host, not the Sodtrack API (token endpoint
    │                               answered 404), or unreachable
    ├── InsecureTransport           credentials would go over plain http to a remote host
    ├── CredentialsRejected         401 on the token endpoint
    ├── TokenCountryMismatch        the token's ``country`` claim is not the country asked
    │                               for (``sodtrack.client.errors``: also an ``AuthError``)
    ├── StateStoreUnavailable       SODTRACK_STATE_URL cannot be connected to
    └── OutputNotWritable           an output folder cannot be created or written

``str(error)`` is the one line a person reads: it names the variable and says what is wrong,
never a secret's value. ``setting`` names the variable(s) for programs. Callers never look at
the message's text to decide anything: the type says it all.
"""

from __future__ import annotations


class ConfigurationError(Exception):
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


class OutputNotWritable(ConfigurationError):
    """A folder the command writes into cannot be created or written."""
