"""The run report's API floor (issue #12 goal 1): requests ÷ rate limit, and the run's
duration as a multiple of it, in the report, its JSON and its summary (``make demo`` prints
the summary)."""

from __future__ import annotations

from typing import Any

import pytest

from sodtrack.extract.report import RunReport
from sodtrack.extract.runner import merge_client_stats


def country_stats(requests: int, rate: float | None) -> dict[str, Any]:
    return {"requests_total": requests, "rate_limit_per_s": rate}


def report(duration_s: float, client: dict[str, Any]) -> RunReport:
    r = RunReport("run-1", "2026-12-03T12:00:00+00:00", ["cl"], False, "/tmp/wh")
    r.duration_s = duration_s
    r.client = client
    return r


def test_floor_is_requests_over_rate_summed_over_countries() -> None:
    merged = merge_client_stats([country_stats(806, 20.0), country_stats(100, 10.0)])
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
