"""Deterministic seeded data at realistic scale.

Everything is drawn from one ``random.Random(seed)`` in a fixed order, relative to the
server time at seeding (``anchor``): the same seed and the same fixed ``now`` give the same
data, byte for byte.

What gets seeded (``SimConfig`` scale knobs):

* a catalog: a category tree (at most 3 levels), services with SKUs like
  ``INST-AC-12000`` (some inactive, some ``requires_project``), variants;
* coverage zones over the country's postal codes (in its own format: leading zeros in MX and
  BR, CPA letters in AR), each code in one zone and a few in two (overlap), a few inactive
  zones; each zone offers most services;
* lead forms with fields of every type;
* the configured client's history: bookings over the last two years and up to three weeks
  ahead in every status (cancelled ones with reasons), with local names, E.164 phones and
  local addresses; projects with stages, task checklists and payments.

Bookings are rendered to wire JSON once, here (``orjson``), and kept as bytes.
"""

from __future__ import annotations

import gc
import random
import zlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from sodtrack.contract.countries import Country, get_country
from sodtrack.contract.limits import STAGE_CHECKLIST
from sodtrack.contract.models import (
    BookingStatus,
    FieldType,
    PaymentMethod,
    ProjectStatus,
    StageStatus,
    TaskStatus,
)
from sodtrack.simulator import locales
from sodtrack.simulator.config import SimConfig
from sodtrack.simulator.slots import SlotCalendar
from sodtrack.simulator.state import State
from sodtrack.simulator.store import (
    BookingRec,
    Capacity,
    CategoryRec,
    ClientState,
    FormRec,
    MoneyText,
    PaymentRec,
    ProjectRec,
    ServiceRec,
    Shared,
    StageRec,
    TaskRec,
    VariantRec,
    ZoneRec,
    money,
    pack,
)
from sodtrack.simulator.timefmt import ts

US = 1_000_000
DAY = 86_400
HISTORY_DAYS = 730
MAX_LEAD_DAYS = 21

# (code, name, parent code) — 40 categories, at most three levels deep.
_CATEGORY_TREE: tuple[tuple[str, str, str | None], ...] = (
    ("AC", "Climatización", None),
    ("EL", "Electricidad", None),
    ("PL", "Plomería", None),
    ("CA", "Carpintería", None),
    ("PT", "Pintura", None),
    ("RM", "Remodelación", None),
    ("EA", "Electrodomésticos", None),
    ("JD", "Jardinería", None),
    ("SG", "Seguridad", None),
    ("LP", "Limpieza", None),
    ("AA", "Aire acondicionado", "AC"),
    ("CF", "Calefacción", "AC"),
    ("VE", "Ventilación", "AC"),
    ("IL", "Iluminación", "EL"),
    ("TB", "Tableros eléctricos", "EL"),
    ("EN", "Enchufes e interruptores", "EL"),
    ("GR", "Grifería", "PL"),
    ("TE", "Agua caliente", "PL"),
    ("DS", "Desagües", "PL"),
    ("MM", "Muebles a medida", "CA"),
    ("PU", "Puertas y ventanas", "CA"),
    ("PI", "Pintura interior", "PT"),
    ("PE", "Pintura exterior", "PT"),
    ("CO", "Cocinas", "RM"),
    ("BA", "Baños", "RM"),
    ("PS", "Pisos", "RM"),
    ("LV", "Lavado y secado", "EA"),
    ("HO", "Cocina y horno", "EA"),
    ("RI", "Riego", "JD"),
    ("CM", "Cámaras", "SG"),
    ("CE", "Cerraduras", "SG"),
    ("SPM", "Split muro", "AA"),
    ("MSP", "Multi split", "AA"),
    ("LED", "Iluminación LED", "IL"),
    ("ILX", "Iluminación exterior", "IL"),
    ("CAL", "Calefones", "TE"),
    ("TER", "Termos eléctricos", "TE"),
    ("TIN", "Tinas y duchas", "BA"),
    ("CUB", "Cubiertas", "CO"),
    ("POR", "Porcelanato", "PS"),
)
_ACTIONS = (("INST", "Instalación"), ("MANT", "Mantención"), ("REP", "Reparación"))
_REMODEL_ACTION = ("REMO", "Remodelación")
# Base prices in major units, per country (what a home service costs there).
_PRICE_RANGE: dict[str, tuple[int, int]] = {
    "cl": (15_000, 600_000),
    "pe": (60, 2_500),
    "co": (60_000, 2_400_000),
    "mx": (300, 12_000),
    "ar": (15_000, 600_000),
    "br": (80, 3_500),
    "uy": (600, 25_000),
}
_VARIANT_NAMES = ("Estándar", "Premium", "Con materiales", "Express", "Doble", "Grande", "XL")
_NOTES = (
    "Call before arriving",
    "Llamar antes de llegar",
    "Conserje recibe",
    "Timbre no funciona",
    "Mascota en casa",
    "Estacionamiento de visitas disponible",
)
_CANCEL_REASONS = (
    "Customer request",
    "Cliente reagendó por otro canal",
    "Sin acceso al domicilio",
    "Duplicated order",
    "Producto no llegó",
    "Cliente desistió",
)
_STAGE_NAMES = ("Demolición", "Instalaciones", "Terminaciones", "Entrega")
_PROJECT_KINDS = ("Remodelación cocina", "Remodelación baño", "Cambio de pisos", "Ampliación")


