"""Shared pieces of the extraction tests: a small simulator, a warehouse + state store pair
that runs ``run_extraction`` against it, and the independent readers the assertions use.

The expectations are built here *without* the code under test: a booking's expected row is
flattened from the simulator's own wire JSON (``Simulator.export_bookings``, the in-process
twin of ``GET /_sim/export/bookings``), and published data is read back with DuckDB, as an
analyst would, not through the warehouse's readers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import httpx
import orjson
import pyarrow as pa
from deltalake import DeltaTable
from pydantic import SecretStr
from starlette.applications import Starlette

from sodtrack.client import Credentials, SodtrackClient
from sodtrack.extract import ExtractionOptions, RunReport, run_extraction
from sodtrack.extract.runner import DEFAULT_LOOKBACK, ClientFactory, published_watermark
from sodtrack.settings import Settings
from sodtrack.simulator.config import SimConfig
from sodtrack.simulator.sim import Simulator
from sodtrack.simulator.testing import SimulatorTransport, small_config
from sodtrack.state import StateStore
from sodtrack.warehouse import DATASETS, Warehouse

COUNTRY = "cl"
DATASET_NAMES = tuple(DATASETS)
EXTRACT_SCALE: dict[str, Any] = {
    "bookings": 600,
    "services": 30,
    "variants": 60,
    "zones": 6,
    "postal_codes": 200,
}
"""Small enough that a full run is a few seconds (Great Expectations' fixed cost per suite
dominates), big enough that every dataset has rows in several partitions."""

BOOKING_COLUMNS = tuple(f.name for f in DATASETS["bookings"].fields if f.name != "extracted_at")


def extract_config(**overrides: Any) -> SimConfig:
    return small_config(**{**EXTRACT_SCALE, **overrides})


def sim_of(app: Starlette) -> Simulator:
    sim = app.state.sim
    assert isinstance(sim, Simulator)
    return sim


# ---------------------------------------------------------------- transports


Hook = Callable[[httpx.Request, httpx.Response, "HookTransport"], Awaitable[httpx.Response]]


class HookTransport(httpx.AsyncBaseTransport):
    """Wraps a transport; ``hook(request, response, self)`` sees (and may replace) every
    response, and may send requests of its own through ``self.inner``. ``max_limit`` caps
    the cursor walks' ``limit`` (a server with smaller pages), so small data spans pages."""

    def __init__(
        self, inner: httpx.AsyncBaseTransport, hook: Hook | None = None, max_limit: int = 0
    ) -> None:
        self.inner = inner
        self.hook = hook
        self.max_limit = max_limit

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        limit = request.url.params.get("limit")
        if self.max_limit and limit is not None and int(limit) > self.max_limit:
            request.url = request.url.copy_set_param("limit", str(self.max_limit))
        response = await self.inner.handle_async_request(request)
        if self.hook is None:
            return response
        return await self.hook(request, response, self)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def json_of(response: httpx.Response) -> Any:
    body = await response.aread()
    return orjson.loads(body)


def json_response(response: httpx.Response, document: Any) -> httpx.Response:
    """A copy of ``response`` (status, headers) with another JSON body."""
    body = orjson.dumps(document)
    headers = [(k, v) for k, v in response.headers.items() if k.lower() != "content-length"]
    return httpx.Response(response.status_code, headers=headers, content=body)


def is_list(request: httpx.Request, resource: str) -> bool:
    return request.method == "GET" and request.url.path == f"/api/v1/{resource}"


# ---------------------------------------------------------------- an extraction environment


