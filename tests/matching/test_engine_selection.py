"""Candidate selection: each group's best arcs, exactly, ties broken by arc order."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from services.matching.domain.arcstore import best_per_group


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 8).flatmap(
        lambda groups: st.tuples(
            st.just(groups),
            st.lists(
                st.tuples(st.integers(0, groups - 1), st.sampled_from([0, 1, 7, 2**19, 2**20 - 1])),
                max_size=60,
            ),
            st.lists(st.integers(0, 5), min_size=groups, max_size=groups),
        )
    )
)
def test_each_group_keeps_its_best_arcs_and_earlier_arcs_win_ties(
    case: tuple[int, list[tuple[int, int]], list[int]],
) -> None:
    groups, arcs, keep = case
    group = np.array([g for g, _ in arcs], dtype=np.int64)
    score = np.array([s for _, s in arcs], dtype=np.int64)
    chosen = best_per_group(group, score, keep=np.array(keep, dtype=np.int64))
    expected = np.zeros(len(arcs), dtype=bool)
    for g in range(groups):
        ranked = sorted(
            (k for k in range(len(arcs)) if arcs[k][0] == g), key=lambda k: (-arcs[k][1], k)
        )
        expected[ranked[: keep[g]]] = True
    assert chosen.tolist() == expected.tolist()


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 2), st.integers(0, 2**20 - 1) | st.sampled_from([0, 5, 2**19])),
        min_size=120,
        max_size=400,
    ),
    st.lists(st.integers(0, 4), min_size=3, max_size=3),
)
def test_many_arcs_per_kept_one_take_the_coarse_pass_and_keep_the_same_answer(
    arcs: list[tuple[int, int]], keep: list[int]
) -> None:
    group = np.array([g for g, _ in arcs], dtype=np.int32)
    score = np.array([s for _, s in arcs], dtype=np.int32)
    chosen = best_per_group(group, score, keep=np.array(keep, dtype=np.int64))
    expected = np.zeros(len(arcs), dtype=bool)
    for g in range(3):
        ranked = sorted(
            (k for k in range(len(arcs)) if arcs[k][0] == g), key=lambda k: (-arcs[k][1], k)
        )
        expected[ranked[: keep[g]]] = True
    assert chosen.tolist() == expected.tolist()
