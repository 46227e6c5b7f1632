"""PostgreSQL access: the asyncpg pool and versioned SQL migrations.

Migrations are plain SQL files named ``NNNN_description.sql`` in a directory per
owner (the kit has its own, each service has one). They are applied at start, in
order, each in its own transaction, under an advisory lock so that several
replicas starting together apply each file once. A file already applied whose
content changed is an error: history is never rewritten.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

KIT_MIGRATIONS = Path(__file__).parent / "migrations"
_MIGRATION_LOCK = 0x5550_5741  # "UPWA": one lock id for every migration run
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

_LEDGER = """
CREATE TABLE IF NOT EXISTS kit_schema_migrations (
    owner      text        NOT NULL,
    version    integer     NOT NULL,
    name       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (owner, version)
)
"""


Connection: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"
"""A connection, direct or borrowed from a pool: repositories accept either."""


class MigrationError(RuntimeError):
    """A migration directory is inconsistent with what the database has applied."""


@dataclass(frozen=True)
class Migration:
    """One SQL file of a migration directory."""

    owner: str
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        """SHA-256 of the file content."""
        return hashlib.sha256(self.sql.encode()).hexdigest()


if TYPE_CHECKING:
    _PlainConnection = asyncpg.Connection[asyncpg.Record]
else:  # generic in the stubs only
    _PlainConnection = asyncpg.Connection


class KitConnection(_PlainConnection):
    """A connection of the kit's pools: reset on release only when it may hold session state.

    asyncpg resets every connection released to a pool with one more round trip
    (``SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL``): a fixed cost
    on every transaction. The kit's pooled connections keep nothing in their session:
    asyncpg still rolls back a transaction left open (and drops listener callbacks) on
    release, cursors live inside transactions, nothing runs ``SET``, ``LISTEN`` or
    ``PREPARE`` on them (the listeners have connections of their own), and the advisory
    locks are transaction-scoped. The exceptions take a session-level advisory lock (the
    migrations, an exclusive timer's round): they call :func:`keeps_session_state` first,
    and that connection gets asyncpg's full reset when it is released, so a lock whose
    unlock never ran (a cancelled round) is released all the same.
    """

    __slots__ = ("_keeps_session_state",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._keeps_session_state = False

    def keep_session_state(self) -> None:
        """Reset this connection's session when it is next released to the pool."""
        self._keeps_session_state = True

    def get_reset_query(self) -> str:
        """asyncpg's reset query if the session may hold state, else none."""
        if not self._keeps_session_state:
            return ""
        self._keeps_session_state = False
        return super().get_reset_query()


def keeps_session_state(conn: Connection) -> None:
    """Mark ``conn`` as about to hold session state (a session-level advisory lock): the
    pool resets its session when it is released. Call it before taking the state."""
    mark = getattr(conn, "keep_session_state", None)  # a pool's proxy forwards it
    if mark is not None:
        mark()


async def create_pool(url: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    """Open an asyncpg pool on ``url`` (of :class:`KitConnection`)."""
    pool = await asyncpg.create_pool(
        url, min_size=min_size, max_size=max_size, connection_class=KitConnection
    )
    assert pool is not None
    return pool


def read_migrations(owner: str, directory: Path) -> list[Migration]:
    """Read and order the migration files of ``directory``."""
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if match is None:
            raise MigrationError(f"{path}: migration files are named NNNN_description.sql")
        found.append(Migration(owner, int(match.group(1)), path.name, path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"{directory}: two migrations share a version number")
    return found


async def apply_migrations(pool: asyncpg.Pool, owner: str, directory: Path) -> list[str]:
    """Apply the pending migrations of ``owner``; return the names applied now."""
    migrations = read_migrations(owner, directory)
    async with pool.acquire() as conn:
        keeps_session_state(conn)
        await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
        try:
            await conn.execute(_LEDGER)
            return await _apply_pending(conn, migrations, owner)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)


async def _apply_pending(conn: Connection, migrations: list[Migration], owner: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT version, checksum FROM kit_schema_migrations WHERE owner = $1", owner
    )
    applied = {r["version"]: r["checksum"] for r in rows}
    done: list[str] = []
    for migration in migrations:
        if migration.version in applied:
            if applied[migration.version] != migration.checksum:
                raise MigrationError(f"{owner}/{migration.name} changed after it was applied")
            continue
        async with conn.transaction():
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO kit_schema_migrations (owner, version, name, checksum)"
                " VALUES ($1, $2, $3, $4)",
                owner,
                migration.version,
                migration.name,
                migration.checksum,
            )
        done.append(migration.name)
    return done
