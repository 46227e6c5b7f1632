"""Events applied in one transaction (a consumer batch) plan what they plan one by one.

The handlers hold sessions and deliveries back and write them in one statement per
table before the transaction commits; a handler that reads or cancels them has the
held writes written first. Real PostgreSQL, a manual clock.
"""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import pytest
from harness import MENTEE, MENTOR, Harness, participant
from receivers import notifications_settings

from schemas.sessions import SessionCancelled, SessionRescheduled, SessionScheduled

pytestmark = pytest.mark.integration


@pytest.fixture
def harness(notifications_pool: asyncpg.Pool) -> Harness:
    return Harness(notifications_pool, notifications_settings(smtp_port=1))


def scheduled(session_id: str, *, days: int = 8) -> SessionScheduled:
    example = SessionScheduled.example()
    starts_at = example.starts_at + timedelta(days=days)
    return example.model_copy(
        update={
            "session_id": session_id,
            "starts_at": starts_at,
            "ends_at": starts_at + timedelta(hours=1),
        }
    )


async def statuses(h: Harness, session_id: str) -> list[tuple[str, str, str]]:
    rows = await h.pool.fetch(
        "SELECT kind, recipient_id, status FROM deliveries WHERE reference_id = $1"
        " ORDER BY kind, recipient_id, status",
        session_id,
    )
    return [(r["kind"], r["recipient_id"], r["status"]) for r in rows]


async def test_a_batch_plans_the_same_deliveries_as_one_event_per_transaction(
    harness: Harness,
) -> None:
    await harness.cast()
    await harness.apply(scheduled("ses-alone"))
    await harness.apply_batch([scheduled(f"ses-{i}") for i in range(3)])
    alone = await statuses(harness, "ses-alone")
    assert len(alone) == 6  # an invite and two reminders for each of the two people
    for i in range(3):
        assert await statuses(harness, f"ses-{i}") == alone
    created = await harness.pool.fetch(
        "SELECT DISTINCT created_at FROM deliveries WHERE reference_id = 'ses-0'"
    )
    assert [r["created_at"] for r in created] == [harness.clock.now()]
    assert await harness.pool.fetchval("SELECT count(*) FROM sessions") == 4


async def test_later_events_of_the_batch_see_the_held_session_and_reminders(
    harness: Harness,
) -> None:
    await harness.cast()
    first = scheduled("ses-moved")
    moved_to = first.starts_at + timedelta(days=2)
    moved = SessionRescheduled.example().model_copy(
        update={
            "session_id": "ses-moved",
            "starts_at": moved_to,
            "ends_at": moved_to + timedelta(hours=1),
            "previous_starts_at": first.starts_at,
        }
    )
    dropped = SessionCancelled.example().model_copy(update={"session_id": "ses-dropped"})
    await harness.apply_batch([first, moved, scheduled("ses-dropped"), dropped])
    starts = await harness.pool.fetchval(
        "SELECT starts_at FROM sessions WHERE session_id = 'ses-moved'"
    )
    assert starts == moved_to
    reminders = await harness.pool.fetch(
        "SELECT status, count(*) AS n FROM deliveries"
        " WHERE reference_id = 'ses-moved' AND kind = 'session_reminder'"
        " GROUP BY status ORDER BY status"
    )
    assert [(r["status"], r["n"]) for r in reminders] == [("cancelled", 4), ("pending", 4)]
    assert (
        await harness.pool.fetchval(
            "SELECT count(*) FROM sessions WHERE session_id = 'ses-dropped'"
        )
        == 0
    )
    dropped_rows = await statuses(harness, "ses-dropped")
    assert ("session_reminder", MENTOR, "pending") not in dropped_rows
    assert ("session_cancelled", MENTEE, "pending") in dropped_rows


async def test_a_session_scheduled_twice_in_a_batch_keeps_the_last_times(
    harness: Harness,
) -> None:
    await harness.cast()
    first, second = scheduled("ses-twice"), scheduled("ses-twice", days=9)
    await harness.apply_batch([first, second])
    row = await harness.pool.fetchrow("SELECT * FROM sessions WHERE session_id = 'ses-twice'")
    assert (row["starts_at"], row["ends_at"]) == (second.starts_at, second.ends_at)
    invites = await harness.pool.fetchval(
        "SELECT count(*) FROM deliveries WHERE reference_id = 'ses-twice'"
        " AND kind = 'session_invite'"
    )
    assert invites == 4  # each event's own invite to each person, as one by one


async def test_a_contact_changed_later_in_the_batch_is_not_in_earlier_messages(
    harness: Harness,
) -> None:
    await harness.cast()
    renamed = participant(MENTEE, "Helen Park-Lee", "Asia/Hong_Kong")
    await harness.apply_batch([scheduled("ses-before"), renamed, scheduled("ses-after")])
    names = await harness.pool.fetch(
        "SELECT reference_id, context->>'partner_name' AS name FROM deliveries"
        " WHERE recipient_id = $1 AND kind = 'session_invite' ORDER BY reference_id",
        MENTOR,
    )
    assert [(r["reference_id"], r["name"]) for r in names] == [
        ("ses-after", "Helen Park-Lee"),
        ("ses-before", "Helen Park"),
    ]
