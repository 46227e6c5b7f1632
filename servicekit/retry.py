"""Which failures are transient, and the backoff used while they last."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg
from aiokafka import errors as kafka_errors

T = TypeVar("T")

_TRANSIENT: tuple[type[BaseException], ...] = (
    OSError,  # connection refused or reset: database or broker down
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.OperatorInterventionError,  # admin or crash shutdown
    asyncpg.exceptions.SerializationError,
    asyncpg.exceptions.DeadlockDetectedError,
    asyncpg.exceptions.LockNotAvailableError,  # lock_timeout: a busy row, try later
    asyncpg.exceptions.QueryCanceledError,  # statement_timeout
    asyncpg.InterfaceError,  # connection closed under us
    # The server went away in the middle of an operation: asyncpg's protocol is left in a
    # state it cannot leave ("cannot switch to state 15; another operation (2) is in
    # progress"). Seen when a service's PostgreSQL stops; a handler that met it was
    # dead-lettered although nothing was wrong with its event (fault suite, tests/chaos).
    asyncpg.exceptions.InternalClientError,
    kafka_errors.KafkaConnectionError,
    kafka_errors.KafkaTimeoutError,
    kafka_errors.NodeNotReadyError,
    kafka_errors.RequestTimedOutError,
    kafka_errors.NotLeaderForPartitionError,
    kafka_errors.LeaderNotAvailableError,
)


def is_transient(exc: BaseException) -> bool:
    """True when retrying the same work later may succeed (nothing is wrong with it)."""
    if isinstance(exc, _TRANSIENT):
        return True
    retriable = getattr(exc, "retriable", False)
    return isinstance(exc, kafka_errors.KafkaError) and bool(retriable)


class Backoff:
    """Exponential backoff with full jitter, capped."""

    def __init__(self, initial: float, maximum: float) -> None:
        self._initial = initial
        self._maximum = maximum
        self._attempt = 0

    def next_delay(self) -> float:
        """The delay before the next attempt."""
        ceiling = min(self._maximum, self._initial * (2**self._attempt))
        self._attempt += 1
        return random.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        """Start again from the initial delay after a success."""
        self._attempt = 0

    @property
    def attempts(self) -> int:
        """Failed attempts since the last reset."""
        return self._attempt


async def retry_transient(
    attempt: Callable[[], Awaitable[T]],
    *,
    backoff: Backoff,
    pause: Callable[[float], Awaitable[None]],
    on_retry: Callable[[Exception], None],
    deadline: float | None = None,
) -> T:
    """Run ``attempt`` until it succeeds, retrying transient failures with ``backoff``.

    A non-transient failure, or a transient one after the monotonic ``deadline``,
    is raised. ``pause`` waits between attempts (and may raise to give up, e.g.
    when the service stops); ``on_retry`` logs and counts each retried failure.
    """
    while True:
        try:
            return await attempt()
        except Exception as exc:
            if not is_transient(exc) or (deadline is not None and time.monotonic() > deadline):
                raise
            on_retry(exc)
            await pause(backoff.next_delay())
