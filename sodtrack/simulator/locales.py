"""Per-country flavour for seeded data: names, streets, regions, phones, document ids and
postal codes in each country's own format.

Only plausibility matters here (the API never validates names or document ids); formats that
the contract does check (E.164 phones, postal codes) are produced to match
``sodtrack.contract.countries`` and ``limits.PHONE_PATTERN`` exactly.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from sodtrack.contract.countries import Country

_HISPANIC_FIRST = (
    "Ana", "María", "José", "Juan", "Camila", "Valentina", "Diego", "Felipe", "Sofía", "Javiera",
    "Carlos", "Luis", "Francisca", "Matías", "Catalina", "Pedro", "Isabel", "Tomás", "Lucía",
    "Andrés", "Daniela", "Sebastián", "Fernanda", "Jorge", "Paula", "Ricardo", "Gabriela",
    "Martín", "Constanza", "Alejandro",
)  # fmt: skip
_HISPANIC_LAST = (
    "González", "Muñoz", "Rojas", "Díaz", "Pérez", "Soto", "Contreras", "Silva", "Martínez",
    "Sepúlveda", "Morales", "Rodríguez", "López", "Fuentes", "Hernández", "Torres", "Araya",
    "Flores", "Espinoza", "Valenzuela", "Castillo", "Ramírez", "Reyes", "Gutiérrez", "Castro",
    "Vargas", "Álvarez", "Vásquez", "Tapia", "Fernández", "García", "Sánchez", "Romero",
)  # fmt: skip
_BR_FIRST = (
    "Ana", "Maria", "João", "José", "Pedro", "Lucas", "Gabriel", "Juliana", "Mariana", "Beatriz",
    "Rafael", "Felipe", "Camila", "Larissa", "Bruno", "Thiago", "Fernanda", "Letícia", "Mateus",
    "Carolina",
)  # fmt: skip
_BR_LAST = (
    "Silva", "Santos", "Oliveira", "Souza", "Rodrigues", "Ferreira", "Alves", "Pereira", "Lima",
    "Gomes", "Costa", "Ribeiro", "Martins", "Carvalho", "Almeida", "Lopes", "Sousa", "Fernandes",
    "Vieira", "Barbosa",
)  # fmt: skip
_ES_STREETS = (
    "Av. Providencia", "Calle Los Aromos", "Av. Libertador", "Pasaje Las Rosas", "Calle Moneda",
    "Av. Los Leones", "Calle San Martín", "Av. Del Mar", "Calle Bolívar", "Av. Central",
    "Calle Independencia", "Av. Las Condes", "Jr. de la Unión", "Calle 45", "Carrera 7",
)  # fmt: skip
_BR_STREETS = (
    "Av. Paulista", "Rua Augusta", "Rua das Flores", "Av. Brasil", "Rua XV de Novembro",
    "Rua da Consolação", "Av. Atlântica", "Rua Oscar Freire", "Rua Direita", "Av. Rio Branco",
)  # fmt: skip
_EMAIL_DOMAINS = ("example.com", "example.org", "example.net", "mail.example.com")


@dataclass(frozen=True, slots=True)
class Locale:
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]
    streets: tuple[str, ...]
    line2: tuple[str, ...]
    regions: tuple[tuple[str, tuple[str, ...]], ...]
    """(region, cities) pairs; zones are laid over them in postal-code order."""
    mobile: tuple[str, int]
    """(digits after the country prefix that start a mobile number, how many random follow)."""


LOCALES: dict[str, Locale] = {
    "cl": Locale(
        _HISPANIC_FIRST,
        _HISPANIC_LAST,
        _ES_STREETS,
        ("Depto 5", "Depto 1203", "Casa B", "Of. 301"),
        (
            ("RM", ("Santiago", "Providencia", "Las Condes", "Maipú", "Ñuñoa", "La Florida")),
            ("Valparaíso", ("Valparaíso", "Viña del Mar", "Quilpué")),
            ("Biobío", ("Concepción", "Talcahuano", "Los Ángeles")),
            ("Maule", ("Talca", "Curicó")),
            ("Antofagasta", ("Antofagasta", "Calama")),
            ("Araucanía", ("Temuco", "Villarrica")),
        ),
        ("9", 8),
    ),
    "pe": Locale(
        _HISPANIC_FIRST,
        _HISPANIC_LAST,
        _ES_STREETS,
        ("Dpto 302", "Int. 4", "Piso 2"),
        (
            ("Lima", ("Miraflores", "San Isidro", "Surco", "La Molina", "San Borja")),
            ("Arequipa", ("Arequipa", "Cayma")),
            ("La Libertad", ("Trujillo",)),
            ("Piura", ("Piura", "Sullana")),
            ("Cusco", ("Cusco",)),
        ),
        ("9", 8),
    ),
    "co": Locale(
        _HISPANIC_FIRST,
        _HISPANIC_LAST,
        _ES_STREETS,
        ("Apto 502", "Torre 2 Apto 1101", "Casa 14"),
        (
            ("Bogotá D.C.", ("Bogotá",)),
            ("Antioquia", ("Medellín", "Envigado", "Bello")),
            ("Valle del Cauca", ("Cali", "Palmira")),
            ("Atlántico", ("Barranquilla", "Soledad")),
            ("Santander", ("Bucaramanga",)),
        ),
        ("3", 9),
    ),
    "mx": Locale(
        _HISPANIC_FIRST,
        _HISPANIC_LAST,
        _ES_STREETS,
        ("Int. 4", "Depto 12", "Piso 3"),
        (
            ("CDMX", ("Cuauhtémoc", "Benito Juárez", "Coyoacán", "Miguel Hidalgo")),
            ("Estado de México", ("Naucalpan", "Toluca", "Ecatepec")),
            ("Jalisco", ("Guadalajara", "Zapopan")),
            ("Nuevo León", ("Monterrey", "San Pedro Garza García")),
            ("Puebla", ("Puebla",)),
        ),
        ("55", 8),
    ),
    "ar": Locale(
        _HISPANIC_FIRST,
        _HISPANIC_LAST,
        _ES_STREETS,
        ("Piso 3 Dto B", "PB A", "Piso 10 Dto 2"),
        (
            ("CABA", ("Buenos Aires",)),
            ("Buenos Aires", ("La Plata", "Mar del Plata", "Quilmes")),
            ("Córdoba", ("Córdoba", "Villa Carlos Paz")),
            ("Santa Fe", ("Rosario", "Santa Fe")),
            ("Mendoza", ("Mendoza",)),
        ),
        ("911", 8),
    ),
    "br": Locale(
        _BR_FIRST,
        _BR_LAST,
        _BR_STREETS,
        ("Apto 51", "Bloco B Apto 12", "Casa 2"),
        (
            ("SP", ("São Paulo", "Campinas", "Santos", "Guarulhos")),
            ("RJ", ("Rio de Janeiro", "Niterói")),
            ("MG", ("Belo Horizonte", "Uberlândia")),
            ("PR", ("Curitiba", "Londrina")),
            ("RS", ("Porto Alegre",)),
        ),
        ("119", 8),
    ),
    "uy": Locale(
        _HISPANIC_FIRST,
        _HISPANIC_LAST,
        _ES_STREETS,
        ("Apto 301", "Apto 12"),
        (
            ("Montevideo", ("Montevideo",)),
            ("Canelones", ("Ciudad de la Costa", "Las Piedras")),
            ("Maldonado", ("Punta del Este", "Maldonado")),
            ("Colonia", ("Colonia del Sacramento",)),
        ),
        ("9", 7),
    ),
}

_AR_PROVINCE_LETTERS = "CBXSMTNEQ"
_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"


def postal_codes(country: Country, rng: random.Random, n: int) -> list[str]:
    """``n`` distinct postal codes in the country's format, in ascending order (so that
    consecutive zones hold neighbouring codes, as real zones do)."""
    code = country.code
    if code == "ar":
        seen: set[str] = set()
        while len(seen) < n:
            seen.add(
                rng.choice(_AR_PROVINCE_LETTERS)
                + f"{rng.randrange(1000, 10000)}"
                + "".join(rng.choices(_LETTERS, k=3))
            )
        codes = sorted(seen)
    elif code == "br":
        codes = [
            f"{v:08d}"[:5] + "-" + f"{v:08d}"[5:]
            for v in sorted(rng.sample(range(1_000_000, 100_000_000), n))
        ]
    else:
        width = country.postal_code_digits or 5
        # Leading zeros where the country has them (MX, CO, PE); CL and UY codes start at 1.
        low = {"cl": 1_000_000, "uy": 10_000, "co": 50_000, "mx": 1_000, "pe": 1_000}[code]
        high = 10**width
        n = min(n, high - low)
        codes = [f"{v:0{width}d}" for v in sorted(rng.sample(range(low, high), n))]
    assert all(country.is_valid_postal_code(c) for c in codes[:100])
    return codes


def phone(country: Country, locale: Locale, rng: random.Random) -> str:
    start, digits = locale.mobile
    return f"{country.phone_prefix}{start}{rng.randrange(10 ** (digits - 1), 10**digits)}"


def document_id(country: str, rng: random.Random) -> str | None:
    """A plausible national id in the local format (not validated by the API)."""
    if country == "cl":
        body = rng.randrange(5_000_000, 26_000_000)
        return f"{body:,}".replace(",", ".") + "-" + _rut_check_digit(body)
    if country == "br":
        digits = [rng.randrange(10) for _ in range(9)]
        for _ in range(2):
            weight = len(digits) + 1
            total = sum(d * (weight - i) for i, d in enumerate(digits))
            digits.append((total * 10) % 11 % 10)
        s = "".join(map(str, digits))
        return f"{s[:3]}.{s[3:6]}.{s[6:9]}-{s[9:]}"
    if country == "ar":
        return f"{rng.randrange(20_000_000, 45_000_000):,}".replace(",", ".")
    if country == "uy":
        return (
            f"{rng.randrange(1_000_000, 6_000_000):,}".replace(",", ".") + f"-{rng.randrange(10)}"
        )
    if country == "mx":
        return (
            None
            if rng.random() < 0.5
            else "".join(rng.choices(_LETTERS, k=4))
            + (f"{rng.randrange(600101, 991231)}H" + "".join(rng.choices(_LETTERS, k=5)) + "09")
        )
    if country == "pe":
        return f"{rng.randrange(10_000_000, 80_000_000)}"
    return f"{rng.randrange(10_000_000, 1_200_000_000)}"


def _rut_check_digit(body: int) -> str:
    total, factor = 0, 2
    while body:
        body, digit = divmod(body, 10)
        total += digit * factor
        factor = 2 if factor == 7 else factor + 1
    rest = 11 - total % 11
    return {11: "0", 10: "K"}.get(rest, str(rest))


def email(first: str, last: str, n: int) -> str:
    local = f"{_ascii(first)}.{_ascii(last)}{n % 1000}"
    return f"{local}@{_EMAIL_DOMAINS[n % len(_EMAIL_DOMAINS)]}"


_ASCII = str.maketrans("áéíóúñüãõçâêôÁÉÍÓÚÑÜ", "aeiounuaocaeoAEIOUNU")


def _ascii(text: str) -> str:
    return text.translate(_ASCII).lower().replace(" ", "")
