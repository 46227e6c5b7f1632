"""Every events/dlq command: a wrong name lists the valid ones; a silent broker is one line."""

from __future__ import annotations

import socket
import ssl

import pytest
from events_io import invoke

from servicekit.kafka import KafkaSecurityError
from upward.events.broker import connection_options

COMMANDS = [
    ["events", "tail", "--no-follow"],
    ["events", "census"],
    ["dlq", "list"],
    ["dlq", "show", "pairs", "0", "0"],
    ["dlq", "replay", "--yes"],
]


def test_unknown_topic_or_type_lists_the_valid_names() -> None:
    topic = invoke(["events", "tail", "--topic", "pears"], bootstrap="unused:1", prefix="")
    kind = invoke(["events", "tail", "--type", "PairMade"], bootstrap="unused:1", prefix="")
    dlq = invoke(["dlq", "list", "--topic", "sessions.dlq"], bootstrap="unused:1", prefix="")

    assert topic.exit_code == 1
    assert "unknown topic 'pears'" in topic.stderr and "upward.pairs" in topic.stderr
    assert kind.exit_code == 1
    assert "unknown event type 'PairMade'" in kind.stderr and "PairFormed" in kind.stderr
    assert dlq.exit_code == 1 and "upward.sessions" in dlq.stderr


def test_unknown_replay_reason_lists_the_valid_ones() -> None:
    result = invoke(["dlq", "replay", "--reason", "bad"], bootstrap="unused:1", prefix="")

    assert result.exit_code == 1
    assert "unknown reason 'bad'" in result.stderr
    assert "invalid_json" in result.stderr and "unprocessable" in result.stderr


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_unreachable_broker_is_one_line_with_the_address_and_exit_1(args: list[str]) -> None:
    with socket.socket() as probe:  # a port nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{probe.getsockname()[1]}"
    result = invoke(args, bootstrap=address, prefix="")

    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"error: cannot reach Kafka at {address}: start the local stack with `upward stack up`, "
        "or point UPWARD_KAFKA_BOOTSTRAP_SERVERS at a running broker"
    ]
    assert result.stdout == ""


def test_the_tools_connect_with_the_services_kafka_security(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The shared ``UPWARD_KAFKA_*`` security settings reach every client of the tools."""
    monkeypatch.setenv("UPWARD_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("UPWARD_KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
    monkeypatch.setenv("UPWARD_KAFKA_SASL_USERNAME", "operator")
    monkeypatch.setenv("UPWARD_KAFKA_SASL_PASSWORD", "operator-secret")
    options = connection_options("kafka.example.com:9093")
    assert options["bootstrap_servers"] == "kafka.example.com:9093"
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-256"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == (
        "operator",
        "operator-secret",
    )
    assert isinstance(options["ssl_context"], ssl.SSLContext)


def test_sasl_without_a_user_is_one_line_naming_the_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("UPWARD_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    with pytest.raises(KafkaSecurityError) as refused:
        connection_options("127.0.0.1:1")
    assert str(refused.value) == (
        "UPWARD_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT needs "
        "UPWARD_KAFKA_SASL_USERNAME and UPWARD_KAFKA_SASL_PASSWORD"
    )
