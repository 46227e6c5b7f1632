"""Process helpers: pid files, liveness, group termination, leftover detection."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import signal
import socket
import time
from collections.abc import Callable, Coroutine, Iterable
from pathlib import Path
from typing import Any, TypeVar

import psutil

#: Progress callback: receives a short description of the step being started.
Step = Callable[[str], None]

T = TypeVar("T")


def no_step(_: str) -> None:
    """Default :data:`Step` callback: report nothing."""


def read_pid(pid_file: Path) -> int | None:
    """Return the pid stored in *pid_file*, or ``None`` if missing or unreadable."""
    try:
        return int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def write_pid(pid_file: Path, pid: int) -> None:
    """Write *pid* to *pid_file* (parent directories created)."""
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(f"{pid}\n")


def is_alive(pid: int | None) -> bool:
    """True if *pid* names a running, non-zombie process."""
    if pid is None or pid <= 0:
        return False
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def live_pid(pid_file: Path) -> int | None:
    """Return the pid of *pid_file* if that process runs; remove a stale file."""
    pid = read_pid(pid_file)
    if is_alive(pid):
        return pid
    pid_file.unlink(missing_ok=True)
    return None


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True if a TCP connection to ``host:port`` succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def port_free(host: str, port: int) -> bool:
    """True if nothing listens on ``host:port`` and it can be bound."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """Return *count* distinct TCP ports that are free right now on *host*."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def terminate_group(pid: int, timeout: float) -> bool:
    """Stop *pid* and its process group: SIGTERM, wait *timeout* s, then SIGKILL.

    Returns True if SIGKILL was needed.
    """
    try:
        pgid = os.getpgid(pid)
    except ProcessLookupError:
        return False
    own_group = pgid == pid  # started with start_new_session=True
    _signal(pid, pgid if own_group else None, signal.SIGTERM)
    if wait_gone([pid], timeout):
        return False
    _signal(pid, pgid if own_group else None, signal.SIGKILL)
    wait_gone([pid], 5.0)
    return True


def _signal(pid: int, pgid: int | None, sig: signal.Signals) -> None:
    """Send *sig* to the group *pgid* if given, else to *pid*; ignore vanished targets."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if pgid is not None:
            os.killpg(pgid, sig)
        else:
            os.kill(pid, sig)


def wait_gone(pids: Iterable[int], timeout: float) -> bool:
    """Wait until none of *pids* is alive; True if they all went within *timeout*."""
    deadline = time.monotonic() + timeout
    pending = [p for p in pids if is_alive(p)]
    while pending:
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
        pending = [p for p in pending if is_alive(p)]
    return True


def kill_processes(procs: Iterable[psutil.Process], timeout: float = 10.0) -> None:
    """Terminate *procs*, then kill whatever survived *timeout* seconds."""
    procs = list(procs)
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(alive, timeout=5.0)


def describe(proc: psutil.Process) -> str:
    """Short ``pid name`` description of *proc* for error messages."""
    try:
        return f"{proc.pid} {' '.join(proc.cmdline())[:120]}"
    except psutil.Error:
        return str(proc.pid)


def file_size(path: Path) -> int:
    """Size of *path* in bytes (0 if missing)."""
    try:
        return path.stat().st_size
    except OSError:
        return 0


def tail(path: Path, lines: int = 40, start: int = 0) -> str:
    """Return the last *lines* lines of *path* after byte *start* ('' if missing)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(start, size - 64 * 1024) if start <= size else 0)
            data = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


def run_sync(make_coro: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run the coroutine built by *make_coro* to completion from synchronous code.

    It runs with :func:`asyncio.run` in a short-lived worker thread, so it works when
    the caller's thread has an event loop (running or merely set, as in pytest-asyncio)
    and never replaces that thread's current loop.
    """
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(make_coro())).result()
