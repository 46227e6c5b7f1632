"""Events of topic ``upward.participants``: who takes part, and their eligibility.

Published by the matching service (self-service join, admin edits, CSV import) and by
external systems such as an HR feed or an LMS. Key: ``participant_id``.

Schema evolution example (ParticipantJoined v1 -> v2)
-----------------------------------------------------
ParticipantJoined is the project's worked example of a breaking change done right:

* **v1** carried ``language: str``, a single ISO 639-1 code. Its JSON Schema is kept,
  frozen, in ``schemas/jsonschema/ParticipantJoined.v1.json`` and is never regenerated.
* **v2** (current) carries ``languages: list[str]``: matching needs "a shared language"
  between people who often speak several, and one language per person under-matched.
* :func:`upcast_participant_joined_v1` turns a v1 payload into v2
  (``{"language": "en"}`` -> ``{"languages": ["en"]}``); :func:`schemas.codec.decode`
  applies it, so every consumer only ever sees v2.

In full honesty: v1 never ran in a production deployment; the change was made while the
contracts were first written, on purpose, so that the upcasting path, the frozen schema and
their tests exist and are exercised from day one. ParticipantUpdated was introduced after
the change and started at v1 with ``languages``.
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from schemas.base import EventData, Upcaster
from schemas.primitives import (
    EXTERNAL,
    MATCHING,
    NOTIFICATIONS,
    SERVICES,
    SESSIONS,
    Email,
    Identifier,
    LanguageCode,
    Level,
    Role,
    ServiceName,
    ShortText,
    TimezoneName,
    TopicKey,
)

TOPIC = "upward.participants"
_PUBLISHERS = (MATCHING, EXTERNAL)

AttributeName = Annotated[str, StringConstraints(min_length=1, max_length=64)]
AttributeValue = Annotated[str, StringConstraints(max_length=128)]


class ScreeningOutcome(StrEnum):
    """Result of a mentor screening (patience, temperament)."""

    PASSED = "passed"
    FAILED = "failed"


class LeaveReason(StrEnum):
    """Why a participant left a program. Leaving is always no-fault."""

    VOLUNTARY = "voluntary"
    LEFT_COMPANY = "left_company"
    REMOVED_BY_ADMIN = "removed_by_admin"


class Preferences(BaseModel):
    """People a participant would like, or refuses, to be paired with."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    prefer: list[Identifier] = Field(
        default_factory=list, description="Participant ids preferred as partner (soft)."
    )
    avoid: list[Identifier] = Field(
        default_factory=list, description="Participant ids never to be paired with (hard)."
    )


class Weekday(StrEnum):
    """A day of the week."""

    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"


