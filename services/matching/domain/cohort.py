"""A cohort encoded as numpy arrays, ready for vectorised candidate generation.

Only people who can take part on a side are encoded: open mentors (role, active,
screened / trained when required, a free slot) and open mentees (role, active, needing a
mentor), each side sorted by (UTC offset, id): the plan does not depend on input order,
and people in nearby time zones sit next to each other. A mentor who
offers nothing any open mentee wants (or the reverse) cannot be paired and is left out
early, which keeps a continuous run of one new joiner against a big pool cheap.

Pair-specific rules (reporting lines, ``avoid`` lists, excluded pairs, the same person on
both sides) are kept as a sorted list of forbidden pair keys ``mentee * n_mentors +
mentor``; ``prefer`` lists as sorted keys with the preference value of the pair.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from schemas.primitives import Role
from schemas.programs import ProgramType
from services.matching.domain.arrays import FloatArray, IntArray
from services.matching.domain.constraints import (
    NO_SHARED_TOPIC,
    NOT_SCREENED,
    NOT_TRAINED,
    utc_offset_minutes,
)
from services.matching.domain.model import Candidate, ProgramRules
from services.matching.domain.scoring import MAX_LEVEL

NO_ELIGIBLE = "no_eligible_candidate"
"""No allowed partner at all in this run."""


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
    open_mentors, open_mentees, closed = _open_sides(rules, _distinct(participants))
    mentors, mentees, left_out, topics = _reachable(rules, open_mentors, open_mentees)
    cohort = _encode(rules, mentors, mentees, excluded, at, topics)
    return replace(
        cohort,
        open_mentors=len(open_mentors),
        open_mentees=len(open_mentees),
        left_out=left_out,
        closed=closed,
    )


def _distinct(participants: Sequence[Candidate]) -> list[Candidate]:
    """Each participant once (a repeated identical entry counts once); the order is set
    later, by :func:`_by_clock`."""
    by_id: dict[str, Candidate] = {}
    for person in participants:
        seen = by_id.setdefault(person.participant_id, person)
        if seen is not person and seen != person:
            raise ValueError(f"participant {person.participant_id!r} is given twice, differently")
    return list(by_id.values())


def _open_sides(
    rules: ProgramRules, people: list[Candidate]
) -> tuple[list[Candidate], list[Candidate], dict[str, str]]:
    """Who may mentor now, who needs a mentor now, and why would-be mentors wait.

    Inactive people and people with nothing to do (no free slot, already paired) are in
    neither list and are not reported.
    """
    mentors: list[Candidate] = []
    mentees: list[Candidate] = []
    waiting: dict[str, str] = {}
    screening, training = rules.requires_screening, rules.requires_training
    mentee_role, mentor_role = Role.MENTEE.value, Role.MENTOR.value
    for person in people:
        if not person.active:
            continue
        if person.role != mentee_role and person.mentor_slots > 0:
            if screening and not person.screened:
                waiting[person.participant_id] = NOT_SCREENED
            elif training and not person.trained:
                waiting[person.participant_id] = NOT_TRAINED
            else:
                mentors.append(person)
        if person.role != mentor_role and person.needs_mentor:
            mentees.append(person)
    return mentors, mentees, waiting


def _union(groups: Iterable[Iterable[str]]) -> set[str]:
    found: set[str] = set()
    for keys in groups:
        found.update(keys)
    return found


def _reachable(
    rules: ProgramRules, mentors: list[Candidate], mentees: list[Candidate]
) -> tuple[list[Candidate], list[Candidate], dict[str, str], list[str]]:
    """Leave out early whoever cannot pair with anyone on the other side.

    Cheap tests against the whole other side: a topic it wants (offers), a language it
    speaks, a grade the program's direction allows. A continuous run of one new joiner
    against a big pool thus encodes only the few mentors who could take them. Also
    returns the topics both sides have in common.
    """
    left_out: dict[str, str] = {}
    big_first = len(mentors) >= len(mentees)
    first, second = (mentors, mentees) if big_first else (mentees, mentors)
    kept_first = _could_pair(rules, first, second, as_mentor=big_first, left_out=left_out)
    kept_second = _could_pair(rules, second, kept_first, as_mentor=not big_first, left_out=left_out)
    kept_mentors, kept_mentees = (
        (kept_first, kept_second) if big_first else (kept_second, kept_first)
    )
    _recheck_topic_reasons(second, first, left_out, as_mentor=not big_first)
    wanted, offered = _union(c.wants for c in kept_mentees), _union(c.offers for c in kept_mentors)
    return kept_mentors, kept_mentees, left_out, sorted(wanted & offered)


def _recheck_topic_reasons(
    side: list[Candidate], others: list[Candidate], left_out: dict[str, str], *, as_mentor: bool
) -> None:
    """``no_shared_topic`` only if nobody at all on the other side shares one (a partner
    left out for another reason still shares the topic: then no eligible candidate)."""
    suspects = [c for c in side if left_out.get(c.participant_id) == NO_SHARED_TOPIC]
    if not suspects:
        return
    topics = _union(c.wants for c in others) if as_mentor else _union(c.offers for c in others)
    for person in suspects:
        own = person.offers if as_mentor else person.wants
        if not own.keys().isdisjoint(topics):
            left_out[person.participant_id] = NO_ELIGIBLE


def _could_pair(
    rules: ProgramRules,
    side: list[Candidate],
    others: list[Candidate],
    *,
    as_mentor: bool,
    left_out: dict[str, str],
) -> list[Candidate]:
    """The people of ``side`` sharing a topic, a language and a workable grade with someone
    in ``others``; the rest go to ``left_out`` with their reason."""
    topics = _union(c.wants for c in others) if as_mentor else _union(c.offers for c in others)
    spoken = _union(c.languages for c in others)
    low, high = _grade_window(rules, others, as_mentor=as_mentor)
    kept = []
    for person in side:
        own = person.offers if as_mentor else person.wants
        shares_topic = not own.keys().isdisjoint(topics)
        if shares_topic and low <= person.grade <= high and not person.languages.isdisjoint(spoken):
            kept.append(person)
        else:
            left_out.setdefault(
                person.participant_id, NO_ELIGIBLE if shares_topic else NO_SHARED_TOPIC
            )
    return kept


def _grade_window(
    rules: ProgramRules, others: list[Candidate], *, as_mentor: bool
) -> tuple[float, float]:
    """Grades a partner of someone in ``others`` may have (program direction and gap)."""
    if not others:
        return math.inf, -math.inf
    if rules.program_type == ProgramType.MUTUAL:
        return -math.inf, math.inf
    grades = [c.grade for c in others]
    gap = rules.min_grade_gap
    junior = (rules.program_type == ProgramType.REVERSE) == as_mentor
    return (-math.inf, max(grades) - gap) if junior else (min(grades) + gap, math.inf)


def _encode(
    rules: ProgramRules,
    mentors: list[Candidate],
    mentees: list[Candidate],
    excluded: AbstractSet[tuple[str, str]],
    at: datetime,
    topics: list[str],
) -> Cohort:
    mentors, mentees = _by_clock(mentors, at), _by_clock(mentees, at)
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


def _by_clock(people: list[Candidate], at: datetime) -> list[Candidate]:
    """People ordered by UTC offset, then id: neighbours in time sit together, so a block
    of mentees is only compared with the mentors whose clock can be close enough."""
    offsets = {tz: utc_offset_minutes(tz, at) for tz in {c.timezone for c in people}}
    return sorted(people, key=lambda c: (offsets[c.timezone], c.participant_id))


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
    cells: list[tuple[int, int, int]] = []
    codes: list[tuple[int, int, int]] = []
    for row, person in enumerate(people):
        levels = person.offers if offers else person.wants
        cells += [(row, topic_index[t], level) for t, level in levels.items() if t in topic_index]
        codes += [
            (row, attributes[key], values.setdefault((key, value), len(values)))
            for key, value in person.background.items()
        ]
    offsets = {tz: utc_offset_minutes(tz, at) for tz in {c.timezone for c in people}}
    return Side(
        people=tuple(people),
        grade=np.array([c.grade for c in people], dtype=np.int16),
        offset=np.array([offsets[c.timezone] for c in people], dtype=np.int16),
        department=np.array(
            [departments.setdefault(c.department, len(departments)) for c in people], dtype=np.int32
        ),
        languages=_language_bits(people, languages),
        topics=_filled((len(people), len(topic_index)), cells, fill=0, dtype=np.float32),
        background=_filled((len(people), len(attributes)), codes, fill=-1, dtype=np.int32),
    )


def _filled(
    shape: tuple[int, int], cells: list[tuple[int, int, int]], *, fill: int, dtype: type
) -> npt.NDArray[Any]:
    """A matrix of ``fill`` with the (row, column, value) cells set."""
    matrix: npt.NDArray[Any] = np.full(shape, fill, dtype=dtype)
    if cells:
        table = np.array(cells, dtype=np.int64)
        matrix[table[:, 0], table[:, 1]] = table[:, 2]
    return matrix


def _language_bits(
    people: list[Candidate], languages: dict[str, int]
) -> npt.NDArray[np.unsignedinteger]:
    """Bit sets in the narrowest unsigned type that holds the vocabulary (64 per word)."""
    width = next((bits for bits in (8, 16, 32) if len(languages) <= bits), 64)
    words = max(1, -(-len(languages) // 64))
    dtype = {8: np.uint8, 16: np.uint16, 32: np.uint32, 64: np.uint64}[width]
    as_int: dict[frozenset[str], int] = {}
    for spoken in {c.languages for c in people}:
        as_int[spoken] = sum(1 << languages[lang] for lang in spoken)
    mask = (1 << 64) - 1
    bits = np.array(
        [[(as_int[c.languages] >> (64 * w)) & mask for w in range(words)] for c in people],
        dtype=np.uint64,
    ).reshape(len(people), words)
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