def lags(booking_id: str) -> tuple[int, int]:
    """How long before its start a booking gets confirmed, and how long after its end the
    contractor marks it done (seconds). A pure function of the id, so that the background
    world needs to store nothing per booking."""
    h = zlib.crc32(booking_id.encode())
    return 2 * 3600 + h % (70 * 3600), (h >> 8) % (48 * 3600)


def status_at(
    t_s: int, created_s: int, confirm_s: int, start_s: int, complete_s: int, cancel_s: int
) -> tuple[str, int]:
    """A background booking's status at time ``t_s`` and when it last changed."""
    if cancel_s and cancel_s <= t_s:
        return BookingStatus.CANCELLED, cancel_s
    if complete_s <= t_s:
        return BookingStatus.COMPLETED, complete_s
    if start_s <= t_s:
        return BookingStatus.IN_PROGRESS, start_s
    if confirm_s <= t_s:
        return BookingStatus.CONFIRMED, confirm_s
    return BookingStatus.SCHEDULED, created_s


def next_event(
    t_s: int, confirm_s: int, start_s: int, complete_s: int, cancel_s: int
) -> int | None:
    """When a background booking next changes after ``t_s`` (None: never)."""
    times = [x for x in (confirm_s, start_s, complete_s) if x > t_s]
    if cancel_s and cancel_s > t_s:
        times.append(cancel_s)
    return min(times) if times else None


@dataclass(slots=True)
class _Ctx:
    config: SimConfig
    country: Country
    locale: locales.Locale
    rng: random.Random
    cal: SlotCalendar
    state: State
    anchor_s: int
    cat_codes: dict[str, str] = field(default_factory=dict)
    """category id -> its short code (for SKUs)"""


