"""Time-driven work of a service: timers that tick inside a transaction.

A :class:`Timer` is what a service declares for work that no event triggers:
acceptance timeouts, missed sessions, reminders, overdue feedback. Each tick
runs in one transaction that first takes a transaction-scoped advisory lock
named after the service and the timer, so with several replicas only one runs
a given timer at a time; the others skip that round. Events the tick emits go
to the outbox of the same transaction, like a handler's. The tick reads the
time from ``uow.now``, so a manual clock drives it in tests and in the demo.

Work with network I/O in it (sending e-mail) must not hold a transaction open
while it waits on the network: declare it as an :class:`ExclusiveTimer`. Its
round runs with the same lock held at session level on a connection of its
own, with no transaction open, and commits its own short transactions.

A timer whose work is caused by committed changes (new joiners to match) can
also be woken: give it a :class:`Wake` naming a PostgreSQL ``NOTIFY`` channel.
The runner listens on it (every replica does), and a notification makes the
timer tick after ``debounce_s`` instead of at the end of its interval; the
notifications of a burst that arrive within the debounce make one tick. The
interval stays as the safety net. A lost listener wakes its timers, which
catches what was committed before, and is opened again after that tick.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import asyncpg
from fastapi import APIRouter
from pydantic import AwareDatetime, BaseModel, Field

from servicekit import metrics
from servicekit.clock import Clock, ManualClock
from servicekit.db import keeps_session_state
from servicekit.http import unprocessable
from servicekit.logs import get_logger
from servicekit.retry import is_transient
from servicekit.settings import ServiceSettings
from servicekit.unit_of_work import UnitOfWork, run_committed

_log = get_logger(__name__)
_TIMER_LOCK_CLASS = "upward-timer"


@dataclass(frozen=True)
class Wake:
    """Tick soon after a ``NOTIFY`` on ``channel`` instead of at the end of the interval.

    The tick starts ``debounce_s`` seconds after the first notification, so a burst of
    commits becomes one tick. A notification during a tick makes another one after it;
    a woken tick skipped because another replica holds the timer's lock is tried again
    after the debounce.
    """

    channel: str
    debounce_s: float = 0.05


@dataclass(frozen=True)
class Timer:
    """Work to run every ``interval_s`` seconds (and whenever the manual clock moves)."""

    name: str
    interval_s: float
    tick: Callable[[UnitOfWork], Awaitable[None]]
    wake: Wake | None = None


@dataclass(frozen=True)
class ExclusiveTimer:
    """Work to run on one replica at a time, outside any transaction of the runner's.

    ``run`` is called every ``interval_s`` seconds (and whenever the manual clock moves)
    while the timer's advisory lock is held at session level; no transaction is open,
    so ``run`` opens its own (``unit_of_work``) around its database work and does its
    network I/O between them.
    """

    name: str
    interval_s: float
    run: Callable[[], Awaitable[None]]
    wake: Wake | None = None


AnyTimer = Timer | ExclusiveTimer


class TickOutcome(StrEnum):
    """What became of one tick."""

    RAN = "ran"
    SKIPPED = "skipped"  # another replica held the timer's lock
    FAILED = "failed"


class TimerRunner:
    """Runs a service's timers: on their intervals, or all at once on demand."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        settings: ServiceSettings,
        clock: Clock,
        timers: Sequence[AnyTimer],
    ) -> None:
        self._pool = pool
        self._settings = settings
        self._clock = clock
        self.timers = tuple(timers)
        self._guard = asyncio.Lock()
        self._woken = {t.name: asyncio.Event() for t in self.timers}
        self._listener: asyncpg.Connection | None = None

    def wake(self, name: str) -> None:
        """Make timer ``name`` tick soon (after its debounce), not at the end of its interval."""
        self._woken[name].set()

    def _wake_all(self) -> None:
        """The listener was lost: tick the woken timers now (catching what it missed)
        and open it again after the tick."""
        for timer in self.timers:
            if timer.wake is not None:
                self.wake(timer.name)

    def _wake_channel(self, channel: str) -> None:
        for timer in self.timers:
            if timer.wake is not None and timer.wake.channel == channel:
                self.wake(timer.name)

    async def run_once(self, timer: AnyTimer) -> TickOutcome:
        """Run one tick of ``timer``; failures are logged and counted, never raised."""
        try:
            outcome = await self._tick(timer)
        except Exception as exc:
            if is_transient(exc):
                _log.warning("timer_retry_later", timer=timer.name, error=repr(exc))
            else:
                _log.exception("timer_failed", timer=timer.name)
            outcome = TickOutcome.FAILED
        metrics.TIMER_TICKS.labels(timer.name, outcome).inc()
        return outcome

    async def run_all(self) -> dict[str, TickOutcome]:
        """Run every timer once, in declaration order."""
        return {t.name: await self.run_once(t) for t in self.timers}

    def _lock_key(self, timer: AnyTimer) -> tuple[str, str]:
        return _TIMER_LOCK_CLASS, f"{self._settings.service_name}:{timer.name}"

    async def _tick(self, timer: AnyTimer) -> TickOutcome:
        if isinstance(timer, ExclusiveTimer):
            return await self._run_exclusive(timer)
        s = self._settings
        async with self._guard, self._pool.acquire() as conn, conn.transaction():
            lock = "SELECT pg_try_advisory_xact_lock(hashtext($1), hashtext($2))"
            if not await conn.fetchval(lock, *self._lock_key(timer)):
                return TickOutcome.SKIPPED
            uow = UnitOfWork(
                conn, source=f"/upward/{s.service_name}", region=s.region, clock=self._clock
            )
            await timer.tick(uow)
            await uow.flush(max_bytes=s.max_event_bytes)
        run_committed(uow.committed_actions)
        return TickOutcome.RAN

    async def _run_exclusive(self, timer: ExclusiveTimer) -> TickOutcome:
        """The session-level lock, then ``run`` with no transaction open.

        The lock shares its key with a transactional timer of the same name, so replicas
        of two versions still exclude each other. A connection returned to the pool
        without the unlock (cancelled) is reset by asyncpg, which releases the lock (it
        is marked for that reset: :func:`servicekit.db.keeps_session_state`).
        """
        key = self._lock_key(timer)
        async with self._guard, self._pool.acquire() as conn:
            keeps_session_state(conn)
            lock = "SELECT pg_try_advisory_lock(hashtext($1), hashtext($2))"
            if not await conn.fetchval(lock, *key):
                return TickOutcome.SKIPPED
            try:
                await timer.run()
            finally:
                await conn.execute("SELECT pg_advisory_unlock(hashtext($1), hashtext($2))", *key)
        return TickOutcome.RAN

    async def run(self, stop: asyncio.Event) -> None:
        """Tick every timer on its interval (or when woken) until ``stop`` is set."""
        await self._listen()
        try:
            await asyncio.gather(*(self._loop(t, stop) for t in self.timers))
        finally:
            if self._listener is not None:
                with contextlib.suppress(Exception):
                    await self._listener.close()

    async def _listen(self) -> None:
        """(Re)open the connection listening on the wake channels, if any timer has one."""
        channels = sorted({t.wake.channel for t in self.timers if t.wake is not None})
        if not channels or (self._listener is not None and not self._listener.is_closed()):
            return
        conn: asyncpg.Connection | None = None
        try:
            conn = await asyncpg.connect(self._settings.database_url.get_secret_value())
            for channel in channels:
                await conn.add_listener(channel, lambda _c, _p, ch, _m: self._wake_channel(ch))
            conn.add_termination_listener(lambda _c: self._wake_all())
        except Exception as exc:  # the intervals still run; tried again after each tick
            _log.warning("timer_listen_failed", channels=channels, error=repr(exc))
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()
            return
        self._listener = conn

    async def _loop(self, timer: AnyTimer, stop: asyncio.Event) -> None:
        woken = self._woken[timer.name]
        while not stop.is_set():
            was_woken = woken.is_set()
            woken.clear()  # a notification from now on makes another tick
            outcome = await self.run_once(timer)
            if was_woken and outcome is TickOutcome.SKIPPED:
                woken.set()  # another replica is ticking: try again after the debounce
            await self._listen()
            await self._wait(timer, woken, stop)

    async def _wait(self, timer: AnyTimer, woken: asyncio.Event, stop: asyncio.Event) -> None:
        """Until the interval ends, or a wake and its debounce, or ``stop``."""
        waiters = [asyncio.ensure_future(e.wait()) for e in (stop, woken)]
        try:
            await asyncio.wait(
                waiters, timeout=timer.interval_s, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for waiter in waiters:
                waiter.cancel()
        if woken.is_set() and timer.wake is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timer.wake.debounce_s)


