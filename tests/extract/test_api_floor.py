"""The run report's API floor (issue #12 goal 1): requests ÷ rate limit, and the run's
duration as a multiple of it, in the report, its JSON and its summary (``make demo`` prints
the summary)."""

from __future__ import annotations

from typing import Any

import pytest

from sodtrack.extract.report import RunReport
from sodtrack.extract.runner import merge_client_stats


def country_stats(
    requests: int, rate: float | None, country: str = "cl", burst: float | None = 40
) -> dict[str, Any]:
    return {
        "requests_total": requests,
        "rate_limit_per_s": rate,
        "rate_limit_burst": burst,
        "country": country,
    }


def report(duration_s: float, client: dict[str, Any]) -> RunReport:
    r = RunReport("run-1", "2026-12-03T12:00:00+00:00", ["cl"], False, "/tmp/wh")
    r.duration_s = duration_s
    r.client = client
    return r


def test_floor_is_requests_over_rate_summed_over_countries() -> None:
    merged = merge_client_stats([country_stats(806, 20.0), country_stats(100, 10.0, country="pe")])
    assert merged["api_floor_s"] == pytest.approx(806 / 20 + 100 / 10)
    assert merged["rate_limit_per_s"] is None  # two rates: no single one to print
    one = merge_client_stats([country_stats(806, 20.0)])
    assert one["api_floor_s"] == pytest.approx(40.3)
    assert one["rate_limit_per_s"] == 20.0


def test_no_floor_without_a_rate_limit() -> None:
    merged = merge_client_stats([country_stats(806, None)])
    assert merged["api_floor_s"] is None
    r = report(12.0, merged)
    assert r.api_floor_ratio is None
    assert r.to_dict()["api_floor_ratio"] is None
    assert "API floor" not in r.summary_markdown()


def test_ratio_in_report_json_and_summary() -> None:
    r = report(131.9, merge_client_stats([country_stats(806, 20.0)]))
    assert r.api_floor_s == pytest.approx(40.3)
    assert r.api_floor_ratio == pytest.approx(131.9 / 40.3)
    assert r.to_dict()["api_floor_ratio"] == pytest.approx(3.273, abs=1e-3)
    assert "806 requests at 20 req/s = 40.3 s" in r.summary_markdown()
    assert "**3.27×** its API floor" in r.summary_markdown()


def test_the_demo_prints_the_first_runs_ratio() -> None:
    from rich.console import Console

    from sodtrack.demo import _show_api_floor

    console = Console(record=True, width=200)
    _show_api_floor(report(131.9, merge_client_stats([country_stats(806, 20.0)])), console)
    text = console.export_text()
    assert "131.9 s for 806 requests" in text
    assert "API floor is 40.3 s: 3.27× the floor" in text
    silent = Console(record=True)
    _show_api_floor(report(5.0, merge_client_stats([country_stats(10, None)])), silent)
    assert silent.export_text() == ""


@pytest.mark.parametrize(
    ("requests", "burst", "meaningful"),
    [
        (2, 40, False),
        (40, 40, False),
        (41, 40, True),
        (806, 40, True),
        (12, 10, True),
        (2, None, False),
        (39, None, False),
        (41, None, True),
    ],
)
def test_a_run_within_the_apis_burst_has_no_floor(
    requests: int, burst: float | None, meaningful: bool
) -> None:
    """Requests that fit in the burst pass at once: the rate never paced them (and the rate
    "learnt" from them is a lower bound of it), so there is no floor to compare with, and
    the report says why instead of a ratio. Without a burst seen, the contract's (40)."""
    merged = merge_client_stats([country_stats(requests, 1.0, burst=burst)])
    r = report(2.8, merged)
    if meaningful:
        assert r.api_floor_s == pytest.approx(requests / 1.0)
        assert r.api_floor_note is None
        assert "its API floor" in r.summary_markdown()
        return
    assert r.api_floor_s is None
    assert r.api_floor_ratio is None
    assert r.to_dict()["api_floor_ratio"] is None
    assert r.api_floor_note is not None
    assert f"{requests} requests within a burst" in r.api_floor_note
    assert "its API floor" not in r.summary_markdown()
    assert "API floor: not meaningful" in r.summary_markdown()


def test_each_country_needs_its_own_requests_beyond_its_burst() -> None:
    """Countries have their own credentials (their own buckets); the flow's per-family
    clients of one country share theirs: their requests add up."""
    per_family = [country_stats(n, 20.0) for n in (30, 6, 10)]  # 46 > 40 together
    assert merge_client_stats(per_family)["api_floor_s"] == pytest.approx(46 / 20)
    two = [country_stats(806, 20.0), country_stats(2, 20.0, country="pe")]
    merged = merge_client_stats(two)
    assert merged["api_floor_s"] is None
    assert "pe: 2 requests" in merged["api_floor_note"]


def test_the_demo_says_an_incremental_runs_floor_is_not_meaningful() -> None:
    from rich.console import Console

    from sodtrack.demo import _show_api_floor

    console = Console(record=True, width=200)
    _show_api_floor(report(2.8, merge_client_stats([country_stats(2, 1.0)])), console, "Incr")
    text = console.export_text()
    assert "Incr: 2.8 s for 2 requests; API floor not meaningful" in text
    assert "×" not in text
