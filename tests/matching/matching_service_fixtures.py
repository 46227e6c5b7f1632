"""Builders shared by the matching service's tests: programs, profiles, candidates."""

from __future__ import annotations

from typing import Any

from schemas.participants import ParticipantJoined
from schemas.primitives import PairingMode
from schemas.programs import ProgramCreated, ProgramDefinition

TOPICS = ["social-media", "genai-tools", "gen-z-culture", "digital-strategy"]


def program_definition(program_id: str = "prg-1", **changes: Any) -> ProgramDefinition:
    """A reverse program open to every pairing mode, no screening or training required."""
    data = ProgramCreated.example().model_dump() | {
        "program_id": program_id,
        "requires_screening": False,
        "requires_training": False,
        "min_grade_gap": 2,
        "pairing_modes": [
            PairingMode.BATCH,
            PairingMode.CONTINUOUS,
            PairingMode.SELF_MATCH,
            PairingMode.MANUAL,
        ],
    }
    return ProgramDefinition.model_validate(data | changes)


def mentor(participant_id: str, program_id: str = "prg-1", **changes: Any) -> ParticipantJoined:
    """A junior mentor (grade 3) offering every catalogue topic, speaking English."""
    data = ParticipantJoined.example().model_dump() | {
        "participant_id": participant_id,
        "program_id": program_id,
        "role": "mentor",
        "grade": 3,
        "department": "Marketing",
        "timezone": "Europe/London",
        "languages": ["en"],
        "manager_chain": [],
        "offers": {topic: 4 for topic in TOPICS},
        "wants": {},
        "preferences": {"prefer": [], "avoid": []},
    }
    return ParticipantJoined.model_validate(data | changes)


def mentee(participant_id: str, program_id: str = "prg-1", **changes: Any) -> ParticipantJoined:
    """A senior mentee (grade 9) wanting social media, in another department."""
    data = mentor(participant_id, program_id).model_dump() | {
        "role": "mentee",
        "grade": 9,
        "department": "Finance",
        "display_name": "Sam Senior",
        "email": f"{participant_id}@example.com",
        "offers": {},
        "wants": {"social-media": 5, "genai-tools": 3},
        "background": {},
    }
    return ParticipantJoined.model_validate(data | changes)
