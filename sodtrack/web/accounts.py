"""Accounts of the upload page, in the state database (tables ``sodtrack_web_*``).

An account has a name, an argon2id password hash, the countries it may load into, and a
``disabled`` flag; API tokens are per account (``sodtrack-etl users token NAME``), stored only
as their SHA-256 (the token itself is shown once, when it is made). The key that signs session
cookies lives here too (``sodtrack_web_keys``) unless ``SODTRACK_WEB_SECRET_KEY`` sets one, so
sessions survive a restart and every process of one deployment signs alike.

Tables and migrations go through :mod:`sodtrack.db` (``ensure_schema``, ``MIGRATIONS`` as data).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy.exc import IntegrityError

from sodtrack.contract.countries import get_country
from sodtrack.db import AddColumn, engine_for, ensure_schema
from sodtrack.errors import AccountError

_metadata = sa.MetaData()
users_table = sa.Table(
    "sodtrack_web_users",
    _metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("password_hash", sa.Text, nullable=False),
    sa.Column("countries", sa.String(200), nullable=False),
    sa.Column("disabled", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("updated_at", sa.String(40), nullable=False),
)
tokens_table = sa.Table(
    "sodtrack_web_tokens",
    _metadata,
    sa.Column("token_sha256", sa.String(64), primary_key=True),
    sa.Column("user_name", sa.String(64), nullable=False, index=True),
    sa.Column("created_at", sa.String(40), nullable=False),
)
keys_table = sa.Table(
    "sodtrack_web_keys",
    _metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

MIGRATIONS: tuple[AddColumn, ...] = ()
"""Columns added to these tables since databases exist in the field (:mod:`sodtrack.db`)."""

NAME_PATTERN: Final = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,63}$")
MIN_PASSWORD_CHARS: Final = 10
TOKEN_PREFIX: Final = "sdt_"  # noqa: S105 (a prefix, not a secret)

_hasher = PasswordHasher()
_DUMMY_HASH: Final = _hasher.hash("not-a-real-password-0")
"""Verified against when the account does not exist: the answer takes as long either way."""


@dataclass(frozen=True, slots=True)
class Account:
    name: str
    countries: tuple[str, ...]
    disabled: bool
    created_at: str

    def may_load(self, country: str) -> bool:
        return not self.disabled and country in self.countries


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _check_name(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise AccountError(
            f"invalid account name {name!r}: lower-case letters, digits and . _ @ - "
            "(at most 64, starting with a letter or digit)"
        )
    return name


def _countries(codes: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    if not codes:
        raise AccountError("an account needs at least one --country")
    try:
        return tuple(sorted({get_country(c).code for c in codes}))
    except ValueError as exc:
        raise AccountError(str(exc)) from exc


def _check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_CHARS:
        raise AccountError(f"a password needs at least {MIN_PASSWORD_CHARS} characters")
    return password


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Accounts:
    """The accounts store on the state database's engine."""

    def __init__(self, url: str) -> None:
        self.engine = engine_for(url)
        ensure_schema(_metadata, self.engine, MIGRATIONS)

    def close(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------ management (the CLI)

    def add(self, name: str, password: str, countries: list[str] | tuple[str, ...]) -> Account:
        values = {
            "name": _check_name(name),
            "password_hash": _hasher.hash(_check_password(password)),
            "countries": ",".join(_countries(countries)),
            "disabled": False,
            "created_at": _now(),
            "updated_at": _now(),
        }
        try:
            with self.engine.begin() as conn:
                conn.execute(sa.insert(users_table).values(**values))
        except IntegrityError as exc:
            raise AccountError(f"account {name!r} exists already") from exc
        account = self.get(name)
        assert account is not None
        return account

    def get(self, name: str) -> Account | None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(sa.select(users_table).where(users_table.c.name == name))
                .mappings()
                .first()
            )
        return _account(row) if row is not None else None

    def all(self) -> list[Account]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(users_table).order_by(users_table.c.name)).mappings()
            return [_account(r) for r in rows]

    def _update(self, name: str, **values: object) -> None:
        with self.engine.begin() as conn:
            done = conn.execute(
                sa.update(users_table)
                .where(users_table.c.name == name)
                .values(**values, updated_at=_now())
            ).rowcount
        if not done:
            raise AccountError(f"no account {name!r}")

    def set_password(self, name: str, password: str) -> None:
        self._update(name, password_hash=_hasher.hash(_check_password(password)))

    def set_countries(self, name: str, countries: list[str] | tuple[str, ...]) -> None:
        self._update(name, countries=",".join(_countries(countries)))

    def disable(self, name: str) -> None:
        """Disabled: no sign-in, no session, no token works any more (checked per request)."""
        self._update(name, disabled=True)
        with self.engine.begin() as conn:
            conn.execute(sa.delete(tokens_table).where(tokens_table.c.user_name == name))

    def enable(self, name: str) -> None:
        self._update(name, disabled=False)

    def new_token(self, name: str) -> str:
        """A new API token for ``name`` (shown once; only its SHA-256 is kept)."""
        account = self.get(name)
        if account is None or account.disabled:
            raise AccountError(f"no enabled account {name!r}")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            conn.execute(
                sa.insert(tokens_table).values(
                    token_sha256=token_digest(token), user_name=name, created_at=_now()
                )
            )
        return token

    # ------------------------------------------------------------ sign-in (the server)

    def verify(self, name: str, password: str) -> Account | None:
        """The account when ``password`` is its password and it is enabled, else ``None``
        (the same work is done for an unknown name: no timing tells names apart)."""
        with self.engine.connect() as conn:
            row = (
                conn.execute(sa.select(users_table).where(users_table.c.name == name))
                .mappings()
                .first()
            )
        stored = row["password_hash"] if row is not None else _DUMMY_HASH
        try:
            _hasher.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if row is None or row["disabled"]:
            return None
        if _hasher.check_needs_rehash(stored):
            self._update(name, password_hash=_hasher.hash(password))
        return _account(row)

    def by_token(self, token: str) -> Account | None:
        if not token.startswith(TOKEN_PREFIX):
            return None
        with self.engine.connect() as conn:
            name = conn.execute(
                sa.select(tokens_table.c.user_name).where(
                    tokens_table.c.token_sha256 == token_digest(token)
                )
            ).scalar()
        account = self.get(name) if name else None
        return account if account is not None and not account.disabled else None

    def signing_key(self) -> bytes:
        """This deployment's session-signing key, made once and kept in the database."""
        fresh = secrets.token_hex(32)
        try:
            with self.engine.begin() as conn:
                conn.execute(sa.insert(keys_table).values(name="session", value=fresh))
        except IntegrityError:
            pass  # made before (or meanwhile by another process): use that one
        with self.engine.connect() as conn:
            value = conn.execute(
                sa.select(keys_table.c.value).where(keys_table.c.name == "session")
            ).scalar_one()
        return bytes.fromhex(value)


def _account(row: sa.RowMapping) -> Account:
    return Account(
        name=row["name"],
        countries=tuple(c for c in row["countries"].split(",") if c),
        disabled=bool(row["disabled"]),
        created_at=row["created_at"],
    )
