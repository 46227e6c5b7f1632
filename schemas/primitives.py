"""Constrained value types and enums shared by several event payloads.

These types are the vocabulary of the contracts: their constraints end up in the generated
JSON Schemas, so tightening one later is a breaking change (see ``schemas.compat``).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, Field, StringConstraints

MATCHING = "matching"
SESSIONS = "sessions"
FEEDBACK = "feedback"
NOTIFICATIONS = "notifications"
EXTERNAL = "external"
"""Publisher/subscriber outside Upward: HR feed, LMS, data warehouse, chat bots."""

SERVICES: tuple[str, ...] = (MATCHING, SESSIONS, FEEDBACK, NOTIFICATIONS)
PARTIES: tuple[str, ...] = (*SERVICES, EXTERNAL)


class ServiceName(StrEnum):
    """An Upward service that owns data and therefore takes part in erasure."""

    MATCHING = "matching"
    SESSIONS = "sessions"
    FEEDBACK = "feedback"
    NOTIFICATIONS = "notifications"


class Role(StrEnum):
    """What a participant does in a program."""

    MENTOR = "mentor"
    MENTEE = "mentee"
    BOTH = "both"


class PairSide(StrEnum):
    """Which side of a formed pair a person is on."""

    MENTOR = "mentor"
    MENTEE = "mentee"


class PairingMode(StrEnum):
    """How a pair came to be proposed."""

    BATCH = "batch"
    CONTINUOUS = "continuous"
    SELF_MATCH = "self_match"
    MANUAL = "manual"


def _check_timezone(name: str) -> str:
    """Accept only names the IANA database knows (``Europe/Paris``, ``UTC``)."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(f"unknown IANA time zone {name!r}") from error
    return name


Identifier = Annotated[
    str,
    StringConstraints(min_length=1, max_length=128, pattern=r"^\S+$"),
    Field(description="Opaque identifier: 1-128 characters, no whitespace."),
]
TopicKey = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$"),
    Field(description="Key of a topic in the program's catalogue, e.g. `social-media`."),
]
Level = Annotated[int, Field(ge=1, le=5, description="1 (low) to 5 (high).")]
Email = Annotated[
    str,
    StringConstraints(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
    Field(description="E-mail address (syntax checked loosely: local@domain.tld)."),
]
LanguageCode = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z]{2}$"),
    Field(description="ISO 639-1 language code, two lowercase letters, e.g. `en`."),
]
TimezoneName = Annotated[
    str,
    StringConstraints(max_length=64, pattern=r"^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*$"),
    AfterValidator(_check_timezone),
    Field(description="IANA time-zone name, e.g. `Europe/Paris`."),
]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=200)]
