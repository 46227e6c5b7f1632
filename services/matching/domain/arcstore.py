"""Every eligible arc of a cohort, kept compactly, and the seed of the candidate set.

:func:`sweep` evaluates the cohort block by block (mentees in UTC-offset order, each block
against the mentors whose clock is in reach; a block is at most
:data:`~services.matching.domain.candidates.BLOCK_PAIRS` pairs, so its dense work stays
small) and keeps only the *eligible* arcs, 12 bytes each, sorted by
(mentee, mentor). A 10,000 x 10,000 cohort with sparse topic overlap keeps ~15 million of
its 100 million pairs (~170 MiB). The solver never sees them all: it works on a small
candidate set, and the store serves to *price* every arc against the solver's duals.

The seed candidate set is each mentee's and each mentor slot's best arcs;
:func:`maximum_matching` (Hopcroft-Karp, scipy) supplies a maximum-cardinality matching
when the seed does not allow as many pairs as the whole cohort does.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from functools import cache

import numpy as np
from scipy.sparse import csr_array
from scipy.sparse.csgraph import maximum_bipartite_matching
from threadpoolctl import ThreadpoolController

from services.matching.domain.arrays import BoolArray, Int32Array, IntArray
from services.matching.domain.candidates import BLOCK_PAIRS, PairArcs, PairEvaluator

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
    columns = _Columns(capacity=min(n * m, 1 << 26))
    best_of_mentee: list[BoolArray] = []
    best_of_mentor = _RunningBest(keep=per_person * cohort.capacities)
    step, stored = max(1, block_pairs // max(1, m)), 0
    # Thousands of tiny matrix products: BLAS threads only add wake-up costs (on a busy
    # machine, several times the work itself), so the sweep runs them single-threaded.
    with _single_threaded_blas() if n > step else nullcontext():
        for first in range(0, n, step):
            rows = np.arange(first, min(n, first + step), dtype=np.int64)
            arcs = evaluator.block(rows, evaluator.mentors_in_reach(rows))
            columns.append(arcs)
            keep = np.full(rows.size, per_person, dtype=np.int64)
            best_of_mentee.append(best_per_group(arcs.mentee - first, arcs.units, keep=keep))
            best_of_mentor.offer(arcs, first_index=stored)
            stored += len(arcs)
    mentee, mentor, units = columns.arrays()
    store = ArcStore(mentee=mentee, mentor=mentor, units=units, n_mentees=n, n_mentors=m)
    seed = np.concatenate(best_of_mentee) if best_of_mentee else np.zeros(0, dtype=bool)
    seed[best_of_mentor.result()] = True
    return Sweep(store=store, seed=seed)


@cache
def _blas_controller() -> ThreadpoolController:
    """Found once: inspecting the loaded libraries costs milliseconds."""
    return ThreadpoolController()


def _single_threaded_blas() -> AbstractContextManager[object]:
    return _blas_controller().limit(limits=1, user_api="blas")  # type: ignore[no-any-return]


class _RunningBest:
    """Each mentor's best arcs over the stream of blocks, without holding every arc.

    An arc enters the pool only if it is at least as good as the mentor's current
    ``keep``-th best; the pool is cut back to each mentor's best from time to time. The
    result is exactly :func:`best_per_group` over all arcs (ties: earlier arc first).
    """

    def __init__(self, *, keep: IntArray) -> None:
        self._keep = keep
        self._threshold = np.full(keep.size, -1, dtype=np.int64)
        self._index: list[IntArray] = []
        self._mentor: list[IntArray] = []
        self._units: list[IntArray] = []
        self._size = 0

    def offer(self, arcs: PairArcs, *, first_index: int) -> None:
        """Consider a block's arcs (``first_index`` = store index of its first arc)."""
        entering = np.flatnonzero(arcs.units >= self._threshold[arcs.mentor])
        self._index.append(entering + first_index)
        self._mentor.append(arcs.mentor[entering])
        self._units.append(arcs.units[entering])
        self._size += entering.size
        if self._size > 4 * int(self._keep.sum()):
            self._cut()

    def result(self) -> IntArray:
        """Store indices of each mentor's best arcs."""
        self._cut()
        return self._index[0] if self._index else np.zeros(0, dtype=np.int64)

    def _cut(self) -> None:
        if not self._index:
            return
        index, mentor, units = (np.concatenate(p) for p in (self._index, self._mentor, self._units))
        kept = best_per_group(mentor, units, keep=self._keep)
        index, mentor, units = index[kept], mentor[kept], units[kept]
        full = np.bincount(mentor, minlength=self._keep.size) >= self._keep
        lowest = np.full(self._keep.size, np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(lowest, mentor, units)
        self._threshold = np.where(full, lowest, -1)
        self._index, self._mentor, self._units, self._size = [index], [mentor], [units], index.size


class _Columns:
    """Growable int32 columns (mentee, mentor, units), written in place.

    ``np.empty`` only reserves address space: memory is used as arcs are written, and
    the arcs are not copied again at the end (on a fresh VM, touching memory is slow).
    """

    def __init__(self, *, capacity: int) -> None:
        self._data = np.empty((3, max(1, capacity)), dtype=np.int32)
        self._size = 0

    def append(self, arcs: PairArcs) -> None:
        """Write a block's arcs after the previous ones, doubling the room if needed."""
        end = self._size + len(arcs)
        if end > self._data.shape[1]:
            grown = np.empty((3, max(end, 2 * self._data.shape[1])), dtype=np.int32)
            grown[:, : self._size] = self._data[:, : self._size]
            self._data = grown
        for row, values in enumerate((arcs.mentee, arcs.mentor, arcs.units)):
            self._data[row, self._size : end] = values
        self._size = end

    def arrays(self) -> tuple[Int32Array, Int32Array, Int32Array]:
        """The mentee, mentor and units columns (views, no copy)."""
        return self._data[0, : self._size], self._data[1, : self._size], self._data[2, : self._size]


def best_per_group(
    group: IntArray | Int32Array, score: IntArray | Int32Array, *, keep: IntArray
) -> BoolArray:
    """Mask of each group's ``keep[g]`` highest-scoring arcs (ties: earlier arc first).

    Groups with no more arcs than they keep take them all. For the others a histogram
    (best bucket first, at most 1024 buckets) finds the bucket holding the ``keep``-th
    best, without a full sort; only the arcs of that bucket are sorted.
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
    highest = int(values.max())
    # About two arcs per bucket and group, at most 1024 buckets: fine enough that few arcs
    # tie at the threshold, coarse enough that the histogram stays small.
    bucket_bits = min(_BUCKET_BITS, max(4, (2 * arcs.size // quota.size).bit_length()))
    shift = max(0, (highest - int(values.min())).bit_length() - bucket_bits)
    rank_bucket = (highest - values) >> shift
    n_buckets = int(rank_bucket.max()) + 1
    counts = np.bincount(local * n_buckets + rank_bucket, minlength=quota.size * n_buckets)
    at_or_better = np.cumsum(counts.reshape(quota.size, n_buckets), axis=1)
    threshold = np.argmax(at_or_better >= quota[:, None], axis=1)
    better = np.where(threshold > 0, at_or_better[np.arange(quota.size), threshold - 1], 0)
    arc_threshold = threshold[local]
    selected[arcs[rank_bucket < arc_threshold]] = True
    tied = np.flatnonzero(rank_bucket == arc_threshold)
    tied = tied[np.lexsort((tied, -values[tied], local[tied]))]
    tied_group = local[tied]
    starts = np.flatnonzero(np.diff(tied_group, prepend=-1))
    rank = np.arange(tied.size) - np.repeat(starts, np.diff(starts, append=tied.size))
    selected[arcs[tied[rank < (quota - better)[tied_group]]]] = True
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
