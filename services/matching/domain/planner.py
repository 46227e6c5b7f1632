"""The certified optimum: solve on a few candidate arcs, price every eligible arc, repeat.

1. :func:`~services.matching.domain.arcstore.sweep` stores every eligible arc and seeds
   the candidate set with each person's best arcs and a maximum-cardinality matching.
2. OR-Tools' min-cost flow solves the b-matching on the candidates only.
3. :func:`~services.matching.domain.solver.optimal_duals` rebuilds an optimal dual
   ``(u, v)`` of that restricted problem; every stored arc is *priced*:
   ``reduced = weight - u_mentor - v_mentee``.
4. If no arc has a positive reduced cost, ``(u, v)`` is feasible for the whole problem
   and its objective equals the plan's (checked): by LP duality the plan is optimal on
   all eligible arcs (the b-matching polytope is integral). Otherwise the profitable arcs
   (and, after the first round, the nearly profitable ones) join the candidates and the
   loop repeats. After the third round's set is built the set only grows, so the loop
   ends; in practice it ends in three rounds. If the second round still leaves people
   unmatched, a maximum cardinality matching of the whole cohort (Hopcroft-Karp) joins.

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

PER_PERSON = 16
"""Best arcs per mentee and per mentor slot in the seed candidate set."""
PROFITABLE_PER_PERSON = 8
"""After the first round, each person's most profitable arcs join the candidates."""
NEAR = 2 * UNITS_PER_TOTAL_WEIGHT // 100
"""Later rounds also add arcs within this many units of being profitable (2% of a score)."""
WINDOW = 6 * UNITS_PER_TOTAL_WEIGHT // 100
"""Building round 3, candidates further than this from profitable leave the set (the chosen
stay); after that nothing leaves, so the set only grows and the loop must end."""
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
    """Per round: candidate arcs solved, stored arcs found profitable."""
    objective: int
    """Sum of the chosen arcs' weights (bonus included); equals the dual objective."""


def pair_bonus(objective: str, *, capacities: IntArray, n_mentees: int) -> int:
    """Weight added to every arc: 0 for max_score, else more than any plan's total units."""
    if objective != MatchingObjective.MAX_MATCHED_THEN_SCORE:
        return 0
    return (UNIT_CEILING + 1) * max(1, min(int(capacities.sum()), n_mentees)) + 1


def certified_plan(
    evaluator: PairEvaluator, *, objective: str, per_person: int = PER_PERSON
) -> CertifiedPlan:
    """The optimal plan over all eligible arcs, found on candidates and proved by pricing."""
    capacities = evaluator.cohort.capacities
    swept = sweep(evaluator, per_person=per_person)
    store, candidates = swept.store, swept.seed
    bonus = pair_bonus(objective, capacities=capacities, n_mentees=store.n_mentees)
    most_pairs_first = objective == MatchingObjective.MAX_MATCHED_THEN_SCORE
    history: list[tuple[int, int]] = []
    reduced = np.empty(len(store), dtype=np.int64)
    for round_number in range(1, MAX_ROUNDS + 1):
        result = _solve_round(
            store, candidates, capacities, bonus, most_pairs_first=most_pairs_first, reduced=reduced
        )
        profitable = int((result.reduced > 0).sum())
        history.append((result.picked.size, profitable))
        if profitable == 0:
            return _certify(result, store, capacities, tuple(history))
        if round_number == 2 and result.chosen.sum() < min(int(capacities.sum()), store.n_mentees):
            candidates |= maximum_matching(store, capacities)
        chosen = result.picked[result.chosen]
        candidates = _next_candidates(store, candidates, chosen, result.reduced, round_number)
    raise SolverError(f"no optimality certificate after {MAX_ROUNDS} rounds")


@dataclass(frozen=True, slots=True)
class _Round:
    picked: IntArray
    """Store indices of the candidate arcs."""
    arcs: Arcs
    chosen: BoolArray
    duals: Duals
    reduced: IntArray


def _solve_round(
    store: ArcStore,
    candidates: BoolArray,
    capacities: IntArray,
    bonus: int,
    *,
    most_pairs_first: bool,
    reduced: IntArray,
) -> _Round:
    """Solve on the candidates, rebuild the duals, price every stored arc into ``reduced``."""
    picked = np.flatnonzero(candidates)
    taken = store.take(picked)
    n = store.n_mentees
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
    return _Round(picked, arcs, chosen, duals, price(store, duals, bonus, out=reduced))


def _certify(
    result: _Round, store: ArcStore, capacities: IntArray, history: tuple[tuple[int, int], ...]
) -> CertifiedPlan:
    """The plan, once no stored arc prices out: primal must equal dual objective."""
    value = int(result.arcs.weight[result.chosen].sum())
    if value != result.duals.objective(capacities):
        raise SolverError("primal and dual objectives differ: the plan is not proved")
    return CertifiedPlan(
        chosen=store.take(result.picked[result.chosen]),
        store=store,
        candidate_arcs=result.picked.size,
        solved_arcs=sum(arcs for arcs, _ in history),
        rounds=len(history),
        round_arcs=history,
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
    store: ArcStore, candidates: BoolArray, chosen: IntArray, reduced: IntArray, round_number: int
) -> BoolArray:
    """Round 1 adds each person's most profitable arcs; later rounds every nearly profitable
    arc (round 2 also drops candidates far from profitable; the chosen arcs always stay)."""
    if round_number == 1:
        profitable = np.flatnonzero(reduced > 0)
        gain = np.minimum(reduced[profitable], UNIT_CEILING)
        keep_mentee = np.full(store.n_mentees, PROFITABLE_PER_PERSON, dtype=np.int64)
        keep_mentor = np.full(store.n_mentors, PROFITABLE_PER_PERSON, dtype=np.int64)
        best = best_per_group(store.mentee[profitable], gain, keep=keep_mentee)
        best |= best_per_group(store.mentor[profitable], gain, keep=keep_mentor)
        grown = candidates.copy()
        grown[profitable[best]] = True
        return grown
    if round_number == 2:
        grown = (reduced > -NEAR) | (candidates & (reduced > -WINDOW))
        grown[chosen] = True
        return grown
    return candidates | (reduced > -NEAR)
