"""A command-line run (``sodtrack-etl extract``: :func:`run_extraction`) with its report and
Data Docs on object storage, as the Prefect tasks keep them for a warehouse on S3: the report
and the whole site go up to the store (a real S3-compatible server on loopback), nothing is
left in a local ``data/`` folder nor in the temporary folder the site was built in."""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from s3server import S3Server, moto_server

from sodtrack import objstore
from sodtrack.extract import ExtractionOptions, run_extraction
from sodtrack.simulator.app import create_app

from .helpers import COUNTRY, Env, extract_config


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with moto_server() as server:
        yield server


def test_a_command_line_run_keeps_its_report_and_docs_on_object_storage(
    s3: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in s3.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)  # a stray local data/ folder would land here
    before = set(Path(tempfile.gettempdir()).glob("sodtrack-docs-*"))
    store = f"s3://{s3.new_bucket()}/warehouse"
    env = Env(tmp_path / "env", create_app(extract_config(bookings=50)))
    options = ExtractionOptions(
        countries=(COUNTRY,),
        datasets=("categories",),
        docs_dir=f"{store}/_docs",
        reports_dir=f"{store}/_reports",
        s3_endpoint_url=s3.endpoint,
    )
    report = asyncio.run(
        run_extraction(
            options, warehouse=env.warehouse, store=env.store, client_factory=env.factory()
        )
    )
    assert report.success, report.to_dict()
    assert report.report_path == f"{store}/_reports/{report.run_id}.json"
    kept = objstore.read_object(report.report_path, endpoint_url=s3.endpoint)
    assert kept is not None
    assert json.loads(kept)["run_id"] == report.run_id
    assert report.docs_path is not None
    assert report.docs_path.startswith(f"{store}/_docs/")
    assert report.docs_path.endswith("/index.html")
    index = objstore.read_object(report.docs_path, endpoint_url=s3.endpoint)
    assert index is not None
    assert b"<html" in index.lower()
    assert not (tmp_path / "data").exists()
    assert set(Path(tempfile.gettempdir()).glob("sodtrack-docs-*")) == before
