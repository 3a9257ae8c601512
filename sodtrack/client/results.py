"""Result types of the client's calls: pages of a walk and outcomes of safe-to-repeat writes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from sodtrack.contract.models import PageMeta

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PageResult(Generic[T]):
    """One page of a walk: its items (after de-duplication, if on) and the page's envelope."""

    items: list[T]
    received: int
    """Items the server sent on this page (before de-duplication)."""
    meta: PageMeta | None = None
    """Page-numbered lists: the page's ``meta``."""
    next_cursor: str | None = None
    """Cursor lists: the cursor of the next page (``None`` on the last)."""


@dataclass(frozen=True, slots=True)
class WriteResult(Generic[T]):
    """The outcome of a create that is safe to repeat.

    * ``created``: this call saw the ``201``.
    * ``reconciled``: an attempt of this call failed ambiguously (5xx, dropped connection,
      timeout) and the outcome was established afterwards: found by ``external_reference``,
      or through the ``409``'s ``existing_id`` on a repeat. With ``created=False`` and
      ``reconciled=False`` the resource existed before the call (a plain ``409``).
    * ``mismatches``: differences between what was asked and what exists, when an existing
      resource was returned (``create_stage`` compares ``booking_ids``).
    * ``resource`` is the existing or new resource; ``None`` only where the contract has no
      way to read it back (a lead that already existed: there is no ``GET`` for leads).
    """

    id: str
    resource: T
    created: bool
    reconciled: bool = False
    mismatches: tuple[str, ...] = ()