@dataclass
class Env:
    """One warehouse root and state store, extracting from ``app`` (in-process by default,
    or over ``base_url`` with a client built from ``Settings``)."""

    root: Path
    app: Starlette
    base_url: str | None = None
    hook: Hook | None = None
    max_limit: int = 0
    steps: list[str] = field(default_factory=list)
    on_step: Callable[[str], None] | None = None

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.warehouse = Warehouse(self.root / "warehouse", durable=False, on_step=self._step)
        self.state_url = f"sqlite:///{self.root / 'state.db'}"
        self.store = StateStore(self.state_url)

    @property
    def sim(self) -> Simulator:
        return sim_of(self.app)

    def _step(self, name: str) -> None:
        self.steps.append(name)
        if self.on_step is not None:
            self.on_step(name)

    def settings(self) -> Settings:
        assert self.base_url is not None
        return Settings(
            base_url=self.base_url,
            country=COUNTRY,
            warehouse=str(self.warehouse.root),
            state_url=self.state_url,
        )

    def factory(self) -> ClientFactory:
        @contextlib.asynccontextmanager
        async def make(country: str) -> AsyncIterator[SodtrackClient]:
            if self.base_url is not None:
                settings = self.settings().model_copy(update={"country": country})
                async with SodtrackClient.from_settings(settings) as client:
                    yield client
                return
            transport = HookTransport(SimulatorTransport(self.app), self.hook, self.max_limit)
            async with httpx.AsyncClient(transport=transport) as http:
                yield SodtrackClient(
                    http,
                    base_url="http://sim.test",
                    country=country,
                    credentials=Credentials("sim-client", SecretStr("sim-secret")),
                )

        return make

    def run(
        self,
        *datasets: str,
        full_refresh: bool = False,
        lookback: timedelta | None = None,
        run_id: str | None = None,
    ) -> RunReport:
        options = ExtractionOptions(
            countries=(COUNTRY,),
            datasets=datasets,
            full_refresh=full_refresh,
            docs_dir=None,
            reports_dir=self.root / "reports",
            run_id=run_id,
            lookback=lookback if lookback is not None else DEFAULT_LOOKBACK,
        )
        self.steps.clear()
        return asyncio.run(
            run_extraction(
                options, warehouse=self.warehouse, store=self.store, client_factory=self.factory()
            )
        )

    def watermark(self) -> datetime | None:
        return published_watermark(self.warehouse, COUNTRY)


# ---------------------------------------------------------------- expectations


def instant(text: str) -> datetime:
    """An RFC 3339 timestamp as an aware datetime (compared as an instant)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def wire_row(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A booking's wire JSON as the row ``bookings`` must hold: customer/address flattened,
    money as ``Decimal``, timestamps as instants."""
    customer, address = doc["customer"], doc["address"]
    row = {
        "id": doc["id"],
        "external_reference": doc["external_reference"],
        "status": doc["status"],
        "service_id": doc["service_id"],
        "variant_id": doc["variant_id"],
        "zone_id": doc["zone_id"],
        "contractor_id": doc["contractor_id"],
        "scheduled_start": instant(doc["scheduled_start"]),
        "scheduled_end": instant(doc["scheduled_end"]),
        **{f"customer_{k}": customer[k] for k in customer},
        **{f"address_{k}": address[k] for k in address},
        "notes": doc["notes"],
        "price": Decimal(doc["price"]),
        "currency": doc["currency"],
        "project_id": doc["project_id"],
        "stage_id": doc["stage_id"],
        "created_at": instant(doc["created_at"]),
        "updated_at": instant(doc["updated_at"]),
        "cancelled_reason": doc["cancelled_reason"],
    }
    assert set(row) == set(BOOKING_COLUMNS), set(row) ^ set(BOOKING_COLUMNS)
    return row


def sim_bookings(app: Starlette) -> dict[str, dict[str, Any]]:
    """Every booking of the configured client, as expected rows by id (in-process export)."""
    rows = [wire_row(orjson.loads(line)) for line in sim_of(app).export_bookings()]
    return {r["id"]: r for r in rows}


def parse_export(ndjson: bytes) -> dict[str, dict[str, Any]]:
    """The body of ``GET /_sim/export/bookings`` as expected rows by id."""
    rows = [wire_row(orjson.loads(line)) for line in ndjson.splitlines() if line.strip()]
    return {r["id"]: r for r in rows}


# ---------------------------------------------------------------- published data (DuckDB)


_OPEN: list[duckdb.DuckDBPyConnection] = []


