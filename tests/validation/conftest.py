"""One GX context and one validation session for the whole test session: importing GX takes
5-20 s and each suite run ~0.3-2 s, so tests share runs through fixtures where they can."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from sodtrack.validation import ValidationSession, new_context, reference_parameters

from .samples import clean_tables


@pytest.fixture(scope="session")
def gx_context() -> Any:
    return new_context()


@pytest.fixture(scope="session")
def session(gx_context: Any) -> ValidationSession:
    return ValidationSession("pytest-validation", context=gx_context)


@pytest.fixture(scope="session")
def cl_tables() -> dict[str, pa.Table]:
    return clean_tables("cl", bookings=12)


@pytest.fixture(scope="session")
def cl_params(cl_tables: dict[str, pa.Table]) -> dict[str, list[str]]:
    return reference_parameters(
        categories=cl_tables["categories"],
        services=cl_tables["services"],
        variants=cl_tables["variants"],
        zones=cl_tables["coverage_zones"],
    )
