"""Who the command-line tool, the demo and the end-to-end tests are when they call a service.

Every HTTP call the ``upward`` tool makes goes through :func:`auth_headers`, so how a caller
proves who they are is decided here once: a short-lived JWT signed with the configured
development secret (``UPWARD_AUTH_JWT_SECRET``, or the kit's documented default), for the
audience and issuer the services expect (``UPWARD_AUTH_AUDIENCE``, ``UPWARD_AUTH_ISSUER``).
Against services that verify an identity provider's tokens (``UPWARD_AUTH_JWKS_URL``), the
tool cannot sign its own: it then acts with the token in ``UPWARD_TOKEN`` (one the identity
provider issued to the operator or to an integration client).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Literal

from servicekit.auth import ALL_PROGRAMS, AuthSettings, mint_token

Role = Literal["admin", "participant", "service"]


@dataclass(frozen=True)
class Identity:
    """A caller: its role, its subject (participant or admin id) and, for an admin, the
    programs it runs (``("*",)`` for a platform admin who runs all of them)."""

    role: Role
    subject: str
    programs: tuple[str, ...] = field(default=())


TOKEN_TTL_S = 60 * 60
"""How long a minted token stays valid: an hour, so a client made once (a large import)
keeps working to its end."""

PLATFORM_ADMIN = Identity("admin", "upward-cli", (ALL_PROGRAMS,))
"""The identity of the command-line tool acting as the platform's administrator."""


def participant(participant_id: str) -> Identity:
    """A participant acting for themself."""
    return Identity("participant", participant_id)


TOKEN_ENV = "UPWARD_TOKEN"
"""A bearer token the tool presents as its own identity instead of signing one."""


class CannotSignTokens(RuntimeError):
    """The services verify an identity provider's tokens and no ``UPWARD_TOKEN`` is given."""


def auth_headers(identity: Identity) -> dict[str, str]:
    """The HTTP headers that authenticate ``identity`` to a service (a bearer JWT).

    The tool's own identity (:data:`PLATFORM_ADMIN`) presents ``UPWARD_TOKEN`` when it is
    set; every other identity, and the tool's without it, gets a development token.
    """
    given = os.environ.get(TOKEN_ENV, "").strip()
    if given and identity == PLATFORM_ADMIN:
        return {"Authorization": f"Bearer {given}"}
    return {"Authorization": f"Bearer {development_token(identity)}"}


def development_token(identity: Identity, *, ttl_s: float = TOKEN_TTL_S) -> str:
    """A token for ``identity`` signed with the development (HS256) secret.

    Raises :class:`CannotSignTokens` when the services use an identity provider's keys.
    """
    settings = AuthSettings()
    if settings.jwks_url:
        raise CannotSignTokens(
            "the services verify the identity provider's tokens (UPWARD_AUTH_JWKS_URL): "
            f"set {TOKEN_ENV} to a token it issued"
        )
    return mint_token(
        role=identity.role,
        subject=identity.subject,
        programs=identity.programs,
        secret=settings.jwt_secret.get_secret_value(),
        audience=settings.audience,
        issuer=settings.issuer,
        ttl_s=ttl_s,
    )
