"""Events emitted in a unit of work inherit the cause's correlation and trace."""

from typing import Any

import pytest

from schemas.codec import new_event
from schemas.participants import ParticipantJoined
from schemas.programs import ProgramCreated
from servicekit.db import Connection
from servicekit.outbox import EventTooLarge
from servicekit.tracing import parse_traceparent
from servicekit.unit_of_work import TransactionScope, UnitOfWork, after_held

TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


class _NoConnection:
    """emit() must not touch the database: events are buffered until flush()."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"emit() used the connection ({name})")


async def test_emitted_events_carry_correlation_causation_and_a_child_span() -> None:
    cause = new_event(ProgramCreated.example(), source="/hr", traceparent=TRACE)
    conn: Connection = _NoConnection()  # type: ignore[assignment]
    uow = UnitOfWork(conn, source="/upward/matching", region="emea", cause=cause)
    first = await uow.emit(ParticipantJoined.example())
    second = await uow.emit(ParticipantJoined.example())
    assert [e for _, e in uow.emitted] == [first, second]
    assert {first.correlationid, second.correlationid} == {cause.id}
    assert first.causationid == cause.id and first.region == "emea"
    assert first.source == "/upward/matching" and first.id != second.id
    parent, child = parse_traceparent(TRACE), parse_traceparent(first.traceparent)
    assert parent is not None and child is not None
    assert child.trace_id == parent.trace_id and child.span_id != parent.span_id


async def test_without_a_cause_an_event_starts_its_own_correlation() -> None:
    uow = UnitOfWork(_NoConnection(), source="/upward/matching", region="emea")  # type: ignore[arg-type]
    event = await uow.emit(ParticipantJoined.example())
    assert event.correlationid == event.id and event.causationid is None


async def test_an_event_too_large_for_kafka_fails_the_transaction() -> None:
    uow = UnitOfWork(_NoConnection(), source="/upward/matching", region="emea")  # type: ignore[arg-type]
    await uow.emit(ParticipantJoined.example())
    with pytest.raises(EventTooLarge, match="ParticipantJoined"):
        await uow.flush(max_bytes=200)


async def test_units_of_work_of_one_transaction_share_a_scope_finished_before_the_outbox() -> None:
    scope = TransactionScope()
    conn: Connection = _NoConnection()  # type: ignore[assignment]
    first = UnitOfWork(conn, source="/upward/matching", region="emea", scope=scope)
    second = UnitOfWork(conn, source="/upward/matching", region="emea", scope=scope)
    assert first.scope is second.scope is scope
    assert UnitOfWork(conn, source="/x", region="emea").scope is not scope
    ran: list[str] = []

    async def write(name: str) -> None:
        ran.append(name)

    first.scope.cache["held"] = 1
    first.scope.before_commit(lambda: write("first"))
    second.scope.before_commit(lambda: write("second"))
    await second.flush(max_bytes=200)  # no events: the outbox is not touched
    await first.flush(max_bytes=200)
    assert ran == ["first", "second"]
    assert scope.cache == {"held": 1}


class _Held:
    def __init__(self, log: list[list[str]]) -> None:
        self.items: list[str] = []
        self._log = log

    async def write(self) -> None:
        self._log.append(self.items)


async def test_held_writes_are_made_once_per_key_and_written_once_before_commit() -> None:
    scope = TransactionScope()
    written: list[list[str]] = []
    scope.held("k", lambda: _Held(written)).items.append("a")
    scope.held("k", lambda: _Held(written)).items.append("b")
    await scope.finish()
    assert written == [["a", "b"]]
    assert scope.cache == {}


async def test_held_writes_written_early_start_afresh_and_are_written_again_at_commit() -> None:
    scope = TransactionScope()
    written: list[list[str]] = []
    scope.held("k", lambda: _Held(written)).items.append("a")
    await scope.write_held("k")  # a handler that must read them
    await scope.write_held("k")  # nothing held: nothing written
    scope.held("k", lambda: _Held(written)).items.append("b")
    await scope.finish()
    assert written == [["a"], ["b"]]


async def test_after_held_writes_what_is_held_before_the_handler_runs() -> None:
    scope = TransactionScope()
    conn: Connection = _NoConnection()  # type: ignore[assignment]
    uow = UnitOfWork(conn, source="/upward/sessions", region="emea", scope=scope)
    written: list[list[str]] = []
    scope.held("k", lambda: _Held(written)).items.append("held first")

    async def handler(data: object, uow: UnitOfWork) -> None:
        written.append([f"handler saw {len(written)} write(s)"])

    await after_held("k", handler)(None, uow)
    assert written == [["held first"], ["handler saw 1 write(s)"]]
    assert scope.cache == {}
