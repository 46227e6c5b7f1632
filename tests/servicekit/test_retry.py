"""Transient failures are told apart from bad events, and backoff grows to a cap."""

import asyncpg
import pytest
from aiokafka import errors as kafka_errors

from servicekit.retry import Backoff, is_transient


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionRefusedError(),
        TimeoutError(),
        asyncpg.exceptions.CannotConnectNowError("starting up"),
        asyncpg.exceptions.AdminShutdownError("terminating connection"),
        asyncpg.exceptions.ConnectionDoesNotExistError("closed"),
        kafka_errors.KafkaConnectionError(),
        kafka_errors.NotLeaderForPartitionError(),
    ],
)
def test_infrastructure_failures_are_transient(exc: BaseException) -> None:
    assert is_transient(exc)


def test_a_connection_lost_mid_operation_is_transient() -> None:
    """asyncpg's state error when PostgreSQL stops while a query runs: the event that met it
    was dead-lettered instead of retried once the database was back."""
    lost = asyncpg.exceptions.InternalClientError(
        "cannot switch to state 15; another operation (2) is in progress"
    )
    assert is_transient(lost)


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("bad"),
        KeyError("x"),
        asyncpg.exceptions.UniqueViolationError("dup"),
        kafka_errors.MessageSizeTooLargeError(),
    ],
)
def test_bugs_and_bad_data_are_not_transient(exc: BaseException) -> None:
    assert not is_transient(exc)


def test_backoff_grows_then_caps_and_resets() -> None:
    backoff = Backoff(0.1, 1.0)
    delays = [backoff.next_delay() for _ in range(8)]
    assert delays[0] <= 0.1
    assert all(d <= 1.0 for d in delays)
    assert delays[-1] >= 0.5
    assert backoff.attempts == 8
    backoff.reset()
    assert backoff.next_delay() <= 0.1


async def test_retry_transient_retries_then_succeeds_and_raises_the_rest() -> None:
    from servicekit.retry import retry_transient

    calls: list[int] = []
    retried: list[Exception] = []

    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionRefusedError("down")
        return "done"

    async def no_wait(_: float) -> None:
        return None

    backoff = Backoff(0.01, 0.02)
    result = await retry_transient(flaky, backoff=backoff, pause=no_wait, on_retry=retried.append)
    assert result == "done" and len(calls) == 3 and len(retried) == 2

    async def broken() -> str:
        raise ValueError("a bug, not an outage")

    with pytest.raises(ValueError):
        await retry_transient(broken, backoff=backoff, pause=no_wait, on_retry=retried.append)

    async def always_down() -> str:
        raise ConnectionRefusedError("still down")

    with pytest.raises(ConnectionRefusedError):  # past the deadline it gives up
        await retry_transient(
            always_down, backoff=backoff, pause=no_wait, on_retry=retried.append, deadline=0.0
        )
