"""A separate up/down cycle in its own home on free ports leaves nothing behind."""

from __future__ import annotations

import json
from pathlib import Path

import psutil
import pytest
from typer.testing import CliRunner

from upward.cli import app
from upward.stack import SERVICES, free_ports

pytestmark = pytest.mark.integration

_CLEAN_ENV: dict[str, str | None] = {
    "UPWARD_KAFKA_BOOTSTRAP_SERVERS": None,
    "UPWARD_DATABASE_URL": None,
    **{f"UPWARD_{s.upper()}_DATABASE_URL": None for s in SERVICES},
    "UPWARD_STACK_HOME": None,
    "COLUMNS": "200",
}


def _stack_pids(home: Path) -> set[int]:
    """Recorded pids of *home* plus every java/postgres process mentioning it (+children)."""
    state = json.loads((home / "stack.json").read_text())
    roots = {state["kafka"]["pid"], state["postgres"]["pid"]}
    for proc in psutil.process_iter(attrs=["cmdline"]):
        if any(str(home) in arg for arg in proc.info["cmdline"] or []):
            roots.add(proc.pid)
    pids = set(roots)
    for pid in roots:
        try:
            pids |= {c.pid for c in psutil.Process(pid).children(recursive=True)}
        except psutil.NoSuchProcess:
            continue
    return pids


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_up_status_down_purge_leaves_no_process(tmp_path: Path) -> None:
    home = tmp_path / "stack-home"
    kafka_port, controller_port, pg_port = free_ports(3)
    runner = CliRunner()
    args = ["--home", str(home)]
    up = ["stack", "up", *args, "--kafka-port", str(kafka_port),
          "--controller-port", str(controller_port), "--postgres-port", str(pg_port)]  # fmt: skip

    result = runner.invoke(app, up, env=_CLEAN_ENV)
    assert result.exit_code == 0, result.output
    pids = _stack_pids(home)
    assert len(pids) >= 3, pids  # java + postmaster + postgres workers
    assert all(_running(pid) for pid in pids)

    again = runner.invoke(app, up, env=_CLEAN_ENV)  # idempotent
    assert again.exit_code == 0, again.output
    assert "already running" in again.output
    assert _stack_pids(home) == pids

    status = runner.invoke(app, ["stack", "status", *args], env=_CLEAN_ENV)
    assert status.exit_code == 0, status.output
    assert f"127.0.0.1:{kafka_port}" in status.output and f"127.0.0.1:{pg_port}" in status.output

    down = runner.invoke(app, ["stack", "down", "--purge", *args], env=_CLEAN_ENV)
    assert down.exit_code == 0, down.output
    assert not [pid for pid in pids if _running(pid)]
    assert not home.exists()

    status = runner.invoke(app, ["stack", "status", *args], env=_CLEAN_ENV)
    assert status.exit_code == 1
    assert "stopped" in status.output