class WorkingHours(BaseModel):
    """Local working hours, in the participant's own time zone; sessions are placed inside."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    start: time = Field(description="Local start of the working day, e.g. `09:00`.")
    end: time = Field(description="Local end of the working day, after the start, e.g. `17:00`.")
    days: list[Weekday] = Field(
        default_factory=lambda: [Weekday.MON, Weekday.TUE, Weekday.WED, Weekday.THU, Weekday.FRI],
        min_length=1,
        description="Working days; Monday to Friday when absent.",
    )

    @model_validator(mode="after")
    def _ends_after_start(self) -> Self:
        if self.end <= self.start:
            raise ValueError("working hours must end after they start")
        return self


class ParticipantProfile(EventData):
    """A participant's profile, shared by ParticipantJoined and ParticipantUpdated."""

    participant_id: Identifier = Field(description="Participant id (the Kafka key).")
    program_id: Identifier = Field(description="Program joined.")
    role: Role = Field(description="mentor, mentee or both.")
    display_name: ShortText = Field(description="Name shown to the partner and in invites.")
    email: Email = Field(description="Where invites and notifications are sent.")
    grade: int = Field(ge=0, le=99, description="Integer seniority; higher is more senior.")
    department: ShortText = Field(description="Department, used for diversity and k-anonymity.")
    region: ShortText = Field(description="Business region, e.g. `emea`.")
    timezone: TimezoneName = Field(description="IANA time zone, e.g. `Europe/Paris`.")
    languages: list[LanguageCode] = Field(
        min_length=1, description="Languages spoken, ISO 639-1, most fluent first."
    )
    manager_chain: list[Identifier] = Field(
        default_factory=list,
        description="Ids of the managers above this person, nearest first (reporting line).",
    )
    offers: dict[TopicKey, Level] = Field(
        default_factory=dict, description="What they can teach: topic -> level 1-5."
    )
    wants: dict[TopicKey, Level] = Field(
        default_factory=dict, description="What they want to learn: topic -> priority 1-5."
    )
    capacity: int = Field(default=1, ge=1, le=20, description="Max concurrent mentees.")
    background: dict[AttributeName, AttributeValue] = Field(
        default_factory=dict,
        description="Only attributes the participant consented to share (e.g. generation).",
    )
    preferences: Preferences = Field(
        default_factory=Preferences, description="prefer / avoid lists of participant ids."
    )
    working_hours: WorkingHours | None = Field(
        default=None,
        description="Local working hours for scheduling sessions; absent: the sessions "
        "service's default (09:00-17:00, Monday to Friday).",
    )

    topic: ClassVar[str] = TOPIC
    subject_field: ClassVar[str] = "participant_id"
    publishers: ClassVar[tuple[str, ...]] = _PUBLISHERS
    subscribers: ClassVar[tuple[str, ...]] = (MATCHING, SESSIONS, NOTIFICATIONS)


def _sample_profile() -> dict[str, Any]:
    return {
        "participant_id": "emp-10442",
        "program_id": "prg-2025-digital",
        "role": Role.MENTOR,
        "display_name": "Aisha Rahman",
        "email": "aisha.rahman@example.com",
        "grade": 3,
        "department": "Marketing",
        "region": "emea",
        "timezone": "Europe/London",
        "languages": ["en", "ur"],
        "manager_chain": ["emp-00871", "emp-00102"],
        "offers": {"social-media": 5, "genai-tools": 4, "gen-z-culture": 5},
        "wants": {"digital-strategy": 3},
        "capacity": 1,
        "background": {"generation": "gen-z"},
        "preferences": {"prefer": [], "avoid": ["emp-00871"]},
    }


def upcast_participant_joined_v1(data: dict[str, Any]) -> dict[str, Any]:
    """ParticipantJoined v1 -> v2: the single ``language`` becomes ``languages: [language]``."""
    upgraded = {key: value for key, value in data.items() if key != "language"}
    if "languages" not in upgraded and "language" in data:
        upgraded["languages"] = [data["language"]]
    return upgraded


class ParticipantJoined(ParticipantProfile):
    """Someone joined a program (self-service, admin, CSV import or HR feed). Schema v2."""

    event_type: ClassVar[str] = "ParticipantJoined"
    schema_version: ClassVar[int] = 2
    upcasters: ClassVar[dict[int, Upcaster]] = {1: upcast_participant_joined_v1}

    @classmethod
    def example(cls) -> Self:
        """Return a Gen-Z marketing analyst joining as a reverse mentor."""
        return cls.model_validate(_sample_profile())


class ParticipantUpdated(ParticipantProfile):
    """A participant's profile changed; carries the whole new profile and what changed."""

    changed_fields: list[str] = Field(
        min_length=1, description="Names of the top-level fields that changed."
    )

    event_type: ClassVar[str] = "ParticipantUpdated"
    schema_version: ClassVar[int] = 1

    @classmethod
    def example(cls) -> Self:
        """Return a mentor who raised their capacity to two mentees."""
        data = _sample_profile() | {"capacity": 2, "changed_fields": ["capacity"]}
        return cls.model_validate(data)


class _ParticipantEvent(EventData):
    participant_id: Identifier = Field(description="Participant id (the Kafka key).")

    topic: ClassVar[str] = TOPIC
    subject_field: ClassVar[str] = "participant_id"
    publishers: ClassVar[tuple[str, ...]] = _PUBLISHERS
    schema_version: ClassVar[int] = 1


