"""``sodtrack-sim``: run the simulator of the Sodtrack Integration API.

``sodtrack-sim serve`` seeds the data (a few seconds at default scale) and serves it under
uvicorn. Per-request log lines are emitted at debug level only (``--log-level debug``);
uvicorn's access log is off.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

import typer
import uvicorn

from sodtrack.simulator.config import SimConfig

app = typer.Typer(help="Simulator of the Sodtrack Integration API.", no_args_is_help=True)

_D = SimConfig()
"""Defaults shown by ``--help`` are those of ``SimConfig``."""


def _help(name: str) -> str:
    """The field's docstring-like help, kept short (defaults are shown by typer)."""
    return _HELP.get(name, "")


_HELP = {
    "host": "Interface to bind.",
    "port": "TCP port.",
    "country": "API country (cl, pe, co, mx, ar, br, uy). Repeat it to serve several countries, "
    "each under /{country} (/cl/api/v1/..., /cl/_sim/...); one country is served at the root.",
    "seed": "Seed of all data, faults and request ids.",
    "client_id": "The configured client credential (owns the seeded history).",
    "client_secret": "Its secret.",
    "rate_limit": "Requests per second per client (0 = off).",
    "burst": "Token-bucket size.",
    "token_ttl": "Token lifetime in seconds.",
    "latency_ms": "Added latency per API response.",
    "jitter_ms": "Extra random latency, uniform in [0, jitter].",
    "fault_rate": "Share of requests answered 503 unprocessed.",
    "drop_after_commit_rate": "Share of successful writes answered 500 or cut off.",
    "now": "Fix the clock at this RFC 3339 time (default: wall clock).",
    "bookings": "Historical bookings to seed.",
}


@app.callback()
def main_callback() -> None:
    """Simulator of the Sodtrack Integration API."""


@app.command()
def serve(
    host: Annotated[str, typer.Option(help=_help("host"))] = _D.host,
    port: Annotated[int, typer.Option(help=_help("port"))] = _D.port,
    country: Annotated[list[str] | None, typer.Option(help=_help("country"))] = None,
    seed: Annotated[int, typer.Option(help=_help("seed"))] = _D.seed,
    client_id: Annotated[str, typer.Option(help=_help("client_id"))] = _D.client_id,
    client_secret: Annotated[str, typer.Option(help=_help("client_secret"))] = _D.client_secret,
    extra_client: Annotated[
        list[str] | None,
        typer.Option(help="Another credential as ID:SECRET (repeatable)."),
    ] = None,
    rate_limit: Annotated[float, typer.Option(help=_help("rate_limit"))] = _D.rate_limit,
    burst: Annotated[int, typer.Option(help=_help("burst"))] = _D.burst,
    token_ttl: Annotated[int, typer.Option(help=_help("token_ttl"))] = _D.token_ttl,
    latency_ms: Annotated[float, typer.Option(help=_help("latency_ms"))] = _D.latency_ms,
    jitter_ms: Annotated[float, typer.Option(help=_help("jitter_ms"))] = _D.jitter_ms,
    fault_rate: Annotated[float, typer.Option(help=_help("fault_rate"))] = _D.fault_rate,
    drop_after_commit_rate: Annotated[
        float, typer.Option(help=_help("drop_after_commit_rate"))
    ] = _D.drop_after_commit_rate,
    now: Annotated[str | None, typer.Option(help=_help("now"))] = None,
    bookings: Annotated[int, typer.Option(help=_help("bookings"))] = _D.bookings,
    categories: Annotated[int, typer.Option(help="Catalog categories.")] = _D.categories,
    services: Annotated[int, typer.Option(help="Catalog services.")] = _D.services,
    variants: Annotated[int, typer.Option(help="Service variants.")] = _D.variants,
    zones: Annotated[int, typer.Option(help="Coverage zones.")] = _D.zones,
    postal_codes: Annotated[
        int, typer.Option(help="Postal codes over the zones.")
    ] = _D.postal_codes,
    signing_key: Annotated[
        str | None,
        typer.Option(
            envvar="SODTRACK_SIM_SIGNING_KEY",
            help="Secret the token signing key derives from (default: random per process, "
            "so tokens do not survive a restart).",
            show_default=False,
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="debug shows one line per request.")] = "info",
) -> None:
    """Seed the data and serve the API (``/api/v1``) and the ``/_sim/`` controls."""
    from sodtrack.simulator.app import create_app, create_multi_country_app
    from sodtrack.simulator.testing import quiet_simulated_drops

    extras: list[tuple[str, str]] = []
    for item in extra_client or []:
        cid, sep, secret = item.partition(":")
        if not sep or not cid or not secret:
            raise typer.BadParameter(f"expected ID:SECRET, got {item!r}")
        extras.append((cid, secret))
    settings: dict[str, Any] = dict(  # noqa: C408 (mirrors the options one to one)
        host=host,
        port=port,
        seed=seed,
        client_id=client_id,
        client_secret=client_secret,
        extra_clients=tuple(extras),
        rate_limit=rate_limit,
        burst=burst,
        token_ttl=token_ttl,
        latency_ms=latency_ms,
        jitter_ms=jitter_ms,
        fault_rate=fault_rate,
        drop_after_commit_rate=drop_after_commit_rate,
        now=now,
        bookings=bookings,
        categories=categories,
        services=services,
        variants=variants,
        zones=zones,
        postal_codes=postal_codes,
        signing_key=signing_key,
    )
    countries = list(dict.fromkeys(c.strip().lower() for c in country or [_D.country]))
    configs = [SimConfig(**{**settings, "country": code}) for code in countries]
    config = configs[0]
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    quiet_simulated_drops()
    application = create_app(config) if len(configs) == 1 else create_multi_country_app(configs)
    uvicorn.run(
        application,
        host=config.host,
        port=config.port,
        log_level=log_level.lower(),
        access_log=False,
        lifespan="off",
        date_header=False,  # the simulator sends its own clock's Date
    )


def main() -> None:
    app()
