"""Every eligible arc of a cohort, kept compactly, and the seed of the candidate set.

:func:`sweep` evaluates the cohort block by block (a block is at most
:data:`~services.matching.domain.candidates.BLOCK_PAIRS` pairs, so the dense work never
holds more than ~30 MiB) and keeps only the *eligible* arcs, 12 bytes each, sorted by
(mentee, mentor). A 10,000 x 10,000 cohort with sparse topic overlap keeps ~15 million of
its 100 million pairs (~170 MiB). The solver never sees them all: it works on a small
candidate set, and the store serves to *price* every arc against the solver's duals.

The seed candidate set is each mentee's and each mentor slot's best arcs;
:func:`maximum_matching` (Hopcroft-Karp, scipy) supplies a maximum-cardinality matching
when the seed does not allow as many pairs as the whole cohort does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.sparse import csr_array
from scipy.sparse.csgraph import maximum_bipartite_matching

from services.matching.domain.candidates import BLOCK_PAIRS, PairArcs, PairEvaluator

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
Int32Array = npt.NDArray[np.int32]

_BUCKET_BITS = 10


@dataclass(frozen=True, slots=True)
class ArcStore:
    """All eligible arcs, sorted by (mentee, mentor), as int32 arrays."""

    mentee: Int32Array
    mentor: Int32Array
    units: Int32Array
    n_mentees: int
    n_mentors: int

    def __len__(self) -> int:
        return int(self.mentee.shape[0])

    def take(self, selected: BoolArray | IntArray) -> PairArcs:
        """The selected arcs as int64 :class:`PairArcs`."""
        return PairArcs(
            mentee=self.mentee[selected].astype(np.int64),
            mentor=self.mentor[selected].astype(np.int64),
            units=self.units[selected].astype(np.int64),
        )

    def degrees(self) -> tuple[IntArray, IntArray]:
        """Eligible arcs per mentee and per mentor."""
        return (
            np.bincount(self.mentee, minlength=self.n_mentees).astype(np.int64),
            np.bincount(self.mentor, minlength=self.n_mentors).astype(np.int64),
        )


@dataclass(frozen=True, slots=True)
class Sweep:
    """The arc store and the seed candidates (a mask over the store)."""

    store: ArcStore
    seed: BoolArray


def sweep(evaluator: PairEvaluator, *, per_person: int, block_pairs: int = BLOCK_PAIRS) -> Sweep:
    """Evaluate every pair; keep the eligible arcs and mark each side's best ``per_person``."""
    cohort = evaluator.cohort
    n, m = len(cohort.mentees), len(cohort.mentors)
    mentors = np.arange(m, dtype=np.int64)
    parts: list[PairArcs] = []
    best_of_mentee: list[BoolArray] = []
    step = max(1, block_pairs // max(1, m))
    for first in range(0, n, step):
        rows = np.arange(first, min(n, first + step), dtype=np.int64)
        arcs = evaluator.block(rows, mentors)
        parts.append(arcs)
        keep = np.full(rows.size, per_person, dtype=np.int64)
        best_of_mentee.append(best_per_group(arcs.mentee - first, arcs.units, keep=keep))
    store = ArcStore(
        mentee=_concat32([p.mentee for p in parts]),
        mentor=_concat32([p.mentor for p in parts]),
        units=_concat32([p.units for p in parts]),
        n_mentees=n,
        n_mentors=m,
    )
    seed = np.concatenate(best_of_mentee) if best_of_mentee else np.zeros(0, dtype=bool)
    seed |= best_per_group(store.mentor, store.units, keep=per_person * cohort.capacities)
    return Sweep(store=store, seed=seed)


def _concat32(parts: list[IntArray]) -> Int32Array:
    if not parts:
        return np.zeros(0, dtype=np.int32)
    return np.concatenate(parts, dtype=np.int32, casting="same_kind")


def best_per_group(
    group: IntArray | Int32Array, score: IntArray | Int32Array, *, keep: IntArray
) -> BoolArray:
    """Mask of each group's ``keep[g]`` highest-scoring arcs (ties: earlier arc first).

    Groups with no more arcs than they keep take them all. For the others a histogram
    of at most 1024 buckets finds the bucket holding the ``keep``-th best (no full sort);
    only the arcs of that bucket are sorted.
    """
    group = group.astype(np.int64)
    crowded = np.bincount(group, minlength=keep.size) > keep
    selected: BoolArray = ~crowded[group]
    arcs = np.flatnonzero(~selected)
    if arcs.size == 0:
        return selected
    local = (np.cumsum(crowded) - 1)[group[arcs]]
    values = score[arcs].astype(np.int64)
    quota = keep[crowded]
    lowest = int(values.min())
    shift = max(0, (int(values.max()) - lowest).bit_length() - _BUCKET_BITS)
    buckets = (values - lowest) >> shift
    n_buckets = int(buckets.max()) + 1
    counts = np.bincount(local * n_buckets + buckets, minlength=quota.size * n_buckets)
    at_or_above = np.cumsum(counts.reshape(quota.size, n_buckets)[:, ::-1], axis=1)[:, ::-1]
    threshold = n_buckets - 1 - np.argmax((at_or_above >= quota[:, None])[:, ::-1], axis=1)
    above = np.where(
        threshold + 1 < n_buckets,
        at_or_above[np.arange(quota.size), np.minimum(threshold + 1, n_buckets - 1)],
        0,
    )
    arc_threshold = threshold[local]
    selected[arcs[buckets > arc_threshold]] = True
    tied = np.flatnonzero(buckets == arc_threshold)
    tied = tied[np.lexsort((tied, -values[tied], local[tied]))]
    tied_group = local[tied]
    starts = np.flatnonzero(np.diff(tied_group, prepend=-1))
    rank = np.arange(tied.size) - np.repeat(starts, np.diff(starts, append=tied.size))
    selected[arcs[tied[rank < (quota - above)[tied_group]]]] = True
    return selected


def maximum_matching(store: ArcStore, capacities: IntArray) -> BoolArray:
    """Mask of the arcs of one maximum-cardinality b-matching (mentor slots expanded)."""
    chosen = np.zeros(len(store), dtype=bool)
    if len(store) == 0:
        return chosen
    repeats = capacities[store.mentor]
    arc_of_entry = np.repeat(np.arange(len(store)), repeats)
    first_slot = np.concatenate([[0], np.cumsum(capacities)[:-1]])
    within = np.arange(arc_of_entry.size) - np.repeat(np.cumsum(repeats) - repeats, repeats)
    slots = first_slot[store.mentor[arc_of_entry]] + within
    counts = np.bincount(store.mentee[arc_of_entry], minlength=store.n_mentees)
    indptr = np.concatenate([[0], np.cumsum(counts)])
    graph = csr_array(
        (np.ones(slots.size, dtype=np.int8), slots.astype(np.int32), indptr),
        shape=(store.n_mentees, int(capacities.sum())),
    )
    slot_of_mentee = maximum_bipartite_matching(graph, perm_type="column")
    matched = np.flatnonzero(slot_of_mentee >= 0)
    owner = np.repeat(np.arange(capacities.size), capacities)[slot_of_mentee[matched]]
    keys = store.mentee.astype(np.int64) * store.n_mentors + store.mentor
    chosen[np.searchsorted(keys, matched * store.n_mentors + owner)] = True
    return chosen