class ParticipantScreened(_ParticipantEvent):
    """A mentor's screening (patience, temperament) was recorded."""

    program_id: Identifier = Field(description="Program the screening is for.")
    outcome: ScreeningOutcome = Field(description="passed or failed.")
    screened_by: Identifier = Field(description="Admin or screener who recorded it.")
    screened_at: AwareDatetime = Field(description="When the screening took place.")

    event_type: ClassVar[str] = "ParticipantScreened"
    subscribers: ClassVar[tuple[str, ...]] = (MATCHING,)

    @classmethod
    def example(cls) -> Self:
        """Return a passed screening."""
        return cls(
            participant_id="emp-10442",
            program_id="prg-2025-digital",
            outcome=ScreeningOutcome.PASSED,
            screened_by="emp-00017",
            screened_at=datetime(2025, 2, 10, 14, 0, tzinfo=UTC),
        )


class TrainingCompleted(_ParticipantEvent):
    """A mentor completed the program's mentor training (from the LMS or an admin)."""

    program_id: Identifier = Field(description="Program the training is for.")
    course_id: Identifier = Field(description="Training course id in the LMS.")
    completed_at: AwareDatetime = Field(description="When the training was completed.")

    event_type: ClassVar[str] = "TrainingCompleted"
    subscribers: ClassVar[tuple[str, ...]] = (MATCHING,)

    @classmethod
    def example(cls) -> Self:
        """Return a completed reverse-mentor course."""
        return cls(
            participant_id="emp-10442",
            program_id="prg-2025-digital",
            course_id="lms-reverse-mentor-101",
            completed_at=datetime(2025, 2, 20, 16, 30, tzinfo=UTC),
        )


class ParticipantLeft(_ParticipantEvent):
    """A participant left a program (no-fault); their open pairs end."""

    program_id: Identifier = Field(description="Program left.")
    reason: LeaveReason = Field(description="Why they left; never a free-text reason.")
    left_at: AwareDatetime = Field(description="When they left.")

    event_type: ClassVar[str] = "ParticipantLeft"
    subscribers: ClassVar[tuple[str, ...]] = (MATCHING, SESSIONS)

    @classmethod
    def example(cls) -> Self:
        """Return a voluntary exit."""
        return cls(
            participant_id="emp-10442",
            program_id="prg-2025-digital",
            reason=LeaveReason.VOLUNTARY,
            left_at=datetime(2025, 6, 2, 9, 0, tzinfo=UTC),
        )


class ParticipantForgotten(_ParticipantEvent):
    """Erasure request: every service must delete this person's personal data.

    Each service answers with ErasureCompleted once its own store is clean.
    """

    requested_at: AwareDatetime = Field(description="When the erasure was requested.")
    requested_by: Identifier | None = Field(
        default=None, description="Admin or system that filed the request, if not the person."
    )

    event_type: ClassVar[str] = "ParticipantForgotten"
    subscribers: ClassVar[tuple[str, ...]] = (*SERVICES, EXTERNAL)

    @classmethod
    def example(cls) -> Self:
        """Return a self-filed erasure request."""
        return cls(
            participant_id="emp-10442",
            requested_at=datetime(2025, 7, 1, 8, 0, tzinfo=UTC),
        )


class ErasureCompleted(_ParticipantEvent):
    """One service finished erasing a forgotten participant's personal data."""

    service: ServiceName = Field(description="The service whose store is now clean.")
    completed_at: AwareDatetime = Field(description="When the erasure finished.")
    records_erased: int = Field(ge=0, description="Rows deleted or anonymised.")

    event_type: ClassVar[str] = "ErasureCompleted"
    publishers: ClassVar[tuple[str, ...]] = SERVICES
    subscribers: ClassVar[tuple[str, ...]] = (EXTERNAL,)

    @classmethod
    def example(cls) -> Self:
        """Return the sessions service's confirmation."""
        return cls(
            participant_id="emp-10442",
            service=ServiceName.SESSIONS,
            completed_at=datetime(2025, 7, 1, 8, 0, 5, tzinfo=UTC),
            records_erased=14,
        )
