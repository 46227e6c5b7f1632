"""Dashboards and alerts cannot drift from the code: every metric they query is exported.

Each service in the repository (and the kit's example, which exports the kit's metrics) is
started as a process through the image's entry point (deploy/docker/entrypoint.sh) on the
real Kafka and PostgreSQL, and its /metrics page is scraped. The image's health check runs
against the same processes.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from metric_names import EXTERNAL_METRICS, REPO, names_exported, names_used

from tests.fixtures.infra import PostgresServerInfo
from tests.integration.kafka_io import eventually
from upward.stack import free_ports

pytestmark = pytest.mark.integration

ENTRYPOINT = REPO / "deploy" / "docker" / "entrypoint.sh"
HEALTHCHECK = REPO / "deploy" / "docker" / "healthcheck.py"
SERVICES = ("matching", "sessions", "feedback", "notifications")


def services_in_repo() -> list[str]:
    """The kit's example and every service whose bootstrap module exists."""
    present = [s for s in SERVICES if importlib.util.find_spec(f"services.{s}.bootstrap")]
    return ["welcome", *present]


@dataclass
class RunningService:
    """A service process started through the image's entry point."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str]

    @property
    def base_url(self) -> str:
        """Where its HTTP API listens."""
        return f"http://127.0.0.1:{self.port}"


def start(name: str, *, port: int, kafka: str, database_url: str, log: Path) -> RunningService:
    """Start ``name`` as ``entrypoint.sh <name>`` with its settings in the environment."""
    prefix = f"UPWARD_{name.upper()}_"
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "UPWARD_KAFKA_BOOTSTRAP_SERVERS": kafka,
        "UPWARD_TOPIC_PREFIX": f"m{uuid.uuid4().hex[:10]}.",
        f"{prefix}DATABASE_URL": database_url,
        f"{prefix}HTTP_HOST": "127.0.0.1",
        f"{prefix}HTTP_PORT": str(port),
    }
    with log.open("wb") as sink:
        process = subprocess.Popen([str(ENTRYPOINT), name], env=env, stderr=sink, cwd=REPO)
    return RunningService(name, port, process, log, env)


async def ready(service: RunningService) -> bool:
    """True once ``/readyz`` answers 200; raises if the process died."""
    if service.process.poll() is not None:
        tail = service.log.read_text()[-3000:]
        raise AssertionError(f"{service.name} exited {service.process.returncode}:\n{tail}")
    try:
        async with httpx.AsyncClient(base_url=service.base_url, timeout=5) as client:
            return (await client.get("/readyz")).status_code == 200
    except httpx.TransportError:
        return False


def stop(service: RunningService) -> None:
    """SIGTERM, then SIGKILL if it does not stop in time."""
    service.process.terminate()
    try:
        service.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        service.process.kill()
        service.process.wait()


@pytest.fixture(scope="module")
async def running(
    kafka_bootstrap: str, postgres: PostgresServerInfo, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[list[RunningService]]:
    names = services_in_repo()
    logs = tmp_path_factory.mktemp("service-logs")
    started: list[RunningService] = []
    try:
        for name, port in zip(names, free_ports(len(names)), strict=True):
            url = await postgres.create_database(f"metrics_{name}_{uuid.uuid4().hex[:8]}")
            started.append(
                start(name, port=port, kafka=kafka_bootstrap, database_url=url,
                      log=logs / f"{name}.log")
            )  # fmt: skip
        for service in started:
            assert await eventually(lambda s=service: ready(s), bool, timeout=120)
        yield started
    finally:
        for service in started:
            stop(service)


@pytest.fixture(scope="module")
async def exported(running: list[RunningService]) -> dict[str, set[str]]:
    """Service name -> the series names its /metrics page carries."""
    pages = {}
    for service in running:
        async with httpx.AsyncClient(base_url=service.base_url, timeout=10) as client:
            response = await client.get("/metrics")
        assert response.status_code == 200
        pages[service.name] = names_exported(response.text)
    return pages


def test_every_service_of_the_repository_ran(running: list[RunningService]) -> None:
    assert [s.name for s in running] == services_in_repo()
    assert all(s.process.poll() is None for s in running)


def test_every_metric_in_dashboards_and_alerts_is_exported(
    exported: dict[str, set[str]],
) -> None:
    everything = set().union(*exported.values())
    assert "upward_events_consumed_total" in everything  # the scrape saw the kit's metrics
    missing = {
        name: sorted(files)
        for name, files in names_used().items()
        if name not in everything and name not in EXTERNAL_METRICS
    }
    assert not missing, f"queried but exported by no service: {missing}"


def test_external_metrics_are_really_external_and_used(exported: dict[str, set[str]]) -> None:
    everything = set().union(*exported.values())
    assert set(EXTERNAL_METRICS) <= set(names_used())
    assert not set(EXTERNAL_METRICS) & everything


@pytest.fixture
def healthcheck() -> Iterator[object]:
    spec = importlib.util.spec_from_file_location("upward_image_healthcheck", HEALTHCHECK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module


def test_the_image_healthcheck_passes_against_each_service(
    running: list[RunningService], healthcheck: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    for service in running:
        cmdline = Path(f"/proc/{service.process.pid}/cmdline")
        assert healthcheck.service_name(cmdline) == service.name  # type: ignore[attr-defined]
        monkeypatch.setenv(f"UPWARD_{service.name.upper()}_HTTP_PORT", str(service.port))
        assert healthcheck.main(cmdline) == 0  # type: ignore[attr-defined]
        monkeypatch.setenv(f"UPWARD_{service.name.upper()}_HTTP_PORT", str(free_ports(1)[0]))
        assert healthcheck.main(cmdline) == 1  # type: ignore[attr-defined]


def test_the_prepare_job_and_the_services_share_the_migration_ledger(
    running: list[RunningService],
) -> None:
    """The services applied their migrations at start; the Job's step finds nothing to do.

    Were a service's migration owner not its name, the Job would apply its files again.
    """
    for service in running:
        result = subprocess.run(
            ["upward", "deploy", "prepare", "--skip-topics", "--service", service.name],
            env=service.env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert f"{service.name}: 0 migration(s) applied" in result.stdout
