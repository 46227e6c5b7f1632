"""Admin decisions and their audit trail: who did what, to whom, and why.

A veto forbids one (mentor, mentee) combination in a program for good: the engine never
plans it, a staged run drops it when published, and an open pair of that combination is
declined (proposal) or ended (formed pair).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class AdminActionKind(StrEnum):
    """Kinds of recorded admin actions."""

    PROGRAM_CREATED = "program_created"
    PROGRAM_UPDATED = "program_updated"
    PROGRAM_CLOSED = "program_closed"
    MANUAL_PAIR = "manual_pair"
    VETO_COMBINATION = "veto_combination"
    VETO_PAIR = "veto_pair"
    PAIR_ENDED = "pair_ended"
    RUN_STAGED = "run_staged"
    RUN_PUBLISHED = "run_published"
    RUN_DISCARDED = "run_discarded"


@dataclass(frozen=True, slots=True)
class Veto:
    """An admin forbade ``mentor_id`` mentoring ``mentee_id`` in a program."""

    program_id: str
    mentor_id: str
    mentee_id: str
    vetoed_by: str
    reason: str
    vetoed_at: datetime


@dataclass(frozen=True, slots=True)
class AdminAction:
    """One line of the audit trail."""

    program_id: str
    action: AdminActionKind
    actor_id: str
    at: datetime
    reason: str | None = None
    pair_id: str | None = None
    run_id: str | None = None
    mentor_id: str | None = None
    mentee_id: str | None = None
