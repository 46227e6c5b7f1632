"""Vectorised hard constraints and score units over blocks of (mentee, mentor) pairs.

:class:`PairEvaluator` applies every hard constraint and the score of
:mod:`~services.matching.domain.scoring` to a whole block of mentees x mentors at once:
one small matrix product gives every pair's skill-coverage numerator, the other rules are
integer comparisons on the block, and the score units of the allowed pairs are read from
small tables computed with the scalar formulas. The tests hold the block evaluation equal
to :func:`~services.matching.domain.engine.check_pair` and ``pair_units`` pair by pair.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from schemas.programs import ProgramType
from services.matching.domain.arrays import BoolArray, IntArray
from services.matching.domain.cohort import Cohort, Side
from services.matching.domain.constraints import MINUTES_PER_DAY
from services.matching.domain.model import ProgramRules
from services.matching.domain.scoring import (
    HALF_DAY_MINUTES,
    factor_units,
    factor_weights,
    units_scale,
)

UNIT_CEILING = (1 << 20) - 1
"""No pair has more score units than this (10^6 plus rounding)."""
BLOCK_PAIRS = 1 << 19
"""Pairs evaluated per block: small enough for the block's arrays to stay near the CPU (the
fastest of 2^17..2^20 on the benchmark machine with two sweep threads)."""


@dataclass(frozen=True, slots=True)
class PairArcs:
    """Eligible pairs as parallel arrays (global indices), sorted by (mentee, mentor)."""

    mentee: IntArray
    mentor: IntArray
    units: IntArray

    def __len__(self) -> int:
        return int(self.mentee.shape[0])

    def take(self, mask: BoolArray | IntArray) -> PairArcs:
        """The arcs selected by a boolean mask or an index array."""
        return PairArcs(mentee=self.mentee[mask], mentor=self.mentor[mask], units=self.units[mask])

    @staticmethod
    def concat(parts: list[PairArcs]) -> PairArcs:
        """All arcs of ``parts``, duplicates removed, sorted by (mentee, mentor)."""
        if not parts:
            empty = np.zeros(0, dtype=np.int64)
            return PairArcs(empty, empty, empty)
        mentee = np.concatenate([p.mentee for p in parts])
        mentor = np.concatenate([p.mentor for p in parts])
        units = np.concatenate([p.units for p in parts])
        width = int(mentor.max(initial=0)) + 1
        _, first = np.unique(mentee * width + mentor, return_index=True)
        return PairArcs(mentee=mentee[first], mentor=mentor[first], units=units[first])


class PairEvaluator:
    """Hard constraints and score units of any block of (mentee, mentor) pairs."""

    def __init__(self, *, rules: ProgramRules, cohort: Cohort) -> None:
        self.cohort = cohort
        self._program_type = rules.program_type
        self._grade_gap = rules.min_grade_gap
        self._clock_limit = rules.max_timezone_gap_hours * 60
        self._units = _UnitTables(factor_weights(rules), units_scale(rules), cohort)
        self._offered_by_topic = np.ascontiguousarray(cohort.mentors.topics.T)

    def mentors_in_reach(self, mentees: IntArray) -> IntArray:
        """Mentors whose clock is close enough to at least one of ``mentees`` (sorted).

        The union of the mentees' windows is one circular interval of offsets, from the
        earliest mentee's offset minus the limit to the latest one's plus the limit.
        """
        everyone = np.arange(len(self.cohort.mentors), dtype=np.int64)
        offsets = self.cohort.mentees.offset[mentees].astype(np.int64)
        if mentees.size == 0 or self._clock_limit >= HALF_DAY_MINUTES:
            return everyone
        start = int(offsets.min()) - self._clock_limit
        width = int(offsets.max()) - int(offsets.min()) + 2 * self._clock_limit
        into = (self.cohort.mentors.offset.astype(np.int64) - start) % MINUTES_PER_DAY
        return everyone[into <= width]

    def block(self, mentees: IntArray, mentors: IntArray) -> PairArcs:
        """Every allowed pair of ``mentees`` x ``mentors`` (both sorted) with its units."""
        wants, offers = self.cohort.mentees, self.cohort.mentors
        every_mentor = mentors.size == len(offers)
        pick = slice(None) if every_mentor else mentors
        offered = self._offered_by_topic if every_mentor else offers.topics[mentors].T
        taught = wants.topics[mentees] @ offered
        allowed = taught > 0
        allowed &= self._grade_ok(wants.grade[mentees], offers.grade[pick])
        allowed &= self._clock_ok(wants.offset[mentees], offers.offset[pick])
        allowed &= _share_a_bit(wants.languages[mentees], offers.languages[pick])
        flat = np.flatnonzero(allowed)
        local_row = flat // len(mentors)
        mentee = mentees[local_row]
        mentor = mentors[flat - local_row * len(mentors)]
        keys = mentee * len(offers) + mentor
        allowed_arcs = np.ones(keys.size, dtype=bool)
        allowed_arcs[_sorted_matches(keys, self.cohort.forbidden)[0]] = False
        mentee, mentor, keys = mentee[allowed_arcs], mentor[allowed_arcs], keys[allowed_arcs]
        taught_arcs = taught.ravel()[flat[allowed_arcs]].astype(np.int64)
        return PairArcs(mentee, mentor, self._units.of(mentee, mentor, keys, taught_arcs))

    def _grade_ok(
        self, mentee_grade: npt.NDArray[np.int16], mentor_grade: npt.NDArray[np.int16]
    ) -> BoolArray | bool:
        if self._program_type == ProgramType.REVERSE:
            return (mentee_grade[:, None] - mentor_grade[None, :]) >= self._grade_gap
        if self._program_type == ProgramType.TRADITIONAL:
            return (mentor_grade[None, :] - mentee_grade[:, None]) >= self._grade_gap
        return True

    def _clock_ok(
        self, mentee_offset: npt.NDArray[np.int16], mentor_offset: npt.NDArray[np.int16]
    ) -> BoolArray | bool:
        limit = self._clock_limit
        if limit >= HALF_DAY_MINUTES:
            return True
        apart = np.abs(mentee_offset[:, None] - mentor_offset[None, :])
        around = (apart >= MINUTES_PER_DAY - limit) & (apart <= MINUTES_PER_DAY + limit)
        close: BoolArray = (apart <= limit) | around
        return close


def _sorted_matches(sorted_keys: IntArray, table: IntArray) -> tuple[IntArray, IntArray]:
    """Positions (in ``sorted_keys``, in ``table``) of the keys found in both (both sorted).

    Only the slice of ``table`` within the keys' range is searched, so a small block costs
    little against a big table.
    """
    if sorted_keys.size == 0 or table.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    lo = int(np.searchsorted(table, sorted_keys[0], side="left"))
    hi = int(np.searchsorted(table, sorted_keys[-1], side="right"))
    where = np.minimum(np.searchsorted(sorted_keys, table[lo:hi]), sorted_keys.size - 1)
    found = np.flatnonzero(sorted_keys[where] == table[lo:hi])
    return where[found], found + lo


class _UnitTables:
    """Per-factor score units read from small tables computed with the scalar formulas.

    Skill coverage depends on (taught, the mentee's denominator), diversity on the two
    people's (department, background) profiles, closeness on the two UTC offsets, the
    preference on the number of sides that listed the other: few distinct values each.
    """

    def __init__(
        self, weights: tuple[float, float, float, float], scale: float, cohort: Cohort
    ) -> None:
        self._cohort = cohort
        self._skill, self._skill_base = _skill_table(weights[0], scale, cohort.coverage_denominator)
        mentee_profiles, self._mentee_profile = _profiles(cohort.mentees)
        mentor_profiles, self._mentor_profile = _profiles(cohort.mentors)
        self._diversity = _diversity_units(
            weights[1], scale, mentee_profiles[:, None, :], mentor_profiles[None, :, :]
        )
        self._n_profiles = mentor_profiles.shape[0]
        offsets = np.union1d(cohort.mentees.offset, cohort.mentors.offset).astype(np.int64)
        self._mentee_clock = np.searchsorted(offsets, cohort.mentees.offset)
        self._mentor_clock = np.searchsorted(offsets, cohort.mentors.offset)
        self._n_offsets = offsets.size
        self._closeness = _closeness_units(weights[2], scale, offsets[:, None], offsets[None, :])
        self._preference = np.array(
            [factor_units(weights[3], halves / 2, scale) for halves in range(3)], dtype=np.int64
        )

    def of(self, mentee: IntArray, mentor: IntArray, keys: IntArray, taught: IntArray) -> IntArray:
        """Score units of the arcs (``keys`` sorted, ``taught`` = coverage numerators)."""
        units = self._skill[self._skill_base[mentee] + taught]
        profile = self._mentee_profile[mentee] * self._n_profiles + self._mentor_profile[mentor]
        units += self._diversity.ravel()[profile]
        clock = self._mentee_clock[mentee] * self._n_offsets + self._mentor_clock[mentor]
        units += self._closeness.ravel()[clock]
        arc_at, preferred_at = _sorted_matches(keys, self._cohort.preferred)
        halves = (self._cohort.preference[preferred_at] * 2).astype(np.int64)
        units[arc_at] += self._preference[halves] - self._preference[0]
        total: IntArray = units + self._preference[0]
        return total


def _skill_table(weight: float, scale: float, denominators: IntArray) -> tuple[IntArray, IntArray]:
    """Units of taught/denominator for every (denominator, taught <= denominator)."""
    distinct = np.unique(denominators)
    sizes = distinct + 1
    starts = (np.cumsum(sizes) - sizes).astype(np.int64)
    table = np.zeros(int(sizes.sum()), dtype=np.int64)
    for start, denominator in zip(starts, distinct, strict=True):
        taught = np.arange(denominator + 1, dtype=np.float64)
        table[start : start + denominator + 1] = _units(weight, taught / float(denominator), scale)
    base = starts[np.searchsorted(distinct, denominators)]
    return table, base


def _units(weight: float, value: npt.NDArray[np.float64], scale: float) -> IntArray:
    """Vector form of :func:`~services.matching.domain.scoring.factor_units`."""
    return np.floor(weight * value * scale + 0.5).astype(np.int64)


def _profiles(side: Side) -> tuple[IntArray, IntArray]:
    """Distinct (department, background codes) rows of a side and each person's row."""
    rows = np.column_stack([side.department, side.background]).astype(np.int64)
    if rows.shape[0] == 0:
        return rows, np.zeros(0, np.int64)
    profiles, inverse = np.unique(rows, axis=0, return_inverse=True)
    return profiles, inverse.ravel().astype(np.int64)


def _diversity_units(weight: float, scale: float, mine: IntArray, theirs: IntArray) -> IntArray:
    """Diversity units of profile pairs (column 0 = department, then background codes)."""
    both = (mine[..., 1:] >= 0) & (theirs[..., 1:] >= 0)
    differing = (both & (mine[..., 1:] != theirs[..., 1:])).sum(axis=-1)
    department = (mine[..., 0] != theirs[..., 0]).astype(np.int64)
    value = (department + differing).astype(np.float64) / (1 + both.sum(axis=-1)).astype(np.float64)
    return _units(weight, value, scale)


def _closeness_units(weight: float, scale: float, mine: IntArray, theirs: IntArray) -> IntArray:
    """Time-zone closeness units of offset pairs (minutes)."""
    apart = np.abs(mine - theirs) % MINUTES_PER_DAY
    gap = np.minimum(apart, MINUTES_PER_DAY - apart)
    return _units(weight, 1.0 - gap.astype(np.float64) / HALF_DAY_MINUTES, scale)


def _share_a_bit(
    mine: npt.NDArray[np.unsignedinteger], theirs: npt.NDArray[np.unsignedinteger]
) -> BoolArray:
    """Pairs whose bit sets (shape (n, words)) intersect."""
    common: BoolArray = (mine[:, None, 0] & theirs[None, :, 0]) != 0
    for word in range(1, mine.shape[1]):
        common |= (mine[:, None, word] & theirs[None, :, word]) != 0
    return common
