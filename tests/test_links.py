"""The URL building of :mod:`sodtrack.links` (pure) and its setting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from sodtrack.links import PublicLinks
from sodtrack.settings import Settings

PUBLIC = "https://sodtrack.example.org/ops"


def links(tmp_path: Path, public: str | None = PUBLIC) -> PublicLinks:
    return PublicLinks(
        public,
        reports=tmp_path / "data" / "reports",
        docs=tmp_path / "data" / "docs",
        outbox=tmp_path / "outbox",
    )


def test_served_files_link_the_page(tmp_path: Path) -> None:
    made = links(tmp_path)
    assert made.public
    assert (
        made.to(tmp_path / "data" / "reports" / "nightly-2026-12-03.json")
        == f"{PUBLIC}/reports/nightly-2026-12-03.json"
    )
    assert (
        made.to(tmp_path / "data" / "docs" / "run-1-cl" / "validations" / "a b#c.html")
        == f"{PUBLIC}/docs/run-1-cl/validations/a%20b%23c.html"
    )
    assert (
        made.to(tmp_path / "outbox" / "upl_cl_1" / "bookings.upl_cl_1.results.xlsx")
        == f"{PUBLIC}/uploads/upl_cl_1/files/bookings.upl_cl_1.results.xlsx"
    )
    # The same folder by another spelling is the same folder.
    spelled = tmp_path / "data" / "x" / ".." / "reports" / "r.json"
    assert made.to(spelled) == f"{PUBLIC}/reports/r.json"


def test_a_trailing_slash_on_the_base_is_not_doubled(tmp_path: Path) -> None:
    made = links(tmp_path, PUBLIC + "/")
    assert made.to(tmp_path / "data" / "reports" / "r.json") == f"{PUBLIC}/reports/r.json"


def test_files_the_page_does_not_serve_stay_file_uris(tmp_path: Path) -> None:
    made = links(tmp_path)
    for path in (
        tmp_path / "elsewhere" / "results.xlsx",  # an outbox given to one run only
        tmp_path / "data" / "reports" / "old" / "r.json",  # reports are not nested
        tmp_path / "outbox" / "upl_cl_1" / "deeper" / "x.csv",  # an upload's folder is flat
        tmp_path / "outbox" / "receipt.json",
        tmp_path / "data" / "docs",
    ):
        assert made.to(path) == path.resolve().as_uri(), path


def test_unset_keeps_file_uris(tmp_path: Path) -> None:
    made = links(tmp_path, None)
    assert not made.public
    path = tmp_path / "outbox" / "upl_cl_1" / "r.xlsx"
    assert made.to(path) == path.resolve().as_uri()
    assert made.to(path).startswith("file://")


def test_markdown_link_escapes_its_text(tmp_path: Path) -> None:
    made = links(tmp_path)
    path = tmp_path / "data" / "reports" / "r.json"
    assert made.markdown(path) == f"[r.json]({PUBLIC}/reports/r.json)"
    assert made.markdown(path, "a [b]") == f"[a \\[b\\]]({PUBLIC}/reports/r.json)"


def test_the_setting(tmp_path: Path) -> None:
    base: dict[str, Any] = {"client_id": "c", "warehouse": str(tmp_path / "data" / "warehouse")}
    settings = Settings(**base, web_public_url=" https://ops.example.org/sodtrack/ ")
    assert settings.web_public_url == "https://ops.example.org/sodtrack"
    made = PublicLinks.from_settings(settings)
    assert made.reports == tmp_path / "data" / "reports"
    assert made.docs == tmp_path / "data" / "docs"
    assert Settings(**base, web_public_url="").web_public_url is None
    for bad in ("ops.example.org", "ftp://x", "https://x/?a=1", "javascript:alert(1)"):
        with pytest.raises(ValidationError):
            Settings(**base, web_public_url=bad)
