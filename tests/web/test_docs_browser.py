"""Real Data Docs (built by GX from a real validation) served by the page under real uvicorn,
opened in Debian's headless Chromium after signing in: the pages render and the browser
reports no Content-Security-Policy violation under :data:`~sodtrack.web.files.DOCS_CSP`; the
same pages under the page's strict script-free policy do report violations (the check can
fail). The machine has no internet: CDN assets fail as network errors, never as CSP ones.

Skips, saying why, without ``chromium`` and ``chromedriver``; fails instead when
``SODTRACK_REQUIRE_CHROMIUM=1`` (``.ci/run`` sets it).
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sodtrack.simulator.testing import serve_in_thread
from sodtrack.validation import ValidationSession, new_context, reference_parameters
from sodtrack.web.app import CSP, create_web_app

from .conftest import PASSWORD, Site
from .test_browser import _browser_binaries

pytestmark = pytest.mark.slow
RUN_ID = "nightly-2026-12-03-cl-catalog"


@pytest.fixture
def chromium() -> Iterator[Any]:
    chromium_path, driver_path = _browser_binaries()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium_path
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _build_docs(docs_root: Path) -> list[Path]:
    """Data Docs of a real validation of the ``variants`` dataset: the index and its pages."""
    # The validation tests' clean sample (imported by name: mypy checks that file once, as
    # part of its own package).
    samples = importlib.import_module("tests.validation.samples")
    tables = samples.clean_tables("cl", bookings=12)
    params = reference_parameters(
        categories=tables["categories"],
        services=tables["services"],
        variants=tables["variants"],
        zones=tables["coverage_zones"],
    )
    session = ValidationSession(RUN_ID, context=new_context(), docs_dir=docs_root)
    outcome = session.validate("variants", tables["variants"], country="cl", parameters=params)
    assert outcome.success
    index = session.build_docs()
    assert index is not None
    pages = sorted((index.parent / "validations").rglob("*.html"))
    assert pages, "GX wrote no validation page"
    return [index, *pages]


GX_LOGO = "https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/"
"""GX's logo (and its timestamped navbar image): blocked on purpose (``img-src``), so that
opening a report does not tell a third party who reads it; nothing else needs it."""


def _csp_violations(driver: Any) -> list[str]:
    """The browser's CSP violation messages, but for the GX logo blocked on purpose."""
    return [
        message
        for e in driver.get_log("browser")
        if "Content Security Policy" in (message := str(e["message"]))
        and not (f"image '{GX_LOGO}" in message and "img-src" in message)
    ]


def test_data_docs_render_in_chromium_under_their_policy(
    site: Site, chromium: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from selenium.webdriver.common.by import By

    docs_root = site.settings.data_dir("docs")
    pages = _build_docs(docs_root)
    paths = ["/docs/" + p.relative_to(docs_root.resolve()).as_posix() for p in pages]

    with serve_in_thread(create_web_app(site.settings)) as url:
        chromium.get(f"{url}{paths[0]}")  # signed out: the sign-in page
        assert chromium.current_url == f"{url}/login"
        chromium.find_element(By.ID, "name").send_keys("pedro")  # any country may read docs
        chromium.find_element(By.ID, "password").send_keys(PASSWORD)
        chromium.find_element(By.ID, "sign-in").click()
        deadline = time.monotonic() + 30
        while not chromium.find_elements(By.ID, "who") and time.monotonic() < deadline:
            time.sleep(0.1)
        chromium.get_log("browser")  # drop what the sign-in logged

        for path in paths:
            chromium.get(f"{url}{path}")
            assert chromium.current_url == f"{url}{path}"
            body = chromium.find_element(By.TAG_NAME, "body").text
            # The index's table is filled by bootstrap-table, from a CDN: offline, it is
            # empty; a validation page is server-rendered and names its dataset.
            assert ("Data Docs" if path == paths[0] else "variants") in body, path
            # Sandboxed: the page's scripts run in an opaque origin, not the upload page's.
            assert chromium.execute_script("return window.origin") == "null", path
            violations = _csp_violations(chromium)
            assert violations == [], (path, violations)

        # The same pages under the page's own script-free policy: the browser objects, so
        # the check above is one that can fail.
        monkeypatch.setattr("sodtrack.web.app.DOCS_CSP", CSP)
        chromium.get(f"{url}{paths[1]}")
        assert _csp_violations(chromium), "the strict policy blocks GX's inline scripts"
