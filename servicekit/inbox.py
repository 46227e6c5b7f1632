"""Inbox: which events a consumer group has already applied.

:func:`claim` runs in the handler's transaction. It inserts the event id; when
the id is already there the event is a redelivery, the handler is skipped and
the redelivery is counted. Because the row commits or rolls back with the
state change, an event's effect happens exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass

from servicekit.db import Connection

_CLAIM = """
INSERT INTO kit_inbox (consumer_group, event_id, event_type, topic, kafka_partition, kafka_offset)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (consumer_group, event_id)
DO UPDATE SET redeliveries = kit_inbox.redeliveries + 1
RETURNING (xmax = 0) AS first_time
"""


@dataclass(frozen=True)
class Delivery:
    """Where an event was read from."""

    event_id: str
    event_type: str
    topic: str
    partition: int
    offset: int


async def claim(conn: Connection, *, group: str, delivery: Delivery) -> bool:
    """Record ``delivery`` for ``group``; False when it was already processed."""
    first_time: bool = await conn.fetchval(
        _CLAIM,
        group,
        delivery.event_id,
        delivery.event_type,
        delivery.topic,
        delivery.partition,
        delivery.offset,
    )
    return first_time
