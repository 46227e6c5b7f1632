"""Program outcomes: satisfaction, NPS, response rate, skills, retention, sessions per pair.

Every figure is computed from additive totals per atom (see :mod:`privacy`) and shown
only for the cells :func:`privacy.releasable_cells` releases; a suppressed cell shows no
number at all, not even its head count.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from enum import StrEnum
from typing import Any, TypeVar

from schemas.feedback import FeedbackKind
from schemas.pairs import PairEndReason
from schemas.primitives import PairSide
from services.feedback.domain import privacy
from services.feedback.domain.submissions import DETRACTOR_UP_TO, PROMOTER_FROM, Answer

FEEDBACK_DIMENSIONS = privacy.Dimensions(
    names=("side", "kind"),
    values=(tuple(s.value for s in PairSide), tuple(k.value for k in FeedbackKind)),
)
"""Admins may filter feedback figures by respondent side and kind of feedback, no more."""

SIDE_DIMENSION = privacy.Dimensions(names=("side",), values=(tuple(s.value for s in PairSide),))

STAYED_REASONS = frozenset({PairEndReason.COMPLETED, PairEndReason.PROGRAM_CLOSED})


@dataclass(frozen=True)
class RatingTotals:
    """Additive totals of answers: sums of ratings and NPS counts."""

    responses: int = 0
    satisfaction: int = 0
    usefulness: int = 0
    comfort: int = 0
    progress: int = 0
    nps_answers: int = 0
    promoters: int = 0
    detractors: int = 0

    def __add__(self, other: RatingTotals) -> RatingTotals:
        return _add_fields(self, other)

    @classmethod
    def of(cls, answer: Answer) -> RatingTotals:
        """The totals of a single answer."""
        nps = answer.nps
        return cls(
            responses=1,
            satisfaction=answer.satisfaction,
            usefulness=answer.usefulness,
            comfort=answer.comfort,
            progress=answer.progress,
            nps_answers=int(nps is not None),
            promoters=int(nps is not None and nps >= PROMOTER_FROM),
            detractors=int(nps is not None and nps <= DETRACTOR_UP_TO),
        )


@dataclass(frozen=True)
class RequestTotals:
    """Requests sent, answered (of which late), and unanswered past their due time."""

    requests: int = 0
    answered: int = 0
    late: int = 0
    missing: int = 0

    def __add__(self, other: RequestTotals) -> RequestTotals:
        return _add_fields(self, other)


@dataclass(frozen=True)
class AtomTotals:
    """What the figures hold about one atom: released answers, and live request counts."""

    people: frozenset[str] = frozenset()
    ratings: RatingTotals = RatingTotals()
    asked: frozenset[str] = frozenset()
    requests: RequestTotals = RequestTotals()


@dataclass(frozen=True)
class AnswerFigures:
    """What the released answers of a cell say. Means 1-5; NPS -100..100."""

    people: int
    responses: int
    satisfaction: float | None
    usefulness: float | None
    comfort: float | None
    progress: float | None
    nps: float | None


@dataclass(frozen=True)
class RequestFigures:
    """Whether people answered: live counts (answering is public on upward.feedback)."""

    people_asked: int
    requests: int
    answered: int
    late: int
    missing: int
    response_rate: float | None


@dataclass(frozen=True)
class FeedbackCell:
    """One cell of the feedback table; a part is None when suppressed."""

    side: str | None
    kind: str | None
    answers: AnswerFigures | None
    requests: RequestFigures | None

    @property
    def suppressed(self) -> bool:
        """True when the answers are hidden (fewer than k people, or they would expose some)."""
        return self.answers is None


def feedback_table(
    atoms: Mapping[privacy.Atom, AtomTotals], *, k: int, cell: privacy.Cell | None = None
) -> list[FeedbackCell]:
    """The feedback cells (one when ``cell`` is given), suppressed where k requires.

    Answers: a cell is shown only when it passes the differencing check over the people
    who answered. Requests: the same check over the people asked, and k of them at least
    (an empty cell shows no request counts). Request counts are live: whether a request
    was answered is announced on ``upward.feedback`` anyway.
    """
    dims = FEEDBACK_DIMENSIONS
    people = {atom: totals.people for atom, totals in atoms.items()}
    released = privacy.releasable_cells(dims, people, k)
    asked = {atom: totals.asked for atom, totals in atoms.items()}
    asked_released = privacy.releasable_cells(dims, asked, k)
    wanted = [cell] if cell is not None else dims.cells()
    return [
        FeedbackCell(
            side=c[0],
            kind=c[1],
            answers=_answer_figures(dims, atoms, c) if c in released else None,
            requests=_request_figures(dims, atoms, c, k) if c in asked_released else None,
        )
        for c in wanted
    ]


def _answer_figures(
    dims: privacy.Dimensions, atoms: Mapping[privacy.Atom, AtomTotals], cell: privacy.Cell
) -> AnswerFigures:
    inside = [t for a, t in atoms.items() if dims.covers(cell, a)]
    people = frozenset().union(*(t.people for t in inside))
    r = sum((t.ratings for t in inside), RatingTotals())
    return AnswerFigures(
        people=len(people),
        responses=r.responses,
        satisfaction=_mean(r.satisfaction, r.responses),
        usefulness=_mean(r.usefulness, r.responses),
        comfort=_mean(r.comfort, r.responses),
        progress=_mean(r.progress, r.responses),
        nps=_ratio(100 * (r.promoters - r.detractors), r.nps_answers, digits=1),
    )


def _request_figures(
    dims: privacy.Dimensions,
    atoms: Mapping[privacy.Atom, AtomTotals],
    cell: privacy.Cell,
    k: int,
) -> RequestFigures | None:
    inside = [t for a, t in atoms.items() if dims.covers(cell, a)]
    asked = frozenset().union(*(t.asked for t in inside))
    if len(asked) < k:
        return None
    q = sum((t.requests for t in inside), RequestTotals())
    return RequestFigures(
        people_asked=len(asked),
        requests=q.requests,
        answered=q.answered,
        late=q.late,
        missing=q.missing,
        response_rate=_ratio(q.answered, q.requests, digits=3),
    )


@dataclass(frozen=True)
class SkillGrowth:
    """Mentees' self-assessed level of one topic, before and now; None when suppressed."""

    topic: str
    mentees: int | None
    before: float | None
    after: float | None
    growth: float | None

    @property
    def suppressed(self) -> bool:
        """True when fewer than k mentees assessed the topic."""
        return self.mentees is None


