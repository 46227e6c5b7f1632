"""What a handler gets: the open transaction and a way to emit events.

A handler changes state through repositories on ``uow.conn`` and calls
``uow.emit(event_data)`` for each event it causes. Emitted events go to the
outbox in the same transaction, carrying the correlation id of the event that
caused them, its id as causation id, and a child span of its trace.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from schemas.base import EventData
from schemas.codec import new_event
from schemas.envelope import CloudEvent
from servicekit import outbox
from servicekit.db import Connection
from servicekit.tracing import child_span


class UnitOfWork:
    """One transaction of one service, with the event that started it (if any)."""

    def __init__(
        self,
        conn: Connection,
        *,
        source: str,
        region: str,
        cause: CloudEvent | None = None,
    ) -> None:
        self.conn = conn
        self.cause = cause
        self._source = source
        self._region = region
        self._traceparent = child_span(cause.traceparent if cause else None).traceparent
        self.emitted: list[CloudEvent] = []

    async def emit(self, data: EventData) -> CloudEvent:
        """Put the event ``data`` in the outbox of this transaction."""
        event = new_event(
            data,
            source=self._source,
            region=self._region,
            correlationid=self.cause.correlationid or self.cause.id if self.cause else None,
            causationid=self.cause.id if self.cause else None,
            traceparent=self._traceparent,
        )
        await outbox.append(self.conn, data.topic, [event])
        self.emitted.append(event)
        return event


Handler = Callable[[Any, UnitOfWork], Awaitable[None]]
"""A handler takes the (upcast, validated) event data and the unit of work."""

HandlerTable = Mapping[type[EventData], Handler]
"""The one explicit table of a service: event class -> handler."""


class Rejected(Exception):
    """Raised by a handler for an event that can never be applied (dead-lettered)."""
