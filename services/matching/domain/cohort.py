"""A cohort encoded as numpy arrays, ready for vectorised candidate generation.

Only people who can take part on a side are encoded: open mentors (role, active,
screened / trained when required, a free slot) and open mentees (role, active, needing a
mentor), both sorted by id so that the plan does not depend on input order. A mentor who
offers nothing any open mentee wants (or the reverse) cannot be paired and is left out
early, which keeps a continuous run of one new joiner against a big pool cheap.

Pair-specific rules (reporting lines, ``avoid`` lists, excluded pairs, the same person on
both sides) are kept as a sorted list of forbidden pair keys ``mentee * n_mentors +
mentor``; ``prefer`` lists as sorted keys with the preference value of the pair.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np
import numpy.typing as npt

from services.matching.domain.constraints import (
    NO_SHARED_TOPIC,
    NOT_SCREENED,
    NOT_TRAINED,
    mentee_side_violations,
    mentor_side_violations,
    utc_offset_minutes,
)
from services.matching.domain.model import Candidate, ProgramRules
from services.matching.domain.scoring import MAX_LEVEL

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Side:
    """The people of one side (mentors or mentees) as parallel arrays."""

    people: tuple[Candidate, ...]
    grade: npt.NDArray[np.int16]
    offset: npt.NDArray[np.int16]
    """UTC offset in minutes at the run's instant."""
    department: npt.NDArray[np.int32]
    languages: npt.NDArray[np.unsignedinteger]
    """Bit set of spoken languages, shape (n, words)."""
    topics: npt.NDArray[np.float32]
    """Offered level (mentors) or wanted priority (mentees) per shared topic, shape (n, T)."""
    background: npt.NDArray[np.int32]
    """Code of each consented background attribute, -1 when not shared, shape (n, A)."""

    def __len__(self) -> int:
        return len(self.people)


@dataclass(frozen=True, slots=True)
class Cohort:
    """Open mentors and mentees of one run, and the pair-specific rules between them."""

    mentors: Side
    mentees: Side
    capacities: IntArray
    coverage_denominator: IntArray
    """Per mentee: 5 x the sum of the priorities of everything they want."""
    forbidden: IntArray
    """Sorted pair keys ``mentee * len(mentors) + mentor`` that hard rules forbid."""
    preferred: IntArray
    """Sorted pair keys where at least one side listed the other in ``prefer``."""
    preference: FloatArray
    """Preference value (0.5 or 1) of each ``preferred`` key."""
    left_out: dict[str, str]
    """Open people left out before encoding, with the reason (e.g. no shared topic)."""
    open_mentors: int
    """Mentors open in this run, including those left out early."""
    open_mentees: int
    closed: dict[str, str]
    """Would-be mentors who may not mentor yet (not screened / trained), with the reason."""


def encode_cohort(
    *,
    rules: ProgramRules,
    participants: Sequence[Candidate],
    excluded: AbstractSet[tuple[str, str]],
    at: datetime,
) -> Cohort:
    """Encode the open mentors and mentees of ``participants`` for a run at ``at``."""
    people = _distinct(participants)
    mentor_reasons = {c.participant_id: mentor_side_violations(rules, c) for c in people}
    open_mentors = [c for c in people if not mentor_reasons[c.participant_id]]
    open_mentees = [c for c in people if not mentee_side_violations(c)]
    wanted = set().union(*(c.wants.keys() for c in open_mentees))
    offered = set().union(*(c.offers.keys() for c in open_mentors))
    mentors = [c for c in open_mentors if not c.offers.keys().isdisjoint(wanted)]
    mentees = [c for c in open_mentees if not c.wants.keys().isdisjoint(offered)]
    left_out = dict.fromkeys(
        {c.participant_id for c in open_mentors + open_mentees}
        - {c.participant_id for c in mentors + mentees},
        NO_SHARED_TOPIC,
    )
    open_ids = {c.participant_id for c in open_mentors + open_mentees}
    closed = {
        c.participant_id: reason
        for c in people
        if c.participant_id not in open_ids
        and (reason := _waiting_reason(mentor_reasons[c.participant_id], c)) is not None
    }
    cohort = _encode(rules, mentors, mentees, excluded, at, sorted(wanted & offered))
    return replace(
        cohort,
        open_mentors=len(open_mentors),
        open_mentees=len(open_mentees),
        left_out=left_out,
        closed=closed,
    )


def _distinct(participants: Sequence[Candidate]) -> list[Candidate]:
    """Participants sorted by id; a repeated identical entry counts once."""
    by_id: dict[str, Candidate] = {}
    for person in participants:
        seen = by_id.setdefault(person.participant_id, person)
        if seen != person:
            raise ValueError(f"participant {person.participant_id!r} is given twice, differently")
    return [by_id[pid] for pid in sorted(by_id)]


def _waiting_reason(reasons: list[str], person: Candidate) -> str | None:
    """Why a would-be mentor waits (not screened / not trained); None for the others.

    People with nothing to do in this run (inactive, already paired, no free slot) are
    not reported as unmatched.
    """
    if not person.active or not person.can_mentor or person.mentor_slots < 1:
        return None
    return next((r for r in reasons if r in (NOT_SCREENED, NOT_TRAINED)), None)


