"""docs/sessions.md keeps its lifecycle diagram in step with the code."""

from __future__ import annotations

import re
from pathlib import Path

from servicekit.settings import ServiceSettings
from services.sessions.domain.model import PairStatus, SessionStatus
from services.sessions.settings import SessionsSettings

DOC = Path(__file__).resolve().parents[2] / "docs" / "sessions.md"


def diagrams() -> list[str]:
    return re.findall(r"```mermaid\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)


def test_session_lifecycle_diagram_shows_every_state_and_event() -> None:
    sessions, pairs = diagrams()
    assert sessions.startswith("stateDiagram-v2")
    for status in SessionStatus:
        assert f"--> {status}" in sessions or f"{status} -->" in sessions
    for event in ("SessionScheduled", "SessionRescheduled", "SessionCancelled"):
        assert event in sessions
    for event in ("SessionHeld", "SessionMissed"):
        assert event in sessions
    for status in PairStatus:
        assert f"--> {status}" in pairs
    assert "PairStalled" in pairs and "completed" in pairs


def test_every_setting_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    own = SessionsSettings.model_fields.keys() - ServiceSettings.model_fields.keys()
    assert own
    for name in own:
        assert f"`UPWARD_SESSIONS_{name.upper()}`" in text, name
