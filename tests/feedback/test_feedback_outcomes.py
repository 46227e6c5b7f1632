"""Program outcomes: aggregation of released totals, suppression, retention, CSV."""

from __future__ import annotations

import csv
import io
import itertools

import pytest

from schemas.pairs import PairEndReason
from services.feedback.domain.outcomes import (
    AtomTotals,
    Participation,
    RatingTotals,
    RequestTotals,
    SkillLevels,
    csv_export,
    feedback_table,
    live_count,
    participation,
    retention_table,
    session_figures,
    skill_table,
    topics_to_release,
)
from services.feedback.domain.submissions import Answer

K = 5


def people(prefix: str, n: int) -> frozenset[str]:
    return frozenset(f"{prefix}{i}" for i in range(n))


def totals(*answers: Answer) -> RatingTotals:
    return sum((RatingTotals.of(a) for a in answers), RatingTotals())


MENTEE_SESSION = AtomTotals(
    people=people("e", 5),
    asked=people("e", 8),
    ratings=totals(
        Answer(5, 4, 5, 3, nps=10),
        Answer(4, 4, 4, 4, nps=9),
        Answer(3, 2, 4, 2, nps=6),
        Answer(4, 3, 5, 3, nps=8),
        Answer(4, 4, 4, 4),
    ),
    requests=RequestTotals(requests=8, answered=5, late=1, missing=2),
)
MENTOR_SESSION = AtomTotals(
    people=people("m", 2),
    asked=people("m", 8),
    ratings=totals(Answer(1, 1, 1, 1, nps=0), Answer(2, 2, 2, 2, nps=3)),
    requests=RequestTotals(requests=8, answered=2, late=0, missing=6),
)


def test_answer_totals_add_up() -> None:
    t = MENTEE_SESSION.ratings
    assert (t.responses, t.satisfaction, t.nps_answers, t.promoters, t.detractors) == (
        5,
        20,
        4,
        2,
        1,
    )


def test_a_released_cell_shows_means_nps_and_response_rate() -> None:
    atoms = {("mentee", "session"): MENTEE_SESSION}
    [cell] = feedback_table(atoms, k=K, cell=("mentee", "session"))
    assert cell.answers is not None and cell.requests is not None
    a, q = cell.answers, cell.requests
    assert (a.people, a.responses) == (5, 5)
    assert a.satisfaction == 4.0 and a.usefulness == 3.4 and a.comfort == 4.4
    assert a.progress == 3.2
    assert a.nps == 25.0  # (2 promoters - 1 detractor) / 4 answers
    assert (q.people_asked, q.requests, q.answered, q.late, q.missing) == (8, 8, 5, 1, 2)
    assert q.response_rate == 0.625


def test_cells_below_k_and_their_complements_are_suppressed() -> None:
    atoms = {("mentee", "session"): MENTEE_SESSION, ("mentor", "session"): MENTOR_SESSION}
    table = {(c.side, c.kind): c for c in feedback_table(atoms, k=K)}
    assert table[("mentor", "session")].suppressed
    assert table[("mentor", None)].suppressed
    # "all" has 7 people, "mentee" 5: showing both would give the 2 mentors' ratings
    assert table[(None, None)].suppressed or table[("mentee", None)].suppressed
    assert len(table) == 9
    # request counts have their own k: 8 mentors were asked, so they show
    mentor_requests = table[("mentor", "session")].requests
    assert mentor_requests is not None and mentor_requests.answered == 2


def test_request_counts_of_fewer_than_k_people_asked_are_hidden() -> None:
    few = AtomTotals(asked=people("m", 3), requests=RequestTotals(3, 1, 0, 2))
    [cell] = feedback_table({("mentor", "milestone"): few}, k=K, cell=("mentor", "milestone"))
    assert cell.requests is None
    assert cell.answers is not None and cell.answers.people == 0  # nobody's answers: empty


def test_request_counts_of_a_small_side_cannot_be_had_by_subtraction() -> None:
    """8 mentees and 3 mentors asked: 'all' minus 'mentees' would give the 3 mentors."""
    few = AtomTotals(asked=people("m", 3), requests=RequestTotals(3, 1, 0, 2))
    atoms = {("mentee", "session"): MENTEE_SESSION, ("mentor", "session"): few}
    shown = {(c.side, c.kind): c.requests for c in feedback_table(atoms, k=K) if c.requests}
    assert ("mentor", "session") not in shown and ("mentor", None) not in shown
    assert shown  # the coarse cells stay
    for a, b in itertools.permutations(shown.values(), 2):
        difference = (a.requests - b.requests, a.answered - b.answered, a.missing - b.missing)
        assert difference != (3, 1, 2), f"{a} - {b} gives the mentors' counts"


def test_live_counts_need_k_people_not_k_events() -> None:
    """Six requests to the two people of one pair are two people's figures."""
    assert live_count(6, people=2, k=K) is None
    assert live_count(4, people=5, k=K) is None
    assert live_count(6, people=5, k=K) == 6


