"""Maximum-weight bipartite b-matching on a sparse arc list, and its dual certificate.

Mentors have a capacity (free mentee slots), mentees take one mentor. The problem is the
linear program

    max  sum_a w_a x_a   s.t.  sum_{a out of mentor i} x_a <= c_i,
                               sum_{a into mentee j} x_a <= 1,   0 <= x <= 1,

whose constraint matrix is totally unimodular, so the min-cost-flow optimum is integral.
Its dual is ``min sum_i c_i u_i + sum_j v_j`` s.t. ``u_i + v_j >= w_ij``, ``u, v >= 0``.
:func:`solve` runs OR-Tools' min-cost flow; :func:`optimal_duals` rebuilds an optimal dual
(u, v) from the optimal flow by shortest paths on the complementary-slackness difference
constraints. ``u_i + v_j >= w_ij`` for an arc the solver never saw proves that arc could
not improve the plan: that is how the sparse candidate set is certified optimal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from ortools.graph.python import min_cost_flow

from services.matching.domain.arrays import BoolArray, IntArray

_INF = np.int64(2**62)


class SolverError(RuntimeError):
    """The flow solver did not report an optimal solution (a bug or an overflow)."""


@dataclass(frozen=True, slots=True)
class Arcs:
    """Candidate arcs mentor -> mentee with integer weights (parallel arrays)."""

    mentor: IntArray
    mentee: IntArray
    weight: IntArray

    def __len__(self) -> int:
        return int(self.mentor.shape[0])


def solve(*, capacities: IntArray, n_mentees: int, arcs: Arcs, most_pairs_first: bool) -> BoolArray:
    """Arcs chosen by an optimal b-matching on ``arcs`` (weights >= 0).

    ``most_pairs_first``: a maximum flow of least cost, i.e. the most pairs and, among
    those, the largest total weight (OR-Tools' ``solve_max_flow_with_min_cost``). Otherwise
    the largest total weight, pairs optional (a zero-cost bypass arc source -> sink).
    """
    m = int(capacities.shape[0])
    source, sink = m + n_mentees, m + n_mentees + 1
    supply = int(min(int(capacities.sum()), n_mentees))
    flow = min_cost_flow.SimpleMinCostFlow()
    n_arcs = len(arcs)
    flow.add_arcs_with_capacity_and_unit_cost(
        arcs.mentor, arcs.mentee + m, np.ones(n_arcs, dtype=np.int64), -arcs.weight
    )
    flow.add_arcs_with_capacity_and_unit_cost(
        np.full(m, source, dtype=np.int64),
        np.arange(m, dtype=np.int64),
        capacities,
        np.zeros(m, np.int64),
    )
    flow.add_arcs_with_capacity_and_unit_cost(
        np.arange(m, m + n_mentees, dtype=np.int64),
        np.full(n_mentees, sink, dtype=np.int64),
        np.ones(n_mentees, dtype=np.int64),
        np.zeros(n_mentees, dtype=np.int64),
    )
    flow.set_node_supply(source, supply)
    flow.set_node_supply(sink, -supply)
    if most_pairs_first:
        status = flow.solve_max_flow_with_min_cost()
    else:
        flow.add_arc_with_capacity_and_unit_cost(source, sink, supply, 0)
        status = flow.solve()
    if status != flow.OPTIMAL:
        raise SolverError(f"min-cost flow ended with status {status}")
    return np.asarray(flow.flows(np.arange(n_arcs, dtype=np.int64)), dtype=np.int64) > 0


@dataclass(frozen=True, slots=True)
class Duals:
    """An optimal dual solution: ``u`` per mentor, ``v`` per mentee."""

    u: IntArray
    v: IntArray

    def objective(self, capacities: IntArray) -> int:
        """The dual objective; equals the primal optimum when both are optimal."""
        return int((capacities * self.u).sum() + self.v.sum())


def optimal_duals(
    *,
    capacities: IntArray,
    n_mentees: int,
    arcs: Arcs,
    chosen: BoolArray,
    favour: Literal["mentor", "mentee"] = "mentee",
) -> Duals:
    """The optimal dual that gives ``favour``'s side the largest values.

    Complementary slackness turns optimality into difference constraints on
    ``a_i = u_i`` and ``b_j = -v_j`` (``b_j <= a_i - w`` for every arc, ``a_i <= b_j + w``
    for chosen arcs, ``u, v >= 0``, ``u_i = 0`` for a mentor with a free slot, ``v_j = 0``
    for an unmatched mentee); shortest paths from a root give the greatest solution
    (mentor-favouring), shortest paths to the root the least (mentee-favouring).
    """
    m = int(capacities.shape[0])
    tails, heads, lengths = _difference_graph(capacities, n_mentees, arcs, chosen)
    root = m + n_mentees
    if favour == "mentor":
        dist = _shortest_from(root, tails, heads, lengths, m + n_mentees + 1)
        return Duals(u=dist[:m], v=-dist[m:root])
    dist = _shortest_from(root, heads, tails, lengths, m + n_mentees + 1)
    return Duals(u=-dist[:m], v=dist[m:root])


def central_duals(*, capacities: IntArray, n_mentees: int, arcs: Arcs, chosen: BoolArray) -> Duals:
    """The midpoint of the mentee- and mentor-favouring optimal duals (still optimal).

    Optimal duals form a convex set; rounding ``u`` down and ``v`` up keeps every
    constraint and every complementary-slackness equality, since ``u + v`` stays the
    integer midpoint. A central dual leaves fewer stored arcs looking profitable.
    """
    one = optimal_duals(
        capacities=capacities, n_mentees=n_mentees, arcs=arcs, chosen=chosen, favour="mentee"
    )
    two = optimal_duals(
        capacities=capacities, n_mentees=n_mentees, arcs=arcs, chosen=chosen, favour="mentor"
    )
    return Duals(u=(one.u + two.u) // 2, v=(one.v + two.v + 1) // 2)


def _difference_graph(
    capacities: IntArray, n_mentees: int, arcs: Arcs, chosen: BoolArray
) -> tuple[IntArray, IntArray, IntArray]:
    """Edges (tail, head, length) meaning ``pi[head] <= pi[tail] + length``."""
    m = int(capacities.shape[0])
    root = m + n_mentees
    mentee_node = arcs.mentee + m
    used = np.bincount(arcs.mentor[chosen], minlength=m)
    matched = np.zeros(n_mentees, dtype=bool)
    matched[arcs.mentee[chosen]] = True
    free_mentors = np.flatnonzero(used < capacities)
    unmatched = np.flatnonzero(~matched) + m
    mentors, mentees = np.arange(m), np.arange(m, root)
    parts = [
        (arcs.mentor, mentee_node, -arcs.weight),
        (mentee_node[chosen], arcs.mentor[chosen], arcs.weight[chosen]),
        (mentors, np.full(m, root), np.zeros(m, np.int64)),
        (np.full(n_mentees, root), mentees, np.zeros(n_mentees, np.int64)),
        (np.full(free_mentors.size, root), free_mentors, np.zeros(free_mentors.size, np.int64)),
        (unmatched, np.full(unmatched.size, root), np.zeros(unmatched.size, np.int64)),
    ]
    tails = np.concatenate([p[0] for p in parts]).astype(np.int64)
    heads = np.concatenate([p[1] for p in parts]).astype(np.int64)
    lengths = np.concatenate([p[2] for p in parts]).astype(np.int64)
    return tails, heads, lengths


def _shortest_from(
    root: int, tails: IntArray, heads: IntArray, lengths: IntArray, n_nodes: int
) -> IntArray:
    """Bellman-Ford from ``root`` relaxing only the edges out of nodes that just improved."""
    order = np.argsort(tails, kind="stable")
    tails, heads, lengths = tails[order], heads[order], lengths[order]
    starts = np.searchsorted(tails, np.arange(n_nodes + 1))
    dist = np.full(n_nodes, _INF, dtype=np.int64)
    dist[root] = 0
    frontier = np.array([root], dtype=np.int64)
    for _ in range(n_nodes + 1):
        if frontier.size == 0:
            return dist
        edges = _edges_out_of(frontier, starts)
        candidate = dist[tails[edges]] + lengths[edges]
        best = dist.copy()
        np.minimum.at(best, heads[edges], candidate)
        improved = best < dist
        dist = best
        frontier = np.flatnonzero(improved)
    raise SolverError("negative cycle: the flow given is not optimal")


def _edges_out_of(nodes: IntArray, starts: IntArray) -> IntArray:
    """Indices of the edges whose tail is in ``nodes`` (edges sorted by tail)."""
    begin, end = starts[nodes], starts[nodes + 1]
    counts = end - begin
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.repeat(begin - np.cumsum(counts) + counts, counts)
    return offsets + np.arange(total, dtype=np.int64)
