"""Agenda progression: easy topics first, harder ones later, covered ones skipped."""

from __future__ import annotations

import pytest

from services.sessions.domain.agenda import (
    AgendaRequest,
    Topic,
    difficulty_cap,
    plan_agenda,
    wanted_topics,
)

CATALOGUE = (
    Topic("social-media", "Posting on social media", 1),
    Topic("messaging", "Team chat etiquette", 1),
    Topic("genai-tools", "Generative AI at work", 2),
    Topic("personal-brand", "Personal brand online", 3),
    Topic("gen-z-culture", "Gen Z workplace culture", 4),
    Topic("digital-strategy", "Digital strategy", 5),
)
DIFFICULTY = {t.key: t.difficulty for t in CATALOGUE}


def plan(
    wanted: list[str], *, done: set[str] | None = None, progress: float = 0.0, size: int = 2
) -> list[str]:
    return plan_agenda(AgendaRequest(CATALOGUE, wanted, done or set(), progress, size))


@pytest.mark.parametrize(
    ("progress", "cap"),
    [(-0.5, 1), (0.0, 1), (0.19, 1), (0.2, 2), (0.5, 3), (0.79, 4), (0.8, 5), (1.0, 5), (3.0, 5)],
)
def test_difficulty_cap_rises_in_five_bands(progress: float, cap: int) -> None:
    assert difficulty_cap(progress) == cap


def test_first_session_takes_the_comfortable_wanted_topics() -> None:
    wanted = ["digital-strategy", "gen-z-culture", "social-media", "genai-tools"]
    assert plan(wanted) == ["social-media"]


def test_late_session_reaches_the_hard_topics() -> None:
    wanted = ["digital-strategy", "gen-z-culture", "social-media"]
    agenda = plan(wanted, done={"social-media"}, progress=0.85)
    assert agenda == ["gen-z-culture", "digital-strategy"]


def test_covered_and_planned_topics_are_skipped() -> None:
    wanted = ["social-media", "messaging", "genai-tools"]
    assert plan(wanted, done={"social-media"}, progress=0.3) == ["messaging", "genai-tools"]


def test_warm_up_from_the_catalogue_when_every_wanted_topic_is_too_hard_yet() -> None:
    # Both difficulty-1 catalogue topics fit; ties go by key.
    assert plan(["digital-strategy", "gen-z-culture"], size=1) == ["messaging"]


def test_easiest_wanted_topic_when_nothing_fits_the_cap() -> None:
    done = {"social-media", "messaging"}
    assert plan(["digital-strategy", "gen-z-culture"], done=done) == ["gen-z-culture"]


def test_review_when_everything_wanted_was_covered() -> None:
    wanted = ["genai-tools", "social-media"]
    assert plan(wanted, done=set(wanted), progress=0.9) == ["genai-tools", "social-media"]


def test_wanted_topics_keep_the_pairs_order_then_the_mentees_priorities() -> None:
    wants = {"genai-tools": 2, "gen-z-culture": 5, "social-media": 5, "messaging": 1}
    ordered = wanted_topics(["social-media", "personal-brand"], wants)
    assert ordered == [
        "social-media",
        "personal-brand",
        "gen-z-culture",
        "genai-tools",
        "messaging",
    ]


def test_topics_outside_the_catalogue_are_ignored() -> None:
    assert plan(["not-in-catalogue", "genai-tools"], progress=0.25) == ["genai-tools"]


def test_over_a_whole_program_difficulty_never_goes_down() -> None:
    wanted = [t.key for t in reversed(CATALOGUE)]
    covered: set[str] = set()
    difficulties: list[int] = []
    for number in range(13):
        agenda = plan(wanted, done=covered, progress=number / 13, size=1)
        covered |= set(agenda)
        difficulties.append(DIFFICULTY[agenda[0]])
    assert difficulties[:6] == sorted(difficulties[:6])
    assert difficulties[0] == 1 and max(difficulties) == 5
    assert len(covered) == len(CATALOGUE)
