"""Drive the sessions handlers without I/O: a fake store, a manual clock, captured events."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast

from sessions_fakes import FakeSessionsRepository

from schemas.base import EventData
from schemas.pairs import PairEnded, PairEndReason, PairFormed
from schemas.participants import ParticipantJoined
from schemas.programs import ProgramCreated
from schemas.registry import event_class
from servicekit.clock import ManualClock
from servicekit.unit_of_work import TransactionScope, UnitOfWork, run_committed
from services.sessions.handlers import (
    build_handlers,
    complete_pairs,
    flag_stalled_pairs,
    mark_missed_sessions,
)
from services.sessions.service_layer import Dependencies, Policy
from services.sessions.settings import SessionsSettings

START = datetime(2025, 3, 3, 8, tzinfo=UTC)  # a Monday
C = TypeVar("C")
R = TypeVar("R")


def settings(**overrides: Any) -> SessionsSettings:
    """Sessions settings for tests (database never opened)."""
    values: dict[str, Any] = {"service_name": "sessions", "database_url": "postgresql://unused"}
    return SessionsSettings(**values | overrides)


def program(**overrides: Any) -> ProgramCreated:
    """The example program (26 weeks, every 14 days), changed by ``overrides``."""
    return ProgramCreated.model_validate(
        ProgramCreated.example().model_dump(mode="json") | overrides
    )


def participant(participant_id: str, timezone: str, **overrides: Any) -> ParticipantJoined:
    """A participant of the example program in ``timezone``."""
    data = ParticipantJoined.example().model_dump(mode="json") | {
        "participant_id": participant_id,
        "timezone": timezone,
        "display_name": f"Person {participant_id}",
        "email": f"{participant_id}@example.com",
    }
    return ParticipantJoined.model_validate(data | overrides)


def formed(pair_id: str = "pair-1", mentor: str = "emp-m", mentee: str = "emp-e") -> PairFormed:
    """PairFormed of the example program."""
    data = PairFormed.example().model_dump(mode="json")
    return PairFormed.model_validate(
        data | {"pair_id": pair_id, "mentor_id": mentor, "mentee_id": mentee}
    )


def ended(by: str, reason: PairEndReason = PairEndReason.NO_FAULT_EXIT) -> PairEnded:
    """PairEnded of the example pair ``pair-1``."""
    return PairEnded(
        pair_id="pair-1",
        program_id="prg-2025-digital",
        mentor_id="emp-m",
        mentee_id="emp-e",
        reason=reason,
        ended_by=by,
    )


class Harness:
    """The service's handlers on a fake repository, with a manual clock."""

    def __init__(self, now: datetime = START, **setting_overrides: Any) -> None:
        self.repo = FakeSessionsRepository()
        self.clock = ManualClock(now)
        policy = Policy.from_settings(settings(**setting_overrides))
        self.deps = Dependencies(policy, repository=lambda conn: self.repo)
        self.handlers = build_handlers(self.deps)
        self.events: list[EventData] = []

    def _uow(self) -> UnitOfWork:
        return UnitOfWork(cast(Any, None), source="/test", region="test", clock=self.clock)

    async def _keep(self, *units: UnitOfWork) -> None:
        """What a commit does: write what is held, keep the emitted events and run the
        after-commit actions."""
        for uow in units:
            await uow.scope.finish()
        for uow in units:
            run_committed(uow.committed_actions)
            for _, event in uow.emitted:
                cls = event_class(event.type.removeprefix("upward."))
                self.events.append(cls.model_validate(event.data))

    async def send(self, *events: EventData) -> None:
        """Handle events, as the consumer would, one transaction each."""
        for data in events:
            uow = self._uow()
            await self.handlers[type(data)](data, uow)
            await self._keep(uow)

    async def send_batch(self, *events: EventData) -> None:
        """Handle events in one transaction, as the consumer handles a batch."""
        scope = TransactionScope()
        units = []
        for data in events:
            uow = UnitOfWork(
                cast(Any, None), source="/test", region="test", clock=self.clock, scope=scope
            )
            await self.handlers[type(data)](data, uow)
            units.append(uow)
        await self._keep(*units)

    async def run(
        self, handler: Callable[[C, UnitOfWork, Dependencies], Awaitable[R]], cmd: C
    ) -> R:
        """Run a command, as the HTTP API would."""
        uow = self._uow()
        result = await handler(cmd, uow, self.deps)
        await self._keep(uow)
        return result

    async def tick(self) -> None:
        """Run every timer once, in the service's order."""
        for timer in (mark_missed_sessions, flag_stalled_pairs, complete_pairs):
            uow = self._uow()
            await timer(uow, deps=self.deps)
            await self._keep(uow)

    async def advance(self, delta: timedelta) -> None:
        """Move the clock forward and run the timers, like ``POST /ops/clock``."""
        self.clock.advance(delta)
        await self.tick()

    def of(self, cls: type[R]) -> list[R]:
        """The events of type ``cls`` emitted so far."""
        return [e for e in self.events if isinstance(e, cls)]  # type: ignore[misc]

    async def ready_pair(
        self, mentor_tz: str = "Europe/London", mentee_tz: str = "Europe/London"
    ) -> None:
        """Program, both people and PairFormed: the pair's first sessions are scheduled."""
        await self.send(
            program(),
            participant("emp-m", mentor_tz, role="mentor"),
            participant(
                "emp-e", mentee_tz, role="mentee", wants={"social-media": 5, "gen-z-culture": 4}
            ),
            formed(),
        )