def test_skill_growth_by_topic_is_shown_from_k_mentees() -> None:
    levels = {
        "social-media": [SkillLevels(1, 3)] * 4 + [SkillLevels(2, 5)],
        "genai-tools": [SkillLevels(1, 4)] * 4,
    }
    rows = {row.topic: row for row in skill_table(levels, k=K)}
    social = rows["social-media"]
    assert (social.mentees, social.before, social.after, social.growth) == (5, 1.2, 3.4, 2.2)
    assert rows["genai-tools"].suppressed and rows["genai-tools"].growth is None


def test_topics_are_released_from_k_pending_mentees() -> None:
    assert topics_to_release({"a": 5, "b": 4, "c": 7}, k=K) == ["a", "c"]


@pytest.mark.parametrize(
    ("reasons", "expected"),
    [
        ([PairEndReason.COMPLETED], Participation.STAYED),
        ([PairEndReason.AT_RISK_REMATCH, PairEndReason.PROGRAM_CLOSED], Participation.STAYED),
        ([PairEndReason.AT_RISK_REMATCH, None], Participation.ACTIVE),
        ([PairEndReason.NO_FAULT_EXIT], Participation.LEFT_EARLY),
    ],
)
def test_participation(reasons: list[PairEndReason | None], expected: Participation) -> None:
    assert participation(reasons) is expected


def test_retention_per_side() -> None:
    status = {("mentee", f"e{i}"): Participation.STAYED for i in range(6)}
    status |= {("mentee", "e6"): Participation.LEFT_EARLY, ("mentee", "e7"): Participation.ACTIVE}
    status |= {("mentor", f"m{i}"): Participation.STAYED for i in range(4)}
    status |= {("mentor", "m4"): Participation.LEFT_EARLY, ("mentor", "e0"): Participation.STAYED}
    cells = {c.side: c.figures for c in retention_table(status, k=K)}
    mentee, mentor, both = cells["mentee"], cells["mentor"], cells[None]
    assert mentee is not None and mentor is not None and both is not None
    assert (mentee.people, mentee.stayed, mentee.active, mentee.left_early) == (8, 6, 1, 1)
    assert mentee.retention_rate == 0.875
    assert (mentor.people, mentor.left_early) == (6, 1)
    assert (both.people, both.stayed) == (13, 10)  # e0 is on both sides: counted once


def test_retention_hides_a_small_side_and_its_complement() -> None:
    status = {("mentee", f"e{i}"): Participation.STAYED for i in range(8)}
    status |= {("mentor", f"m{i}"): Participation.LEFT_EARLY for i in range(3)}
    cells = {c.side: c.figures for c in retention_table(status, k=K)}
    assert cells["mentor"] is None
    assert cells[None] is not None and cells["mentee"] is None


def test_sessions_per_pair_needs_k_people() -> None:
    shown = session_figures({"p1": 3, "p2": 5, "p3": 4}, people("x", 6), k=K)
    assert (shown.pairs, shown.sessions_held, shown.sessions_per_pair) == (3, 12, 4.0)
    hidden = session_figures({"p1": 3, "p2": 5}, people("x", 4), k=K)
    assert hidden.sessions_per_pair is None


def test_csv_has_one_figure_per_row_and_no_number_for_suppressed_cells() -> None:
    atoms = {("mentee", "session"): MENTEE_SESSION, ("mentor", "session"): MENTOR_SESSION}
    text = csv_export(
        feedback_table(atoms, k=K),
        skill_table({"social-media": [SkillLevels(1, 3)] * 5}, k=K),
        retention_table({("mentee", f"e{i}"): Participation.STAYED for i in range(5)}, k=K),
        session_figures({"p1": 3}, people("x", 2), k=K),
    )
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == ["section", "side", "kind", "topic", "metric", "value"]
    mentor = [r for r in rows if r["section"] == "feedback" and r["side"] == "mentor"]
    assert mentor and all(r["metric"] == "suppressed" for r in mentor if r["kind"] != "milestone")
    empty = [r for r in mentor if r["kind"] == "milestone" and r["metric"] == "people"]
    assert [r["value"] for r in empty] == ["0"]  # nobody there: shown as empty
    rates = [
        r["value"]
        for r in rows
        if r["section"] == "requests" and r["metric"] == "response_rate" and r["side"] == "mentee"
    ]
    assert rates[0] == "0.625"
    hidden = [r for r in rows if r["section"] == "requests" and r["kind"] == "milestone"]
    assert hidden and all(r["metric"] == "suppressed" for r in hidden)
    growth = [r for r in rows if r["section"] == "skills" and r["metric"] == "growth"]
    assert growth == [
        {"section": "skills", "side": "mentee", "kind": "all", "topic": "social-media",
         "metric": "growth", "value": "2.0"}
    ]  # fmt: skip
    sessions = [r for r in rows if r["section"] == "sessions"]
    assert [r["metric"] for r in sessions] == ["suppressed"]
