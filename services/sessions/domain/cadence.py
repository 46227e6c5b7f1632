"""When the next session of a pair is due, and where to look for its time.

Sessions are scheduled a few at a time (the service keeps ``sessions_ahead`` of them
scheduled), each on the program's cadence: the first is due ``first_session_lead``
after the pair formed, each next one a cadence after the previous one's due time.
A pair that fell behind (its next due time is already past) gets its next session as
soon as the notice period allows, and the rhythm continues from there. No session is
due at or after the pair's end (``formed_at + duration_weeks``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from services.sessions.domain.model import Pair, Session
from services.sessions.domain.slots import Interval

MAX_WINDOW = timedelta(days=7)
_SESSION_NAMESPACE = uuid.UUID("0b6f2a8e-5c1d-4f57-9a0e-3d2b7c9e4f10")


def next_due(
    pair: Pair, sessions: Sequence[Session], *, cadence: timedelta, earliest: datetime
) -> datetime | None:
    """Due time of the pair's next session, or None when the pair's program is over."""
    if pair.first_due is None or pair.ends_at is None:
        return None
    previous = max((s.due_at for s in sessions), default=None)
    planned = pair.first_due if previous is None else previous + cadence
    due = max(planned, earliest)
    return due if due < pair.ends_at else None


def search_window(due: datetime, *, cadence: timedelta, ends_at: datetime) -> Interval:
    """Where the session may start: from its due time for one cadence, at most a week."""
    length = min(max(cadence, timedelta(days=1)), MAX_WINDOW)
    return Interval(due, min(due + length, ends_at))


def session_id_for(pair_id: str, number: int) -> str:
    """A stable id for the pair's ``number``-th session (the same on every replay)."""
    return f"ses-{uuid.uuid5(_SESSION_NAMESPACE, f'{pair_id}#{number}').hex}"
