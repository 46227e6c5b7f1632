"""k-anonymity of admin figures: small cells, filter differencing and time differencing."""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.feedback.domain.privacy import (
    Atom,
    Cell,
    Dimensions,
    exposes_small_group,
    people_in,
    releasable_cells,
    releasable_pending,
)

K = 5
DIMS = Dimensions(names=("side", "kind"), values=(("mentor", "mentee"), ("session", "milestone")))
SIDE = Dimensions(names=("side",), values=(("mentor", "mentee"),))


def group(prefix: str, n: int) -> frozenset[str]:
    return frozenset(f"{prefix}{i}" for i in range(n))


def test_a_cell_of_fewer_than_k_people_is_suppressed() -> None:
    people = {("mentor",): group("m", 4), ("mentee",): group("e", 6)}
    released = releasable_cells(SIDE, people, K)
    assert ("mentor",) not in released
    assert released == {(None,)}  # "mentees" would give the mentors by subtraction


def test_all_minus_one_side_cannot_reveal_the_other_side() -> None:
    """10 mentees and 3 mentors: 'all' and 'mentees' together would give the 3 mentors."""
    people = {("mentor",): group("m", 3), ("mentee",): group("e", 10)}
    released = releasable_cells(SIDE, people, K)
    assert ("mentor",) not in released
    assert not {(None,), ("mentee",)} <= released
    assert (None,) in released  # the coarsest cell is kept, its complement goes


def test_a_filter_combination_that_singles_out_one_person_is_suppressed() -> None:
    """One mentee gave milestone feedback: no filter, nor any sum or difference, shows it."""
    people = {
        ("mentor", "session"): group("m", 8),
        ("mentee", "session"): group("e", 8),
        ("mentor", "milestone"): group("m", 8),
        ("mentee", "milestone"): frozenset({"e0"}),
    }
    released = releasable_cells(DIMS, people, K)
    assert ("mentee", "milestone") not in released
    # the four-term inclusion-exclusion attack must be closed too
    attack = [(None, "milestone"), ("mentor", None), ("mentor", "session")]
    assert not set(attack) <= released or (None, None) not in released
    assert_no_differencing_attack(DIMS, people, released)


def test_distinct_people_count_not_answers() -> None:
    """Two people answering many times are still two people."""
    people = {("mentor",): frozenset({"m1"}), ("mentee",): frozenset({"e1"})}
    assert releasable_cells(SIDE, people, K) == frozenset()
    assert people_in(SIDE, people, (None,)) == {"m1", "e1"}


def test_empty_cells_are_released_as_empty() -> None:
    people = {("mentor",): group("m", 6)}
    released = releasable_cells(SIDE, people, K)
    assert ("mentee",) in released and ("mentor",) in released and (None,) in released


def test_exposes_small_group_sees_differences_of_cells() -> None:
    atom_people = [group("a", 6), frozenset({"b0"})]
    assert exposes_small_group([frozenset({0, 1}), frozenset({0})], atom_people, K)
    assert not exposes_small_group([frozenset({0, 1})], atom_people, K)


def test_pending_answers_of_one_person_are_not_released() -> None:
    released = {("mentor",): group("m", 6), ("mentee",): group("e", 6)}
    pending = {("mentee",): frozenset({"e1"})}
    assert releasable_pending(SIDE, released=released, pending=pending, k=K) == frozenset()


def test_pending_answers_of_k_people_are_released() -> None:
    released = {("mentor",): group("m", 6), ("mentee",): group("e", 6)}
    pending = {("mentee",): group("e", 5), ("mentor",): group("m", 5)}
    chosen = releasable_pending(SIDE, released=released, pending=pending, k=K)
    assert chosen == {("mentee",), ("mentor",)}


def test_only_the_atoms_with_k_pending_people_move() -> None:
    released = {("mentor",): group("m", 6), ("mentee",): group("e", 6)}
    pending = {("mentee",): group("e", 6), ("mentor",): frozenset({"m1", "m2"})}
    chosen = releasable_pending(SIDE, released=released, pending=pending, k=K)
    assert chosen == {("mentee",)}


def test_the_first_answers_wait_for_k_people() -> None:
    pending = {("mentee",): group("e", 4)}
    assert releasable_pending(SIDE, released={}, pending=pending, k=K) == frozenset()
    pending = {("mentee",): group("e", 5)}
    assert releasable_pending(SIDE, released={}, pending=pending, k=K) == {("mentee",)}


