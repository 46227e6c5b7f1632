"""Settings: shared names and per-service names from the environment."""

import pytest

from servicekit.settings import load_settings


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
