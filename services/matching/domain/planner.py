"""The certified optimum: solve on a few candidate arcs, price every eligible arc, repeat.

1. :func:`~services.matching.domain.arcstore.sweep` stores every eligible arc and seeds
   the candidate set with each mentee's and each mentor slot's best arcs.
2. OR-Tools' min-cost flow solves the b-matching on the candidates only.
3. :func:`~services.matching.domain.solver.optimal_duals` rebuilds an optimal dual
   ``(u, v)`` of that restricted problem, and the *working set* (candidates plus the arcs
   that were near profitable at the last full pricing) is priced:
   ``reduced = weight - u_mentor - v_mentee``.
4. When no working arc has a positive reduced cost, every stored arc is priced. If none
   has one, ``(u, v)`` is feasible for the whole problem and its objective equals the
   plan's (checked): by LP duality the plan is optimal on all eligible arcs (the
   b-matching polytope is integral). Otherwise the arcs near profitable join the working
   set and the loop goes on: while many arcs are profitable, each person's most
   profitable ones join the candidates and candidates far from profitable leave; once
   few are, the candidates are the chosen arcs and every arc near profitable. From round
   :data:`GROW_ONLY_FROM` on nothing leaves, so the set only grows and the loop ends. If
   round 2 still leaves people unmatched, a maximum cardinality matching of the whole
   cohort (Hopcroft-Karp) joins.

Objective ``max_matched_then_score``: arcs weigh ``bonus + units`` where ``bonus`` exceeds
any plan's total units, so more pairs always wins, then more units. The solver handles
that order directly (a maximum flow of least cost); the bonus only enters the prices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from schemas.programs import MatchingObjective
from services.matching.domain.arcstore import ArcStore, best_per_group, maximum_matching, sweep
from services.matching.domain.arrays import BoolArray, IntArray
from services.matching.domain.candidates import UNIT_CEILING, PairArcs, PairEvaluator
from services.matching.domain.scoring import UNITS_PER_TOTAL_WEIGHT
from services.matching.domain.solver import Arcs, Duals, SolverError, optimal_duals, solve

PER_PERSON = 32
"""Best arcs per mentee and per mentor slot in the seed candidate set (on the benchmark
cohorts a larger first solve that leaves few arcs profitable beats a small one)."""
PROFITABLE_PER_PERSON = 8
"""While many arcs are profitable, each person's most profitable arcs join the candidates."""
SHRINK = 2 * UNITS_PER_TOTAL_WEIGHT // 100
"""Meanwhile candidates further than this from profitable leave (2% of a score)."""
NEAR = 15 * UNITS_PER_TOTAL_WEIGHT // 1000
"""Once few arcs are profitable, the candidates are the chosen arcs and every arc within
this many units of being profitable (1.5% of a score)."""
GROW_ONLY_FROM = 2
"""From this round on nothing leaves the candidates, so the set only grows and the loop
must end."""
WORKING = 5 * UNITS_PER_TOTAL_WEIGHT // 100
"""Arcs within this many units of profitable at a full pricing join the working set,
which the rounds price; the whole store is priced only when the working set has no
profitable arc left."""
MAX_ROUNDS = 100
_PRICE_CHUNK = 1 << 16


@dataclass(frozen=True, slots=True)
class CertifiedPlan:
    """The chosen arcs and the evidence that they are optimal."""

    chosen: PairArcs
    store: ArcStore
    candidate_arcs: int
    """Arcs the solver saw in the last (certifying) round."""
    solved_arcs: int
    """Arcs summed over every round's solve."""
    rounds: int
    round_arcs: tuple[tuple[int, int], ...]
    """Per round: candidate arcs solved, working arcs found profitable."""
    full_pricings: int
    """Passes pricing every stored arc (the last one is the certificate)."""
    objective: int
    """Sum of the chosen arcs' weights (bonus included); equals the dual objective."""


def pair_bonus(objective: str, *, capacities: IntArray, n_mentees: int) -> int:
    """Weight added to every arc: 0 for max_score, else more than any plan's total units."""
    if objective != MatchingObjective.MAX_MATCHED_THEN_SCORE:
        return 0
    return (UNIT_CEILING + 1) * max(1, min(int(capacities.sum()), n_mentees)) + 1


@dataclass(frozen=True, slots=True)
class _Working:
    """The arcs the rounds price: a subset of the store, in store order."""

    member: BoolArray
    """Over the store: which arcs are in the working set."""
    index: IntArray
    """Store indices of the working arcs (ascending)."""
    arcs: ArcStore

    @staticmethod
    def of(store: ArcStore, member: BoolArray) -> _Working:
        """The working set of the store arcs marked in ``member``."""
        index = np.flatnonzero(member)
        return _Working(member=member, index=index, arcs=store.subset(index))

    def grown(self, store: ArcStore, joining: BoolArray) -> _Working:
        """The working set with the store arcs marked in ``joining`` added."""
        if not (joining & ~self.member).any():
            return self
        return _Working.of(store, self.member | joining)

    def local(self, store_indices: IntArray) -> IntArray:
        """Working-set positions of store indices that are in the working set."""
        return np.searchsorted(self.index, store_indices)


