"""The asyncpg store's delivery guarantees: natural keys, SKIP LOCKED claims, lease tokens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from schemas.notifications import Channel, NotificationKind
from services.notifications.adapters.repository import PostgresNotificationsRepository
from services.notifications.domain.planning import (
    Notice,
    PlannedDelivery,
    SessionInfo,
    delivery_id,
)

pytestmark = pytest.mark.integration
NOW = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


def planned(
    source_key: str, recipient: str = "p1", cancel_key: str | None = None
) -> PlannedDelivery:
    notice = Notice(
        source_key=source_key,
        recipient_id=recipient,
        kind=NotificationKind.SESSION_REMINDER,
        reference_id="s1",
        context={"n": source_key},
        not_before=NOW,
        cancel_key=cancel_key,
    )
    return PlannedDelivery(
        delivery_id=delivery_id(source_key, recipient, Channel.EMAIL),
        notice=notice,
        channel=Channel.EMAIL,
        due_at=NOW,
        digest=False,
    )


async def test_a_natural_key_is_planned_once(notifications_pool: asyncpg.Pool) -> None:
    async with notifications_pool.acquire() as conn:
        repo = PostgresNotificationsRepository(conn)
        assert await repo.add_deliveries(planned=[planned("a"), planned("b")], now=NOW) == 2
        assert await repo.add_deliveries(planned=[planned("a"), planned("c")], now=NOW) == 1
        assert await conn.fetchval("SELECT count(*) FROM deliveries") == 3


async def test_a_cancelled_key_can_be_planned_again_but_a_sent_one_cannot(
    notifications_pool: asyncpg.Pool,
) -> None:
    async with notifications_pool.acquire() as conn:
        repo = PostgresNotificationsRepository(conn)
        await repo.add_deliveries(planned=[planned("r", cancel_key="session:s1")], now=NOW)
        assert await repo.cancel_pending(cancel_key="session:s1") == 1
        assert (
            await repo.add_deliveries(planned=[planned("r", cancel_key="session:s1")], now=NOW) == 1
        )
        assert await conn.fetchval("SELECT status FROM deliveries") == "pending"
        await conn.execute("UPDATE deliveries SET status = 'sent'")
        assert await repo.add_deliveries(planned=[planned("r")], now=NOW) == 0
        assert await conn.fetchval("SELECT status FROM deliveries") == "sent"


async def test_concurrent_claims_never_take_the_same_delivery(
    notifications_pool: asyncpg.Pool,
) -> None:
    async with notifications_pool.acquire() as setup:
        rows = [planned(f"k{i}") for i in range(6)]
        await PostgresNotificationsRepository(setup).add_deliveries(planned=rows, now=NOW)
    pool = notifications_pool
    async with pool.acquire() as a, pool.acquire() as b, a.transaction(), b.transaction():
        first = await PostgresNotificationsRepository(a).claim_due(now=NOW, limit=4)
        second = await PostgresNotificationsRepository(b).claim_due(now=NOW, limit=4)
    ids_a = {d.delivery_id for d in first}
    ids_b = {d.delivery_id for d in second}
    assert len(ids_a) == 4 and len(ids_b) == 2 and not ids_a & ids_b


async def test_only_the_current_lease_holder_can_complete(notifications_pool: asyncpg.Pool) -> None:
    async with notifications_pool.acquire() as conn:
        repo = PostgresNotificationsRepository(conn)
        row = planned("x")
        await repo.add_deliveries(planned=[row], now=NOW)
        ids = [row.delivery_id]
        await repo.mark_sending(delivery_ids=ids, token="old", lease_until=NOW)
        (expired,) = await repo.claim_due(now=NOW + timedelta(seconds=1), limit=10)
        assert expired.attempts == 1
        await repo.mark_sending(delivery_ids=ids, token="new", lease_until=NOW + timedelta(hours=1))
        assert (
            await repo.mark_sent(token="old", delivery_ids=ids, message_id="m", sent_at=NOW) == []
        )
        assert await repo.mark_failed(token="old", delivery_ids=ids, error="e") == []
        assert (
            await repo.mark_sent(token="new", delivery_ids=ids, message_id="m", sent_at=NOW) == ids
        )
        assert await repo.claim_due(now=NOW + timedelta(days=1), limit=10) == []
        (sent,) = await repo.deliveries_of(recipient_id="p1", limit=5)
        assert (sent.status, sent.attempts, sent.sent_at) == ("sent", 2, NOW)


async def test_deliveries_of_several_events_keep_their_own_creation_time(
    notifications_pool: asyncpg.Pool,
) -> None:
    later = NOW + timedelta(minutes=5)
    async with notifications_pool.acquire() as conn:
        repo = PostgresNotificationsRepository(conn)
        rows = [(planned("a"), NOW), (planned("b"), later)]
        assert await repo.add_planned(planned=rows) == 2
        assert await repo.add_planned(planned=[(planned("b"), NOW), (planned("c"), NOW)]) == 1
        created = await conn.fetch("SELECT source_key, created_at FROM deliveries ORDER BY 1")
        assert [(r["source_key"], r["created_at"]) for r in created] == [
            ("a", NOW),
            ("b", later),
            ("c", NOW),
        ]


async def test_sessions_saved_together_replace_only_the_times_of_known_ones(
    notifications_pool: asyncpg.Pool,
) -> None:
    def session(session_id: str, pair_id: str, hours: int) -> SessionInfo:
        starts = NOW + timedelta(hours=hours)
        return SessionInfo(
            session_id, pair_id, "prg", "m", "e", starts, starts + timedelta(hours=1)
        )

    async with notifications_pool.acquire() as conn:
        repo = PostgresNotificationsRepository(conn)
        await repo.save_sessions(sessions=[session("s1", "p1", 1), session("s2", "p2", 2)])
        await repo.save_sessions(sessions=[session("s1", "other", 5)])
        assert await repo.session(session_id="s1") == session("s1", "p1", 5)
        assert await repo.session(session_id="s2") == session("s2", "p2", 2)
