"""Inbox: which events a consumer group has already applied.

:func:`claim_many` runs in the handlers' transaction. It inserts the event ids
in one statement; an id already there is a redelivery: its handler is skipped
and the redelivery is counted. Because the row commits or rolls back with the
state change, an event's effect happens exactly once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from servicekit.db import Connection

_CLAIM = """
INSERT INTO kit_inbox (consumer_group, event_id, event_type, topic, kafka_partition, kafka_offset)
SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::int[], $6::bigint[])
ON CONFLICT (consumer_group, event_id)
DO UPDATE SET redeliveries = kit_inbox.redeliveries + 1
RETURNING event_id, (xmax = 0) AS first_time
"""

_COUNT_REPEATS = """
UPDATE kit_inbox SET redeliveries = redeliveries + x.n
FROM unnest($2::text[], $3::int[]) AS x(event_id, n)
WHERE consumer_group = $1 AND kit_inbox.event_id = x.event_id
"""


@dataclass(frozen=True)
class Delivery:
    """Where an event was read from."""

    event_id: str
    event_type: str
    topic: str
    partition: int
    offset: int


async def claim_many(conn: Connection, *, group: str, deliveries: Sequence[Delivery]) -> set[str]:
    """Record ``deliveries`` for ``group``; return the ids seen for the first time.

    The same id twice in ``deliveries`` is one claim and one redelivery.
    """
    unique: dict[str, Delivery] = {}
    repeats: Counter[str] = Counter()
    for d in deliveries:
        if d.event_id in unique:
            repeats[d.event_id] += 1
        else:
            unique[d.event_id] = d
    rows = await conn.fetch(
        _CLAIM,
        group,
        list(unique),
        [d.event_type for d in unique.values()],
        [d.topic for d in unique.values()],
        [d.partition for d in unique.values()],
        [d.offset for d in unique.values()],
    )
    if repeats:
        await conn.execute(_COUNT_REPEATS, group, list(repeats), list(repeats.values()))
    return {r["event_id"] for r in rows if r["first_time"]}
