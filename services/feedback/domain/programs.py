"""What the feedback service keeps of a program: its calendar, feedback settings, k, admins."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from schemas.programs import FeedbackSettings, ProgramCreated, ProgramUpdated
from services.feedback.domain.milestones import ProgramCalendar

_DEFAULT_FEEDBACK = FeedbackSettings()
DEFAULT_K = 5


@dataclass(frozen=True)
class ProgramSettings:
    """A program as the feedback service needs it (the latest revision wins)."""

    program_id: str
    revision: int
    calendar: ProgramCalendar
    k_anonymity: int = DEFAULT_K
    after_each_session: bool = _DEFAULT_FEEDBACK.after_each_session
    response_days: int = _DEFAULT_FEEDBACK.response_days
    at_risk_threshold: float = _DEFAULT_FEEDBACK.at_risk_threshold
    topics: frozenset[str] = field(default_factory=frozenset)
    admin_ids: frozenset[str] = field(default_factory=frozenset)


def program_settings(data: ProgramCreated | ProgramUpdated) -> ProgramSettings:
    """The feedback service's projection of a program definition."""
    feedback = data.feedback
    weeks = tuple(feedback.milestone_weeks) if feedback.milestone_weeks else None
    return ProgramSettings(
        program_id=data.program_id,
        revision=data.revision if isinstance(data, ProgramUpdated) else 1,
        calendar=ProgramCalendar(data.starts_on, data.duration_weeks, weeks),
        k_anonymity=data.k_anonymity,
        after_each_session=feedback.after_each_session,
        response_days=feedback.response_days,
        at_risk_threshold=feedback.at_risk_threshold,
        topics=frozenset(t.key for t in data.topics),
        admin_ids=frozenset(data.admin_ids),
    )


def unknown_program(program_id: str, today: date) -> ProgramSettings:
    """Defaults for a program whose definition has not arrived (yet)."""
    return ProgramSettings(program_id=program_id, revision=0, calendar=ProgramCalendar(today, 1))