def test_an_atom_never_joins_the_figures_small() -> None:
    """Four milestone answers would hide inside 'all'; they wait for a fifth instead."""
    released = {("mentee", "session"): group("e", 5)}
    pending = {("mentee", "session"): frozenset({"e5"}), ("mentee", "milestone"): group("e", 4)}
    assert releasable_pending(DIMS, released=released, pending=pending, k=K) == frozenset()
    pending[("mentee", "milestone")] = group("e", 5)
    chosen = releasable_pending(DIMS, released=released, pending=pending, k=K)
    assert chosen == {("mentee", "milestone")}


def test_one_more_answer_to_a_visible_cell_waits() -> None:
    released = {("mentee",): group("e", 5)}
    pending = {("mentee",): frozenset({"e0"})}
    assert releasable_pending(SIDE, released=released, pending=pending, k=K) == frozenset()


# An attack simulator independent of the rational span: add and subtract up to four
# released cells and look for a result that is exactly a group of 1..k-1 people.


def assert_no_differencing_attack(
    dims: Dimensions, people: Mapping[Atom, frozenset[str]], released: frozenset[Cell]
) -> None:
    atoms = dims.atoms()
    occupied = [i for i, a in enumerate(atoms) if people.get(a)]
    vectors = [[int(dims.covers(c, a)) for a in atoms] for c in sorted(released, key=repr)]
    for size in range(1, min(4, len(vectors)) + 1):
        for chosen in itertools.combinations(vectors, size):
            for signs in itertools.product((1, -1), repeat=size):
                total = [sum(s * v[i] for s, v in zip(signs, chosen, strict=True))
                         for i in range(len(atoms))]  # fmt: skip
                picked = [i for i in occupied if total[i] == 1]
                if all(total[i] in (0, 1) for i in occupied) and picked:
                    found = frozenset().union(*(people[atoms[i]] for i in picked))
                    assert len(found) >= K, f"{signs} x {chosen} isolates {sorted(found)}"


def test_the_simulator_catches_suppression_of_small_cells_alone() -> None:
    """Hiding only the cells below k leaves the one-person cell open to subtraction."""
    people = {
        ("mentor", "session"): group("m", 8),
        ("mentee", "session"): group("e", 8),
        ("mentor", "milestone"): group("m", 8),
        ("mentee", "milestone"): frozenset({"e0"}),
    }
    naive = frozenset(c for c in DIMS.cells() if len(people_in(DIMS, people, c)) >= K)
    with pytest.raises(AssertionError, match="isolates"):
        assert_no_differencing_attack(DIMS, people, naive)


PERSON = st.sampled_from([f"p{i}" for i in range(14)])
ATOM_PEOPLE = st.frozensets(PERSON, max_size=9)


@settings(max_examples=60, deadline=None)
@given(st.tuples(ATOM_PEOPLE, ATOM_PEOPLE, ATOM_PEOPLE, ATOM_PEOPLE))
def test_released_cells_never_isolate_a_small_group(
    groups: tuple[frozenset[str], ...],
) -> None:
    people = dict(zip(DIMS.atoms(), groups, strict=True))
    released = releasable_cells(DIMS, people, K)
    for cell in released:
        assert len(people_in(DIMS, people, cell)) == 0 or len(people_in(DIMS, people, cell)) >= K
    assert_no_differencing_attack(DIMS, people, released)


ANSWERS = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 11)), max_size=60)


@settings(max_examples=40, deadline=None)
@given(ANSWERS)
def test_no_combination_of_any_number_of_releases_isolates_a_small_group(
    answers: list[tuple[int, int]],
) -> None:
    """Answers arrive one by one; every snapshot an admin could have seen is kept.

    Each batch (what one atom gained in one release) is one unknown; every cell of every
    snapshot is a sum of batches. No combination of them may single out fewer than k.
    """
    atoms = DIMS.atoms()
    pending: dict[Atom, frozenset[str]] = {}
    released: dict[Atom, frozenset[str]] = {}
    batches: list[tuple[Atom, frozenset[str]]] = []
    snapshots: list[frozenset[int]] = []
    for atom_index, person in answers:
        atom = atoms[atom_index]
        pending[atom] = pending.get(atom, frozenset()) | {f"p{person}"}
        moving = releasable_pending(DIMS, released=released, pending=pending, k=K)
        for a in sorted(moving):
            batches.append((a, pending.pop(a)))
            released[a] = released.get(a, frozenset()) | batches[-1][1]
        if moving:
            for cell in releasable_cells(DIMS, released, K):
                snapshots.append(
                    frozenset(i for i, (a, _) in enumerate(batches) if DIMS.covers(cell, a))
                )
    assert all(len(people) >= K for _, people in batches)
    assert not exposes_small_group(snapshots, [people for _, people in batches], K)