@contextlib.contextmanager
def duck() -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB connection; :func:`read_sql` registers the tables it reads into it."""
    con = duckdb.connect()
    _OPEN.append(con)
    try:
        yield con
    finally:
        _OPEN.remove(con)
        con.close()


def read_sql(root: str | Path, dataset: str) -> str:
    """A DuckDB relation of the dataset's latest Delta version.

    Read through deltalake → Arrow (``delta_scan`` needs DuckDB's ``delta`` extension, which
    it downloads on first use: not possible offline). Call it inside ``with duck()``: the
    Arrow table is registered in that connection."""
    con = _OPEN[-1]
    name = f"delta_{dataset}"
    con.register(name, DeltaTable(f"{root}/{dataset}").to_pyarrow_table())
    return name


def published_rows(root: str | Path, dataset: str, where: str = "true") -> list[dict[str, Any]]:
    with duck() as con:
        cursor = con.execute(f"SELECT * FROM {read_sql(root, dataset)} WHERE {where}")  # noqa: S608
        names = [d[0] for d in cursor.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def published_bookings(root: str | Path, country: str = COUNTRY) -> dict[str, dict[str, Any]]:
    """The country's published bookings by id; asserts one row per id and the partition key."""
    rows = published_rows(root, "bookings", f"country = '{country}'")
    by_id: dict[str, dict[str, Any]] = {}
    for row in rows:
        assert row["id"] not in by_id, f"{row['id']} published twice"
        assert row.pop("scheduled_month") == row["scheduled_start"].astimezone(UTC).strftime(
            "%Y-%m"
        )
        row.pop("country")
        row.pop("extracted_at")
        by_id[row["id"]] = row
    return by_id


def assert_bookings_equal(
    published: Mapping[str, Mapping[str, Any]], expected: Mapping[str, Mapping[str, Any]]
) -> None:
    """Same ids, and field by field the same values (with a readable first difference)."""
    missing = sorted(set(expected) - set(published))
    extra = sorted(set(published) - set(expected))
    assert not missing, f"{len(missing)} bookings not published, e.g. {missing[:3]}"
    assert not extra, f"{len(extra)} published bookings the simulator lacks, e.g. {extra[:3]}"
    for bid, want in expected.items():
        got = published[bid]
        diff = {c: (got[c], want[c]) for c in BOOKING_COLUMNS if got[c] != want[c]}
        assert not diff, f"{bid}: published != simulator: {diff}"
        for column in ("price",):
            assert isinstance(got[column], Decimal)


def count(root: str | Path, dataset: str, where: str = "true") -> int:
    with duck() as con:
        sql = f"SELECT count(*) FROM {read_sql(root, dataset)} WHERE {where}"  # noqa: S608
        rows = con.execute(sql).fetchall()
    return int(rows[0][0])


# ---------------------------------------------------------------- declared types

_DUCK_TYPES: dict[str, str] = {
    "string": "VARCHAR",
    "bool": "BOOLEAN",
    "int32": "INTEGER",
    "int64": "BIGINT",
    "decimal128(18, 2)": "DECIMAL(18,2)",
    "timestamp[us, tz=UTC]": "TIMESTAMP WITH TIME ZONE",
}
PARTITION_TYPES = {
    # Partition columns are strings in the Delta tables.
    "country": "VARCHAR",
    "snapshot_date": "VARCHAR",
    "extraction_date": "VARCHAR",
    "scheduled_month": "VARCHAR",
}


def declared_duckdb_types(dataset: str) -> list[tuple[str, str]]:
    """What DuckDB must report for a dataset: its fields in order, then its partition keys."""
    spec = DATASETS[dataset]
    fields = [(f.name, _DUCK_TYPES[str(f.type)]) for f in spec.fields]
    return fields + [(k, PARTITION_TYPES[k]) for k in spec.partition_keys]


def described_types(root: str | Path, dataset: str) -> list[tuple[str, str]]:
    with duck() as con:
        rows = con.execute(f"DESCRIBE SELECT * FROM {read_sql(root, dataset)}").fetchall()  # noqa: S608
    return [(str(r[0]), str(r[1])) for r in rows]


def arrow_of(root: str | Path, dataset: str) -> pa.Table:
    with duck() as con:
        return con.execute(f"SELECT * FROM {read_sql(root, dataset)}").to_arrow_table()  # noqa: S608
