"""Parameters filled at run time: plain Python, no GX."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from sodtrack.contract.countries import COUNTRIES
from sodtrack.validation import (
    RowCountPolicy,
    collect_ids,
    country_parameters,
    published_row_count_parameters,
    reference_parameters,
    row_count_parameters,
)
from sodtrack.validation.outcome import jsonable


def test_row_counts_without_previous_catalog_needs_one_row() -> None:
    assert row_count_parameters("services", None) == {
        "row_count_min": 1,
        "row_count_max": None,
        "row_count_warn_min": None,
        "row_count_warn_max": None,
    }
    assert row_count_parameters("bookings", None)["row_count_min"] is None


def test_row_counts_bands_from_previous() -> None:
    # catalog: critical band [-20 %, +200 %], warning band [-5 %, +25 %]
    assert row_count_parameters("services", 1000) == {
        "row_count_min": 800,
        "row_count_max": 3000,
        "row_count_warn_min": 950,
        "row_count_warn_max": 1250,
    }
    # bookings are never deleted: the band bounds growth only, any drop is blocked by the
    # suite's published_row_count floor (defaulting to the previous count)
    bounds = row_count_parameters("bookings", 1000)
    assert (bounds["row_count_min"], bounds["row_count_warn_min"]) == (None, None)
    assert (bounds["row_count_max"], bounds["row_count_warn_max"]) == (4000, 1500)
    assert published_row_count_parameters(1000) == {"published_row_count": 1000}
    assert published_row_count_parameters(None) == {"published_row_count": None}
    with pytest.raises(ValueError, match=">= 0"):
        published_row_count_parameters(-1)
    # the changes log follows activity: no bounds
    assert set(row_count_parameters("booking_changes", 1000).values()) == {None}


def test_row_counts_edge_cases() -> None:
    bounds = row_count_parameters("categories", 0)
    assert bounds["row_count_min"] == 1
    assert bounds["row_count_max"] is None
    custom = RowCountPolicy(max_drop=0.5, max_growth=None, warn_drop=None, warn_growth=0.1)
    assert row_count_parameters("categories", 9, custom) == {
        "row_count_min": 4,
        "row_count_max": None,
        "row_count_warn_min": None,
        "row_count_warn_max": 10,
    }
    with pytest.raises(ValueError, match=">= 0"):
        row_count_parameters("categories", -1)


@pytest.mark.parametrize("code", sorted(COUNTRIES))
def test_country_parameters_follow_the_countries_table(code: str) -> None:
    country = COUNTRIES[code]
    params = country_parameters(code.upper())
    assert params == {
        "country_codes": [code],
        "currency_codes": [country.currency],
        "postal_code_regex": country.postal_code_pattern,
    }
    assert re.search(params["postal_code_regex"], country.postal_code_example)


def test_collect_ids_over_tables_chunks_and_strings() -> None:
    a = pa.table({"id": ["svc_2", "svc_1", None]})
    b = pa.table({"id": ["svc_3", "svc_1"]})
    assert collect_ids(a) == ["svc_1", "svc_2"]
    assert collect_ids([a, b]) == ["svc_1", "svc_2", "svc_3"]
    assert collect_ids(["z", "y", "z"]) == ["y", "z"]
    assert reference_parameters(services=[a, b], zones=["zone_1"]) == {
        "service_ids": ["svc_1", "svc_2", "svc_3"],
        "zone_ids": ["zone_1"],
    }


def test_jsonable_normalises_gx_values() -> None:
    when = datetime(2026, 12, 3, 13, 0, tzinfo=UTC)
    value = {
        "d": Decimal("-2.50"),
        "nan": float("nan"),
        "np": np.int64(3),
        "ts": pd.Timestamp(when),
        "nat": pd.NaT,
        "dt64": np.datetime64("2026-12-03T13:00:00"),
        "pair": (when, when + timedelta(hours=1)),
        "long": list(range(60)),
    }
    out = jsonable(value)
    assert out["d"] == "-2.50"
    assert out["nan"] is None
    assert out["np"] == 3
    assert out["ts"].startswith("2026-12-03T13:00:00")
    assert out["nat"] is None
    assert out["dt64"].startswith("2026-12-03T13:00:00")
    assert out["pair"][0] == when.isoformat()
    assert len(out["long"]) == 51
    assert out["long"][-1] == "… 10 more"
