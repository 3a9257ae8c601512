"""Dataset families: the datasets that are extracted, validated and published together."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class Family(StrEnum):
    CATALOG = "catalog"
    COVERAGE = "coverage"
    BOOKINGS = "bookings"


FAMILIES: dict[Family, tuple[str, ...]] = {
    Family.CATALOG: ("categories", "services", "variants"),
    Family.COVERAGE: ("coverage_zones", "coverage_postal_codes"),
    Family.BOOKINGS: ("bookings", "booking_changes"),
}

SOURCES: dict[str, tuple[str, ...]] = {
    "categories": ("list_categories",),
    "services": ("list_services",),
    "variants": ("list_variants",),
    "coverage_zones": ("list_coverage_zones",),
    "coverage_postal_codes": ("list_coverage_zones",),
    "bookings": ("list_bookings",),
    "booking_changes": ("list_bookings",),
}
"""The API operations (``sodtrack.contract.operations``) each dataset is read from: its
upstream lineage (the Prefect shell records it as asset dependencies)."""

_FAMILY_OF = {dataset: family for family, datasets in FAMILIES.items() for dataset in datasets}


def families_for(names: Iterable[str] | None) -> list[Family]:
    """The families to run for datasets or family names asked for (all when none).

    Asking for one dataset runs its whole family: ``variants`` alone cannot be validated
    (its services are its reference) nor published apart from them.
    """
    wanted: set[Family] = set()
    for name in names or ():
        key = name.strip().lower()
        if key in Family.__members__.values():
            wanted.add(Family(key))
        elif key in _FAMILY_OF:
            wanted.add(_FAMILY_OF[key])
        else:
            known = ", ".join([*(f.value for f in Family), *sorted(_FAMILY_OF)])
            raise ValueError(f"unknown dataset {name!r}: expected one of {known}")
    return [f for f in Family if f in wanted] if wanted else list(Family)