def seed_state(config: SimConfig, anchor_us: int) -> State:
    """Build the whole seeded state for ``config`` as of server time ``anchor_us``.

    The cyclic garbage collector is paused meanwhile (it would rescan the growing heap of
    records again and again: seeding twice as slow), and the seeded records are then frozen
    out of its reach, so that later collections during requests stay short.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _seed_state(config, anchor_us)
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


def _seed_state(config: SimConfig, anchor_us: int) -> State:
    country = get_country(config.country)
    rng = random.Random(config.seed)
    state = State(
        country=country,
        shared=Shared(),
        clients={cid: ClientState(cid) for cid in config.clients},
        capacity=Capacity(),
        anchor_us=anchor_us,
        world_rng=random.Random(config.seed * 7919 + 1),
    )
    ctx = _Ctx(
        config,
        country,
        locales.LOCALES[country.code],
        rng,
        SlotCalendar(country.tz),
        state,
        anchor_us // US,
    )
    _categories(ctx)
    _services(ctx)
    _variants(ctx)
    _zones(ctx)
    _forms(ctx)
    ctx.cal.prepare(ctx.anchor_s - (HISTORY_DAYS + 2) * DAY, ctx.anchor_s + 400 * DAY)
    factory = BookingFactory(ctx.state, rng, ctx.cal, max(500, config.bookings // 20))
    _history(ctx, factory)
    factory.rng = state.world_rng
    state.factory = factory
    state.last_stamp_us = max(state.last_stamp_us, anchor_us)
    state.reindex()
    normal = max(1, config.bookings)
    state.arrival_interval_s = HISTORY_DAYS * DAY / normal
    state.next_arrival_s = ctx.anchor_s + max(
        1, int(state.world_rng.expovariate(1 / state.arrival_interval_s))
    )
    return state


def _stamp_before(ctx: _Ctx, max_days: int) -> int:
    return (ctx.anchor_s - ctx.rng.randrange(DAY, max_days * DAY)) * US + ctx.rng.randrange(US)


def _price_minor(ctx: _Ctx) -> int:
    low, high = _PRICE_RANGE[ctx.country.code]
    major = int(low * (high / low) ** (ctx.rng.random() ** 1.5))
    minor: int
    # Realistic shelf prices: CLP 45990, PEN 149.90.
    if ctx.country.minor_units == 0:
        minor = max(990, (major // 1000) * 1000 + 990)
    else:
        minor = max(major, 10) * 10**ctx.country.minor_units - 10
    return minor


def _categories(ctx: _Ctx) -> None:
    tree: list[tuple[str, str, str | None]] = list(_CATEGORY_TREE[: max(1, ctx.config.categories)])
    extra = ctx.config.categories - len(tree)
    for i in range(extra):  # beyond 40: more leaves under the roots
        tree.append((f"X{i}", f"Otros servicios {i + 1}", _CATEGORY_TREE[i % 10][0]))
    codes: dict[str, str] = {}
    for i, (code, name, parent_code) in enumerate(tree):
        cid = f"cat_{i + 1:05d}"
        codes[code] = cid
        parent_id = codes[parent_code] if parent_code else None
        active = not (parent_id is not None and ctx.rng.random() < 0.06)
        wire = {
            "id": cid,
            "name": name,
            "description": None if ctx.rng.random() < 0.3 else f"Servicios de {name.lower()}",
            "parent_id": parent_id,
            "active": active,
            "updated_at": ts(_stamp_before(ctx, 400)),
        }
        ctx.state.shared.categories[cid] = CategoryRec(cid, parent_id, active, pack(wire))
    ctx.state.shared.categories = dict(sorted(ctx.state.shared.categories.items()))
    ctx.cat_codes.update({v: k for k, v in codes.items()})


def _root_code(ctx: _Ctx, cid: str) -> str:
    cats = ctx.state.shared.categories
    while (parent := cats[cid].parent_id) is not None:
        cid = parent
    return ctx.cat_codes[cid]


def _services(ctx: _Ctx) -> None:
    rng = ctx.rng
    cats = list(ctx.state.shared.categories.values())
    for i in range(ctx.config.services):
        cat = cats[i % len(cats)] if i < len(cats) else rng.choice(cats)
        code = ctx.cat_codes[cat.id]
        remodel = _root_code(ctx, cat.id) == "RM"
        requires_project = remodel and rng.random() < 0.5
        action, action_name = _REMODEL_ACTION if requires_project else rng.choice(_ACTIONS)
        number = 1000 * (1 + i % 30) + i // 30
        sid = f"svc_{i + 1:05d}"
        name_json = orjson.loads(cat.wire)["name"]
        duration = (
            30 * rng.randrange(8, 17) if requires_project else 30 * rng.choice((2, 2, 3, 4, 6, 8))
        )
        price = _price_minor(ctx) * (3 if requires_project else 1)
        active = cat.active and rng.random() > 0.08
        wire = {
            "id": sid,
            "category_id": cat.id,
            "sku": f"{action}-{code}-{number}",
            "name": f"{action_name} {name_json.lower()} {number}",
            "description": None if rng.random() < 0.25 else f"{action_name} profesional",
            "duration_minutes": duration,
            "base_price": money(ctx.country, price),
            "currency": ctx.country.currency,
            "requires_project": requires_project,
            "active": active,
            "updated_at": ts(_stamp_before(ctx, 300)),
        }
        ctx.state.shared.services[sid] = ServiceRec(
            sid, cat.id, active, requires_project, duration, price, pack(wire)
        )


def _variants(ctx: _Ctx) -> None:
    rng = ctx.rng
    services = list(ctx.state.shared.services.values())
    if not services:
        return
    for i in range(ctx.config.variants):
        svc = services[i % len(services)] if rng.random() < 0.5 else rng.choice(services)
        n = len(svc.variant_ids) + 1
        vid = f"var_{i + 1:05d}"
        sku = orjson.loads(svc.wire)["sku"]
        duration = svc.duration_min + 30 * rng.choice((0, 0, 1, 2))
        price = svc.price_minor + (svc.price_minor // 4) * rng.randrange(0, 4)
        active = svc.active and rng.random() > 0.05
        wire = {
            "id": vid,
            "service_id": svc.id,
            "sku": f"{sku}-V{n}",
            "name": f"{rng.choice(_VARIANT_NAMES)} {n}",
            "price": money(ctx.country, price),
            "currency": ctx.country.currency,
            "duration_minutes": duration,
            "active": active,
            "updated_at": ts(_stamp_before(ctx, 300)),
        }
        ctx.state.shared.variants[vid] = VariantRec(
            vid, svc.id, active, duration, price, pack(wire)
        )
        svc.variant_ids.append(vid)


ZONE_SERVICE_SHARE = 0.15
"""Share of a large catalog's services a coverage zone offers (small test catalogs offer
more, so every zone still has project services to book)."""


def _zones(ctx: _Ctx) -> None:
    rng = ctx.rng
    shared = ctx.state.shared
    codes = locales.postal_codes(ctx.country, rng, ctx.config.postal_codes)
    n_zones = max(1, min(ctx.config.zones, len(codes)))
    per = len(codes) / n_zones
    regions = ctx.locale.regions
    service_ids = sorted(shared.services)
    coverage: dict[str, list[int]] = {}
    share = min(0.75, max(ZONE_SERVICE_SHARE, 40 / max(1, len(service_ids))))
    for z in range(n_zones):
        lo, hi = int(z * per), int((z + 1) * per)
        own = codes[lo:hi]
        # A little overlap: the first codes of the next zone are listed here too.
        overlap = codes[hi : hi + max(1, (hi - lo) // 50)] if z + 1 < n_zones else []
        zone_codes = own + overlap
        region, cities = regions[z * len(regions) // n_zones]
        zid = f"zone_{z + 1:05d}"
        active = rng.random() > 0.04
        # A zone's contractors cover some service lines, not the whole catalog: about one
        # service in seven (~90 of 600), which keeps the zone × postal code × service matrix
        # near 3 million rows at default scale instead of 14 million.
        offered = frozenset(s for s in service_ids if rng.random() < share)
        contractors = rng.choice((1, 2, 2, 3, 3, 4, 5, 6))
        name = f"{rng.choice(cities)} {z + 1}"
        wire = {
            "id": zid,
            "name": name,
            "region": region,
            "postal_codes": zone_codes,
            "service_ids": sorted(offered),
            "contractor_count": contractors,
            "active": active,
            "updated_at": ts(_stamp_before(ctx, 200)),
        }
        zone = ZoneRec(
            zid,
            z,
            name,
            region,
            cities,
            zone_codes,
            offered,
            contractors,
            active,
            pack(wire),
        )
        shared.zones.append(zone)
        shared.zone_by_id[zid] = zone
        for code in zone_codes:
            coverage.setdefault(code, []).append(z)
    shared.coverage = {code: tuple(zs) for code, zs in coverage.items()}


def _forms(ctx: _Ctx) -> None:
    specs: tuple[tuple[str, list[tuple[str, str, FieldType, bool, list[str] | None]]], ...] = (
        (
            "Cotización de remodelación",
            [
                ("full_name", "Nombre completo", FieldType.TEXT, True, None),
                ("email", "Correo electrónico", FieldType.EMAIL, True, None),
                ("phone", "Teléfono", FieldType.PHONE, False, None),
                ("postal_code", "Código postal", FieldType.POSTAL_CODE, True, None),
                (
                    "project_type",
                    "Tipo de proyecto",
                    FieldType.SELECT,
                    True,
                    ["kitchen", "bathroom", "floors", "other"],
                ),
                ("budget", "Presupuesto estimado", FieldType.NUMBER, False, None),
                ("comments", "Comentarios", FieldType.TEXT, False, None),
            ],
        ),
        (
            "Contacto general",
            [
                ("name", "Nombre", FieldType.TEXT, True, None),
                ("phone", "Teléfono", FieldType.PHONE, True, None),
                ("message", "Mensaje", FieldType.TEXT, False, None),
            ],
        ),
        (
            "Visita técnica",
            [
                ("name", "Nombre", FieldType.TEXT, True, None),
                ("email", "Correo electrónico", FieldType.EMAIL, False, None),
                ("postal_code", "Código postal", FieldType.POSTAL_CODE, True, None),
                ("units", "Cantidad de equipos", FieldType.NUMBER, True, None),
                ("slot", "Horario preferido", FieldType.SELECT, False, ["morning", "afternoon"]),
            ],
        ),
    )
    for i, (name, fields) in enumerate(specs):
        fid = f"frm_{i + 1:05d}"
        field_dicts = [
            {"name": n, "label": label, "type": str(t), "required": req, "options": opts}
            for n, label, t, req, opts in fields
        ]
        wire = {"id": fid, "name": name, "fields": field_dicts}
        ctx.state.shared.forms[fid] = FormRec(fid, field_dicts, pack(wire))


class _Household:
    """A customer at an address: bookings reuse them (returning customers), which keeps
    seeding fast (their JSON is rendered once)."""

    __slots__ = ("address", "address_json", "code", "customer", "customer_json", "zone")

    def __init__(self, customer: dict[str, Any], address: dict[str, Any], zone: int) -> None:
        self.customer = customer
        self.address = address
        self.code: str = address["postal_code"]
        self.zone = zone
        self.customer_json = orjson.dumps(customer).decode()
        self.address_json = orjson.dumps(address).decode()


class BookingFactory:
    """Makes plausible customers, addresses and bookings; used by seeding and by the
    background world's new arrivals.

    Bookings are the hot path of seeding (200,000 in a few seconds): random choices come
    from bits of one ``getrandbits`` call, slot starts from a flat sorted list, and the wire
    JSON from one f-string over pre-rendered fragments (ids, SKUs and statuses need no JSON
    escaping; free text is pre-rendered with orjson).
    """

    def __init__(
        self, state: State, rng: random.Random, cal: SlotCalendar, households: int
    ) -> None:
        self.state = state
        self.rng = rng
        self.cal = cal
        self.country = state.country
        self.locale = locales.LOCALES[self.country.code]
        shared = state.shared
        self.active_zones = [z for z in shared.zones if z.active]
        plain = {s.id for s in shared.services.values() if s.active and not s.requires_project}
        project = {s.id for s in shared.services.values() if s.active and s.requires_project}
        self.zone_plain = {z.idx: sorted(z.service_ids & plain) for z in self.active_zones}
        self.zone_project = {z.idx: sorted(z.service_ids & project) for z in self.active_zones}
        self.active_variants = {
            s.id: [shared.variants[v] for v in s.variant_ids if shared.variants[v].active]
            for s in shared.services.values()
        }
        self.money = MoneyText(self.country)
        self._ts: dict[int, str] = {}
        self._n = 0
        self.notes = [orjson.dumps(n).decode() for n in _NOTES]
        self.reasons = [orjson.dumps(r).decode() for r in _CANCEL_REASONS]
        self.households = [self.household() for _ in range(households)] if self.active_zones else []

    def slot_ts(self, epoch_s: int) -> str:
        text = self._ts.get(epoch_s)
        if text is None:
            text = self._ts[epoch_s] = ts(epoch_s * US)
        return text

    def customer(self) -> dict[str, Any]:
        rng, loc = self.rng, self.locale
        self._n += 1
        first, last = rng.choice(loc.first_names), rng.choice(loc.last_names)
        has_email = rng.random() < 0.85
        has_phone = not has_email or rng.random() < 0.9
        return {
            "first_name": first,
            "last_name": last,
            "email": locales.email(first, last, self._n) if has_email else None,
            "phone": locales.phone(self.country, loc, rng) if has_phone else None,
            "document_id": locales.document_id(self.country.code, rng),
        }

    def address(self, zone: ZoneRec, postal_code: str) -> dict[str, Any]:
        rng = self.rng
        return {
            "line1": f"{rng.choice(self.locale.streets)} {rng.randrange(1, 9999)}",
            "line2": rng.choice(self.locale.line2) if rng.random() < 0.3 else None,
            "city": rng.choice(zone.cities),
            "region": zone.region,
            "postal_code": postal_code,
            "country": self.country.code,
        }

    def household(self) -> _Household:
        zone = self.rng.choice(self.active_zones)
        code = self.rng.choice(zone.postal_codes)
        return _Household(self.customer(), self.address(zone, code), zone.idx)

    def booking(
        self,
        client: ClientState,
        *,
        ext: str | None = None,
        seq: int = 0,
        created_s: int,
        now_s: int,
        project: ProjectRec | None = None,
        household: _Household | None = None,
        cancellable: bool = True,
        created_us: int | None = None,
    ) -> tuple[BookingRec, int, int, int, int] | None:
        """A booking created at ``created_s`` as it stands at ``now_s``. Returns the record
        and its timeline (confirm, start, complete, cancel) for the background world."""
        if not self.households:
            return None
        bits = self.rng.getrandbits(64)
        home = household or self.households[bits % len(self.households)]
        offers = (self.zone_project if project else self.zone_plain).get(home.zone)
        if not offers:
            return None
        service_id = offers[(bits >> 20) % len(offers)]
        zone = self.state.shared.serving_zone(home.code, service_id)
        if zone is None:
            return None
        lead = 3600 + int(((bits >> 40) & 0xFFFF) ** 2 / 0xFFFF**2 * MAX_LEAD_DAYS * DAY)
        cal, capacity = self.cal, self.state.capacity
        start_s = cal.next_start(created_s + lead)
        contractor = capacity.free_contractor(zone, start_s)
        tries = 0
        while contractor is None:
            tries += 1
            if tries > 30:
                return None
            start_s = cal.next_start(start_s + 1)
            contractor = capacity.free_contractor(zone, start_s)
        service = self.state.shared.services[service_id]
        variants = self.active_variants[service_id]
        variant = variants[(bits >> 8) % len(variants)] if variants and bits & 0xFF < 154 else None
        if variant is not None:
            duration, price, variant_json = (
                variant.duration_min * 60,
                variant.price_minor,
                f'"{variant.id}"',
            )
        else:
            duration, price, variant_json = service.duration_min * 60, service.price_minor, "null"
        end_s = start_s + duration
        bid = self.state.new_id("bkg")
        confirm_lead, complete_lag = lags(bid)
        confirm_s = max(created_s + 60, start_s - confirm_lead)
        complete_s = end_s + complete_lag
        bits2 = self.rng.getrandbits(64)
        cancel_s = 0
        if cancellable and bits2 % 1000 < 70:
            window = max(60, start_s - created_s - 120)
            cancel_s = created_s + 60 + (bits2 >> 10) % window
        status, changed_s = status_at(now_s, created_s, confirm_s, start_s, complete_s, cancel_s)
        if created_us is None:
            created_us = created_s * US + (bits2 >> 40) % US
        updated_us = max(created_us, changed_s * US)
        created_text = ts(created_us)
        updated_text = created_text if updated_us == created_us else ts(updated_us)
        if ext is None:  # the history's references: OPS-<year-month created>-<sequence>
            ext = f"OPS-{created_text[:7]}-{seq:06d}"
        notes = self.notes[(bits2 >> 30) % len(self.notes)] if (bits2 >> 20) % 10 < 2 else "null"
        reason = (
            self.reasons[(bits2 >> 34) % len(self.reasons)]
            if status == BookingStatus.CANCELLED
            else "null"
        )
        project_json = f'"{project.id}"' if project else "null"
        wire = (
            f'{{"id":"{bid}","external_reference":"{ext}","status":"{status}",'
            f'"service_id":"{service_id}","variant_id":{variant_json},"zone_id":"{zone.id}",'
            f'"contractor_id":"{zone.contractor_id(contractor)}",'
            f'"scheduled_start":"{self.slot_ts(start_s)}","scheduled_end":"{self.slot_ts(end_s)}",'
            f'"customer":{home.customer_json},"address":{home.address_json},"notes":{notes},'
            f'"price":"{self.money(price)}","currency":"{self.country.currency}",'
            f'"project_id":{project_json},"stage_id":null,"created_at":"{created_text}",'
            f'"updated_at":"{updated_text}","cancelled_reason":{reason}}}'
        ).encode()
        rec = BookingRec(
            bid,
            ext,
            status,
            zone.idx,
            contractor,
            start_s,
            price,
            project.id if project else None,
            None,
            updated_us,
            wire,
        )
        return rec, confirm_s, start_s, complete_s, cancel_s


def _history(ctx: _Ctx, factory: BookingFactory) -> None:
    state, rng, config = ctx.state, ctx.rng, ctx.config
    client = state.clients[config.client_id]
    now_s = ctx.anchor_s
    n_projects = max(2, config.bookings // 400) if config.bookings else 0
    project_bookings = 0
    # Projects first: their bookings use the project-only services.
    for p in range(n_projects):
        created_s = (
            now_s - HISTORY_DAYS * DAY + int((p + rng.random()) * HISTORY_DAYS * DAY / n_projects)
        )
        project_bookings += _project(ctx, factory, client, p, created_s)
    n = max(0, config.bookings - project_bookings)
    span = HISTORY_DAYS * DAY
    for i in range(n):
        created_s = now_s - span + int((i + rng.random()) * span / n)
        made = factory.booking(client, seq=i + 1, created_s=created_s, now_s=now_s)
        if made is None:
            continue
        rec, confirm_s, start_s, complete_s, cancel_s = made
        state.add_booking(client, rec, index=False)
        state.last_stamp_us = max(state.last_stamp_us, rec.updated_us)
        due = next_event(now_s, confirm_s, start_s, complete_s, cancel_s)
        if due is not None:
            state.auto.add(rec.id)
            state.timeline[rec.id] = (confirm_s, start_s, complete_s, cancel_s)
            state.schedule(due, rec.id)


def _project(
    ctx: _Ctx, factory: BookingFactory, client: ClientState, p: int, created_s: int
) -> int:
    state, rng = ctx.state, ctx.rng
    if not factory.households:
        return 0
    home = factory.household()
    customer = home.customer
    created_us = created_s * US + rng.randrange(US)
    project = ProjectRec(
        id=state.new_id("prj"),
        external_reference=f"PRJ-{ts(created_us)[:4]}-{p + 1:05d}",
        name=f"{rng.choice(_PROJECT_KINDS)} {customer['last_name']}",
        customer=customer,
        address=home.address,
        status=ProjectStatus.OPEN,
        total_minor=0,
        paid_minor=0,
        created_us=created_us,
        updated_us=created_us,
    )
    state.add_project(client, project)
    recs: list[BookingRec] = []
    latest = created_us
    for b in range(rng.randrange(1, 5)):
        made = factory.booking(
            client,
            ext=f"{project.external_reference}-B{b + 1}",
            created_s=created_s + 60 * (b + 1),
            now_s=ctx.anchor_s,
            project=project,
            household=home,
            cancellable=rng.random() < 0.5,
        )
        if made is None:
            continue
        rec = made[0]
        state.add_booking(client, rec, index=False)
        recs.append(rec)
        latest = max(latest, rec.updated_us)
    # Stages over the bookings, in order; a booking's stage_id follows its stage.
    n_stages = min(len(recs), rng.randrange(1, 4)) if recs else 0
    stage_us = created_us + 3600 * US
    for s in range(n_stages):
        members = [r for j, r in enumerate(recs) if j * n_stages // len(recs) == s]
        statuses = {r.status for r in members}
        if statuses <= {BookingStatus.COMPLETED, BookingStatus.CANCELLED}:
            stage_status = StageStatus.DONE
        elif statuses & {BookingStatus.IN_PROGRESS, BookingStatus.COMPLETED}:
            stage_status = StageStatus.ACTIVE
        else:
            stage_status = StageStatus.PENDING
        stage = StageRec(
            id=state.new_id("stg"),
            project_id=project.id,
            name=_STAGE_NAMES[s % len(_STAGE_NAMES)],
            sequence=s + 1,
            status=stage_status,
            booking_ids=[r.id for r in members],
            created_us=stage_us,
            updated_us=max(stage_us, *(r.updated_us for r in members)),
        )
        client.stages[stage.id] = stage
        client.stage_by_sequence[(project.id, stage.sequence)] = stage.id
        project.stage_ids.append(stage.id)
        for r in members:
            data = r.to_dict()
            r.stage_id = stage.id
            r.updated_us = max(r.updated_us, stage_us) + 1
            data["stage_id"] = stage.id
            data["updated_at"] = ts(r.updated_us)
            r.wire = pack(data)
            latest = max(latest, r.updated_us)
        for title in STAGE_CHECKLIST:
            done = stage_status == StageStatus.DONE or (
                stage_status == StageStatus.ACTIVE and rng.random() < 0.5
            )
            task = TaskRec(
                id=state.new_id("tsk"),
                project_id=project.id,
                stage_id=stage.id,
                title=title,
                status=TaskStatus.DONE if done else TaskStatus.TODO,
                notes=None,
                updated_us=stage.updated_us,
            )
            client.tasks[task.id] = task
            project.task_ids.append(task.id)
    # Payments: a deposit and instalments, never beyond the total.
    for k in range(rng.randrange(0, 4)):
        balance = project.total_minor - project.paid_minor
        if balance <= 0:
            break
        quantum = 10**ctx.country.minor_units
        amount = max(1, balance * rng.randrange(30, 101) // 100 // quantum) * quantum
        amount = min(amount, balance)
        paid_us = min(latest + (k + 1) * DAY * US, ctx.anchor_s * US - k - 1)
        pid = state.new_id("pay")
        payment_ext = f"{project.external_reference}-P{k + 1}"
        stage_id = (
            rng.choice(project.stage_ids) if project.stage_ids and rng.random() < 0.5 else None
        )
        wire = {
            "id": pid,
            "external_reference": payment_ext,
            "project_id": project.id,
            "stage_id": stage_id,
            "amount": money(ctx.country, amount),
            "currency": ctx.country.currency,
            "method": str(rng.choice(list(PaymentMethod))),
            "paid_at": ts(paid_us),
            "created_at": ts(paid_us),
        }
        client.payments[pid] = PaymentRec(pid, payment_ext, project.id, amount, wire)
        client.payment_refs[payment_ext] = pid
        project.payment_ids.append(pid)
        project.paid_minor += amount
        latest = max(latest, paid_us)
    finished = all(not r.active or r.status == BookingStatus.COMPLETED for r in recs)
    if recs and finished and rng.random() < 0.6:
        project.status = ProjectStatus.CLOSED
    project.updated_us = min(latest + 1, ctx.anchor_s * US)
    state.last_stamp_us = max(state.last_stamp_us, project.updated_us, latest)
    return len(recs)
