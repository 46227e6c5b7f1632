"""Hard constraints of a mentor -> mentee pair, one stable snake_case code per rule.

These scalar functions are the reference semantics; the vectorised candidate generator
(:mod:`services.matching.domain.candidates`) applies the same rules to whole cohorts and
the tests hold the two together.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from schemas.programs import ProgramType
from services.matching.domain.model import Candidate, ProgramRules

SAME_PERSON = "same_person"
WRONG_ROLE = "wrong_role"
INACTIVE = "inactive"
NOT_SCREENED = "not_screened"
NOT_TRAINED = "not_trained"
NO_CAPACITY = "no_capacity"
ALREADY_PAIRED = "already_paired"
GRADE_GAP = "grade_gap"
REPORTING_LINE = "reporting_line"
NO_SHARED_LANGUAGE = "no_shared_language"
TIMEZONE_GAP = "timezone_gap"
AVOIDED = "avoided"
PREVIOUSLY_EXCLUDED = "previously_excluded"
NO_SHARED_TOPIC = "no_shared_topic"

MINUTES_PER_DAY = 24 * 60


@lru_cache(maxsize=4096)
def utc_offset_minutes(timezone: str, at: datetime) -> int:
    """UTC offset of ``timezone`` at the instant ``at`` (DST included), in minutes."""
    offset = ZoneInfo(timezone).utcoffset(as_utc(at))
    return 0 if offset is None else int(offset.total_seconds()) // 60


def as_utc(at: datetime) -> datetime:
    """``at`` as an aware UTC instant (a naive time is taken as UTC)."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def clock_gap_minutes(offset_a: int, offset_b: int) -> int:
    """Gap between two local clocks in minutes, around the day: at most 12 hours.

    UTC+12 and UTC-11 are 23 hours apart as offsets but one hour apart on the clock,
    which is what matters for finding a common meeting hour.
    """
    gap = abs(offset_a - offset_b) % MINUTES_PER_DAY
    return min(gap, MINUTES_PER_DAY - gap)


def timezone_gap_minutes(a: str, b: str, at: datetime) -> int:
    """Clock gap between two IANA time zones at the instant ``at``."""
    return clock_gap_minutes(utc_offset_minutes(a, at), utc_offset_minutes(b, at))


def grade_gap_ok(*, rules: ProgramRules, mentor_grade: int, mentee_grade: int) -> bool:
    """Direction and grade gap: reverse = mentor junior, traditional = senior, mutual = any."""
    if rules.program_type == ProgramType.REVERSE:
        return mentee_grade - mentor_grade >= rules.min_grade_gap
    if rules.program_type == ProgramType.TRADITIONAL:
        return mentor_grade - mentee_grade >= rules.min_grade_gap
    return True


def mentor_side_violations(rules: ProgramRules, mentor: Candidate) -> list[str]:
    """Why this person cannot mentor now, whoever the mentee (empty = can)."""
    found = []
    if not mentor.can_mentor:
        found.append(WRONG_ROLE)
    if not mentor.active:
        found.append(INACTIVE)
    if rules.requires_screening and not mentor.screened:
        found.append(NOT_SCREENED)
    if rules.requires_training and not mentor.trained:
        found.append(NOT_TRAINED)
    if mentor.mentor_slots < 1:
        found.append(NO_CAPACITY)
    return found


def mentee_side_violations(mentee: Candidate) -> list[str]:
    """Why this person cannot be mentored now, whoever the mentor (empty = can)."""
    found = []
    if not mentee.can_be_mentored:
        found.append(WRONG_ROLE)
    if not mentee.active:
        found.append(INACTIVE)
    if not mentee.needs_mentor:
        found.append(ALREADY_PAIRED)
    return found


def in_reporting_line(a: Candidate, b: Candidate) -> bool:
    """Whether one of the two manages the other, directly or higher up."""
    return a.participant_id in b.manager_chain or b.participant_id in a.manager_chain


def is_excluded(mentor_id: str, mentee_id: str, excluded: AbstractSet[tuple[str, str]]) -> bool:
    """A declined, ended or vetoed pair, in either direction: never proposed again."""
    return (mentor_id, mentee_id) in excluded or (mentee_id, mentor_id) in excluded


def relation_violations(
    *,
    rules: ProgramRules,
    mentor: Candidate,
    mentee: Candidate,
    excluded: AbstractSet[tuple[str, str]],
    at: datetime,
) -> list[str]:
    """Constraints that depend on both people (empty = the two may be paired)."""
    checks = (
        (SAME_PERSON, mentor.participant_id == mentee.participant_id),
        (
            GRADE_GAP,
            not grade_gap_ok(rules=rules, mentor_grade=mentor.grade, mentee_grade=mentee.grade),
        ),
        (REPORTING_LINE, in_reporting_line(mentor, mentee)),
        (NO_SHARED_LANGUAGE, mentor.languages.isdisjoint(mentee.languages)),
        (
            TIMEZONE_GAP,
            timezone_gap_minutes(mentor.timezone, mentee.timezone, at)
            > rules.max_timezone_gap_hours * 60,
        ),
        (AVOIDED, mentee.participant_id in mentor.avoid or mentor.participant_id in mentee.avoid),
        (PREVIOUSLY_EXCLUDED, is_excluded(mentor.participant_id, mentee.participant_id, excluded)),
        (NO_SHARED_TOPIC, mentor.offers.keys().isdisjoint(mentee.wants.keys())),
    )
    return [code for code, violated in checks if violated]


def pair_violations(
    *,
    rules: ProgramRules,
    mentor: Candidate,
    mentee: Candidate,
    excluded: AbstractSet[tuple[str, str]],
    at: datetime,
) -> list[str]:
    """Every hard-constraint violation of ``mentor`` mentoring ``mentee`` (empty = allowed)."""
    mentee_side = [code for code in mentee_side_violations(mentee) if code != WRONG_ROLE]
    roles_ok = mentor.can_mentor and mentee.can_be_mentored
    found = [] if roles_ok else [WRONG_ROLE]
    found += [code for code in mentor_side_violations(rules, mentor) if code != WRONG_ROLE]
    found += [code for code in mentee_side if code not in found]
    found += relation_violations(
        rules=rules, mentor=mentor, mentee=mentee, excluded=excluded, at=at
    )
    return found
