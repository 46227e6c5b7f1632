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
from typing import TypeAlias

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


async def create_pool(url: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    """Open an asyncpg pool on ``url``."""
    pool = await asyncpg.create_pool(url, min_size=min_size, max_size=max_size)
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
