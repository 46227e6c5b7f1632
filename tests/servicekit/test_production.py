"""Production mode refuses unsafe settings, naming the variable to fix (never its value)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from servicekit.production import DEVELOPMENT_JWT_SECRET, jwt_secret_problem
from servicekit.settings import ServiceSettings, settings_for

SAFE_URL = "postgresql://matching:Zq7-long-random@db.internal/upward_matching"


def load(monkeypatch: pytest.MonkeyPatch, **env: str) -> ServiceSettings:
    """Matching's settings from an environment that is safe for production plus ``env``."""
    base = {
        "UPWARD_ENVIRONMENT": "production",
        "UPWARD_AUTH_JWT_SECRET": "a-long-random-signing-secret",
        "UPWARD_MATCHING_DATABASE_URL": SAFE_URL,
        "UPWARD_REGIONS": "eu-west,eu-central",
        "UPWARD_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "UPWARD_CLOCK": "system",
    }
    for name, value in {**base, **env}.items():
        monkeypatch.setenv(name, value)
    return settings_for("matching")(service_name="matching")


def refusal(monkeypatch: pytest.MonkeyPatch, **env: str) -> str:
    with pytest.raises(ValidationError) as refused:
        load(monkeypatch, **env)
    return str(refused.value)


def test_safe_production_settings_load(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load(monkeypatch)
    assert settings.environment == "production"


def test_the_development_jwt_secret_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    message = refusal(monkeypatch, UPWARD_AUTH_JWT_SECRET=DEVELOPMENT_JWT_SECRET)
    assert "UPWARD_AUTH_JWT_SECRET is the development default secret" in message
    monkeypatch.delenv("UPWARD_AUTH_JWT_SECRET")
    with pytest.raises(ValidationError, match="UPWARD_AUTH_JWT_SECRET is not set"):
        settings_for("matching")(service_name="matching")
    assert jwt_secret_problem("another-secret") is None


def test_an_identity_providers_keys_need_no_jwt_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    jwks = "https://idp.example.com/.well-known/jwks.json"
    settings = load(monkeypatch, UPWARD_AUTH_JWKS_URL=jwks, UPWARD_AUTH_JWT_SECRET="")
    assert settings.environment == "production"
    no_keys = refusal(monkeypatch, UPWARD_AUTH_JWKS_URL="", UPWARD_AUTH_JWT_SECRET="")
    assert "UPWARD_AUTH_JWT_SECRET is not set" in no_keys


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("postgresql://matching@db/upward_matching", "has no password"),
        ("postgresql://matching:@db/upward_matching", "has no password"),
        ("postgresql://postgres:postgres@db/upward_matching", "uses a default password"),
        ("postgresql://matching:matching@db/upward_matching", "uses a default password"),
    ],
)
def test_database_urls_without_a_real_password_are_refused(
    monkeypatch: pytest.MonkeyPatch, url: str, complaint: str
) -> None:
    message = refusal(monkeypatch, UPWARD_MATCHING_DATABASE_URL=url)
    assert f"UPWARD_MATCHING_DATABASE_URL {complaint}" in message
    assert "postgres:postgres" not in message and "db/upward_matching" not in message


def test_certificate_authentication_needs_no_password(monkeypatch: pytest.MonkeyPatch) -> None:
    url = "postgresql://matching@db/upward_matching?sslmode=verify-full&sslcert=/tls/c.pem"
    assert load(monkeypatch, UPWARD_MATCHING_DATABASE_URL=url).environment == "production"


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SASL_PLAINTEXT"])
def test_unencrypted_kafka_is_refused_when_the_deployment_spans_regions(
    monkeypatch: pytest.MonkeyPatch, protocol: str
) -> None:
    message = refusal(monkeypatch, UPWARD_KAFKA_SECURITY_PROTOCOL=protocol)
    assert f"UPWARD_KAFKA_SECURITY_PROTOCOL={protocol} is unencrypted" in message
    assert "UPWARD_REGIONS=eu-central,eu-west" in message
    single = load(monkeypatch, UPWARD_KAFKA_SECURITY_PROTOCOL=protocol, UPWARD_REGIONS="eu-west")
    assert single.kafka_security_protocol == protocol


def test_the_manual_clock_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "UPWARD_CLOCK=manual is for demos and tests" in refusal(
        monkeypatch, UPWARD_CLOCK="manual"
    )


def test_every_problem_is_listed_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    message = refusal(
        monkeypatch,
        UPWARD_CLOCK="manual",
        UPWARD_KAFKA_SECURITY_PROTOCOL="PLAINTEXT",
        UPWARD_MATCHING_DATABASE_URL="postgresql://postgres:postgres@db/x",
    )
    for name in ("UPWARD_CLOCK", "UPWARD_KAFKA_SECURITY_PROTOCOL", "UPWARD_MATCHING_DATABASE_URL"):
        assert name in message


def test_development_mode_accepts_all_of_it(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load(
        monkeypatch,
        UPWARD_ENVIRONMENT="development",
        UPWARD_CLOCK="manual",
        UPWARD_AUTH_JWT_SECRET=DEVELOPMENT_JWT_SECRET,
        UPWARD_KAFKA_SECURITY_PROTOCOL="PLAINTEXT",
        UPWARD_MATCHING_DATABASE_URL="postgresql://postgres@db/x",
    )
    assert settings.environment == "development"
