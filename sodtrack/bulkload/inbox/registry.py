"""The inbox registry: one row per upload id in the state store's database (table
``sodtrack_inbox``), so the same bytes dropped again are recognised and announced once."""

from __future__ import annotations

import logging
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from sodtrack.bulkload.inbox.events import Received, event_id_for
from sodtrack.db import AddColumn, engine_for, ensure_schema

log = logging.getLogger("sodtrack.bulkload.inbox")


ANNOUNCE_LEASE_S = 60.0
"""How long a watcher has to announce an upload it took before another may do it."""

# ---------------------------------------------------------------- registry

_metadata = sa.MetaData()
inbox_table = sa.Table(
    "sodtrack_inbox",
    _metadata,
    sa.Column("upload_id", sa.String(64), primary_key=True),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("country", sa.String(8), nullable=False),
    sa.Column("file_name", sa.String(512), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("outbox", sa.Text, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("received_at", sa.String(40), nullable=False),
    sa.Column("drops", sa.Integer, nullable=False, default=1),
    sa.Column("last_drop_at", sa.String(40), nullable=False),
    sa.Column("event_id", sa.String(36), nullable=False),
    sa.Column("emitted_at", sa.String(40), nullable=True),
    sa.Column("announcing_until", sa.String(40), nullable=False),
)

MIGRATIONS: tuple[AddColumn, ...] = ()
"""Columns added to these tables since databases exist in the field (:mod:`sodtrack.db`)."""


def iso_timestamp(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


class Registry:
    """Which uploads were received and announced, in the state store's database."""

    def __init__(self, url: str) -> None:
        self.engine = engine_for(url)
        ensure_schema(_metadata, self.engine, MIGRATIONS)

    def close(self) -> None:
        self.engine.dispose()

    def claim(self, received: Received, *, lease_s: float = ANNOUNCE_LEASE_S) -> bool:
        """Register a first drop (``True``): the caller holds the right to announce it for
        ``lease_s``. A known upload counts one more drop (``False``)."""
        values = {
            **asdict(received),
            "drops": 1,
            "last_drop_at": received.received_at,
            "event_id": event_id_for(received.upload_id),
            "announcing_until": iso_timestamp(datetime.now(UTC) + timedelta(seconds=lease_s)),
        }
        try:
            with self.engine.begin() as conn:
                conn.execute(sa.insert(inbox_table).values(**values))
            return True
        except IntegrityError:
            with self.engine.begin() as conn:
                conn.execute(
                    sa.update(inbox_table)
                    .where(inbox_table.c.upload_id == received.upload_id)
                    .values(drops=inbox_table.c.drops + 1, last_drop_at=received.received_at)
                )
            return False

    def mark_emitted(self, upload_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(inbox_table)
                .where(inbox_table.c.upload_id == upload_id)
                .values(emitted_at=iso_timestamp(datetime.now(UTC)))
            )

    def release(self, upload_id: str) -> None:
        """Give up announcing (the event was refused): anyone may try again at once."""
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(inbox_table)
                .where(inbox_table.c.upload_id == upload_id, inbox_table.c.emitted_at.is_(None))
                .values(announcing_until=iso_timestamp(datetime.now(UTC)))
            )

    def pending(self) -> list[Received]:
        """Registered uploads whose event was not (known to be) accepted yet."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(inbox_table)
                .where(inbox_table.c.emitted_at.is_(None))
                .order_by(inbox_table.c.received_at)
            ).mappings()
            return [_received(r) for r in rows]

    def take_pending(self, *, lease_s: float = ANNOUNCE_LEASE_S) -> list[Received]:
        """The pending uploads nobody is announcing now, each taken for ``lease_s`` (so two
        watchers on one registry never both announce an upload)."""
        now = datetime.now(UTC)
        mine: list[Received] = []
        for received in self.pending():
            with self.engine.begin() as conn:
                taken = conn.execute(
                    sa.update(inbox_table)
                    .where(
                        inbox_table.c.upload_id == received.upload_id,
                        inbox_table.c.emitted_at.is_(None),
                        inbox_table.c.announcing_until <= iso_timestamp(now),
                    )
                    .values(announcing_until=iso_timestamp(now + timedelta(seconds=lease_s)))
                ).rowcount
            if taken:
                mine.append(received)
        return mine

    def get(self, upload_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(sa.select(inbox_table).where(inbox_table.c.upload_id == upload_id))
                .mappings()
                .first()
            )
        return dict(row) if row is not None else None


def _received(row: sa.RowMapping) -> Received:
    return Received(**{k: row[k] for k in Received.__dataclass_fields__})
