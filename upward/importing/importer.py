"""Join the valid rows of an export through the matching API, each person at most once.

Before joining, the program's participants are read once: someone already active with the
same profile is skipped (``already_imported``), someone active with another profile is
reported (``differs``, with the fields that differ; a profile update is the way to change
it), someone who left is not rejoined (``left``). A join the service refuses (4xx) is
reported with its reason, and the import goes on; a 409 on a join (someone joined in the
meantime) is looked up and classified the same way. Each join carries an
``Idempotency-Key`` derived from its body, so a re-run that sends a join again before the
first one was applied announces nothing new. After the joins, the import waits until the
matching consumer has applied them, so that a re-run finds them and reports them as
already imported.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from schemas.participants import ParticipantProfile
from upward.importing.matching_api import MatchingApi
from upward.importing.rows import ParsedExport, RowJoin


class RowStatus(StrEnum):
    """What happened to one row."""

    JOINED = "joined"
    ALREADY_IMPORTED = "already_imported"
    DIFFERS = "differs"
    LEFT = "left"
    REFUSED = "refused"
    INVALID = "invalid"


PROBLEMS = frozenset({RowStatus.DIFFERS, RowStatus.REFUSED, RowStatus.INVALID})
"""Statuses that make the import exit nonzero."""


@dataclass(frozen=True, slots=True)
class RowOutcome:
    """One row's fate: line, participant, status and, unless joined, why."""

    line: int
    participant_id: str
    status: RowStatus
    reason: str = ""


class UnknownProgram(LookupError):
    """The program to import into does not exist (or cannot be read)."""


@dataclass(frozen=True, slots=True)
class ImportResult:
    """Every row's outcome (in line order) and whether the joins were seen applied."""

    outcomes: list[RowOutcome]
    applied: bool

    def count(self, status: RowStatus) -> int:
        """How many rows ended with ``status``."""
        return sum(1 for outcome in self.outcomes if outcome.status is status)

    @property
    def has_problems(self) -> bool:
        """True when some row was invalid, refused or differs from what is stored."""
        return any(outcome.status in PROBLEMS for outcome in self.outcomes)


def invalid_outcomes(parsed: ParsedExport) -> list[RowOutcome]:
    """The parser's refusals as outcomes."""
    return [
        RowOutcome(p.line, p.participant_id, RowStatus.INVALID, p.reason) for p in parsed.problems
    ]


async def import_rows(
    api: MatchingApi,
    parsed: ParsedExport,
    *,
    program_id: str,
    concurrency: int = 8,
    wait_s: float = 30.0,
    on_row: Callable[[RowOutcome], None] = lambda _: None,
) -> ImportResult:
    """Import ``parsed`` into ``program_id``, every row reported in line order.

    Raises :class:`UnknownProgram` for a missing program and ``MatchingUnavailable`` when
    the service cannot be reached or fails.
    """
    program = await api.program(program_id)
    if not program.ok:
        raise UnknownProgram(f"program {program_id!r}: {program.reason}")
    stored = {p["profile"]["participant_id"]: p for p in await api.participants(program_id)}
    gate = asyncio.Semaphore(concurrency)

    async def one(row: RowJoin) -> RowOutcome:
        async with gate:
            outcome = await _import_one(api, row, program_id, stored.get(row.body.participant_id))
        on_row(outcome)
        return outcome

    outcomes = list(await asyncio.gather(*(one(row) for row in parsed.joins)))
    joined = {o.participant_id for o in outcomes if o.status is RowStatus.JOINED}
    applied = await _wait_applied(api, program_id, joined, wait_s=wait_s)
    everything = outcomes + invalid_outcomes(parsed)
    return ImportResult(sorted(everything, key=lambda o: o.line), applied)


async def _import_one(
    api: MatchingApi, row: RowJoin, program_id: str, stored: Mapping[str, Any] | None
) -> RowOutcome:
    if stored is not None:
        return compare(row, stored)
    answer = await api.join(program_id, row.body.model_dump(mode="json"))
    if answer.ok:
        return RowOutcome(row.line, row.body.participant_id, RowStatus.JOINED)
    if answer.status == 409:
        found = await api.participant(program_id, row.body.participant_id)
        if found.ok:
            return compare(row, found.body)
    return RowOutcome(row.line, row.body.participant_id, RowStatus.REFUSED, answer.reason)


def compare(row: RowJoin, stored: Mapping[str, Any]) -> RowOutcome:
    """Classify a row whose participant the service already has."""
    person = row.body.participant_id
    if stored.get("status") == "left":
        return RowOutcome(row.line, person, RowStatus.LEFT, "left the program; not rejoined")
    differing = differing_fields(row.body, stored["profile"])
    if not differing:
        return RowOutcome(row.line, person, RowStatus.ALREADY_IMPORTED, "already in the program")
    reason = f"already joined with other data in: {', '.join(differing)}"
    return RowOutcome(row.line, person, RowStatus.DIFFERS, reason)


def differing_fields(body: ParticipantProfile, stored: Mapping[str, Any]) -> list[str]:
    """Top-level profile fields whose values differ between ``body`` and ``stored``."""
    mine = ParticipantProfile.model_validate(body.model_dump()).model_dump(mode="json")
    theirs = ParticipantProfile.model_validate(stored).model_dump(mode="json")
    return [name for name in mine if mine[name] != theirs.get(name)]


async def _wait_applied(
    api: MatchingApi, program_id: str, joined: set[str], *, wait_s: float
) -> bool:
    """Poll the participants until every join is applied, at most ``wait_s`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while joined:
        present = {p["profile"]["participant_id"] for p in await api.participants(program_id)}
        if joined <= present:
            return True
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(0.5)
    return True
