"""LibreOffice for tests: convert files with ``soffice --headless --convert-to``.

Files made by LibreOffice differ from openpyxl's and Excel's (shared strings, styles,
``hidden="false"`` on every row, merged cells...), so the loader is tested on them too.

The ``soffice`` fixture (defined here, imported by ``tests/bulkload/reading/conftest.py`` and
``tests/bulkload/engine/conftest.py``) *skips* a test, saying why, when
LibreOffice is not installed, unless ``SODTRACK_REQUIRE_LIBREOFFICE=1`` is set (CI sets it,
after installing LibreOffice: ``.ci/run``), in which case the test *fails*: a CI run can never
pass by silently skipping them.

Each conversion runs with its own throwaway user profile (``-env:UserInstallation``), so
conversions in parallel test workers never share a profile (a shared one makes the second
``soffice`` hand its work to the first, or fail), and under a timeout that kills the whole
process group (``soffice`` starts ``oosplash`` and ``soffice.bin``).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pytest

REQUIRE_ENV = "SODTRACK_REQUIRE_LIBREOFFICE"
CONVERT_TIMEOUT = 180.0
"""Seconds for one ``soffice`` run (a first start on a loaded CI machine takes a while)."""


class ConversionFailed(AssertionError):
    """``soffice`` did not produce the converted file (its output is in the message)."""


def find_soffice() -> str | None:
    return shutil.which("soffice") or shutil.which("libreoffice")


def require_soffice() -> str:
    """The ``soffice`` executable; else skip, or fail when :data:`REQUIRE_ENV` is ``1``."""
    found = find_soffice()
    if found is not None:
        return found
    reason = "LibreOffice (soffice) is not installed"
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason}, and {REQUIRE_ENV}=1 requires it", pytrace=False)
    pytest.skip(
        f"{reason}: apt-get install --no-install-recommends libreoffice-calc-nogui "
        f"(set {REQUIRE_ENV}=1 to make this a failure)"
    )


def register_marker(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "libreoffice: needs LibreOffice's soffice (skips without it, fails without it when "
        f"{REQUIRE_ENV}=1)",
    )


@pytest.fixture(scope="session")
def soffice() -> str:
    """Path of ``soffice``; skips (or fails, under SODTRACK_REQUIRE_LIBREOFFICE=1) without."""
    return require_soffice()


def convert(
    sources: Sequence[Path],
    target: str,
    outdir: Path,
    *,
    soffice: str,
    infilter: str | None = None,
    timeout: float = CONVERT_TIMEOUT,
) -> list[Path]:
    """Convert ``sources`` in one ``soffice`` run to ``target`` (``xlsx``, ``ods``, ``xls``,
    or ``ext:Filter Name[:options]``) into ``outdir``; returns the converted paths, in order.
    ``infilter`` is the import filter and its options (``CSV:44,34,76,1``: fields split on
    ``,``, text quoted by ``"``, UTF-8, from line 1).

    ``outdir`` must not hold the sources (a conversion to the same format would overwrite
    them).
    """
    outdir.mkdir(parents=True, exist_ok=True)
    if any(s.parent.resolve() == outdir.resolve() for s in sources):
        raise ValueError("convert into another directory than the sources'")
    extension = target.split(":", 1)[0]
    with tempfile.TemporaryDirectory(prefix="sodtrack-lo-profile-") as profile:
        command = [
            soffice,
            f"-env:UserInstallation={Path(profile).as_uri()}",
            "--headless",
            "--norestore",
            "--nolockcheck",
            *([f"--infilter={infilter}"] if infilter else []),
            "--convert-to",
            target,
            "--outdir",
            str(outdir),
            *(str(s) for s in sources),
        ]
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            output, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise ConversionFailed(f"soffice did not finish within {timeout:.0f} s") from None
    converted = [outdir / f"{s.stem}.{extension}" for s in sources]
    missing = [p.name for p in converted if not p.is_file()]
    if process.returncode != 0 or missing:
        text = output.decode("utf-8", errors="replace")
        raise ConversionFailed(
            f"soffice exited {process.returncode}, missing {missing}; its output:\n{text}"
        )
    return converted
