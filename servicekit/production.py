"""Production mode: settings that are fine on a laptop and unsafe in a real deployment.

``UPWARD_ENVIRONMENT=production`` (the Helm chart's default) makes a service refuse to
start with any of these, each reported with the variable to fix:

* the JWT development secret, or none (``UPWARD_AUTH_JWT_SECRET``), unless tokens are
  verified with an identity provider's keys (``UPWARD_AUTH_JWKS_URL``);
* a database URL without a password, or with a well-known default one;
* PLAINTEXT or SASL_PLAINTEXT Kafka when the deployment spans regions
  (``UPWARD_REGIONS`` names more than one): events then leave the region
  (MirrorMaker 2), so every Kafka connection must be encrypted;
* the manual clock (``UPWARD_CLOCK=manual``), a demo and test device.

:func:`production_problems` lists them; :class:`ServiceSettings` calls it when it loads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from servicekit.auth import DEVELOPMENT_SECRET as DEVELOPMENT_JWT_SECRET

if TYPE_CHECKING:
    from servicekit.settings import ServiceSettings

JWT_SECRET_ENV = "UPWARD_AUTH_JWT_SECRET"
JWKS_URL_ENV = "UPWARD_AUTH_JWKS_URL"
#: Passwords that ship as defaults somewhere (images, compose files, tutorials).
DEFAULT_DATABASE_PASSWORDS = frozenset(
    {"postgres", "password", "upward", "changeme", "change-me", "secret", "admin"}
)
UNENCRYPTED_KAFKA = frozenset({"PLAINTEXT", "SASL_PLAINTEXT"})


def jwt_secret_problem(secret: str | None) -> str | None:
    """Why ``secret`` may not sign tokens in production, or ``None`` when it may."""
    if not secret:
        return f"{JWT_SECRET_ENV} is not set (tokens would be signed with the development secret)"
    if secret == DEVELOPMENT_JWT_SECRET:
        return f"{JWT_SECRET_ENV} is the development default secret"
    return None


def database_password_problem(url: str, *, variable: str) -> str | None:
    """Why the database ``url`` is unsafe in production (no or default password), or ``None``.

    A URL without a password is accepted when it authenticates with a client
    certificate (``sslcert`` in its query). The message never contains the URL.
    """
    parts = urlsplit(url)
    if "sslcert" in parse_qs(parts.query):
        return None
    if not parts.password:
        return f"{variable} has no password"
    if parts.password.lower() in DEFAULT_DATABASE_PASSWORDS or parts.password == parts.username:
        return f"{variable} uses a default password"
    return None


def regions_of(regions: str) -> list[str]:
    """The distinct regions of a comma-separated ``UPWARD_REGIONS`` value."""
    return sorted({r.strip() for r in regions.split(",") if r.strip()})


def production_problems(settings: ServiceSettings, environ: Mapping[str, str]) -> list[str]:
    """Every unsafe setting of ``settings`` (and of ``environ``'s JWT secret) for production."""
    prefix = f"UPWARD_{settings.service_name.upper()}_"
    problems = [
        None if environ.get(JWKS_URL_ENV) else jwt_secret_problem(environ.get(JWT_SECRET_ENV)),
        database_password_problem(
            settings.database_url.get_secret_value(), variable=f"{prefix}DATABASE_URL"
        ),
    ]
    regions = regions_of(settings.regions)
    if settings.kafka_security_protocol in UNENCRYPTED_KAFKA and len(regions) > 1:
        problems.append(
            f"UPWARD_KAFKA_SECURITY_PROTOCOL={settings.kafka_security_protocol} is unencrypted "
            f"but the deployment spans regions (UPWARD_REGIONS={','.join(regions)}): "
            "use SSL or SASL_SSL"
        )
    if settings.clock == "manual":
        problems.append("UPWARD_CLOCK=manual is for demos and tests")
    return [p for p in problems if p is not None]


class UnsafeProductionSettings(ValueError):
    """Production mode refused the settings; the message lists every problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(
            "UPWARD_ENVIRONMENT=production refuses unsafe settings: " + "; ".join(problems)
        )
        self.problems = problems