def _encode(
    rules: ProgramRules,
    mentors: list[Candidate],
    mentees: list[Candidate],
    excluded: AbstractSet[tuple[str, str]],
    at: datetime,
    topics: list[str],
) -> Cohort:
    languages = _vocabulary(lang for c in mentors + mentees for lang in c.languages)
    attributes = _vocabulary(key for c in mentors + mentees for key in c.background)
    departments: dict[str, int] = {}
    values: dict[tuple[str, str], int] = {}
    topic_index = {t: k for k, t in enumerate(topics)}
    forbidden, preferred, preference = _pair_rules(mentors, mentees, excluded)
    return Cohort(
        mentors=_side(
            mentors, at, languages, attributes, departments, values, topic_index, offers=True
        ),
        mentees=_side(
            mentees, at, languages, attributes, departments, values, topic_index, offers=False
        ),
        capacities=np.array([c.mentor_slots for c in mentors], dtype=np.int64),
        coverage_denominator=np.array(
            [MAX_LEVEL * sum(c.wants.values()) for c in mentees], dtype=np.int64
        ),
        forbidden=forbidden,
        preferred=preferred,
        preference=preference,
        left_out={},
        open_mentors=len(mentors),
        open_mentees=len(mentees),
        closed={},
    )


def _vocabulary(items: Iterable[str]) -> dict[str, int]:
    return {item: k for k, item in enumerate(sorted(set(items)))}


def _side(
    people: list[Candidate],
    at: datetime,
    languages: dict[str, int],
    attributes: dict[str, int],
    departments: dict[str, int],
    values: dict[tuple[str, str], int],
    topic_index: dict[str, int],
    *,
    offers: bool,
) -> Side:
    n = len(people)
    topic_matrix = np.zeros((n, len(topic_index)), dtype=np.float32)
    background = np.full((n, len(attributes)), -1, dtype=np.int32)
    for row, person in enumerate(people):
        levels = person.offers if offers else person.wants
        for topic, level in levels.items():
            column = topic_index.get(topic)
            if column is not None:
                topic_matrix[row, column] = level
        for key, value in person.background.items():
            background[row, attributes[key]] = values.setdefault((key, value), len(values))
    return Side(
        people=tuple(people),
        grade=np.array([c.grade for c in people], dtype=np.int16),
        offset=np.array([utc_offset_minutes(c.timezone, at) for c in people], dtype=np.int16),
        department=np.array(
            [departments.setdefault(c.department, len(departments)) for c in people], dtype=np.int32
        ),
        languages=_language_bits(people, languages),
        topics=topic_matrix,
        background=background,
    )


def _language_bits(
    people: list[Candidate], languages: dict[str, int]
) -> npt.NDArray[np.unsignedinteger]:
    """Bit sets in the narrowest unsigned type that holds the vocabulary (64 per word)."""
    width = next((bits for bits in (8, 16, 32) if len(languages) <= bits), 64)
    words = max(1, -(-len(languages) // 64))
    dtype = {8: np.uint8, 16: np.uint16, 32: np.uint32, 64: np.uint64}[width]
    bits = np.zeros((len(people), words), dtype=np.uint64)
    for row, person in enumerate(people):
        for lang in person.languages:
            position = languages[lang]
            bits[row, position // 64] |= np.uint64(1) << np.uint64(position % 64)
    return bits.astype(dtype)


def _pair_rules(
    mentors: list[Candidate], mentees: list[Candidate], excluded: AbstractSet[tuple[str, str]]
) -> tuple[IntArray, IntArray, FloatArray]:
    """Forbidden pair keys, and preferred pair keys with their preference value."""
    mentor_at = {c.participant_id: i for i, c in enumerate(mentors)}
    mentee_at = {c.participant_id: j for j, c in enumerate(mentees)}
    m = len(mentors)
    forbidden: set[int] = set()
    halves: dict[int, int] = {}
    for j, mentee in enumerate(mentees):
        for other in (*mentee.manager_chain, *mentee.avoid, mentee.participant_id):
            if other in mentor_at:
                forbidden.add(j * m + mentor_at[other])
        for other in mentee.prefer:
            if other in mentor_at:
                key = j * m + mentor_at[other]
                halves[key] = halves.get(key, 0) + 1
    for i, mentor in enumerate(mentors):
        for other in (*mentor.manager_chain, *mentor.avoid):
            if other in mentee_at:
                forbidden.add(mentee_at[other] * m + i)
        for other in mentor.prefer:
            if other in mentee_at:
                key = mentee_at[other] * m + i
                halves[key] = halves.get(key, 0) + 1
    for a, b in excluded:
        for mentor_id, mentee_id in ((a, b), (b, a)):
            if mentor_id in mentor_at and mentee_id in mentee_at:
                forbidden.add(mentee_at[mentee_id] * m + mentor_at[mentor_id])
    keys = np.array(sorted(halves), dtype=np.int64)
    return (
        np.array(sorted(forbidden), dtype=np.int64),
        keys,
        np.array([halves[int(k)] / 2 for k in keys], dtype=np.float64),
    )
