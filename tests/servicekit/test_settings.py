"""Settings: shared names and per-service names from the environment."""

import tempfile
from pathlib import Path

import pytest

from servicekit.kafka import KafkaSecurityError, kafka_client_options
from servicekit.settings import load_settings
from servicekit.streams import create_stream_app, faust_credentials
from upward.deploy import settings_class


def test_service_and_shared_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPWARD_KAFKA_BOOTSTRAP_SERVERS", "broker:9092")
    monkeypatch.setenv("UPWARD_TOPIC_PREFIX", "t1.")
    monkeypatch.setenv("UPWARD_MATCHING_DATABASE_URL", "postgresql://m@db/upward_matching")
    monkeypatch.setenv("UPWARD_SESSIONS_DATABASE_URL", "postgresql://s@db/upward_sessions")
    monkeypatch.setenv("UPWARD_MATCHING_HTTP_PORT", "8101")
    settings = load_settings("matching")
    assert settings.kafka_bootstrap_servers == "broker:9092"
    assert settings.database_url.get_secret_value().endswith("/upward_matching")
    assert settings.http_port == 8101
    assert settings.group_id == "t1.upward-matching"
    assert settings.physical_topic("upward.pairs") == "t1.upward.pairs"
    assert settings.logical_topic("t1.upward.pairs") == "upward.pairs"


def test_database_url_is_required_and_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("UPWARD_FEEDBACK_DATABASE_URL", raising=False)
    with pytest.raises(ValueError, match="database_url"):
        load_settings("feedback")
    monkeypatch.setenv("UPWARD_FEEDBACK_DATABASE_URL", "postgresql://u:hunter2@db/f")
    assert "hunter2" not in repr(load_settings("feedback"))


def test_a_service_own_kafka_credentials_win_over_the_shared_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("UPWARD_MATCHING_DATABASE_URL", "postgresql://m@db/upward_matching")
    monkeypatch.setenv("UPWARD_SESSIONS_DATABASE_URL", "postgresql://s@db/upward_sessions")
    monkeypatch.setenv("UPWARD_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("UPWARD_KAFKA_SASL_USERNAME", "upward")
    monkeypatch.setenv("UPWARD_KAFKA_SASL_PASSWORD", "shared-secret")
    monkeypatch.setenv("UPWARD_MATCHING_KAFKA_SASL_USERNAME", "matching")
    monkeypatch.setenv("UPWARD_MATCHING_KAFKA_SASL_PASSWORD", "matching-secret")
    matching, sessions = load_settings("matching"), load_settings("sessions")
    assert matching.kafka_sasl_username == "matching"
    assert sessions.kafka_sasl_username == "upward"
    assert matching.kafka_security_protocol == sessions.kafka_security_protocol == "SASL_SSL"
    assert "matching-secret" not in repr(matching)
    options = kafka_client_options(matching)
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_password"] == "matching-secret"
    assert options["ssl_context"].check_hostname is True


def test_sasl_without_credentials_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPWARD_FEEDBACK_DATABASE_URL", "postgresql://f@db/upward_feedback")
    monkeypatch.setenv("UPWARD_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    for name in ("UPWARD_KAFKA_SASL_USERNAME", "UPWARD_FEEDBACK_KAFKA_SASL_USERNAME"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(KafkaSecurityError, match="needs UPWARD_KAFKA_SASL_USERNAME"):
        kafka_client_options(load_settings("feedback"))


def test_plaintext_options_carry_no_tls_or_sasl(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPWARD_FEEDBACK_DATABASE_URL", "postgresql://f@db/upward_feedback")
    monkeypatch.delenv("UPWARD_KAFKA_SECURITY_PROTOCOL", raising=False)
    options = kafka_client_options(load_settings("feedback"))
    assert options["security_protocol"] == "PLAINTEXT"
    assert "ssl_context" not in options and "sasl_mechanism" not in options


@pytest.mark.parametrize("service", ["matching", "sessions", "feedback", "notifications"])
def test_no_secret_shows_in_any_rendering_of_the_settings(
    monkeypatch: pytest.MonkeyPatch, service: str
) -> None:
    prefix = f"UPWARD_{service.upper()}_"
    secrets = {
        f"{prefix}DATABASE_URL": "postgresql://u:db-secret-91@db/x",
        f"{prefix}KAFKA_SASL_PASSWORD": "sasl-secret-92",
        f"{prefix}SMTP_PASSWORD": "smtp-secret-93",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    settings = settings_class(service)(service_name=service)
    rendered = " ".join(
        [repr(settings), str(settings), settings.model_dump_json(), str(settings.model_dump())]
    )
    for secret in ("db-secret-91", "sasl-secret-92", "smtp-secret-93"):
        assert secret not in rendered, secret
    assert settings.kafka_sasl_password is not None
    assert settings.kafka_sasl_password.get_secret_value() == "sasl-secret-92"


def test_faust_gets_the_same_security(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPWARD_FEEDBACK_DATABASE_URL", "postgresql://f@db/upward_feedback")
    monkeypatch.setenv("UPWARD_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("UPWARD_KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
    monkeypatch.setenv("UPWARD_FEEDBACK_KAFKA_SASL_USERNAME", "feedback")
    monkeypatch.setenv("UPWARD_FEEDBACK_KAFKA_SASL_PASSWORD", "feedback-secret")
    credentials = faust_credentials(load_settings("feedback"))
    assert credentials.username == "feedback" and credentials.password == "feedback-secret"
    assert credentials.mechanism.value == "SCRAM-SHA-256"
    assert credentials.protocol.value == "SASL_SSL" and credentials.ssl_context is not None
    monkeypatch.setenv("UPWARD_KAFKA_SECURITY_PROTOCOL", "SSL")
    assert faust_credentials(load_settings("feedback")).context is not None
    monkeypatch.setenv("UPWARD_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT")
    assert faust_credentials(load_settings("feedback")) is None


def test_faust_keeps_its_state_out_of_the_working_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("UPWARD_FEEDBACK_DATABASE_URL", "postgresql://f@db/upward_feedback")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    settings = load_settings("feedback")
    app = create_stream_app(settings)
    datadir = Path(app.conf.datadir)
    assert datadir == tmp_path / "upward-streams" / settings.group_id
    assert not datadir.is_relative_to(Path.cwd())


def test_faust_can_create_its_state_directory_in_a_fresh_temporary_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A new pod or a cleaned /tmp has no ``upward-streams``: faust creates only the last
    level of its data directory, so the streams loop crashed at start without it."""
    monkeypatch.setenv("UPWARD_FEEDBACK_DATABASE_URL", "postgresql://f@db/upward_feedback")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    app = create_stream_app(load_settings("feedback"))
    datadir = Path(app.conf.datadir)
    datadir.mkdir(exist_ok=True)  # what faust's _create_directories does at start
    assert datadir.is_dir()
