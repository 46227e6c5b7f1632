"""HTTP commands run again after a transient database failure, and answer 503 if it lasts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg
import pytest
from fastapi import HTTPException
from sessions_harness import settings

from services.sessions.entrypoints import http


def failing(times: int, error: Exception) -> tuple[list[int], Callable[[], Awaitable[str]]]:
    calls: list[int] = []

    async def attempt() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise error
        return "done"

    return calls, attempt


async def test_a_deadlock_is_retried_in_a_new_transaction() -> None:
    calls, attempt = failing(2, asyncpg.exceptions.DeadlockDetectedError("deadlock detected"))
    fast = settings(retry_initial_backoff_s=0.001)
    assert await http.retrying(attempt, fast) == "done"
    assert len(calls) == 3


async def test_a_failure_that_lasts_answers_503(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http, "RETRY_FOR_S", 0.0)
    calls, attempt = failing(99, asyncpg.exceptions.SerializationError("could not serialize"))
    with pytest.raises(HTTPException) as refused:
        await http.retrying(attempt, settings(retry_initial_backoff_s=0.001))
    assert refused.value.status_code == 503 and len(calls) == 1


async def test_other_failures_are_not_retried() -> None:
    calls, attempt = failing(1, ValueError("a bug"))
    with pytest.raises(ValueError):
        await http.retrying(attempt, settings())
    assert len(calls) == 1
