"""A pre-check that cannot be read fails only the rows it concerns (issue #10, item 6).

The simulator in-process behind a transport that spoils, for every attempt, the answers of
one kind of check for a seeded random subset of its keys (coverage by postal code, variants by
service, availability by zone): cut-short, empty or HTML ``200`` bodies, or ``503``. Those rows
end ``failed_transient`` with a message naming the check; every other row is created; a re-run
with the network healthy creates the rest, each exactly once.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from starlette.applications import Starlette

from bulkload.helpers import (
    SIM_TODAY,
    assert_every_row_once,
    assert_matches_store,
    assert_no_duplicates,
    sim_client,
)
from sodtrack.bulkload import ParsedUpload, read_upload
from sodtrack.bulkload.engine.catalog import Catalog, Coverage
from sodtrack.bulkload.engine.ledger import Ledger
from sodtrack.bulkload.engine.run import run_upload
from sodtrack.bulkload.outcomes import UploadResult
from sodtrack.bulkload.synth import synthesize_upload
from sodtrack.client import Credentials, RetryPolicy, SodtrackClient
from sodtrack.contract.limits import API_PREFIX
from sodtrack.simulator.testing import SimulatorTransport

Spoil = Callable[[httpx.Request], bool]


class SpoilingTransport(httpx.AsyncBaseTransport):
    """Forwards to the simulator; answers the requests ``spoil`` picks with a bad answer."""

    def __init__(self, app: Starlette, rnd: random.Random) -> None:
        self.inner = SimulatorTransport(app)
        self.rnd = rnd
        self.spoil: Spoil = lambda _r: False
        self.spoiled = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not self.spoil(request):
            return await self.inner.handle_async_request(request)
        self.spoiled += 1
        kind = self.rnd.choice(["cut", "empty", "html", "503"])
        if kind == "cut":
            return httpx.Response(200, content=b'{"data": [{"id": "x", "act')
        if kind == "empty":
            return httpx.Response(200, content=b"")
        if kind == "html":
            return httpx.Response(200, content=b"<html><body>Gateway</body></html>")
        return httpx.Response(503, content=b"<html>503 Service Unavailable</html>")

    async def aclose(self) -> None:
        await self.inner.aclose()


def _client(transport: httpx.AsyncBaseTransport) -> SodtrackClient:
    return SodtrackClient(
        httpx.AsyncClient(transport=transport),
        base_url="http://sim",
        country="cl",
        credentials=Credentials("sim-client", SecretStr("sim-secret")),
        retry=RetryPolicy(max_attempts=3, base_delay_s=0.001, max_delay_s=0.002),
        owns_http=True,
    )


async def _parsed(app: Starlette, path: Path, seed: int) -> ParsedUpload:
    async with sim_client(app) as client:
        await synthesize_upload(
            client, path, country="cl", rows=40, projects=6, today=SIM_TODAY, seed=seed
        )
    parsed = read_upload(path, "cl")
    assert all(r.is_valid for r in parsed.rows)
    return parsed


async def _zones(app: Starlette, parsed: ParsedUpload) -> dict[tuple[str, str], str]:
    """(postal code, service id) → serving zone, read fault-free (to predict the rows)."""
    async with sim_client(app) as client:
        catalog = await Catalog.load(client, [(r.service_sku, None) for r in parsed.rows])
        pairs = {(r.postal_code, catalog.services_by_sku[r.service_sku].id) for r in parsed.rows}
        answers = await Coverage(client, "check").resolve(pairs)
    return {p: a.zone_id for p, a in answers.items() if a.zone_id is not None}


def _path(request: httpx.Request) -> str:
    return request.url.path.removeprefix(API_PREFIX)


async def _run(
    app: Starlette, parsed: ParsedUpload, ledger: Ledger, spoil: Spoil | None, *, seed: int
) -> tuple[UploadResult, int]:
    transport = SpoilingTransport(app, random.Random(seed))
    if spoil is not None:
        transport.spoil = spoil
    async with _client(transport) as client:
        result = await run_upload(
            parsed,
            client,
            ledger,
            uploaded_by="scope",
            check_availability=True,
            coverage_mode="check",
        )
    return result, transport.spoiled


async def _finish(app: Starlette, parsed: ParsedUpload, ledger: Ledger, seed: int) -> None:
    """A healthy re-run completes every row, and no record exists twice."""
    again, _ = await _run(app, parsed, ledger, None, seed=seed)
    assert_every_row_once(again, len(parsed.rows))
    assert again.complete, again.counts
    assert {k for k, n in again.counts.items() if n} <= {"created", "already_existed"}
    assert_matches_store(app, again, parsed.rows)
    refs = [r.external_reference for r in parsed.rows]
    pays = [r.payment_reference for r in parsed.rows if r.payment_reference]
    assert_no_duplicates(app, refs, pays)


def _assert_scoped(result: UploadResult, parsed: ParsedUpload, bad: set[int], words: str) -> None:
    assert_every_row_once(result, len(parsed.rows))
    failed = {r.position for r in result.rows if r.outcome == "failed_transient"}
    # the rows the check concerns fail; a row of the same project whose own checks passed may
    # fail too only as a dependency (its payment waits for a stage, never its booking)
    assert bad <= failed
    for r in result.rows:
        if r.position in bad:
            assert r.outcome == "failed_transient"
            assert r.retry_on_rerun
            assert r.failed_step == "validation"
            assert r.error_kind == "transient"
            assert r.message is not None
            assert words in r.message, r.message
        else:
            assert r.outcome == "created", (r.position, r.outcome, r.message)
            assert r.booking_id is not None


@pytest.mark.parametrize("seed", range(4))
async def test_an_unreadable_coverage_check_fails_only_the_rows_of_its_postal_codes(
    app: Starlette, ledger: Ledger, tmp_path: Path, seed: int
) -> None:
    parsed = await _parsed(app, tmp_path / "cov.csv", seed)
    rnd = random.Random(seed)
    codes = sorted({r.postal_code for r in parsed.rows})
    spoilt = set(rnd.sample(codes, max(1, len(codes) // 4)))

    def spoil(request: httpx.Request) -> bool:
        return (
            _path(request) == "/coverage/check" and request.url.params.get("postal_code") in spoilt
        )

    result, spoiled = await _run(app, parsed, ledger, spoil, seed=seed)
    assert spoiled > 0
    bad = {i for i, r in enumerate(parsed.rows) if r.postal_code in spoilt}
    _assert_scoped(result, parsed, bad, "coverage of postal code")
    await _finish(app, parsed, ledger, seed)


@pytest.mark.parametrize("seed", range(3))
async def test_an_unreadable_variants_list_fails_only_the_rows_naming_its_variants(
    app: Starlette, ledger: Ledger, tmp_path: Path, seed: int
) -> None:
    parsed = await _parsed(app, tmp_path / "var.csv", seed)
    zones = await _zones(app, parsed)
    assert zones
    async with sim_client(app) as client:
        catalog = await Catalog.load(client, [(r.service_sku, None) for r in parsed.rows])
    with_variant = sorted({r.service_sku for r in parsed.rows if r.variant_sku})
    assert with_variant, "the synthetic file names variants"
    rnd = random.Random(seed)
    spoilt_skus = set(rnd.sample(with_variant, max(1, len(with_variant) // 3)))
    spoilt_ids = {catalog.services_by_sku[s].id for s in spoilt_skus}

    def spoil(request: httpx.Request) -> bool:
        parts = _path(request).split("/")
        return parts[-1] == "variants" and parts[-2] in spoilt_ids

    result, _ = await _run(app, parsed, ledger, spoil, seed=seed)
    bad = {i for i, r in enumerate(parsed.rows) if r.service_sku in spoilt_skus and r.variant_sku}
    _assert_scoped(result, parsed, bad, "variants of service")
    await _finish(app, parsed, ledger, seed)


@pytest.mark.parametrize("seed", range(3))
async def test_an_unreadable_availability_window_fails_only_the_rows_of_its_zone(
    app: Starlette, ledger: Ledger, tmp_path: Path, seed: int
) -> None:
    parsed = await _parsed(app, tmp_path / "avail.csv", seed)
    zones = await _zones(app, parsed)
    async with sim_client(app) as client:
        catalog = await Catalog.load(client, [(r.service_sku, None) for r in parsed.rows])
    row_zone = {
        i: zones[(r.postal_code, catalog.services_by_sku[r.service_sku].id)]
        for i, r in enumerate(parsed.rows)
    }
    rnd = random.Random(seed)
    all_zones = sorted(set(row_zone.values()))
    spoilt = set(rnd.sample(all_zones, max(1, len(all_zones) // 3)))

    def spoil(request: httpx.Request) -> bool:
        if _path(request) != "/availability":
            return False
        pair = (request.url.params["postal_code"], request.url.params["service_id"])
        return zones.get(pair) in spoilt

    result, _ = await _run(app, parsed, ledger, spoil, seed=seed)
    bad = {i for i, z in row_zone.items() if z in spoilt}
    _assert_scoped(result, parsed, bad, "availability of its slot")
    await _finish(app, parsed, ledger, seed)


async def test_the_services_list_concerns_every_row(
    app: Starlette, ledger: Ledger, tmp_path: Path
) -> None:
    parsed = await _parsed(app, tmp_path / "svc.csv", 0)

    def spoil(request: httpx.Request) -> bool:
        return _path(request) == "/catalog/services"

    result, _ = await _run(app, parsed, ledger, spoil, seed=0)
    assert_every_row_once(result, len(parsed.rows))
    assert result.counts["failed_transient"] == len(parsed.rows)
    await _finish(app, parsed, ledger, 0)


async def test_a_dry_run_answers_unchecked_rows_failed_transient(
    app: Starlette, ledger: Ledger, tmp_path: Path
) -> None:
    parsed = await _parsed(app, tmp_path / "dry.csv", 1)
    code = parsed.rows[0].postal_code

    def spoil(request: httpx.Request) -> bool:
        return _path(request) == "/coverage/check" and request.url.params["postal_code"] == code

    transport = SpoilingTransport(app, random.Random(1))
    transport.spoil = spoil
    async with _client(transport) as client:
        result = await run_upload(
            parsed, client, ledger, uploaded_by="scope", dry_run=True, coverage_mode="check"
        )
    bad = {i for i, r in enumerate(parsed.rows) if r.postal_code == code}
    for r in result.rows:
        if r.position in bad:
            assert r.outcome == "failed_transient"
            assert r.failed_step == "validation"
        else:
            assert r.outcome == "would_create"


async def test_a_row_checked_in_a_later_run_fails_as_itself_not_as_its_checks(
    app: Starlette, ledger: Ledger, tmp_path: Path
) -> None:
    """Run 1: its coverage cannot be read (failed_step validation). Run 2: checked, but its
    booking's create keeps failing: failed_step booking. Run 3: created, once."""
    parsed = await _parsed(app, tmp_path / "later.csv", 2)
    row = next(r for r in parsed.rows if not r.project_reference)
    pos = parsed.rows.index(row)

    def coverage(request: httpx.Request) -> bool:
        return (
            _path(request) == "/coverage/check"
            and request.url.params.get("postal_code") == row.postal_code
        )

    def create(request: httpx.Request) -> bool:
        return (
            request.method == "POST"
            and _path(request) == "/bookings"
            and row.external_reference.encode() in request.content
        )

    first, _ = await _run(app, parsed, ledger, coverage, seed=2)
    assert first.rows[pos].outcome == "failed_transient"
    assert first.rows[pos].failed_step == "validation"
    second, _ = await _run(app, parsed, ledger, create, seed=2)
    assert second.rows[pos].outcome == "failed_transient"
    assert second.rows[pos].failed_step == "booking"
    await _finish(app, parsed, ledger, 2)