def certified_plan(
    evaluator: PairEvaluator, *, objective: str, per_person: int = PER_PERSON
) -> CertifiedPlan:
    """The optimal plan over all eligible arcs, found on candidates and proved by pricing."""
    capacities = evaluator.cohort.capacities
    swept = sweep(evaluator, per_person=per_person)
    store = swept.store
    bonus = pair_bonus(objective, capacities=capacities, n_mentees=store.n_mentees)
    most_pairs_first = objective == MatchingObjective.MAX_MATCHED_THEN_SCORE
    candidates = np.flatnonzero(swept.seed)
    work = _Working.of(store, swept.seed)
    full = np.empty(len(store), dtype=np.int64)
    history: list[tuple[int, int]] = []
    pricings = 0
    for round_number in range(1, MAX_ROUNDS + 1):
        result = _solve_round(
            work.arcs, work.local(candidates), capacities, bonus, most_pairs_first=most_pairs_first
        )
        chosen = candidates[result.chosen]
        reduced = result.reduced
        if not (reduced > 0).any():
            price(store, result.duals, bonus, out=full)
            pricings += 1
            if not (full > 0).any():
                history.append((candidates.size, 0))
                return _certify(store, chosen, result, tuple(history), pricings, capacities)
            work = work.grown(store, full > -WORKING)
            reduced = full[work.index]
        history.append((candidates.size, int((reduced > 0).sum())))
        if round_number == 2 and chosen.size < min(int(capacities.sum()), store.n_mentees):
            work = work.grown(store, maximum_matching(store, capacities))
            reduced = price(work.arcs, result.duals, bonus)
        kept = np.zeros(len(work.index), dtype=bool)
        kept[work.local(candidates)] = True
        grown = _next_candidates(work.arcs, kept, work.local(chosen), reduced, round_number)
        candidates = work.index[grown]
    raise SolverError(f"no optimality certificate after {MAX_ROUNDS} rounds")


@dataclass(frozen=True, slots=True)
class _Round:
    arcs: Arcs
    """The candidate arcs as the solver saw them (bonus included)."""
    chosen: BoolArray
    """Over the candidates: the arcs of the restricted optimum."""
    duals: Duals
    reduced: IntArray
    """Reduced weight of every working arc."""


def _solve_round(
    working: ArcStore,
    picked: IntArray,
    capacities: IntArray,
    bonus: int,
    *,
    most_pairs_first: bool,
) -> _Round:
    """Solve on the candidates ``picked``, rebuild the duals, price the working arcs."""
    taken = working.take(picked)
    n = working.n_mentees
    scored = Arcs(mentor=taken.mentor, mentee=taken.mentee, weight=taken.units)
    # The solver orders "most pairs first" itself: it sees the small unit costs only,
    # which keeps its cost scaling short; the bonus enters the duals and the prices.
    chosen = solve(
        capacities=capacities, n_mentees=n, arcs=scored, most_pairs_first=most_pairs_first
    )
    arcs = Arcs(mentor=taken.mentor, mentee=taken.mentee, weight=taken.units + bonus)
    duals = optimal_duals(
        capacities=capacities, n_mentees=n, arcs=arcs, chosen=chosen, favour="mentee"
    )
    return _Round(arcs, chosen, duals, price(working, duals, bonus))


def _certify(
    store: ArcStore,
    chosen: IntArray,
    result: _Round,
    history: tuple[tuple[int, int], ...],
    pricings: int,
    capacities: IntArray,
) -> CertifiedPlan:
    """The plan, once no stored arc prices out: primal must equal dual objective."""
    value = int(result.arcs.weight[result.chosen].sum())
    if value != result.duals.objective(capacities):
        raise SolverError("primal and dual objectives differ: the plan is not proved")
    return CertifiedPlan(
        chosen=store.take(chosen),
        store=store,
        candidate_arcs=len(result.arcs),
        solved_arcs=sum(arcs for arcs, _ in history),
        rounds=len(history),
        round_arcs=history,
        full_pricings=pricings,
        objective=value,
    )


def price(store: ArcStore, duals: Duals, bonus: int, *, out: IntArray | None = None) -> IntArray:
    """Reduced weight of every stored arc: ``units + bonus - u_mentor - v_mentee``.

    Cache-sized chunks written in place: no temporary as big as the store.
    """
    reduced = np.empty(len(store), dtype=np.int64) if out is None else out
    mentor_price = bonus - duals.u
    scratch = np.empty(min(len(store), _PRICE_CHUNK), dtype=np.int64)
    for first in range(0, len(store), _PRICE_CHUNK):
        part = slice(first, min(len(store), first + _PRICE_CHUNK))
        size = part.stop - part.start
        np.take(mentor_price, store.mentor[part], out=reduced[part])
        np.take(duals.v, store.mentee[part], out=scratch[:size])
        reduced[part] -= scratch[:size]
        reduced[part] += store.units[part]
    return reduced


def _next_candidates(
    working: ArcStore, candidates: BoolArray, chosen: IntArray, reduced: IntArray, round_number: int
) -> BoolArray:
    """The next round's candidates over the working arcs (the chosen ones always stay).

    While many arcs are profitable, each person's most profitable arcs join and candidates
    far from profitable leave; once few are, the candidates are every arc near profitable.
    From :data:`GROW_ONLY_FROM` on nothing leaves.
    """
    if round_number >= GROW_ONLY_FROM:
        return candidates | (reduced > -NEAR)
    profitable = np.flatnonzero(reduced > 0)
    if profitable.size > PROFITABLE_PER_PERSON * working.n_mentees:
        gain = np.minimum(reduced[profitable], UNIT_CEILING)
        keep_mentee = np.full(working.n_mentees, PROFITABLE_PER_PERSON, dtype=np.int64)
        keep_mentor = np.full(working.n_mentors, PROFITABLE_PER_PERSON, dtype=np.int64)
        best = best_per_group(working.mentee[profitable], gain, keep=keep_mentee)
        best |= best_per_group(working.mentor[profitable], gain, keep=keep_mentor)
        grown = candidates & (reduced > -SHRINK)
        grown[profitable[best]] = True
    else:
        grown = reduced > -NEAR
    grown[chosen] = True
    return grown
