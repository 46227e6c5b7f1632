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

import os
from concurrent.futures import ThreadPoolExecutor
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
_COARSE_BITS = 6
_PREFILTER_RATIO = 4


def _usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS reports it)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


SWEEP_WORKERS = max(1, min(4, _usable_cores()))
"""Threads evaluating blocks: numpy's loops release the GIL, so cores add up (capped at 4,
only 2 have been measured)."""


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

    def subset(self, index: IntArray) -> ArcStore:
        """The arcs at ``index`` (sorted store indices) as a store of their own."""
        return ArcStore(
            mentee=self.mentee[index],
            mentor=self.mentor[index],
            units=self.units[index],
            n_mentees=self.n_mentees,
            n_mentors=self.n_mentors,
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


def sweep(
    evaluator: PairEvaluator,
    *,
    per_person: int,
    block_pairs: int = BLOCK_PAIRS,
    workers: int = SWEEP_WORKERS,
) -> Sweep:
    """Evaluate every pair; keep the eligible arcs and mark each side's best ``per_person``.

    ``workers`` threads each take a contiguous run of mentees (numpy releases the GIL inside
    its loops): they evaluate its blocks, join its arcs and pick its seed arcs. Mentees
    belong to one run, so their best arcs are final there; a mentor's best arcs over the
    whole cohort are among the best of each run, and are picked exactly from those. The
    result does not depend on the number of workers.
    """
    cohort = evaluator.cohort
    n, m = len(cohort.mentees), len(cohort.mentors)
    step = max(1, block_pairs // max(1, m))
    starts = list(range(0, n, step))
    workers = max(1, min(workers, len(starts)))
    cuts = [len(starts) * w // workers for w in range(workers + 1)]
    runs = [starts[cuts[w] : cuts[w + 1]] for w in range(workers)]
    mentor_keep = per_person * cohort.capacities

    def run_part(run: list[int]) -> _Part:
        return _evaluate(evaluator, run, step, per_person=per_person, mentor_keep=mentor_keep)

    # Thousands of tiny matrix products: BLAS threads only add wake-up costs (on a busy
    # machine, several times the work itself), so the sweep runs them single-threaded.
    with _single_threaded_blas() if n > step else nullcontext():
        if workers > 1:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                parts = list(pool.map(run_part, runs))
        else:
            parts = [run_part(starts)]
    mentee, mentor, units = (np.concatenate([part.columns[k] for part in parts]) for k in range(3))
    store = ArcStore(mentee=mentee, mentor=mentor, units=units, n_mentees=n, n_mentors=m)
    seed = np.concatenate([part.mentee_best for part in parts])
    offsets = np.cumsum([0, *(part.columns[0].size for part in parts)])
    pool_of_mentor_best = np.concatenate(
        [part.mentor_best + offset for part, offset in zip(parts, offsets[:-1], strict=True)]
    )
    best = best_per_group(
        store.mentor[pool_of_mentor_best], store.units[pool_of_mentor_best], keep=mentor_keep
    )
    seed[pool_of_mentor_best[best]] = True
    return Sweep(store=store, seed=seed)


@dataclass(frozen=True, slots=True)
class _Part:
    """One worker's arcs (int32 columns) and its seed picks."""

    columns: tuple[Int32Array, Int32Array, Int32Array]
    mentee_best: BoolArray
    """Over the part's arcs: each of its mentees' best arcs (final)."""
    mentor_best: IntArray
    """Part-local indices of each mentor slot's best arcs within the part."""


def _evaluate(
    evaluator: PairEvaluator,
    starts: list[int],
    step: int,
    *,
    per_person: int,
    mentor_keep: IntArray,
) -> _Part:
    """The eligible arcs of the blocks starting at ``starts``, and their seed picks."""
    n = len(evaluator.cohort.mentees)
    blocks: list[tuple[Int32Array, Int32Array, Int32Array]] = []
    for first in starts:
        rows = np.arange(first, min(n, first + step), dtype=np.int64)
        arcs = evaluator.block(rows, evaluator.mentors_in_reach(rows))
        blocks.append(
            (
                arcs.mentee.astype(np.int32),
                arcs.mentor.astype(np.int32),
                arcs.units.astype(np.int32),
            )
        )
    columns = tuple(
        np.concatenate([b[k] for b in blocks]) if blocks else np.zeros(0, dtype=np.int32)
        for k in range(3)
    )
    mentee, mentor, units = columns
    keep = np.full(n, per_person, dtype=np.int64)
    return _Part(
        columns=(mentee, mentor, units),
        mentee_best=best_per_group(mentee, units, keep=keep),
        mentor_best=np.flatnonzero(best_per_group(mentor, units, keep=mentor_keep)),
    )


@cache
def _blas_controller() -> ThreadpoolController:
    """Found once: inspecting the loaded libraries costs milliseconds."""
    return ThreadpoolController()


def _single_threaded_blas() -> AbstractContextManager[object]:
    return _blas_controller().limit(limits=1, user_api="blas")  # type: ignore[no-any-return]


def best_per_group(
    group: IntArray | Int32Array, score: IntArray | Int32Array, *, keep: IntArray
) -> BoolArray:
    """Mask of each group's ``keep[g]`` highest-scoring arcs (ties: earlier arc first).

    Groups with no more arcs than they keep take them all. For the others a histogram
    (best bucket first, at most 1024 buckets) finds the bucket holding the ``keep``-th
    best, without a full sort; only the arcs of that bucket are sorted.
    """
    if group.size > _PREFILTER_RATIO * int(keep.sum()) + 64:
        return _prefiltered_best(group, score, keep=keep)
    return _exact_best(group, score, keep=keep)


def _exact_best(
    group: IntArray | Int32Array, score: IntArray | Int32Array, *, keep: IntArray
) -> BoolArray:
    """:func:`best_per_group` by a fine histogram and a sort of the threshold bucket."""
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


def _prefiltered_best(
    group: IntArray | Int32Array, score: IntArray | Int32Array, *, keep: IntArray
) -> BoolArray:
    """:func:`best_per_group` for many arcs per kept one: a coarse pass first.

    A 64-bucket histogram per group finds the bucket holding the group's ``keep``-th
    best; every arc in a better or that bucket is a candidate (a superset of the answer,
    arc order kept), and the exact selection runs on the candidates only.
    """
    highest, lowest = int(score.max()), int(score.min())
    shift = max(0, (highest - lowest).bit_length() - _COARSE_BITS)
    n_buckets = ((highest - lowest) >> shift) + 1
    rank = (highest - score) >> shift
    counts = np.bincount(group * n_buckets + rank, minlength=keep.size * n_buckets)
    at_or_better = np.cumsum(counts.reshape(keep.size, n_buckets), axis=1)
    threshold = np.argmax(at_or_better >= keep[:, None], axis=1)
    threshold[at_or_better[:, -1] < keep] = n_buckets - 1
    candidates = np.flatnonzero(rank <= threshold[group])
    selected = np.zeros(group.size, dtype=bool)
    exact = _exact_best(group[candidates], score[candidates], keep=keep)
    selected[candidates[exact]] = True
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
