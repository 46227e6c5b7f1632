"""Who the command-line tool, the demo and the end-to-end tests are when they call a service.

Every HTTP call the ``upward`` tool makes goes through :func:`auth_headers`, so how a caller
proves who they are is decided here once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Role = Literal["admin", "participant", "service"]


@dataclass(frozen=True)
class Identity:
    """A caller: its role, its subject (participant or admin id) and, for an admin, the
    programs it runs (``("*",)`` for a platform admin who runs all of them)."""

    role: Role
    subject: str
    programs: tuple[str, ...] = field(default=())


PLATFORM_ADMIN = Identity("admin", "upward-cli", ("*",))
"""The identity of the command-line tool acting as the platform's administrator."""


def participant(participant_id: str) -> Identity:
    """A participant acting for themself."""
    return Identity("participant", participant_id)


def auth_headers(identity: Identity) -> dict[str, str]:
    """The HTTP headers that authenticate ``identity`` to a service."""
    return {"X-Upward-Role": identity.role, "X-Upward-Subject": identity.subject}