async def test_a_row_sent_before_whose_variants_cannot_be_read_waits_for_the_next_run(
    app: Starlette, ledger: Ledger, tmp_path: Path
) -> None:
    """A booking an earlier run sent (and could not confirm) needs its variant for the body:
    if that service's variants cannot be read, the row waits (validation, transient) and the
    next run reconciles it: one booking."""
    parsed = await _parsed(app, tmp_path / "late.csv", 3)
    row = next(r for r in parsed.rows if r.variant_sku and not r.project_reference)
    pos = parsed.rows.index(row)
    async with sim_client(app) as client:
        catalog = await Catalog.load(client, [(row.service_sku, None)])
    service_id = catalog.services_by_sku[row.service_sku].id

    def create(request: httpx.Request) -> bool:
        return (
            request.method == "POST"
            and _path(request) == "/bookings"
            and row.external_reference.encode() in request.content
        )

    def variants(request: httpx.Request) -> bool:
        return _path(request) == f"/catalog/services/{service_id}/variants"

    first, _ = await _run(app, parsed, ledger, create, seed=3)
    assert first.rows[pos].failed_step == "booking"
    second, _ = await _run(app, parsed, ledger, variants, seed=3)
    assert second.rows[pos].outcome == "failed_transient"
    assert second.rows[pos].failed_step == "validation"
    message = second.rows[pos].message
    assert message is not None
    assert "variants of service" in message
    await _finish(app, parsed, ledger, 3)
