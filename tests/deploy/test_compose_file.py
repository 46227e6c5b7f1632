"""deploy/docker-compose.yml: parses, and names only images, settings and files that exist.

No Docker engine here: nothing is started; the file is checked against the repository.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_container_image import entry_names

from upward.deploy import SERVICES, TopicPlan, known_env_names, settings_class

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
PINNED_IMAGE = re.compile(r"^[a-z0-9./-]+:v?\d+(\.\d+)*(-[a-z0-9]+)?$")


def compose() -> dict[str, Any]:
    """The compose file, YAML anchors and merge keys resolved."""
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    return loaded


def services() -> dict[str, dict[str, Any]]:
    """The compose services by name."""
    found: dict[str, dict[str, Any]] = compose()["services"]
    return found


def test_the_stack_has_every_part() -> None:
    assert set(services()) == {
        "kafka", "postgres", "prepare", *SERVICES, "prometheus", "grafana",
    }  # fmt: skip


def test_images_are_the_repositorys_or_pinned_public_ones() -> None:
    for name, service in services().items():
        if "build" in service:
            context = (DEPLOY / service["build"]["context"]).resolve()
            assert context == REPO, name
            assert (context / service["build"]["dockerfile"]).is_file(), name
            assert service["image"].startswith("upward:"), name
        else:
            assert PINNED_IMAGE.match(service["image"]), (name, service["image"])
            assert not service["image"].endswith(":latest"), name


def test_upward_containers_run_locked_down() -> None:
    for name in ("prepare", *SERVICES):
        service = services()[name]
        assert service["read_only"] is True and service["tmpfs"] == ["/tmp"], name
        assert service["cap_drop"] == ["ALL"], name
        assert service["user"] == "10001:10001", name


def test_services_get_only_real_settings() -> None:
    for name in SERVICES:
        service = services()[name]
        assert service["command"] == [name] and name in entry_names()
        unknown = set(service["environment"]) - known_env_names(name)
        assert not unknown, (name, unknown)
        assert f"UPWARD_{name.upper()}_DATABASE_URL" in service["environment"]
        assert service["depends_on"]["prepare"]["condition"] == "service_completed_successfully"


def test_prepare_creates_the_topics_and_migrates_every_service() -> None:
    prepare = services()["prepare"]
    command = prepare["command"]
    assert command[:3] == ["upward", "deploy", "prepare"]
    assert [command[i + 1] for i, a in enumerate(command) if a == "--service"] == list(SERVICES)
    TopicPlan.model_validate_json(command[command.index("--topics") + 1])
    everything = set().union(*(known_env_names(s) for s in SERVICES))
    assert not set(prepare["environment"]) - everything


def test_addresses_match_the_servers() -> None:
    env = services()["matching"]["environment"]
    kafka = services()["kafka"]["environment"]
    assert (
        kafka["KAFKA_ADVERTISED_LISTENERS"]
        == f"PLAINTEXT://{env['UPWARD_KAFKA_BOOTSTRAP_SERVERS']}"
    )
    created = re.findall(
        r"CREATE DATABASE (\w+);", (DEPLOY / "compose/postgres-init.sql").read_text()
    )
    password = services()["postgres"]["environment"]["POSTGRES_PASSWORD"]
    for name in SERVICES:
        url = services()[name]["environment"][f"UPWARD_{name.upper()}_DATABASE_URL"]
        assert url == f"postgresql://postgres:{password}@postgres:5432/upward_{name}"
        assert f"upward_{name}" in created


def test_every_mounted_file_exists() -> None:
    mounts = [
        volume.split(":")[0]
        for service in services().values()
        for volume in service.get("volumes", [])
        if volume.startswith(".")
    ]
    assert len(mounts) >= 5
    for mount in mounts:
        assert (DEPLOY / mount).exists(), mount


def test_prometheus_scrapes_each_service_and_loads_the_rules() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus/prometheus.yml").read_text())
    targets = {
        job["job_name"]: [t for c in job["static_configs"] for t in c["targets"]]
        for job in config["scrape_configs"]
    }
    assert targets == {f"upward-{name}": [f"{name}:8000"] for name in SERVICES}
    mounted = {v.split(":")[1] for v in services()["prometheus"]["volumes"]}
    assert set(config["rule_files"]) <= mounted


def test_each_service_loads_its_compose_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SERVICES:
        with monkeypatch.context() as env:
            for key in [k for k in os.environ if k.startswith("UPWARD_")]:
                env.delenv(key)
            for key, value in services()[name]["environment"].items():
                env.setenv(key, str(value))
            settings = settings_class(name)(service_name=name)
        assert settings.kafka_bootstrap_servers == "kafka:9092"
        assert settings.http_host == "0.0.0.0"
