"""Fast tests of the stack's pure parts (no broker, no database is started)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from upward.cli import app
from upward.stack import ExternalAddresses, LocalStack, StackSettings, database_url, server_url
from upward.stack import kafka as stack_kafka
from upward.stack.process import free_ports, live_pid, write_pid


@pytest.fixture(autouse=True)
def _no_upward_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests must not see the developer's UPWARD_* variables."""
    for name in list(os.environ):
        if name.startswith("UPWARD_"):
            monkeypatch.delenv(name)


def test_settings_read_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("UPWARD_STACK_HOME", str(tmp_path))
    monkeypatch.setenv("UPWARD_STACK_KAFKA_PORT", "29999")
    monkeypatch.setenv("UPWARD_STACK_KAFKA_VERSION", "3.9.1")
    settings = StackSettings()
    assert settings.home == tmp_path
    assert settings.kafka_port == 29999
    assert settings.kafka_libs_dir.name == "libs"
    assert settings.kafka_libs_dir.parent.name == "kafka-3.9.1"
    assert StackSettings(kafka_port=1234).kafka_port == 1234  # explicit beats env


def test_kafka_version_is_pinned_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("UPWARD_STACK_KAFKA_VERSION", raising=False)
    assert StackSettings().kafka_version == stack_kafka.KAFKA_VERSION == "4.0.2"
    pom = stack_kafka.render_pom("4.0.2")
    assert "<artifactId>kafka_2.13</artifactId>" in pom
    assert "log4j-slf4j-impl" in pom and "$" not in pom


def test_database_urls() -> None:
    server = "postgresql://u:p@db:5432?sslmode=require"
    assert database_url(server, "upward_matching") == (
        "postgresql://u:p@db:5432/upward_matching?sslmode=require"
    )
    assert server_url("postgresql://u@db:5432/postgres") == "postgresql://u@db:5432"


def test_external_modes() -> None:
    ext = ExternalAddresses.none()
    assert not ext.kafka_is_external and not ext.postgres_is_external
    ext = ExternalAddresses(database_url="postgresql://pg:5432", matching_database_url=None)
    assert ext.postgres_is_external
    assert ext.service_database_urls()["feedback"] == "postgresql://pg:5432/upward_feedback"
    some = ExternalAddresses.none().model_copy(update={"matching_database_url": "postgresql://x/m"})
    assert not some.postgres_is_external  # all four are needed without UPWARD_DATABASE_URL


def test_server_properties_single_node(tmp_path: Path) -> None:
    cfg = stack_kafka.KafkaConfig("4.0.2", tmp_path / "libs", tmp_path / "kafka", 1111, 1112)
    props = dict(
        line.split("=", 1)
        for line in stack_kafka.render_server_properties(cfg).splitlines()
        if line and not line.startswith("#")
    )
    assert props["process.roles"] == "broker,controller"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:1111,CONTROLLER://127.0.0.1:1112"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:1112"
    assert props["auto.create.topics.enable"] == "true"
    assert props["group.initial.rebalance.delay.ms"] == "0"
    for key in ("offsets.topic.replication.factor", "transaction.state.log.min.isr"):
        assert props[key] == "1"


def test_server_properties_with_a_sasl_ssl_listener(tmp_path: Path) -> None:
    listener = stack_kafka.SaslSslListener(1113, tmp_path / "broker.pem", {"matching": "pw"})
    cfg = stack_kafka.KafkaConfig(
        "4.0.2", tmp_path / "libs", tmp_path / "kafka", 1111, 1112, sasl_ssl=listener
    )
    props = dict(
        line.split("=", 1)
        for line in stack_kafka.render_server_properties(cfg).splitlines()
        if line and not line.startswith("#")
    )
    assert props["listeners"] == (
        "PLAINTEXT://127.0.0.1:1111,SASL_SSL://127.0.0.1:1113,CONTROLLER://127.0.0.1:1112"
    )
    assert props["listener.security.protocol.map"].endswith("SASL_SSL:SASL_SSL")
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert props["ssl.keystore.type"] == "PEM"
    assert props["ssl.keystore.location"] == str(tmp_path / "broker.pem")
    assert props["authorizer.class.name"].endswith("StandardAuthorizer")
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert cfg.sasl_ssl_bootstrap_servers == "127.0.0.1:1113"
    assert listener.scram_arguments() == [
        "--add-scram", "SCRAM-SHA-512=[name=matching,password=pw]"
    ]  # fmt: skip


def test_own_addresses_are_not_external(tmp_path: Path) -> None:
    kafka_port, pg_port = free_ports(2)
    settings = StackSettings(home=tmp_path, kafka_port=kafka_port, postgres_port=pg_port)
    own = LocalStack(settings, ExternalAddresses.none()).info().env()
    stack = LocalStack(settings, ExternalAddresses(**{
        k.removeprefix("UPWARD_").lower(): v for k, v in own.items()
    }))  # fmt: skip
    assert not stack.external.kafka_is_external
    assert not stack.external.postgres_is_external


def test_stale_pid_file_is_removed(tmp_path: Path) -> None:
    pid_file = tmp_path / "kafka.pid"
    write_pid(pid_file, 2**22 + 12345)  # above the default pid_max: never alive
    assert live_pid(pid_file) is None
    assert not pid_file.exists()


def test_cli_help_and_stopped_status(tmp_path: Path) -> None:
    runner = CliRunner()
    for command in ("up", "down", "status", "env"):
        result = runner.invoke(app, ["stack", command, "--help"])
        assert result.exit_code == 0, result.output
    env: dict[str, str | None] = {"UPWARD_KAFKA_BOOTSTRAP_SERVERS": None,
                                  "UPWARD_DATABASE_URL": None, "COLUMNS": "200"}  # fmt: skip
    kafka_port, pg_port = free_ports(2)
    args = ["--home", str(tmp_path), "--kafka-port", str(kafka_port)]
    args += ["--postgres-port", str(pg_port)]
    result = runner.invoke(app, ["stack", "status", *args], env=env)
    assert result.exit_code == 1
    assert result.output.count("│ stopped ") == 2, result.output
    result = runner.invoke(app, ["stack", "down", "--home", str(tmp_path)], env=env)
    assert result.exit_code == 0
    assert "Nothing was running" in result.output


def test_invalid_settings_are_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPWARD_STACK_KAFKA_PORT", "not-a-port")
    result = CliRunner().invoke(app, ["stack", "status"])
    assert result.exit_code == 2
    assert "UPWARD_STACK_KAFKA_PORT" in result.output or "kafka_port" in result.output
