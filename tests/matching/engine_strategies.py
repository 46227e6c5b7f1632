"""Hypothesis strategies and a brute-force reference for the matching engine's tests."""

from __future__ import annotations

from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from datetime import UTC, datetime
from itertools import product

from hypothesis import strategies as st

from schemas.primitives import Role
from services.matching.domain.engine import check_pair, pair_units
from services.matching.domain.model import Candidate, ProgramRules

AT = datetime(2025, 3, 20, 12, 0, tzinfo=UTC)
"""Between the US (9 March) and EU (30 March) DST changes: New York is 4 h from London."""
TIMEZONES = (
    "Europe/London",
    "America/New_York",
    "Asia/Kolkata",
    "Pacific/Kiritimati",
    "Pacific/Pago_Pago",
)
TOPICS = ("social-media", "genai-tools", "gen-z-culture", "digital-strategy")
LANGUAGES = ("en", "fr", "hi")


def person(pid: str, role: Role = Role.MENTOR, **fields: object) -> Candidate:
    """A candidate with sensible defaults: matchable as mentor and/or mentee."""
    values: dict[str, object] = {
        "participant_id": pid,
        "role": role,
        "grade": 2 if role == Role.MENTOR else 6,
        "department": "Marketing" if role == Role.MENTOR else "Finance",
        "timezone": "Europe/London",
        "languages": frozenset({"en"}),
        "manager_chain": (),
        "offers": {"social-media": 5} if role != Role.MENTEE else {},
        "wants": {"social-media": 3} if role != Role.MENTOR else {},
        "background": {},
        "prefer": frozenset(),
        "avoid": frozenset(),
        "screened": True,
        "trained": True,
    }
    values.update(fields)
    return Candidate(**values)  # type: ignore[arg-type]


def rules(**fields: object) -> ProgramRules:
    """Reverse program, grade gap 2, 6 h, screening and training required."""
    values: dict[str, object] = {
        "program_id": "prg-test",
        "program_type": "reverse",
        "min_grade_gap": 2,
        "max_timezone_gap_hours": 6,
        "requires_screening": True,
        "requires_training": True,
        "objective": "max_matched_then_score",
    }
    values.update(fields)
    return ProgramRules(**values)  # type: ignore[arg-type]


@st.composite
def program_rules(draw: st.DrawFn) -> ProgramRules:
    """Any program type, gap, objective and weights (some weights zero)."""
    weight = st.sampled_from([0.0, 0.15, 0.3, 0.4, 1.0, 2.5])
    return rules(
        program_type=draw(st.sampled_from(["reverse", "traditional", "mutual"])),
        min_grade_gap=draw(st.integers(0, 3)),
        max_timezone_gap_hours=draw(st.sampled_from([0, 1, 4, 6, 12, 24])),
        requires_screening=draw(st.booleans()),
        requires_training=draw(st.booleans()),
        objective=draw(st.sampled_from(["max_matched_then_score", "max_score"])),
        weights={
            "skill_coverage": draw(weight),
            "diversity": draw(weight),
            "timezone_closeness": draw(weight),
            "preference": draw(weight),
        },
    )


@st.composite
def cohorts(draw: st.DrawFn, *, max_side: int = 5) -> list[Candidate]:
    """Up to ``max_side`` mentors and mentees (some 'both'), with every rule exercised."""
    n_mentors = draw(st.integers(1, max_side))
    n_mentees = draw(st.integers(1, max_side))
    roles = [Role.MENTOR] * n_mentors + [Role.MENTEE] * n_mentees
    roles = [draw(st.sampled_from([r, r, Role.BOTH])) for r in roles]
    ids = [f"p{k}" for k in range(len(roles))]
    return [draw(_candidate(pid, role, ids)) for pid, role in zip(ids, roles, strict=True)]


@st.composite
def _candidate(draw: st.DrawFn, pid: str, role: Role, ids: list[str]) -> Candidate:
    others = st.sampled_from([i for i in ids if i != pid] or [pid])
    levels = st.dictionaries(st.sampled_from(TOPICS), st.integers(1, 5), max_size=3)
    return Candidate(
        participant_id=pid,
        role=role,
        grade=draw(st.integers(0, 6)),
        department=draw(st.sampled_from(["Sales", "IT", "HR"])),
        timezone=draw(st.sampled_from(TIMEZONES)),
        languages=frozenset(draw(st.sets(st.sampled_from(LANGUAGES), min_size=1, max_size=2))),
        manager_chain=tuple(draw(st.lists(others, max_size=2, unique=True))),
        offers=draw(levels) if role != Role.MENTEE else {},
        wants=draw(levels) if role != Role.MENTOR else {},
        background=draw(
            st.dictionaries(
                st.sampled_from(["generation", "community"]), st.sampled_from(["a", "b"])
            )
        ),
        prefer=frozenset(draw(st.lists(others, max_size=1))),
        avoid=frozenset(draw(st.lists(others, max_size=1))),
        mentor_slots=draw(st.integers(0, 2)),
        needs_mentor=draw(st.booleans()) if draw(st.integers(0, 4)) == 0 else True,
        screened=draw(st.booleans()) if draw(st.integers(0, 2)) == 0 else True,
        trained=draw(st.booleans()) if draw(st.integers(0, 2)) == 0 else True,
        active=draw(st.integers(0, 9)) > 0,
    )


@st.composite
def exclusions(draw: st.DrawFn, people: Sequence[Candidate]) -> set[tuple[str, str]]:
    """A few (mentor_id, mentee_id) pairs declined or ended before."""
    ids = [p.participant_id for p in people]
    pairs = st.tuples(st.sampled_from(ids), st.sampled_from(ids))
    return set(draw(st.lists(pairs, max_size=3)))


def allowed_units(
    rules: ProgramRules,
    people: Sequence[Candidate],
    excluded: AbstractSet[tuple[str, str]],
) -> dict[tuple[str, str], int]:
    """Every allowed (mentor_id, mentee_id) pair with its score units, by the scalar rules."""
    return {
        (mentor.participant_id, mentee.participant_id): pair_units(
            rules=rules, mentor=mentor, mentee=mentee, at=AT
        )
        for mentor, mentee in product(people, people)
        if not check_pair(rules=rules, mentor=mentor, mentee=mentee, excluded=excluded, at=AT)
    }


def brute_force_best(
    allowed: dict[tuple[str, str], int], slots: dict[str, int], *, most_pairs_first: bool
) -> tuple[int, int]:
    """(pairs, units) of the best plan, trying every assignment of mentees to mentors."""
    mentees = sorted({mentee for _, mentee in allowed})
    options = {j: [m for (m, e) in allowed if e == j] for j in mentees}
    best = (0, 0)

    def visit(k: int, used: dict[str, int], pairs: int, units: int) -> None:
        nonlocal best
        if k == len(mentees):
            key = (pairs, units) if most_pairs_first else (0, units)
            if key > ((best[0], best[1]) if most_pairs_first else (0, best[1])):
                best = (pairs, units)
            return
        mentee = mentees[k]
        visit(k + 1, used, pairs, units)
        for mentor in options[mentee]:
            if used.get(mentor, 0) < slots[mentor]:
                used[mentor] = used.get(mentor, 0) + 1
                visit(k + 1, used, pairs + 1, units + allowed[(mentor, mentee)])
                used[mentor] -= 1

    visit(0, {}, 0, 0)
    return best
