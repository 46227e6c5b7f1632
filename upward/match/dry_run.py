"""The offline dry run behind ``upward match plan``: read, validate, plan, write.

Input: a JSON Lines file, one ParticipantJoined ``data`` object per line (the same payload
an HR feed publishes), and optionally a ProgramCreated ``data`` object. Every line is
validated with the event contracts; any error stops the run before anything is written
and names the line and the field. The output is one JSON document: ``pairs`` (mentor,
mentee, score, per-factor explanation, topics), ``unmatched`` (participant and reason)
and ``totals``.

A cohort file carries no screening or training records, so participants are treated as
screened and trained (``assume_screened``); without it, a program that requires
screening has no eligible mentor. Nobody in the file is paired yet, and declined or
ended pairs are unknown: nothing is excluded.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from schemas.participants import ParticipantJoined, ScreeningOutcome
from schemas.programs import ProgramCreated
from services.matching.domain.model import Candidate, MatchPlan, ProgramRules
from services.matching.domain.participants import to_candidate

DRY_RUN_PROGRAM_ID = "dry-run"


class DryRunInputError(ValueError):
    """Invalid input: every problem found, each naming its line and field."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def read_program(path: Path | None, *, cohort_program_id: str | None) -> ProgramCreated:
    """The program file, or the reference program (ProgramCreated.example()) renamed."""
    if path is None:
        example = ProgramCreated.example()
        return example.model_copy(update={"program_id": cohort_program_id or DRY_RUN_PROGRAM_ID})
    try:
        return ProgramCreated.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except json.JSONDecodeError as exc:
        raise DryRunInputError(
            [f"{path.name}: not valid JSON: {exc.msg} (line {exc.lineno})"]
        ) from exc
    except ValidationError as exc:
        raise DryRunInputError(
            [f"{path.name}: {problem}" for problem in _field_problems(exc)]
        ) from exc


def read_cohort(
    lines: Iterable[str], *, source: str, max_problems: int = 20
) -> tuple[ParticipantJoined, ...]:
    """Validate every line; raise :class:`DryRunInputError` listing the problems found."""
    people: list[ParticipantJoined] = []
    problems: list[str] = []
    first_line: dict[str, int] = {}
    for number, line in _numbered(lines):
        try:
            person = ParticipantJoined.model_validate(json.loads(line))
        except json.JSONDecodeError as exc:
            problems.append(f"{source} line {number}: not valid JSON: {exc.msg}")
        except ValidationError as exc:
            problems += [f"{source} line {number}: {problem}" for problem in _field_problems(exc)]
        else:
            seen = first_line.setdefault(person.participant_id, number)
            if seen != number:
                problems.append(
                    f"{source} line {number}: participant_id: {person.participant_id!r}"
                    f" already on line {seen}"
                )
            people.append(person)
        if len(problems) >= max_problems:
            break
    if problems:
        raise DryRunInputError(problems)
    return tuple(people)


def check_programs(people: tuple[ParticipantJoined, ...], program_id: str, *, source: str) -> None:
    """Every participant must belong to the program planned."""
    problems = [
        f"{source} line {number}: program_id: {person.program_id!r} is not the program"
        f" planned ({program_id!r})"
        for number, person in enumerate(people, start=1)
        if person.program_id != program_id
    ]
    if problems:
        raise DryRunInputError(problems[:20])


def _numbered(lines: Iterable[str]) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(lines, start=1):
        if line.strip():
            yield number, line


def _field_problems(exc: ValidationError) -> list[str]:
    """``field.path: message`` for each pydantic error."""
    return [
        f"{'.'.join(str(part) for part in error['loc']) or '(object)'}: {error['msg']}"
        for error in exc.errors()
    ]


def candidate(person: ParticipantJoined, *, assume_screened: bool) -> Candidate:
    """The engine's view of a joiner (the service's own conversion): nobody paired yet."""
    return to_candidate(
        person.model_dump(mode="json"),
        screening=ScreeningOutcome.PASSED.value if assume_screened else None,
        trained=assume_screened,
        open_as_mentor=0,
        open_as_mentee=False,
    )


def reference_instant(program: ProgramCreated, at: datetime | None) -> datetime:
    """Time zones are compared at ``at``, by default noon UTC on the program's first day."""
    if at is not None:
        return at if at.tzinfo else at.replace(tzinfo=UTC)
    return datetime.combine(program.starts_on, time(12, 0), tzinfo=UTC)


def plan_document(plan: MatchPlan, *, rules: ProgramRules, at: datetime) -> dict[str, Any]:
    """The JSON document written to PLAN.json."""
    return {
        "program_id": rules.program_id,
        "objective": rules.objective,
        "at": at.isoformat(),
        "pairs": [
            {
                "mentor_id": pair.mentor_id,
                "mentee_id": pair.mentee_id,
                "score": pair.score,
                "explanation": [line.model_dump(mode="json") for line in pair.explanation],
                "topics": list(pair.topics),
            }
            for pair in plan.pairs
        ],
        "unmatched": [
            {"participant_id": person.participant_id, "reason": person.reason}
            for person in plan.unmatched
        ],
        "totals": dict(plan.totals),
    }


def write_atomically(path: Path, document: dict[str, Any]) -> None:
    """Write JSON to a temporary file next to ``path``, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(document, stream, indent=2)
            stream.write("\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
