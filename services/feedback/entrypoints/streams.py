"""A live view kept by faust: feedback requests and answers per program.

The figures of record are the PostgreSQL report tables; this table is a live count read
from ``upward.feedback`` (a redelivery after a crash may over-count it). It holds event
counts only, never ratings.

The agent counts in batches (``take_events``: up to :data:`BATCH_MAX` records, or what
came within :data:`BATCH_WITHIN_S`) and adds each batch to the table once per program
and count, so the table's changelog gets a few records per batch instead of one per
event: every SessionHeld gives two FeedbackRequested, and a changelog record each was
most of the service's work. The events of a batch are acknowledged once it is counted.
The worker does not wait at shutdown for a batch still being gathered
(``stream_wait_empty`` off: faust-streaming would otherwise wait forever for events
buffered in ``take_events``); those are not acknowledged, so their offsets are not
committed and they are counted after the restart.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

from schemas.codec import DecodedEvent, EventDecodeError, decode
from schemas.feedback import FeedbackRequested, FeedbackSubmitted
from servicekit.settings import ServiceSettings
from servicekit.streams import STREAM_SKIPPED, source_topic

REQUESTED = "requested"
SUBMITTED = "submitted"
BATCH_MAX = 1000
"""At most this many records are counted in one batch."""
BATCH_WITHIN_S = 0.5
"""A batch is counted at the latest this long after the previous one (when not empty)."""


def live_key(program_id: str, what: str) -> str:
    """The table key of one count of one program."""
    return f"{program_id}/{what}"


def live_counts(events: Iterable[DecodedEvent]) -> Counter[str]:
    """How much each live count grows with ``events`` (other event types count nothing)."""
    counts: Counter[str] = Counter()
    for event in events:
        if isinstance(event.data, FeedbackRequested):
            counts[live_key(event.data.program_id, REQUESTED)] += 1
        elif isinstance(event.data, FeedbackSubmitted):
            counts[live_key(event.data.program_id, SUBMITTED)] += 1
    return counts


def decoded(records: Iterable[Any], *, max_bytes: int) -> Iterator[DecodedEvent]:
    """The valid events of a batch of faust events; undecodable records are counted and
    skipped (the consumers of the topic dead-letter them)."""
    for record in records:
        message = record.message
        try:
            yield decode(message.value, key=message.key, max_bytes=max_bytes)
        except EventDecodeError as exc:
            STREAM_SKIPPED.labels(message.topic, str(exc.reason)).inc()


def declare_streams(app: Any, settings: ServiceSettings) -> Any:
    """Count FeedbackRequested and FeedbackSubmitted per program in a faust GlobalTable."""
    app.conf.stream_wait_empty = False  # a batch being gathered is counted after a restart
    counts = app.GlobalTable(
        "feedback-live-per-program", default=int, partitions=3, use_partitioner=True
    )

    async def count_feedback(stream: Any) -> None:
        async for batch in stream.take_events(BATCH_MAX, within=BATCH_WITHIN_S):
            grown = live_counts(decoded(batch, max_bytes=settings.max_event_bytes))
            for key, added in sorted(grown.items()):
                counts[key] += added

    app.agent(source_topic(app, settings, "upward.feedback"))(count_feedback)
    return counts
