"""Who the command-line tool, the demo and the end-to-end tests are when they call a service.

Every HTTP call the ``upward`` tool makes goes through :func:`auth_headers`, so how a caller
proves who they are is decided here once: a short-lived JWT signed with the configured
development secret (``UPWARD_AUTH_JWT_SECRET``, or the kit's documented default), for the
audience and issuer the services expect (``UPWARD_AUTH_AUDIENCE``, ``UPWARD_AUTH_ISSUER``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from servicekit.auth import AuthSettings, mint_token

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

PLATFORM_ADMIN = Identity("admin", "upward-cli", ("*",))
"""The identity of the command-line tool acting as the platform's administrator."""


def participant(participant_id: str) -> Identity:
    """A participant acting for themself."""
    return Identity("participant", participant_id)


def auth_headers(identity: Identity) -> dict[str, str]:
    """The HTTP headers that authenticate ``identity`` to a service (a bearer JWT)."""
    settings = AuthSettings()
    token = mint_token(
        role=identity.role,
        subject=identity.subject,
        programs=identity.programs,
        secret=settings.jwt_secret.get_secret_value(),
        audience=settings.audience,
        issuer=settings.issuer,
        ttl_s=TOKEN_TTL_S,
    )
    return {"Authorization": f"Bearer {token}"}
