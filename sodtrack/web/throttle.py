"""Failed sign-ins, counted in the state database (table ``sodtrack_web_login_failures``), so
every process of a deployment and every restart shares one count.

At most ``max_failures`` failed sign-ins per account name and per client in any ``window_s``;
past that, a sign-in is refused without its password being checked until the window has moved
on. A success clears the name's count.

* The attempt is counted *before* its password is checked (:meth:`LoginThrottle.reserve`
  counts the recent attempts and records this one in one transaction serialised per key):
  guesses sent at the same moment, to one process or several, cannot all slip through while
  the slow hash runs. A refused attempt is not counted (it learnt nothing), so waiting out
  the window works.
* The name is counted as the form reads it (``strip().lower()``, what the account lookup
  uses): ``ANA``, `` ana`` and ``Ana`` are one name.
* The client is its address, an IPv4-mapped IPv6 address as the IPv4 one, and an IPv6
  address as its ``/64`` (what one subscriber gets): hopping through one's own ``/64`` does
  not buy new guesses. Behind a proxy named in ``SODTRACK_WEB_FORWARDED_ALLOW_IPS``, the
  address is the one the proxy forwards (:func:`sodtrack.web.app.proxy_options`); behind one
  that is not named, every client has the proxy's address and shares its count.
* Names and addresses are kept as SHA-256 digests: the table tells nobody who tried.

Rows older than the window are removed as new attempts come in.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from sodtrack.db import ensure_schema

_metadata = sa.MetaData()
failures_table = sa.Table(
    "sodtrack_web_login_failures",
    _metadata,
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column("key", sa.String(48), nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    sa.Index("ix_sodtrack_web_login_failures_key_at", "key", "at"),
)


def address_key(address: str) -> str:
    """The client an address stands for (see the module docstring); not an IP: as given."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def _key(kind: str, value: str) -> str:
    return f"{kind}:{hashlib.sha256(value.encode('utf-8', 'surrogatepass')).hexdigest()[:40]}"


class LoginThrottle:
    """The failed sign-ins of one deployment, on the state database's engine."""

    def __init__(
        self,
        engine: Engine,
        *,
        max_failures: int,
        window_s: float,
        clock: Callable[[], float],
    ) -> None:
        self.engine = engine
        self.max_failures = max_failures
        self.window_s = window_s
        self._clock = clock
        ensure_schema(_metadata, engine)

    def _keys(self, name: str, address: str) -> tuple[str, str]:
        return _key("u", name), _key("a", address_key(address))

    def reserve(self, name: str, address: str) -> tuple[float, tuple[int, ...]]:
        """Count a sign-in of ``name`` from ``address`` as failed, before its password is
        checked. Returns ``(wait, ticket)``: ``wait > 0``: refused, try again in that many
        seconds (nothing counted); else check the password, and on success hand the ticket
        to :meth:`succeeded`.

        Count and record are one transaction that holds the keys' lock (see
        :meth:`_serialise`): two attempts on one key, in any processes, are counted one after
        the other, each seeing the other's row. (Recording first and counting after, in two
        transactions, let simultaneous attempts on PostgreSQL each count before the others'
        rows were committed: more than the limit got their passwords checked.)"""
        now = self._clock()
        since = now - self.window_s
        t = failures_table
        keys = self._keys(name, address)
        with self.engine.begin() as conn:
            self._serialise(conn, keys)
            conn.execute(sa.delete(t).where(t.c.at <= since))
            wait = 0.0
            for key in keys:
                recent = (
                    conn.execute(
                        sa.select(t.c.at)
                        .where(t.c.key == key, t.c.at > since)
                        .order_by(t.c.at.desc(), t.c.id.desc())
                        .limit(self.max_failures)
                    )
                    .scalars()
                    .all()
                )
                if len(recent) >= self.max_failures:
                    # The oldest of the last ``max_failures`` has to leave the window.
                    wait = max(wait, recent[-1] + self.window_s - now)
            if wait > 0:
                return max(wait, 1e-3), ()
            ticket = tuple(
                int(conn.execute(sa.insert(t).values(key=k, at=now).returning(t.c.id)).scalar_one())
                for k in keys
            )
        return 0.0, ticket

    @staticmethod
    def _serialise(conn: sa.Connection, keys: tuple[str, ...]) -> None:
        """Make ``conn``'s transaction the only one on ``keys`` until it ends.

        PostgreSQL: a transaction-level advisory lock per key, taken in sorted order (two
        attempts sharing a name and an address cannot deadlock); under READ COMMITTED each
        later statement then sees every earlier attempt's committed row. SQLite: the first
        statement of the transaction is a write (the purge), which takes the database's one
        write lock until commit; other writers wait for it (``busy_timeout``)."""
        if conn.dialect.name != "postgresql":
            return
        for key in sorted(keys):
            lock_id = int.from_bytes(
                hashlib.blake2b(f"login:{key}".encode(), digest_size=8).digest(),
                "big",
                signed=True,
            )
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_id})

    def succeeded(self, name: str, ticket: tuple[int, ...]) -> None:
        """The password was right: the name's count is cleared, and this attempt does not
        count against the address."""
        t = failures_table
        with self.engine.begin() as conn:
            conn.execute(sa.delete(t).where(sa.or_(t.c.key == _key("u", name), t.c.id.in_(ticket))))