@dataclass(frozen=True)
class SkillLevels:
    """One mentee's released levels of one topic."""

    before: int
    after: int


def skill_table(by_topic: Mapping[str, Sequence[SkillLevels]], *, k: int) -> list[SkillGrowth]:
    """Growth per topic. Topics are disjoint cells with no total: no cell can be subtracted."""
    return [_skill_row(topic, by_topic[topic], k) for topic in sorted(by_topic)]


def _skill_row(topic: str, levels: Sequence[SkillLevels], k: int) -> SkillGrowth:
    n = len(levels)
    if n < k:
        return SkillGrowth(topic=topic, mentees=None, before=None, after=None, growth=None)
    before = sum(s.before for s in levels)
    after = sum(s.after for s in levels)
    return SkillGrowth(
        topic=topic,
        mentees=n,
        before=_mean(before, n),
        after=_mean(after, n),
        growth=_mean(after - before, n),
    )


def topics_to_release(pending_mentees: Mapping[str, int], *, k: int) -> list[str]:
    """Topics whose pending self-assessments come from k mentees or more."""
    return sorted(topic for topic, n in pending_mentees.items() if n >= k)


class Participation(StrEnum):
    """Where a person stands in a program, from the pairs they were in."""

    STAYED = "stayed"
    ACTIVE = "active"
    LEFT_EARLY = "left_early"


def participation(end_reasons: Iterable[PairEndReason | None]) -> Participation:
    """Stayed to the end if any pair completed; active if one is open; else left early."""
    reasons = list(end_reasons)
    if any(r in STAYED_REASONS for r in reasons):
        return Participation.STAYED
    if any(r is None for r in reasons):
        return Participation.ACTIVE
    return Participation.LEFT_EARLY


@dataclass(frozen=True)
class RetentionFigures:
    """How many people stayed to the end, are still active, or left early."""

    people: int
    stayed: int
    active: int
    left_early: int
    retention_rate: float


@dataclass(frozen=True)
class RetentionCell:
    """Retention of one side (or both); ``figures`` is None when suppressed."""

    side: str | None
    figures: RetentionFigures | None


_BEST = (Participation.STAYED, Participation.ACTIVE, Participation.LEFT_EARLY)


