"""k-anonymity of admin aggregates, including through filters and through time.

Admin figures are *cells* of a small table: each filter dimension (e.g. side, kind) is
either fixed to one value or left open ("all"). The finest cells, every dimension fixed,
are the *atoms*; every answer falls in exactly one atom, and every cell is a union of
atoms, so a cell's additive figures (counts, sums of ratings) are sums over its atoms.

Hiding each cell of fewer than k people is not enough: an admin who sees "all" and
"mentors" can subtract one from the other, and with two dimensions a four-term
inclusion-exclusion isolates one atom. So a set of released cells is accepted only if
**no group of atoms holding between 1 and k-1 people is a linear combination of released
cells** (checked exactly: the group's indicator vector against the span of the released
cells' vectors, in rational arithmetic). The check assumes the admin knows which atoms
are empty (an empty atom adds nothing to any figure, so knowing it costs nothing to
assume, and it is often easy to guess). Cells holding nobody are released as empty.
:func:`releasable_cells` picks the released cells greedily, coarsest first, and
suppresses a cell whose release would expose a small group.

Time is a way to subtract too: figures seen before and after one person's answer
differ by that answer. So new answers are held *pending*, and an atom's pending answers
join the figures only together with those of k people or more (:func:`releasable_pending`;
the two snapshots must also pass the same check, over atoms of "before" and "what is
added"). Every *batch* an atom gains then holds k people or more, the first one included,
so released atoms are never small, every cell moves by k people's answers or not at all,
and no combination of any number of snapshots isolates fewer than k people.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

Atom = tuple[str, ...]
"""One value per dimension: the finest cell."""

Cell = tuple[str | None, ...]
"""One value or None ("all") per dimension."""

PeopleByAtom = Mapping[Atom, frozenset[str]]

MAX_ATOMS = 6
"""The exact check enumerates every group of atoms of two snapshots (2^(2 x atoms))."""

_NOBODY: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Dimensions:
    """The filter dimensions admins may use, and their values."""

    names: tuple[str, ...]
    values: tuple[tuple[str, ...], ...]

    def atoms(self) -> list[Atom]:
        """Every combination of one value per dimension."""
        return list(itertools.product(*self.values))

    def cells(self) -> list[Cell]:
        """Every cell: each dimension fixed or open."""
        options = [(None, *values) for values in self.values]
        return list(itertools.product(*options))

    def covers(self, cell: Cell, atom: Atom) -> bool:
        """True when ``atom`` is inside ``cell``."""
        return all(c is None or c == a for c, a in zip(cell, atom, strict=True))

    def cell_of(self, filters: Mapping[str, str | None]) -> Cell:
        """The cell selected by filter values (absent or None: all)."""
        return tuple(filters.get(name) for name in self.names)


def people_in(dims: Dimensions, people: PeopleByAtom, cell: Cell) -> frozenset[str]:
    """The distinct people of ``cell``."""
    found: set[str] = set()
    for atom in dims.atoms():
        if dims.covers(cell, atom):
            found |= people.get(atom, _NOBODY)
    return frozenset(found)


def releasable_cells(dims: Dimensions, people: PeopleByAtom, k: int) -> frozenset[Cell]:
    """The cells an admin may see: empty ones, and those that expose no group below k."""
    atoms = dims.atoms()
    _check_size(atoms)
    atom_people = [people.get(a, _NOBODY) for a in atoms]
    sizes = {cell: len(people_in(dims, people, cell)) for cell in dims.cells()}
    released: list[Cell] = []
    for cell in _candidates(sizes):
        size = sizes[cell]
        if 0 < size < k:
            continue
        vectors = [_vector(dims, atoms, c) for c in [*released, cell]]
        if size == 0 or not exposes_small_group(vectors, atom_people, k):
            released.append(cell)
    return frozenset(released)


def _candidates(sizes: Mapping[Cell, int]) -> list[Cell]:
    """Empty cells first (always shown), then coarsest first, then the largest first."""

    def order(cell: Cell) -> tuple[bool, int, int, str]:
        return (sizes[cell] > 0, -cell.count(None), -sizes[cell], repr(cell))

    return sorted(sizes, key=order)


def releasable_pending(
    dims: Dimensions, *, released: PeopleByAtom, pending: PeopleByAtom, k: int
) -> frozenset[Atom]:
    """The atoms whose pending answers may join the released figures now (maybe none).

    Only atoms with k pending people or more move, so every *batch* (what one atom gains
    in one release, the first one included) holds k people or more. The released figures
    are sums of batches, and any group of batches holds k people or more, so no
    combination of any number of snapshots, cells and filters can isolate fewer than k
    people. The exact check of the snapshots before and after is kept on top (it matters
    only when ``k`` was raised after figures were released): when it fails, none move.
    """
    atoms = dims.atoms()
    _check_size(atoms)
    moving = frozenset(a for a in atoms if len(pending.get(a, _NOBODY)) >= k)
    if moving and _two_snapshots_safe(dims, released, pending, moving, k):
        return moving
    return frozenset()


def _two_snapshots_safe(
    dims: Dimensions,
    released: PeopleByAtom,
    pending: PeopleByAtom,
    chosen: frozenset[Atom],
    k: int,
) -> bool:
    atoms = dims.atoms()
    added = {a: pending.get(a, _NOBODY) if a in chosen else _NOBODY for a in atoms}
    after = {a: released.get(a, _NOBODY) | added[a] for a in atoms}
    before_cells = releasable_cells(dims, released, k)
    after_cells = releasable_cells(dims, after, k)
    width = len(atoms)
    vectors = [_vector(dims, atoms, c) for c in before_cells]
    vectors += [_vector(dims, atoms, c) | {i + width for i in _vector(dims, atoms, c)}
                for c in after_cells]  # fmt: skip
    atom_people = [released.get(a, _NOBODY) for a in atoms] + [added[a] for a in atoms]
    return not exposes_small_group(vectors, atom_people, k)


def exposes_small_group(
    vectors: Iterable[frozenset[int]], atom_people: Sequence[frozenset[str]], k: int
) -> bool:
    """True when some group of atoms with 1..k-1 people is a combination of ``vectors``.

    ``vectors`` are the released cells, each as the set of atom indexes it sums.
    """
    span = _Span(len(atom_people))
    for vector in vectors:
        span.add(vector)
    occupied = [i for i, people in enumerate(atom_people) if people]
    for i in set(range(len(atom_people))) - set(occupied):
        span.add(frozenset({i}))  # empty atoms are assumed known
    for size in range(1, len(occupied) + 1):
        for group in itertools.combinations(occupied, size):
            if _fewer_than(k, [atom_people[i] for i in group]) and span.contains(frozenset(group)):
                return True
    return False


def _fewer_than(k: int, groups: Sequence[frozenset[str]]) -> bool:
    """True when the union of ``groups`` holds fewer than k people (cheap for big groups)."""
    if any(len(g) >= k for g in groups):
        return False
    return len(frozenset().union(*groups)) < k


def _vector(dims: Dimensions, atoms: Sequence[Atom], cell: Cell) -> frozenset[int]:
    return frozenset(i for i, atom in enumerate(atoms) if dims.covers(cell, atom))


def _check_size(atoms: Sequence[Atom]) -> None:
    if len(atoms) > MAX_ATOMS:
        raise ValueError(f"{len(atoms)} atoms: the exact check supports at most {MAX_ATOMS}")


class _Span:
    """The linear span of 0/1 vectors over the rationals, for membership tests."""

    def __init__(self, width: int) -> None:
        self._width = width
        self._rows: list[tuple[int, list[Fraction]]] = []

    def add(self, indexes: frozenset[int]) -> None:
        """Add the indicator vector of ``indexes`` to the span."""
        row = self._reduce(self._indicator(indexes))
        pivot = next((i for i, x in enumerate(row) if x != 0), None)
        if pivot is not None:
            self._rows.append((pivot, [x / row[pivot] for x in row]))

    def contains(self, indexes: frozenset[int]) -> bool:
        """True when the indicator vector of ``indexes`` is in the span."""
        return not any(self._reduce(self._indicator(indexes)))

    def _indicator(self, indexes: frozenset[int]) -> list[Fraction]:
        return [Fraction(1 if i in indexes else 0) for i in range(self._width)]

    def _reduce(self, vector: list[Fraction]) -> list[Fraction]:
        for pivot, row in self._rows:
            factor = vector[pivot]
            if factor:
                vector = [x - factor * r for x, r in zip(vector, row, strict=True)]
        return vector