class ClockMove(BaseModel):
    """How to move a manual clock: to a time, or forward by some seconds."""

    now: AwareDatetime | None = Field(default=None, description="Move the clock to this time.")
    advance_s: float | None = Field(
        default=None, ge=0, description="Move the clock forward by this many seconds."
    )


class ClockState(BaseModel):
    """The clock's time and, after a move, what each timer did."""

    now: datetime
    timers: dict[str, TickOutcome] = Field(default_factory=dict)


def clock_router(clock: ManualClock, runner: TimerRunner | None) -> APIRouter:
    """``GET/POST /ops/clock``: read or move a manual clock, then run every timer once."""
    router = APIRouter(prefix="/ops", tags=["operations"])

    @router.get("/clock", summary="The service's manual clock")
    async def read_clock() -> ClockState:
        return ClockState(now=clock.now())

    @router.post("/clock", summary="Move the manual clock forward and run every timer once")
    async def move_clock(move: ClockMove) -> ClockState:
        try:
            _apply(clock, move)
        except ValueError as exc:
            raise unprocessable(str(exc)) from exc
        except OverflowError as exc:
            detail = "the clock cannot move that far (past year 9999)"
            raise unprocessable(detail) from exc
        ran = await runner.run_all() if runner is not None else {}
        return ClockState(now=clock.now(), timers=ran)

    return router


def _apply(clock: ManualClock, move: ClockMove) -> None:
    if (move.now is None) == (move.advance_s is None):
        raise ValueError("give exactly one of 'now' or 'advance_s'")
    if move.now is not None:
        clock.set(move.now)
    else:
        clock.advance(timedelta(seconds=move.advance_s or 0.0))
