"""The sweep: the same arcs and seed whatever the number of threads, in store order."""

from __future__ import annotations

import numpy as np
import pytest

from services.matching.domain import allocator
from services.matching.domain.arcstore import sweep
from services.matching.domain.candidates import PairEvaluator
from services.matching.domain.cohort import encode_cohort
from services.matching.domain.synthetic import CohortShape, synthetic_cohort
from tests.matching.engine_strategies import AT, rules


@pytest.mark.parametrize("workers", [2, 3])
def test_threads_give_the_store_and_seed_of_a_single_thread(workers: int) -> None:
    program = rules(min_grade_gap=1)
    people = synthetic_cohort(CohortShape(mentors=300, mentees=260, seed=7))
    cohort = encode_cohort(rules=program, participants=people, excluded=set(), at=AT)
    evaluator = PairEvaluator(rules=program, cohort=cohort)
    one = sweep(evaluator, per_person=4, block_pairs=2_000, workers=1)
    many = sweep(evaluator, per_person=4, block_pairs=2_000, workers=workers)
    assert len(one.store) > 1_000
    for column in ("mentee", "mentor", "units"):
        assert np.array_equal(getattr(one.store, column), getattr(many.store, column))
    assert np.array_equal(one.seed, many.seed)
    keys = one.store.mentee.astype(np.int64) * len(cohort.mentors) + one.store.mentor
    assert bool((np.diff(keys) > 0).all())


def test_reusing_freed_memory_nests_and_restores_numpy_huge_pages() -> None:
    switch = allocator._huge_page_switch()
    if switch is None or allocator._glibc() is None:
        pytest.skip("not glibc with numpy's huge-page switch")
    before = switch(True)
    try:
        with allocator.reusing_freed_memory():
            with allocator.reusing_freed_memory():
                assert switch(False) is False
            assert switch(False) is False
        assert switch(True) is True
    finally:
        switch(before)
