"""A live view kept by faust: feedback requests and answers per program.

The figures of record are the PostgreSQL report tables; this table is a live count read
from ``upward.feedback`` (a redelivery after a crash may over-count it). It holds event
counts only, never ratings.
"""

from __future__ import annotations

from typing import Any

from schemas.feedback import FeedbackRequested, FeedbackSubmitted
from servicekit.settings import ServiceSettings
from servicekit.streams import decoded_events, source_topic

REQUESTED = "requested"
SUBMITTED = "submitted"


def live_key(program_id: str, what: str) -> str:
    """The table key of one count of one program."""
    return f"{program_id}/{what}"


def declare_streams(app: Any, settings: ServiceSettings) -> Any:
    """Count FeedbackRequested and FeedbackSubmitted per program in a faust GlobalTable."""
    counts = app.GlobalTable("feedback-live-per-program", default=int, partitions=3)

    async def count_feedback(stream: Any) -> None:
        async for event in decoded_events(stream, max_bytes=settings.max_event_bytes):
            if isinstance(event.data, FeedbackRequested):
                counts[live_key(event.data.program_id, REQUESTED)] += 1
            elif isinstance(event.data, FeedbackSubmitted):
                counts[live_key(event.data.program_id, SUBMITTED)] += 1

    app.agent(source_topic(app, settings, "upward.feedback"))(count_feedback)
    return counts
