"""The project's one exception tree (:mod:`sodtrack.errors`): every exception class the
library defines is a :class:`SodtrackError`, keeps the built-in meaning it had, and is defined
once (no two classes of one name)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections import defaultdict

import pytest

import sodtrack
from sodtrack import errors
from sodtrack.client import errors as client_errors

OUTSIDE_THE_TREE = ("sodtrack.simulator",)
"""The simulator is the fake API server: its errors are HTTP answers, not ours."""


def _library_exceptions() -> list[type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(sodtrack.__path__, "sodtrack."):
        if info.name.startswith(OUTSIDE_THE_TREE) or info.name.endswith(".__main__"):
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if (
                inspect.isclass(obj)
                and issubclass(obj, BaseException)
                and obj.__module__ == info.name
                and not name.startswith("_")
            ):
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return list(found.values())


def test_every_library_exception_is_a_sodtrack_error() -> None:
    classes = _library_exceptions()
    assert len(classes) > 30  # the walk found the tree
    outside = [c.__qualname__ for c in classes if not issubclass(c, errors.SodtrackError)]
    assert outside == []


def test_one_class_per_name() -> None:
    by_name: dict[str, list[str]] = defaultdict(list)
    for c in _library_exceptions():
        by_name[c.__name__].append(c.__module__)
    assert {n: m for n, m in by_name.items() if len(m) > 1} == {}


@pytest.mark.parametrize(
    ("kind", "builtin"),
    [
        (errors.LockTimeout, TimeoutError),
        (errors.LeaseHeld, RuntimeError),
        (errors.UploadMismatch, ValueError),
        ("sodtrack.bulkload.reading.headers.MappingFileError", ValueError),
        ("sodtrack.bulkload.reading.cfb.NotACompoundFile", ValueError),
        ("sodtrack.warehouse.publish.PublishError", RuntimeError),
        ("sodtrack.warehouse.writer.SchemaMismatch", ValueError),
        ("sodtrack.warehouse.convert.ConversionError", ValueError),
    ],
)
def test_older_except_clauses_keep_their_meaning(kind: type | str, builtin: type) -> None:
    if isinstance(kind, str):
        module, _, name = kind.rpartition(".")
        kind = getattr(importlib.import_module(module), name)
    assert isinstance(kind, type)
    assert issubclass(kind, builtin)
    assert issubclass(kind, errors.SodtrackError)


def test_the_branches() -> None:
    assert issubclass(client_errors.RetryableError, errors.ApiError)
    assert issubclass(client_errors.TokenCountryMismatch, errors.ConfigurationError)
    assert issubclass(client_errors.TokenCountryMismatch, client_errors.AuthError)
    assert not issubclass(errors.ConfigurationError, errors.ApiError)  # `except ApiError`
    assert not issubclass(errors.ApiError, errors.ConfigurationError)  # kept its meaning
    mismatch = client_errors.TokenCountryMismatch(host="h", found="pe", expected="cl")
    assert mismatch.setting == "SODTRACK_BASE_URL"
    assert mismatch.classification == "reject"
    assert "'pe'" in mismatch.line