def retention_table(
    status: Mapping[tuple[str, str], Participation], *, k: int
) -> list[RetentionCell]:
    """Retention per side and overall, from each (side, person)'s participation."""
    dims = SIDE_DIMENSION
    people: dict[privacy.Atom, frozenset[str]] = {
        (side,): frozenset(p for (s, p) in status if s == side) for (side,) in dims.atoms()
    }
    released = privacy.releasable_cells(dims, people, k)
    return [
        RetentionCell(side=c[0], figures=_retention(status, c[0]) if c in released else None)
        for c in dims.cells()
    ]


def _retention(
    status: Mapping[tuple[str, str], Participation], side: str | None
) -> RetentionFigures:
    best: dict[str, Participation] = {}
    for (s, person), state in status.items():
        if side in (None, s):
            current = best.get(person, Participation.LEFT_EARLY)
            best[person] = min(current, state, key=_BEST.index)
    counts = {state: sum(1 for v in best.values() if v is state) for state in Participation}
    n = len(best)
    return RetentionFigures(
        people=n,
        stayed=counts[Participation.STAYED],
        active=counts[Participation.ACTIVE],
        left_early=counts[Participation.LEFT_EARLY],
        retention_rate=round((n - counts[Participation.LEFT_EARLY]) / n, 3) if n else 0.0,
    )


@dataclass(frozen=True)
class SessionFigures:
    """Sessions held per pair; None figures when fewer than k people are in pairs."""

    pairs: int | None
    sessions_held: int | None
    sessions_per_pair: float | None


def session_figures(
    sessions_by_pair: Mapping[str, int], people: frozenset[str], *, k: int
) -> SessionFigures:
    """Mean sessions held per pair, shown when the pairs hold k people or more."""
    if len(people) < k or not sessions_by_pair:
        return SessionFigures(pairs=None, sessions_held=None, sessions_per_pair=None)
    held = sum(sessions_by_pair.values())
    pairs = len(sessions_by_pair)
    return SessionFigures(pairs=pairs, sessions_held=held, sessions_per_pair=_mean(held, pairs))


def live_count(count: int, *, people: int, k: int) -> int | None:
    """A live event count, shown only when it covers k people or more (and k events).

    Six requests may all be addressed to the two people of one pair: the count is
    gated by the distinct people behind it, not by the number of events.
    """
    return count if people >= k and count >= k else None


CSV_COLUMNS = ("section", "side", "kind", "topic", "metric", "value")


def csv_export(
    feedback: Sequence[FeedbackCell],
    skills: Sequence[SkillGrowth],
    retention: Sequence[RetentionCell],
    sessions: SessionFigures,
) -> str:
    """The outcomes as CSV, one figure per row; a suppressed cell is one `suppressed` row."""
    rows: list[tuple[str, str, str, str, str, str]] = []
    for f in feedback:
        rows += _csv_rows("feedback", f.side, f.kind, "", _as_dict(f.answers))
        requests = _as_dict(f.requests)
        rows += _csv_rows("requests", f.side, f.kind, "", requests)
    for s in skills:
        figures = None if s.suppressed else {"mentees": s.mentees, "before": s.before,
                                             "after": s.after, "growth": s.growth}  # fmt: skip
        rows += _csv_rows("skills", PairSide.MENTEE.value, None, s.topic, figures)
    for r in retention:
        rows += _csv_rows("retention", r.side, None, "", _as_dict(r.figures))
    released = None if sessions.pairs is None else sessions
    rows += _csv_rows("sessions", None, None, "", _as_dict(released))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(rows)
    return out.getvalue()


def _csv_rows(
    section: str, side: str | None, kind: str | None, topic: str, figures: dict[str, Any] | None
) -> list[tuple[str, str, str, str, str, str]]:
    head = (section, side or "all", kind or "all", topic)
    if figures is None:
        return [(*head, "suppressed", "true")]
    return [(*head, name, "" if v is None else str(v)) for name, v in figures.items()]


def _as_dict(
    figures: AnswerFigures | RequestFigures | RetentionFigures | SessionFigures | None,
) -> dict[str, Any] | None:
    return None if figures is None else asdict(figures)


_Totals = TypeVar("_Totals", RatingTotals, RequestTotals)


def _add_fields(one: _Totals, other: _Totals) -> _Totals:
    """Field-wise sum of two totals of the same kind."""
    return replace(
        one, **{f.name: getattr(one, f.name) + getattr(other, f.name) for f in fields(one)}
    )


def _mean(total: int, n: int) -> float | None:
    return round(total / n, 2) if n else None


def _ratio(numerator: int, denominator: int, *, digits: int) -> float | None:
    return round(numerator / denominator, digits) if denominator else None
