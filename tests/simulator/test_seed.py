"""Seeded data: formats of every country, timestamps, scale knobs."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import orjson
import pytest

from sodtrack.contract import models as m
from sodtrack.contract.countries import COUNTRIES
from sodtrack.contract.limits import PHONE_PATTERN
from sodtrack.contract.models import format_timestamp
from sodtrack.simulator.clock import from_us, to_us
from sodtrack.simulator.seed import seed_state
from sodtrack.simulator.testing import small_config
from sodtrack.simulator.timefmt import ts


@pytest.mark.parametrize("code", sorted(COUNTRIES))
def test_country_formats(code: str) -> None:
    country = COUNTRIES[code]
    config = small_config(country=code, bookings=300, postal_codes=1500)
    state = seed_state(config, to_us(datetime(2026, 6, 10, 16, tzinfo=UTC)))
    zones = state.shared.zones
    codes = {c for z in zones for c in z.postal_codes}
    assert all(country.is_valid_postal_code(c) for c in codes)
    if code in ("mx", "br"):
        assert any(c.startswith("0") for c in codes)
    assert any(not z.active for z in zones) or len(zones) < 25
    assert any(len(z) > 1 for z in state.shared.coverage.values())  # a little overlap
    phone = re.compile(PHONE_PATTERN)
    for booking in state.clients[config.client_id].bookings.values():
        wire = orjson.loads(booking.wire)
        parsed = m.Booking.model_validate(wire)
        assert parsed.currency == country.currency
        assert country.has_exact_minor_units(wire["price"])
        assert wire["address"]["country"] == code
        phone_number = wire["customer"]["phone"]
        assert phone_number is None or (
            phone.match(phone_number) and phone_number.startswith(country.phone_prefix)
        )
        assert wire["customer"]["email"] or phone_number
        for key in ("scheduled_start", "created_at", "updated_at"):
            assert re.fullmatch(m.TIMESTAMP_RESPONSE_PATTERN, wire[key])
    for service in state.shared.services.values():
        wire = orjson.loads(service.wire)
        assert wire["duration_minutes"] % 30 == 0
        assert country.has_exact_minor_units(wire["base_price"])
        assert re.fullmatch(r"[A-Z]+-[A-Z0-9]+-\d+", wire["sku"])
    skus = [orjson.loads(s.wire)["sku"] for s in state.shared.services.values()]
    assert len(skus) == len(set(skus))


def test_category_tree_depth() -> None:
    state = seed_state(small_config(bookings=10), to_us(datetime(2026, 6, 10, tzinfo=UTC)))
    cats = state.shared.categories
    assert len(cats) == 40
    for cat in cats.values():
        depth, node = 1, cat
        while node.parent_id is not None:
            node, depth = cats[node.parent_id], depth + 1
        assert depth <= 3


@pytest.mark.parametrize(
    "us", [0, 1, 999_999, 1_781_107_200_000_000, 1_781_107_199_999_999, 4_102_444_800_123_456]
)
def test_fast_timestamps_match_the_contract(us: int) -> None:
    assert ts(us) == format_timestamp(from_us(us))


def test_scale_knobs_are_honoured() -> None:
    config = small_config(bookings=1500, services=70, variants=150, zones=15, postal_codes=1200)
    state = seed_state(config, to_us(datetime(2026, 6, 10, 16, tzinfo=UTC)))
    shared = state.shared
    assert len(shared.services) == 70
    assert len(shared.variants) == 150
    assert len(shared.zones) == 15
    assert len({c for z in shared.zones for c in z.postal_codes}) == 1200
    assert len(state.clients[config.client_id].bookings) == 1500
    assert state.clients["other-client"].bookings == {}
    assert any(s.requires_project for s in shared.services.values())
    assert any(not s.active for s in shared.services.values())
    client = state.clients[config.client_id]
    assert client.projects
    assert client.stages
    assert client.payments
    assert all(
        len([t for t in client.tasks.values() if t.stage_id == s]) == 4 for s in client.stages
    )
    for project in client.projects.values():
        live = [client.bookings[b] for b in project.booking_ids if client.bookings[b].active]
        assert project.total_minor == sum(b.price for b in live)
        assert project.paid_minor <= project.total_minor
