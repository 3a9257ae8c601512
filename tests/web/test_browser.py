"""The upload page in a real browser: Debian's headless Chromium driven by Selenium (Debian's
chromium-driver), the page under real uvicorn on loopback, the simulator behind it.

Sign in, download the template, upload the demo's sample spreadsheet, see the three planted
rejects with their messages, load, watch it finish, download the results and check them,
upload the same file again and see nothing new created, and a user of another country refused.
A screenshot of each step goes to ``test-artifacts/web-browser/`` (gitignored; override with
``SODTRACK_SCREENSHOTS``).

Skips, saying why, without ``chromium`` and ``chromedriver``; fails instead when
``SODTRACK_REQUIRE_CHROMIUM=1`` (``.ci/run`` installs both and sets it).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from sodtrack.client import country_client
from sodtrack.demo import Sample, write_sample
from sodtrack.simulator.testing import serve_in_thread
from sodtrack.web.app import create_web_app

from .conftest import PASSWORD, SIM_TODAY, Site

pytestmark = pytest.mark.slow
REQUIRE_ENV = "SODTRACK_REQUIRE_CHROMIUM"
SHOTS = Path(
    os.environ.get(
        "SODTRACK_SCREENSHOTS",
        Path(__file__).resolve().parents[2] / "test-artifacts" / "web-browser",
    )
)


def _browser_binaries() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium and driver:
        return chromium, driver
    reason = (
        "needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)"
    )
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason}, and {REQUIRE_ENV}=1 requires them", pytrace=False)
    pytest.skip(f"{reason} (set {REQUIRE_ENV}=1 to make this a failure)")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    chromium, driver_path = _browser_binaries()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
    ):
        options.add_argument(arg)
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.downloads = downloads  # type: ignore[attr-defined]
    try:
        yield driver
    finally:
        driver.quit()


def _wait(check: Any, what: str, timeout_s: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _downloaded(folder: Path, suffix: str) -> Path:
    found: Path = _wait(
        lambda: next((p for p in folder.iterdir() if p.name.endswith(suffix)), None),
        f"a downloaded *{suffix}",
    )
    return found


def test_operations_staff_flow_in_chromium(site: Site, browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    async def build() -> Sample:
        async with country_client(site.settings, "cl") as client:
            return await write_sample(
                client, tmp_path / "bookings.xlsx", country="cl", today=SIM_TODAY
            )

    sample = asyncio.run(build())
    SHOTS.mkdir(parents=True, exist_ok=True)
    step = [0]

    def shot(name: str) -> None:
        step[0] += 1
        browser.save_screenshot(str(SHOTS / f"{step[0]:02d}-{name}.png"))

    def sign_in(name: str) -> None:
        browser.get(f"{url}/login")
        browser.find_element(By.ID, "name").send_keys(name)
        browser.find_element(By.ID, "password").send_keys(PASSWORD)
        browser.find_element(By.ID, "sign-in").click()
        _wait(lambda: browser.find_elements(By.ID, "who"), "signed in")

    def upload_sample() -> None:
        browser.get(f"{url}/")
        browser.find_element(By.ID, "file").send_keys(str(sample.path))
        browser.find_element(By.ID, "upload").click()

    with serve_in_thread(create_web_app(site.settings)) as url:
        sign_in("ana")
        shot("signed-in")

        browser.find_element(By.ID, "template-cl").click()
        template = _downloaded(browser.downloads, ".xlsx")
        assert "bookings" in load_workbook(template).sheetnames
        template.unlink()

        upload_sample()
        _wait(lambda: browser.find_elements(By.ID, "load"), "the dry run's Load button")
        shot("preview")
        rejected = browser.find_elements(By.CSS_SELECTOR, "tr.rejected")
        assert len(rejected) == 3
        messages = [r.find_element(By.CSS_SELECTOR, "td.message").text for r in rejected]
        assert all(messages), messages
        assert any("NO-SUCH-SKU-404" in m for m in messages)
        assert browser.find_elements(By.CSS_SELECTOR, "tr.rejected td.error"), "marked cells"
        assert browser.find_element(By.ID, "load").text == f"Load {sample.rows - 3} rows"

        browser.find_element(By.ID, "load").click()
        _wait(lambda: browser.find_elements(By.ID, "outcome"), "the load's outcome")
        shot("loaded")
        counts = browser.find_element(By.ID, "load-counts").text
        assert f"created: {sample.rows - 3}" in counts
        assert "rejected: 3" in counts
        assert "upload it" in browser.find_element(By.ID, "next-step").text
        writes = site.writes()

        browser.find_element(By.ID, "download-results-xlsx").click()
        results = _downloaded(browser.downloads, "results.xlsx")
        sheet = load_workbook(results).worksheets[0]
        assert sheet.max_row == sample.rows + 1

        upload_sample()  # the same file again
        _wait(lambda: browser.find_elements(By.ID, "outcome"), "the same upload's page")
        shot("uploaded-again")
        assert "uploaded 2 times" in browser.page_source
        assert not browser.find_elements(By.ID, "load"), "no second load offered"
        assert site.writes() == writes, "nothing new created"

        browser.delete_all_cookies()
        sign_in("pedro")
        options = [
            o.get_attribute("value")
            for o in browser.find_elements(By.CSS_SELECTOR, "#country option")
        ]
        assert options == ["pe"]
        browser.get(browser.current_url.rstrip("/") + "/uploads/" + _upload_id(site))
        shot("other-country-refused")
        assert "no such upload among your countries" in browser.find_element(By.ID, "error").text


def _upload_id(site: Site) -> str:
    return next(p.name for p in Path(site.settings.uploads).iterdir() if p.name.startswith("upl_"))
