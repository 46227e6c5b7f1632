"""Session agendas: start easy, move to the harder topics over the program.

Every catalogue topic has a difficulty from 1 (comfortable: posting on social media) to
5 (hard: strategy, culture, challenging a leader's idea). A session's *difficulty cap*
rises with its place in the pair's program: the program span is cut into five equal
bands, and a session in band ``b`` (0-4) may take topics up to difficulty ``b + 1``.

The agenda of a session is chosen from the topics the pair has not covered yet and
that no other upcoming session already plans:

1. the pair's wanted topics (the PairFormed topics, then the mentee's other wants by
   priority) within the cap, easiest first;
2. if none is within the cap, other catalogue topics within the cap, as a warm-up;
3. if none either, the easiest wanted topics left (the pair is ahead of the plan);
4. once every wanted topic is covered, a review of the wanted topics, most wanted first.
"""

from __future__ import annotations

from collections.abc import Sequence, Set
from dataclasses import dataclass

MAX_DIFFICULTY = 5


@dataclass(frozen=True)
class Topic:
    """A catalogue topic: its key, title and difficulty (1-5)."""

    key: str
    title: str
    difficulty: int


@dataclass(frozen=True)
class AgendaRequest:
    """What the planner needs to know about one upcoming session."""

    catalogue: Sequence[Topic]
    wanted: Sequence[str]
    done: Set[str]
    progress: float
    size: int


def difficulty_cap(progress: float) -> int:
    """The hardest difficulty allowed at ``progress`` (0 = program start, 1 = its end)."""
    band = int(min(max(progress, 0.0), 1.0) * MAX_DIFFICULTY)
    return min(band + 1, MAX_DIFFICULTY)


def wanted_topics(pair_topics: Sequence[str], wants: dict[str, int]) -> list[str]:
    """The pair's topics in their order, then the mentee's other wants by priority."""
    others = sorted((k for k in wants if k not in pair_topics), key=lambda k: (-wants[k], k))
    return [*dict.fromkeys(pair_topics), *others]


def plan_agenda(request: AgendaRequest) -> list[str]:
    """The topic keys of the next session's agenda, easiest first."""
    rank = {key: index for index, key in enumerate(request.wanted)}
    catalogue = {t.key: t for t in request.catalogue}
    wanted = [catalogue[k] for k in request.wanted if k in catalogue]
    open_wanted = [t for t in wanted if t.key not in request.done]
    if not open_wanted:
        return [t.key for t in (wanted or list(request.catalogue))[: request.size]]
    cap = difficulty_cap(request.progress)
    chosen = (
        _within(open_wanted, cap)
        or _within([t for t in request.catalogue if t.key not in request.done], cap)
        or _easiest(open_wanted)
    )
    ordered = sorted(chosen, key=lambda t: (t.difficulty, rank.get(t.key, len(rank)), t.key))
    return [t.key for t in ordered[: request.size]]


def _within(topics: list[Topic], cap: int) -> list[Topic]:
    return [t for t in topics if t.difficulty <= cap]


def _easiest(topics: list[Topic]) -> list[Topic]:
    lowest = min(t.difficulty for t in topics)
    return [t for t in topics if t.difficulty == lowest]
