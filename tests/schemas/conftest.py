"""Shared fixtures of the contract tests (pure: they only read checked-in files)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from schemas.generate import PACKAGE_DIR


@pytest.fixture
def participant_joined_v1() -> dict[str, Any]:
    """A hand-written ParticipantJoined envelope at schema version 1 (single `language`)."""
    return {
        "specversion": "1.0",
        "id": "0b6c7a8e-3c0e-4f58-9b1e-1a2b3c4d5e6f",
        "source": "/hr/workday-feed",
        "type": "upward.ParticipantJoined",
        "time": "2024-11-04T08:30:00Z",
        "subject": "emp-20001",
        "datacontenttype": "application/json",
        "schemaversion": 1,
        "data": {
            "participant_id": "emp-20001",
            "program_id": "prg-2024-pilot",
            "role": "mentee",
            "display_name": "Jean Dupont",
            "email": "jean.dupont@example.com",
            "grade": 9,
            "department": "Finance",
            "region": "emea",
            "timezone": "Europe/Paris",
            "language": "fr",
            "manager_chain": ["emp-00002"],
            "offers": {"digital-strategy": 4},
            "wants": {"social-media": 5, "genai-tools": 3},
        },
    }


@pytest.fixture
def schema_tree(tmp_path: Path) -> Path:
    """A writable copy of the checked-in generated files (jsonschema/ and asyncapi.yaml)."""
    target = tmp_path / "schemas"
    (target / "jsonschema").mkdir(parents=True)
    for source in (PACKAGE_DIR / "jsonschema").glob("*.json"):
        (target / "jsonschema" / source.name).write_bytes(source.read_bytes())
    (target / "asyncapi.yaml").write_bytes((PACKAGE_DIR / "asyncapi.yaml").read_bytes())
    return target
