"""What a handler gets: the open transaction and a way to emit events.

A handler changes state through repositories on ``uow.conn`` and calls
``uow.emit(event_data)`` for each event it causes. Emitted events go to the
outbox in the same transaction, carrying the correlation id of the event that
caused them, its id as causation id, and a child span of its trace.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Protocol, TypeVar, cast

import asyncpg

from schemas.base import EventData
from schemas.codec import new_event
from schemas.envelope import CloudEvent
from servicekit import outbox
from servicekit.clock import Clock, SystemClock
from servicekit.db import Connection
from servicekit.tracing import child_span

_SYSTEM_CLOCK = SystemClock()


class HeldWrites(Protocol):
    """Writes a transaction's handlers hold back, to send together before it commits."""

    async def write(self) -> None:
        """Send what is held (to the transaction's connection)."""


HeldT = TypeVar("HeldT", bound=HeldWrites)


class TransactionScope:
    """What the units of work of one transaction share (the consumer applies a batch of
    events in one transaction, one unit of work per event).

    ``cache`` holds whatever the handlers keep for the rest of the transaction (keyed by
    service, e.g. writes held back to be sent in one statement); actions registered with
    :meth:`before_commit` run, in order, once all of the transaction's handlers have run
    and before its outbox rows are written. An action may still emit events and register
    after-commit actions through the units of work it kept: they are written to the
    outbox (in the order of the units of work) and run with the others.

    ``events`` are the events the transaction's handlers will be given, in order (the
    consumer's batch), so the first handler can read at once what the others need.
    """

    def __init__(self, events: Sequence[EventData] = ()) -> None:
        self.events = tuple(events)
        self.cache: dict[str, Any] = {}
        self._before_commit: list[Callable[[], Awaitable[None]]] = []

    def before_commit(self, action: Callable[[], Awaitable[None]]) -> None:
        """Run ``action`` before the transaction commits (after its handlers)."""
        self._before_commit.append(action)

    def held(self, key: str, create: Callable[[], HeldT]) -> HeldT:
        """The writes held under ``key`` in this transaction, made by ``create`` the first
        time; they are written before the transaction commits, or earlier by
        :meth:`write_held` (before a handler that must read them)."""
        held = self.cache.get(key)
        if held is None:
            held = self.cache[key] = create()
            self.before_commit(lambda: self.write_held(key))
        return cast(HeldT, held)

    async def write_held(self, key: str) -> None:
        """Write what is held under ``key`` so far (nothing if nothing is held)."""
        held = self.cache.pop(key, None)
        if held is not None:
            await held.write()

    async def finish(self) -> None:
        """Run the before-commit actions (each once, in order)."""
        while self._before_commit:
            await self._before_commit.pop(0)()


class UnitOfWork:
    """One transaction of one service, with the event that started it (if any).

    Emitted events are buffered and written to the outbox in one statement
    before the transaction commits: by the consumer loop once for all the
    handlers of a batch, by :func:`unit_of_work` when its block ends.
    """

    def __init__(
        self,
        conn: Connection,
        *,
        source: str,
        region: str,
        cause: CloudEvent | None = None,
        clock: Clock | None = None,
        scope: TransactionScope | None = None,
    ) -> None:
        self.conn = conn
        self.cause = cause
        self.scope = scope or TransactionScope()
        """Shared with the other units of work of the same transaction (if any)."""
        self.now = (clock or _SYSTEM_CLOCK).now()
        """The time when this unit of work began, from the service's clock."""
        self._source = source
        self._region = region
        self._traceparent = child_span(cause.traceparent if cause else None).traceparent
        self.emitted: list[tuple[str, CloudEvent]] = []
        self.committed_actions: list[Callable[[], None]] = []

    async def emit(self, data: EventData, *, event_id: str | None = None) -> CloudEvent:
        """Add the event ``data`` to the outbox of this transaction (with ``event_id``, a
        deterministic id for an idempotent command; a new one by default)."""
        event = new_event(
            data,
            event_id=event_id,
            source=self._source,
            region=self._region,
            correlationid=(self.cause.correlationid or self.cause.id) if self.cause else None,
            causationid=self.cause.id if self.cause else None,
            traceparent=self._traceparent,
        )
        self.emitted.append((data.topic, event))
        return event

    def after_commit(self, action: Callable[[], None]) -> None:
        """Run ``action`` once this transaction has committed (never on rollback).

        For side effects outside the database that must not count a rolled-back
        or replayed attempt, such as incrementing a metric.
        """
        self.committed_actions.append(action)

    async def flush(self, *, max_bytes: int) -> None:
        """Run the scope's before-commit actions, then write the buffered events to the
        outbox (still inside the transaction)."""
        await self.scope.finish()
        await outbox.append(self.conn, self.emitted, max_bytes=max_bytes)
        self.emitted = []


@asynccontextmanager
async def unit_of_work(
    pool: asyncpg.Pool,
    *,
    source: str,
    region: str,
    clock: Clock | None = None,
    max_event_bytes: int = 1_048_576,
) -> AsyncIterator[UnitOfWork]:
    """A transaction for a command (e.g. an HTTP request): commit with its events, or roll back."""
    async with pool.acquire() as conn, conn.transaction():
        uow = UnitOfWork(conn, source=source, region=region, clock=clock)
        yield uow
        await uow.flush(max_bytes=max_event_bytes)
    run_committed(uow.committed_actions)


def run_committed(actions: list[Callable[[], None]]) -> None:
    """Run the after-commit actions of committed units of work, in order."""
    for action in actions:
        action()


Handler = Callable[[Any, UnitOfWork], Awaitable[None]]
"""A handler takes the (upcast, validated) event data and the unit of work."""

HandlerTable = Mapping[type[EventData], Handler]
"""The one explicit table of a service: event class -> handler."""


def after_held(key: str, handler: Handler) -> Handler:
    """``handler`` run once the writes held under ``key`` so far in the transaction are
    written: it may read or change what they write, and its events follow theirs."""

    async def run(data: Any, uow: UnitOfWork) -> None:
        await uow.scope.write_held(key)
        await handler(data, uow)

    return run


class Rejected(Exception):
    """Raised by a handler for an event that can never be applied (dead-lettered)."""
