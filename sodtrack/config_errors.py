"""Moved: the configuration errors are a branch of the project's one exception tree,
:mod:`sodtrack.errors`. This name only re-exports them for code written before the move;
import from :mod:`sodtrack.errors`."""

from sodtrack.errors import (
    ConfigurationError,
    CredentialsRejected,
    InsecureTransport,
    InvalidSetting,
    OutputNotWritable,
    StateStoreUnavailable,
    UnusableBaseUrl,
)

__all__ = [
    "ConfigurationError",
    "CredentialsRejected",
    "InsecureTransport",
    "InvalidSetting",
    "OutputNotWritable",
    "StateStoreUnavailable",
    "UnusableBaseUrl",
]
